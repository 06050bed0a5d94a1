"""``--follow-metalink`` and Metalink/HTTP (RFC 6249) end to end against nginx (issue 13).

* A URI answered with a Metalink media type (or named ``.meta4``) is parsed and its files
  downloaded: ``true`` keeps the document in ``--dir``, ``mem`` does not, ``false`` downloads
  only the document; relative urls resolve against the document's URI or
  ``--metalink-base-uri``; aria2c follows the same document to the same files.
* ``Link: rel=duplicate`` adds mirrors (``--metalink-location`` first), a mirror whose
  ``Digest`` disagrees is dropped and the file ends byte-exact; ``rel=describedby`` brings the
  document's mirrors and hashes; ``Want-Digest`` is sent unless ``--no-want-digest-header``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.cli_util import run_aria2c, run_cli
from tests.metalink.ml_nginx import MetalinkNginx
from tests.servers.nginx import NginxServer

NS = "urn:ietf:params:xml:ns:metalink"


def _doc(files: str) -> bytes:
    return f'<?xml version="1.0"?>\n<metalink xmlns="{NS}">{files}</metalink>'.encode()


def _file(name: str, data: bytes, url: str) -> str:
    return (
        f'<file name="{name}"><size>{len(data)}</size>'
        f'<hash type="sha-256">{hashlib.sha256(data).hexdigest()}</hash><url>{url}</url></file>'
    )


def _two_files(ml: MetalinkNginx, tag: str) -> tuple[bytes, bytes, str]:
    """Two files and a document naming them by relative urls: (a, b, document path)."""
    a, b = os.urandom(70_000), os.urandom(130_000)
    ml.add_file(f"f/{tag}/a.bin", a)
    ml.add_file(f"f/{tag}/b.bin", b)
    # the document lives in /f/<tag>/: its relative urls resolve against its own URI
    ml.add_file(
        f"f/{tag}/list.xml",
        _doc(_file(f"{tag}-a.bin", a, "a.bin") + _file(f"sub/{tag}-b.bin", b, "./b.bin")),
    )
    return a, b, f"/typed/f/{tag}/list.xml"


async def test_follow_metalink_by_content_type(ml_nginx: MetalinkNginx, tmp_path: Path) -> None:
    a, b, doc = _two_files(ml_nginx, "ct")
    url = ml_nginx.url(doc)
    for mode in ("true", "mem"):
        out = tmp_path / mode
        res = await run_cli(url, f"--follow-metalink={mode}", "-d", out, home=tmp_path)
        assert res.returncode == 0, res
        assert (out / "ct-a.bin").read_bytes() == a
        assert (out / "sub" / "ct-b.bin").read_bytes() == b
        assert (out / "list.xml").exists() is (mode == "true"), sorted(out.rglob("*"))
    assert "[MEMORY]list.xml" in res.stdout, res.stdout  # mem: aria2's name for it
    # false: the document is an ordinary file
    res = await run_cli(url, "--follow-metalink=false", "-d", tmp_path / "no", home=tmp_path)
    assert res.returncode == 0, res
    assert sorted(p.name for p in (tmp_path / "no").iterdir()) == ["list.xml"]
    # aria2c follows the same document to the same files
    res = await run_aria2c(url, "--follow-metalink=mem", "-d", tmp_path / "aria2", home=tmp_path)
    assert res.returncode == 0, res
    assert (tmp_path / "aria2" / "ct-a.bin").read_bytes() == a
    assert (tmp_path / "aria2" / "sub" / "ct-b.bin").read_bytes() == b


async def test_follow_metalink_by_name_and_base_uri(
    ml_nginx: MetalinkNginx, tmp_path: Path
) -> None:
    data = os.urandom(50_000)
    ml_nginx.add_file("f/nm/data/x.bin", data)
    # served as application/octet-stream: followed because of its .meta4 name
    ml_nginx.add_file("f/nm/rel.meta4", _doc(_file("x.bin", data, "x.bin")))
    res = await run_cli(
        ml_nginx.url("/f/nm/rel.meta4"), "--follow-metalink=mem",
        f"--metalink-base-uri={ml_nginx.url('/f/nm/data/')}", "-d", tmp_path / "o",
        home=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "o" / "x.bin").read_bytes() == data


async def test_followed_document_that_is_invalid_is_exit_20(
    ml_nginx: MetalinkNginx, tmp_path: Path
) -> None:
    ml_nginx.add_file("f/bad/bad.xml", _doc('<file name="../up.bin"><url>x</url></file>'))
    res = await run_cli(
        ml_nginx.url("/typed/f/bad/bad.xml"), "--follow-metalink=mem", "-d", tmp_path / "o",
        home=tmp_path,
    )  # fmt: skip
    assert res.returncode == 20, res
    assert not (tmp_path / "up.bin").exists()


async def test_link_duplicates_and_disagreeing_digest(
    ml_nginx: MetalinkNginx, tmp_path: Path
) -> None:
    log = tmp_path / "t.log"
    res = await run_cli(
        ml_nginx.url("/lh/payload.bin"), "-d", tmp_path / "o", "-s", "3", "-x", "1",
        "-k", "1M", "--metalink-location=de", "-l", log, "--log-level=info", home=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "o" / "payload.bin").read_bytes() == ml_nginx.good
    text = log.read_text()
    m1 = ml_nginx.url("/m1/payload.bin", "localhost")
    m2 = ml_nginx.url("/m2/payload.bin", "[::1]")
    # the de mirror comes first (--metalink-location), then jp
    assert text.index(f"Adding URI={m2}") < text.index(f"Adding URI={m1}"), text
    assert ml_nginx.requests("/m2/payload.bin"), "the disagreeing mirror was asked"
    assert f"dropping source {m2}" in text and "Invalid hash found in Digest" in text, text
    assert ml_nginx.requests("/m1/payload.bin"), "the added good mirror served"
    assert "Setting digest: type=sha-256" in text


async def test_described_by_brings_the_documents_mirrors(
    ml_nginx: MetalinkNginx, tmp_path: Path
) -> None:
    good = ml_nginx.good
    piece = 1024 * 1024
    hashes = "".join(
        f"<hash>{hashlib.sha256(good[i : i + piece]).hexdigest()}</hash>"
        for i in range(0, len(good), piece)
    )
    ml_nginx.add_file(
        "docs/payload.meta4",
        _doc(
            f'<file name="payload.bin"><size>{len(good)}</size>'
            f'<hash type="sha-256">{hashlib.sha256(good).hexdigest()}</hash>'
            f'<pieces length="{piece}" type="sha-256">{hashes}</pieces>'
            f"<url>{ml_nginx.url('/m1/payload.bin', 'localhost')}</url></file>"
        ),
    )
    log = tmp_path / "t.log"
    res = await run_cli(
        ml_nginx.url("/dby/payload.bin"), "-d", tmp_path / "o", "-s", "2", "-x", "1",
        "-k", "1M", "-l", log, "--log-level=info", home=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "o" / "payload.bin").read_bytes() == good
    assert ml_nginx.requests("/docs/payload.meta4")
    assert ml_nginx.requests("/m1/payload.bin"), "the document's mirror served"
    assert "describes payload.bin" in log.read_text()


async def test_want_digest_and_accept_headers(ml_nginx: MetalinkNginx, tmp_path: Path) -> None:
    res = await run_cli(ml_nginx.url("/echo-want-digest"), "-d", tmp_path / "a", home=tmp_path)
    assert res.returncode == 0, res
    assert (
        tmp_path / "a" / "echo-want-digest"
    ).read_text() == "[SHA-512;q=1, SHA-256;q=1, SHA;q=0.1]"
    res = await run_cli(
        ml_nginx.url("/echo-want-digest"), "--no-want-digest-header", "-d", tmp_path / "b",
        home=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "b" / "echo-want-digest").read_text() == "[]"
    res = await run_cli(ml_nginx.url("/echo-accept"), "-d", tmp_path / "c", home=tmp_path)
    assert (tmp_path / "c" / "echo-accept").read_text() == (
        "[*/*,application/metalink4+xml,application/metalink+xml]"
    )
    res = await run_cli(
        ml_nginx.url("/echo-accept"), "--follow-metalink=false", "-d", tmp_path / "d",
        home=tmp_path,
    )  # fmt: skip
    assert (tmp_path / "d" / "echo-accept").read_text() == "[*/*]"


async def test_served_v3_document_with_a_corrupting_mirror(
    ml_nginx: MetalinkNginx, tmp_path: Path
) -> None:
    good = ml_nginx.good
    piece = 1024 * 1024
    hashes = "".join(
        f'<hash piece="{i}">{hashlib.sha1(good[o : o + piece]).hexdigest()}</hash>'
        for i, o in enumerate(range(0, len(good), piece))
    )
    bad_url, good_url = ml_nginx.url("/bad/payload.bin"), ml_nginx.url("/good/payload.bin")
    ml_nginx.add_file(
        "f/v3/release.metalink",  # served as application/metalink+xml
        (
            '<?xml version="1.0"?><metalink version="3.0" xmlns="http://www.metalinker.org/">'
            f'<files><file name="v3.bin"><size>{len(good)}</size><verification>'
            f'<hash type="sha256">{hashlib.sha256(good).hexdigest()}</hash>'
            f'<pieces type="sha1" length="{piece}">{hashes}</pieces></verification>'
            f'<resources><url type="http" preference="100">{bad_url}</url>'
            f'<url type="http" preference="50">{good_url}</url></resources>'
            "</file></files></metalink>"
        ).encode(),
    )
    log = tmp_path / "t.log"
    res = await run_cli(
        ml_nginx.url("/f/v3/release.metalink"), "--follow-metalink=mem", "-d", tmp_path / "o",
        "-s", "4", "-k", "1M", "-m", "1", "-l", log, "--log-level=info", home=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "o" / "v3.bin").read_bytes() == good
    assert ml_nginx.requests("/bad/payload.bin"), "the corrupting mirror was asked first"
    assert "failed its sha-1 check" in res.stdout, res.stdout
    assert f"dropping source {bad_url}" in log.read_text(), "the log names it"
    assert not (tmp_path / "o" / "release.metalink").exists()
    # aria2c reads the same served document
    res = await run_aria2c(
        ml_nginx.url("/f/v3/release.metalink"), "--follow-metalink=mem", "-d", tmp_path / "a",
        home=tmp_path,
    )  # fmt: skip
    assert "Invalid checksum" in res.stdout or res.returncode == 0, res.stdout[-2000:]
    assert res.returncode != 20, res


async def test_deferred_input_follows_metalink(
    ml_nginx: MetalinkNginx, nginx: NginxServer, tmp_path: Path
) -> None:
    # the followed document's downloads belong to the run, which ends only once they are
    # done (a throttled mirror keeps them running after the document's own download ended)
    data = os.urandom(160_000)
    nginx.add_file("di-slow.bin", data)
    ml_nginx.add_file(
        "f/di/list.xml", _doc(_file("di.bin", data, nginx.url("/rate/64k/di-slow.bin")))
    )
    listing = tmp_path / "in.txt"
    listing.write_text(ml_nginx.url("/typed/f/di/list.xml") + "\n")
    out = tmp_path / "out"
    res = await run_cli("--deferred-input", "-i", listing, "-d", out, home=tmp_path)
    assert res.returncode == 0, res
    assert (out / "di.bin").read_bytes() == data
