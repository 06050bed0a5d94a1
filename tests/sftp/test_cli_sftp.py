"""End-to-end ``trioaria sftp://...`` against the asyncssh SFTP server and OpenSSH's sshd, with
aria2c (password login only) run against the same server for the exit-status comparisons."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import trio

from tests.cli_util import gather, run_aria2c, run_cli
from tests.e2e_util import block_done, read_control, start_trioaria, wait_for
from tests.servers.sftp import SftpServer, SshdServer, SshKeys
from trioaria.base.errors import ExitCode

MiB = 1 << 20


def _name(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}.bin"


def _connections(server: SftpServer, name: str, since: int = 0) -> set[str]:
    return {
        line[1]
        for line in server.log_lines()[since:]
        if line[0] == "open" and line[2].endswith(name)
    }


async def test_segmented_password_download_is_byte_exact(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    name = _name("seg")
    data = os.urandom(8 * MiB + 4321)
    sftp_server.add_file(name, data)
    res = await run_cli(
        "-x4", "-s4", "-k1M", "-d", tmp_path / "out", sftp_server.url(name), home=tmp_path
    )
    assert res.returncode == ExitCode.FINISHED, res
    assert (tmp_path / "out" / name).read_bytes() == data
    assert not (tmp_path / "out" / f"{name}.aria2").exists()
    assert len(_connections(sftp_server, name)) >= 3  # several SSH sessions, as aria2 -x4
    assert "not in known_hosts" in res.stdout + res.stderr  # unknown host: accepted, warned


async def test_openssh_sshd_with_key(sshd: SshdServer, ssh_keys: SshKeys, tmp_path: Path) -> None:
    name = _name("sshd")
    data = os.urandom(5 * MiB + 17)
    sshd.add_file(name, data)
    pin = hashlib.sha1(ssh_keys.host_key_blob).hexdigest()
    res = await run_cli(
        "-x3", "-s3", "-k1M", "-d", tmp_path / "out",
        f"--ssh-private-key={ssh_keys.client_key}", f"--ssh-host-key-md=sha-1={pin}",
        sshd.url(name), home=tmp_path,
    )  # fmt: skip
    assert res.returncode == ExitCode.FINISHED, res
    assert (tmp_path / "out" / name).read_bytes() == data
    # ~/.ssh/id_ed25519 is tried when no key is given
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519").write_bytes(ssh_keys.client_key.read_bytes())
    (tmp_path / ".ssh" / "id_ed25519").chmod(0o600)
    res = await run_cli("-d", tmp_path / "out2", sshd.url(name), home=tmp_path)
    assert res.returncode == ExitCode.FINISHED, res
    assert (tmp_path / "out2" / name).read_bytes() == data


async def test_wrong_pinned_host_key_writes_nothing(
    sftp_server: SftpServer, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    name = _name("pin")
    sftp_server.add_file(name, b"p" * 100_000)
    wrong = "sha-1=" + "0" * 40
    log_mark = len(sftp_server.log_lines())
    ours, theirs = await gather(
        lambda: run_cli("-d", tmp_path / "ours", f"--ssh-host-key-md={wrong}", sftp_server.url(name), home=tmp_path / "h1"),
        lambda: run_aria2c("-d", tmp_path / "theirs", f"--ssh-host-key-md={wrong}", sftp_server.url(name), home=tmp_path / "h2"),
    )  # fmt: skip
    assert ours.returncode == theirs.returncode == ExitCode.UNKNOWN_ERROR, (ours, theirs)
    actual = hashlib.sha1(ssh_keys.host_key_blob).hexdigest()
    msg = f"unexpected SSH host key: expected {wrong}, actual sha-1={actual}"
    assert sum(msg in line for line in (ours.stdout + ours.stderr).splitlines()) == 1, ours
    assert not (tmp_path / "ours").exists() or not any((tmp_path / "ours").iterdir())
    # the key exchange failed before any credential was sent (by either client)
    assert not [x for x in sftp_server.log_lines()[log_mark:] if x[0] == "auth"]


async def test_exit_codes_match_aria2c(sftp_server: SftpServer, tmp_path: Path) -> None:
    name = _name("codes")
    sftp_server.add_file(name, b"c" * 1000)
    cases = {
        "wrong-password": [sftp_server.url(name).replace(":secret@", ":wrong@")],
        "wrong-option-password": [
            "--ftp-user=test", "--ftp-passwd=wrong", sftp_server.url(name, credentials=False)
        ],
        "missing-file": [sftp_server.url("missing-" + name)],
        "ok": [sftp_server.url(name)],
    }  # fmt: skip
    calls = []
    for case, args in cases.items():
        for tool, run in (("ours", run_cli), ("aria2c", run_aria2c)):
            out = tmp_path / case / tool
            calls.append(
                lambda run=run, args=args, out=out: run(
                    "-m2", "--retry-wait=0", "-d", out, *args, home=out
                )
            )
    results = await gather(*calls)
    for i, case in enumerate(cases):
        ours, theirs = results[2 * i], results[2 * i + 1]
        assert ours.returncode == theirs.returncode, (case, ours, theirs)
        if case != "ok":
            assert ours.returncode == ExitCode.UNKNOWN_ERROR, (case, ours)
            assert not (tmp_path / case / "ours" / name).exists()
    assert (tmp_path / "ok" / "ours" / name).read_bytes() == b"c" * 1000


async def test_resume_after_kill_9_fetches_only_the_missing_blocks(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    name = "slow/" + _name("resume")
    base = name.rpartition("/")[2]
    data = os.urandom(8 * MiB)  # 2 sessions at 2 MiB/s each: about 2 s in all
    sftp_server.add_file(name, data)
    out = tmp_path / "out"
    args = ["-x2", "-s2", "-k1M", "--auto-save-interval=1", "-d", str(out), sftp_server.url(name)]
    control_path = out / f"{base}.aria2"

    def committed() -> int:
        c = read_control(control_path)
        return (
            0 if c is None else sum(1 for off in range(0, len(data), 16384) if block_done(c, off))
        )

    child = start_trioaria(args, tmp_path, "first")
    try:
        assert await trio.to_thread.run_sync(lambda: wait_for(lambda: committed() >= 64, 20)), (
            child.describe()
        )
        child.kill()  # SIGKILL: no chance to save anything more
    finally:
        child.kill()
    control = read_control(control_path)
    assert control is not None
    done_blocks = committed()
    assert 0 < done_blocks < len(data) // 16384
    log_mark = len(sftp_server.log_lines())
    res = await run_cli("-c", *args, home=tmp_path, timeout=60)
    assert res.returncode == ExitCode.FINISHED, res
    assert (out / base).read_bytes() == data
    assert not control_path.exists()
    conns = _connections(sftp_server, base, log_mark)
    reads = [
        (int(x[2]), int(x[3]))
        for x in sftp_server.log_lines()[log_mark:]
        if x[0] == "read" and x[1] in conns
    ]
    assert reads
    for offset, _size in reads:  # no read starts in a block the control file had
        assert not block_done(control, offset), (offset, reads)
    fetched = sum(size for _, size in reads)
    assert fetched <= len(data) - done_blocks * 16384 + 2 * MiB, (fetched, done_blocks)
