"""The listener for incoming BitTorrent peers (``--listen-port``), one per run as in aria2.

Theory of operation
-------------------
:class:`PeerListener` binds the first free port of ``--listen-port`` (aria2's ``6881-6999``; tests
pass 0 and read :attr:`PeerListener.port`) on every address, accepts connections and reads the
first 68 bytes, the BEP 3 handshake, within a deadline.  One listener serves every torrent of the
run: :func:`open_listener` starts it in the engine's services nursery (``net.services``) on the
first torrent's request, and every torrent registers its swarm there, so the one port is what
trackers, the DHT and LPD are told.  The handshake's info hash names the torrent:
the connection is handed with those bytes to that torrent's :class:`~trioaria.bt.swarm.Swarm`,
which runs the peer in its own nursery (so a peer never outlives its download).  First bytes that
are not ``\x13BitTorrent protocol`` start an MSE receiver handshake
(:func:`~trioaria.bt.crypto_stream.accept_encrypted`); the BEP 3 handshake is then read through
the decrypting stream.  A plain handshake for a torrent that requires crypto, a connection for an
unknown torrent, or one that is neither BitTorrent nor MSE, is closed.

A torrent whose info hash is known but whose swarm is not running yet (``-V`` still hashing,
the control file loading) is *expected* (:meth:`PeerListener.expect`): a peer that dials it in
that window is held, at most :data:`PENDING_WAIT` seconds and :data:`MAX_PENDING` at once, and
handed over when the swarm registers; after that it is closed (the peer will dial again).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterable
from functools import partial

import trio

from ..base.errors import ExitCode, TrioariaError
from ..net.connect import ByteStream, read_deadline
from ..net.services import start_service
from .crypto_stream import PeerStream, accept_encrypted
from .messages import HANDSHAKE_LENGTH, PROTOCOL_HEADER
from .mse import CryptoPolicy
from .swarm import Swarm

__all__ = ["PeerListener", "open_listener"]

log = logging.getLogger("trioaria.bt.listener")

HANDSHAKE_DEADLINE = 10.0
#: how long a peer for an expected (not yet running) torrent is held, and how many at once
PENDING_WAIT = 30.0
MAX_PENDING = 32
MAX_HALF_OPEN = 128  # incoming connections still in their handshake; more are closed at once
SERVICE_KEY = "bt-listener"


class PeerListener:
    """Accepts peers for the swarms registered in :attr:`swarms` (by info hash)."""

    def __init__(self, ports: Iterable[int]) -> None:
        self._ports = list(ports) or [0]
        self.swarms: dict[bytes, Swarm] = {}
        self.port = 0
        self.accepted = 0
        self.refused = 0
        # info hash -> (crypto policy, set when its swarm registers) of expected torrents
        self._expected: dict[bytes, tuple[CryptoPolicy, trio.Event]] = {}
        self._pending = 0
        self._half_open = 0  # accepted connections whose handshake is not done

    def expect(self, info_hash: bytes, crypto: CryptoPolicy) -> None:
        """Hold peers for ``info_hash`` until its swarm registers (see the module docstring).

        Raises:
            TrioariaError: exit 12, the run already has this torrent (aria2 "InfoHash ... is
                already registered.").
        """
        if info_hash in self._expected or info_hash in self.swarms:
            raise _duplicate(info_hash)
        self._expected[info_hash] = (crypto, trio.Event())

    def forget(self, info_hash: bytes) -> None:
        """The torrent is gone (or failed before running): held peers are closed."""
        entry = self._expected.pop(info_hash, None)
        if entry is not None:
            entry[1].set()

    def register(self, swarm: Swarm) -> None:
        """Route incoming peers for ``swarm.info_hash`` to ``swarm`` (it must be running)."""
        if swarm.info_hash in self.swarms and self.swarms[swarm.info_hash] is not swarm:
            raise _duplicate(swarm.info_hash)
        self.swarms[swarm.info_hash] = swarm
        swarm.listen_port = self.port
        entry = self._expected.get(swarm.info_hash)
        if entry is not None:
            entry[1].set()

    def unregister(self, swarm: Swarm) -> None:
        if self.swarms.get(swarm.info_hash) is swarm:
            del self.swarms[swarm.info_hash]
            self.forget(swarm.info_hash)

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
                # the listener is run-wide: its failure must not end every download of the run
                log.warning("no more incoming peers on port %d: %s", self.port, exc)
                return
            if self._half_open >= MAX_HALF_OPEN:  # a flood: no descriptor, task or DH for it
                self.refused += 1
                stream.socket.close()
                continue
            self._half_open += 1
            nursery.start_soon(self._greet, stream)

    async def _greet(self, sock_stream: trio.SocketStream) -> None:
        try:
            await self._greet_counted(ByteStream(sock_stream))
        finally:
            self._half_open -= 1

    async def _greet_counted(self, stream: ByteStream) -> None:
        handed = False
        try:
            peer = stream.peer
            addr = (str(peer[0]), int(peer[1])) if len(peer) >= 2 else ("", 0)  # type: ignore[call-overload]
            peer_stream, head = await self._read_handshake(stream)
            if head is None:
                return
            info_hash = bytes(head[28:48])
            swarm = self.swarms.get(info_hash)
            if swarm is None and info_hash in self._expected:
                swarm = await self._wait_registered(info_hash, addr)
            if swarm is None:
                log.debug("incoming peer %s for an unknown torrent", addr)
                self.refused += 1
                return
            if peer_stream is stream and swarm.crypto.require:
                log.debug("incoming peer %s: plain handshake refused (crypto required)", addr)
                return
            handed = swarm.accept(peer_stream, addr, bytes(head))
            if handed:
                self.accepted += 1
        except (TrioariaError, OSError, trio.BrokenResourceError) as exc:
            log.debug("incoming connection dropped: %s", exc)
        finally:
            if not handed:
                stream.close_nowait()

    async def _wait_registered(self, info_hash: bytes, addr: tuple[str, int]) -> Swarm | None:
        """Hold a peer of an expected torrent until its swarm runs (bounded in time and count)."""
        if self._pending >= MAX_PENDING:
            return None
        log.debug("incoming peer %s held until its torrent runs", addr)
        self._pending += 1
        try:
            with trio.move_on_after(PENDING_WAIT):
                await self._expected[info_hash][1].wait()
        finally:
            self._pending -= 1
        return self.swarms.get(info_hash)

    def _known(self) -> list[bytes]:
        return [*self.swarms, *(h for h in self._expected if h not in self.swarms)]

    def _policy_for(self, info_hash: bytes) -> CryptoPolicy:
        swarm = self.swarms.get(info_hash)
        if swarm is not None:
            return swarm.crypto
        entry = self._expected.get(info_hash)
        return entry[0] if entry is not None else CryptoPolicy(require=True, rc4_only=True)

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
                stream, bytes(head), self._known(), self._policy_for
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


def _duplicate(info_hash: bytes) -> TrioariaError:
    return TrioariaError(
        f"InfoHash {info_hash.hex()} is already registered.",
        exit_code=ExitCode.DUPLICATE_INFO_HASH,
        retryable=False,
    )


async def _serve(
    ports: list[int], *, task_status: trio.TaskStatus[PeerListener] = trio.TASK_STATUS_IGNORED
) -> None:
    listener = PeerListener(ports)
    async with trio.open_nursery() as nursery:
        await nursery.start(listener.run)
        task_status.started(listener)


async def open_listener(ports: Iterable[int], nursery: trio.Nursery) -> PeerListener:
    """The run's peer listener: started by the first torrent in the engine's services nursery
    (one port for every torrent, as aria2); without that nursery, one of the download's own in
    ``nursery``.  Later torrents get the same listener whatever their ``--listen-port``."""
    wanted = list(ports)
    shared = await start_service(SERVICE_KEY, partial(_serve, wanted))
    if isinstance(shared, PeerListener):
        return shared
    own = PeerListener(wanted)
    await nursery.start(own.run)
    return own
