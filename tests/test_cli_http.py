"""End-to-end tests of the ``trioaria`` command over HTTP(S) against real nginx and the fault server.

Every test runs the real CLI in a subprocess (``python -m trioaria``), then checks the result
file byte for byte and the exit status, which must be aria2's (``trioaria.base.errors.ExitCode``;
aria2 manual "EXIT STATUS").  Where aria2c behaves the same way against the same fault, the
test runs the installed aria2c too and asserts the two exit statuses are equal.

Each test serves its own uniquely named file (``nginx.add_file``) so the shared nginx access
log can be filtered per test; independent invocations run concurrently in a trio nursery.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
import trio

from tests.cli_util import (
    LogLine,
    MiB,
    gather,
    log_lines,
    run_aria2c,
    run_cli,
    serve_copy,
    unique_name,
)
from tests.servers.fault import FaultServer
from tests.servers.nginx import NginxServer
from trioaria.base.errors import ExitCode


def _range_starts(lines: list[LogLine]) -> list[int]:
    starts = []
    for line in lines:
        m = re.match(r"bytes=(\d+)-", line.range)
        if m:
            starts.append(int(m.group(1)))
    return starts


# --- segmented downloads and mirrors -----------------------------------------------------


async def test_segmented_x4_uses_several_ranges(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("seg")
    data = serve_copy(nginx, name)
    res = await run_cli(
        "-x4", "-s4", "-k1M", "-d", tmp_path / "out", nginx.url(f"/{name}"), home=tmp_path
    )
    assert res.returncode == ExitCode.FINISHED, res
    assert (tmp_path / "out" / name).read_bytes() == data
    assert not (tmp_path / "out" / f"{name}.aria2").exists()
    lines = log_lines(nginx, f"/{name}")
    assert all(line.status == 206 for line in lines), lines
    assert len(set(_range_starts(lines))) >= 3, lines  # several distinct ranges, not one stream


async def test_fan_out_requests_exact_ranges(nginx: NginxServer, tmp_path: Path) -> None:
    """The connections that start after the probe claim their segments before any request goes
    out, so each asks for exactly its segment (docs/performance.md "Exact ranges"); before, the
    first asked for half the file, the next for a quarter, and later claims split them."""
    name = unique_name("exact")
    size = 8 * MiB
    data = serve_copy(nginx, name, size)
    path = f"/rate/8192k/{name}"  # paced, so the fan-out is over long before the probe ends
    res = await run_cli(
        "-x4", "-s4", "-k1M", "-d", tmp_path / "out", nginx.url(path), home=tmp_path
    )
    assert res.returncode == ExitCode.FINISHED, res
    assert (tmp_path / "out" / name).read_bytes() == data
    fan_out: dict[int, str] = {}
    for _ in range(100):  # nginx logs a request when it ends: bounded wait for the three lines
        fan_out = {
            start: line.range
            for line in log_lines(nginx, path)
            for start in _range_starts([line])
            if start in (2 * MiB, 4 * MiB, 6 * MiB)
        }
        if len(fan_out) == 3:
            break
        await trio.sleep(0.05)
    assert fan_out == {
        start: f"bytes={start}-{start + 2 * MiB - 1}" for start in (2 * MiB, 4 * MiB, 6 * MiB)
    }


async def test_connection_counts(nginx: NginxServer, tmp_path: Path) -> None:
    one, many = unique_name("one"), unique_name("x16")
    data_one, data_many = serve_copy(nginx, one), serve_copy(nginx, many)
    r1, r16 = await gather(
        lambda: run_cli("-d", tmp_path / "a", nginx.url(f"/{one}"), home=tmp_path / "h1"),
        lambda: run_cli(
            "-x16",
            "-s16",
            "-k1M",
            "-d",
            tmp_path / "b",
            nginx.url(f"/{many}"),
            home=tmp_path / "h2",
        ),
    )
    assert r1.returncode == 0, r1
    assert r16.returncode == 0, r16
    assert (tmp_path / "a" / one).read_bytes() == data_one
    assert (tmp_path / "b" / many).read_bytes() == data_many
    # default -x1 -s5: one connection, one request
    single = log_lines(nginx, f"/{one}")
    assert len(single) == 1 and single[0].body_bytes == len(data_one), single
    assert len({line.connection for line in log_lines(nginx, f"/{many}")}) >= 3


async def test_two_mirrors_are_both_used(nginx: NginxServer, tmp_path: Path) -> None:
    a, b = unique_name("mirror-a"), unique_name("mirror-b")
    data = os.urandom(5_000_000)
    nginx.add_file(a, data)
    nginx.add_file(b, data)
    res = await run_cli(
        "-x2", "-s4", "-k1M", "-d", tmp_path, "-o", "m.bin",
        nginx.url(f"/{a}"), nginx.url6(f"/{b}"),
        home=tmp_path / "h",
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "m.bin").read_bytes() == data
    assert log_lines(nginx, f"/{a}"), "first mirror unused"
    assert log_lines(nginx, f"/{b}"), "second mirror unused"


@pytest.mark.parametrize("selector", ["inorder", "random", "geom", "default"])
async def test_stream_piece_selector(nginx: NginxServer, tmp_path: Path, selector: str) -> None:
    name = unique_name(f"sel-{selector}")
    data = serve_copy(nginx, name)
    res = await run_cli(
        "-x4", "-s4", "-k1M", f"--stream-piece-selector={selector}", "-d", tmp_path,
        nginx.url(f"/{name}"),
        home=tmp_path / "h",
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / name).read_bytes() == data
    assert len(log_lines(nginx, f"/{name}")) >= 2


# --- HTTPS and IPv6 ------------------------------------------------------------------------


async def test_https_with_ca_certificate(nginx: NginxServer, tmp_path: Path) -> None:
    expected = (nginx.root / "file1m.bin").read_bytes()
    ok, insecure, v6 = await gather(
        lambda: run_cli(
            f"--ca-certificate={nginx.ca_cert}",
            "-d",
            tmp_path / "a",
            nginx.https_url("/file1m.bin"),
            home=tmp_path / "h1",
        ),
        lambda: run_cli(
            "--check-certificate=false",
            "-d",
            tmp_path / "b",
            nginx.https_url("/file1m.bin"),
            home=tmp_path / "h2",
        ),
        lambda: run_cli(
            f"--ca-certificate={nginx.ca_cert}",
            "-d",
            tmp_path / "c",
            nginx.https_url6("/file1m.bin"),
            home=tmp_path / "h3",
        ),
    )
    for res, sub in ((ok, "a"), (insecure, "b"), (v6, "c")):
        assert res.returncode == 0, res
        assert (tmp_path / sub / "file1m.bin").read_bytes() == expected


async def test_https_untrusted_certificate_fails_like_aria2c(
    nginx: NginxServer, tmp_path: Path
) -> None:
    url = nginx.https_url("/file1m.bin")
    ours, theirs = await gather(
        lambda: run_cli("-d", tmp_path / "a", url, home=tmp_path / "h1"),
        lambda: run_aria2c("-d", tmp_path / "b", url, home=tmp_path / "h2"),
    )
    assert ours.returncode != 0, ours
    assert "certificate" in ours.stderr + ours.stdout, ours
    assert not (tmp_path / "a" / "file1m.bin").exists()
    assert ours.returncode == theirs.returncode == ExitCode.UNKNOWN_ERROR, (ours, theirs)


async def test_ipv6_literal(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("v6")
    data = serve_copy(nginx, name, 2 * MiB)
    res = await run_cli(
        "-x2", "-s2", "-k1M", "-d", tmp_path, nginx.url6(f"/{name}"), home=tmp_path / "h"
    )
    assert nginx.url6("/").startswith("http://[::1]:")
    assert res.returncode == 0, res
    assert (tmp_path / name).read_bytes() == data


# --- status codes, redirects, framing -------------------------------------------------------


@pytest.mark.parametrize("path", ["/redirect", "/redirect301"])
async def test_redirect_followed(nginx: NginxServer, tmp_path: Path, path: str) -> None:
    url = nginx.url(path)
    ours, theirs = await gather(
        lambda: run_cli("-d", tmp_path / "a", url, home=tmp_path / "h1"),
        lambda: run_aria2c("-d", tmp_path / "b", url, home=tmp_path / "h2"),
    )
    assert ours.returncode == theirs.returncode == 0, (ours, theirs)
    expected = (nginx.root / "file1m.bin").read_bytes()
    # aria2 names the file after the final URL of the redirect chain
    assert sorted(os.listdir(tmp_path / "b")) == ["file1m.bin"]
    assert sorted(os.listdir(tmp_path / "a")) == ["file1m.bin"], os.listdir(tmp_path / "a")
    assert (tmp_path / "a" / "file1m.bin").read_bytes() == expected


@pytest.mark.parametrize(
    ("path", "extra", "code"),
    [
        ("/loop", (), ExitCode.HTTP_TOO_MANY_REDIRECTS),
        ("/no-such-file.bin", (), ExitCode.RESOURCE_NOT_FOUND),
        ("/status503", ("-m1",), ExitCode.HTTP_SERVICE_UNAVAILABLE),
        ("/protected/secret.txt", (), ExitCode.HTTP_AUTH_FAILED),
        ("/status500", ("-m1",), ExitCode.HTTP_PROTOCOL_ERROR),
    ],
)
async def test_error_status_exit_codes_match_aria2c(
    nginx: NginxServer, tmp_path: Path, path: str, extra: tuple[str, ...], code: ExitCode
) -> None:
    url = nginx.url(path)
    ours, theirs = await gather(
        lambda: run_cli(*extra, "-d", tmp_path / "a", url, home=tmp_path / "h1"),
        lambda: run_aria2c(*extra, "-d", tmp_path / "b", url, home=tmp_path / "h2"),
    )
    assert ours.returncode == code, ours
    assert theirs.returncode == code, theirs
    leftovers = (
        [p for p in (tmp_path / "a").glob("*") if p.stat().st_size]
        if (tmp_path / "a").exists()
        else []
    )
    assert not leftovers, leftovers


async def test_503_retry_after_is_honoured(nginx: NginxServer, tmp_path: Path) -> None:
    res = await run_cli("-m2", "-d", tmp_path, nginx.url("/status503"), home=tmp_path / "h")
    assert res.returncode == ExitCode.HTTP_SERVICE_UNAVAILABLE, res
    assert res.elapsed >= 1.0, res  # Retry-After: 1 between the two tries
    assert len(log_lines(nginx, "/status503")) >= 2


async def test_basic_auth_credentials(nginx: NginxServer, tmp_path: Path) -> None:
    res = await run_cli(
        "--http-user=user", "--http-passwd=pass", "-d", tmp_path,
        nginx.url("/protected/secret.txt"), home=tmp_path / "h",
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "secret.txt").read_bytes() == b"secret content\n"


async def test_chunked_and_content_disposition(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("chunk")
    data = serve_copy(nginx, name, 3 * MiB + 17)
    chunked, cd = await gather(
        lambda: run_cli(
            "-x4", "-s4", "-d", tmp_path / "a", nginx.url(f"/chunked/{name}"), home=tmp_path / "h1"
        ),
        lambda: run_cli("-d", tmp_path / "b", nginx.url(f"/cd/{name}"), home=tmp_path / "h2"),
    )
    assert chunked.returncode == 0, chunked
    assert (tmp_path / "a" / name).read_bytes() == data
    assert cd.returncode == 0, cd
    assert os.listdir(tmp_path / "b") == ["renamed.bin"]
    assert (tmp_path / "b" / "renamed.bin").read_bytes() == data


# --- the fault server ----------------------------------------------------------------------


def _fault_data(fault_server: FaultServer, name: str, size: int) -> bytes:
    data = os.urandom(size)
    fault_server.add_file(name, data)
    return data


async def test_drop_mid_body_is_retried_and_completes(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    data = _fault_data(fault_server, "d.bin", MiB)
    res = await run_cli(
        "-d", tmp_path, fault_server.url("/drop/d.bin?after=300000"), home=tmp_path / "h"
    )
    assert res.returncode == 0, res
    assert (tmp_path / "d.bin").read_bytes() == data
    reqs = [r for r in fault_server.requests if r.target.startswith("/drop/")]
    assert len(reqs) >= 4, reqs  # each connection delivers only 300000 bytes
    starts = sorted(int(r.headers["range"][6:].split("-")[0]) for r in reqs if "range" in r.headers)
    assert starts[0] == 0 and starts[-1] > 2 * 300000 - 16384, starts  # resumed, not restarted


async def test_rst_mid_body_with_mirror(fault_server: FaultServer, tmp_path: Path) -> None:
    res = await run_cli(
        "-d", tmp_path, "-o", "r.bin",
        fault_server.url("/rst/data.bin?after=100000"), fault_server.url("/ok/data.bin"),
        home=tmp_path / "h",
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "r.bin").read_bytes() == fault_server.files["data.bin"]


async def test_stall_times_out_like_aria2c(fault_server: FaultServer, tmp_path: Path) -> None:
    url = fault_server.url("/stall/data.bin?after=1000")
    ours1, ours2, theirs = await gather(
        lambda: run_cli("--timeout=2", "-m1", "-d", tmp_path / "a", url, home=tmp_path / "h1"),
        lambda: run_cli("--timeout=2", "-m2", "-d", tmp_path / "b", url, home=tmp_path / "h2"),
        lambda: run_aria2c("--timeout=2", "-m1", "-d", tmp_path / "c", url, home=tmp_path / "h3"),
    )
    assert ours1.returncode == theirs.returncode == ExitCode.TIME_OUT, (ours1, theirs)
    assert ours2.returncode == ExitCode.TIME_OUT, ours2
    assert 2 <= ours1.elapsed < 15, ours1
    assert 4 <= ours2.elapsed < 20, ours2  # -m2: timed out twice
    # the partial data is kept with a control file, as aria2 does
    assert (tmp_path / "a" / "data.bin.aria2").exists()


async def test_stall_then_other_mirror_completes(fault_server: FaultServer, tmp_path: Path) -> None:
    res = await run_cli(
        "--timeout=1", "-m1", "-d", tmp_path, "-o", "s.bin",
        fault_server.url("/stall/data.bin?after=5000"), fault_server.url("/ok/data.bin"),
        home=tmp_path / "h",
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "s.bin").read_bytes() == fault_server.files["data.bin"]


async def test_lying_content_range_is_never_written(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    data = _fault_data(fault_server, "lie.bin", 3 * MiB)
    target = tmp_path / "lie.bin"
    res = await run_cli(
        "-x4",
        "-s4",
        "-k1M",
        "-d",
        tmp_path,
        fault_server.url("/liecr/lie.bin"),
        home=tmp_path / "h",
    )
    assert res.returncode == ExitCode.CANNOT_RESUME, res  # aria2: a wrong Content-Range is exit 8
    assert "Content-Range" in res.stdout + res.stderr, res
    if target.exists():  # whatever was kept holds no shifted byte
        got = target.read_bytes()
        for i in range(0, len(got), 16384):
            block = got[i : i + 16384]
            assert block == data[i : i + len(block)] or not any(block), f"corrupt block at {i}"


async def test_lying_content_range_on_one_mirror(fault_server: FaultServer, tmp_path: Path) -> None:
    data = _fault_data(fault_server, "lie2.bin", 3 * MiB)
    res = await run_cli(
        "-x4", "-s4", "-k1M", "-d", tmp_path, "-o", "lie2.bin",
        fault_server.url("/ok/lie2.bin"), fault_server.url("/liecr/lie2.bin"),
        home=tmp_path / "h",
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "lie2.bin").read_bytes() == data


async def test_length_change_between_requests(fault_server: FaultServer, tmp_path: Path) -> None:
    _fault_data(fault_server, "grow.bin", 3 * MiB)
    res = await run_cli(
        "-x4",
        "-s4",
        "-k1M",
        "-d",
        tmp_path,
        fault_server.url("/growing/grow.bin"),
        home=tmp_path / "h",
    )
    assert res.returncode == ExitCode.CANNOT_RESUME, res


async def test_range_ignored_single_connection(fault_server: FaultServer, tmp_path: Path) -> None:
    data = _fault_data(fault_server, "nr.bin", 3 * MiB)
    res = await run_cli(
        "-x4",
        "-s4",
        "-k1M",
        "-d",
        tmp_path,
        fault_server.url("/norange/nr.bin"),
        home=tmp_path / "h",
    )
    assert res.returncode == 0, res
    assert (tmp_path / "nr.bin").read_bytes() == data
    assert fault_server.hits["/norange/nr.bin"] == 1, fault_server.requests


async def test_truncated_chunked_body_is_an_error(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    res = await run_cli(
        "-m1", "-d", tmp_path, fault_server.url("/truncchunk/data.bin"), home=tmp_path / "h"
    )
    assert res.returncode == ExitCode.NETWORK_PROBLEM, res
    assert "chunk" in res.stdout + res.stderr, res
    assert "(OK)" not in res.stdout.split("Status Legend")[0], res


async def test_max_tries_and_retry_wait(fault_server: FaultServer, tmp_path: Path) -> None:
    # A server that sends a few bytes and stalls makes no progress: every try counts.
    stall = fault_server.url("/stall/data.bin?after=1000")
    # A 503 without Retry-After is retried after --retry-wait (aria2 retries 503 only then).
    busy = fault_server.url("/503?retry=0")
    m3, waited, theirs = await gather(
        lambda: run_cli("--timeout=1", "-m3", "-d", tmp_path / "a", stall, home=tmp_path / "h1"),
        lambda: run_cli(
            "--max-tries=3", "--retry-wait=1", "-d", tmp_path / "b", busy, home=tmp_path / "h2"
        ),
        lambda: run_aria2c(
            "--max-tries=3",
            "--retry-wait=1",
            "-d",
            tmp_path / "c",
            busy + "&who=aria2c",
            home=tmp_path / "h3",
        ),
    )
    assert m3.returncode == ExitCode.TIME_OUT, m3
    assert 3 <= m3.elapsed < 20, m3
    assert waited.returncode == theirs.returncode == ExitCode.HTTP_SERVICE_UNAVAILABLE, (
        waited,
        theirs,
    )
    assert waited.elapsed >= 2.0, waited  # two waits of --retry-wait between three tries
    targets = [r.target for r in fault_server.requests]
    assert targets.count("/stall/data.bin?after=1000") == 3, targets
    assert targets.count("/503?retry=0") == 3, targets
    assert targets.count("/503?retry=0&who=aria2c") == 3, targets  # same count as aria2c


async def test_max_tries_bounds_dropped_connections(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    res = await run_cli(
        "-m3", "-d", tmp_path, fault_server.url("/drop/data.bin?after=1000"), home=tmp_path / "h"
    )
    assert res.returncode == ExitCode.NETWORK_PROBLEM, res
    assert fault_server.hits["/drop/data.bin"] == 3, fault_server.requests


# --- checksums ------------------------------------------------------------------------------


async def test_checksum_ok_and_wrong(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("sum")
    data = serve_copy(nginx, name, 2 * MiB)
    good = hashlib.sha256(data).hexdigest()
    bad = hashlib.sha256(b"other").hexdigest()
    url = nginx.url(f"/{name}")
    ok, wrong, theirs = await gather(
        lambda: run_cli(
            "-x2",
            "-s2",
            f"--checksum=sha-256={good}",
            "-d",
            tmp_path / "a",
            url,
            home=tmp_path / "h1",
        ),
        lambda: run_cli(
            f"--checksum=sha-256={bad}", "-d", tmp_path / "b", url, home=tmp_path / "h2"
        ),
        lambda: run_aria2c(
            f"--checksum=sha-256={bad}", "-d", tmp_path / "c", url, home=tmp_path / "h3"
        ),
    )
    assert ok.returncode == 0, ok
    assert (tmp_path / "a" / name).read_bytes() == data
    assert wrong.returncode == theirs.returncode == ExitCode.CHECKSUM_ERROR, (wrong, theirs)


async def test_check_integrity_on_complete_file_downloads_nothing(
    nginx: NginxServer, tmp_path: Path
) -> None:
    name = unique_name("verify")
    data = serve_copy(nginx, name, 2 * MiB)
    target = tmp_path / name
    target.write_bytes(data)
    os.utime(target, (1_000_000_000, 1_000_000_000))
    before = target.stat()
    res = await run_cli(
        "-V", f"--checksum=sha-256={hashlib.sha256(data).hexdigest()}", "-d", tmp_path,
        nginx.url(f"/{name}"), home=tmp_path / "h",
    )  # fmt: skip
    assert res.returncode == 0, res
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten
    assert target.read_bytes() == data
    assert not (tmp_path / f"{name}.aria2").exists()
    assert not (tmp_path / f"{name[:-4]}.1.bin").exists()
    # Like aria2c, one request learns the length; no ranged segment requests follow.
    assert len(log_lines(nginx, f"/{name}")) <= 1


# --- options, version, help, quiet ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("--max-tries=abc",), "max-tries"),
        (("--file-allocation=bogus",), "file-allocation"),
        (("-x", "0"), "max-connection-per-server"),
        (("--split=-3",), "split"),
        (("--no-such-option",), "no-such-option"),
    ],
)
async def test_invalid_options_exit_28(tmp_path: Path, args: tuple[str, ...], option: str) -> None:
    url = "http://127.0.0.1:9/never-fetched.bin"
    ours, theirs = await gather(
        lambda: run_cli(*args, "-d", tmp_path, url, home=tmp_path / "h1"),
        lambda: run_aria2c(*args, "-d", tmp_path, url, home=tmp_path / "h2"),
    )
    assert ours.returncode == ExitCode.OPTION_ERROR, ours
    assert theirs.returncode == ExitCode.OPTION_ERROR, theirs
    assert any(option in line for line in (ours.stderr + ours.stdout).splitlines()), ours
    assert not any(tmp_path.glob("*.bin"))


async def test_version_help_and_quiet(nginx: NginxServer, tmp_path: Path) -> None:
    version, short, helped, quiet = await gather(
        lambda: run_cli("--version", home=tmp_path / "h1"),
        lambda: run_cli("-v", home=tmp_path / "h2"),
        lambda: run_cli("-h", home=tmp_path / "h3"),
        lambda: run_cli("-q", "-d", tmp_path / "q", nginx.url("/file1m.bin"), home=tmp_path / "h4"),
    )
    assert version.returncode == 0, version
    assert version.stdout.startswith("trioaria version "), version
    assert short.stdout == version.stdout
    assert helped.returncode == 0, helped
    assert "Usage:" in helped.stdout and "--max-connection-per-server" in helped.stdout, helped
    assert quiet.returncode == 0, quiet
    assert (quiet.stdout, quiet.stderr) == ("", ""), quiet
    assert (tmp_path / "q" / "file1m.bin").read_bytes() == (nginx.root / "file1m.bin").read_bytes()


async def test_quiet_error_prints_nothing(tmp_path: Path) -> None:
    res = await run_cli("-q", "-d", tmp_path, "http://127.0.0.1:9/refused.bin", home=tmp_path / "h")
    assert res.returncode != 0, res
    assert (res.stdout, res.stderr) == ("", ""), res


async def test_no_uri_is_an_error(tmp_path: Path) -> None:
    ours, theirs = await gather(
        lambda: run_cli(home=tmp_path / "h1"),
        lambda: run_aria2c(home=tmp_path / "h2"),
    )
    assert ours.returncode == theirs.returncode == ExitCode.UNKNOWN_ERROR, (ours, theirs)
    assert "URI" in ours.stdout + ours.stderr or "URL" in ours.stdout + ours.stderr, ours
