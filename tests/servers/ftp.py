"""FTP servers for the tests: pyftpdlib (plain and explicit TLS) and vsftpd, on 127.0.0.1 or ::1.

Both run as child processes with OS-assigned ports and log every command, so a test can count
``REST`` commands and control connections:

* :func:`start_pyftpdlib` runs this file as a script (``python -m tests.servers.ftp ROOT LOG
  [--tls CERT KEY]``).  User ``test``/``secret`` (read-only) and anonymous share ROOT; with
  ``--tls`` the handler is ``TLS_FTPHandler`` (``AUTH TLS``, RFC 4217).  The DEBUG log has
  one ``<- COMMAND`` / ``-> reply`` line per exchange, prefixed ``ip:port-[user]``.
* :func:`start_vsftpd` writes a config after ``docs/testing.md (anonymous,
  read-only, ``log_ftp_protocol``) with ``listen_port`` from a free port and, optionally,
  implicit or explicit TLS with ``require_ssl_reuse=YES``.  vsftpd's anon root must be owned
  by root and not writable, so the files live in a directory of their own.
* Both take ``host="::1"`` to listen on IPv6 loopback only (vsftpd ``listen_ipv6=YES``,
  ``listen_address6=::1``): clients then need ``EPSV``/``EPRT`` (RFC 2428).

Fixtures: ``ftp_server`` (function scope: a fresh log per test), ``ftps_server``
(pyftpdlib with TLS; session scope), ``vsftpd_server`` (session scope).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.process import stop_process

__all__ = [
    "FtpServer",
    "ftp_server",
    "ftps_server",
    "start_pyftpdlib",
    "start_vsftpd",
    "vsftpd_server",
]

_REPO = Path(__file__).resolve().parents[2]
VSFTPD = shutil.which("vsftpd") or "/usr/sbin/vsftpd"


@dataclass
class FtpServer:
    """A running FTP server child."""

    port: int
    root: Path
    log: Path
    process: subprocess.Popen[bytes]
    kind: str = "pyftpdlib"
    extra: dict[str, Path] = field(default_factory=dict)
    host: str = "127.0.0.1"

    def url(self, name: str, *, scheme: str = "ftp", userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{at}{host}:{self.port}/{name}"

    def add_file(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, 0o644)
        return path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def commands(self, verb: str) -> list[str]:
        """Arguments of every logged ``verb`` command (pyftpdlib ``<- VERB arg``, vsftpd
        ``FTP command: Client "...", "VERB arg"``)."""
        out = []
        for m in re.finditer(rf'(?:<- |, "){verb}(?: ([^"\n]*))?"?$', self.log_text(), re.M):
            out.append(m.group(1) or "")
        return out

    def sessions(self) -> int:
        """Control connections the server accepted."""
        text = self.log_text()
        if self.kind == "vsftpd":
            return len(re.findall(r"CONNECT: Client", text))
        return len(re.findall(r"FTP session opened \(connect\)", text))

    def stop(self) -> None:
        stop_process(self.process)


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ipv6_loopback_available() -> bool:
    """Whether ``::1`` can be bound here (containers without IPv6 cannot)."""
    try:
        _free_port("::1")
    except OSError:
        return False
    return True


def start_pyftpdlib(
    directory: Path,
    *,
    tls: tuple[Path, Path] | None = None,
    throttle: int = 0,
    host: str = "127.0.0.1",
) -> FtpServer:
    """Start pyftpdlib serving ``directory/root``; wait until it listens.

    Args:
        tls: ``(cert, key)``: explicit TLS required on control and data connections.
        throttle: bytes/s per data connection (pyftpdlib ``ThrottledDTPHandler``); 0: none.
        host: the address to listen on (``"::1"``: IPv6 only).
    """
    root = directory / "root"
    root.mkdir(parents=True, exist_ok=True)
    log = directory / "ftp.log"
    port_file = directory / "port"
    port_file.unlink(missing_ok=True)
    args = [sys.executable, "-m", "tests.servers.ftp", str(root), str(log), str(port_file)]
    if tls is not None:
        args += ["--tls", str(tls[0]), str(tls[1])]
    if throttle:
        args += ["--throttle", str(throttle)]
    args += ["--host", host]
    env = dict(os.environ, PYTHONPATH=str(_REPO))
    with open(directory / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, cwd=_REPO, env=env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            return FtpServer(int(port_file.read_text()), root, log, proc, host=host)
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"pyftpdlib did not start: {(directory / 'stderr.txt').read_text()}")


_VSFTPD_CONF = """\
{listen}
listen_port={port}
background=NO
anonymous_enable=YES
anon_root={root}
no_anon_password=YES
local_enable=NO
write_enable=NO
secure_chroot_dir={empty}
pasv_enable=YES
{pasv_address}pasv_min_port={pasv_lo}
pasv_max_port={pasv_hi}
port_enable=YES
connect_from_port_20=NO
xferlog_enable=YES
vsftpd_log_file={log}
dual_log_enable=YES
syslog_enable=NO
seccomp_sandbox=NO
log_ftp_protocol=YES
max_per_ip=0
"""

_VSFTPD_TLS = """\
ssl_enable=YES
allow_anon_ssl=YES
force_anon_logins_ssl=YES
force_anon_data_ssl=YES
rsa_cert_file={cert}
rsa_private_key_file={key}
require_ssl_reuse=YES
ssl_tlsv1=YES
ssl_sslv2=NO
ssl_sslv3=NO
implicit_ssl={implicit}
"""


def start_vsftpd(
    directory: Path,
    *,
    tls: tuple[Path, Path] | None = None,
    implicit: bool = False,
    host: str = "127.0.0.1",
) -> FtpServer:
    """Start vsftpd (anonymous, read-only) on a free port of *host*; wait until it accepts."""
    root = directory / "pub"
    empty = directory / "empty"
    root.mkdir(parents=True, exist_ok=True)
    empty.mkdir(parents=True, exist_ok=True)
    for d in (directory, root, empty):
        os.chmod(d, 0o755)
    log = directory / "vsftpd.log"
    v6 = ":" in host
    port = _free_port(host)
    pasv_lo = _free_port(host)
    conf = _VSFTPD_CONF.format(
        listen=(
            f"listen=NO\nlisten_ipv6=YES\nlisten_address6={host}"
            if v6
            else f"listen=YES\nlisten_ipv6=NO\nlisten_address={host}"
        ),
        pasv_address="" if v6 else f"pasv_address={host}\n",
        port=port,
        root=root,
        empty=empty,
        log=log,
        pasv_lo=max(1024, pasv_lo - 20),
        pasv_hi=min(65535, pasv_lo + 20),
    )
    if tls is not None:
        conf += _VSFTPD_TLS.format(cert=tls[0], key=tls[1], implicit="YES" if implicit else "NO")
    conf_path = directory / "vsftpd.conf"
    conf_path.write_text(conf)
    os.chmod(conf_path, 0o600)
    with open(directory / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(
            [VSFTPD, str(conf_path)], stdout=subprocess.DEVNULL, stderr=err, cwd=directory
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection((host, port), timeout=1):
                pass
        except OSError:
            time.sleep(0.05)
            continue
        return FtpServer(port, root, log, proc, kind="vsftpd", host=host)
    proc.kill()
    raise RuntimeError(f"vsftpd did not start: {(directory / 'stderr.txt').read_text()}")


def _pki(directory: Path) -> dict[str, Path]:
    from tests.servers.nginx import make_test_pki

    return make_test_pki(directory)


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[FtpServer]:
    server = start_pyftpdlib(tmp_path / "ftpd")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ftps_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpServer]:
    base = tmp_path_factory.mktemp("ftps")
    pki = _pki(base / "pki")
    server = start_pyftpdlib(base / "ftpd", tls=(pki["server_cert"], pki["server_key"]))
    server.extra = pki
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def vsftpd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpServer]:
    server = start_vsftpd(tmp_path_factory.mktemp("vsftpd"))
    try:
        yield server
    finally:
        server.stop()


# --- the pyftpdlib child -------------------------------------------------------------------


def _serve(argv: list[str]) -> None:  # pragma: no cover - runs in the child
    import logging

    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, ThrottledDTPHandler, TLS_FTPHandler
    from pyftpdlib.servers import FTPServer

    root, log_path, port_file = argv[:3]
    logging.basicConfig(level=logging.DEBUG, filename=log_path, format="%(message)s", force=True)
    auth = DummyAuthorizer()
    auth.add_user("test", "secret", root, perm="elr")
    auth.add_anonymous(root)
    handler: type[FTPHandler]
    if "--tls" in argv:
        i = argv.index("--tls")
        handler = TLS_FTPHandler
        handler.certfile = argv[i + 1]
        handler.keyfile = argv[i + 2]
        handler.tls_control_required = True
        handler.tls_data_required = True
    else:
        handler = FTPHandler
    if "--throttle" in argv:
        dtp = ThrottledDTPHandler
        dtp.write_limit = int(argv[argv.index("--throttle") + 1])
        handler.dtp_handler = dtp
    handler.authorizer = auth
    handler.permit_foreign_addresses = False
    host = argv[argv.index("--host") + 1] if "--host" in argv else "127.0.0.1"
    server = FTPServer((host, 0), handler)
    Path(port_file + ".tmp").write_text(str(server.address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":  # pragma: no cover
    _serve(sys.argv[1:])
