"""``trioaria -M doc`` and ``trioaria doc.meta4`` end to end against nginx (issue 13, part 2).

* A Metalink 4 document lists a good mirror and one serving a copy with a corrupted range; its
  ``<pieces>`` let the download end byte-exact, the whole-file hash is checked, and aria2c
  consumes the same document in the same run (proving the fixture is valid).
* Metalink 3.0 given as a positional ``.metalink`` path; several files, ``--select-file``.
* Priority orders the mirrors: with one connection only the best mirror is asked.
* Invalid or hostile documents: exit 20 and no request reaches the server.
* A whole-file hash that does not match: exit 32.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.cli_util import log_lines, run_aria2c, run_cli, unique_name
from tests.servers.nginx import NginxServer
from trioaria.base.errors import ExitCode

PIECE = 256 * 1024
SIZE = 2 * 1024 * 1024 + 12345


def _pieces(data: bytes, algorithm: str = "sha-256") -> str:
    name = algorithm.replace("-", "")
    hashes = "".join(
        f"<hash>{hashlib.new(name, data[i : i + PIECE]).hexdigest()}</hash>"
        for i in range(0, len(data), PIECE)
    )
    return f'<pieces length="{PIECE}" type="{algorithm}">{hashes}</pieces>'


def _v4(files: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<metalink xmlns="urn:ietf:params:xml:ns:metalink">{files}</metalink>\n'
    ).encode()


def _file(name: str, data: bytes, urls: list[tuple[str, int]], *, pieces: bool = True) -> str:
    body = f"<size>{len(data)}</size>"
    body += f'<hash type="sha-256">{hashlib.sha256(data).hexdigest()}</hash>'
    if pieces:
        body += _pieces(data)
    body += "".join(f'<url priority="{p}">{u}</url>' for u, p in urls)
    return f'<file name="{name}">{body}</file>'


def _serve_pair(nginx: NginxServer, prefix: str) -> tuple[bytes, str, str]:
    """Good and corrupted copies of one file: (data, good path, bad path)."""
    good = unique_name(prefix)
    bad = "bad-" + good
    data = os.urandom(SIZE)
    corrupted = bytearray(data)
    corrupted[PIECE + 100 : PIECE + 5000] = os.urandom(4900)  # inside piece 1
    corrupted[5 * PIECE + 7] ^= 0xFF  # and piece 5
    nginx.add_file(good, data)
    nginx.add_file(bad, bytes(corrupted))
    return data, good, bad


async def test_corrupted_mirror_caught_by_piece_hashes(nginx: NginxServer, tmp_path: Path) -> None:
    data, good, bad = _serve_pair(nginx, "ml4")
    # the bad mirror has the better priority: it is asked first and serves bad pieces
    doc = tmp_path / "release.meta4"
    doc.write_bytes(
        _v4(_file("release.bin", data, [(nginx.url("/" + bad), 1), (nginx.url("/" + good), 2)]))
    )
    log = tmp_path / "trioaria.log"
    res = await run_cli(
        "-M", doc, "-d", tmp_path / "out", "-s", "4", "-k", "1M", "-m", "1",
        "-l", log, "--log-level=info", home=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "out" / "release.bin").read_bytes() == data
    assert log_lines(nginx, "/" + bad), "the bad mirror was asked"
    assert "piece 1 failed its sha-256 check" in res.stdout, res.stdout
    assert f"dropping source {nginx.url('/' + bad)}" in log.read_text(), "the log names it"
    assert "not implemented" not in res.stderr, res.stderr
    # aria2c consumes the same document: it finds the same bad piece with the same hashes
    res2 = await run_aria2c(
        "-M", doc, "-d", tmp_path / "aria2", "-s", "4", "-k", "1M", home=tmp_path
    )
    assert res2.returncode != ExitCode.METALINK_PARSE_ERROR, res2
    assert "Invalid checksum index=1" in res2.stdout, res2.stdout[-3000:]
    # ... and, from the good mirror alone, the same bytes
    good_doc = tmp_path / "good.meta4"
    good_doc.write_bytes(_v4(_file("release.bin", data, [(nginx.url("/" + good), 1)])))
    res3 = await run_aria2c("-M", good_doc, "-d", tmp_path / "aria2", home=tmp_path)
    assert res3.returncode == 0, res3.stdout[-3000:]
    assert (tmp_path / "aria2" / "release.bin").read_bytes() == data


async def test_positional_v3_metalink_with_two_files_and_select_file(
    nginx: NginxServer, tmp_path: Path
) -> None:
    names = [unique_name("ml3a"), unique_name("ml3b")]
    blobs = [os.urandom(300_000), os.urandom(70_000)]
    for n, b in zip(names, blobs, strict=True):
        nginx.add_file(n, b)
    files = "".join(
        f'<file name="sub/{n}"><size>{len(b)}</size><verification>'
        f'<hash type="sha1">{hashlib.sha1(b).hexdigest()}</hash></verification>'
        f'<resources><url type="http" preference="100">{nginx.url("/" + n)}</url></resources>'
        "</file>"
        for n, b in zip(names, blobs, strict=True)
    )
    doc = tmp_path / "two.metalink"
    doc.write_bytes(
        f'<metalink version="3.0" xmlns="http://www.metalinker.org/"><files>{files}</files></metalink>'.encode()
    )
    res = await run_cli(doc, "-d", tmp_path / "all", home=tmp_path)
    assert res.returncode == 0, res
    for n, b in zip(names, blobs, strict=True):
        assert (tmp_path / "all" / "sub" / n).read_bytes() == b
    res = await run_cli(doc, "-d", tmp_path / "one", "--select-file=2", home=tmp_path)
    assert res.returncode == 0, res
    assert not (tmp_path / "one" / "sub" / names[0]).exists()
    assert (tmp_path / "one" / "sub" / names[1]).read_bytes() == blobs[1]


async def test_priority_orders_the_mirrors(nginx: NginxServer, tmp_path: Path) -> None:
    data = os.urandom(100_000)
    first, second = unique_name("mlp1"), unique_name("mlp2")
    nginx.add_file(first, data)
    nginx.add_file(second, data)
    doc = tmp_path / "p.meta4"
    doc.write_bytes(
        _v4(
            _file(
                "p.bin", data, [(nginx.url("/" + second), 7), (nginx.url("/" + first), 3)],
                pieces=False,
            )
        )
    )  # fmt: skip
    res = await run_cli("-M", doc, "-d", tmp_path / "out", "-s", "1", home=tmp_path)
    assert res.returncode == 0, res
    assert (tmp_path / "out" / "p.bin").read_bytes() == data
    assert log_lines(nginx, "/" + first)
    assert not log_lines(nginx, "/" + second)


async def test_whole_file_hash_mismatch_is_exit_32(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("mlh")
    nginx.add_file(name, os.urandom(50_000))
    doc = tmp_path / "h.meta4"
    doc.write_bytes(
        _v4(
            f'<file name="h.bin"><hash type="sha-256">{"00" * 32}</hash>'
            f"<url>{nginx.url('/' + name)}</url></file>"
        )
    )
    res = await run_cli("-M", doc, "-d", tmp_path / "out", home=tmp_path)
    assert res.returncode == ExitCode.CHECKSUM_ERROR, res


async def test_invalid_documents_exit_20_nothing_downloaded(
    nginx: NginxServer, tmp_path: Path
) -> None:
    name = unique_name("mlx")
    nginx.add_file(name, b"x" * 1000)
    url = nginx.url("/" + name)
    documents = {
        "traversal.meta4": _v4(f'<file name="../escape.bin"><url>{url}</url></file>'),
        "xxe.meta4": (
            '<?xml version="1.0"?>\n<!DOCTYPE m [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
            f'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a"><url>{url}</url>'
            "</file></metalink>"
        ).encode(),
        "broken.meta4": b"<metalink",
        "badhex.meta4": _v4(f'<file name="a"><hash type="md5">xyz</hash><url>{url}</url></file>'),
    }
    for filename, body in documents.items():
        doc = tmp_path / filename
        doc.write_bytes(body)
        for args in (("-M", doc), (doc,)):
            res = await run_cli(*args, "-d", tmp_path / "out", home=tmp_path)
            assert res.returncode == ExitCode.METALINK_PARSE_ERROR, (filename, res)
            assert filename in res.stderr, res
    missing = await run_cli("-M", tmp_path / "nope.meta4", home=tmp_path)
    assert missing.returncode == ExitCode.OPTION_ERROR, missing  # aria2c -M missing: 28 too
    assert not log_lines(nginx, "/" + name)
    assert not (tmp_path / "escape.bin").exists()
    assert not (tmp_path / "out").exists()


async def test_two_files_of_one_name_are_not_written_into_one(
    nginx: NginxServer, tmp_path: Path
) -> None:
    """Two metalink:file entries named alike run at once: as aria2 (isSameFileBeingDownloaded)
    the second is renamed d.1.bin instead of both writing d.bin and its control file."""
    a, b = os.urandom(3_000_000), os.urandom(3_000_000)
    na, nb = unique_name("mldup-a"), unique_name("mldup-b")
    nginx.add_file(na, a)
    nginx.add_file(nb, b)
    doc = tmp_path / "dup.meta4"
    doc.write_bytes(
        _v4(
            f'<file name="d.bin"><size>{len(a)}</size><url>{nginx.url("/" + na)}</url></file>'
            f'<file name="d.bin"><size>{len(b)}</size><url>{nginx.url("/" + nb)}</url></file>'
        )
    )
    res = await run_cli("-M", doc, "-d", tmp_path / "out", "-k", "1M", "-s", "4", home=tmp_path)
    assert res.returncode == 0, res.stdout[-1500:]
    got = sorted(p.read_bytes() for p in (tmp_path / "out").iterdir())
    assert got == sorted([a, b])


async def test_a_mirror_serving_another_size_than_the_document_is_dropped(
    nginx: NginxServer, tmp_path: Path
) -> None:
    """The document says 100000 bytes and its best mirror serves a truncated copy: as aria2
    (RequestGroup::validateTotalLength, "Size mismatch") that mirror is dropped and the file
    comes from the honest one, instead of the liar's length becoming the truth."""
    data = os.urandom(100_000)
    good, bad = unique_name("mlsz-good"), unique_name("mlsz-bad")
    nginx.add_file(good, data)
    nginx.add_file(bad, data[:60_000])
    doc = tmp_path / "size.meta4"
    doc.write_bytes(
        _v4(
            f'<file name="s.bin"><size>{len(data)}</size>'
            f'<url priority="1">{nginx.url("/" + bad)}</url>'
            f'<url priority="2">{nginx.url("/" + good)}</url></file>'
        )
    )
    res = await run_cli("-M", doc, "-d", tmp_path / "out", "-s", "1", home=tmp_path)
    assert res.returncode == 0, res.stdout[-1500:]
    assert (tmp_path / "out" / "s.bin").read_bytes() == data


async def test_only_mirrors_of_another_size_fail_the_download(
    nginx: NginxServer, tmp_path: Path
) -> None:
    data = os.urandom(50_000)
    bad = unique_name("mlsz-only")
    nginx.add_file(bad, data)
    doc = tmp_path / "size.meta4"
    doc.write_bytes(
        _v4(
            f'<file name="s.bin"><size>{len(data) + 1}</size><url>{nginx.url("/" + bad)}</url></file>'
        )
    )
    res = await run_cli("-M", doc, "-d", tmp_path / "out", home=tmp_path)
    assert res.returncode != 0
    assert "Size mismatch" in res.stdout + res.stderr
    assert not (tmp_path / "out" / "s.bin").exists()
