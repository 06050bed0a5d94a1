"""An nginx that speaks Metalink: media types, ``Link`` and ``Digest`` headers (issue 13).

The shared ``nginx`` fixture (tests/servers/nginx.py) serves plain files; this one serves the
Metalink/HTTP cases with its own config, written when it starts, because nginx's
``add_header`` values are fixed in the config.  One payload (4 MiB + 123 bytes) exists as a
good and a corrupted copy; their SHA-256 digests are in the config.  nginx listens on
127.0.0.1 and ::1, so ``127.0.0.1``, ``[::1]`` and ``localhost`` are three hosts of one
server (three mirrors with their own ``-x`` slots).

Endpoints::

    /good/payload.bin /bad/payload.bin   the copies; any other file tests add under root
    /typed/<file>      any file, served as application/metalink4+xml
    /lh/payload.bin    good copy + Link rel=duplicate to /m1/ (localhost, pri=2, geo=jp) and
                       /m2/ ([::1], pri=1, geo=de) + Digest: SHA-256 of the good copy
    /m1/payload.bin    good copy, Digest of the good copy
    /m2/payload.bin    BAD copy, Digest of the bad copy (it disagrees with the others)
    /dby/payload.bin   good copy + Link rel=describedby to /docs/payload.meta4 (tests write it)
    /echo-want-digest /echo-accept   body: the request's Want-Digest / Accept header
    *.meta4 / *.metalink   application/metalink4+xml / application/metalink+xml
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.nginx import free_port
from tests.servers.process import stop_process

__all__ = ["MetalinkNginx", "ml_nginx"]

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SIZE = 4 * 1024 * 1024 + 123

_CONF = """\
daemon off;
worker_processes 1;
{user}
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
  types {{
    application/octet-stream bin;
    application/metalink4+xml meta4;
    application/metalink+xml metalink;
  }}
  default_type application/octet-stream;
  log_format conn '$connection $connection_requests "$request" $status $body_bytes_sent "$http_range" "$http_user_agent"';
  access_log {d}/logs/access.log conn;
  client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fcgi; uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;
  keepalive_requests 100000; keepalive_timeout 65;
  server {{
    listen 127.0.0.1:{hp}; listen [::1]:{hp};
    server_name localhost;
    root {root};
    location /typed/ {{ alias {root}/; types {{ }} default_type application/metalink4+xml; }}
    location /lh/ {{
      alias {root}/good/;
      add_header Link '<http://localhost:{hp}/m1/payload.bin>; rel=duplicate; pri=2; geo=jp';
      add_header Link '<http://[::1]:{hp}/m2/payload.bin>; rel=duplicate; pri=1; geo=de';
      add_header Digest 'SHA-256={good}';
    }}
    location /m1/ {{ alias {root}/good/; add_header Digest 'SHA-256={good}'; }}
    location /m2/ {{ alias {root}/bad/; add_header Digest 'SHA-256={bad}'; }}
    location /dby/ {{
      alias {root}/good/;
      add_header Link '</docs/payload.meta4>; rel=describedby; type="application/metalink4+xml"';
    }}
    location = /echo-want-digest {{ default_type text/plain; return 200 "[$http_want_digest]"; }}
    location = /echo-accept {{ default_type text/plain; return 200 "[$http_accept]"; }}
  }}
}}
"""


@dataclass
class MetalinkNginx:
    """The running server (see the module docstring)."""

    directory: Path
    port: int
    good: bytes
    bad: bytes
    process: subprocess.Popen[bytes]

    @property
    def root(self) -> Path:
        return self.directory / "www"

    @property
    def access_log(self) -> Path:
        return self.directory / "logs" / "access.log"

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def add_file(self, name: str, data: bytes) -> Path:
        path = self.root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def requests(self, path: str) -> list[str]:
        """Access-log lines whose request path is exactly ``path``."""
        return [
            line
            for line in self.access_log.read_text(errors="replace").splitlines()
            if f'"GET {path} ' in line or f'"HEAD {path} ' in line
        ]


def _b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _ready(process: subprocess.Popen[bytes], port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:  # bounded poll: nginx has no readiness signal
        if process.poll() is not None:
            return False
        ok = True
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                try:
                    s.connect((host, port))
                except OSError:
                    ok = False
        if ok:
            return True
        time.sleep(0.02)
    return False


def start(directory: Path) -> MetalinkNginx:
    for sub in ("www/good", "www/bad", "www/docs", "logs", "tmp"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    good = os.urandom(SIZE)
    bad = bytearray(good)
    for offset in range(0, SIZE - 4321, 1 << 20):  # one corrupted byte in every MiB
        bad[offset + 4321] ^= 0xFF
    (directory / "www/good/payload.bin").write_bytes(good)
    (directory / "www/bad/payload.bin").write_bytes(bytes(bad))
    user = "user root root;" if os.geteuid() == 0 else ""
    error = ""
    for _ in range(5):
        port = free_port()
        conf = directory / "nginx.conf"
        conf.write_text(
            _CONF.format(
                d=directory,
                user=user,
                hp=port,
                root=directory / "www",
                good=_b64sha256(good),
                bad=_b64sha256(bytes(bad)),
            )
        )
        process = subprocess.Popen(
            [
                NGINX,
                "-p",
                f"{directory}/",
                "-c",
                str(conf),
                "-e",
                str(directory / "logs/error.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        if _ready(process, port, time.monotonic() + 15):
            return MetalinkNginx(directory, port, good, bytes(bad), process)
        stop_process(process)
        error = (directory / "logs/error.log").read_text(errors="replace")[-2000:]
        if "Address already in use" not in error:
            break
    raise RuntimeError(f"nginx did not start:\n{error}")


@pytest.fixture(scope="session")
def ml_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetalinkNginx]:
    """The Metalink nginx, shared by the session."""
    server = start(tmp_path_factory.mktemp("ml-nginx"))
    try:
        yield server
    finally:
        stop_process(server.process)
