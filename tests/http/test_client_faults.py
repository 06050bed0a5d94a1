"""Each fault of tests/servers/fault.py gives the right trioaria error, and never hangs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypedDict

import pytest
import trio

from tests.servers.fault import FaultServer, run_fault_server_in_thread
from trioaria.base.errors import (
    ExitCode,
    HttpProtocolError,
    NetworkError,
    ReadTimeoutError,
    ServiceUnavailableError,
    TooManyRedirectsError,
)
from trioaria.http.client import ConnectionPool, HttpConnection, open_response
from trioaria.http.proto import HttpRequest, ResponseInfo, check_range_response
from trioaria.net.connect import ByteStream, TlsOptions, read_deadline

pytestmark = pytest.mark.timeout(60)

TLS = TlsOptions()


class Timeouts(TypedDict):
    connect_timeout: float
    read_timeout: float


TIMEOUTS: Timeouts = {"connect_timeout": 5.0, "read_timeout": 5.0}


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    p = ConnectionPool()
    yield p
    await p.aclose()


async def read_all(conn: HttpConnection, *, timeout: float = 10.0) -> bytes:
    buf = memoryview(bytearray(1 << 20))
    out = bytearray()
    with trio.fail_after(20):  # the test's own bound: never hang
        while True:
            with read_deadline(timeout):
                n = await conn.read_into(buf)
            if not n:
                return bytes(out)
            out += buf[:n]


async def get(
    server: FaultServer,
    pool: ConnectionPool,
    path: str,
    start: int | None = None,
    end: int | None = None,
) -> tuple[HttpConnection, ResponseInfo, str]:
    with trio.fail_after(20):
        return await open_response(
            pool, HttpRequest("GET", server.url(path), start, end), tls=TLS, **TIMEOUTS
        )


async def test_honest_mode(fault_server: FaultServer, pool: ConnectionPool) -> None:
    data = fault_server.files["data.bin"]
    conn, info, _ = await get(fault_server, pool, "/ok/data.bin", 1000, 1999)
    assert info.status == 206
    assert await read_all(conn) == data[1000:2000]
    assert fault_server.requests[-1].headers["range"] == "bytes=1000-1999"


@pytest.mark.parametrize("mode", ["drop", "rst"])
async def test_drop_mid_body(fault_server: FaultServer, pool: ConnectionPool, mode: str) -> None:
    conn, info, _ = await get(fault_server, pool, f"/{mode}/data.bin?after=300000")
    assert info.content_length == 1 << 20
    with pytest.raises(NetworkError) as excinfo:
        await read_all(conn)
    assert not isinstance(excinfo.value, ReadTimeoutError)
    assert excinfo.value.exit_code == ExitCode.NETWORK_PROBLEM
    assert not conn.reusable


async def test_stall_mid_body_times_out(fault_server: FaultServer, pool: ConnectionPool) -> None:
    conn, _, _ = await get(fault_server, pool, "/stall/data.bin?after=1000")
    with pytest.raises(ReadTimeoutError) as excinfo:
        await read_all(conn, timeout=0.3)
    assert excinfo.value.exit_code == ExitCode.TIME_OUT
    assert not conn.reusable
    pool.release(conn)
    assert pool.statistics().idle == 0


async def test_stall_before_head_times_out(fault_server: FaultServer, pool: ConnectionPool) -> None:
    with trio.fail_after(20), pytest.raises(ReadTimeoutError):
        await open_response(
            pool,
            HttpRequest("GET", fault_server.url("/stallhead/data.bin")),
            tls=TLS,
            connect_timeout=5,
            read_timeout=0.3,
        )


async def test_lying_content_range(fault_server: FaultServer, pool: ConnectionPool) -> None:
    with pytest.raises(HttpProtocolError) as excinfo:
        await get(fault_server, pool, "/liecr/data.bin", 100, 199)
    assert excinfo.value.exit_code == ExitCode.CANNOT_RESUME


async def test_total_length_changes(fault_server: FaultServer, pool: ConnectionPool) -> None:
    conn, first, _ = await get(fault_server, pool, "/growing/data.bin", 0, 99)
    await read_all(conn)
    pool.release(conn)
    check_range_response(first, 0, 99, 1 << 20)
    conn, second, _ = await get(fault_server, pool, "/growing/data.bin", 100, 199)
    with pytest.raises(HttpProtocolError) as excinfo:
        check_range_response(second, 100, 199, first.total_length)
    assert excinfo.value.exit_code == ExitCode.CANNOT_RESUME
    assert second.total_length == (1 << 20) + 1000


async def test_truncated_chunked_body(fault_server: FaultServer, pool: ConnectionPool) -> None:
    conn, info, _ = await get(fault_server, pool, "/truncchunk/data.bin")
    assert info.chunked
    with pytest.raises(NetworkError, match="chunked"):
        await read_all(conn)


async def test_bad_chunk_size(fault_server: FaultServer, pool: ConnectionPool) -> None:
    conn, _, _ = await get(fault_server, pool, "/badchunk/data.bin")
    with pytest.raises(HttpProtocolError):
        await read_all(conn)
    assert not conn.reusable


async def test_server_ignores_range(fault_server: FaultServer, pool: ConnectionPool) -> None:
    conn, info, _ = await get(fault_server, pool, "/norange/data.bin", 5000)
    assert (info.status, info.accept_ranges, info.total_length) == (200, False, 1 << 20)
    assert await read_all(conn) == fault_server.files["data.bin"]


async def test_416_is_returned(fault_server: FaultServer, pool: ConnectionPool) -> None:
    conn, info, _ = await get(fault_server, pool, "/416/data.bin", 1 << 20)
    assert (info.status, info.total_length) == (416, 1 << 20)
    assert await read_all(conn) == b""


async def test_503_retry_after(fault_server: FaultServer, pool: ConnectionPool) -> None:
    with pytest.raises(ServiceUnavailableError) as excinfo:
        await get(fault_server, pool, "/503?retry=7")
    assert excinfo.value.retry_after == 7.0  # type: ignore[attr-defined]
    assert excinfo.value.exit_code == ExitCode.HTTP_SERVICE_UNAVAILABLE


async def test_redirect_limit_is_20(fault_server: FaultServer, pool: ConnectionPool) -> None:
    conn, info, url = await get(fault_server, pool, "/redirect/20")
    assert (info.status, url) == (200, fault_server.url("/redirect/0"))
    pool.release(conn)
    with pytest.raises(TooManyRedirectsError):
        await get(fault_server, pool, "/redirect/21")
    with pytest.raises(TooManyRedirectsError):
        await get(fault_server, pool, "/loop")
    conn, _, _ = await open_response(
        pool,
        HttpRequest("GET", fault_server.url("/redirect/2")),
        tls=TLS,
        max_redirects=2,
        **TIMEOUTS,
    )
    pool.release(conn)
    with pytest.raises(TooManyRedirectsError):
        await open_response(
            pool,
            HttpRequest("GET", fault_server.url("/redirect/2")),
            tls=TLS,
            max_redirects=1,
            **TIMEOUTS,
        )


async def test_other_status(fault_server: FaultServer, pool: ConnectionPool) -> None:
    with pytest.raises(HttpProtocolError, match="418"):
        await get(fault_server, pool, "/status/418")


async def test_http10_body_until_close(fault_server: FaultServer, pool: ConnectionPool) -> None:
    conn, info, _ = await get(fault_server, pool, "/http10/data.bin")
    assert (info.content_length, info.keep_alive) == (None, False)
    assert await read_all(conn) == fault_server.files["data.bin"]
    assert not conn.reusable


async def test_stale_keepalive_dropped_at_acquire(
    fault_server: FaultServer, pool: ConnectionPool
) -> None:
    conn, _, _ = await get(fault_server, pool, "/keepclose/data.bin")
    await read_all(conn)
    pool.release(conn)
    assert pool.statistics().idle == 1
    # wait (bounded) until the server's FIN has arrived, so the idle socket reads EOF
    with trio.fail_after(5):
        while not conn.stream.is_readable():
            await trio.sleep(0.01)
    conn2, info, _ = await get(fault_server, pool, "/ok/data.bin")
    assert conn2 is not conn
    assert info.status == 200
    assert fault_server.connections == 2


async def test_stale_keepalive_retried_once(
    fault_server: FaultServer, pool: ConnectionPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection: pretend the idle check saw nothing, so the request really goes out on
    # the dead connection; open_response must retry once on a fresh connection.
    monkeypatch.setattr(ByteStream, "is_readable", lambda self: False)
    conn, _, _ = await get(fault_server, pool, "/keepclose/data.bin")
    await read_all(conn)
    pool.release(conn)
    conn2, info, _ = await get(fault_server, pool, "/ok/data.bin", 0, 9)
    assert info.status == 206
    assert conn2 is not conn
    assert conn2.requests_sent == 1
    assert pool.statistics().reused == 1


async def test_never_reads_past_content_length(
    fault_server: FaultServer, pool: ConnectionPool
) -> None:
    conn, _, _ = await get(fault_server, pool, "/extra/data.bin")
    assert await read_all(conn) == fault_server.files["data.bin"]
    pool.release(conn)
    # the junk is still unread on the socket: the idle check refuses to reuse it
    with trio.fail_after(5):
        while not conn.stream.is_readable():
            await trio.sleep(0.01)
    conn2, info, _ = await get(fault_server, pool, "/ok/data.bin", 0, 0)
    assert conn2 is not conn
    assert info.status == 206


async def test_request_before_body_read_is_refused(
    fault_server: FaultServer, pool: ConnectionPool
) -> None:
    conn, _, _ = await get(fault_server, pool, "/ok/data.bin")
    with pytest.raises(Exception, match="previous body"):
        await conn.request(HttpRequest("GET", fault_server.url("/ok/data.bin")))


async def test_discard_body_limits(fault_server: FaultServer, pool: ConnectionPool) -> None:
    conn, _, _ = await get(fault_server, pool, "/ok/data.bin")
    assert await conn.discard_body(limit=1000) is False  # 1 MiB is too big
    pool.release(conn)
    conn, _, _ = await get(fault_server, pool, "/ok/data.bin", 0, 499)
    assert await conn.discard_body(limit=1000) is True
    assert conn.reusable


def test_fault_server_in_thread() -> None:
    server = FaultServer({"x.bin": b"0123456789"})
    port, stop = run_fault_server_in_thread(server)
    try:

        async def client() -> bytes:
            pool = ConnectionPool()
            conn, _info, _ = await open_response(
                pool,
                HttpRequest("GET", f"http://127.0.0.1:{port}/ok/x.bin", 2, 5),
                tls=TLS,
                **TIMEOUTS,
            )
            body = await read_all(conn)
            await pool.aclose()
            return body

        assert trio.run(client) == b"2345"
        assert server.requests[-1].target == "/ok/x.bin"
    finally:
        stop()
