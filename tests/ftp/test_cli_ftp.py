"""End-to-end FTP/FTPS downloads with the real CLI against pyftpdlib (and aria2c for exit codes).

Each test gets a fresh pyftpdlib child (``ftp_server``: its own command log), so the log tells
exactly how many control connections and ``REST`` commands one run used.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

from tests.cli_util import run_aria2c, run_cli
from tests.e2e_util import completed_at, make_payload, start_trioaria, wait_for
from tests.servers.ftp import FtpServer, start_pyftpdlib
from trioaria.base.errors import ExitCode

MiB = 1 << 20
AUTH = ("--ftp-user=test", "--ftp-passwd=secret")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_segmented_passive_download_is_byte_exact_with_rest(
    ftp_server: FtpServer, tmp_path: Path
) -> None:
    data = make_payload(6 * MiB + 12345, seed=1)
    ftp_server.add_file("seg.bin", data)
    res = await run_cli(
        "-x4", "-s4", "-k1M", *AUTH, "-d", tmp_path, ftp_server.url("seg.bin"), home=tmp_path
    )
    assert res.returncode == 0, res
    assert (tmp_path / "seg.bin").read_bytes() == data
    rests = [int(x) for x in ftp_server.commands("REST")]
    assert len([r for r in rests if r > 0]) >= 3, ftp_server.log_text()[-3000:]
    assert ftp_server.commands("EPSV"), "passive mode uses EPSV first"
    assert not ftp_server.commands("PORT") and not ftp_server.commands("EPRT")
    assert not (tmp_path / "seg.bin.aria2").exists()


async def test_active_mode_port(ftp_server: FtpServer, tmp_path: Path) -> None:
    data = make_payload(3 * MiB, seed=2)
    ftp_server.add_file("act.bin", data)
    res = await run_cli(
        "--ftp-pasv=false", "-x2", "-s2", "-k1M", *AUTH, "-d", tmp_path,
        ftp_server.url("act.bin"), home=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "act.bin").read_bytes() == data
    assert ftp_server.commands("PORT"), ftp_server.log_text()[-2000:]
    assert not ftp_server.commands("EPSV") and not ftp_server.commands("PASV")


async def test_url_credentials_and_remote_time(ftp_server: FtpServer, tmp_path: Path) -> None:
    data = make_payload(200_000, seed=3)
    path = ftp_server.add_file("dir one/rt.bin", data)
    stamp = 1_500_000_000
    os.utime(path, (stamp, stamp))
    url = f"ftp://test:secret@127.0.0.1:{ftp_server.port}/dir%20one/rt.bin"
    res = await run_cli("-R", "-d", tmp_path, url, home=tmp_path)
    assert res.returncode == 0, res
    out = tmp_path / "rt.bin"
    assert out.read_bytes() == data
    assert int(out.stat().st_mtime) == stamp
    assert ftp_server.commands("USER") == ["test"]
    assert ftp_server.commands("MDTM") == ["rt.bin"]


async def test_reuse_one_control_connection_for_ten_files(
    ftp_server: FtpServer, tmp_path: Path
) -> None:
    payloads = {f"f{i}.bin": make_payload(50_000 + i * 1000, seed=10 + i) for i in range(10)}
    for name, data in payloads.items():
        ftp_server.add_file(name, data)
    (tmp_path / "list.txt").write_text("".join(ftp_server.url(n) + "\n" for n in payloads))
    res = await run_cli(
        "-j1", *AUTH, "-d", tmp_path / "out", "-i", tmp_path / "list.txt", home=tmp_path
    )
    assert res.returncode == 0, res
    for name, data in payloads.items():
        assert (tmp_path / "out" / name).read_bytes() == data
    assert ftp_server.sessions() == 1, ftp_server.log_text()[-3000:]
    assert len(ftp_server.commands("USER")) == 1
    assert len(ftp_server.commands("RETR")) == 10


async def test_no_reuse_opens_a_connection_per_file(ftp_server: FtpServer, tmp_path: Path) -> None:
    for i in range(3):
        ftp_server.add_file(f"n{i}.bin", b"x" * 1000)
    (tmp_path / "list.txt").write_text(
        "".join(ftp_server.url(f"n{i}.bin") + "\n" for i in range(3))
    )
    res = await run_cli(
        "-j1", "--ftp-reuse-connection=false", *AUTH, "-d", tmp_path / "out",
        "-i", tmp_path / "list.txt", home=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res
    assert ftp_server.sessions() == 3


async def test_missing_file_is_exit_3_like_aria2c(ftp_server: FtpServer, tmp_path: Path) -> None:
    url = ftp_server.url("nope.bin")
    ours = await run_cli(*AUTH, "-d", tmp_path / "a", url, home=tmp_path)
    theirs = await run_aria2c(*AUTH, "-d", tmp_path / "b", url, home=tmp_path)
    assert ours.returncode == ExitCode.RESOURCE_NOT_FOUND == theirs.returncode, (ours, theirs)


async def test_bad_password_is_exit_21_like_aria2c(ftp_server: FtpServer, tmp_path: Path) -> None:
    ftp_server.add_file("pw.bin", b"x" * 100)
    url = ftp_server.url("pw.bin")
    args = ("--ftp-user=test", "--ftp-passwd=wrong", "-m2")
    ours = await run_cli(*args, "-d", tmp_path / "a", url, home=tmp_path)
    theirs = await run_aria2c(*args, "-d", tmp_path / "b", url, home=tmp_path)
    assert ours.returncode == ExitCode.FTP_PROTOCOL_ERROR == theirs.returncode, (ours, theirs)
    # a refused login is not retried: one USER per run
    assert len(ftp_server.commands("USER")) == 2


async def test_netrc_is_used_and_refused_when_group_readable(
    ftp_server: FtpServer, tmp_path: Path
) -> None:
    ftp_server.add_file("nr.bin", b"netrc" * 1000)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1\n  login test\n  password secret\n")
    os.chmod(netrc, 0o600)
    url = ftp_server.url("nr.bin")
    res = await run_cli(f"--netrc-path={netrc}", "-d", tmp_path / "a", url, home=tmp_path)
    assert res.returncode == 0, res
    assert ftp_server.commands("USER") == ["test"]
    os.chmod(netrc, 0o644)
    res = await run_cli(f"--netrc-path={netrc}", "-d", tmp_path / "b", url, home=tmp_path)
    assert res.returncode == 0, res  # anonymous may read too
    assert ftp_server.commands("USER") == ["test", "anonymous"]
    assert "does not have correct permissions" in res.stdout + res.stderr
    os.chmod(netrc, 0o600)
    res = await run_cli("-n", f"--netrc-path={netrc}", "-d", tmp_path / "c", url, home=tmp_path)
    assert res.returncode == 0, res
    assert ftp_server.commands("USER")[-1] == "anonymous"


def test_resume_after_kill_9(tmp_path: Path) -> None:
    # a server sending 2 MiB/s per data connection: the first run is killed mid-way
    slow = start_pyftpdlib(tmp_path / "ftpd", throttle=2 * MiB)
    try:
        data = make_payload(12 * MiB, seed=4)
        slow.add_file("big.bin", data)
        url = slow.url("big.bin")
        common = ["-x2", "-s2", "-k1M", *AUTH, "-d", str(tmp_path), "--show-console-readout=false"]
        child = start_trioaria([*common, url], tmp_path / "run1", "first")
        control = tmp_path / "big.bin.aria2"
        try:
            assert wait_for(lambda: completed_at(control) >= 2 * MiB, 30), child.describe()
        finally:
            child.signal(signal.SIGKILL)
            child.kill()
        done_before = completed_at(control)
        assert 0 < done_before < len(data)
        n_rest = len(slow.commands("REST"))
        second = start_trioaria(["-c", *common, url], tmp_path / "run2", "second")
        assert second.wait(60) == 0, second.describe()
        assert _sha((tmp_path / "big.bin").read_bytes()) == _sha(data)
        later = [int(x) for x in slow.commands("REST")[n_rest:]]
        assert later and min(later) > 0, later  # the second run never restarted from byte 0
    finally:
        slow.stop()


async def test_changed_size_between_runs_is_exit_8(tmp_path: Path) -> None:
    slow = start_pyftpdlib(tmp_path / "ftpd", throttle=MiB)
    try:
        data = make_payload(6 * MiB, seed=5)
        slow.add_file("chg.bin", data)
        url = slow.url("chg.bin")
        child = start_trioaria(["-x1", *AUTH, "-d", str(tmp_path), url], tmp_path / "run", "part")
        control = tmp_path / "chg.bin.aria2"
        try:
            assert wait_for(lambda: completed_at(control) > 0, 30), child.describe()
        finally:
            child.kill()
        slow.add_file("chg.bin", data + b"more")
        res = await run_cli("-c", *AUTH, "-d", tmp_path, url, home=tmp_path)
        assert res.returncode == ExitCode.CANNOT_RESUME, res
        # (aria2c 1.36 reports this control-file length mismatch as exit 1; docs/decisions.md: 8)
    finally:
        slow.stop()


async def test_ftpes_explicit_tls(ftps_server: FtpServer, tmp_path: Path) -> None:
    data = make_payload(3 * MiB + 7, seed=6)
    ftps_server.add_file("tls.bin", data)
    url = ftps_server.url("tls.bin", scheme="ftpes")
    ca = ftps_server.extra["ca"]
    res = await run_cli(
        "-x2", "-s2", "-k1M", *AUTH, f"--ca-certificate={ca}", "-d", tmp_path, url, home=tmp_path
    )
    assert res.returncode == 0, res
    assert (tmp_path / "tls.bin").read_bytes() == data
    # without the CA the certificate is not trusted: exit 1, as an HTTPS handshake failure
    res = await run_cli("-m1", *AUTH, "-d", tmp_path / "x", url, home=tmp_path)
    assert res.returncode == ExitCode.UNKNOWN_ERROR, res
    assert "certificate" in (res.stdout + res.stderr).lower()
    # plain FTP to a server that demands TLS is refused by the server
    start = time.monotonic()
    res = await run_cli(
        "-m1", *AUTH, "-d", tmp_path / "y", ftps_server.url("tls.bin"), home=tmp_path
    )
    assert res.returncode == ExitCode.FTP_PROTOCOL_ERROR, res
    assert time.monotonic() - start < 30
