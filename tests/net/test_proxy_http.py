"""HTTP(S) downloads through real proxies, end to end through the CLI (issue 14 parts 1-2).

tinyproxy (Basic auth) forwards plain ``http://`` with absolute-form GETs and tunnels with
``CONNECT``; stunnel in front of it makes an ``https://`` proxy (TLS *to* the proxy; TLS in
TLS for an ``https://`` origin).  Each proxy's log must show the request, the file must be
byte-exact, and refusals (407, garbage) must end with aria2's exit code, a clear message and
no file.  The environment variables and ``--no-proxy`` are checked the same way.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_util import CliResult, log_lines, run_aria2c, run_process, serve_copy, unique_name
from tests.servers.nginx import NginxServer
from tests.servers.proxies import PASSWORD, USER, ProxyServer

CLI = [sys.executable, "-m", "trioaria"]


async def trioaria(home: Path, *args: str, env: dict[str, str] | None = None) -> CliResult:
    return await run_process([*CLI, "--no-conf", "-d", str(home / "dl"), *args], home=home, env=env)


def downloaded(home: Path, name: str) -> Path:
    return home / "dl" / name


def dead_port() -> int:
    """A port nothing listens on (bound and closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("split", ["1", "3"])
async def test_get_forwarding_with_proxy_user_options(
    tmp_path: Path, nginx: NginxServer, tinyproxy: ProxyServer, split: str
) -> None:
    name = unique_name("proxy-get")
    data = serve_copy(nginx, name, 3_000_000)
    res = await trioaria(
        tmp_path,
        f"--all-proxy={tinyproxy.uri()}",
        f"--all-proxy-user={USER}",
        f"--all-proxy-passwd={PASSWORD}",
        f"-x{split}",
        f"-s{split}",
        "-k1M",
        nginx.url(f"/{name}"),
    )
    assert res.returncode == 0, res
    assert downloaded(tmp_path, name).read_bytes() == data
    # absolute-form requests in the proxy's log, and the origin saw them (through the proxy)
    assert f"GET http://127.0.0.1:{nginx.port}/{name}" in tinyproxy.log_text()
    assert log_lines(nginx, f"/{name}")


async def test_tunnel_method_uses_connect_for_plain_http(
    tmp_path: Path, nginx: NginxServer, tinyproxy: ProxyServer
) -> None:
    name = unique_name("proxy-tunnel")
    data = serve_copy(nginx, name, 500_000)
    res = await trioaria(
        tmp_path,
        f"--http-proxy={tinyproxy.uri(user=USER, password=PASSWORD)}",
        "--proxy-method=tunnel",
        nginx.url(f"/{name}"),
    )
    assert res.returncode == 0, res
    assert downloaded(tmp_path, name).read_bytes() == data
    assert f"CONNECT 127.0.0.1:{nginx.port}" in tinyproxy.log_text()
    assert f"GET http://127.0.0.1:{nginx.port}/{name}" not in tinyproxy.log_text()


async def test_https_origin_through_connect(
    tmp_path: Path, nginx: NginxServer, tinyproxy: ProxyServer
) -> None:
    name = unique_name("proxy-https")
    data = serve_copy(nginx, name, 1_000_000)
    res = await trioaria(
        tmp_path,
        f"--https-proxy={tinyproxy.uri(user=USER, password=PASSWORD)}",
        "--http-proxy=http://127.0.0.1:1",  # not used for https://
        f"--ca-certificate={nginx.ca_cert}",
        "-x2",
        "-s2",
        "-k1M",
        nginx.https_url(f"/{name}"),
    )
    assert res.returncode == 0, res
    assert downloaded(tmp_path, name).read_bytes() == data
    assert f"CONNECT 127.0.0.1:{nginx.https_port}" in tinyproxy.log_text()


@pytest.mark.parametrize("origin", ["http", "https"])
async def test_tls_to_an_https_proxy(
    tmp_path: Path,
    nginx: NginxServer,
    stunnel_proxy: ProxyServer,
    tinyproxy: ProxyServer,
    origin: str,
) -> None:
    """``--all-proxy=https://...``: TLS to the proxy (stunnel in front of tinyproxy); for an
    https:// origin the origin's TLS runs inside that TLS connection."""
    name = unique_name(f"proxy-tls-{origin}")
    data = serve_copy(nginx, name, 700_000)
    url = nginx.url(f"/{name}") if origin == "http" else nginx.https_url(f"/{name}")
    res = await trioaria(
        tmp_path,
        f"--all-proxy={stunnel_proxy.uri(user=USER, password=PASSWORD)}",
        f"--ca-certificate={nginx.ca_cert}",
        url,
    )
    assert res.returncode == 0, res
    assert downloaded(tmp_path, name).read_bytes() == data
    seen = tinyproxy.log_text()
    if origin == "http":
        assert f"GET http://127.0.0.1:{nginx.port}/{name}" in seen
    else:
        assert f"CONNECT 127.0.0.1:{nginx.https_port}" in seen
    assert "accepted connection" in stunnel_proxy.log_text()


@pytest.mark.parametrize(
    ("method", "password", "code", "words"),
    [
        # as aria2c 1.36 (run below against the same tinyproxy): no credentials get a 407 (GET:
        # exit 22, CONNECT: exit 1); a wrong password gets tinyproxy's 401 (GET: 24; CONNECT: 1)
        ("get", None, 22, "proxy authentication failed"),
        ("tunnel", None, 1, "proxy authentication failed"),
        ("get", "wrong", 24, "HTTP 401"),
        ("tunnel", "wrong", 1, "Proxy connection failed"),
    ],
)
async def test_refused_credentials_are_clear_errors_and_write_nothing(
    tmp_path: Path,
    nginx: NginxServer,
    tinyproxy: ProxyServer,
    method: str,
    password: str | None,
    code: int,
    words: str,
) -> None:
    name = unique_name("proxy-407")
    serve_copy(nginx, name, 100_000)
    user = USER if password else None
    res = await trioaria(
        tmp_path,
        f"--all-proxy={tinyproxy.uri(user=user, password=password)}",
        f"--proxy-method={method}",
        "--max-tries=3",
        nginx.url(f"/{name}"),
    )
    assert res.returncode == code, res
    assert words in res.stdout + res.stderr, res
    assert "wrong" not in res.stdout + res.stderr  # the password is never shown
    assert not downloaded(tmp_path, name).exists()
    assert not log_lines(nginx, f"/{name}")
    # the same refusal, the same exit status from the real aria2c
    theirs = await run_aria2c(
        "-d",
        str(tmp_path / "aria2c"),
        f"--all-proxy={tinyproxy.uri(user=user, password=password)}",
        f"--proxy-method={method}",
        "--max-tries=3",
        "--retry-wait=0",
        nginx.url(f"/{name}"),
        home=tmp_path / "aria2c-home",
    )
    assert theirs.returncode == code, theirs


@pytest.fixture
def garbage_proxy() -> Iterator[int]:
    """A "proxy" that answers every connection with bytes that are not HTTP, then closes."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(b"\x00\xffgarbage, not HTTP\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.mark.parametrize("method", ["get", "tunnel"])
async def test_garbage_from_the_proxy(
    tmp_path: Path, nginx: NginxServer, garbage_proxy: int, method: str
) -> None:
    res = await trioaria(
        tmp_path,
        f"--all-proxy=http://127.0.0.1:{garbage_proxy}",
        f"--proxy-method={method}",
        "--max-tries=2",
        "--retry-wait=0",
        nginx.url("/file1m.bin"),
    )
    # GET: the proxy's answer is the HTTP response, malformed (exit 22, as trioaria answers a
    # malformed server response; aria2c 1.36 says 1); CONNECT: exit 1, as aria2c
    assert res.returncode == (22 if method == "get" else 1), res
    words = "malformed HTTP response" if method == "get" else "not HTTP"
    assert words in res.stdout + res.stderr, res
    assert not downloaded(tmp_path, "file1m.bin").exists()


async def test_no_proxy_bypasses_and_dead_proxy_is_named(
    tmp_path: Path, nginx: NginxServer
) -> None:
    name = unique_name("noproxy")
    data = serve_copy(nginx, name, 200_000)
    dead = f"http://127.0.0.1:{dead_port()}"
    for entry in ("127.0.0.1", "10.0.0.0/8,127.0.0.0/8"):
        res = await trioaria(
            tmp_path / entry.replace("/", "_"), f"--all-proxy={dead}", f"--no-proxy={entry}",
            nginx.url(f"/{name}"),
        )  # fmt: skip
        assert res.returncode == 0, res
        assert downloaded(tmp_path / entry.replace("/", "_"), name).read_bytes() == data
    res = await trioaria(
        tmp_path / "via", f"--all-proxy={dead}", "--no-proxy=.example.org", "--max-tries=1",
        nginx.url(f"/{name}"),
    )  # fmt: skip
    assert res.returncode == 1, res
    assert "Connection refused" in res.stdout + res.stderr, res
    assert f"cannot reach the proxy {dead}" in res.stdout + res.stderr, res


async def test_environment_variables_and_option_precedence(
    tmp_path: Path, nginx: NginxServer, tinyproxy: ProxyServer
) -> None:
    name = unique_name("proxy-env")
    data = serve_copy(nginx, name, 300_000)
    good = tinyproxy.uri(user=USER, password=PASSWORD)
    dead = f"http://127.0.0.1:{dead_port()}"
    # the variable alone routes the download through the proxy
    res = await trioaria(tmp_path / "a", nginx.url(f"/{name}"), env={"http_proxy": good})
    assert res.returncode == 0, res
    assert downloaded(tmp_path / "a", name).read_bytes() == data
    assert tinyproxy.log_text().count(f"GET http://127.0.0.1:{nginx.port}/{name}") == 1
    # upper case is read too; the command line wins over the environment
    res = await trioaria(
        tmp_path / "b", f"--http-proxy={good}", nginx.url(f"/{name}"), env={"HTTP_PROXY": dead}
    )
    assert res.returncode == 0, res
    assert tinyproxy.log_text().count(f"GET http://127.0.0.1:{nginx.port}/{name}") == 2
    # no_proxy from the environment; a bad variable is reported and ignored
    res = await trioaria(
        tmp_path / "c",
        nginx.url(f"/{name}"),
        env={"ALL_PROXY": dead, "no_proxy": "127.0.0.1", "https_proxy": "gopher://x:1"},
    )
    assert res.returncode == 0, res
    assert "https_proxy is ignored" in res.stderr, res
    assert tinyproxy.log_text().count(f"GET http://127.0.0.1:{nginx.port}/{name}") == 2


@pytest.mark.parametrize("kind", ["get", "tunnel", "socks5"])
async def test_tracker_and_torrent_fetches_use_the_proxy(
    nginx: NginxServer, tinyproxy: ProxyServer, microsocks: ProxyServer, kind: str
) -> None:
    """HTTP trackers and ``.torrent`` URLs go through the proxy too (aria2 fetches them as
    HTTP downloads); ``bt.announce.http_get`` is their one GET."""
    from tests.servers.proxies import SOCKS_PASSWORD, SOCKS_USER
    from trioaria.bt.announce import http_get
    from trioaria.net.proxy import ProxySettings, parse_proxy

    name = unique_name(f"tracker-{kind}")
    data = serve_copy(nginx, name, 50_000)
    if kind == "socks5":
        proxy = parse_proxy(microsocks.uri(user=SOCKS_USER, password=SOCKS_PASSWORD))
    else:
        proxy = parse_proxy(tinyproxy.uri(user=USER, password=PASSWORD))
    settings = ProxySettings(http=proxy, method="tunnel" if kind == "tunnel" else "get")
    body = await http_get(nginx.url(f"/{name}?info_hash=x"), timeout=10, proxies=settings)
    assert body == data
    seen = tinyproxy.log_text()
    if kind == "get":
        assert f"GET http://127.0.0.1:{nginx.port}/{name}?info_hash=x" in seen
    elif kind == "tunnel":
        assert seen.count(f"CONNECT 127.0.0.1:{nginx.port}") >= 1
    assert log_lines(nginx, f"/{name}?info_hash=x")


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_squid_with_basic_auth(
    tmp_path: Path, nginx: NginxServer, squid: ProxyServer, scheme: str
) -> None:
    """squid: absolute-form GETs (two connections at once) and CONNECT to the TLS nginx; its
    access log names the authenticated user."""
    name = unique_name(f"squid-{scheme}")
    data = serve_copy(nginx, name, 2_000_000)
    url = nginx.url(f"/{name}") if scheme == "http" else nginx.https_url(f"/{name}")
    res = await trioaria(
        tmp_path,
        f"--all-proxy={squid.uri()}",
        f"--all-proxy-user={USER}",
        f"--all-proxy-passwd={PASSWORD}",
        f"--ca-certificate={nginx.ca_cert}",
        "-x2",
        "-s2",
        "-k1M",
        url,
    )
    assert res.returncode == 0, res
    assert downloaded(tmp_path, name).read_bytes() == data
    if scheme == "http":
        assert await squid.wait_log(f"GET {url} {USER}"), squid.log_text()
    else:
        assert await squid.wait_log(f"CONNECT 127.0.0.1:{nginx.https_port} {USER}"), (
            squid.log_text()
        )
