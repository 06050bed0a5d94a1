"""One peer connection as trio tasks: the driver of :class:`~trioaria.bt.wire.PeerConnection`.

Theory of operation
-------------------
A :class:`PeerTask` owns one TCP stream and one nursery with three tasks:

* the **reader** receives into one reused 256 KiB buffer (``recv_into``), feeds the wire codec and
  turns every event into decisions through :class:`~trioaria.bt.peer.PeerState`.  A block is
  written at once (``StorageSession.write_block``: the disk cache copies it, the page cache gets
  it through ``pwrite``), before the buffer is refilled, so the codec's zero-copy views of the
  buffer never outlive it.  After each read the request pipeline is topped up from
  ``Picker.claim_blocks`` (as many as ``PeerState.request_slots`` allows);
* the **writer** sends what the reader and the swarm queued, then serves the peer's requests
  (uploads) in batches of up to 64 blocks (one at a time under an upload rate limit), reading
  verified pieces through the session with one ``preadv`` per run of adjacent blocks;
* the **timer** runs ``PeerState.handle_timer`` (keep-alives, snubbing, idle peers).

The picker sees the peer as one source: its ``bitfield``/``have`` messages are its availability,
a ``reject``, a choke without the Fast extension or a snub hand its claims back (``unclaim``),
and when the connection ends every claim is released (``remove_source``).  A protocol violation
(an oversized length prefix, a wrong bitfield, a block beyond its piece) ends the connection
with :class:`~trioaria.bt.errors.PeerProtocolError`; nothing it sent before is lost, because
blocks are only ever marked after they were written.

The swarm (:mod:`trioaria.bt.swarm`) is the task's context: geometry, the session (``None``
while a magnet's metadata is fetched), the choker, the ban list and the shared counters.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from ..base.errors import TrioariaError
from ..net.connect import read_deadline
from .crypto_stream import MseStream
from .errors import PeerProtocolError
from .messages import (
    BLOCK_SIZE,
    AllowedFast,
    Bitfield,
    Cancel,
    Choke,
    ConnectionClosed,
    Event,
    Extended,
    ExtendedHandshake,
    Handshake,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    Unchoke,
    make_reserved,
)
from .peer import (
    BlockArrived,
    PeerHasChanged,
    PeerIdle,
    PeerState,
    RequestsDropped,
    SendMessage,
    UnrequestedBlock,
    UploadCancelled,
    UploadQueued,
)
from .wire import PeerConnection

if TYPE_CHECKING:
    from . import ut_metadata
    from .crypto_stream import PeerStream
    from .swarm import Swarm

__all__ = ["UT_METADATA_ID", "PeerTask", "bulk_read_size"]

log = logging.getLogger("trioaria.bt.peer")

RECV_BUFFER = 256 * 1024
MAX_RECV_BUFFER = 1024 * 1024  # a fast peer's reads grow to this
GROW_AFTER = 4  # reads that filled the buffer in a row before it doubles
# A peer owing us at least two buffers' worth of requested blocks is read a whole buffer at a
# time: the reader waits (at most BULK_PATIENCE seconds) until that much has arrived
# (ByteStream.wait_for_bytes; docs/performance.md §9).  A peer that made it wait in vain is read
# as its bytes come for the next BULK_BACKOFF seconds.
BULK_PATIENCE = 0.02
BULK_BACKOFF = 1.0


def next_buffer_size(size: int, full: int, n: int) -> tuple[int, int]:
    """The reader's buffer after a read of ``n`` bytes into one of ``size``, ``full`` reads
    in a row having filled it before: ``(size, full)`` for the next read.  A buffer filled
    :data:`GROW_AFTER` times in a row doubles, up to :data:`MAX_RECV_BUFFER` (a fast peer:
    fewer trips through trio per MiB); a read that does not fill it starts the count again."""
    full = full + 1 if n == size else 0
    if full >= GROW_AFTER and size < MAX_RECV_BUFFER:
        return min(2 * size, MAX_RECV_BUFFER), 0
    return size, full


def bulk_read_size(owed: int, buffer: int, now: float, bulk_after: float) -> int:
    """How many bytes the reader waits for before its next read (``wait_for_bytes``): the
    whole ``buffer`` while the peer owes at least two buffers' worth of requested blocks
    (``owed`` bytes) and no such wait ran out of patience lately (``now`` is past
    ``bulk_after``); else 1, a read as the bytes come."""
    return buffer if owed >= 2 * buffer and now >= bulk_after else 1


UT_METADATA_ID = 3  # the id we ask peers to send ut_metadata messages as
UT_PEX_ID = 1
HANDSHAKE_TIMEOUT = 20.0
UPLOAD_BATCH = 64  # blocks per send while no upload limit applies (~1 MiB)
MAX_QUEUED_OUT = 8 << 20  # bytes of messages (not piece data) waiting for a peer to read them


class PeerTask:
    """One connected peer (outgoing or accepted by the listener).

    Args:
        swarm: the torrent this connection serves.
        stream: the connected stream.
        addr: the peer's ``(host, port)`` (for an incoming peer: its address and source port
            until its extended handshake names its listen port).
        outgoing: we dialled it (we send our handshake first).
        initial: bytes already read from the stream (the listener's handshake peek).
    """

    def __init__(
        self,
        swarm: Swarm,
        stream: PeerStream,
        addr: tuple[str, int],
        *,
        outgoing: bool,
        initial: bytes = b"",
    ) -> None:
        self.swarm = swarm
        self.stream = stream
        self.addr = addr
        self.listen_addr: tuple[str, int] | None = addr if outgoing else None
        self.outgoing = outgoing
        self._initial = initial
        meta = swarm.meta
        if meta is not None:
            self.conn = PeerConnection(
                info_hash=swarm.info_hash,
                piece_length=meta.piece_length,
                total_length=meta.total_length,
            )
        else:
            self.conn = PeerConnection(info_hash=swarm.info_hash)
        self.state: PeerState | None = None
        self.peer_id = b""
        self.client = ""
        self._out = bytearray()
        self._upload_buffer: memoryview | None = None
        self._wake = trio.Event()
        # while the writer is parked with nothing to send, a message may go straight to the
        # kernel (plain TCP): no wake-up, send and park of the writer task per refill
        self._parked = False
        self._try_send = None if isinstance(stream, MseStream) else stream.try_send
        self._nursery: trio.Nursery | None = None
        self._registered = False
        self.closed = False
        self.last_unchoked: float | None = None
        self.strikes = 0
        self.metadata_size: int | None = None

    # --- helpers used by the swarm ---------------------------------------------------------

    def __repr__(self) -> str:
        return f"<peer {self.addr[0]}:{self.addr[1]}>"

    @property
    def ready(self) -> bool:
        """Both handshakes are done and the per-peer state exists."""
        return self.state is not None and not self.closed

    def queue(self, data: bytes) -> None:
        """Queue bytes for the writer; or, when the writer is parked with nothing queued
        (so no message of ours is half sent), hand them to the kernel at once, queueing only
        what it did not take (docs/performance.md §9)."""
        if self.closed:
            return
        if self._parked and not self._out and self._try_send is not None:
            sent = self._try_send(data) or 0  # None: a full buffer, or an error to report
            if sent == len(data):
                return
            data = data[sent:]
        self._out += data
        if len(self._out) > MAX_QUEUED_OUT:
            # a peer that asks (requests we reject, metadata pieces) and does not read the
            # answers: its replies would pile up without bound (BEP 6 allows choking or
            # closing such a peer)
            log.info("%r: %d bytes of replies not read, disconnecting", self, len(self._out))
            self.close()
            return
        self._kick()

    def send(self, event: Event) -> None:
        """Encode and queue one message (silently dropped once the connection is closing)."""
        if self.closed:
            return
        try:
            data = self.conn.send(event)
        except TrioariaError as exc:  # the codec refused: a bug on our side, end this peer
            log.debug("%r: cannot send %r: %s", self, event, exc)
            self.close()
            return
        if self.state is not None:
            self.state.sent(trio.current_time())
        self._trace("out", event)
        self.queue(data)

    def _trace(self, direction: str, event: object) -> None:
        """``--trace``: one line for this message (bt/trace.py)."""
        tracer = self.swarm.tracer
        if tracer is not None:
            host, port = self.addr[0], self.addr[1]
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            tracer.message(direction, "peer", where, event)

    def _kick(self) -> None:
        self._wake.set()

    def close(self) -> None:
        """End the connection (its tasks are cancelled; claims are released on exit)."""
        self.closed = True
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def set_choking(self, choking: bool, now: float) -> None:
        """Choke or unchoke the peer (the choker's decision)."""
        state = self.state
        if state is None or state.am_choking == choking:
            return
        actions = state.set_choking(choking, now)
        self.send(Choke() if choking else Unchoke())
        if not choking:
            self.last_unchoked = now
        for action in actions:
            if isinstance(action, SendMessage):
                self.send(action.message)

    def cancel_block(self, block: int) -> None:
        """Another peer wrote ``block`` first (endgame): cancel our request for it."""
        state = self.state
        if state is None:
            return
        index, begin, length = self.swarm.block_request(block)
        if state.cancel_request(index, begin):
            self.send(Cancel(index, begin, length))

    def send_have(self, piece: int) -> None:
        if self.ready:
            self.send(Have(piece))

    def lose_interest(self) -> None:
        state = self.state
        if state is not None and state.am_interested:
            state.set_interested(False, trio.current_time())
            self.send(NotInterested())

    # --- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Run the connection until it ends; never raises a protocol or network error."""
        swarm = self.swarm
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self.outgoing:
                    self._send_handshake()
                nursery.start_soon(self._writer)
                await self._reader()
                nursery.cancel_scope.cancel()
        except* PeerProtocolError as group:
            exc = group.exceptions[0]
            log.info("%r: protocol violation, disconnecting: %s", self, exc)
            swarm.note_violation(self, str(exc))
        except* TrioariaError as group:
            log.debug("%r: connection ended: %s", self, group.exceptions[0])
        finally:
            self.closed = True
            if self._registered and swarm.session is not None:
                swarm.session.picker.remove_source(self)
                self._registered = False
            swarm.peer_left(self)
            self.stream.close_nowait()

    def _send_handshake(self) -> None:
        swarm = self.swarm
        reserved = make_reserved(dht=bool(swarm.dht_port))  # BEP 5: we run a DHT node
        handshake = Handshake(swarm.info_hash, swarm.peer_id, reserved)
        self._trace("out", handshake)
        self.queue(self.conn.send(handshake))

    async def _writer(self) -> None:
        stream = self.stream
        while True:
            if not self._out and self.state is not None and self.state.queued_uploads:
                await self._serve_upload()
                continue
            if not self._out:
                self._parked = True
                try:
                    await self._wake.wait()
                finally:
                    self._parked = False
                self._wake = trio.Event()
                continue
            data, self._out = self._out, bytearray()
            await stream.send_all(data)

    async def _serve_upload(self) -> None:
        """Serve up to :data:`UPLOAD_BATCH` queued requests with one ``send_all``.

        The headers are packed into one reused buffer, then each run of adjacent blocks is
        read with one ``preadv`` straight into the slots after its headers: no per-block
        object and one system call per run, not per 16 KiB block (docs/performance.md §9).
        Under an upload rate limit one block goes at a time.
        """
        state = self.state
        assert state is not None
        swarm = self.swarm
        session = swarm.session
        conn = self.conn
        limit = 1 if swarm.upload_limited() else UPLOAD_BATCH
        blocks: list[tuple[int, int, int]] = []
        total = 0
        while len(blocks) < limit:
            block = state.next_upload()
            if block is None:
                break
            index, begin, length = block
            if state.am_choking and index not in swarm.allowed_fast_for(self):
                continue
            if session is None or not swarm.have_piece(index):
                if conn.fast:
                    self.send(RejectRequest(index, begin, length))
                continue
            blocks.append(block)
            total += length
        if not blocks or session is None:
            return
        await swarm.upload_allowance(total)
        if self.closed:
            return
        buf = self._upload_buffer
        if buf is None:
            buf = self._upload_buffer = memoryview(bytearray(UPLOAD_BATCH * (13 + BLOCK_SIZE)))
        pos = conn.pack_piece_headers(buf, blocks)
        # one read per run of adjacent blocks: each view is the slot after its header
        piece_length = session.storage.piece_length
        run: list[memoryview] = []
        run_start = run_end = -1
        at = 13
        ends: list[int] = []  # where each block's bytes end in buf
        for index, begin, length in blocks:
            offset = index * piece_length + begin
            if offset != run_end and run:
                session.readv_into(run_start, run)
                run = []
            if not run:
                run_start = offset
            run.append(buf[at : at + length])
            run_end = offset + length
            ends.append(at + length)
            at += 13 + length
        session.readv_into(run_start, run)
        if swarm.tracer is not None:
            at = 13
            for index, begin, length in blocks:
                self._trace("out", Piece(index, begin, bytes(buf[at : at + length])))
                at += 13 + length
        state.sent(trio.current_time())
        # A block counts as uploaded once its last byte is handed to the kernel: not before
        # (--seed-ratio must not end the run while a batch is still going out), and not only
        # at the end of the batch (a connection closed half-way through a slow batch would
        # lose the count of the blocks that did go out).
        done = 0

        def progress(sent: int) -> None:
            nonlocal done
            first = done
            while done < len(ends) and ends[done] <= sent:
                done += 1
            if done > first:
                n = sum(length for _, _, length in blocks[first:done])
                now = trio.current_time()
                state.upload.add(n, now)
                swarm.count_upload(n, now)

        await self.stream.send_all(buf[:pos], progress)

    async def _timer(self) -> None:
        while True:
            state = self.state
            assert state is not None
            await trio.sleep_until(state.get_timer())
            now = trio.current_time()
            for action in state.handle_timer(now):
                if isinstance(action, PeerIdle):
                    log.info("%r: idle for too long, disconnecting", self)
                    self.close()
                    return
                if isinstance(action, SendMessage):
                    self.send(action.message)
            if state.snubbed and state.outstanding:
                self._release_requests(send_cancel=True)

    async def _reader(self) -> None:
        buf = bytearray(RECV_BUFFER)
        view = memoryview(buf)
        conn = self.conn
        stream = self.stream
        swarm = self.swarm
        full = 0  # consecutive reads that filled the buffer
        bulk_after = 0.0  # whole-buffer reads are off until then (BULK_BACKOFF)
        # An RC4 stream decrypts the next chunk in a worker thread while this one is handled:
        # two buffers, taking turns (MseStream.prefetch).
        prefetch = stream.prefetch if isinstance(stream, MseStream) and stream.encrypted else None
        other = memoryview(bytearray(RECV_BUFFER)) if prefetch is not None else view
        # after a wait for a whole buffer, read it at once: no second trip through trio
        direct = None if isinstance(stream, MseStream) else stream.try_receive_into
        if self._initial:
            conn.receive_data(self._initial)
            self._initial = b""
            if not await self._drain():
                return
        while True:
            if self.state is None and conn.peer_handshake is None:
                with read_deadline(HANDSHAKE_TIMEOUT, "peer handshake"):
                    n = await stream.receive_into(view)
            else:
                state = self.state
                owed = state.outstanding * BLOCK_SIZE if state is not None else 0
                low = bulk_read_size(owed, len(view), trio.current_time(), bulk_after)
                got = None
                if await stream.wait_for_bytes(low, BULK_PATIENCE):
                    if low > 1 and direct is not None:
                        got = direct(view)  # None: nothing after all, or an error to report
                else:
                    bulk_after = trio.current_time() + BULK_BACKOFF
                n = await stream.receive_into(view) if got is None else got
            if n:
                conn.receive_data(view[:n])
                if prefetch is not None and self.state is not None:
                    prefetch(other)
            else:
                conn.receive_data(b"")
            if not await self._drain():
                return
            self._fill_requests()
            if n:
                await swarm.download_throttle(n)
                # a fast peer: larger reads, fewer trips through trio per MiB (the codec holds
                # no view of the old buffer once drained)
                size, full = next_buffer_size(len(view), full, n)
                if size != len(view):
                    view = memoryview(bytearray(size))
                    # (a chunk read ahead into an old buffer is copied over by the stream)
                    other = memoryview(bytearray(size)) if prefetch is not None else view
            view, other = other, view

    async def _drain(self) -> bool:
        """Handle every complete event; False when the peer closed the connection.

        Blocks and requests, the bulk of a transfer, skip the general dispatch (unless
        ``--trace`` is on): a requested block is checked off in :class:`PeerState` and joins
        the current run of consecutive blocks, and each run is written, marked and counted
        with one call (``Swarm.blocks_arrived``); a request goes to the upload queue
        (docs/performance.md §9).  A run is handed over before any other event is handled,
        so events keep their order.
        """
        conn = self.conn
        swarm = self.swarm
        now = trio.current_time()
        handled = 0
        fast = swarm.tracer is None and swarm.session is not None
        # a requested block starts a block: its number is index * bpp + begin // bl
        bpp, bl = swarm.block_geometry()
        run: list[memoryview] = []
        run_first = run_next = -1
        bulk = True  # look for block runs first (off while requests come: a seeder's bulk)
        while True:
            state = self.state
            if bulk and fast and state is not None:
                blocks = conn.next_blocks()  # the bulk: every whole block message in a row
                if blocks:
                    for index, begin, data in state.take_blocks(blocks, now):
                        block = index * bpp + begin // bl
                        if block != run_next and run:
                            self._flush_run(state, run_first, run, now)
                        if not run:
                            run_first = block
                        run.append(data)  # a view of the read buffer
                        run_next = block + 1
                    handled += len(blocks)
                    if self.closed:
                        break
                    if handled >= 64:  # (a run may go on past the checkpoint: one write per read)
                        handled = 0
                        await trio.lowlevel.checkpoint_if_cancelled()
                    continue
            event = conn.next_event()
            if event is None:
                break
            kind = type(event)
            state = self.state
            bulk = kind is not Request
            if kind is Piece and state is not None and fast:
                assert isinstance(event, Piece)
                piece_data = event.data
                if state.take_block(event.index, event.begin, len(piece_data), now):
                    block = event.index * bpp + event.begin // bl
                    if block != run_next and run:
                        self._flush_run(state, run_first, run, now)
                    if not run:
                        run_first = block
                    # a view of the read buffer (the codec's slow path may give bytes)
                    run.append(
                        piece_data if type(piece_data) is memoryview else memoryview(piece_data)
                    )
                    run_next = block + 1
            elif kind is Request and state is not None and swarm.tracer is None:
                assert isinstance(event, Request)
                action = state.request_received(event.index, event.begin, event.length, now)
                if isinstance(action, UploadQueued):
                    self._kick()
                elif isinstance(action, SendMessage):
                    self.send(action.message)
            else:
                if run and state is not None:
                    self._flush_run(state, run_first, run, now)
                if kind is ConnectionClosed:
                    return False
                self._handle(event)
                now = trio.current_time()
                fast = swarm.tracer is None and swarm.session is not None
                bpp, bl = swarm.block_geometry()  # (the metadata may have just arrived)
            if self.closed:
                break
            handled += 1
            if handled >= 64:
                handled = 0
                if run and state is not None:
                    self._flush_run(state, run_first, run, now)
                await trio.lowlevel.checkpoint_if_cancelled()
        state = self.state
        if run and state is not None:
            self._flush_run(state, run_first, run, now)
        return not self.closed

    def _flush_run(self, state: PeerState, first: int, run: list[memoryview], now: float) -> None:
        """Write, mark and count a run of consecutive requested blocks (see :meth:`_drain`),
        then empty ``run`` for the next one."""
        nbytes = sum(map(len, run))
        state.blocks_arrived(nbytes, now)
        self.swarm.blocks_arrived(self, first, run, nbytes, now)
        run.clear()

    # --- events ----------------------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        self._trace("in", event)
        if isinstance(event, Handshake):
            self._on_handshake(event)
            return
        state = self.state
        if state is None:
            raise PeerProtocolError(f"{type(event).__name__} before the handshake")
        now = trio.current_time()
        if isinstance(event, Port):
            self.swarm.dht_node_seen((self.addr[0], event.port))
        elif isinstance(event, ExtendedHandshake):
            self._on_extended_handshake(event)
        elif isinstance(event, Extended):
            self._on_extended(event)
            return
        was_interested = state.peer_interested
        for action in state.receive(event, now):
            self._act(action, now)
        if state.peer_interested != was_interested:
            self.swarm.interest_changed(self)
        if isinstance(event, Unchoke):
            self._fill_requests()

    def _on_handshake(self, event: Handshake) -> None:
        swarm = self.swarm
        if not self.outgoing:
            self._send_handshake()
        if event.peer_id == swarm.peer_id:
            log.debug("%r: connected to ourselves", self)
            swarm.note_self(self)
            self.close()
            return
        if swarm.is_banned(self, event.peer_id):
            log.info("%r: banned peer, disconnecting", self)
            self.close()
            return
        if not swarm.admit_peer_id(self, event.peer_id):
            self.close()
            return
        self.peer_id = event.peer_id
        log.debug("%r: handshake from %r (fast=%s, extensions=%s)", self, event.peer_id,
                  self.conn.fast, self.conn.extensions)  # fmt: skip
        now = trio.current_time()
        meta = swarm.meta
        self.state = PeerState(meta.num_pieces if meta else None, now, fast=self.conn.fast)
        if self.conn.extensions:
            m = {"ut_metadata": UT_METADATA_ID}
            if swarm.pex is not None:
                m["ut_pex"] = UT_PEX_ID
            self.send(
                ExtendedHandshake(
                    m=m,
                    listen_port=swarm.listen_port or None,
                    client=swarm.peer_agent,
                    reqq=250,
                    metadata_size=len(meta.info_bytes) if meta is not None else None,
                )
            )
        if swarm.dht_port and event.supports_dht:
            self.send(Port(swarm.dht_port))  # BEP 5: tell a DHT peer where our node listens
        session = swarm.session
        if session is not None and meta is not None:
            have = swarm.verified_bitfield()
            count = have.count()
            if self.conn.fast and count == meta.num_pieces:
                self.send(HaveAll())
            elif self.conn.fast and count == 0:
                self.send(HaveNone())
            elif count:
                self.send(Bitfield(have.to_bytes()))
            from ..storage.bitfield import Bitfield as Pieces

            session.picker.add_source(self, Pieces(meta.num_pieces))
            self._registered = True
            if self.conn.fast:
                # BEP 6: these pieces may be requested from us even while we choke the peer
                fast = swarm.allowed_fast_list(self)
                self.state.allow_fast(frozenset(fast))
                for index in fast:
                    self.send(AllowedFast(index))
        elif self.conn.fast:
            self.send(HaveNone())
        assert self._nursery is not None
        self._nursery.start_soon(self._timer)
        swarm.peer_ready(self)

    def _on_extended_handshake(self, event: ExtendedHandshake) -> None:
        if event.client:
            self.client = event.client[:64]
        if event.listen_port and not self.outgoing:
            self.listen_addr = (self.addr[0], event.listen_port)
            self.swarm.learn_address(self.listen_addr)
        log.debug("%r: extended handshake %r", self, event)
        if event.metadata_size is not None and "ut_metadata" in self.conn.remote_extensions:
            self.metadata_size = event.metadata_size
            self.swarm.metadata_offered(self)

    def _on_extended(self, event: Extended) -> None:
        if event.name == "ut_pex":
            if self.swarm.pex is not None:
                self.swarm.pex.received(self.swarm, self, bytes(event.payload))
            return
        if event.name != "ut_metadata":
            return
        from . import ut_metadata  # BEP 9 is imported with its first message

        try:
            message = ut_metadata.decode_message(event.payload)
        except TrioariaError as exc:
            raise PeerProtocolError(f"bad ut_metadata message: {exc}") from None
        if isinstance(message, ut_metadata.MetadataRequest):
            self._serve_metadata(message)
        elif isinstance(message, ut_metadata.MetadataData):
            self.swarm.metadata_piece(self, message)
        else:
            self.swarm.metadata_rejected(self)

    def _serve_metadata(self, request: ut_metadata.MetadataRequest) -> None:
        ext = self.conn.remote_extensions.get("ut_metadata")
        if not ext:
            return
        from . import ut_metadata

        meta = self.swarm.meta
        answer: ut_metadata.MetadataData | ut_metadata.MetadataReject
        if meta is None:
            answer = ut_metadata.MetadataReject(request.piece)
        else:
            answer = ut_metadata.serve(meta.info_bytes, request)
        self.send(Extended(ext, ut_metadata.encode_message(answer)))

    def request_metadata(self, piece: int) -> None:
        ext = self.conn.remote_extensions.get("ut_metadata")
        if ext:
            from . import ut_metadata

            message = ut_metadata.encode_message(ut_metadata.MetadataRequest(piece))
            self.send(Extended(ext, message))

    def _act(self, action: object, now: float) -> None:
        swarm = self.swarm
        if isinstance(action, BlockArrived):
            swarm.block_arrived(self, action.index, action.begin, action.data, now)
        elif isinstance(action, PeerHasChanged):
            self._pieces_changed(action)
        elif isinstance(action, RequestsDropped):
            session = swarm.session
            if session is not None:
                for index, begin, _length in action.blocks:
                    session.picker.unclaim(self, swarm.block_index(index, begin))
        elif isinstance(action, UploadQueued):
            self._kick()
        elif isinstance(action, SendMessage):
            self.send(action.message)
        elif isinstance(action, PeerIdle):
            self.close()
        elif isinstance(action, UnrequestedBlock | UploadCancelled):
            pass

    def _pieces_changed(self, action: PeerHasChanged) -> None:
        swarm = self.swarm
        session = swarm.session
        state = self.state
        if session is None or state is None:
            return
        picker = session.picker
        if len(action.pieces) == 1 and not action.seed:
            picker.source_has(self, action.pieces[0])
        else:
            pieces = state.pieces
            if pieces is not None:
                from ..storage.bitfield import Bitfield as Pieces

                picker.add_source(self, Pieces.from_bytes(pieces.to_bytes(), len(pieces)))
        if not state.am_interested and swarm.wants_any(action.pieces):
            state.set_interested(True, trio.current_time())
            self.send(Interested())
        if swarm.complete and state.seed:
            self.close()  # two seeds have nothing to exchange

    # --- requests --------------------------------------------------------------------------

    def _fill_requests(self) -> None:
        state = self.state
        swarm = self.swarm
        session = swarm.session
        if (
            state is None
            or session is None
            or self.closed
            or swarm.complete
            or state.peer_choking
            or not state.am_interested
        ):
            return
        now = trio.current_time()
        slots = state.request_slots(now)
        if slots <= 0:
            return
        blocks = session.picker.claim_blocks(self, slots)
        if not blocks:
            return
        requests = swarm.block_requests(blocks)
        try:
            data = self.conn.send_requests(requests)
        except TrioariaError as exc:  # the codec refused: a bug on our side, end this peer
            log.debug("%r: cannot send requests: %s", self, exc)
            self.close()
            return
        if swarm.tracer is not None:
            for index, begin, length in requests:
                self._trace("out", Request(index, begin, length))
        state.sent_requests(requests, now)
        self.queue(data)

    def _release_requests(self, *, send_cancel: bool) -> None:
        """Give every outstanding request back to the picker (a snubbed peer)."""
        state = self.state
        session = self.swarm.session
        if state is None or session is None:
            return
        for index, begin, length in state.outstanding_blocks():
            state.cancel_request(index, begin)
            session.picker.unclaim(self, self.swarm.block_index(index, begin))
            if send_cancel:
                self.send(Cancel(index, begin, length))
