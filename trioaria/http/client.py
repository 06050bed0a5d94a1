"""HTTP/1.1 client driver on trio: h11 for the head, ``recv_into`` for the body.

Theory of operation
-------------------
One :class:`HttpConnection` is one keep-alive TCP/TLS connection to one origin.
:meth:`HttpConnection.request` sends the head through a fresh ``h11.Connection`` and lets
h11 parse the response head (1xx skipped).  From then on h11 is set aside: the body is
read by :meth:`HttpConnection.read_into` straight into the caller's reused buffer (docs/performance.md
§4, docs/design.md), starting with the bytes h11 had already buffered (``trailing_data``).
``Content-Length`` bodies are never read past their end, so the connection stays usable;
chunked bodies go through :class:`~trioaria.http.chunked.ChunkedDecoder`.

HTTP/1.1 pipelining (RFC 9112 §9.3, aria2 ``--enable-http-pipelining``): while a response
body with a known length is still being read, :meth:`HttpConnection.pipeline` sends the next
request at once, so the server starts that response without waiting a round trip.  The
connection keeps a FIFO of such requests, each with the ``h11.Connection`` that will parse
its answer; bytes that arrived past the current response (the start of the next one) are
kept aside, never taken as body.  :meth:`HttpConnection.request` for the request at the head
of the FIFO sends nothing: it just reads that response's head.  A connection with a queued
request is never handed back to the pool; a body abandoned half-way means the queued
responses cannot be skipped safely, so such a connection is closed.

:class:`ConnectionPool` keeps idle connections per origin (aria2
``--enable-http-keep-alive``); it decides synchronously, and closing is synchronous too
(:meth:`~trioaria.net.connect.ByteStream.close_nowait`), so ``release`` never needs to await.
:func:`open_response` ties them together and follows redirects like aria2 (at most 20:
src/Request.h ``MAX_REDIRECT``; exit 23 beyond).

Timeouts are cancel scopes held by the caller (trio's rule).  Wrap each
:meth:`HttpConnection.read_into` in :func:`trioaria.net.connect.read_deadline` (or
``trio.fail_after`` and map ``trio.TooSlowError`` yourself): a read cancelled by a timeout
consumes no bytes, and the connection is then simply not :attr:`~HttpConnection.reusable`
(its body is unfinished), so the pool closes it on release.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import h11
import trio

from ..base.errors import (
    AuthError,
    HttpProtocolError,
    LocalProtocolError,
    NetworkError,
    TimeoutError_,
    TooManyRedirectsError,
    TrioariaError,
)
from ..net.connect import ByteStream, TlsOptions, open_stream, read_deadline
from .chunked import ChunkedDecoder
from .proto import (
    MAX_REDIRECTS,
    BodyFraming,
    HttpRequest,
    ResponseInfo,
    body_framing,
    check_range_response,
    classify_status,
    is_redirect,
    parse_response,
    parse_url,
    resolve_redirect,
    to_h11_request,
)

if TYPE_CHECKING:
    from ..net.proxy import Proxy, ProxyRoute, ProxySettings
    from .cookies import CookieJar

__all__ = [
    "ConnectionPool",
    "HttpConnection",
    "PoolStatistics",
    "SchemeRedirect",
    "open_response",
]

_HEAD_RECEIVE = 64 * 1024
_MAX_HEAD = 64 * 1024
_CHUNKED_SCRATCH = 256 * 1024


class SchemeRedirect(TrioariaError):
    """A redirect to a URI that is not ``http``/``https`` (``ftp://``, ``sftp://``, ...).

    :func:`open_response` cannot follow it; :class:`~trioaria.http.source.HttpSource` hands
    *target* to the driver of its scheme, or ends with this error (exit 1, not retried).

    Attributes:
        target: the absolute URI the redirect leads to.
        location: the ``Location`` header exactly as the server sent it.
        origin_url: the URL whose answer was the redirect.
    """

    retryable = False

    def __init__(self, target: str, location: str, origin_url: str) -> None:
        super().__init__(f"{origin_url}: redirected to an unsupported URI: {location}")
        self.target = target
        self.location = location
        self.origin_url = origin_url

    @property
    def scheme(self) -> str:
        """The target's scheme, lower case."""
        return self.target.partition(":")[0].lower()


@contextmanager
def _map_h11() -> Iterator[None]:
    try:
        yield
    except h11.RemoteProtocolError as exc:
        raise HttpProtocolError(f"malformed HTTP response: {exc}") from None
    except h11.LocalProtocolError as exc:
        raise LocalProtocolError(f"cannot send HTTP request: {exc}") from None


class HttpConnection:
    """One keep-alive TCP/TLS connection to one origin.

    Use: ``info = await conn.request(req)``, then ``await conn.read_into(buf)`` until it
    returns 0 (or :meth:`discard_body`), then the next request.  One task at a time.
    Pipelining: ``await conn.pipeline(req2)`` while the body is read; once it is read to
    its end, ``await conn.request(req2)`` reads the answer to the request already sent.

    Attributes:
        origin: ``(scheme, host, port)``.
        requests_sent: requests sent on this connection so far.
    """

    def __init__(
        self, stream: ByteStream, origin: tuple[str, str, int], *, forward: Proxy | None = None
    ) -> None:
        self._stream = stream
        self.origin = origin
        #: the forwarding proxy this connection goes to (requests in absolute form), if any
        self.forward = forward
        self.requests_sent = 0
        self._framing: BodyFraming | None = None  # None: no response in progress
        self._leftover = memoryview(b"")
        self._remaining = 0
        self._decoder: ChunkedDecoder | None = None
        self._pending: list[memoryview] = []
        self._scratch: bytearray | None = None
        self._keep_alive = False
        self._body_done = True
        self._broken = False
        # pipelined requests already sent, oldest first, with the h11 state that parses
        # their answers; and bytes received past the current response (the next one's start)
        self._queued: deque[tuple[HttpRequest, h11.Connection]] = deque()
        self._surplus = b""

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        tls: TlsOptions,
        connect_timeout: float,
        disable_ipv6: bool = False,
        rcvbuf: int = 0,
        route: ProxyRoute | None = None,
    ) -> HttpConnection:
        """Open a connection to *url*'s origin (TLS for ``https``); *rcvbuf* as open_stream's.

        *route* (:meth:`trioaria.net.proxy.ProxySettings.route`): through a proxy, either a
        tunnel to the origin (``CONNECT`` or SOCKS) or a connection to a forwarding proxy
        that is sent absolute-form requests with ``Proxy-Authorization``.

        Raises:
            HttpProtocolError: bad URL.  NetworkError and subclasses, TimeoutError_: see
            :func:`trioaria.net.connect.open_stream`.
        """
        parsed = parse_url(url)
        if route is not None and not route.tunnel:
            proxy = route.proxy
            try:
                stream = await open_stream(
                    proxy.host,
                    proxy.port,
                    tls=tls if proxy.tls else None,
                    connect_timeout=connect_timeout,
                    disable_ipv6=disable_ipv6,
                    rcvbuf=rcvbuf,
                )
            except NetworkError as exc:
                exc.message = f"cannot reach the proxy {proxy.label}: {exc.message}"
                raise
            return cls(stream, parsed.origin, forward=proxy)
        if parsed.scheme not in ("http", "https"):
            raise HttpProtocolError(f"unsupported URL scheme in {url!r} (want http or https)")
        stream = await open_stream(
            parsed.host,
            parsed.port,
            tls=tls if parsed.scheme == "https" else None,
            connect_timeout=connect_timeout,
            disable_ipv6=disable_ipv6,
            rcvbuf=rcvbuf,
            proxy=route.proxy if route is not None else None,
            proxy_tls=tls,
        )
        return cls(stream, parsed.origin)

    def _h11_request(self, req: HttpRequest) -> h11.Request:
        if self.forward is None:
            return to_h11_request(req)
        return to_h11_request(
            req, absolute_form=True, proxy_authorization=self.forward.authorization()
        )

    # -- request / response head ------------------------------------------------------

    async def request(self, req: HttpRequest, *, now: float | None = None) -> ResponseInfo:
        """Send *req* and read the response head (1xx responses are skipped).

        If *req* was already sent with :meth:`pipeline` (it must then be the oldest one
        queued), nothing is sent: its response head is read.

        Args:
            req: the request; its URL must be on this connection's origin.
            now: POSIX time for ``Retry-After`` dates (optional).

        Raises:
            LocalProtocolError: the previous body was not finished, the request is bad, or
                another request is queued ahead of it.
            NetworkError: the connection failed or closed before a full head arrived (or,
                for a queued request, the previous response announced ``Connection: close``).
            HttpProtocolError: the head is malformed.
        """
        if self._broken or self._stream.closed:
            raise LocalProtocolError("request() on a closed or broken connection")
        if not self._body_done:
            raise LocalProtocolError("request() before the previous body was read")
        if parse_url(req.url).origin != self.origin:
            raise LocalProtocolError(f"{req.url} is not on origin {self.origin}")
        initial = b""
        if self._queued:
            queued, conn = self._queued[0]
            if queued != req:
                raise LocalProtocolError("another request is pipelined ahead on this connection")
            self._queued.popleft()
            self._broken = True  # until the head is in
            if not self._keep_alive:
                # the previous response ended the connection: this request is never answered
                raise NetworkError("the server closed the connection before a pipelined request")
            initial, self._surplus = self._surplus, b""
        else:
            self._broken = True  # until the head is in
            conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
            with _map_h11():
                data = conn.send(self._h11_request(req))
                data = (data or b"") + (conn.send(h11.EndOfMessage()) or b"")
            self.requests_sent += 1
            await self._stream.send_all(data)
        event = await self._read_head(conn, initial)
        info = parse_response(event, request_method=req.method, now=now)
        framing = body_framing(info, req.method)
        leftover, _closed = conn.trailing_data
        self._keep_alive = info.keep_alive and req.keep_alive
        self._framing = framing
        self._decoder = None
        self._pending = []
        if framing.kind == "none":
            self._body_done = True
            if leftover:  # bytes after a body-less response: the next pipelined answer, or junk
                self._extra(leftover)
        elif framing.kind == "length":
            assert framing.length is not None
            self._remaining = framing.length
            if len(leftover) > framing.length:
                self._extra(leftover[framing.length :])
                leftover = leftover[: framing.length]
            self._leftover = memoryview(leftover)
            self._body_done = framing.length == 0
        elif framing.kind == "chunked":
            self._decoder = ChunkedDecoder()
            self._leftover = memoryview(leftover)  # decoded by the first read_into()
            self._body_done = False
        else:  # until close: never reusable
            self._keep_alive = False
            self._leftover = memoryview(leftover)
            self._body_done = False
        self._broken = False
        return info

    async def _read_head(self, conn: h11.Connection, initial: bytes) -> h11.Response:
        if initial:
            conn.receive_data(initial)
        received = len(initial)
        while True:
            with _map_h11():
                event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await self._stream.receive_some(_HEAD_RECEIVE)
                if not chunk:
                    where = "before responding" if received == 0 else "inside the response head"
                    raise NetworkError(f"server closed the connection {where}")
                received += len(chunk)
                conn.receive_data(chunk)
                continue
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                return event
            raise HttpProtocolError(f"unexpected HTTP event {type(event).__name__}")

    def _extra(self, data: bytes) -> None:
        """Bytes past the current response: the next pipelined answer's start, else junk."""
        if self._queued:
            self._surplus = bytes(data)
        else:
            self._keep_alive = False

    @property
    def can_pipeline(self) -> bool:
        """Whether :meth:`pipeline` may send a request now: a response is in progress on a
        healthy keep-alive connection and its end is known without reading past it (a
        ``Content-Length`` or body-less response, or a body already read)."""
        framing = self._framing
        return (
            framing is not None
            and self._keep_alive
            and not self._broken
            and not self._stream.closed
            and (framing.kind in ("length", "none") or self._body_done)
        )

    @property
    def pipelined(self) -> int:
        """Requests sent with :meth:`pipeline` whose response head is not read yet."""
        return len(self._queued)

    async def pipeline(self, req: HttpRequest) -> None:
        """Send *req* now, before the current response is read (HTTP/1.1 pipelining).

        Read the current body to its end, then call :meth:`request` with the same *req*
        to get its response.  Only idempotent requests belong here (RFC 9112 §9.3.2); the
        callers send ``GET``.

        Raises:
            LocalProtocolError: :attr:`can_pipeline` is false, or the request is bad.
            NetworkError: sending failed (the connection is then broken).
        """
        if not self.can_pipeline:
            raise LocalProtocolError("cannot pipeline a request on this connection now")
        if parse_url(req.url).origin != self.origin:
            raise LocalProtocolError(f"{req.url} is not on origin {self.origin}")
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
        with _map_h11():
            data = conn.send(self._h11_request(req))
            data = (data or b"") + (conn.send(h11.EndOfMessage()) or b"")
        self._queued.append((req, conn))
        self.requests_sent += 1
        try:
            await self._stream.send_all(data)
        except BaseException:
            self._broken = True  # maybe half a request on the wire
            raise

    # -- body -------------------------------------------------------------------------

    async def read_into(self, buf: memoryview) -> int:
        """Read the next body bytes into *buf*; return the count, ``0`` at the end of body.

        Never reads past a ``Content-Length`` body.  Body-less responses return 0 at once.

        Raises:
            NetworkError: the connection closed before the body was complete (premature
                EOF, truncated chunked body) or failed.
            HttpProtocolError: malformed chunked framing.
        """
        framing = self._framing
        if framing is None or self._body_done or not buf:
            await trio.lowlevel.checkpoint()
            return 0
        if self._broken:
            raise LocalProtocolError("read_into() on a broken connection")
        if framing.kind == "chunked":
            return await self._read_chunked(buf)
        if self._leftover:
            size = min(len(buf), len(self._leftover))
            buf[:size] = self._leftover[:size]
            self._leftover = self._leftover[size:]
            self._account(framing, size)
            await trio.lowlevel.checkpoint()
            return size
        if framing.kind == "length":
            buf = buf[: self._remaining]
        try:
            size = await self._stream.receive_into(buf)
        except NetworkError:
            self._broken = True
            raise
        if size == 0:
            if framing.kind == "close":
                self._body_done = True
                return 0
            self._broken = True
            got = (framing.length or 0) - self._remaining
            raise NetworkError(f"connection closed after {got} of {framing.length} body bytes")
        self._account(framing, size)
        return size

    def _account(self, framing: BodyFraming, size: int) -> None:
        if framing.kind == "length":
            self._remaining -= size
            if self._remaining == 0:
                self._body_done = True

    async def _read_chunked(self, buf: memoryview) -> int:
        decoder = self._decoder
        assert decoder is not None
        received = False
        while not self._pending:
            if decoder.done:
                self._body_done = True
                if decoder.unused:
                    self._extra(decoder.unused)
                await trio.lowlevel.checkpoint()
                return 0
            if self._leftover:
                data, self._leftover = self._leftover, memoryview(b"")
            else:
                if self._scratch is None:
                    self._scratch = bytearray(_CHUNKED_SCRATCH)
                scratch = memoryview(self._scratch)
                try:
                    size = await self._stream.receive_into(scratch)
                except NetworkError:
                    self._broken = True
                    raise
                if size == 0:
                    self._broken = True
                    raise NetworkError(
                        f"connection closed inside a chunked body "
                        f"after {decoder.payload_bytes} payload bytes"
                    )
                data = scratch[:size]
                received = True
            try:
                self._pending = decoder.feed(data)
            except HttpProtocolError:
                self._broken = True
                raise
        total = 0
        while self._pending and total < len(buf):
            piece = self._pending[0]
            take = min(len(piece), len(buf) - total)
            buf[total : total + take] = piece[:take]
            total += take
            if take == len(piece):
                self._pending.pop(0)
            else:
                self._pending[0] = piece[take:]
        if not self._pending and decoder.done:
            self._body_done = True
            if decoder.unused:
                self._extra(decoder.unused)
        if not received:
            await trio.lowlevel.checkpoint()
        return total

    async def discard_body(self, limit: int = 64 * 1024) -> bool:
        """Read and drop a small body (redirect or error page) to keep the connection.

        Returns:
            ``True`` if the body was read to its end; ``False`` if it is longer than *limit*
            or delimited by the connection closing (the caller should close).
        """
        framing = self._framing
        if framing is None or self._body_done:
            await trio.lowlevel.checkpoint()
            return True
        if framing.kind == "close" or (framing.kind == "length" and self._remaining > limit):
            await trio.lowlevel.checkpoint()
            return False
        scratch = memoryview(bytearray(min(limit, 64 * 1024) or 1))
        seen = 0
        while True:
            size = await self.read_into(scratch)
            if size == 0:
                return True
            seen += size
            if seen > limit:
                return False

    @property
    def body_done(self) -> bool:
        """The current response's body has been read completely."""
        return self._body_done

    @property
    def reusable(self) -> bool:
        """Body fully read, keep-alive allowed, nothing broken, not closed, no request
        pipelined (such a connection belongs to whoever reads that answer)."""
        return (
            self._body_done
            and self._keep_alive
            and not self._broken
            and not self._stream.closed
            and self._framing is not None
            and not self._queued
        )

    @property
    def alive(self) -> bool:
        """Not closed and not broken (a queued answer may still be read)."""
        return not self._broken and not self._stream.closed

    @property
    def stream(self) -> ByteStream:
        """The underlying byte stream."""
        return self._stream

    def close_nowait(self) -> None:
        """Close at once (synchronous)."""
        self._broken = True
        self._stream.close_nowait()

    async def aclose(self) -> None:
        """Close the connection."""
        self._broken = True
        await self._stream.aclose()


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """Snapshot of a :class:`ConnectionPool`.

    Attributes:
        idle: connections waiting for reuse.
        opened: connections opened so far.
        reused: times an idle connection was handed out again.
    """

    idle: int
    opened: int
    reused: int


class ConnectionPool:
    """Idle keep-alive connections per origin (and per TLS settings).

    Args:
        max_idle_per_origin: idle connections kept per origin (older ones are closed).
        enabled: ``False`` never keeps a connection (``--enable-http-keep-alive=false``).
    """

    def __init__(
        self,
        *,
        max_idle_per_origin: int = 16,
        enabled: bool = True,
        rcvbuf: int = 0,
        proxies: ProxySettings | None = None,
    ) -> None:
        #: which connections go through which proxy (``--all-proxy`` and friends); ``None``:
        #: none (then trioaria.net.proxy is never imported: start-up time, issue 15)
        self.proxies = proxies
        self.rcvbuf = (
            rcvbuf  # SO_RCVBUF for new connections (trioaria.net.connect.recv_buffer_size)
        )
        self._idle: dict[tuple[object, ...], list[HttpConnection]] = {}
        self._keys: dict[int, tuple[object, ...]] = {}
        self._max_idle = max_idle_per_origin
        self._enabled = enabled
        self._closed = False
        self._opened = 0
        self._reused = 0

    @staticmethod
    def _key(
        origin: tuple[str, str, int],
        tls: TlsOptions,
        disable_ipv6: bool,
        route: ProxyRoute | None = None,
    ) -> tuple[object, ...]:
        with_tls = origin[0] == "https" or (route is not None and route.proxy.tls)
        return (*origin, tls if with_tls else None, disable_ipv6, route)

    async def acquire(
        self,
        url: str,
        *,
        tls: TlsOptions,
        connect_timeout: float,
        disable_ipv6: bool = False,
        fresh: bool = False,
    ) -> HttpConnection:
        """An idle connection to *url*'s origin, or a new one (*fresh* forces new).

        Idle connections the server already closed are dropped here (a readable idle
        socket means EOF or garbage).
        """
        if self._closed:
            raise LocalProtocolError("the connection pool is closed")
        parsed = parse_url(url)
        route = None if self.proxies is None else self.proxies.route(parsed.scheme, parsed.host)
        key = self._key(parsed.origin, tls, disable_ipv6, route)
        idle = self._idle.get(key, [])
        while idle and not fresh:
            conn = idle.pop()
            if conn.stream.is_readable():
                conn.close_nowait()
                continue
            self._reused += 1
            await trio.lowlevel.checkpoint()
            return conn
        conn = await HttpConnection.connect(
            url,
            tls=tls,
            connect_timeout=connect_timeout,
            disable_ipv6=disable_ipv6,
            rcvbuf=self.rcvbuf,
            route=route,
        )
        self._keys[id(conn)] = key
        self._opened += 1
        return conn

    def release(self, conn: HttpConnection) -> None:
        """Give *conn* back: kept if reusable, else closed at once (synchronously)."""
        key = self._keys.pop(id(conn), None)
        if key is None or self._closed or not self._enabled or not conn.reusable:
            conn.close_nowait()
            return
        self._keys[id(conn)] = key
        idle = self._idle.setdefault(key, [])
        idle.append(conn)
        while len(idle) > self._max_idle:
            old = idle.pop(0)
            self._keys.pop(id(old), None)
            old.close_nowait()

    def statistics(self) -> PoolStatistics:
        """A snapshot of the pool's counters."""
        return PoolStatistics(
            idle=sum(len(v) for v in self._idle.values()),
            opened=self._opened,
            reused=self._reused,
        )

    async def aclose(self) -> None:
        """Close every idle connection; later releases just close."""
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                self._keys.pop(id(conn), None)
                conn.close_nowait()
        await trio.lowlevel.checkpoint()


def with_cookies(req: HttpRequest, jar: CookieJar | None) -> HttpRequest:
    """*req* with the ``Cookie`` header the jar holds for its URL (RFC 6265 §5.4).

    A ``Cookie`` given with ``--header`` is kept and the jar's cookies follow it in the same
    header: §5.4 allows one ``Cookie`` header only.  A jar cookie header of an earlier hop
    of a redirect chain is replaced.
    """
    if jar is None:
        return req
    url = parse_url(req.url)
    value = jar.header_for(url.host, url.target, secure=url.scheme == "https", now=time.time())
    headers = [(k, v) for k, v in req.headers if k != _JAR_COOKIE]
    if value is not None:
        headers.append((_JAR_COOKIE, value))
    return dataclasses.replace(req, headers=tuple(headers))


def take_cookies(jar: CookieJar | None, url: str, info: ResponseInfo) -> None:
    """Store the ``Set-Cookie`` headers of a response to *url* in the jar."""
    if jar is None:
        return
    parsed = None
    for name, value in info.headers:
        if name == "set-cookie":
            parsed = parsed or parse_url(url)
            jar.receive(value, parsed.host, parsed.target, time.time())


#: The header name the jar's cookies travel under: ``Cookie``, spelled so that it is told
#: apart from a ``--header "Cookie: ..."`` of the user (header names are case-insensitive on
#: the wire; :func:`~trioaria.http.proto.build_request` merges both into one header).
_JAR_COOKIE = "cookie"


async def open_response(
    pool: ConnectionPool,
    req: HttpRequest,
    *,
    max_redirects: int = MAX_REDIRECTS,
    tls: TlsOptions,
    connect_timeout: float,
    read_timeout: float,
    disable_ipv6: bool = False,
    now: float | None = None,
    pipelined: HttpConnection | None = None,
    cookies: CookieJar | None = None,
) -> tuple[HttpConnection, ResponseInfo, str]:
    """Send *req*, follow redirects, and return the connection positioned at the body.

    Redirects (301/302/303/307/308) are followed up to *max_redirects* times (aria2: 20);
    303 turns the method into GET (HEAD stays HEAD).  ``Authorization`` is dropped when a
    redirect leaves the origin.  A request that fails on a *reused* connection before any
    response byte (the server closed an idle keep-alive connection) is retried once on a
    fresh connection.  Error statuses are raised with
    :func:`~trioaria.http.proto.classify_status`, except 416 which is returned (the caller
    decides, e.g. "already complete").  A 206 is checked against the requested range with
    :func:`~trioaria.http.proto.check_range_response`.

    *pipelined*: a connection on which *req* was already sent with
    :meth:`HttpConnection.pipeline` (its previous body read to the end); only its answer is
    read.  If that connection closed before answering, *req* is sent again on a fresh one.

    *cookies*: the run's jar (RFC 6265).  Every request of the chain, redirects included,
    carries the ``Cookie`` header for its own URL (:func:`with_cookies`), and every
    response's ``Set-Cookie`` headers are stored before the next hop is sent.

    Returns:
        ``(connection, info, final_url)``.  Read the body with ``connection.read_into``,
        then hand the connection back with ``pool.release``.

    Raises:
        TooManyRedirectsError: more than *max_redirects* redirects (exit 23).
        SchemeRedirect: a redirect to another scheme (``ftp://``...); the connection was
            handed back to the pool.
        HttpProtocolError: no or unusable ``Location``; a lying ``Content-Range``.
        NotFoundError, AuthError, ServiceUnavailableError: as classify_status.
        NetworkError, TimeoutError_, ReadTimeoutError: connection problems.
    """
    redirects = 0
    elsewhere: SchemeRedirect | None = None
    while True:
        if pipelined is not None:
            conn, pipelined = pipelined, None
        else:
            req = with_cookies(req, cookies)
            conn = await pool.acquire(
                req.url, tls=tls, connect_timeout=connect_timeout, disable_ipv6=disable_ipv6
            )
        try:
            try:
                with read_deadline(read_timeout, f"waiting for the response from {req.url}"):
                    info = await conn.request(req, now=now)
            except NetworkError as exc:
                if isinstance(exc, TimeoutError_) or conn.requests_sent <= 1:
                    raise
                # A reused keep-alive connection the server had closed: retry once, fresh.
                conn.close_nowait()
                pool.release(conn)
                conn = await pool.acquire(
                    req.url,
                    tls=tls,
                    connect_timeout=connect_timeout,
                    disable_ipv6=disable_ipv6,
                    fresh=True,
                )
                with read_deadline(read_timeout, f"waiting for the response from {req.url}"):
                    info = await conn.request(req, now=now)
            take_cookies(cookies, req.url, info)
            if is_redirect(info):
                if info.location is None:
                    raise HttpProtocolError(f"HTTP {info.status} redirect without Location")
                if redirects >= max_redirects:
                    raise TooManyRedirectsError(f"too many redirects: count={redirects}")
                target = resolve_redirect(req.url, info.location)
                if target.partition(":")[0].lower() not in ("http", "https"):
                    # another driver's URI (ftp://...): the caller decides (HttpSource)
                    elsewhere = SchemeRedirect(target, info.location.strip(), req.url)
                else:
                    headers = req.headers
                    if parse_url(target).origin != parse_url(req.url).origin:
                        headers = tuple((k, v) for k, v in headers if k.lower() != "authorization")
                    else:  # a Digest answer names its request target: not the next one's
                        headers = tuple(
                            (k, v)
                            for k, v in headers
                            if not (k.lower() == "authorization" and v.startswith("Digest "))
                        )
                method = "GET" if info.status == 303 and req.method != "HEAD" else req.method
                with read_deadline(read_timeout, "reading a redirect body"):
                    await conn.discard_body()
            elif info.status >= 400 and info.status != 416:
                with read_deadline(read_timeout, "reading an error body"):
                    await conn.discard_body()
            elif info.status == 206:
                check_range_response(info, req.range_start, req.range_end)
        except BaseException:
            conn.close_nowait()
            pool.release(conn)
            raise
        if elsewhere is not None:
            pool.release(conn)
            raise elsewhere
        if is_redirect(info):
            pool.release(conn)
            req = dataclasses.replace(req, url=target, method=method, headers=headers)
            redirects += 1
            continue
        if info.status >= 400 and info.status != 416:
            pool.release(conn)
            try:
                classify_status(info)
            except AuthError as exc:
                exc.url = req.url  # where the challenge came from (redirects followed)
                raise
        return conn, info, req.url
