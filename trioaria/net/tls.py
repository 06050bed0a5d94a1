"""TlsStream: TLS over a trio socket that decrypts straight into the caller's buffer.

Why not ``trio.SSLStream``: its ``receive_some`` returns one TLS record (at most 16 KiB) per call
and every call is a trip through trio, so an HTTPS body cost ~2 CPU-s/GiB against ~0.6 for plain
TCP.  Here one ``recv_into`` fetches up to 1 MiB of ciphertext into a reused buffer, and
``ssl.SSLObject.read(n, buffer)`` then decrypts record after record into the caller's buffer in a
tight loop without awaiting (the same short road as the plain-TCP body path, docs/performance.md).

Theory of operation: the ``ssl.SSLObject`` is sans-IO (two ``MemoryBIO``s).  Whatever it wants to
send (handshake, alerts, key updates) is flushed from the outgoing BIO after every operation;
whenever it raises ``SSLWantReadError`` more ciphertext is read from the socket.  As
``trio.SSLStream(https_compatible=True)`` (and every browser), a peer that closes without
``close_notify`` is a plain end of stream, so HTTP's own framing decides whether the body is
complete.  Handshake errors surface as ``ssl.SSLError`` (mapped by ``trioaria.net.connect``).
"""

from __future__ import annotations

import ssl
from typing import cast

import trio

__all__ = ["TlsStream"]

_RAW_BUFFER = 1 << 20


class TlsStream:
    """A client TLS connection over ``transport_stream``: a connected ``trio.SocketStream``,
    or another :class:`TlsStream` (TLS to an origin through a tunnel over a TLS connection to
    an ``https://`` proxy)."""

    def __init__(
        self,
        transport_stream: trio.SocketStream | TlsStream,
        ctx: ssl.SSLContext,
        *,
        server_hostname: str | None,
        session: ssl.SSLSession | None = None,
    ) -> None:
        self.transport_stream = transport_stream
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._obj = ctx.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname,
            session=session,
        )  # fmt: skip
        self._raw = bytearray(_RAW_BUFFER)
        self._raw_view = memoryview(self._raw)
        self._eof = False

    @property
    def ssl_object(self) -> ssl.SSLObject:
        return self._obj

    @property
    def session(self) -> ssl.SSLSession | None:
        """The TLS session (FTPS data connections resume the control connection's)."""
        return self._obj.session

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            await self.transport_stream.send_all(data)

    async def _fill(self) -> bool:
        """Read more ciphertext from the socket; False at end of stream."""
        if self._eof:
            return False
        transport = self.transport_stream
        if isinstance(transport, TlsStream):
            n = await transport.receive_into(self._raw_view)
        else:
            n = await transport.socket.recv_into(self._raw_view)
        if n == 0:
            self._eof = True
            self._incoming.write_eof()
            return False
        self._incoming.write(self._raw_view[:n])
        return True

    async def do_handshake(self) -> None:
        """Run the TLS handshake (certificate checks included)."""
        while True:
            try:
                self._obj.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._fill():
                    raise ssl.SSLEOFError(
                        ssl.SSL_ERROR_EOF,
                        "the server closed the connection during the TLS handshake",
                    ) from None
                continue
            await self._flush()
            return

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            try:
                n = self._obj.write(view)
            except ssl.SSLWantReadError:  # the peer must speak first (renegotiation)
                await self._flush()
                if not await self._fill():
                    raise ssl.SSLEOFError(ssl.SSL_ERROR_EOF, "EOF while sending") from None
                continue
            view = view[n:]
            await self._flush()

    async def receive_into(self, buf: memoryview) -> int:
        """Decrypt into ``buf``; return the byte count, 0 at end of stream.

        Returns as soon as some plaintext is there and more would need a socket read.
        """
        if not buf:
            return 0
        pos = 0
        while True:
            try:
                while pos < len(buf):
                    # with a buffer, read() returns the count (typeshed says bytes)
                    n = cast(int, self._obj.read(len(buf) - pos, buf[pos:]))
                    if n == 0:  # close_notify
                        return pos
                    pos += n
                return pos
            except ssl.SSLWantReadError:
                if self._outgoing.pending:  # e.g. a TLS 1.3 key update answer
                    await self._flush()
                if pos:
                    return pos
                if self._eof:
                    return 0
                await self._fill()  # at EOF the next read reports how the stream ended
            except ssl.SSLZeroReturnError:
                return pos
            except (ssl.SSLEOFError, ssl.SSLSyscallError):
                # closed without close_notify: an end of stream, as https_compatible does
                return pos

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        buf = bytearray(max_bytes)
        n = await self.receive_into(memoryview(buf))
        return bytes(buf[:n])

    async def aclose(self) -> None:
        """Send ``close_notify`` (best effort) and close the socket."""
        try:
            try:
                self._obj.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass
            with trio.move_on_after(1):
                await self._flush()
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await self.transport_stream.aclose()
