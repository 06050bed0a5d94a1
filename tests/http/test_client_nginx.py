"""The HTTP client driver against a real nginx (tests/servers/nginx.py)."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator
from typing import TypedDict

import pytest
import trio

from tests.servers.nginx import NginxServer
from trioaria.base.errors import (
    AuthError,
    ConnectError,
    ExitCode,
    HttpProtocolError,
    NameResolveError,
    NetworkError,
    NotFoundError,
    OptionError,
    ServiceUnavailableError,
    TimeoutError_,
    TooManyRedirectsError,
)
from trioaria.http.client import ConnectionPool, HttpConnection, open_response
from trioaria.http.proto import HttpRequest, basic_auth_header
from trioaria.net.connect import TlsOptions, make_ssl_context, open_stream

pytestmark = pytest.mark.timeout(60)

NO_TLS = TlsOptions()


class Timeouts(TypedDict):
    connect_timeout: float
    read_timeout: float


TIMEOUTS: Timeouts = {"connect_timeout": 10.0, "read_timeout": 10.0}
BUF = memoryview(bytearray(1 << 20))


def trusted(server: NginxServer) -> TlsOptions:
    return TlsOptions(ca_certificate=str(server.ca_cert))


async def read_all(conn: HttpConnection, buf: memoryview = BUF) -> bytes:
    out = bytearray()
    with trio.fail_after(30):
        while n := await conn.read_into(buf):
            out += buf[:n]
    return bytes(out)


async def fetch(
    pool: ConnectionPool, req: HttpRequest, tls: TlsOptions = NO_TLS
) -> tuple[int, bytes, str, HttpConnection]:
    conn, info, url = await open_response(pool, req, tls=tls, **TIMEOUTS)
    body = await read_all(conn)
    return info.status, body, url, conn


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    p = ConnectionPool()
    yield p
    await p.aclose()


async def test_range_206(nginx: NginxServer, pool: ConnectionPool) -> None:
    data = (nginx.root / "file1m.bin").read_bytes()
    conn, info, _ = await open_response(
        pool, HttpRequest("GET", nginx.url("/file1m.bin"), 100, 199), tls=NO_TLS, **TIMEOUTS
    )
    assert info.status == 206
    assert info.content_range == (100, 199, len(data))
    assert info.total_length == len(data)
    assert info.etag and info.last_modified and info.accept_ranges
    assert not conn.reusable
    assert await read_all(conn) == data[100:200]
    assert conn.reusable
    assert await conn.read_into(BUF) == 0


async def test_open_ended_range_and_small_buffer(nginx: NginxServer, pool: ConnectionPool) -> None:
    data = (nginx.root / "file5m.bin").read_bytes()
    conn, info, _ = await open_response(
        pool, HttpRequest("GET", nginx.url("/file5m.bin"), 4_000_000), tls=NO_TLS, **TIMEOUTS
    )
    assert info.content_range == (4_000_000, len(data) - 1, len(data))
    small = memoryview(bytearray(4096))
    assert await read_all(conn, small) == data[4_000_000:]


async def test_full_200_body(nginx: NginxServer, pool: ConnectionPool) -> None:
    data = (nginx.root / "file5m.bin").read_bytes()
    status, body, _, conn = await fetch(pool, HttpRequest("GET", nginx.url("/file5m.bin")))
    assert status == 200
    assert body == data
    assert conn.reusable


async def test_if_range(nginx: NginxServer, pool: ConnectionPool) -> None:
    url = nginx.url("/file1m.bin")
    conn, info, _ = await open_response(pool, HttpRequest("HEAD", url), tls=NO_TLS, **TIMEOUTS)
    pool.release(conn)
    assert info.etag is not None
    good = HttpRequest("GET", url, 10, 19, if_range=info.etag)
    status, body, _, conn = await fetch(pool, good)
    pool.release(conn)
    assert (status, len(body)) == (206, 10)
    status, body, _, conn = await fetch(pool, dataclasses.replace(good, if_range='"stale"'))
    pool.release(conn)
    assert (status, len(body)) == (200, 1 << 20)


async def test_changing_file(nginx: NginxServer, pool: ConnectionPool) -> None:
    nginx.add_file("changing/f.bin", b"a" * 1000)
    url = nginx.url("/changing/f.bin")
    conn, first, _ = await open_response(pool, HttpRequest("HEAD", url), tls=NO_TLS, **TIMEOUTS)
    pool.release(conn)
    nginx.add_file("changing/f.bin", b"b" * 1000)
    status, body, _, conn = await fetch(pool, HttpRequest("GET", url, 0, 9, if_range=first.etag))
    assert (status, body) == (200, b"b" * 1000)


async def test_chunked(nginx: NginxServer, pool: ConnectionPool) -> None:
    data = (nginx.root / "file5m.bin").read_bytes()
    conn, info, _ = await open_response(
        pool, HttpRequest("GET", nginx.url("/chunked/file5m.bin")), tls=NO_TLS, **TIMEOUTS
    )
    assert info.chunked and info.content_length is None and info.total_length is None
    assert await read_all(conn, memoryview(bytearray(100_000))) == data
    assert conn.reusable


async def test_head(nginx: NginxServer) -> None:
    url = nginx.url("/file1m.bin")
    conn = await HttpConnection.connect(url, tls=NO_TLS, connect_timeout=10)
    try:
        info = await conn.request(HttpRequest("HEAD", url))
        assert (info.status, info.content_length, info.total_length) == (200, 1 << 20, 1 << 20)
        assert conn.reusable
        assert await conn.read_into(BUF) == 0
        info = await conn.request(HttpRequest("GET", url, 0, 4))  # same connection
        assert info.status == 206
        assert await read_all(conn) == (nginx.root / "file1m.bin").read_bytes()[:5]
    finally:
        await conn.aclose()


async def test_empty_file(nginx: NginxServer, pool: ConnectionPool) -> None:
    status, body, _, conn = await fetch(pool, HttpRequest("GET", nginx.url("/empty.bin")))
    assert (status, body, conn.reusable) == (200, b"", True)


@pytest.mark.parametrize(
    ("path", "final"),
    [
        ("/redirect", "/file1m.bin"),
        ("/redirect301", "/file1m.bin"),
        ("/redirect303", "/file1m.bin"),
        ("/redirect307", "/file1m.bin"),
    ],
)
async def test_redirects(nginx: NginxServer, pool: ConnectionPool, path: str, final: str) -> None:
    status, body, url, _ = await fetch(pool, HttpRequest("GET", nginx.url(path)))
    assert (status, url) == (200, nginx.url(final))
    assert body == (nginx.root / "file1m.bin").read_bytes()
    assert pool.statistics().opened == 1  # the redirect body was drained, connection reused


async def test_redirect_to_https(nginx: NginxServer, pool: ConnectionPool) -> None:
    status, body, url, _ = await fetch(
        pool, HttpRequest("GET", nginx.url("/redirect-https")), trusted(nginx)
    )
    assert (status, url, len(body)) == (200, nginx.https_url("/file1m.bin"), 1 << 20)


async def test_redirect_loop_exit_23(nginx: NginxServer, pool: ConnectionPool) -> None:
    with pytest.raises(TooManyRedirectsError) as excinfo:
        await open_response(pool, HttpRequest("GET", nginx.url("/loop")), tls=NO_TLS, **TIMEOUTS)
    assert excinfo.value.exit_code == ExitCode.HTTP_TOO_MANY_REDIRECTS
    assert int(excinfo.value.exit_code) == 23


@pytest.mark.parametrize(
    ("path", "error", "code", "kept"),
    [
        ("/missing.bin", NotFoundError, 3, 1),
        ("/gone", HttpProtocolError, 22, 1),
        ("/protected/secret.txt", AuthError, 24, 1),
        ("/status500", HttpProtocolError, 22, 0),  # nginx sends "Connection: close" with 500
        ("/status503", ServiceUnavailableError, 29, 1),
    ],
)
async def test_error_statuses(
    nginx: NginxServer,
    pool: ConnectionPool,
    path: str,
    error: type[Exception],
    code: int,
    kept: int,
) -> None:
    with pytest.raises(error) as excinfo:
        await open_response(pool, HttpRequest("GET", nginx.url(path)), tls=NO_TLS, **TIMEOUTS)
    assert excinfo.value.exit_code == code  # type: ignore[attr-defined]
    if error is ServiceUnavailableError:
        assert excinfo.value.retry_after == 1.0  # type: ignore[attr-defined]
    # the error body was drained: the connection went back to the pool (if keep-alive)
    assert pool.statistics().idle == kept


async def test_basic_auth(nginx: NginxServer, pool: ConnectionPool) -> None:
    req = HttpRequest(
        "GET", nginx.url("/protected/secret.txt"), headers=(basic_auth_header("user", "pass"),)
    )
    status, body, _, _ = await fetch(pool, req)
    assert (status, body) == (200, b"secret content\n")
    url = nginx.url("/protected/secret.txt").replace("http://", "http://user:pass@")
    status, body, _, _ = await fetch(pool, HttpRequest("GET", url))
    assert (status, body) == (200, b"secret content\n")


async def test_content_disposition(nginx: NginxServer, pool: ConnectionPool) -> None:
    _conn, info, _ = await open_response(
        pool, HttpRequest("HEAD", nginx.url("/cd/file1m.bin")), tls=NO_TLS, **TIMEOUTS
    )
    assert info.content_disposition_filename == "renamed.bin"


async def test_keep_alive_reuses_one_tcp_connection(
    nginx: NginxServer, pool: ConnectionPool
) -> None:
    serials = []
    for _ in range(3):
        _status, body, _, conn = await fetch(pool, HttpRequest("GET", nginx.url("/conn")))
        serials.append(int(body))
        pool.release(conn)
    assert len(set(serials)) == 1  # nginx's $connection serial did not change
    stats = pool.statistics()
    assert (stats.opened, stats.reused, stats.idle) == (1, 2, 1)


async def test_keep_alive_disabled(nginx: NginxServer) -> None:
    serials = set()
    pool = ConnectionPool(enabled=False)
    for _ in range(2):
        _, body, _, conn = await fetch(pool, HttpRequest("GET", nginx.url("/conn")))
        serials.add(int(body))
        pool.release(conn)
    assert len(serials) == 2
    assert pool.statistics().opened == 2


async def test_server_closes_after_response(nginx: NginxServer, pool: ConnectionPool) -> None:
    _, body, _, conn = await fetch(pool, HttpRequest("GET", nginx.url("/nokeepalive/file1m.bin")))
    assert len(body) == 1 << 20
    assert not conn.reusable  # "Connection: close"
    pool.release(conn)
    assert pool.statistics().idle == 0


async def test_connection_close_request(nginx: NginxServer, pool: ConnectionPool) -> None:
    _, _, _, conn = await fetch(pool, HttpRequest("GET", nginx.url("/conn"), keep_alive=False))
    assert not conn.reusable


# --- TLS --------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_tls_with_ca(nginx: NginxServer, pool: ConnectionPool, host: str) -> None:
    data = (nginx.root / "file5m.bin").read_bytes()
    url = nginx.https_url("/file5m.bin", host=host)
    status, body, _, conn = await fetch(pool, HttpRequest("GET", url, 1000), trusted(nginx))
    assert (status, body) == (206, data[1000:])
    assert conn.stream.tls


async def test_tls_keep_alive(nginx: NginxServer, pool: ConnectionPool) -> None:
    serials = set()
    for _ in range(2):
        _, body, _, conn = await fetch(
            pool, HttpRequest("GET", nginx.https_url("/conn")), trusted(nginx)
        )
        serials.add(int(body))
        pool.release(conn)
    assert len(serials) == 1
    assert pool.statistics().reused == 1


async def test_tls_chunked(nginx: NginxServer, pool: ConnectionPool) -> None:
    _status, body, _, _ = await fetch(
        pool, HttpRequest("GET", nginx.https_url("/chunked/file1m.bin")), trusted(nginx)
    )
    assert body == (nginx.root / "file1m.bin").read_bytes()


async def test_tls_untrusted_fails_clearly(nginx: NginxServer, pool: ConnectionPool) -> None:
    with pytest.raises(NetworkError) as excinfo:
        await open_response(
            pool, HttpRequest("GET", nginx.https_url("/file1m.bin")), tls=NO_TLS, **TIMEOUTS
        )
    message = str(excinfo.value)
    assert "certificate verification failed" in message
    assert "\n" not in message
    assert excinfo.value.exit_code == ExitCode.UNKNOWN_ERROR  # as aria2c (errorCode=1)
    assert not excinfo.value.retryable


async def test_tls_check_certificate_false(nginx: NginxServer, pool: ConnectionPool) -> None:
    insecure = TlsOptions(check_certificate=False)
    status, body, _, _ = await fetch(
        pool, HttpRequest("GET", nginx.https_url("/file1m.bin")), insecure
    )
    assert (status, len(body)) == (200, 1 << 20)


async def test_tls_client_certificate(nginx: NginxServer, pool: ConnectionPool) -> None:
    url = nginx.https_url("/clientcert/file1m.bin")
    with pytest.raises(HttpProtocolError, match="403"):
        await open_response(pool, HttpRequest("GET", url), tls=trusted(nginx), **TIMEOUTS)
    with_cert = TlsOptions(
        ca_certificate=str(nginx.ca_cert),
        certificate=str(nginx.client_cert),
        private_key=str(nginx.client_key),
    )
    status, body, _, _ = await fetch(pool, HttpRequest("GET", url), with_cert)
    assert (status, len(body)) == (200, 1 << 20)


def test_ssl_context_options(nginx: NginxServer, tmp_path: object) -> None:
    ctx = make_ssl_context(TlsOptions(min_tls_version="TLSv1.3"))
    assert ctx is make_ssl_context(TlsOptions(min_tls_version="TLSv1.3"))  # cached
    import ssl

    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    with pytest.raises(OptionError):
        make_ssl_context(TlsOptions(min_tls_version="SSLv3"))
    with pytest.raises(OptionError):
        make_ssl_context(TlsOptions(certificate=str(nginx.root / "file1m.bin")))
    with pytest.raises(OptionError):
        make_ssl_context(TlsOptions(ca_certificate="/nonexistent/ca.pem"))


# --- addresses --------------------------------------------------------------------------


async def test_ipv6(nginx: NginxServer, pool: ConnectionPool) -> None:
    data = (nginx.root / "file1m.bin").read_bytes()
    status, body, _, conn = await fetch(pool, HttpRequest("GET", nginx.url6("/file1m.bin"), 5))
    assert (status, body) == (206, data[5:])
    assert conn.stream.peer[0] == "::1"
    status, body, _, conn = await fetch(
        pool, HttpRequest("GET", nginx.https_url6("/file1m.bin")), trusted(nginx)
    )
    assert (status, body) == (200, data)


async def test_disable_ipv6_uses_ipv4(nginx: NginxServer) -> None:
    stream = await open_stream(
        "localhost", nginx.port, tls=None, connect_timeout=10, disable_ipv6=True
    )
    try:
        assert stream.peer[0] == "127.0.0.1"
    finally:
        await stream.aclose()


async def test_connect_refused() -> None:
    with socket.socket() as s:  # a port that is certainly closed: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(ConnectError):
            await open_stream("127.0.0.1", port, tls=None, connect_timeout=10)


async def test_name_resolution_failure() -> None:
    class FailingResolver(trio.abc.HostnameResolver):
        async def getaddrinfo(self, *args: object, **kwargs: object) -> list[object]:  # type: ignore[override]
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        async def getnameinfo(self, *args: object) -> tuple[str, str]:
            raise NotImplementedError

    old = trio.socket.set_custom_hostname_resolver(FailingResolver())
    try:
        with pytest.raises(NameResolveError) as excinfo:
            await open_stream("no-such-host.invalid", 80, tls=None, connect_timeout=10)
        assert excinfo.value.exit_code == ExitCode.NAME_RESOLVE_ERROR
        with pytest.raises(NameResolveError):
            await open_stream(
                "no-such-host.invalid", 80, tls=None, connect_timeout=10, disable_ipv6=True
            )
    finally:
        trio.socket.set_custom_hostname_resolver(old)


async def test_tls_handshake_timeout() -> None:
    # A TCP listener that never speaks TLS: the connect timeout covers the handshake.
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        with pytest.raises(TimeoutError_) as excinfo:
            await open_stream(
                "127.0.0.1", listener.getsockname()[1], tls=TlsOptions(), connect_timeout=0.3
            )
        assert excinfo.value.exit_code == ExitCode.TIME_OUT
    finally:
        listener.close()
