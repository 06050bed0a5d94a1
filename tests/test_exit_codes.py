"""Exit-status matrix: trioaria and aria2c against the same faults must exit with the same code.

aria2 exits with the code of the last error (aria2 manual, "EXIT STATUS"; ``src/error_code.h``).
Each row below runs ``python -m trioaria`` and the installed ``aria2c --no-conf`` side by side
against one fault and asserts both statuses.  Faults compared elsewhere are not repeated here:

* 404 (3), 401 (24), a redirect loop (23), 500 (22), 503 with ``-m1`` (29):
  ``test_cli_http.py::test_error_status_exit_codes_match_aria2c``;
* a stall mid-body, ``--timeout`` (2): ``test_cli_http.py::test_stall_times_out_like_aria2c``;
* a wrong ``--checksum`` (32): ``test_cli_http.py::test_checksum_ok_and_wrong``;
* an invalid option value or name (28): ``test_cli_http.py::test_invalid_options_exit_28``;
* an untrusted TLS certificate (1):
  ``test_cli_http.py::test_https_untrusted_certificate_fails_like_aria2c``;
* an existing file without renaming (13):
  ``test_cli_storage.py::test_existing_file_renaming_overwrite_and_exit_13``;
* ``--lowest-speed-limit`` (5): ``test_speed_limit.py::test_lowest_speed_limit_like_aria2c``.

Where the two programs knowingly disagree the row is in :data:`DIFFERENCES`, which asserts both
codes explicitly (README, "Where trioaria departs from aria2").

Isolation: the unresolvable-host row runs both programs in a fresh network namespace
(``unshare -n``: only a downed loopback), so no DNS query for ``nonexistent.invalid`` (RFC 6761:
``.invalid`` never resolves) can leave the machine; the disk-full row mounts a 2 MiB tmpfs per
program and unmounts it afterwards.  Both need root, as the CI machines give.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_util import ARIA2C, CliResult, gather, run_process
from tests.servers.fault import FaultServer
from tests.servers.nginx import NginxServer
from trioaria.base.errors import ExitCode

UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"


@dataclass(frozen=True)
class Servers:
    """What a row may point at."""

    nginx: NginxServer
    fault: FaultServer
    refused: str  # a URL whose port is bound but not listening: connection refused


@dataclass(frozen=True)
class Case:
    """One fault: the arguments for both programs and the expected exit status."""

    args: Callable[[Servers], list[str]]
    code: ExitCode
    netns: bool = False  # run both programs in a fresh network namespace


MATRIX: dict[str, Case] = {
    "416-range-not-satisfiable": Case(
        lambda s: [s.fault.url("/416/data.bin")], ExitCode.HTTP_PROTOCOL_ERROR
    ),
    "410-gone": Case(lambda s: [s.nginx.url("/gone")], ExitCode.HTTP_PROTOCOL_ERROR),
    "403-forbidden": Case(lambda s: [s.fault.url("/status/403")], ExitCode.HTTP_PROTOCOL_ERROR),
    "502-bad-gateway": Case(
        lambda s: ["-m2", s.fault.url("/status/502")], ExitCode.HTTP_SERVICE_UNAVAILABLE
    ),
    "504-gateway-timeout": Case(
        lambda s: ["-m2", s.fault.url("/status/504")], ExitCode.HTTP_SERVICE_UNAVAILABLE
    ),
    # default --max-tries=5: trioaria waits Retry-After (1 s) between tries, aria2 does not
    # retry a 503 without --retry-wait; both end with 29
    "503-forever": Case(lambda s: [s.nginx.url("/status503")], ExitCode.HTTP_SERVICE_UNAVAILABLE),
    "redirects-20-is-fine": Case(lambda s: [s.fault.url("/redirect/20")], ExitCode.FINISHED),
    "redirects-21-too-many": Case(
        lambda s: [s.fault.url("/redirect/21")], ExitCode.HTTP_TOO_MANY_REDIRECTS
    ),
    "timeout-waiting-for-head": Case(
        lambda s: ["--timeout=1", "-m1", s.fault.url("/stallhead/data.bin")], ExitCode.TIME_OUT
    ),
    "connection-refused": Case(lambda s: [s.refused], ExitCode.UNKNOWN_ERROR),
    "unresolvable-host": Case(
        lambda s: ["http://nonexistent.invalid/file.bin"], ExitCode.NAME_RESOLVE_ERROR, netns=True
    ),
}

#: Faults where trioaria's status deliberately differs: (args, ours, aria2c's).
DIFFERENCES: dict[str, tuple[Callable[[Servers], list[str]], ExitCode, ExitCode]] = {
    # aria2 throws its "Got EOF" retry exception without an error code, so a server that keeps
    # closing the connection mid-body ends as 1 (unknown); trioaria says what happened: 6.
    "closed-mid-body": (
        lambda s: ["-m3", s.fault.url("/drop/data.bin?after=1000")],
        ExitCode.NETWORK_PROBLEM,
        ExitCode.UNKNOWN_ERROR,
    ),
    "chunked-body-cut": (
        lambda s: ["-m1", s.fault.url("/truncchunk/data.bin")],
        ExitCode.NETWORK_PROBLEM,
        ExitCode.UNKNOWN_ERROR,
    ),
    # a malformed chunk size is a protocol error (22) here, aria2's generic 1
    "bad-chunk-size": (
        lambda s: ["-m1", s.fault.url("/badchunk/data.bin")],
        ExitCode.HTTP_PROTOCOL_ERROR,
        ExitCode.UNKNOWN_ERROR,
    ),
}


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback port that is bound (so nobody else takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/refused.bin"


async def _run(argv: list[str], *, home: Path, netns: bool = False) -> CliResult:
    # unshare --net: a fresh network namespace, so a name lookup can never leave the machine
    return await run_process(argv, home=home, prefix=[UNSHARE, "--net"] if netns else ())


async def _both(
    args: list[str], tmp_path: Path, *, netns: bool = False, dirs: tuple[Path, Path] | None = None
) -> tuple[CliResult, CliResult]:
    ours_dir, theirs_dir = dirs or (tmp_path / "ours", tmp_path / "aria2c")
    ours, theirs = await gather(
        lambda: _run(
            [sys.executable, "-m", "trioaria", "-d", str(ours_dir), *args],
            home=tmp_path / "h1",
            netns=netns,
        ),
        lambda: _run(
            [ARIA2C, "--no-conf", "-d", str(theirs_dir), *args], home=tmp_path / "h2", netns=netns
        ),
    )
    return ours, theirs


@pytest.mark.parametrize("name", list(MATRIX))
async def test_exit_code_matches_aria2c(
    name: str, nginx: NginxServer, fault_server: FaultServer, refused_url: str, tmp_path: Path
) -> None:
    case = MATRIX[name]
    args = case.args(Servers(nginx, fault_server, refused_url))
    ours, theirs = await _both(args, tmp_path, netns=case.netns)
    assert theirs.returncode == case.code, theirs
    assert ours.returncode == case.code, ours
    if case.code != ExitCode.FINISHED:
        assert "Download aborted" in ours.stdout + ours.stderr, ours


@pytest.mark.parametrize("name", list(DIFFERENCES))
async def test_documented_exit_code_differences(
    name: str, nginx: NginxServer, fault_server: FaultServer, refused_url: str, tmp_path: Path
) -> None:
    make_args, ours_code, theirs_code = DIFFERENCES[name]
    args = make_args(Servers(nginx, fault_server, refused_url))
    ours, theirs = await _both(args, tmp_path)
    assert theirs.returncode == theirs_code, theirs
    assert ours.returncode == ours_code, ours


@pytest.fixture
def small_disks(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two 2 MiB tmpfs mounts (one per program), unmounted afterwards."""
    mounts = [tmp_path / "full-ours", tmp_path / "full-aria2c"]
    mounted: list[Path] = []
    try:
        for m in mounts:
            m.mkdir()
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(m)],
                check=True,
                capture_output=True,
            )
            mounted.append(m)
        yield mounts[0], mounts[1]
    finally:
        for m in mounted:
            subprocess.run(["umount", "-l", str(m)], check=False, capture_output=True)


@pytest.mark.parametrize("allocation", ["prealloc", "none"])
async def test_disk_full_is_exit_9_like_aria2c(
    nginx: NginxServer, small_disks: tuple[Path, Path], tmp_path: Path, allocation: str
) -> None:
    # file5m.bin is 5 MiB on a 2 MiB file system: the allocation or a write hits ENOSPC
    args = [f"--file-allocation={allocation}", nginx.url("/file5m.bin")]
    ours, theirs = await _both(args, tmp_path, dirs=small_disks)
    assert theirs.returncode == ExitCode.NOT_ENOUGH_DISK_SPACE, theirs
    assert ours.returncode == ExitCode.NOT_ENOUGH_DISK_SPACE, ours
    assert "No space left on device" in ours.stdout + ours.stderr, ours
    assert os.path.ismount(small_disks[0])
