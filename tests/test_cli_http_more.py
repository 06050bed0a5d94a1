"""End-to-end tests of the HTTP options beyond plain segmented downloads (issue #3 part 3).

Content-Disposition (RFC 6266 / RFC 5987), ``--http-accept-gzip``, request headers (``-U``,
``--referer``, ``--header``, ``--http-no-cache``, ``--enable-http-keep-alive=false``), Basic
auth with and without ``--http-auth-challenge``, ``--use-head``, ``-R/--remote-time``,
``--conditional-get``, ``--max-file-not-found`` and ``Retry-After``.  Each runs the real CLI
against nginx or the fault server; where aria2c supports the feature, aria2c runs against the
same URL and its exit status (and result file name or content) must match ours.
"""

from __future__ import annotations

import gzip
import os
import time
import urllib.parse
import zlib
from pathlib import Path

import pytest

from tests.cli_util import gather, log_lines, run_aria2c, run_cli, serve_copy, unique_name
from tests.servers.fault import FaultServer
from tests.servers.nginx import NginxServer
from trioaria.base.errors import ExitCode

MiB = 1 << 20


def _cd_url(server: FaultServer, value: bytes) -> str:
    return server.url("/cd/data.bin?v=" + urllib.parse.quote_from_bytes(value, safe=""))


# --- Content-Disposition ------------------------------------------------------------------

_NAIVE = "na\u00efve"  # "naïve"

# (header value as raw bytes, extra options, our file name, aria2c's file name)
_CD_CASES = [
    # RFC 6266 §4.3: filename* (RFC 5987, UTF-8) wins over filename
    (
        b"attachment; filename=\"fallback.bin\"; filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.bin",
        (),
        f"{_NAIVE} r\u00e9sum\u00e9.bin",
        f"{_NAIVE} r\u00e9sum\u00e9.bin",
    ),
    (b"attachment; filename*=iso-8859-1''caf%E9.bin", (), "caf\u00e9.bin", "caf\u00e9.bin"),
    # raw UTF-8 in filename=: ISO-8859-1 unless --content-disposition-default-utf8
    (
        b'attachment; filename="na\xc3\xafve.bin"',
        (),
        "na\u00c3\u00afve.bin",
        "na\u00c3\u00afve.bin",
    ),
    (
        b'attachment; filename="na\xc3\xafve.bin"',
        ("--content-disposition-default-utf8",),
        f"{_NAIVE}.bin",
        f"{_NAIVE}.bin",
    ),
    # a control character: the value is refused, the URL's name is used (as aria2)
    (b'attachment; filename="a\x01b.bin"', (), "data.bin", "data.bin"),
    # a path: we keep its last component (RFC 6266 §4.3); aria2 refuses the value
    (b'attachment; filename="../../evil.bin"', (), "evil.bin", "data.bin"),
    (b"attachment; filename=..\\..\\win.bin", (), "win.bin", "data.bin"),
]


async def test_content_disposition_names(fault_server: FaultServer, tmp_path: Path) -> None:
    calls = []
    for i, (value, extra, _ours, _theirs) in enumerate(_CD_CASES):
        url = _cd_url(fault_server, value)
        calls.append(
            lambda i=i, url=url, extra=extra: run_cli(
                *extra, "-d", tmp_path / f"o{i}" / "d", url, home=tmp_path / f"o{i}"
            )
        )
        calls.append(
            lambda i=i, url=url, extra=extra: run_aria2c(
                *extra, "-d", tmp_path / f"a{i}" / "d", url, home=tmp_path / f"a{i}"
            )
        )
    results = await gather(*calls)
    data = fault_server.files["data.bin"]
    for i, (value, _extra, ours, theirs) in enumerate(_CD_CASES):
        mine, aria2 = results[2 * i], results[2 * i + 1]
        assert mine.returncode == 0 == aria2.returncode, (value, mine, aria2)
        assert os.listdir(tmp_path / f"o{i}" / "d") == [ours], value
        assert os.listdir(tmp_path / f"a{i}" / "d") == [theirs], value
        assert (tmp_path / f"o{i}" / "d" / ours).read_bytes() == data
        # nothing escaped the download directory
        assert sorted(os.listdir(tmp_path / f"o{i}")) == ["d"], value


# --- --http-accept-gzip -------------------------------------------------------------------


async def test_accept_gzip_against_nginx(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("gz").replace(".bin", ".txt")  # text/plain: nginx gzips it
    text = b"".join(b"line %d of a very compressible text file\n" % i for i in range(60000))
    nginx.add_file(name, text)
    url = nginx.url(f"/{name}")
    gz, plain, aria2 = await gather(
        lambda: run_cli(
            "--http-accept-gzip",
            "-x4",
            "-s4",
            "-k1M",
            "-d",
            tmp_path / "gz",
            url,
            home=tmp_path / "h1",
        ),
        lambda: run_cli("-d", tmp_path / "plain", url, home=tmp_path / "h2"),
        lambda: run_aria2c("--http-accept-gzip", "-d", tmp_path / "a", url, home=tmp_path / "h3"),
    )
    assert gz.returncode == 0, gz
    assert plain.returncode == 0, plain
    assert aria2.returncode == 0, aria2
    for sub in ("gz", "plain", "a"):
        assert (tmp_path / sub / name).read_bytes() == text, sub
    lines = log_lines(nginx, f"/{name}")
    compressed = [x for x in lines if x.body_bytes < len(text) // 4]
    # ours and aria2c's gzip downloads: one compressed request each, never split
    assert len(compressed) == 2, lines
    assert any(x.body_bytes == len(text) for x in lines), lines  # the plain one


@pytest.mark.parametrize("coding", ["gzip", "deflate", "rawdeflate"])
async def test_accept_gzip_codings(fault_server: FaultServer, coding: str, tmp_path: Path) -> None:
    data = os.urandom(200_000) + bytes(3 * MiB)  # decodes to more than the encoded length
    fault_server.add_file("z.bin", data)
    url = fault_server.url(f"/enc/z.bin?coding={coding}")
    decoded, raw = await gather(
        lambda: run_cli(
            "--http-accept-gzip",
            "-x4",
            "-s4",
            "-k1M",
            "-d",
            tmp_path / "d",
            url,
            home=tmp_path / "h1",
        ),
        lambda: run_cli("-d", tmp_path / "r", url, home=tmp_path / "h2"),
    )
    assert decoded.returncode == 0, decoded
    assert (tmp_path / "d" / "z.bin").read_bytes() == data
    # without the option the body is stored as sent, as aria2 does
    assert raw.returncode == 0, raw
    stored = (tmp_path / "r" / "z.bin").read_bytes()
    assert stored != data and len(stored) < len(data)
    if coding == "gzip":
        assert gzip.decompress(stored) == data
    elif coding == "deflate":
        assert zlib.decompress(stored) == data
    offered = [r.headers.get("accept-encoding") for r in fault_server.requests]
    assert offered.count("deflate, gzip") == 1, offered


async def test_truncated_gzip_body_fails(fault_server: FaultServer, tmp_path: Path) -> None:
    res = await run_cli(
        "--http-accept-gzip", "-d", tmp_path, fault_server.url("/enc/data.bin?coding=gzip&cut=100"),
        home=tmp_path / "h",
    )  # fmt: skip
    # the body ended inside the gzip stream: an error, never a silently short file reported OK
    # (aria2c waits for the missing bytes until --timeout, then exits 2)
    assert res.returncode == ExitCode.HTTP_PROTOCOL_ERROR, res
    assert "ended before its compressed stream" in res.stdout + res.stderr, res


# --- request headers ----------------------------------------------------------------------


async def test_request_headers(fault_server: FaultServer, tmp_path: Path) -> None:
    url = fault_server.url("/ok/data.bin")
    res1, res2 = await gather(
        lambda: run_cli(
            "-U",
            "agent/9",
            "--referer=*",
            "--header=X-One: 1",
            "--header",
            "X-Two:  two ",
            "--http-no-cache",
            "--enable-http-keep-alive=false",
            "-d",
            tmp_path / "a",
            url,
            home=tmp_path / "h1",
        ),
        lambda: run_cli(
            "--referer=http://ref.example/page", "-d", tmp_path / "b", url, home=tmp_path / "h2"
        ),
    )
    assert res1.returncode == 0, res1
    assert res2.returncode == 0, res2
    by_agent = {r.headers.get("user-agent"): r.headers for r in fault_server.requests}
    h1 = by_agent["agent/9"]
    assert h1["referer"] == url
    assert h1["x-one"] == "1" and h1["x-two"] == "two"
    assert h1["cache-control"] == "no-cache" and h1["pragma"] == "no-cache"
    assert h1["connection"] == "close"
    assert "accept-encoding" not in h1 and "authorization" not in h1
    (h2,) = [h for ua, h in by_agent.items() if ua != "agent/9"]
    assert h2["referer"] == "http://ref.example/page"
    assert "cache-control" not in h2 and "pragma" not in h2 and "connection" not in h2


async def test_keep_alive_off_uses_a_connection_per_request(
    nginx: NginxServer, tmp_path: Path
) -> None:
    on, off = unique_name("ka-on"), unique_name("ka-off")
    data_on, data_off = serve_copy(nginx, on, MiB), serve_copy(nginx, off, MiB)
    r_on, r_off = await gather(
        lambda: run_cli("--use-head", "-d", tmp_path, nginx.url(f"/{on}"), home=tmp_path / "h1"),
        lambda: run_cli(
            "--use-head",
            "--enable-http-keep-alive=false",
            "-d",
            tmp_path,
            nginx.url(f"/{off}"),
            home=tmp_path / "h2",
        ),
    )
    assert r_on.returncode == 0 == r_off.returncode, (r_on, r_off)
    assert (tmp_path / on).read_bytes() == data_on
    assert (tmp_path / off).read_bytes() == data_off
    lines_on, lines_off = log_lines(nginx, f"/{on}"), log_lines(nginx, f"/{off}")
    assert [x.method for x in lines_on] == ["HEAD", "GET"], lines_on
    assert [x.method for x in lines_off] == ["HEAD", "GET"], lines_off
    assert lines_on[0].connection == lines_on[1].connection  # HEAD then GET, one connection
    assert lines_off[0].connection != lines_off[1].connection


# --- authentication -----------------------------------------------------------------------


async def test_basic_auth_challenge(fault_server: FaultServer, tmp_path: Path) -> None:
    url = fault_server.url("/auth/data.bin")
    creds = ("--http-user=user", "--http-passwd=pass")
    eager, challenged, wrong, wrong_aria2 = await gather(
        lambda: run_cli(*creds, "-U", "eager", "-d", tmp_path / "e", url, home=tmp_path / "h1"),
        lambda: run_cli(
            *creds,
            "--http-auth-challenge",
            "-U",
            "lazy",
            "-d",
            tmp_path / "c",
            url,
            home=tmp_path / "h2",
        ),
        lambda: run_cli(
            "--http-user=user",
            "--http-passwd=nope",
            "--http-auth-challenge",
            "-d",
            tmp_path / "w",
            url,
            home=tmp_path / "h3",
        ),
        lambda: run_aria2c(
            "--http-user=user",
            "--http-passwd=nope",
            "--http-auth-challenge",
            "-d",
            tmp_path / "w2",
            url,
            home=tmp_path / "h4",
        ),
    )
    data = fault_server.files["data.bin"]
    assert eager.returncode == 0, eager
    assert challenged.returncode == 0, challenged
    assert (tmp_path / "e" / "data.bin").read_bytes() == data
    assert (tmp_path / "c" / "data.bin").read_bytes() == data
    assert wrong.returncode == ExitCode.HTTP_AUTH_FAILED == wrong_aria2.returncode, (
        wrong,
        wrong_aria2,
    )

    def auth_seen(agent: str) -> list[bool]:
        return [
            "authorization" in r.headers
            for r in fault_server.requests
            if r.headers.get("user-agent") == agent
        ]

    assert auth_seen("eager") == [True]  # sent with the first request
    assert auth_seen("lazy") == [False, True]  # only after the 401 challenge


async def test_auth_challenge_against_nginx_matches_aria2c(
    nginx: NginxServer, tmp_path: Path
) -> None:
    url = nginx.url("/protected/secret.txt")
    args = ("--http-user=user", "--http-passwd=pass", "--http-auth-challenge")
    ours, theirs = await gather(
        lambda: run_cli(*args, "-d", tmp_path / "o", url, home=tmp_path / "h1"),
        lambda: run_aria2c(*args, "-d", tmp_path / "a", url, home=tmp_path / "h2"),
    )
    assert ours.returncode == 0 == theirs.returncode, (ours, theirs)
    assert (tmp_path / "o" / "secret.txt").read_bytes() == b"secret content\n"


# --- --use-head, -R, --conditional-get ----------------------------------------------------


async def test_use_head_then_segments(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("head")
    data = serve_copy(nginx, name)
    res = await run_cli(
        "--use-head", "-x4", "-s4", "-k1M", "-d", tmp_path, nginx.url(f"/{name}"),
        home=tmp_path / "h",
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / name).read_bytes() == data
    lines = log_lines(nginx, f"/{name}")
    assert lines[0].method == "HEAD" and lines[0].range == "-", lines
    gets = lines[1:]
    assert gets and all(x.method == "GET" and x.status == 206 for x in gets), lines
    assert len(gets) >= 3, lines


async def test_remote_time(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("mtime")
    data = os.urandom(300_000)
    remote = 1_000_000_000.0  # 2001-09-09
    nginx.add_file(name, data, mtime=remote)
    url = nginx.url(f"/{name}")
    with_r, without, aria2 = await gather(
        lambda: run_cli("-R", "-x2", "-d", tmp_path / "r", url, home=tmp_path / "h1"),
        lambda: run_cli("-d", tmp_path / "n", url, home=tmp_path / "h2"),
        lambda: run_aria2c("-R", "-d", tmp_path / "a", url, home=tmp_path / "h3"),
    )
    assert with_r.returncode == 0 == without.returncode == aria2.returncode
    assert (tmp_path / "r" / name).read_bytes() == data
    assert os.stat(tmp_path / "r" / name).st_mtime == remote
    assert os.stat(tmp_path / "a" / name).st_mtime == remote  # aria2c agrees
    assert abs(os.stat(tmp_path / "n" / name).st_mtime - time.time()) < 120


async def test_remote_time_on_a_gzip_body(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("mtime-gz").replace(".bin", ".txt")  # text/plain: nginx gzips it
    nginx.add_file(name, b"compress me please\n" * 10000, mtime=1_100_000_000.0)
    res = await run_cli(
        "--remote-time=true", "--http-accept-gzip", "-d", tmp_path, nginx.url(f"/{name}"),
        home=tmp_path / "h",
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / name).read_bytes() == b"compress me please\n" * 10000
    assert os.stat(tmp_path / name).st_mtime == 1_100_000_000.0  # the unknown-length path too


async def test_conditional_get(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("cond")
    data = os.urandom(200_000)
    nginx.add_file(name, data, mtime=1_200_000_000.0)
    url = nginx.url(f"/{name}")
    for sub in ("o", "a", "old"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / name).write_bytes(b"local copy")
    # "o" and "a" have the remote file's time (as after -R): 304, nothing downloaded, exit 0
    # (nginx's default "if_modified_since exact" answers 304 only to the exact time)
    for sub in ("o", "a"):
        os.utime(tmp_path / sub / name, (1_200_000_000.0, 1_200_000_000.0))
    os.utime(tmp_path / "old" / name, (1_100_000_000.0, 1_100_000_000.0))  # older
    ours, theirs, newer = await gather(
        lambda: run_cli("--conditional-get", "-d", tmp_path / "o", url, home=tmp_path / "h1"),
        lambda: run_aria2c("--conditional-get", "-d", tmp_path / "a", url, home=tmp_path / "h2"),
        lambda: run_cli(
            "--conditional-get",
            "--allow-overwrite",
            "-d",
            tmp_path / "old",
            url,
            home=tmp_path / "h3",
        ),
    )
    assert ours.returncode == 0 == theirs.returncode, (ours, theirs)
    assert os.listdir(tmp_path / "o") == [name]
    assert (tmp_path / "o" / name).read_bytes() == b"local copy"
    assert (tmp_path / "a" / name).read_bytes() == b"local copy"
    assert newer.returncode == 0, newer
    assert (tmp_path / "old" / name).read_bytes() == data
    statuses = sorted(x.status for x in log_lines(nginx, f"/{name}"))
    assert statuses.count(304) == 2, statuses


async def test_unasked_304_is_a_protocol_error(fault_server: FaultServer, tmp_path: Path) -> None:
    """A 304 answers only a conditional request (RFC 9110 §15.4.5): to a probe that carried no
    ``If-Modified-Since`` (no ``--conditional-get``, or a resumed download) it is an HTTP
    protocol error, as in aria2 ("Got 304 without If-Modified-Since or If-None-Match"), never
    "complete" for the local file of that name (which may be half downloaded)."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "304").write_bytes(b"a partial local copy")
    res = await run_cli("-d", out, fault_server.url("/status/304"), home=tmp_path / "h")
    assert res.returncode == ExitCode.HTTP_PROTOCOL_ERROR, res
    assert "without If-Modified-Since" in res.stdout + res.stderr
    assert (out / "304").read_bytes() == b"a partial local copy"


# --- errors: --max-file-not-found, Retry-After --------------------------------------------


@pytest.mark.parametrize(
    ("extra", "code", "requests"),
    [
        ((), ExitCode.RESOURCE_NOT_FOUND, (1, 1)),
        (("--max-file-not-found=1",), ExitCode.MAX_FILE_NOT_FOUND, (1, 0)),
        (("--max-file-not-found=3",), ExitCode.MAX_FILE_NOT_FOUND, (3, 0)),
        (("--max-file-not-found=3", "-m2"), ExitCode.MAX_FILE_NOT_FOUND, (2, 1)),
        (("--max-file-not-found=5", "-m2"), ExitCode.RESOURCE_NOT_FOUND, (2, 2)),
    ],
)
async def test_max_file_not_found_matches_aria2c(
    nginx: NginxServer,
    tmp_path: Path,
    extra: tuple[str, ...],
    code: ExitCode,
    requests: tuple[int, int],
) -> None:
    tag = os.urandom(4).hex()
    mine = (f"/nf-{tag}-1", f"/nf-{tag}-2")
    theirs = (f"/nf-{tag}-3", f"/nf-{tag}-4")
    ours, aria2 = await gather(
        lambda: run_cli(*extra, "-d", tmp_path / "o", *map(nginx.url, mine), home=tmp_path / "h1"),
        lambda: run_aria2c(
            *extra, "-d", tmp_path / "a", *map(nginx.url, theirs), home=tmp_path / "h2"
        ),
    )
    assert ours.returncode == code, ours
    assert aria2.returncode == code, aria2
    counts = tuple(len(log_lines(nginx, p)) for p in mine)
    assert counts == requests
    assert counts == tuple(len(log_lines(nginx, p)) for p in theirs)  # same requests as aria2c


async def test_503_retry_after_matches_aria2c(fault_server: FaultServer, tmp_path: Path) -> None:
    url = fault_server.url("/503?retry=2")
    ours, theirs = await gather(
        lambda: run_cli("-m2", "-d", tmp_path / "o", url, home=tmp_path / "h1"),
        lambda: run_aria2c(
            "-m2", "--retry-wait=1", "-d", tmp_path / "a", url, home=tmp_path / "h2"
        ),
    )
    assert ours.returncode == ExitCode.HTTP_SERVICE_UNAVAILABLE == theirs.returncode, (ours, theirs)
    assert ours.elapsed >= 2.0, ours  # Retry-After: 2 was honoured between the two tries
    assert fault_server.hits["/503"] == 4  # two tries each
