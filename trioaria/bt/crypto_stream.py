"""MSE/PE on a peer connection: a stream wrapper like ``trio.SSLStream``, and who speaks it when.

Theory of operation
-------------------
:class:`MseStream` is a :class:`trio.abc.Stream` over a connected
:class:`~trioaria.net.connect.ByteStream`: it drives the sans-IO handshake
(:class:`~trioaria.bt.mse.MseHandshake`) once, then carries the payload through the negotiated
method (RC4 both ways, or plaintext).  It offers the same calls a peer task makes on a
``ByteStream`` (``send_all``, ``receive_some``, ``receive_into``, ``close_nowait``, ``peer``),
so :class:`~trioaria.bt.peer_task.PeerTask` runs unchanged on either.

Who speaks MSE follows aria2 (docs/design.md, "BitTorrent"):

* **Outgoing** (:func:`open_peer_stream`): always the MSE handshake first, offering RC4 and,
  unless ``--bt-min-crypto-level=arc4``, plaintext.  When the handshake fails (the peer closes,
  sends garbage, times out) and crypto is not required, the peer is dialled again with the plain
  BitTorrent handshake; with ``--bt-require-crypto`` the peer is given up.
* **Incoming** (:func:`accept_encrypted`): the listener reads the first bytes; a plain
  ``\\x13BitTorrent protocol`` handshake is taken unless the torrent requires crypto, anything
  else is treated as MSE's ``Ya``: the receiver finds ``HASH('req1', S)`` within 512 bytes of
  padding, learns the torrent from ``SKEY`` and picks the method by that torrent's
  :class:`~trioaria.bt.mse.CryptoPolicy` (plaintext when allowed and offered, as aria2).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any

import trio

from ..base.errors import TrioariaError
from ..net.connect import ByteStream, open_stream, read_deadline
from .mse import (
    CryptoMethod,
    CryptoPolicy,
    MseComplete,
    MseError,
    MseHandshake,
    MseRole,
    is_plain_handshake,
)

__all__ = [
    "MSE_HANDSHAKE_TIMEOUT",
    "MseStream",
    "PeerStream",
    "accept_encrypted",
    "initiate",
    "open_peer_stream",
]

log = logging.getLogger("trioaria.bt.mse")

MSE_HANDSHAKE_TIMEOUT = 20.0
"""Seconds without progress before an MSE handshake is given up (each read is bounded)."""


class _Prefetch:
    """A chunk of ciphertext being decrypted in a worker thread (:meth:`MseStream.prefetch`)."""

    __slots__ = ("buf", "done", "n", "outcome")

    def __init__(self, buf: memoryview, n: int) -> None:
        self.buf = buf  # the plaintext lands here
        self.n = n
        self.done = trio.Event()
        self.outcome: Any = None

    def finish(self, outcome: Any) -> None:
        self.outcome = outcome
        self.done.set()


class MseStream(trio.abc.Stream):
    """A peer connection after an MSE handshake (see the module docstring).

    Args:
        transport: the TCP stream the handshake ran on.
        handshake: the finished handshake (its ciphers carry on).
        buffered: peer bytes already decrypted (IA and whatever followed the handshake).
    """

    def __init__(self, transport: ByteStream, handshake: MseHandshake, buffered: bytes) -> None:
        self.transport_stream = transport
        self._mse = handshake
        self._buffered = bytearray(buffered)
        assert handshake.method is not None
        #: the negotiated payload method
        self.method: CryptoMethod = handshake.method
        self._plain = handshake.method is CryptoMethod.PLAINTEXT
        #: ciphertext lands here and is decrypted into the caller's buffer (RC4 only)
        self._raw = memoryview(bytearray())
        #: outgoing ciphertext, reused across sends (RC4 only)
        self._out = memoryview(bytearray())
        self._sending = False
        #: a chunk read ahead and being decrypted in a worker thread (RC4 only)
        self._ahead: _Prefetch | None = None
        self._raw_ahead = memoryview(bytearray())

    def __repr__(self) -> str:
        return f"<MseStream {self.method.name}>"

    @property
    def peer(self) -> tuple[object, ...]:
        """The peer's address tuple, as :attr:`ByteStream.peer`."""
        return self.transport_stream.peer

    @property
    def closed(self) -> bool:
        return self.transport_stream.closed

    @property
    def encrypted(self) -> bool:
        """Whether the payload is RC4-encrypted (not plaintext after the handshake)."""
        return not self._plain

    async def send_all(
        self,
        data: bytes | bytearray | memoryview,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Send ``data`` through the negotiated method (*progress*: as
        :meth:`ByteStream.send_all`, one byte of ciphertext per byte of ``data``).

        RC4 encrypts into one reused buffer (grown to the largest send), so a send allocates
        nothing; like ``trio.SocketStream``, two tasks may not send at once.
        """
        if self._plain:
            await self.transport_stream.send_all(data, progress)
            return
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this MseStream")
        self._sending = True
        try:
            n = len(data)
            if len(self._out) < n:
                self._out = memoryview(bytearray(n))
            out = self._out[:n]
            self._mse.encrypt_into(data, out)
            await self.transport_stream.send_all(out, progress)
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    def prefetch(self, buf: memoryview) -> None:
        """Read the ciphertext already waiting and start decrypting it into ``buf`` in a worker
        thread (RC4 only; otherwise nothing happens), so the caller can work on its previous
        chunk meanwhile: the decryption runs beside the event loop (OpenSSL's RC4 releases the
        GIL), not in front of it (docs/performance.md §9, "MSE").

        The next :meth:`receive_into` returns these bytes; the caller passes ``buf`` to it and
        must not touch ``buf`` before that (a reader alternates two buffers).  Ordering is kept:
        at most one chunk is ahead, and nothing is read ahead of buffered handshake bytes.
        """
        if self._plain or self._ahead is not None or self._buffered or not buf:
            return
        if len(self._raw_ahead) < len(buf):
            self._raw_ahead = memoryview(bytearray(len(buf)))
        raw = self._raw_ahead[: len(buf)]
        n = self.transport_stream.try_receive_into(raw)
        if not n:  # nothing waiting, or EOF (left to receive_into, which sees it again)
            return
        job = _Prefetch(buf, n)
        token = trio.lowlevel.current_trio_token()
        decrypt = self._mse.decrypt_into

        def deliver(outcome: Any) -> None:  # in the worker thread
            try:
                token.run_sync_soon(job.finish, outcome)
            except trio.RunFinishedError:
                pass

        trio.lowlevel.start_thread_soon(lambda: decrypt(raw[:n], buf), deliver)
        self._ahead = job

    async def _take_ahead(self, job: _Prefetch) -> memoryview:
        """Wait for the chunk read ahead; its plaintext (or the decryption's error)."""
        await job.done.wait()
        self._ahead = None
        job.outcome.unwrap()
        return job.buf[: job.n]

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Up to ``max_bytes`` decrypted bytes; ``b""`` at EOF."""
        size = max_bytes or 65536
        if self._ahead is not None:
            self._buffered += await self._take_ahead(self._ahead)
        if self._buffered:
            out = bytes(self._buffered[:size])
            del self._buffered[:size]
            await trio.lowlevel.checkpoint()
            return out
        data = await self.transport_stream.receive_some(size)
        return data if self._plain or not data else self._mse.decrypt(data)

    async def wait_for_bytes(self, nbytes: int, patience: float) -> bool:
        """:meth:`ByteStream.wait_for_bytes` of the transport; at once (the transport's mark
        back at 1) while bytes are already buffered or read ahead here."""
        if self._ahead is not None or self._buffered:
            nbytes = 1
        return await self.transport_stream.wait_for_bytes(nbytes, patience)

    async def receive_into(self, buf: memoryview) -> int:
        """Receive up to ``len(buf)`` bytes into ``buf``; 0 at EOF.

        The bulk path of an encrypted transfer: one ``recv_into`` of ``len(buf)`` bytes (the
        same read as plaintext) into a reused ciphertext buffer, then RC4 writes the plaintext
        straight into ``buf`` -- no new object per read, no copy besides the cipher's own.
        """
        job = self._ahead
        if job is not None:  # read ahead (prefetch): normally straight into this very buffer
            data = await self._take_ahead(job)
            if job.buf is buf:
                return len(data)
            self._buffered += data  # the caller changed buffers: hand it over by copy
        if self._buffered:
            n = min(len(buf), len(self._buffered))
            buf[:n] = self._buffered[:n]
            del self._buffered[:n]
            await trio.lowlevel.checkpoint()
            return n
        if self._plain:
            return await self.transport_stream.receive_into(buf)
        if len(self._raw) < len(buf):
            self._raw = memoryview(bytearray(len(buf)))
        n = await self.transport_stream.receive_into(self._raw[: len(buf)])
        if n:
            self._mse.decrypt_into(self._raw[:n], buf)
        return n

    def close_nowait(self) -> None:
        self.transport_stream.close_nowait()

    async def aclose(self) -> None:
        await self.transport_stream.aclose()


PeerStream = ByteStream | MseStream
"""What a :class:`~trioaria.bt.peer_task.PeerTask` runs on."""


async def _drive(transport: ByteStream, mse: MseHandshake, first: bytes = b"") -> MseComplete:
    """Run ``mse`` over ``transport`` until it completes; every read within the handshake timeout.

    An initiator whose peer answers with a plain BitTorrent handshake (a client without MSE that
    took ``Ya`` for a handshake) fails at once instead of waiting out the timeout, so the plain
    retry comes quickly.
    """
    if first:
        mse.receive_data(first)
    head = bytearray()
    while True:
        out = mse.data_to_send()
        if out:
            await transport.send_all(out)
        event = mse.next_event()
        if event is not None:
            return event
        with read_deadline(MSE_HANDSHAKE_TIMEOUT, "MSE handshake"):
            data = await transport.receive_some(4096)
        if not data:
            raise MseError(
                f"the peer closed the connection during the MSE handshake ({mse.state.value})"
            )
        if mse.role is MseRole.INITIATOR and len(head) < 20:
            head += data[: 20 - len(head)]
            if is_plain_handshake(bytes(head)):
                raise MseError("the peer answered the MSE handshake with a plain BitTorrent one")
        mse.receive_data(data)


async def initiate(
    transport: ByteStream,
    info_hash: bytes,
    policy: CryptoPolicy,
    *,
    random_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> MseStream:
    """The initiator's handshake (A) on a fresh connection; IA is empty (the BitTorrent
    handshake follows through the returned stream)."""
    mse = MseHandshake(
        MseRole.INITIATOR, info_hash=info_hash, allowed=policy.allowed, random_bytes=random_bytes
    )
    done = await _drive(transport, mse)
    return MseStream(transport, mse, done.payload)


async def accept_encrypted(
    transport: ByteStream,
    first: bytes,
    info_hashes: Iterable[bytes],
    policy_for: Callable[[bytes], CryptoPolicy],
) -> tuple[MseStream, bytes]:
    """The receiver's handshake (B) on an accepted connection whose ``first`` bytes are not a
    plain BitTorrent handshake.

    Returns:
        The stream (IA and later bytes already buffered in it, decrypted) and the info hash
        named by SKEY.

    Raises:
        MseError: not MSE, an unknown torrent, or no method the torrent accepts.
    """
    mse = MseHandshake(
        MseRole.RECEIVER,
        info_hashes=info_hashes,
        policy_for=policy_for,
        random_bytes=secrets.token_bytes,
    )
    done = await _drive(transport, mse, first)
    return MseStream(transport, mse, done.initial_payload + done.payload), done.info_hash


async def open_peer_stream(
    host: str,
    port: int,
    info_hash: bytes,
    policy: CryptoPolicy,
    *,
    connect_timeout: float,
) -> PeerStream:
    """Dial a peer the way aria2 does: MSE first, plain again if that fails and is allowed.

    Raises:
        TrioariaError: the connection failed, or MSE failed while crypto is required.
    """
    stream = await open_stream(host, port, tls=None, connect_timeout=connect_timeout)
    try:
        try:
            return await initiate(stream, info_hash, policy)
        except BaseException:
            stream.close_nowait()
            raise
    except TrioariaError as exc:
        if policy.require:
            raise
        log.debug("%s:%d: MSE handshake failed (%s); retrying plain", host, port, exc)
    return await open_stream(host, port, tls=None, connect_timeout=connect_timeout)
