"""FTP over IPv6 loopback end to end (RFC 2428): ``ftp://[::1]:PORT/`` with the real CLI.

pyftpdlib and vsftpd listen on ``::1`` only, so nothing can fall back to IPv4: passive mode
must use ``EPSV`` (a PASV reply cannot carry an IPv6 address) and active mode ``EPRT``
(``PORT`` is IPv4 only).  Every download is segmented (``-x4 -s4 -k1M``), byte-exact, and the
server's command log shows the extended commands and ``REST`` at non-zero offsets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_util import run_cli
from tests.e2e_util import make_payload
from tests.servers.ftp import FtpServer, ipv6_loopback_available, start_pyftpdlib, start_vsftpd


def test_ipv6_loopback_is_available() -> None:
    # A missing prerequisite is a failure, not a skip (docs/decisions.md).
    assert ipv6_loopback_available(), "these tests need ::1 (IPv6 loopback)"


MiB = 1 << 20
AUTH = ("--ftp-user=test", "--ftp-passwd=secret")
SEGMENTED = ("-x4", "-s4", "-k1M")


@pytest.fixture(scope="module")
def pyftpd6(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpServer]:
    server = start_pyftpdlib(tmp_path_factory.mktemp("ftpd6"), host="::1")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def vsftpd6(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpServer]:
    server = start_vsftpd(tmp_path_factory.mktemp("vsftpd6"), host="::1")
    try:
        yield server
    finally:
        server.stop()


def _nonzero_rests(server: FtpServer, since: int) -> list[int]:
    return [int(x) for x in server.commands("REST")[since:] if int(x) > 0]


@pytest.mark.parametrize("pasv", ["true", "false"])
async def test_pyftpdlib_ipv6_segmented(pyftpd6: FtpServer, tmp_path: Path, pasv: str) -> None:
    data = make_payload(6 * MiB + 4321, seed=60 if pasv == "true" else 61)
    name = f"six-{pasv}.bin"
    pyftpd6.add_file(name, data)
    url = pyftpd6.url(name)
    assert url.startswith("ftp://[::1]:")
    before = {v: len(pyftpd6.commands(v)) for v in ("REST", "EPSV", "EPRT", "PASV", "PORT")}
    res = await run_cli(f"--ftp-pasv={pasv}", *SEGMENTED, *AUTH, "-d", tmp_path, url, home=tmp_path)
    assert res.returncode == 0, res
    assert (tmp_path / name).read_bytes() == data
    log = pyftpd6.log_text()
    assert "[::1]" in url and "::1:" in log  # pyftpdlib logs the IPv6 peer
    new = {v: len(pyftpd6.commands(v)) - n for v, n in before.items()}
    assert len(_nonzero_rests(pyftpd6, before["REST"])) >= 3, log[-3000:]
    if pasv == "true":
        assert new["EPSV"] >= 4 and new["PASV"] == 0, new
    else:
        assert new["EPRT"] >= 4 and new["PORT"] == 0, new
        eprt = pyftpd6.commands("EPRT")[-1]
        assert eprt.startswith("|2|::1|"), eprt  # RFC 2428: protocol 2 = IPv6


@pytest.mark.parametrize("pasv", ["true", "false"])
async def test_vsftpd_ipv6_segmented(vsftpd6: FtpServer, tmp_path: Path, pasv: str) -> None:
    data = make_payload(5 * MiB + 77, seed=62 if pasv == "true" else 63)
    name = f"v6-{pasv}.bin"
    vsftpd6.add_file(name, data)
    res = await run_cli(
        f"--ftp-pasv={pasv}", *SEGMENTED, "-d", tmp_path, vsftpd6.url(name), home=tmp_path
    )
    assert res.returncode == 0, res
    assert (tmp_path / name).read_bytes() == data
    log = vsftpd6.log_text()
    assert 'Client "::1"' in log
    assert f'"RETR {name}"' in log
    if pasv == "true":
        assert '"EPSV"' in log
    else:
        assert '"EPRT |2|::1|' in log, log[-2000:]
