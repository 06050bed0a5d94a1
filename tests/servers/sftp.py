"""SFTP servers for tests: asyncssh's SFTP server and a private OpenSSH sshd (session fixtures).

Modeled on docs/testing.md and sshd_setup.sh (docs/testing.md).

``sftp_server`` (asyncssh, run as a child process ``python -m tests.servers.sftp``): password
login ``test``/``secret`` and public-key login with :attr:`SftpServer.client_key`; files live
under :attr:`SftpServer.root`, which clients see as ``/`` (chroot).  Reads of files under
``/slow/`` are throttled to ``--slow-rate`` bytes/s per SSH session (2 MiB/s by default) so a test can kill a client
mid-download.  With ``--log`` every authentication, open and read is appended to a log file
(``auth USER METHOD``, ``open CONN PATH``, ``read CONN PATH OFFSET SIZE``), so tests can see
how many SSH connections a download used and which ranges it read.  It listens on 127.0.0.1,
port picked by the OS (``listen(port=0)``), and prints ``PORT <n>`` when ready.  Files under
``/overlong/`` are served by a liar: each READ answer carries 16 bytes more than was asked for.

``sshd`` (OpenSSH ``/usr/sbin/sshd -D -e -f <config>``, not the system service): public-key login
only (``PermitRootLogin prohibit-password``, ``UsePAM no``) with the same client key for the
current user; its own host key, pid file and ``Subsystem sftp internal-sftp``; files are served
by absolute path from :attr:`SshdServer.root`.  Port from :func:`tests.servers.nginx.free_port`,
retried if another process took it first.  Both are stopped by PID when the session ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers.process import stop_process

__all__ = [
    "SFTP_PASSWORD",
    "SFTP_USER",
    "SSHD",
    "SftpServer",
    "SshKeys",
    "SshdServer",
    "make_keys",
    "sftp_server",
    "ssh_keys",
    "sshd",
    "start_sftp_server",
    "start_sshd",
]

SFTP_USER = "test"
SFTP_PASSWORD = "secret"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
_REPO = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class SshKeys:
    """Key files shared by both servers (OpenSSH private-key format, asyncssh-generated)."""

    directory: Path
    host_key: Path  # the servers' host key (private)
    host_key_blob: bytes  # its raw public blob: what --ssh-host-key-md hashes
    host_key_line: str  # "ssh-ed25519 AAAA..." for known_hosts
    client_key: Path  # a client private key both servers accept
    client_pub: Path
    other_key: Path  # a client key no server accepts


def make_keys(directory: Path) -> SshKeys:
    import asyncssh

    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("host_ed25519", "client_ed25519", "other_ed25519"):
        path = directory / name
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(str(path))
        key.write_public_key(str(path) + ".pub")
        os.chmod(path, 0o600)
        paths[name] = (path, key)
    host_path, host_key = paths["host_ed25519"]
    return SshKeys(
        directory=directory,
        host_key=host_path,
        host_key_blob=host_key.public_data,
        host_key_line=host_key.export_public_key().decode().strip(),
        client_key=paths["client_ed25519"][0],
        client_pub=Path(str(paths["client_ed25519"][0]) + ".pub"),
        other_key=paths["other_ed25519"][0],
    )


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> SshKeys:
    return make_keys(tmp_path_factory.mktemp("sshkeys"))


# --- asyncssh SFTP server --------------------------------------------------------------------


@dataclass
class SftpServer:
    """A running asyncssh SFTP server child process."""

    port: int
    root: Path
    keys: SshKeys
    process: subprocess.Popen[bytes]
    log: Path | None
    user: str = SFTP_USER
    password: str = SFTP_PASSWORD
    _files: dict[str, bytes] = field(default_factory=dict)

    def add_file(self, name: str, data: bytes) -> Path:
        """Write ``data`` as ``/name`` (``name`` may contain ``slow/``)."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path

    def url(self, name: str, *, credentials: bool = True, host: str = "127.0.0.1") -> str:
        auth = f"{self.user}:{self.password}@" if credentials else ""
        return f"sftp://{auth}{host}:{self.port}/{name}"

    def log_lines(self) -> list[list[str]]:
        assert self.log is not None
        if not self.log.exists():
            return []
        return [line.split() for line in self.log.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def start_sftp_server(
    root: Path,
    keys: SshKeys,
    *,
    log: Path | None = None,
    slow_rate: int = 2 * 1024 * 1024,
    python: str = sys.executable,
    stderr: Any = None,
) -> SftpServer:
    """Start the asyncssh server as a child process and wait (at most 20 s) for its port."""
    root.mkdir(parents=True, exist_ok=True)
    argv = [
        python,
        "-m",
        "tests.servers.sftp",
        "--root",
        str(root),
        "--host-key",
        str(keys.host_key),
        "--authorized-keys",
        str(keys.client_pub),
        "--slow-rate",
        str(slow_rate),
    ]
    if log is not None:
        argv += ["--log", str(log)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=env
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    line = b""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # the child prints one line as soon as it listens
        if line.startswith(b"PORT ") or not line:
            break
    if not line.startswith(b"PORT "):
        proc.kill()
        proc.wait(timeout=10)
        raise RuntimeError(f"asyncssh SFTP server did not start: {line!r}")
    proc.stdout.close()
    return SftpServer(int(line.split()[1]), root, keys, proc, log)


@pytest.fixture(scope="session")
def sftp_server(
    tmp_path_factory: pytest.TempPathFactory, ssh_keys: SshKeys
) -> Iterator[SftpServer]:
    base = tmp_path_factory.mktemp("sftp")
    with open(base / "stderr.log", "wb") as err:  # asyncio's "socket.send() raised" noise
        server = start_sftp_server(base / "root", ssh_keys, log=base / "server.log", stderr=err)
    try:
        yield server
    finally:
        server.stop()


# --- OpenSSH sshd ----------------------------------------------------------------------------


@dataclass
class SshdServer:
    """A private OpenSSH sshd: key login for :attr:`user`, files by absolute path."""

    port: int
    root: Path
    keys: SshKeys
    process: subprocess.Popen[bytes]
    directory: Path
    user: str

    def add_file(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path

    def url(self, name: str) -> str:
        return f"sftp://{self.user}@127.0.0.1:{self.port}{self.root / name}"

    def stop(self) -> None:
        stop_process(self.process)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as s:
            s.settimeout(1)
            try:
                s.connect(("127.0.0.1", port))
                if s.recv(4).startswith(b"SSH-"):
                    return True
            except OSError:
                pass
        time.sleep(0.05)
    return False


def start_sshd(directory: Path, keys: SshKeys) -> SshdServer:
    from tests.servers.nginx import free_port

    directory.mkdir(parents=True, exist_ok=True)
    root = directory / "files"
    root.mkdir(exist_ok=True)
    authorized = directory / "authorized_keys"
    shutil.copy(keys.client_pub, authorized)
    authorized.chmod(0o600)
    with contextlib.suppress(PermissionError):
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation directory
    last = ""
    for _ in range(5):
        port = free_port()
        config = directory / "sshd_config"
        config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys.host_key}\n"
            f"PidFile {directory / 'sshd.pid'}\nAuthorizedKeysFile {authorized}\n"
            "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nUsePAM no\n"
            "Subsystem sftp internal-sftp\nLogLevel VERBOSE\n"
        )
        log = open(directory / "sshd.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        if _wait_listening(port, proc, 15):
            return SshdServer(port, root, keys, proc, directory, getpass.getuser())
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        last = (directory / "sshd.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"sshd did not start:\n{last}")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory, ssh_keys: SshKeys) -> Iterator[SshdServer]:
    assert os.path.exists(SSHD), "sshd is a required prerequisite (apt-get install openssh-server)"
    server = start_sshd(tmp_path_factory.mktemp("sshd"), ssh_keys)
    try:
        yield server
    finally:
        server.stop()


# --- the asyncssh server process -------------------------------------------------------------


def _serve(args: argparse.Namespace) -> None:
    import asyncssh

    root = os.path.abspath(args.root)
    log_file = open(args.log, "a", buffering=1) if args.log else None  # noqa: SIM115
    counter = iter(range(1, 1 << 62))

    def note(*words: object) -> None:
        if log_file is not None:
            log_file.write(" ".join(map(str, words)) + "\n")

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            ok = username == SFTP_USER and password == SFTP_PASSWORD
            note("auth", username, "password" if ok else "password-refused")
            return ok

        def validate_public_key(self, username: str, key: Any) -> bool:
            return False  # authorized_client_keys decides

        def auth_completed(self) -> None:
            note("auth", "-", "ok")

    class Sftp(asyncssh.SFTPServer):
        def __init__(self, chan: Any) -> None:
            super().__init__(chan, chroot=root.encode())
            self._conn_id = next(counter)
            self._slow: set[int] = set()
            self._overlong: set[int] = set()  # files under /overlong/: each READ answer lies
            self._throttle = asyncio.Lock()  # slow reads are served one at a time per session

        def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
            f = super().open(path, pflags, attrs)
            name = path.decode(errors="replace")
            note("open", self._conn_id, name)
            if "/slow/" in "/" + name.lstrip("/"):
                self._slow.add(id(f))
            if "/overlong/" in "/" + name.lstrip("/"):
                self._overlong.add(id(f))
            return f

        async def read(self, file_obj: Any, offset: int, size: int) -> bytes:
            if id(file_obj) in self._slow:
                async with self._throttle:
                    await asyncio.sleep(size / args.slow_rate)
            got = super().read(file_obj, offset, size)
            data: bytes = await got if asyncio.iscoroutine(got) else got  # type: ignore[assignment]
            note("read", self._conn_id, offset, len(data))
            if data and id(file_obj) in self._overlong:
                return data + b"\xee" * 16  # more than was asked for
            return data

    async def main() -> None:
        server = await asyncssh.listen(
            "127.0.0.1",
            args.port,
            server_factory=Server,
            server_host_keys=[args.host_key],
            authorized_client_keys=args.authorized_keys,
            sftp_factory=Sftp,
            allow_scp=False,
            reuse_port=args.reuse_port,
        )
        port = server.sockets[0].getsockname()[1]
        sys.stdout.write(f"PORT {port}\n")
        sys.stdout.flush()
        await asyncio.Event().wait()

    asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="asyncssh SFTP test server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--root", required=True)
    parser.add_argument("--host-key", required=True)
    parser.add_argument("--authorized-keys")
    parser.add_argument("--slow-rate", type=int, default=2 * 1024 * 1024)
    parser.add_argument("--log")
    parser.add_argument("--reuse-port", action="store_true")
    _serve(parser.parse_args())
