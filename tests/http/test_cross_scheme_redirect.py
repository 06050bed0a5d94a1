"""HTTP redirects to ``ftp://`` and ``sftp://`` are followed through those drivers (issue 15).

A private nginx (its own small config, 127.0.0.1, a port from the OS) answers
``/to-pyftpdlib``, ``/to-vsftpd`` and ``/to-sftp`` with redirects to files on the test's
pyftpdlib, vsftpd and asyncssh SFTP servers, and ``/to-gopher`` with a redirect to a scheme
nobody serves.  The CLI must download the first three (named after the redirect's target,
as aria2 names files after the last URI of a chain) and end the last one with exit 1 and a
one-line message quoting the ``Location`` exactly as nginx sent it (never connecting there:
the suite's audit hook would fail the test).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_util import run_cli
from tests.e2e_util import make_payload
from tests.servers.ftp import FtpServer
from tests.servers.nginx import NGINX, free_port
from tests.servers.process import stop_process
from tests.servers.sftp import SftpServer
from trioaria.base.errors import ExitCode

GOPHER = "gOpher://Example.TEST/Some%20File"

_CONF = """
daemon off;
{user}
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/tmp;
  proxy_temp_path {d}/tmp;
  fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp;
  scgi_temp_path {d}/tmp;
  server {{
    listen 127.0.0.1:{port};
    location = /to-pyftpdlib {{ return 302 "{pyftpdlib}"; }}
    location = /to-vsftpd {{ return 301 "{vsftpd}"; }}
    location = /to-sftp {{ return 307 "{sftp}"; }}
    location = /to-gopher {{ return 302 "{gopher}"; }}
  }}
}}
"""

PAYLOAD = make_payload(3_000_000, seed=1505)


@pytest.fixture
def redirector(
    tmp_path: Path, ftp_server: FtpServer, vsftpd_server: FtpServer, sftp_server: SftpServer
) -> Iterator[str]:
    """``http://127.0.0.1:PORT``: the private nginx with the four redirects."""
    ftp_server.add_file("via-pyftpdlib.bin", PAYLOAD)
    vsftpd_server.add_file("via-vsftpd.bin", PAYLOAD)
    sftp_server.add_file("via-sftp.bin", PAYLOAD)
    d = tmp_path / "nginx"
    (d / "tmp").mkdir(parents=True)
    port = free_port()
    (d / "nginx.conf").write_text(
        _CONF.format(
            d=d,
            user="user root root;" if os.geteuid() == 0 else "",
            port=port,
            pyftpdlib=ftp_server.url("via-pyftpdlib.bin", userinfo="test:secret"),
            vsftpd=vsftpd_server.url("via-vsftpd.bin"),
            sftp=sftp_server.url("via-sftp.bin"),
            gopher=GOPHER,
        )
    )
    proc = subprocess.Popen(
        [NGINX, "-p", f"{d}/", "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:  # bounded by the deadline
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "nginx did not start: " + (d / "error.log").read_text(errors="replace")
                    ) from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/to-pyftpdlib", "via-pyftpdlib.bin"),
        ("/to-vsftpd", "via-vsftpd.bin"),
        ("/to-sftp", "via-sftp.bin"),
    ],
)
async def test_redirect_to_another_driver_downloads_the_file(
    redirector: str, tmp_path: Path, path: str, name: str
) -> None:
    out = tmp_path / "out"
    res = await run_cli("-x2", "-s2", "-k1M", "-d", out, redirector + path, home=tmp_path)
    assert res.returncode == 0, res
    assert (out / name).read_bytes() == PAYLOAD, res
    assert not (out / path.lstrip("/")).exists()


async def test_redirect_to_an_unsupported_scheme_is_exit_1_quoting_the_uri(
    redirector: str, tmp_path: Path
) -> None:
    res = await run_cli("-d", tmp_path / "out", redirector + "/to-gopher", home=tmp_path)
    assert res.returncode == ExitCode.UNKNOWN_ERROR, res
    text = res.stdout + res.stderr
    assert GOPHER in text, res  # as sent: neither lower-cased nor re-quoted
    lines = [line for line in text.splitlines() if GOPHER in line]
    assert any("redirected to an unsupported URI" in line for line in lines), res
    assert "Traceback" not in text
