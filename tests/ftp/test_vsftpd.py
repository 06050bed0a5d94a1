"""trioaria against vsftpd 3 (anonymous, read-only): passive, active, FTPS implicit and explicit.

The TLS servers set ``require_ssl_reuse=YES``: vsftpd refuses a data connection whose TLS
session is not the control connection's, so these tests prove the session is reused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_util import run_cli
from tests.e2e_util import make_payload
from tests.servers.ftp import FtpServer, start_vsftpd
from tests.servers.nginx import make_test_pki
from trioaria.base.errors import ExitCode

MiB = 1 << 20


@pytest.fixture(scope="module")
def vsftpd_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FtpServer, FtpServer]]:
    base = tmp_path_factory.mktemp("vsftpd_tls")
    pki = make_test_pki(base / "pki")
    cert = (pki["server_cert"], pki["server_key"])
    explicit = start_vsftpd(base / "explicit", tls=cert)
    implicit = start_vsftpd(base / "implicit", tls=cert, implicit=True)
    explicit.extra = implicit.extra = pki
    try:
        yield explicit, implicit
    finally:
        explicit.stop()
        implicit.stop()


@pytest.mark.parametrize("pasv", ["true", "false"])
async def test_vsftpd_segmented(vsftpd_server: FtpServer, tmp_path: Path, pasv: str) -> None:
    data = make_payload(5 * MiB + 333, seed=20)
    name = f"v{pasv}.bin"
    vsftpd_server.add_file(name, data)
    res = await run_cli(
        f"--ftp-pasv={pasv}", "-x3", "-s3", "-k1M", "-d", tmp_path, vsftpd_server.url(name),
        home=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / name).read_bytes() == data
    log = vsftpd_server.log_text()
    assert f'"RETR {name}"' in log
    assert ('"PORT ' in log) if pasv == "false" else ('"EPSV"' in log)


async def test_vsftpd_missing_file_is_exit_3(vsftpd_server: FtpServer, tmp_path: Path) -> None:
    res = await run_cli("-d", tmp_path, vsftpd_server.url("absent.bin"), home=tmp_path)
    assert res.returncode == ExitCode.RESOURCE_NOT_FOUND, res


@pytest.mark.parametrize("mode", ["ftpes", "ftps"])
async def test_vsftpd_tls_with_session_reuse(
    vsftpd_tls: tuple[FtpServer, FtpServer], tmp_path: Path, mode: str
) -> None:
    explicit, implicit = vsftpd_tls
    server = explicit if mode == "ftpes" else implicit
    data = make_payload(3 * MiB + 5, seed=21)
    server.add_file("s.bin", data)
    res = await run_cli(
        "-x2", "-s2", "-k1M", f"--ca-certificate={server.extra['ca']}", "-d", tmp_path,
        server.url("s.bin", scheme=mode), home=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "s.bin").read_bytes() == data
    if mode == "ftpes":
        assert '"AUTH TLS"' in server.log_text()
    assert '"PROT P"' in server.log_text()
