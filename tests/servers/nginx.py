"""A real nginx for HTTP/HTTPS tests (session-scoped fixture ``nginx``).

Modeled on docs/testing.md  Everything lives in a temporary directory:
generated files, a throw-away CA (EC keys, made with the ``openssl`` CLI) that signs a server
certificate (SAN ``localhost``, ``127.0.0.1``, ``::1``) and a client certificate, the config
and logs.  nginx listens on 127.0.0.1 and ::1, on ports the OS picked (bind to 0, close, hand
to nginx; retried on EADDRINUSE), and is stopped by PID when the session ends.

Endpoints (``http`` and ``https``; see :data:`ENDPOINTS`)::

    /file1m.bin /file5m.bin /text.txt /empty.bin   static: Range, ETag, Last-Modified, HEAD
    /protected/secret.txt      basic auth user:pass (401 without)
    /redirect /redirect301 /redirect303 /redirect307 /redirect-https   one redirect to file1m.bin
    /loop                      302 to itself forever
    /chunked/<file>            identity body sent with Transfer-Encoding: chunked
    /slow/<file>               limit_rate 100k
    /rate/<N>k/<file>          limit_rate N KiB/s per connection (e.g. /rate/512k/file5m.bin)
    /nokeepalive/<file>        keepalive_timeout 0 (connection closed after the response)
    /cd/<file>                 Content-Disposition: attachment; filename="renamed.bin"
    /status500 /status503 /gone   500; 503 with Retry-After: 1; 410
    /conn                      body is nginx's $connection serial (keep-alive checks)
    /clientcert/<file>         403 unless a client certificate signed by the test CA was sent

``add_file(name, data)`` writes (or replaces) a file under the root; replacing bumps the
mtime so ETag and Last-Modified change even within one second.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.process import stop_process

__all__ = ["ENDPOINTS", "NginxServer", "free_port", "make_test_pki", "nginx", "start_nginx"]

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

ENDPOINTS = (
    "/file1m.bin",
    "/file5m.bin",
    "/text.txt",
    "/empty.bin",
    "/protected/secret.txt",
    "/redirect",
    "/redirect301",
    "/redirect303",
    "/redirect307",
    "/redirect-https",
    "/loop",
    "/chunked/<file>",
    "/slow/<file>",
    "/rate/<N>k/<file>",
    "/nokeepalive/<file>",
    "/cd/<file>",
    "/status500",
    "/status503",
    "/gone",
    "/conn",
    "/clientcert/<file>",
)


def free_port() -> int:
    """A TCP port free on both 127.0.0.1 and ::1 right now (the OS picks it)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s6.bind(("::1", 0))
            port = int(s6.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s4:
                try:
                    s4.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no port free on both 127.0.0.1 and ::1")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(
        [OPENSSL, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def make_test_pki(directory: Path) -> dict[str, Path]:
    """Create a test CA, a server certificate and a client certificate in *directory*.

    Returns:
        Paths: ``ca`` (CA cert PEM), ``server_cert``, ``server_key``, ``client_cert``,
        ``client_key``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
        "-subj", "/CN=trioaria test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    for name, cn, usage, san in (
        ("server", "localhost", "serverAuth", "DNS:localhost,IP:127.0.0.1,IP:::1"),
        ("client", "trioaria test client", "clientAuth", "DNS:client.invalid"),
    ):
        (directory / f"{name}.ext").write_text(
            f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
            f"keyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n"
        )
        _openssl(
            "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
            cwd=directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "30", "-extfile", f"{name}.ext",
            cwd=directory,
        )  # fmt: skip
    return {
        "ca": directory / "ca.pem",
        "server_cert": directory / "server.pem",
        "server_key": directory / "server.key",
        "client_cert": directory / "client.pem",
        "client_key": directory / "client.key",
    }


_CONF = """\
daemon off;
worker_processes 1;
{user}
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
  types {{ application/octet-stream bin; text/plain txt; }}
  default_type application/octet-stream;
  log_format conn '$connection $connection_requests "$request" $status $body_bytes_sent "$http_range" "$http_user_agent"';
  access_log {d}/logs/access.log conn;
  client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fcgi; uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;
  sendfile on; tcp_nopush on;
  keepalive_requests 100000; keepalive_timeout 65;
  server {{
    listen 127.0.0.1:{hp}; listen [::1]:{hp};
    listen 127.0.0.1:{sp} ssl; listen [::1]:{sp} ssl;
    server_name localhost;
    ssl_certificate {server_cert}; ssl_certificate_key {server_key};
    ssl_client_certificate {ca}; ssl_verify_client optional;
    root {root};
    gzip on; gzip_types text/plain; gzip_min_length 100;
    location /protected/ {{ auth_basic "test"; auth_basic_user_file {d}/htpasswd; }}
    location = /redirect {{ return 302 /file1m.bin; }}
    location = /redirect301 {{ return 301 http://127.0.0.1:{hp}/file1m.bin; }}
    location = /redirect303 {{ return 303 /file1m.bin; }}
    location = /redirect307 {{ return 307 /file1m.bin; }}
    location = /redirect-https {{ return 302 https://127.0.0.1:{sp}/file1m.bin; }}
    location = /loop {{ return 302 /loop; }}
    # sub_filter forces chunked encoding; it matches case-insensitively, so the pattern has
    # no letters (a letter pattern rewrote 'ZZZz' to 'zzzz' in random bodies, ~2 % of runs).
    location /chunked/ {{
      alias {root}/; gzip off;
      sub_filter_types *; sub_filter '1234' '1234'; sub_filter_once off;
    }}
    location /slow/ {{ alias {root}/; limit_rate 100k; }}
    location ~ ^/rate/(?<rate>[0-9]+)k/(?<rfile>.+)$ {{
      alias {root}/$rfile; set $limit_rate ${{rate}}k;
    }}
    location /nokeepalive/ {{ alias {root}/; keepalive_timeout 0; }}
    location /cd/ {{
      alias {root}/;
      add_header Content-Disposition 'attachment; filename="renamed.bin"';
    }}
    location = /status500 {{ return 500; }}
    location = /status503 {{ add_header Retry-After 1 always; return 503; }}
    location = /gone {{ return 410; }}
    location = /conn {{ default_type text/plain; return 200 "$connection\\n"; }}
    location /clientcert/ {{
      alias {root}/;
      if ($ssl_client_verify != SUCCESS) {{ return 403; }}
    }}
  }}
}}
"""


@dataclass
class NginxServer:
    """A running nginx; see the module docstring for its endpoints."""

    directory: Path
    port: int
    https_port: int
    pki: dict[str, Path]
    process: subprocess.Popen[bytes] | None = None
    _mtimes: dict[str, float] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The document root (``www``)."""
        return self.directory / "www"

    @property
    def ca_cert(self) -> Path:
        """PEM of the CA that signed the server and client certificates."""
        return self.pki["ca"]

    @property
    def client_cert(self) -> Path:
        return self.pki["client_cert"]

    @property
    def client_key(self) -> Path:
        return self.pki["client_key"]

    @property
    def access_log(self) -> Path:
        """Access log; each line: ``$connection $connection_requests "$request" $status
        $body_bytes_sent "$http_range" "$http_user_agent"`` (written when a request
        completes, or when a connection is aborted)."""
        return self.directory / "logs" / "access.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def https_url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.https_port}{path}"

    def url6(self, path: str = "/") -> str:
        return f"http://[::1]:{self.port}{path}"

    def https_url6(self, path: str = "/") -> str:
        return f"https://[::1]:{self.https_port}{path}"

    def add_file(self, name: str, data: bytes, *, mtime: float | None = None) -> Path:
        """Write *data* to ``root/name`` atomically; a replaced file always gets a newer
        mtime (so ETag/Last-Modified change).  Returns the path."""
        path = self.root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        previous = self._mtimes.get(str(path))
        if mtime is None:
            mtime = time.time()
            if previous is not None and int(mtime) <= int(previous):
                mtime = int(previous) + 1.0
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
        self._mtimes[str(path)] = mtime
        return path

    def stop(self) -> None:
        """Stop nginx (SIGTERM to its PID, then SIGKILL after 10 s)."""
        stop_process(self.process)


def _write_content(root: Path) -> None:
    (root / "protected").mkdir(parents=True, exist_ok=True)
    (root / "file1m.bin").write_bytes(os.urandom(1 << 20))
    (root / "file5m.bin").write_bytes(os.urandom(5_000_000))
    (root / "text.txt").write_bytes(b"hello aria2 clone, this is compressible text\n" * 4500)
    (root / "empty.bin").write_bytes(b"")
    (root / "protected" / "secret.txt").write_bytes(b"secret content\n")


def _wait_ready(server: NginxServer, deadline: float) -> bool:
    assert server.process is not None
    targets = [
        (socket.AF_INET, ("127.0.0.1", server.port)),
        (socket.AF_INET, ("127.0.0.1", server.https_port)),
        (socket.AF_INET6, ("::1", server.port)),
        (socket.AF_INET6, ("::1", server.https_port)),
    ]
    while time.monotonic() < deadline:  # bounded poll: nginx has no readiness signal
        if server.process.poll() is not None:
            return False
        ok = True
        for family, address in targets:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                try:
                    s.connect(address)
                except OSError:
                    ok = False
                    break
        if ok:
            return True
        time.sleep(0.02)
    return False


def start_nginx(directory: Path, *, attempts: int = 5) -> NginxServer:
    """Create content, PKI and config under *directory* and start nginx.

    Raises:
        RuntimeError: nginx did not come up (the error log is in the message).
    """
    for sub in ("www", "logs", "tmp"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    _write_content(directory / "www")
    pki = make_test_pki(directory / "pki")
    (directory / "htpasswd").write_text("user:{PLAIN}pass\n")
    user = "user root root;" if os.geteuid() == 0 else ""
    error = ""
    for _ in range(attempts):
        http_port = free_port()
        https_port = free_port()
        if https_port == http_port:
            continue
        conf = directory / "nginx.conf"
        conf.write_text(
            _CONF.format(
                d=directory,
                user=user,
                hp=http_port,
                sp=https_port,
                root=directory / "www",
                server_cert=pki["server_cert"],
                server_key=pki["server_key"],
                ca=pki["ca"],
            )
        )
        with open(directory / "logs" / "stderr.log", "ab") as errfile:
            process = subprocess.Popen(
                [
                    NGINX,
                    "-p",
                    f"{directory}/",
                    "-c",
                    str(conf),
                    "-e",
                    str(directory / "logs" / "error.log"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=errfile,
                stdin=subprocess.DEVNULL,
            )
        server = NginxServer(directory, http_port, https_port, pki, process)
        if _wait_ready(server, time.monotonic() + 15):
            return server
        server.stop()
        error = (directory / "logs" / "error.log").read_text(errors="replace")[-2000:]
        error += (directory / "logs" / "stderr.log").read_text(errors="replace")[-2000:]
        if "Address already in use" not in error:
            break
    raise RuntimeError(f"nginx did not start:\n{error}")


@contextlib.contextmanager
def running_nginx(directory: Path) -> Iterator[NginxServer]:
    """Context-manager form of :func:`start_nginx` (for scripts and benchmarks)."""
    server = start_nginx(directory)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    """A real nginx shared by the whole session (see the module docstring)."""
    with running_nginx(tmp_path_factory.mktemp("nginx")) as server:
        yield server
