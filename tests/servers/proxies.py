"""Real proxies for the proxy tests: tinyproxy, stunnel in front of it, microsocks, dante, squid.

Each fixture writes its own configuration into a temporary directory, starts the program as a
child on a port the OS picked (bind to 0, close, hand over; retried if taken), waits (bounded)
until the port accepts, and stops it by PID when the session ends (docs/testing.md).

* ``tinyproxy``: HTTP forwarding and ``CONNECT``, Basic auth ``puser:ppass`` (407 without).
* ``tinyproxy_open``: tinyproxy without auth, for the ``CONNECT`` to FTP/SFTP tests.
* ``stunnel_proxy``: stunnel accepting TLS (a certificate of the ``nginx`` fixture's CA for
  ``127.0.0.1``) and passing the plain bytes to ``tinyproxy``: an ``https://`` proxy.
* ``microsocks``: SOCKS5 with user/password ``suser:spass`` (RFC 1929) only.
* ``dante``: SOCKS5 without authentication, and SOCKS4 (dante 1.4 has no SOCKS4a: it takes
  4a's ``0.0.0.1`` for the destination and refuses it).
* ``squid``: HTTP forwarding with Basic auth ``puser:ppass``, and ``ftp://`` fetched for an
  HTTP client.

A missing program skips the tests that need it on a developer's machine; on CI (``CI`` set,
where ``.ci/run`` installs them) it is a failure, as docs/testing.md requires.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from tests.servers.nginx import NginxServer, make_test_pki
from tests.servers.process import stop_process

__all__ = [
    "ProxyServer",
    "dante",
    "microsocks",
    "squid",
    "stunnel_proxy",
    "tinyproxy",
    "tinyproxy_open",
]

USER, PASSWORD = "puser", "ppass"
SOCKS_USER, SOCKS_PASSWORD = "suser", "spass"


@dataclass
class ProxyServer:
    """One running proxy.

    Attributes:
        scheme: the proxy URI scheme to reach it with.
        port: its port on 127.0.0.1.
        log: the file its requests are logged to.
        process: the child.
        ca: for a TLS proxy, the CA that signed its certificate.
    """

    scheme: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]
    ca: Path | None = None

    def uri(self, *, user: str | None = None, password: str | None = None) -> str:
        """``scheme://[user:password@]127.0.0.1:port``."""
        auth = f"{user}:{password}@" if user is not None else ""
        return f"{self.scheme}://{auth}127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def wait_log(self, text: str, *, count: int = 1, timeout: float = 10) -> bool:
        """Wait (bounded) until *text* appears *count* times in the log: squid writes a
        request's line when the transaction ends, which may be just after the client is done."""
        with trio.move_on_after(timeout):
            while self.log_text().count(text) < count:
                await trio.sleep(0.02)
            return True
        return False

    def stop(self) -> None:
        stop_process(self.process, grace=5)


def _require(program: str) -> str:
    path = shutil.which(program) or next(
        (p for p in (f"/usr/sbin/{program}", f"/usr/bin/{program}") if os.path.exists(p)), None
    )
    if path is None:
        # a missing prerequisite is a failure, never a skip (docs/testing.md)
        pytest.fail(f"{program} is not installed (apt-get install it; .ci/run does)")
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(process: subprocess.Popen[bytes], port: int, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # bounded poll: these programs have no ready signal
        if process.poll() is not None:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.02)
    return False


def _start(
    directory: Path, name: str, make_argv: object, *, attempts: int = 5
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``make_argv(port)`` (a callable returning argv) until its port accepts."""
    assert callable(make_argv)
    output = directory / f"{name}.out"
    for _ in range(attempts):
        port = _free_port()
        with open(output, "ab") as out:
            process = subprocess.Popen(
                make_argv(port), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        if _wait_port(process, port):
            return process, port
        stop_process(process, grace=5)
        if "in use" not in output.read_text(errors="replace"):
            break
    raise RuntimeError(f"{name} did not start:\n{output.read_text(errors='replace')[-3000:]}")


def _open_dir(directory: Path) -> None:
    # the proxies drop privileges to nobody/proxy: let them write logs and pid files here
    directory.chmod(0o777)


def start_tinyproxy(directory: Path, *, auth: bool = True) -> ProxyServer:
    program = _require("tinyproxy")
    # no LogFile: in the foreground (-d) tinyproxy logs to its stderr, which is a file opened
    # before it drops to nobody (pytest's temporary directories are closed to other users)
    log = directory / "tinyproxy.out"

    def argv(port: int) -> list[str]:
        conf = directory / "tinyproxy.conf"
        lines = [
            f"Port {port}",
            "Listen 127.0.0.1",
            "Timeout 30",
            "LogLevel Info",
            "MaxClients 50",
            "Allow 127.0.0.1",
        ]
        if os.geteuid() == 0:
            lines[:0] = ["User nobody", "Group nogroup"]
        if auth:
            lines.append(f"BasicAuth {USER} {PASSWORD}")
        conf.write_text("\n".join(lines) + "\n")
        return [program, "-d", "-c", str(conf)]

    process, port = _start(directory, "tinyproxy", argv)
    return ProxyServer("http", port, log, process)


def start_stunnel(
    directory: Path, backend: ProxyServer, pki: dict[str, Path] | None = None
) -> ProxyServer:
    """stunnel: TLS on its port, plain bytes to *backend*; *pki* (``make_test_pki``'s
    files) default: a fresh CA.  The certificate names ``127.0.0.1`` and ``localhost``."""
    program = _require("stunnel4")
    pki = pki or make_test_pki(directory / "pki")
    log = directory / "stunnel.log"

    def argv(port: int) -> list[str]:
        conf = directory / "stunnel.conf"
        conf.write_text(
            "\n".join(
                [
                    "foreground = yes",
                    f"pid = {directory / 'stunnel.pid'}",
                    f"output = {log}",
                    "debug = info",
                    "[proxy]",
                    f"accept = 127.0.0.1:{port}",
                    f"connect = 127.0.0.1:{backend.port}",
                    f"cert = {pki['server_cert']}",
                    f"key = {pki['server_key']}",
                ]
            )
            + "\n"
        )
        return [program, str(conf)]

    process, port = _start(directory, "stunnel", argv)
    return ProxyServer("https", port, log, process, ca=pki["ca"])


def start_microsocks(directory: Path) -> ProxyServer:
    program = _require("microsocks")
    log = directory / "microsocks.out"

    def argv(port: int) -> list[str]:
        return [program, "-i", "127.0.0.1", "-p", str(port), "-u", SOCKS_USER, "-P", SOCKS_PASSWORD]

    process, port = _start(directory, "microsocks", argv)
    return ProxyServer("socks5", port, log, process)


def start_dante(directory: Path) -> ProxyServer:
    program = _require("danted")
    _open_dir(directory)
    log = directory / "danted.log"

    def argv(port: int) -> list[str]:
        conf = directory / "danted.conf"
        conf.write_text(
            "\n".join(
                [
                    f"logoutput: {log}",
                    f"internal: 127.0.0.1 port = {port}",
                    "external: 127.0.0.1",
                    "socksmethod: none",
                    "clientmethod: none",
                    "user.privileged: root",
                    "user.unprivileged: nobody",
                    "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 log: connect disconnect error }",
                    "socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 log: connect disconnect error }",
                ]
            )
            + "\n"
        )
        return [program, "-f", str(conf), "-p", str(directory / "danted.pid"), "-N", "1"]

    process, port = _start(directory, "danted", argv)
    return ProxyServer("socks5", port, log, process)


def start_squid(directory: Path) -> ProxyServer:
    program = _require("squid")
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    _open_dir(directory)
    digest = subprocess.run(
        [openssl, "passwd", "-apr1", PASSWORD], capture_output=True, check=True, text=True
    ).stdout.strip()
    (directory / "passwd").write_text(f"{USER}:{digest}\n")
    (directory / "passwd").chmod(0o644)
    log = directory / "access.log"
    log.touch()
    log.chmod(0o666)

    def argv(port: int) -> list[str]:
        conf = directory / "squid.conf"
        conf.write_text(
            "\n".join(
                [
                    f"http_port 127.0.0.1:{port}",
                    f"pid_filename {directory / 'squid.pid'}",
                    f"access_log stdio:{log}",
                    f"cache_log {directory / 'cache.log'}",
                    "cache_store_log none",
                    f"coredump_dir {directory}",
                    "cache deny all",
                    "cache_mem 8 MB",
                    "shutdown_lifetime 1 seconds",
                    "pinger_enable off",
                    "icp_port 0",
                    "htcp_port 0",
                    "dns_nameservers 127.0.0.1",
                    "udp_incoming_address 127.0.0.1",
                    f"auth_param basic program /usr/lib/squid/basic_ncsa_auth {directory / 'passwd'}",
                    "auth_param basic realm trioaria-tests",
                    "acl authed proxy_auth REQUIRED",
                    "acl localnet src 127.0.0.0/8",
                    "http_access allow localnet authed",
                    "http_access deny all",
                ]
            )
            + "\n"
        )
        return [program, "-N", "-f", str(conf)]

    process, port = _start(directory, "squid", argv)
    return ProxyServer("http", port, log, process)


def _session(factory: object, tmp: pytest.TempPathFactory, name: str) -> Iterator[ProxyServer]:
    """Run ``factory(directory)`` for the session.  The directory is a fresh one under the
    system's temporary directory, not pytest's: pytest's are closed to other users, and
    squid and tinyproxy drop root for ``proxy``/``nobody`` before opening their files."""
    assert callable(factory)
    del tmp  # kept in the signature so every fixture asks for a temporary directory
    directory = Path(tempfile.mkdtemp(prefix=f"trioaria-{name}-"))
    _open_dir(directory)
    server: ProxyServer | None = None
    try:
        server = factory(directory)
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    """tinyproxy with Basic auth ``puser:ppass``."""
    yield from _session(start_tinyproxy, tmp_path_factory, "tinyproxy")


@pytest.fixture(scope="session")
def tinyproxy_open(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    """tinyproxy without authentication."""
    yield from _session(
        lambda d: start_tinyproxy(d, auth=False), tmp_path_factory, "tinyproxy-open"
    )


@pytest.fixture(scope="session")
def stunnel_proxy(
    tmp_path_factory: pytest.TempPathFactory, tinyproxy: ProxyServer, nginx: NginxServer
) -> Iterator[ProxyServer]:
    """An ``https://`` proxy: stunnel (TLS) in front of ``tinyproxy``, with a certificate of
    the ``nginx`` fixture's CA (so one ``--ca-certificate`` trusts the proxy and the origin)."""
    yield from _session(
        lambda d: start_stunnel(d, tinyproxy, nginx.pki), tmp_path_factory, "stunnel"
    )


@pytest.fixture(scope="session")
def microsocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    """microsocks: SOCKS5 with user/password ``suser:spass`` only."""
    yield from _session(start_microsocks, tmp_path_factory, "microsocks")


@pytest.fixture(scope="session")
def dante(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    """dante: SOCKS5 without authentication, and SOCKS4."""
    yield from _session(start_dante, tmp_path_factory, "dante")


@pytest.fixture(scope="session")
def squid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    """squid with Basic auth ``puser:ppass``; fetches ftp:// for HTTP clients."""
    yield from _session(start_squid, tmp_path_factory, "squid")
