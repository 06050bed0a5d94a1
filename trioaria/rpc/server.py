"""The RPC server: h11 HTTP and wsproto WebSocket on trio, notifications (driver).

Theory of operation
-------------------
One listener (loopback only unless ``--rpc-listen-all``) and one task per connection, all in
the nursery the caller starts :meth:`RpcServer.serve` in; cancelling that nursery (aria2's
``shutdown``) closes everything.  A connection is an h11 server loop:

* ``POST /jsonrpc``: a JSON-RPC request or batch (:mod:`trioaria.rpc.jsonrpc`);
* ``GET /jsonrpc?method=..&id=..&params=BASE64[&jsoncallback=CB]``: the same, JSONP when asked;
* ``POST /rpc``: XML-RPC (:mod:`trioaria.rpc.xmlrpc`); a body that does not parse is HTTP 400;
* ``OPTIONS``: CORS preflight, answered with the allowed methods when
  ``--rpc-allow-origin-all`` is on (every answer then carries
  ``Access-Control-Allow-Origin: *``);
* ``GET /jsonrpc`` with ``Upgrade: websocket``: the connection becomes a WebSocket
  (RFC 6455 through wsproto); each text message is a JSON-RPC request or batch and is answered
  in a text message, and the server pushes ``aria2.onDownload*`` notifications.

The method table (:mod:`trioaria.rpc.methods`) runs synchronously between two awaits.  As in
aria2, an answer that is not authorized (wrong ``token:``) is held back for
``unauthorized_delay`` seconds to slow down guessing, and an error answer closes the HTTP
connection.  A body larger than ``--rpc-max-request-size`` is refused with HTTP 413 and a
JSON-RPC error (aria2 silently closes the connection); a WebSocket message larger than that
closes the WebSocket with status 1009.  An HTTP answer is gzipped when the request's
``Accept-Encoding`` allows it (as aria2 does).  Idle connections are closed after
:data:`IDLE_TIMEOUT` seconds.

``--rpc-web-ui`` adds ``GET /`` and ``GET /webui.js``: the small web page of
:mod:`trioaria.rpc.webui`, itself a JSON-RPC client of this server.

``--rpc-secure`` wraps every listener in TLS (``trio.SSLListener`` with ``--rpc-certificate`` and
``--rpc-private-key``): the same routes over https and wss.  ``--rpc-user``/``--rpc-passwd``
(deprecated in aria2, still accepted) require RFC 7617 Basic credentials on every request,
WebSocket upgrades included; a request without them gets 401 and a ``WWW-Authenticate``
challenge.

Each WebSocket client has a bounded queue of outgoing frames fed by responses and
notifications; a client that stops reading and lets its queue fill up is disconnected rather
than allowed to hold the engine back.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import gzip
import hmac
import logging
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import h11
import trio
from wsproto import ConnectionType
from wsproto.connection import Connection as WsConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    TextMessage,
)
from wsproto.events import (
    Request as WsRequest,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from ..base.errors import TrioariaError
from . import jsonrpc, webui, xmlrpc
from .messages import INVALID_REQUEST, RpcResponse, error_response
from .methods import Backend, dispatch

if TYPE_CHECKING:
    from ..engine.factory import GroupFactory

__all__ = [
    "IDLE_TIMEOUT",
    "NOTIFICATION_METHODS",
    "SEEDING_POLL",
    "RpcConfig",
    "RpcServer",
    "open_rpc",
]

log = logging.getLogger("trioaria.rpc.server")

IDLE_TIMEOUT = 30.0  # seconds a connection may sit idle (aria2: 30)
_READ = 65536
_WS_QUEUE = 1024  # outgoing frames a WebSocket client may have pending
_WS_QUEUE_BYTES = 16 << 20  # ... and bytes: a client past it does not read, and is dropped
SEEDING_POLL = 0.5  # seconds between looks for torrents that began seeding
_WS_FLUSH = 5.0  # seconds a closing WebSocket may take to send its last frames

#: engine lifecycle event -> aria2 notification method
NOTIFICATION_METHODS = {
    "start": "aria2.onDownloadStart",
    "pause": "aria2.onDownloadPause",
    "stop": "aria2.onDownloadStop",
    "complete": "aria2.onDownloadComplete",
    "error": "aria2.onDownloadError",
    "bt-complete": "aria2.onBtDownloadComplete",
}


@dataclass(frozen=True, slots=True)
class RpcConfig:
    """Server settings (from ``--rpc-*`` options)."""

    port: int = 6800
    listen_all: bool = False
    allow_origin_all: bool = False
    max_request_size: int = 2 << 20
    unauthorized_delay: float = 1.0
    ssl_context: ssl.SSLContext | None = None
    basic_auth: tuple[str, str] | None = None
    web_ui: bool = False

    @classmethod
    def from_options(cls, opts: Any) -> RpcConfig:
        """Build from an :class:`~trioaria.cli.options.Options`.

        Raises:
            TrioariaError: ``--rpc-secure`` without a usable certificate and key.
        """
        user, passwd = opts.get("rpc-user"), opts.get("rpc-passwd")
        return cls(
            port=int(opts.get("rpc-listen-port") or 6800),
            listen_all=bool(opts.get("rpc-listen-all")),
            allow_origin_all=bool(opts.get("rpc-allow-origin-all")),
            max_request_size=int(opts.get("rpc-max-request-size") or (2 << 20)),
            ssl_context=_tls_context(opts) if opts.get("rpc-secure") else None,
            basic_auth=(str(user), str(passwd or "")) if user else None,
            web_ui=bool(opts.get("rpc-web-ui")),
        )


def _tls_context(opts: Any) -> ssl.SSLContext:
    """``--rpc-secure``: a server context from ``--rpc-certificate``/``--rpc-private-key``."""
    cert, key = opts.get("rpc-certificate"), opts.get("rpc-private-key")
    if not cert or not key:
        raise TrioariaError(
            "Specify --rpc-certificate and --rpc-private-key options in order to use secure RPC."
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise TrioariaError(
            f"cannot load the RPC certificate {cert} and key {key}: {exc}"
        ) from None
    return context


def _basic_ok(request: h11.Request, expected: tuple[str, str]) -> bool:
    """RFC 7617 Basic credentials of ``request`` match ``--rpc-user``/``--rpc-passwd``."""
    for name, value in request.headers:
        if name != b"authorization":
            continue
        scheme, _, token = value.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            given = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        wanted = f"{expected[0]}:{expected[1]}".encode()
        return hmac.compare_digest(given, wanted)
    return False


@dataclass(slots=True)
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json-rpc"
    authorized: bool = True
    extra: tuple[tuple[str, str], ...] = ()


class _TooLarge(Exception):
    pass


class RpcServer:
    """aria2's RPC endpoint over a :class:`~trioaria.rpc.methods.Backend`."""

    def __init__(self, backend: Backend, config: RpcConfig | None = None) -> None:
        self.backend = backend
        self.config = config or RpcConfig()
        self.ports: list[int] = []
        self._clients: set[trio.MemorySendChannel[bytes]] = set()
        self._ws_conns: dict[trio.MemorySendChannel[bytes], WsConnection] = {}
        self._ws_queued: dict[trio.MemorySendChannel[bytes], int] = {}  # bytes not yet sent
        self._bt_done: set[str] = set()  # torrents whose onBtDownloadComplete was sent

    @property
    def port(self) -> int:
        """The first listening port (the OS's choice when configured as 0)."""
        return self.ports[0]

    # --- notifications ------------------------------------------------------------------

    def notify(self, method: str, gid: str) -> None:
        """Push a notification to every WebSocket client (never blocks)."""
        payload = jsonrpc.encode_notification(method, gid).decode("utf-8")
        for channel in list(self._clients):
            ws = self._ws_conns.get(channel)
            if ws is None or ws.state is not ConnectionState.OPEN:
                continue
            frame = ws.send(TextMessage(data=payload))
            if not self._ws_count(channel, len(frame)):
                continue
            try:
                channel.send_nowait(frame)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._drop(channel)

    def on_engine_event(self, event: str, group: Any) -> None:
        """A :class:`~trioaria.engine.queue.DownloadEngine` listener: events to notifications.

        A torrent that completes also gets ``aria2.onBtDownloadComplete`` first, unless it was
        sent when its seeding began (aria2 sends it when the payload is complete).
        """
        gid = str(group.gid)
        if event == "complete" and hasattr(group, "seeding") and gid not in self._bt_done:
            self.notify(NOTIFICATION_METHODS["bt-complete"], gid)
        if event in ("complete", "error", "stop"):
            self._bt_done.discard(gid)
        method = NOTIFICATION_METHODS.get(event)
        if method is not None:
            self.notify(method, gid)

    async def _watch_seeding(self) -> None:
        """``aria2.onBtDownloadComplete`` when a torrent starts seeding (checked each tick)."""
        seeding: Any = getattr(self.backend, "seeding_gids", None)
        if seeding is None:
            return
        while True:
            for gid in seeding():
                if gid not in self._bt_done:
                    self._bt_done.add(gid)
                    self.notify(NOTIFICATION_METHODS["bt-complete"], gid)
            await trio.sleep(SEEDING_POLL)

    def _drop(self, channel: trio.MemorySendChannel[bytes]) -> None:
        self._clients.discard(channel)
        self._ws_conns.pop(channel, None)
        self._ws_queued.pop(channel, None)
        channel.close()

    def _ws_count(self, channel: trio.MemorySendChannel[bytes], size: int) -> bool:
        """Count ``size`` bytes more waiting for ``channel``'s client; False (and the client
        dropped) past :data:`_WS_QUEUE_BYTES`: it does not read what it is sent."""
        total = self._ws_queued.get(channel, 0) + size
        if total > _WS_QUEUE_BYTES:
            log.info("RPC WebSocket client does not read (%d bytes waiting): dropped", total)
            self._drop(channel)
            return False
        self._ws_queued[channel] = total
        return True

    async def _ws_put(self, channel: trio.MemorySendChannel[bytes], frame: bytes) -> bool:
        """Queue a frame for the writer (counted); False when the client was dropped instead
        (past the bound: it does not read) or is gone: the reader ends."""
        if not self._ws_count(channel, len(frame)):
            return False
        try:
            await channel.send(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    # --- serving ------------------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled; ``task_status.started(port)`` once listening."""
        cfg = self.config
        listeners: list[trio.SocketListener] = []
        if cfg.listen_all:
            listeners = await trio.open_tcp_listeners(cfg.port)
        else:
            listeners = await trio.open_tcp_listeners(cfg.port, host="127.0.0.1")
            if cfg.port:  # a fixed port is offered on IPv6 loopback too, when there is one
                try:
                    listeners += await trio.open_tcp_listeners(cfg.port, host="::1")
                except OSError:
                    pass
        self.ports = [int(ln.socket.getsockname()[1]) for ln in listeners]
        for port in sorted(set(self.ports)):
            log.log(25, "RPC: listening on TCP port %d", port)
        served: list[trio.abc.Listener[Any]] = list(listeners)
        if cfg.ssl_context is not None:  # --rpc-secure: https and wss on the same port
            served = [
                trio.SSLListener(ln, cfg.ssl_context, https_compatible=True) for ln in listeners
            ]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_seeding)
            task_status.started(self.port)
            await trio.serve_listeners(self._connection, served, handler_nursery=nursery)

    async def _connection(self, stream: trio.abc.Stream) -> None:
        try:
            await self._http(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        except (h11.RemoteProtocolError, h11.LocalProtocolError, WsRemoteProtocolError) as exc:
            log.debug("RPC connection closed: %s", exc)
        except Exception:  # a bug must end this connection, never the server and the run
            log.exception("RPC connection failed")
        finally:
            with trio.move_on_after(1) as scope:
                scope.shield = True
                await stream.aclose()

    async def _next(self, stream: trio.abc.Stream, conn: h11.Connection) -> Any:
        """The next h11 event, reading as needed; None when idle too long or the peer left."""
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            with trio.move_on_after(IDLE_TIMEOUT):
                data = await stream.receive_some(_READ)
                conn.receive_data(bytes(data))
                continue
            return None

    async def _http(self, stream: trio.abc.Stream) -> None:
        cfg = self.config
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        while True:
            try:
                event = await self._next(stream, conn)
            except h11.RemoteProtocolError:
                await self._send(stream, conn, _Answer(400, b"", "text/plain"), close=True)
                return
            if event is None or isinstance(event, h11.ConnectionClosed):
                return
            if not isinstance(event, h11.Request):
                return
            if cfg.basic_auth is not None and not _basic_ok(event, cfg.basic_auth):
                # --rpc-user/--rpc-passwd (aria2's deprecated HTTP Basic authentication)
                challenge = (("WWW-Authenticate", 'Basic realm="aria2"'),)
                answer = _Answer(401, b"", "", extra=challenge)
                await self._send(stream, conn, answer, close=True)
                return
            if self._is_websocket(event):
                await self._websocket(stream, event, conn.trailing_data[0])
                return
            try:
                body = await self._body(stream, conn, event)
            except _TooLarge:
                message = (
                    f"Request too large: more than {cfg.max_request_size} bytes"
                    " (--rpc-max-request-size)."
                )
                answer = _Answer(413, jsonrpc.encode(error_response(INVALID_REQUEST, message)))
                await self._send(stream, conn, answer, close=True)
                return
            if body is None:
                return
            answer = self._route(event, body)
            if answer.body and _accepts_gzip(event):
                # aria2 compresses every answer for a client that accepts gzip
                answer.body = gzip.compress(answer.body, compresslevel=6)
                answer.extra = (*answer.extra, ("Content-Encoding", "gzip"))
            if not answer.authorized and cfg.unauthorized_delay > 0:
                await trio.sleep(cfg.unauthorized_delay)
            close = answer.status != 200 or not _keep_alive(event)
            await self._send(stream, conn, answer, close=close)
            if close or conn.our_state is not h11.DONE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _body(
        self, stream: trio.abc.Stream, conn: h11.Connection, request: h11.Request
    ) -> bytes | None:
        limit = self.config.max_request_size
        for name, value in request.headers:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next(stream, conn)
            if event is None or isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise _TooLarge
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)

    def _headers(self, answer: _Answer, close: bool) -> list[tuple[str, str]]:
        now = email.utils.formatdate(usegmt=True)
        headers = [
            ("Date", now),
            ("Content-Length", str(len(answer.body))),
            ("Expires", now),
            ("Cache-Control", "no-cache"),
        ]
        if answer.content_type:
            headers.append(("Content-Type", answer.content_type))
        if self.config.allow_origin_all:
            headers.append(("Access-Control-Allow-Origin", "*"))
        headers.extend(answer.extra)
        if close:
            headers.append(("Connection", "close"))
        return headers

    async def _send(
        self, stream: trio.abc.Stream, conn: h11.Connection, answer: _Answer, *, close: bool
    ) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        head = h11.Response(status_code=answer.status, headers=self._headers(answer, close))
        data = conn.send(head) or b""
        if answer.body:
            data += conn.send(h11.Data(data=answer.body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        await _send_timed(stream, data)

    # --- routing ------------------------------------------------------------------------

    def _route(self, request: h11.Request, body: bytes) -> _Answer:
        target = request.target.decode("latin-1").split("#", 1)[0]
        path, _, query = target.partition("?")
        method = request.method
        if method == b"OPTIONS":
            return self._preflight(request)
        if path == "/jsonrpc" and method == b"POST":
            return self._json(jsonrpc.decode(body))
        if path == "/jsonrpc" and method == b"GET":
            return self._json(jsonrpc.decode_get(query))
        if path == "/rpc" and method == b"POST":
            return self._xml(body)
        if self.config.web_ui and method == b"GET" and path in ("/", "/index.html", "/webui.js"):
            csp = (("Content-Security-Policy", webui.CSP), ("X-Content-Type-Options", "nosniff"))
            if path == "/webui.js":
                return _Answer(
                    200, webui.SCRIPT.encode(), "text/javascript; charset=utf-8", extra=csp
                )
            return _Answer(200, webui.PAGE.encode(), "text/html; charset=utf-8", extra=csp)
        return _Answer(404, b"", "")

    def _preflight(self, request: h11.Request) -> _Answer:
        headers = dict(request.headers)
        extra: list[tuple[str, str]] = []
        if (
            headers.get(b"origin")
            and headers.get(b"access-control-request-method")
            and self.config.allow_origin_all
        ):
            extra = [
                ("Access-Control-Allow-Methods", "POST, GET, OPTIONS"),
                ("Access-Control-Max-Age", "1728000"),
            ]
            wanted = headers.get(b"access-control-request-headers")
            if wanted:
                extra.append(("Access-Control-Allow-Headers", wanted.decode("latin-1")))
        return _Answer(200, b"", "", extra=tuple(extra))

    def run_json(self, call: jsonrpc.JsonCall) -> tuple[int, bytes, bool]:
        """Run a decoded JSON-RPC call: (HTTP status, body, authorized)."""
        responses: list[RpcResponse] = [
            item if isinstance(item, RpcResponse) else dispatch(self.backend, item)
            for item in call.items
        ]
        if call.batch:
            authorized = all(r.authorized for r in responses)
            return 200, jsonrpc.encode_batch(responses, call.callback), authorized
        response = responses[0]
        status = jsonrpc.http_status(response)
        return status, jsonrpc.encode(response, call.callback), response.authorized

    def _json(self, call: jsonrpc.JsonCall) -> _Answer:
        status, body, authorized = self.run_json(call)
        content_type = "text/javascript" if call.callback else "application/json-rpc"
        return _Answer(status, body, content_type, authorized)

    def _xml(self, body: bytes) -> _Answer:
        try:
            request = xmlrpc.decode(body, max_size=self.config.max_request_size)
        except xmlrpc.XmlRpcParseError as exc:
            log.info("Failed to parse XML-RPC request: %s", exc)
            return _Answer(400, b"", "")
        response = dispatch(self.backend, request)
        if response.code == 0:
            data = xmlrpc.encode_response(response.value)
        else:
            data = xmlrpc.encode_fault(response.code, str(response.value.get("faultString", "")))
        return _Answer(200, data, "text/xml", response.authorized)

    # --- WebSocket ----------------------------------------------------------------------

    @staticmethod
    def _is_websocket(request: h11.Request) -> bool:
        headers = dict(request.headers)
        return (
            request.method == b"GET"
            and request.target.split(b"?", 1)[0] == b"/jsonrpc"
            and b"websocket" in headers.get(b"upgrade", b"").lower()
        )

    async def _websocket(
        self, stream: trio.abc.Stream, request: h11.Request, trailing: bytes
    ) -> None:
        handshake = H11Handshake(ConnectionType.SERVER)
        try:
            handshake.initiate_upgrade_connection(list(request.headers), request.target)
            if not any(isinstance(e, WsRequest) for e in handshake.events()):
                return
            await stream.send_all(handshake.send(AcceptConnection()))
        except WsRemoteProtocolError:
            await stream.send_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            return
        ws = handshake.connection
        assert ws is not None
        send, receive = trio.open_memory_channel[bytes](_WS_QUEUE)
        self._clients.add(send)
        self._ws_conns[send] = ws
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ws_writer, stream, send, receive, nursery.cancel_scope)
                await self._ws_reader(stream, ws, send, trailing)
                # let the writer flush what is queued (a close frame) before the connection
                # ends; it cancels the scope itself once the closed channel is drained
                self._drop(send)
                nursery.cancel_scope.deadline = trio.current_time() + _WS_FLUSH
        finally:
            self._drop(send)

    async def _ws_writer(
        self,
        stream: trio.abc.Stream,
        send: trio.MemorySendChannel[bytes],
        receive: trio.MemoryReceiveChannel[bytes],
        scope: trio.CancelScope,
    ) -> None:
        try:
            async for data in receive:
                await _send_timed(stream, data)
                if send in self._ws_queued:
                    self._ws_queued[send] -= len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        scope.cancel()  # the client is gone (or was dropped): end the reader too

    async def _ws_reader(
        self,
        stream: trio.abc.Stream,
        ws: WsConnection,
        send: trio.MemorySendChannel[bytes],
        trailing: bytes,
    ) -> None:
        limit = self.config.max_request_size
        parts: list[str] = []
        size = 0
        if trailing:
            ws.receive_data(trailing)
        while True:
            for event in ws.events():
                if isinstance(event, TextMessage):
                    parts.append(event.data)
                    size += len(event.data)
                    if size > limit:
                        await self._ws_put(
                            send, ws.send(CloseConnection(code=1009, reason="too large"))
                        )
                        return
                    if event.message_finished:
                        text, parts, size = "".join(parts), [], 0
                        if not await self._ws_request(ws, send, text):
                            return
                elif isinstance(event, BytesMessage):
                    continue  # aria2 answers text frames only
                elif isinstance(event, Ping):
                    if not await self._ws_put(send, ws.send(event.response())):
                        return
                elif isinstance(event, CloseConnection):
                    if ws.state is ConnectionState.REMOTE_CLOSING:
                        await self._ws_put(send, ws.send(event.response()))
                    send.close()
                    return
            with trio.move_on_after(IDLE_TIMEOUT * 20):
                data = await stream.receive_some(_READ)
                if not data:
                    return
                ws.receive_data(bytes(data))
                continue
            return  # idle for ten minutes

    async def _ws_request(
        self, ws: WsConnection, send: trio.MemorySendChannel[bytes], text: str
    ) -> bool:
        call = jsonrpc.decode(text.encode("utf-8", "surrogatepass"))
        _, body, authorized = self.run_json(call)
        if not authorized and self.config.unauthorized_delay > 0:
            await trio.sleep(self.config.unauthorized_delay)
        if ws.state is ConnectionState.OPEN:
            return await self._ws_put(send, ws.send(TextMessage(data=body.decode("utf-8"))))
        return True


async def _send_timed(stream: trio.abc.Stream, data: bytes) -> None:
    """``send_all`` that gives up on a client that stops reading: each 64 KiB must go out
    within :data:`IDLE_TIMEOUT` (aria2: "Timeout while transmitting response" after 30 s
    without progress), so an answer nobody reads cannot hold its task and memory forever."""
    view = memoryview(data)
    for start in range(0, len(view), _READ):
        with trio.move_on_after(IDLE_TIMEOUT) as scope:
            await stream.send_all(view[start : start + _READ])
        if scope.cancelled_caught:
            raise trio.BrokenResourceError("timeout while transmitting the response")


def _accepts_gzip(request: h11.Request) -> bool:
    """``Accept-Encoding`` names gzip with a non-zero quality (RFC 9110 §12.5.3)."""
    for name, value in request.headers:
        if name != b"accept-encoding":
            continue
        for item in value.lower().split(b","):
            coding, _, params = item.strip().partition(b";")
            if coding.strip() in (b"gzip", b"x-gzip") and params.replace(b" ", b"") not in (
                b"q=0",
                b"q=0.0",
                b"q=0.00",
                b"q=0.000",
            ):
                return True
    return False


def _keep_alive(request: h11.Request) -> bool:
    for name, value in request.headers:
        if name == b"connection" and b"close" in value.lower():
            return False
    return request.http_version != b"1.0"


def open_rpc(
    engine: Any,
    *,
    factory: GroupFactory | None = None,
    config: RpcConfig | None = None,
    features: list[str] | None = None,
) -> RpcServer:
    """Build the server for ``engine`` (its options give the secret and ``--rpc-*``) and
    register it for the engine's lifecycle events; run it with ``nursery.start(server.serve)``."""
    from .backend import EngineBackend

    opts = engine.options
    backend = EngineBackend(
        engine, factory=factory, secret=opts.get("rpc-secret"), features=features or ()
    )
    server = RpcServer(backend, config or RpcConfig.from_options(opts))
    engine.listeners.append(server.on_engine_event)
    return server
