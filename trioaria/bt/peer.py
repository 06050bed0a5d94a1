"""Per-peer state: choke/interest, the peer's pieces, our request pipeline, its requests (pure).

Theory of operation
-------------------
A :class:`~trioaria.bt.wire.PeerConnection` turns bytes into messages; :class:`PeerState` turns
messages into decisions for one peer.  The driver feeds it every received event with
:meth:`PeerState.receive` and gets back :class:`PeerAction` values to carry out (write a block,
give requests back to the picker, serve an upload, send a message); it asks
:meth:`PeerState.request_slots` how many block requests to add, registers those it sends with
:meth:`PeerState.sent_request`, and calls :meth:`PeerState.handle_timer` at
:meth:`PeerState.get_timer`.  Time is always the ``now`` argument.

Rules it applies:

* **Choking** (BEP 3): requests only go to a peer that does not choke us, except for its BEP 6
  "allowed fast" pieces.  When the peer chokes us, BEP 3 says outstanding requests are dropped,
  so they are handed back (:class:`RequestsDropped`); with the Fast extension they stay until
  the peer answers each with a block or a ``reject request`` (BEP 6: "choke no longer implicitly
  rejects all pending requests").
* **Pipeline**: enough 16 KiB requests in flight to cover about three seconds of the peer's
  current rate (libtorrent's ``request_queue_time``), at least 4, at most the peer's ``reqq``
  (BEP 10) or 250 (aria2's and many clients' queue): at 100 MiB/s that is the full 250, so a
  fast peer never waits for a request.  The window must be longer than the peer's answer
  latency, or the pipeline never grows: transmission answers requests in 0.5 s batches, and
  a half-second window held it at 4-5 requests (about 150 KiB/s over loopback).
* **Snubbing**: a peer with requests out that sent no block for 60 s is *snubbed* (aria2 and
  libtorrent: the choker passes it over and the picker may give its blocks to others) until a
  block arrives.
* **Keep-alive and idle**: a keep-alive is due when we sent nothing for 120 s ("Keepalives are
  generally sent once every two minutes"); a peer silent for 180 s is idle and should be closed
  (:class:`PeerIdle`).
* **Uploads**: a request from a peer we choke is rejected when Fast is on (BEP 6) and otherwise
  ignored; requests beyond ``max_upload_queue`` are refused the same way; ``cancel`` removes a
  queued request.  The queue is served by the driver through :meth:`PeerState.next_upload`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..base.speed import SpeedMeter
from ..storage.bitfield import Bitfield as Pieces
from .errors import PeerProtocolError
from .messages import (
    BLOCK_SIZE,
    AllowedFast,
    Bitfield,
    Cancel,
    Choke,
    Event,
    ExtendedHandshake,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    NotInterested,
    Piece,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
)

__all__ = [
    "BlockArrived",
    "PeerAction",
    "PeerHasChanged",
    "PeerIdle",
    "PeerState",
    "RequestsDropped",
    "SendMessage",
    "UnrequestedBlock",
    "UploadCancelled",
    "UploadQueued",
]

Block = tuple[int, int, int]
"""``(index, begin, length)`` of a block."""

SNUB_AFTER = 60.0
KEEPALIVE_AFTER = 120.0
IDLE_AFTER = 180.0
DEFAULT_MAX_QUEUE = 250
MAX_ALLOWED_FAST = 256  # allowed-fast pieces remembered from one peer
MAX_EARLY_HAVES = 1 << 16  # HAVEs kept from before the metadata (the piece count) is known
MIN_PIPELINE = 4
PIPELINE_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class BlockArrived:
    """A block we requested: write it (``data`` as the wire gave it, see ``Piece``)."""

    index: int
    begin: int
    data: bytes | bytearray | memoryview = field(repr=False)


@dataclass(frozen=True, slots=True)
class UnrequestedBlock:
    """A block we did not ask for (or cancelled): count it as waste, do not write it blindly."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class RequestsDropped:
    """Requests the peer will not answer (choke without Fast, reject): give them back."""

    blocks: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class PeerHasChanged:
    """The peer's piece set changed: ``pieces`` were added (all of them after a bitfield)."""

    pieces: tuple[int, ...]
    seed: bool


@dataclass(frozen=True, slots=True)
class UploadQueued:
    """The peer asked for a block and it was queued (serve it via :meth:`PeerState.next_upload`)."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class UploadCancelled:
    """A queued upload was cancelled by the peer (drop it if it was already read)."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Send this message to the peer (a ``reject request``, a keep-alive)."""

    message: Event


@dataclass(frozen=True, slots=True)
class PeerIdle:
    """Nothing arrived for :data:`IDLE_AFTER` seconds: close the connection."""


PeerAction = (
    BlockArrived
    | UnrequestedBlock
    | RequestsDropped
    | PeerHasChanged
    | UploadQueued
    | UploadCancelled
    | SendMessage
    | PeerIdle
)


class PeerState:
    """What we know about one peer and what we owe it.

    Args:
        num_pieces: pieces in the torrent (``None`` until BEP 9 metadata arrives; call
            :meth:`set_num_pieces` then).
        now: the time the connection opened.
        fast: the Fast extension was negotiated (``PeerConnection.fast``).
        max_upload_queue: most of the peer's requests we hold at once.

    Attributes:
        am_choking, am_interested, peer_choking, peer_interested: BEP 3's four flags, all
            starting as "choked, not interested".
        allowed_fast: pieces the peer lets us request while it chokes us (BEP 6).
        suggested: pieces the peer suggested (BEP 6), newest last.
        reqq: the peer's request queue size from its extended handshake, if given.
        download: rate meter of blocks received; ``upload``: of blocks sent.
    """

    def __init__(
        self,
        num_pieces: int | None,
        now: float,
        *,
        fast: bool = False,
        max_upload_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        self.fast = fast
        self.max_upload_queue = max_upload_queue
        self.am_choking = True
        self.am_interested = False
        self.peer_choking = True
        self.peer_interested = False
        self.allowed_fast: set[int] = set()
        self.suggested: list[int] = []
        self.reqq: int | None = None
        self.download = SpeedMeter(now)
        self.upload = SpeedMeter(now)
        self._num_pieces = num_pieces
        self._pieces: Pieces | None = Pieces(num_pieces) if num_pieces is not None else None
        self._raw_bitfield: bytes | None = None
        self._have_all = False
        self._requests: dict[tuple[int, int], tuple[int, float]] = {}
        self._uploads: deque[Block] = deque()
        self._last_received = now
        self._last_sent = now
        self._last_block: float | None = None
        self._snub_clock = now  # when the snub countdown started (last block or first request)
        self._snubbed = False
        self._early_haves: set[int] = set()  # ``have`` messages before the piece count is known
        self._fast_set_for_them: frozenset[int] = frozenset()

    # --- the peer's pieces -----------------------------------------------------------------

    def set_num_pieces(self, num_pieces: int) -> list[PeerAction]:
        """Learn the piece count (after BEP 9 metadata); a bitfield received earlier is applied.

        Raises:
            PeerProtocolError: the early bitfield does not fit the piece count.
        """
        self._num_pieces = num_pieces
        self._pieces = Pieces(num_pieces)
        if self._have_all:
            return [self._all()]
        actions: list[PeerAction] = []
        if self._raw_bitfield is not None:
            actions.append(self._apply_bitfield(self._raw_bitfield))
        haves = sorted(i for i in self._early_haves if self._set_have(i))
        self._early_haves.clear()
        if haves:
            actions.append(PeerHasChanged(tuple(haves), self._pieces.all()))
        return actions

    def _set_have(self, index: int) -> bool:
        assert self._pieces is not None
        try:
            return self._pieces.set(index)
        except IndexError:
            raise PeerProtocolError(f"have for piece {index} of {self._pieces.length}") from None

    @property
    def seed(self) -> bool:
        """The peer has every piece."""
        return self._have_all or (self._pieces is not None and self._pieces.all())

    def has(self, index: int) -> bool:
        """The peer has piece ``index``."""
        return self._have_all or (self._pieces is not None and self._pieces[index])

    @property
    def pieces(self) -> Pieces | None:
        """The peer's piece set (``None`` while the piece count is unknown)."""
        if self._pieces is not None and self._have_all and not self._pieces.all():
            for i in range(self._pieces.length):
                self._pieces.set(i)
        return self._pieces

    def _all(self) -> PeerHasChanged:
        count = self._num_pieces or 0
        return PeerHasChanged(tuple(range(count)), True)

    def _apply_bitfield(self, raw: bytes) -> PeerHasChanged:
        assert self._num_pieces is not None
        try:
            self._pieces = Pieces.from_bytes(raw, self._num_pieces)
        except ValueError as exc:
            raise PeerProtocolError(str(exc)) from None
        return PeerHasChanged(tuple(self._pieces.iter_set()), self._pieces.all())

    # --- our requests ----------------------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._requests)

    def outstanding_blocks(self) -> list[Block]:
        """Every request in flight, oldest first."""
        return [(i, b, n) for (i, b), (n, _) in self._requests.items()]

    def can_request(self, index: int) -> bool:
        """Whether a request for a block of ``index`` may be sent now (choke and allowed fast)."""
        return self.has(index) and (not self.peer_choking or index in self.allowed_fast)

    def pipeline_depth(self, now: float) -> int:
        """How many requests to keep in flight at the peer's current rate."""
        cap = min(self.reqq or DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE)
        wanted = int(self.download.rate(now) * PIPELINE_SECONDS) // BLOCK_SIZE + 1
        return max(min(MIN_PIPELINE, cap), min(wanted, cap))

    def request_slots(self, now: float) -> int:
        """How many more requests to send now (0 while choked without allowed fast pieces)."""
        if self.peer_choking and not self.allowed_fast:
            return 0
        return max(0, self.pipeline_depth(now) - len(self._requests))

    def sent_request(self, request: Request, now: float) -> None:
        """Record a request we sent."""
        if not self._requests:
            self._snub_clock = now
        self._requests[(request.index, request.begin)] = (request.length, now)
        self.sent(now)

    def sent_requests(self, blocks: list[Block], now: float) -> None:
        """Record requests we sent together (:meth:`sent_request` for each)."""
        requests = self._requests
        if not requests:
            self._snub_clock = now
        for index, begin, length in blocks:
            requests[(index, begin)] = (length, now)
        self._last_sent = now

    def cancel_request(self, index: int, begin: int) -> bool:
        """Forget a request we cancel (endgame); the driver sends ``cancel``.  Returns whether
        it was outstanding."""
        return self._requests.pop((index, begin), None) is not None

    @property
    def snubbed(self) -> bool:
        """Requests are out and no block came for :data:`SNUB_AFTER` seconds (as of the last
        :meth:`handle_timer`)."""
        return self._snubbed

    # --- uploads ---------------------------------------------------------------------------

    def next_upload(self) -> Block | None:
        """The oldest queued request of the peer, removed from the queue."""
        return self._uploads.popleft() if self._uploads else None

    @property
    def queued_uploads(self) -> int:
        """The peer's requests waiting to be served."""
        return len(self._uploads)

    def set_choking(self, choking: bool, now: float) -> list[PeerAction]:
        """We choke or unchoke the peer (the driver sends the message).  Choking drops its
        queued requests; with Fast each is rejected explicitly (BEP 6)."""
        self.am_choking = choking
        self.sent(now)
        if not choking:
            return []
        if not self.fast:
            self._uploads.clear()
            return []
        # BEP 6: requests for allowed fast pieces survive a choke; the others are rejected
        keep = self._fast_set_for_them
        dropped = [r for r in self._uploads if r[0] not in keep]
        kept = [r for r in self._uploads if r[0] in keep]
        self._uploads.clear()
        self._uploads.extend(kept)
        return [SendMessage(RejectRequest(i, b, n)) for i, b, n in dropped]

    def set_interested(self, interested: bool, now: float) -> None:
        """We became (not) interested (the driver sends the message)."""
        self.am_interested = interested
        self.sent(now)

    def sent(self, now: float) -> None:
        """Anything was sent to the peer (resets the keep-alive clock)."""
        self._last_sent = now

    # --- incoming --------------------------------------------------------------------------

    def receive(self, event: Event, now: float) -> list[PeerAction]:
        """Apply one message from the peer.

        Returns:
            What the driver must do about it, in order.

        Raises:
            PeerProtocolError: a bitfield that does not fit the torrent.
        """
        self._last_received = now
        match event:
            case Piece(index=index, begin=begin, data=data):
                if not self.block_received(index, begin, len(data), now):
                    return [UnrequestedBlock(index, begin, len(data))]
                return [BlockArrived(index, begin, data)]
            case Choke():
                self.peer_choking = True
                if self.fast or not self._requests:
                    return []
                # BEP 3: a choke discards every pending request (BEP 6 keeps allowed fast ones
                # only with Fast negotiated, handled above).
                dropped = tuple(self.outstanding_blocks())
                self._requests.clear()
                return [RequestsDropped(dropped)]
            case Unchoke():
                self.peer_choking = False
                return []
            case Interested():
                self.peer_interested = True
                return []
            case NotInterested():
                self.peer_interested = False
                return []
            case Have(index=index):
                if self._pieces is None:
                    if len(self._early_haves) < MAX_EARLY_HAVES:
                        self._early_haves.add(index)
                    return []
                if self._set_have(index):
                    return [PeerHasChanged((index,), self._pieces.all())]
                return []
            case Bitfield(bits=bits):
                if self._num_pieces is None:
                    self._raw_bitfield = bits
                    return []
                return [self._apply_bitfield(bits)]
            case HaveAll():
                self._have_all = True
                return [self._all()] if self._num_pieces is not None else []
            case HaveNone():
                return []
            case Request(index=index, begin=begin, length=length):
                return self._their_request((index, begin, length))
            case Cancel(index=index, begin=begin, length=length):
                try:
                    self._uploads.remove((index, begin, length))
                except ValueError:
                    return []
                if self.fast:  # BEP 6: every request gets exactly one answer, a cancelled one too
                    return [SendMessage(RejectRequest(index, begin, length))]
                return [UploadCancelled(index, begin, length)]
            case RejectRequest(index=index, begin=begin, length=length):
                entry = self._requests.get((index, begin))
                if entry is None or entry[0] != length:
                    return []
                del self._requests[(index, begin)]
                return [RequestsDropped(((index, begin, length),))]
            case AllowedFast(index=index):
                # a handful is usual (BEP 6 suggests 10); before the metadata the piece count is
                # unknown, so a bound, not the range, keeps the set small
                if len(self.allowed_fast) < MAX_ALLOWED_FAST and (
                    self._num_pieces is None or index < self._num_pieces
                ):
                    self.allowed_fast.add(index)
                return []
            case SuggestPiece(index=index):
                self.suggested.append(index)
                del self.suggested[:-16]
                return []
            case ExtendedHandshake(reqq=reqq):
                if reqq is not None:
                    self.reqq = reqq
                return []
            case KeepAlive():
                return []
        return []

    def block_received(self, index: int, begin: int, length: int, now: float) -> bool:
        """A ``piece`` arrived (:meth:`receive` uses it): whether we had requested it, in which
        case it is no longer outstanding and the rate and snub clocks move.  A block we did not
        ask for changes nothing."""
        if not self.take_block(index, begin, length, now):
            return False
        self.blocks_arrived(length, now)
        return True

    def take_block(self, index: int, begin: int, length: int, now: float) -> bool:
        """The driver's fast path, first half of :meth:`block_received`: whether the block was
        requested (it is then no longer outstanding).  The driver calls :meth:`blocks_arrived`
        once for the blocks of one read."""
        self._last_received = now
        entry = self._requests.pop((index, begin), None)
        if entry is None:
            return False
        if entry[0] != length:
            self._requests[(index, begin)] = entry
            return False
        return True

    def take_blocks(
        self, blocks: list[tuple[int, int, memoryview]], now: float
    ) -> list[tuple[int, int, memoryview]]:
        """:meth:`take_block` for each ``(index, begin, data)`` of one read: the requested
        ones, in order (``blocks`` itself when every one was)."""
        self._last_received = now
        requests = self._requests
        pop = requests.pop
        taken = None
        for k, (index, begin, data) in enumerate(blocks):
            entry = pop((index, begin), None)
            if entry is not None and entry[0] == len(data):
                if taken is not None:
                    taken.append((index, begin, data))
                continue
            if entry is not None:
                requests[(index, begin)] = entry
            if taken is None:
                taken = blocks[:k]
        return blocks if taken is None else taken

    def blocks_arrived(self, nbytes: int, now: float) -> None:
        """Requested blocks of ``nbytes`` in all arrived: the rate meter and the snub clock move."""
        self.download.add(nbytes, now)
        self._last_block = now
        self._snub_clock = now
        self._snubbed = False

    def request_received(self, index: int, begin: int, length: int, now: float) -> PeerAction:
        """The peer's ``request`` (the driver's fast path; :meth:`receive` does the same):
        :class:`UploadQueued`, or a reject to send, or ``UploadCancelled`` when it is dropped
        silently (no Fast extension)."""
        self._last_received = now
        actions = self._their_request((index, begin, length))
        return actions[0] if actions else UploadCancelled(index, begin, length)

    def _their_request(self, block: Block) -> list[PeerAction]:
        index, begin, length = block
        refuse = self.am_choking and not (self.fast and index in self._fast_set_for_them)
        if refuse or len(self._uploads) >= self.max_upload_queue:
            return [SendMessage(RejectRequest(index, begin, length))] if self.fast else []
        self._uploads.append(block)
        return [UploadQueued(index, begin, length)]

    def allow_fast(self, pieces: set[int] | frozenset[int]) -> None:
        """The pieces we sent the peer as ``allowed fast``: its requests for them are served
        even while we choke it (BEP 6)."""
        self._fast_set_for_them = frozenset(pieces)

    # --- time ------------------------------------------------------------------------------

    def get_timer(self) -> float:
        """The next moment :meth:`handle_timer` has something to check."""
        times = [self._last_sent + KEEPALIVE_AFTER, self._last_received + IDLE_AFTER]
        if self._requests and not self._snubbed:
            times.append(self._snub_clock + SNUB_AFTER)
        return min(times)

    def handle_timer(self, now: float) -> list[PeerAction]:
        """Keep-alive, snubbing and idle checks."""
        actions: list[PeerAction] = []
        if now - self._last_received >= IDLE_AFTER:
            actions.append(PeerIdle())
        if self._requests and now - self._snub_clock >= SNUB_AFTER:
            self._snubbed = True
        if now - self._last_sent >= KEEPALIVE_AFTER:
            self._last_sent = now
            actions.append(SendMessage(KeepAlive()))
        return actions
