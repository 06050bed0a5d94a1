"""The listener for incoming BitTorrent peers (``--listen-port``).

Theory of operation
-------------------
:class:`PeerListener` binds the first free port of ``--listen-port`` (aria2's ``6881-6999``; tests
pass 0 and read :attr:`PeerListener.port`) on every address, accepts connections and reads the
first 68 bytes, the BEP 3 handshake, within a deadline.  The handshake's info hash names the torrent:
the connection is handed with those bytes to that torrent's :class:`~trioaria.bt.swarm.Swarm`,
which runs the peer in its own nursery (so a peer never outlives its download).  First bytes that
are not ``\x13BitTorrent protocol`` start an MSE receiver handshake
(:func:`~trioaria.bt.crypto_stream.accept_encrypted`); the BEP 3 handshake is then read through
the decrypting stream.  A plain handshake for a torrent that requires crypto, a connection for an
unknown torrent, or one that is neither BitTorrent nor MSE, is closed.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterable

import trio

from ..base.errors import ExitCode, TrioariaError
from ..net.connect import ByteStream, read_deadline
from .crypto_stream import PeerStream, accept_encrypted
from .messages import HANDSHAKE_LENGTH, PROTOCOL_HEADER
from .mse import CryptoPolicy
from .swarm import Swarm

__all__ = ["PeerListener"]

log = logging.getLogger("trioaria.bt.listener")

HANDSHAKE_DEADLINE = 10.0


class PeerListener:
    """Accepts peers for the swarms registered in :attr:`swarms` (by info hash)."""

    def __init__(self, ports: Iterable[int]) -> None:
        self._ports = list(ports) or [0]
        self.swarms: dict[bytes, Swarm] = {}
        self.port = 0
        self.accepted = 0

    def register(self, swarm: Swarm) -> None:
        self.swarms[swarm.info_hash] = swarm
        swarm.listen_port = self.port

    def unregister(self, swarm: Swarm) -> None:
        if self.swarms.get(swarm.info_hash) is swarm:
            del self.swarms[swarm.info_hash]

    async def _bind(self) -> list[trio.SocketListener]:
        last: OSError | None = None
        for port in self._ports:
            try:
                listeners = await trio.open_tcp_listeners(port)
            except OSError as exc:
                last = exc
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise TrioariaError(f"cannot listen on port {port}: {exc.strerror}") from None
            return listeners
        raise TrioariaError(
            f"no free port for incoming peers in --listen-port ({last})",
            exit_code=ExitCode.UNKNOWN_ERROR,
        )

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report the port through ``task_status``, then accept until cancelled."""
        listeners = await self._bind()
        self.port = listeners[0].socket.getsockname()[1]
        for swarm in self.swarms.values():
            swarm.listen_port = self.port
        log.info("listening for peers on port %d", self.port)
        try:
            async with trio.open_nursery() as nursery:
                for listener in listeners:
                    nursery.start_soon(self._accept_loop, listener, nursery)
                task_status.started(self.port)
        finally:
            for listener in listeners:
                with trio.CancelScope(shield=True):
                    await listener.aclose()

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    await trio.sleep(0.5)
                    continue
                raise
            nursery.start_soon(self._greet, stream)

    async def _greet(self, sock_stream: trio.SocketStream) -> None:
        stream = ByteStream(sock_stream)
        handed = False
        try:
            peer = stream.peer
            addr = (str(peer[0]), int(peer[1])) if len(peer) >= 2 else ("", 0)  # type: ignore[call-overload]
            peer_stream, head = await self._read_handshake(stream)
            if head is None:
                return
            swarm = self.swarms.get(bytes(head[28:48]))
            if swarm is None:
                log.debug("incoming peer %s for an unknown torrent", addr)
                return
            if peer_stream is stream and swarm.crypto.require:
                log.debug("incoming peer %s: plain handshake refused (crypto required)", addr)
                return
            handed = swarm.accept(peer_stream, addr, bytes(head))
            if handed:
                self.accepted += 1
        except TrioariaError as exc:
            log.debug("incoming connection dropped: %s", exc)
        finally:
            if not handed:
                stream.close_nowait()

    def _policy_for(self, info_hash: bytes) -> CryptoPolicy:
        swarm = self.swarms.get(info_hash)
        return swarm.crypto if swarm is not None else CryptoPolicy(require=True, rc4_only=True)

    async def _read_handshake(self, stream: ByteStream) -> tuple[PeerStream, bytes | None]:
        """The BEP 3 handshake, read plain or through MSE (the first bytes tell which)."""
        head = bytearray()
        with read_deadline(HANDSHAKE_DEADLINE, "incoming peer handshake"):
            while len(head) < HANDSHAKE_LENGTH:
                data = await stream.receive_some(HANDSHAKE_LENGTH - len(head))
                if not data:
                    return stream, None
                head += data
                if bytes(head[: len(PROTOCOL_HEADER)]) != PROTOCOL_HEADER[: len(head)]:
                    break
            else:
                return stream, bytes(head)
            encrypted, info_hash = await accept_encrypted(
                stream, bytes(head), list(self.swarms), self._policy_for
            )
            head.clear()
            while len(head) < HANDSHAKE_LENGTH:
                data = await encrypted.receive_some(HANDSHAKE_LENGTH - len(head))
                if not data:
                    return stream, None
                head += data
        if bytes(head[: len(PROTOCOL_HEADER)]) != PROTOCOL_HEADER or head[28:48] != info_hash:
            return stream, None
        return encrypted, bytes(head)
