"""A small trio HTTP/1.1 server that misbehaves on purpose (fault injection for tests).

Real servers (nginx) cover correct behaviour; this one covers faults nginx will not produce.
Requests are parsed with h11; responses are written by hand so they can lie.  The first
path segment picks the behaviour, the rest names a file (``data.bin``, 1 MiB, is always
there; add more with :meth:`FaultServer.add_file`)::

    /ok/<file>            honest: Range (206), If-Range, ETag, HEAD, keep-alive
    /drop/<file>?after=N  honest head, N body bytes (default: half), then close
    /rst/<file>?after=N   same, but the close is a TCP RST (SO_LINGER 0)
    /stall/<file>?after=N honest head, N body bytes, then nothing, forever
    /stallhead/<file>     reads the request, never answers
    /liecr/<file>         206 whose Content-Range start is one byte off (body is honest)
    /growing/<file>       total length grows by 1000 bytes on every request to this path
    /truncchunk/<file>    chunked body cut inside a chunk, then close
    /badchunk/<file>      chunked body with a non-hex chunk size
    /norange/<file>       ignores Range: always 200 with the full body
    /fullbody/<file>      advertises ``Accept-Ranges: bytes`` but answers every ranged request
                          with 200 and the whole body (a lying server)
    /norangedrop/<file>   no Range support, and every response is cut after half its body
    /huge/<file>?len=N    200 with ``Content-Length: N`` (any size), then the file's bytes, close
    /corrupt/<file>?at=N  honest Range handling, but byte N of the file is served flipped
    /416/<file>           416 Range Not Satisfiable, Content-Range: bytes */LEN
    /503?retry=S          503 with Retry-After: S (default 7)
    /redirect/<n>         302 to /redirect/<n-1>; /redirect/0 serves data.bin
    /loop                 302 to itself, forever
    /status/<code>        that status with a small body
    /keepclose/<file>     honest response that says keep-alive, then closes the socket
    /http10/<file>        HTTP/1.0 response without Content-Length (body ends at close);
                          ``?after=N``: N body bytes, then nothing, forever
    /extra/<file>         honest response followed by junk bytes beyond Content-Length
    /cd/<file>?v=VALUE    honest, plus ``Content-Disposition: VALUE`` (percent-decoded to raw
                          bytes, so non-ASCII bytes reach the client as sent)
    /enc/<file>?coding=C  200, body compressed with C (gzip, deflate, rawdeflate), with
                          ``Content-Encoding`` and the compressed ``Content-Length``; Range
                          ignored; ``&cut=N`` leaves out the stream's last N bytes
    /auth/<file>          401 with ``WWW-Authenticate: Basic`` unless ``Authorization:
                          Basic dXNlcjpwYXNz`` (user:pass) was sent; then honest
    /cookie/<file>        403 unless the request has the cookie ``session=ok``; then honest
    /setcookie/<file>     302 to /cookie/<file>, setting ``session=ok`` (Path=/)
    /digest/<file>?alg=A  RFC 7616 Digest (qop=auth, algorithm A: MD5 or SHA-256) for
                          user:pass: 401 with the challenge until a valid answer; then honest

Use the ``fault_server`` fixture (function-scoped, runs in the test's nursery), or
:func:`run_fault_server_in_thread` when the client is another process (the CLI).
:attr:`FaultServer.requests` records every request (method, target, lower-cased headers).
"""

from __future__ import annotations

import gzip
import hashlib
import random
import socket
import struct
import threading
import urllib.parse
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import h11
import pytest
import trio

__all__ = ["FaultServer", "RecordedRequest", "fault_server", "run_fault_server_in_thread"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    target: str
    headers: dict[str, str]


def _default_data() -> bytes:
    return random.Random(1234).randbytes(1 << 20)


class _Close(Exception):
    """Internal: end the connection now (after a fault)."""


class FaultServer:
    """The fault-injecting server; see the module docstring for the modes."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files: dict[str, bytes] = {"data.bin": _default_data()}
        if files:
            self.files.update(files)
        self.requests: list[RecordedRequest] = []
        self.hits: Counter[str] = Counter()
        self.connections = 0
        self.port: int | None = None

    def add_file(self, name: str, data: bytes) -> None:
        """Serve *data* as *name* (replaces an existing file)."""
        self.files[name.lstrip("/")] = data

    def url(self, path: str) -> str:
        """``http://127.0.0.1:PORT/path``."""
        assert self.port is not None, "server not started"
        return f"http://127.0.0.1:{self.port}{path}"

    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on *host*:*port* (0: the OS picks), report the port, serve forever."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        self.port = int(listeners[0].socket.getsockname()[1])
        task_status.started(self.port)
        await trio.serve_listeners(self._handle, listeners)

    # -- connection loop ----------------------------------------------------------------

    async def _handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        try:
            leftover = b""
            while True:
                conn = h11.Connection(h11.SERVER)
                if leftover:
                    conn.receive_data(leftover)
                request: h11.Request | None = None
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await stream.receive_some(65536)
                        if not data:
                            return
                        conn.receive_data(data)
                    elif isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed):
                        return
                leftover = conn.trailing_data[0]
                assert request is not None
                if not await self._respond(stream, request):
                    return
        except (_Close, trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            return
        except OSError:
            return
        finally:
            await trio.aclose_forcefully(stream)

    # -- responses ----------------------------------------------------------------------

    async def _respond(self, stream: trio.SocketStream, req: h11.Request) -> bool:
        method = req.method.decode()
        target = req.target.decode()
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in req.headers}
        self.requests.append(RecordedRequest(method, target, headers))
        split = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(split.query))
        parts = split.path.lstrip("/").split("/", 1)
        mode, rest = parts[0], (parts[1] if len(parts) > 1 else "")
        self.hits[split.path] += 1
        send = stream.send_all

        if mode == "loop":
            await send(_head(302, [("Location", split.path), ("Content-Length", "0")]))
            return True
        if mode == "redirect":
            hops = int(rest or "0")
            if hops > 0:
                await send(
                    _head(302, [("Location", f"/redirect/{hops - 1}"), ("Content-Length", "0")])
                )
                return True
            return await self._entity(stream, method, headers, self.files["data.bin"])
        if mode == "503":
            body = b"busy\n"
            retry = query.get("retry", "7")
            await send(
                _head(503, [("Retry-After", retry), ("Content-Length", str(len(body)))]) + body
            )
            return True
        if mode == "status":
            code = int(rest or "500")
            body = f"status {code}\n".encode()
            await send(_head(code, [("Content-Length", str(len(body)))]) + body)
            return True
        if mode == "stallhead":
            await trio.sleep_forever()

        data = self.files.get(rest)
        if data is None:
            body = b"not found\n"
            await send(_head(404, [("Content-Length", str(len(body)))]) + body)
            return True
        after = int(query["after"]) if "after" in query else None

        if mode == "ok":
            return await self._entity(stream, method, headers, data)
        if mode == "cd":
            raw = dict(urllib.parse.parse_qsl(split.query, encoding="latin-1")).get("v", "")
            return await self._entity(
                stream, method, headers, data, more=[("Content-Disposition", raw)]
            )
        if mode == "enc":
            coding = query.get("coding", "gzip")
            body = _compress(data, coding)
            body = body[: len(body) - int(query.get("cut", "0"))]  # ?cut=N: a truncated stream
            name = "deflate" if coding == "rawdeflate" else coding
            await send(_head(200, [("Content-Encoding", name), ("Content-Length", str(len(body)))]))
            if method != "HEAD":
                await send(body)
            return True
        if mode == "auth":
            if headers.get("authorization") != "Basic dXNlcjpwYXNz":
                body = b"who are you?\n"
                await send(
                    _head(
                        401,
                        [
                            ("WWW-Authenticate", 'Basic realm="test"'),
                            ("Content-Length", str(len(body))),
                        ],
                    )
                    + body
                )
                return True
            return await self._entity(stream, method, headers, data)
        if mode == "cookie":
            cookies = [c.strip() for c in headers.get("cookie", "").split(";")]
            if "session=ok" not in cookies:
                body = b"no cookie, no file\n"
                await send(_head(403, [("Content-Length", str(len(body)))]) + body)
                return True
            return await self._entity(stream, method, headers, data)
        if mode == "setcookie":
            await send(
                _head(
                    302,
                    [
                        ("Set-Cookie", "session=ok; Path=/; HttpOnly"),
                        ("Location", f"/cookie/{rest}"),
                        ("Content-Length", "0"),
                    ],
                )
            )
            return True
        if mode == "digest":
            alg = query.get("alg", "MD5")
            if not _digest_ok(headers.get("authorization", ""), method, alg):
                body = b"who are you?\n"
                challenge = (
                    f'Digest realm="test@trioaria", qop="auth", algorithm={alg},'
                    ' nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",'
                    ' opaque="5ccc069c403ebaf9f0171e9517f40e41"'
                )
                await send(
                    _head(
                        401,
                        [("WWW-Authenticate", challenge), ("Content-Length", str(len(body)))],
                    )
                    + body
                )
                return True
            return await self._entity(stream, method, headers, data)
        if mode == "norange":
            return await self._entity(stream, method, {}, data, accept_ranges=False)
        if mode == "corrupt":
            at = int(query.get("at", "0"))
            bad = bytearray(data)
            bad[at] ^= 0xFF
            return await self._entity(stream, method, headers, bytes(bad))
        if mode == "fullbody":
            await stream.send_all(
                _head(200, [("Accept-Ranges", "bytes"), ("Content-Length", str(len(data)))])
            )
            if method != "HEAD":
                await stream.send_all(data)
            return True
        if mode == "norangedrop":
            await self._entity(stream, method, {}, data, accept_ranges=False, cut="drop")
            return False
        if mode == "huge":
            claimed = int(query.get("len", "0"))
            await stream.send_all(_head(200, [("Content-Length", str(claimed))]))
            if method != "HEAD":
                await stream.send_all(data)
            raise _Close
        if mode == "growing":
            grown = data + bytes(1000 * (self.hits[split.path] - 1))
            return await self._entity(stream, method, headers, grown)
        if mode == "liecr":
            return await self._entity(stream, method, headers, data, lie_start=1)
        if mode in ("drop", "rst", "stall"):
            await self._entity(stream, method, headers, data, cut=mode, after=after)
            return False
        if mode == "keepclose":
            await self._entity(stream, method, headers, data)
            raise _Close
        if mode == "extra":
            return await self._entity(stream, method, headers, data, suffix=b"JUNK-AFTER-BODY")
        if mode == "http10":
            await send(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
            if method != "HEAD":
                if after is not None:  # ?after=N: N body bytes, then nothing, forever
                    await send(data[:after])
                    await trio.sleep_forever()
                await send(data)
            raise _Close
        if mode == "416":
            await send(
                _head(416, [("Content-Range", f"bytes */{len(data)}"), ("Content-Length", "0")])
            )
            return True
        if mode in ("truncchunk", "badchunk"):
            await send(_head(200, [("Transfer-Encoding", "chunked")]))
            if mode == "badchunk":
                await send(b"10\r\n" + data[:16] + b"\r\nzz\r\n")
            else:
                first = data[: len(data) // 2]
                await send(f"{len(first):x}\r\n".encode() + first + b"\r\n")
                await send(
                    f"{len(data) - len(first):x}\r\n".encode() + data[len(first) : len(first) + 100]
                )
            raise _Close
        body = f"unknown mode {mode}\n".encode()
        await send(_head(400, [("Content-Length", str(len(body)))]) + body)
        return True

    async def _entity(
        self,
        stream: trio.SocketStream,
        method: str,
        headers: dict[str, str],
        data: bytes,
        *,
        accept_ranges: bool = True,
        lie_start: int = 0,
        cut: str | None = None,
        after: int | None = None,
        suffix: bytes = b"",
        more: list[tuple[str, str]] | None = None,
    ) -> bool:
        etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
        total = len(data)
        span = _parse_range(headers.get("range"), total) if accept_ranges else None
        if_range = headers.get("if-range")
        if span is not None and if_range is not None and if_range != etag:
            span = None  # RFC 9110 §13.1.5: validator mismatch -> whole entity
        extra = [("ETag", etag), *(more or ())]
        if accept_ranges:
            extra.append(("Accept-Ranges", "bytes"))
        if span is None:
            status, body = 200, data
        else:
            start, end = span
            status, body = 206, data[start : end + 1]
            extra.append(("Content-Range", f"bytes {start + lie_start}-{end + lie_start}/{total}"))
        await stream.send_all(_head(status, [*extra, ("Content-Length", str(len(body)))]))
        if method == "HEAD":
            return True
        if cut is None:
            await stream.send_all(body + suffix)  # one send: the suffix directly follows
            return True
        sent = len(body) // 2 if after is None else min(after, len(body))
        if sent:
            await stream.send_all(body[:sent])
        if cut == "stall":
            await trio.sleep_forever()
        if cut == "rst":
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raise _Close


def _digest_ok(authorization: str, method: str, alg: str) -> bool:
    """Check an RFC 7616 §3.4.1 ``Authorization: Digest`` answer for user:pass (qop=auth).

    Written independently of trioaria's client code: parameters are split by regex."""
    import re

    if not authorization.startswith("Digest "):
        return False
    p = {
        m[0].lower(): m[1] if m[1] else m[2]
        for m in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', authorization)
    }
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[alg]

    def hx(text: str) -> str:
        return h(text.encode()).hexdigest()

    if p.get("username") != "user" or p.get("algorithm", "MD5") != alg or p.get("qop") != "auth":
        return False
    ha1 = hx(f"user:{p.get('realm')}:pass")
    ha2 = hx(f"{method}:{p.get('uri')}")
    expected = hx(f"{ha1}:{p.get('nonce')}:{p.get('nc')}:{p.get('cnonce')}:auth:{ha2}")
    return p.get("response") == expected


_REASONS = {
    200: "OK",
    206: "Partial Content",
    302: "Found",
    401: "Unauthorized",
    404: "Not Found",
    416: "Range Not Satisfiable",
    503: "Service Unavailable",
}


def _compress(data: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    obj = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # "rawdeflate": RFC 1951 without zlib header
    return obj.compress(data) + obj.flush()


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", "Server: trioaria-fault"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _parse_range(value: str | None, total: int) -> tuple[int, int] | None:
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    first, _, last = value[6:].strip().partition("-")
    try:
        if not first:
            start, end = max(0, total - int(last)), total - 1
        else:
            start = int(first)
            end = min(int(last), total - 1) if last else total - 1
    except ValueError:
        return None
    if start >= total or start > end:
        return None
    return start, end


@pytest.fixture
async def fault_server(nursery: trio.Nursery) -> FaultServer:
    """A :class:`FaultServer` on 127.0.0.1 (OS-chosen port), running in the test's nursery."""
    server = FaultServer()
    await nursery.start(server.serve)
    return server


def run_fault_server_in_thread(
    server: FaultServer | None = None,
) -> tuple[int, Callable[[], None]]:
    """Run a :class:`FaultServer` under ``trio.run`` in a daemon thread.

    For tests whose client is another process (the CLI).  Pass your own *server* to add
    files or read ``requests`` from the test.

    Returns:
        ``(port, stop)``; ``stop()`` cancels the server and joins the thread.
    """
    server = server if server is not None else FaultServer()
    ready = threading.Event()
    state: dict[str, object] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            state["token"] = trio.lowlevel.current_trio_token()
            state["scope"] = nursery.cancel_scope
            await nursery.start(server.serve)
            ready.set()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # reported to the caller by the failed start below
            state["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="fault-server", daemon=True)
    thread.start()
    if not ready.wait(10) or "error" in state or server.port is None:
        raise RuntimeError(f"fault server did not start: {state.get('error')!r}")

    def stop() -> None:
        scope = state["scope"]
        assert isinstance(scope, trio.CancelScope)
        try:
            trio.from_thread.run_sync(scope.cancel, trio_token=state["token"])  # type: ignore[arg-type]
        except trio.RunFinishedError:
            pass
        thread.join(10)

    return server.port, stop
