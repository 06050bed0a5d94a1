"""FTP and SFTP through real proxies, end to end through the CLI (issue 14 parts 2-3).

* ``ftp://`` through an HTTP proxy with the default ``--proxy-method=get``: squid fetches the
  file over FTP for us (an absolute-form ``GET ftp://...`` in its access log).
* ``--proxy-method=tunnel``: the control connection and every passive data connection are
  ``CONNECT`` tunnels (tinyproxy logs one ``CONNECT`` per connection).
* SOCKS5 (microsocks with user/password, dante without), ``socks5h`` and SOCKS4 (dante) for
  FTP control and data connections.
* SFTP always tunnels (aria2): through tinyproxy's ``CONNECT`` and through SOCKS5; the tunnel
  socket is handed to asyncssh.
Each run checks the bytes, and that the proxy really carried the connections.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.cli_util import CliResult, run_process
from tests.servers.ftp import FtpServer
from tests.servers.proxies import PASSWORD, SOCKS_PASSWORD, SOCKS_USER, USER, ProxyServer
from tests.servers.sftp import SftpServer

CLI = [sys.executable, "-m", "trioaria"]


async def trioaria(home: Path, *args: str) -> CliResult:
    return await run_process([*CLI, "--no-conf", "-d", str(home / "dl"), *args], home=home)


def payload(size: int = 1_500_000) -> bytes:
    return bytes(range(256)) * (size // 256) + b"end"


async def test_ftp_through_squid_with_get(
    tmp_path: Path, ftp_server: FtpServer, squid: ProxyServer
) -> None:
    data = payload()
    ftp_server.add_file("viasquid.bin", data)
    url = ftp_server.url("viasquid.bin")
    res = await trioaria(tmp_path, f"--ftp-proxy={squid.uri(user=USER, password=PASSWORD)}", url)
    assert res.returncode == 0, res
    assert (tmp_path / "dl" / "viasquid.bin").read_bytes() == data
    assert await squid.wait_log(f"GET {url}"), squid.log_text()
    assert ftp_server.commands("RETR"), "squid never fetched the file over FTP"
    assert ftp_server.commands("USER") == ["anonymous"]
    # FTP credentials (in the URI or --ftp-user) reach the FTP server through squid
    res = await trioaria(
        tmp_path / "user",
        f"--ftp-proxy={squid.uri(user=USER, password=PASSWORD)}",
        "--ftp-user=test",
        "--ftp-passwd=secret",
        url,
    )
    assert res.returncode == 0, res
    assert (tmp_path / "user" / "dl" / "viasquid.bin").read_bytes() == data
    assert ftp_server.commands("USER") == ["anonymous", "test"]
    assert await squid.wait_log(f"GET {url}", count=2), squid.log_text()
    assert "secret" not in squid.log_text()


async def test_ftp_tunnelled_through_connect(
    tmp_path: Path, ftp_server: FtpServer, tinyproxy_open: ProxyServer
) -> None:
    data = payload(3_000_000)
    ftp_server.add_file("tunnel.bin", data)
    before = tinyproxy_open.log_text().count("CONNECT 127.0.0.1:")
    res = await trioaria(
        tmp_path,
        f"--all-proxy={tinyproxy_open.uri()}",
        "--proxy-method=tunnel",
        "-x2",
        "-s2",
        "-k1M",
        ftp_server.url("tunnel.bin", userinfo="test:secret"),
    )
    assert res.returncode == 0, res
    assert (tmp_path / "dl" / "tunnel.bin").read_bytes() == data
    log = tinyproxy_open.log_text()
    control = log.count(f"CONNECT 127.0.0.1:{ftp_server.port} ")
    connects = log.count("CONNECT 127.0.0.1:") - before
    retrs = len(ftp_server.commands("RETR"))
    assert control >= 1 and retrs >= 1
    assert connects >= control + retrs, log  # every data connection was a tunnel too


@pytest.mark.parametrize("kind", ["microsocks", "dante-socks5h", "dante-socks4"])
async def test_ftp_through_socks(
    tmp_path: Path,
    ftp_server: FtpServer,
    microsocks: ProxyServer,
    dante: ProxyServer,
    kind: str,
) -> None:
    data = payload(2_000_000)
    ftp_server.add_file("socks.bin", data)
    connects_before = dante.log_text().count("tcp/connect [:")
    if kind == "microsocks":
        proxy, host = microsocks.uri(user=SOCKS_USER, password=SOCKS_PASSWORD), "127.0.0.1"
    elif kind == "dante-socks5h":
        proxy, host = f"socks5h://127.0.0.1:{dante.port}", "localhost"
    else:
        proxy, host = f"socks4://127.0.0.1:{dante.port}", "localhost"  # resolved by us
    url = f"ftp://test:secret@{host}:{ftp_server.port}/socks.bin"
    res = await trioaria(tmp_path, f"--all-proxy={proxy}", "-x2", "-s2", "-k1M", url)
    assert res.returncode == 0, res
    assert (tmp_path / "dl" / "socks.bin").read_bytes() == data
    if kind == "microsocks":  # "client[N] IP: connected to HOST:PORT", control connection
        text = f"connected to 127.0.0.1:{ftp_server.port}"
        assert await microsocks.wait_log(text), microsocks.log_text()[-2000:]
    else:  # dante logs each session it passed: the control connection to the FTP port, and
        # at least one data connection besides
        control = f"127.0.0.1.{ftp_server.port}\n"
        assert await dante.wait_log(control), dante.log_text()[-2000:]
        assert dante.log_text().count("tcp/connect [:") >= connects_before + 2


async def test_socks_refusing_auth_is_a_clear_error(
    tmp_path: Path, ftp_server: FtpServer, microsocks: ProxyServer
) -> None:
    ftp_server.add_file("refused.bin", payload(10_000))
    for proxy, words in [
        (microsocks.uri(), "wants a user name and password"),
        (microsocks.uri(user=SOCKS_USER, password="bad"), "user name or password rejected"),
    ]:
        res = await trioaria(
            tmp_path, f"--all-proxy={proxy}", "--max-tries=3", ftp_server.url("refused.bin")
        )
        assert res.returncode == 1, res
        assert words in res.stdout + res.stderr, res
        assert "bad" not in res.stdout.replace("refused.bin", "") + res.stderr
        assert not (tmp_path / "dl" / "refused.bin").exists()
    assert not ftp_server.commands("RETR")


@pytest.mark.parametrize("kind", ["connect", "socks5"])
async def test_sftp_tunnelled(
    tmp_path: Path,
    sftp_server: SftpServer,
    tinyproxy_open: ProxyServer,
    microsocks: ProxyServer,
    kind: str,
) -> None:
    data = payload(1_000_000)
    name = f"sftp-proxy-{kind}.bin"
    sftp_server.add_file(name, data)
    proxy = (
        tinyproxy_open.uri()
        if kind == "connect"
        else microsocks.uri(user=SOCKS_USER, password=SOCKS_PASSWORD)
    )
    res = await trioaria(tmp_path, f"--ftp-proxy={proxy}", "-x2", "-s2", sftp_server.url(name))
    assert res.returncode == 0, res
    assert (tmp_path / "dl" / name).read_bytes() == data
    if kind == "connect":
        assert f"CONNECT 127.0.0.1:{sftp_server.port}" in tinyproxy_open.log_text()
    else:
        text = f"connected to 127.0.0.1:{sftp_server.port}"
        assert await microsocks.wait_log(text), microsocks.log_text()[-2000:]


async def test_ftpes_through_connect_and_socks(
    tmp_path: Path,
    ftps_server: FtpServer,
    tinyproxy_open: ProxyServer,
    microsocks: ProxyServer,
) -> None:
    """``ftpes://`` always tunnels: TLS on the control connection and on each data tunnel
    (resuming the control connection's TLS session) runs end to end through the proxy."""
    data = payload(2_500_000)
    ftps_server.add_file("tls-proxy.bin", data)
    url = ftps_server.url("tls-proxy.bin", scheme="ftpes", userinfo="test:secret")
    ca = ftps_server.extra["ca"]
    for label, proxy in [
        ("connect", tinyproxy_open.uri()),
        ("socks", microsocks.uri(user=SOCKS_USER, password=SOCKS_PASSWORD)),
    ]:
        res = await trioaria(
            tmp_path / label, f"--ftp-proxy={proxy}", f"--ca-certificate={ca}", "-x2", "-s2",
            "-k1M", url,
        )  # fmt: skip
        assert res.returncode == 0, res
        assert (tmp_path / label / "dl" / "tls-proxy.bin").read_bytes() == data
    assert f"CONNECT 127.0.0.1:{ftps_server.port} " in tinyproxy_open.log_text()


async def test_sftp_through_an_https_proxy_is_refused_clearly(
    tmp_path: Path, sftp_server: SftpServer, stunnel_proxy: ProxyServer
) -> None:
    sftp_server.add_file("no-tls-proxy.bin", payload(1000))
    res = await trioaria(
        tmp_path, f"--ftp-proxy={stunnel_proxy.uri()}", sftp_server.url("no-tls-proxy.bin")
    )
    assert res.returncode == 1, res
    assert "SFTP through an https:// proxy" in res.stdout + res.stderr, res
    assert not (tmp_path / "dl" / "no-tls-proxy.bin").exists()


async def test_ftp_tunnelled_through_an_https_proxy(
    tmp_path: Path, ftp_server: FtpServer, stunnel_proxy: ProxyServer, tinyproxy: ProxyServer
) -> None:
    """TLS to the proxy (stunnel in front of tinyproxy), then CONNECT tunnels for the FTP
    control connection and each data connection inside TLS connections."""
    data = payload(1_200_000)
    ftp_server.add_file("tls-to-proxy.bin", data)
    ca = stunnel_proxy.ca
    assert ca is not None
    res = await trioaria(
        tmp_path,
        f"--ftp-proxy={stunnel_proxy.uri(user=USER, password=PASSWORD)}",
        "--proxy-method=tunnel",
        f"--ca-certificate={ca}",
        ftp_server.url("tls-to-proxy.bin", userinfo="test:secret"),
    )
    assert res.returncode == 0, res
    assert (tmp_path / "dl" / "tls-to-proxy.bin").read_bytes() == data
    assert f"CONNECT 127.0.0.1:{ftp_server.port} " in tinyproxy.log_text()
