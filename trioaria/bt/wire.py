"""The BitTorrent peer wire protocol as a sans-IO connection object (pure).

Theory of operation
-------------------
BEP 3 "peer protocol": after a 68-byte handshake (``\\x13BitTorrent protocol``, 8 reserved bytes,
the 20-byte info hash, the 20-byte peer id) each side sends length-prefixed messages: a 4-byte
big-endian length, then (unless the length is 0, a keep-alive) one message id byte and its
payload.  BEP 5 adds ``port``, BEP 6 (Fast extension) adds ``suggest``, ``have all``,
``have none``, ``reject request`` and ``allowed fast``, BEP 10 adds id 20, the extension protocol,
whose first payload byte is 0 for the bencoded extended handshake and otherwise an id the receiver
advertised in its own handshake's ``m`` dictionary.

:class:`PeerConnection` follows h11: ``receive_data(bytes)`` only buffers (``b""`` means EOF),
``next_event()`` returns the next :class:`Event` or ``None`` when more bytes are needed, and
``send(event)`` returns the bytes to write.  It never does I/O and never reads a clock: keep-alive
timers, request timeouts and snubbing live in the per-peer state and the driver.

Payload blocks take the short road (docs/performance.md "The body path"): a ``piece`` message that lies within
one ``receive_data`` chunk is returned as a ``memoryview`` *of that chunk*, with no copy; only a
message split across chunks is assembled, once, in a private ``bytearray`` that is never written
to again after a view of it was handed out.  So ``Piece.data`` stays valid for as long as the
caller keeps it, provided the caller passed immutable ``bytes`` (a driver that reuses one mutable
receive buffer must consume each ``Piece`` before it refills that buffer).  For uploads,
:func:`~trioaria.bt.messages.piece_header` gives the 13 bytes that precede a block, so a driver can write the header
and the block without joining them.  A whole ``piece`` inside the current chunk takes a fast path
(one ``struct`` unpack, the same checks): about 0.1 CPU-s per GiB of 16 KiB blocks here.

Limits (a hostile peer costs bounded memory): the length prefix is checked as soon as the length
and the id are known, before the body is buffered.  A ``piece`` may carry at most ``max_block``
bytes (16 KiB: BEP 3 "All current implementations use 2^14 (16 kiB), and close connections which
request an amount greater than that."), so its prefix is at most ``9 + max_block``; fixed-size
messages must have exactly their size; ``bitfield`` must be exactly ``ceil(num_pieces / 8)`` bytes
once the piece count is known, with the spare bits zero ("Clients should drop the connection if
they receive bitfields that are not of the correct size, or if the bitfield has any of the spare
bits set"); ``bitfield``, ``have all`` and ``have none`` only as the first message (the
extended handshake and ``port`` may precede them), except that a later ``bitfield`` or ``have
all`` is taken as an update, because aria2 sends one instead of 20 or more ``have`` messages
(``DefaultBtInteractive::checkHave``; seen against aria2c 1.36 in tests/bt/test_swarm_aria2c.py); a Fast
extension message from a peer that did not negotiate it is an error (BEP 6: "the peer MUST close
the connection").  Every violation raises :class:`~trioaria.bt.errors.PeerProtocolError` and
leaves the connection in the ``ERROR`` state; a ``send`` the protocol forbids raises
:class:`~trioaria.base.errors.LocalProtocolError`.  Nothing but our handshake may be sent before
the peer's handshake has arrived: aria2 closes a connection whose first read holds more than the
68 handshake bytes, and which extensions to use is only known from the peer's reserved bits
(tests/bt/test_wire_aria2c.py runs the codec against a seeding aria2c).
"""

from __future__ import annotations

import enum
import struct
import sys

from ..base.errors import LocalProtocolError
from .bencode import decode
from .errors import BencodeError, PeerProtocolError
from .messages import (
    BLOCK_SIZE,
    DEFAULT_MAX_MESSAGE,
    FAST_IDS,
    FIRST_ONLY_IDS,
    FIXED_LENGTH,
    HANDSHAKE_LENGTH,
    NOT_ORDERED_IDS,
    PROTOCOL_HEADER,
    SIMPLE_BY_ID,
    AllowedFast,
    Bitfield,
    Cancel,
    ConnectionClosed,
    Event,
    Extended,
    ExtendedHandshake,
    Handshake,
    Have,
    HaveAll,
    HaveNone,
    KeepAlive,
    MessageId,
    Piece,
    Port,
    RejectRequest,
    Request,
    SuggestPiece,
    UnknownMessage,
    encode_message,
    piece_header,
)

__all__ = ["ConnectionState", "PeerConnection"]

MAX_EXTENSIONS = 64  # BEP 10 extension names remembered per peer (a dozen exist)
_PIECE_HEAD = struct.Struct(">IBII")  # length prefix, id 7, index, begin
_REQUEST = struct.Struct(">IBIII")  # length prefix 13, id 6, index, begin, length
_PIECE_ID = int(MessageId.PIECE)
_REQUEST_ID = int(MessageId.REQUEST)
# aria2 sends a later ``bitfield`` (or ``have all`` once complete) instead of 20 or more
# ``have`` messages at once (DefaultBtInteractive::checkHave): accepted as an update.
_LATE_OK_IDS = frozenset({MessageId.BITFIELD, MessageId.HAVE_ALL})


class ConnectionState(enum.Enum):
    """Where a :class:`PeerConnection` is: before the peer's handshake, after it, done."""

    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"
    ERROR = "error"


class PeerConnection:
    """One peer connection's wire protocol, sans-IO.

    Args:
        info_hash: the torrent we expect; ``None`` for an incoming connection whose torrent is
            learned from the peer's handshake (the listener routes by it).
        num_pieces: the torrent's piece count, for ``bitfield``/index checks; ``None`` until
            known (a magnet before its metadata arrives); see :meth:`set_geometry`.
        piece_length: with ``total_length``, lets ``request``, ``piece``, ``cancel`` and
            ``reject request`` be checked against the end of their piece (a request beyond the
            piece is a protocol error: the peer gets banned, not served).
        total_length: the torrent's size in bytes.
        max_block: largest block accepted in ``piece`` and asked for in ``request``.
        max_message: largest other message (bitfield before the piece count is known, BEP 10).

    Attributes:
        state: a :class:`ConnectionState`.
        peer_handshake: the peer's :class:`Handshake` once received.
        remote_extensions: the peer's BEP 10 ``m`` (name -> the id to send it as).
        local_extensions: our advertised ``m`` (name -> id), set when we send ours.
    """

    def __init__(
        self,
        *,
        info_hash: bytes | None = None,
        num_pieces: int | None = None,
        piece_length: int | None = None,
        total_length: int | None = None,
        max_block: int = BLOCK_SIZE,
        max_message: int = DEFAULT_MAX_MESSAGE,
    ) -> None:
        self._expected_info_hash = info_hash
        self.num_pieces = num_pieces
        self.piece_length: int | None = None
        self.total_length: int | None = None
        if piece_length is not None and total_length is not None:
            self.set_geometry(piece_length, total_length)
            if num_pieces is not None and num_pieces != self.num_pieces:
                raise ValueError(f"{num_pieces} pieces do not fit {total_length}/{piece_length}")
        self.max_block = max_block
        self.max_message = max_message
        self.state = ConnectionState.HANDSHAKE
        self.peer_handshake: Handshake | None = None
        self.our_handshake: Handshake | None = None
        self.remote_extensions: dict[str, int] = {}
        self.local_extensions: dict[str, int] = {}
        self._pending = bytearray()
        self._chunk: memoryview | None = None
        self._cpos = 0
        self._eof = False
        self._seen_message = False  # the peer sent a message other than keep-alive
        self._sent_message = False
        self._error: PeerProtocolError | None = None

    # --- negotiated features ---------------------------------------------------------------

    @property
    def fast(self) -> bool:
        """Both handshakes carry the BEP 6 bit."""
        return bool(
            self.peer_handshake
            and self.our_handshake
            and self.peer_handshake.supports_fast
            and self.our_handshake.supports_fast
        )

    @property
    def extensions(self) -> bool:
        """Both handshakes carry the BEP 10 bit."""
        return bool(
            self.peer_handshake
            and self.our_handshake
            and self.peer_handshake.supports_extensions
            and self.our_handshake.supports_extensions
        )

    def set_num_pieces(self, num_pieces: int) -> None:
        """Enable piece-count checks once the metadata is known (BEP 9 magnets)."""
        self.num_pieces = num_pieces

    def set_geometry(self, piece_length: int, total_length: int) -> None:
        """Enable piece-count and block-range checks (after BEP 9 metadata, or at once)."""
        if piece_length <= 0 or total_length < 0:
            raise ValueError("piece_length must be positive and total_length not negative")
        self.piece_length = piece_length
        self.total_length = total_length
        self.num_pieces = -(-total_length // piece_length)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as events."""
        chunk = 0 if self._chunk is None else len(self._chunk) - self._cpos
        return len(self._pending) + chunk

    # --- receiving -------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer bytes read from the socket; ``b""`` means the peer closed (EOF).

        Raises:
            LocalProtocolError: data after EOF.
        """
        if self._eof:
            raise LocalProtocolError("receive_data after EOF")
        if not data:
            self._eof = True
            return
        if self._chunk is not None and self._cpos < len(self._chunk):
            # The driver did not drain next_event(); keep the unread bytes in order.
            self._pending += self._chunk[self._cpos :]
        self._chunk = memoryview(data).cast("B")
        self._cpos = 0

    def next_event(self) -> Event | None:
        """Parse the next event, or return ``None`` when more data is needed.

        Returns:
            The peer's :class:`Handshake` first, then messages; :class:`ConnectionClosed` once
            after EOF at a message boundary.

        Raises:
            PeerProtocolError: the peer violated the protocol (and every later call raises it
                again: the connection is in the ``ERROR`` state).
        """
        # Fast path for the bulk of a download: a whole ``piece`` message inside the current
        # chunk, with nothing pending.  Same checks as the general path, one struct call.
        # A whole ``request`` (a seeder's bulk) takes the same kind of fast path.
        chunk = self._chunk
        if chunk is not None and not self._pending and self.state is ConnectionState.OPEN:
            pos = self._cpos
            if len(chunk) - pos >= 17:
                msg_id = chunk[pos + 4]
                if msg_id == _PIECE_ID:
                    length, _, index, begin = _PIECE_HEAD.unpack_from(chunk, pos)
                    end = pos + 4 + length
                    if (
                        9 <= length <= 9 + self.max_block
                        and end <= len(chunk)
                        and self._block_ok(index, begin, length - 9)
                    ):
                        self._cpos = end
                        self._seen_message = True
                        return Piece(index, begin, chunk[pos + 13 : end])
                elif msg_id == _REQUEST_ID:
                    size, _, index, begin, length = _REQUEST.unpack_from(chunk, pos)
                    if (
                        size == 13
                        and 0 < length <= self.max_block
                        and self._block_ok(index, begin, length)
                    ):
                        self._cpos = pos + 17
                        self._seen_message = True
                        return Request(index, begin, length)
        if self._error is not None:
            raise self._error
        if self.state is ConnectionState.CLOSED:
            return None
        try:
            event = self._next_event()
        except PeerProtocolError as exc:
            self.state = ConnectionState.ERROR
            self._error = exc
            raise
        if event is None and self._eof:
            # a peer that hangs up in the middle of a message (killed while it wrote a block)
            # has closed the connection, no more: the partial message is dropped (BEP 3 treats
            # neither as misconduct)
            self._pending = bytearray()
            self._chunk = None
            self.state = ConnectionState.CLOSED
            return ConnectionClosed()
        return event

    def next_blocks(self) -> list[tuple[int, int, memoryview]]:
        """Every whole ``piece`` message at the head of the current chunk, as ``(index, begin,
        block)`` with the block a view of the caller's buffer: the bulk of a download in one
        call, with the same checks as :meth:`next_event`'s fast path (docs/performance.md §9).

        Stops before anything else (another message, a partial one, bytes pending from an
        earlier chunk): an empty list means "use :meth:`next_event`".
        """
        chunk = self._chunk
        out: list[tuple[int, int, memoryview]] = []
        if chunk is None or self._pending or self.state is not ConnectionState.OPEN:
            return out
        pos = self._cpos
        size = len(chunk)
        unpack = _PIECE_HEAD.unpack_from
        most = 9 + self.max_block
        # _block_ok, unrolled: a block must end inside its piece (the last one may be shorter)
        last, full, last_size = self._block_limits()
        while size - pos >= 13 and chunk[pos + 4] == _PIECE_ID:
            length, _, index, begin = unpack(chunk, pos)
            end = pos + 4 + length
            if not 9 <= length <= most or end > size:
                break
            if index < last:
                if begin + length - 9 > full:
                    break
            elif index > last or begin + length - 9 > last_size:
                break
            out.append((index, begin, chunk[pos + 13 : end]))
            pos = end
        if out:
            self._cpos = pos
            self._seen_message = True
        return out

    def _fail(self, message: str) -> None:
        exc = PeerProtocolError(message)
        self.state = ConnectionState.ERROR
        self._error = exc
        raise exc

    def _top_up(self, count: int) -> None:
        """Move up to ``count`` bytes from the current chunk into the pending buffer."""
        chunk = self._chunk
        if chunk is None:
            return
        take = min(count, len(chunk) - self._cpos)
        if take > 0:
            self._pending += chunk[self._cpos : self._cpos + take]
            self._cpos += take

    def _next_event(self) -> Event | None:
        if self.state is ConnectionState.HANDSHAKE:
            return self._read_handshake()
        frame = self._next_frame()
        if frame is None:
            return None
        return self._parse(frame)

    def _read_handshake(self) -> Event | None:
        if len(self._pending) < HANDSHAKE_LENGTH:
            self._top_up(HANDSHAKE_LENGTH - len(self._pending))
        head = bytes(self._pending[: len(PROTOCOL_HEADER)])
        if head != PROTOCOL_HEADER[: len(head)]:
            raise PeerProtocolError(f"not a BitTorrent handshake: {head!r}")
        if len(self._pending) < HANDSHAKE_LENGTH:
            return None
        raw = bytes(self._pending[:HANDSHAKE_LENGTH])
        del self._pending[:HANDSHAKE_LENGTH]
        handshake = Handshake(info_hash=raw[28:48], peer_id=raw[48:68], reserved=raw[20:28])
        if self._expected_info_hash is not None and handshake.info_hash != self._expected_info_hash:
            raise PeerProtocolError(f"handshake for another torrent: {handshake.info_hash.hex()}")
        self.peer_handshake = handshake
        self.state = ConnectionState.OPEN
        return handshake

    def _check_length(self, length: int, msg_id: int | None) -> None:
        """Refuse an impossible length prefix before its body is buffered."""
        if msg_id is None:
            if length > max(self.max_message, 9 + self.max_block):
                raise PeerProtocolError(f"message length {length} exceeds every limit")
            return
        fixed = FIXED_LENGTH.get(msg_id)
        if fixed is not None:
            if length != fixed:
                name = MessageId(msg_id).name.lower()
                raise PeerProtocolError(f"{name} message of length {length}, expected {fixed}")
        elif msg_id == MessageId.PIECE:
            if not 9 <= length <= 9 + self.max_block:
                raise PeerProtocolError(
                    f"piece message of length {length} (block > {self.max_block} bytes)"
                )
        elif msg_id == MessageId.BITFIELD and self.num_pieces is not None:
            expected = 1 + (self.num_pieces + 7) // 8
            if length != expected:
                raise PeerProtocolError(f"bitfield message of length {length}, expected {expected}")
        elif length > self.max_message:
            raise PeerProtocolError(f"message id {msg_id} of length {length} is too long")

    def _next_frame(self) -> memoryview | None:
        """The next message body (id + payload), or ``None``; keep-alives are empty views."""
        pending = self._pending
        if not pending:
            chunk = self._chunk
            if chunk is None:
                return None
            pos = self._cpos
            avail = len(chunk) - pos
            if avail == 0:
                self._chunk = None
                return None
            if avail >= 4:
                length = int.from_bytes(chunk[pos : pos + 4], "big")
                self._check_length(length, chunk[pos + 4] if length and avail >= 5 else None)
                if avail >= 4 + length:
                    self._cpos = pos + 4 + length
                    return chunk[pos + 4 : pos + 4 + length]  # zero-copy
            # An incomplete message at the end of the chunk: keep its start (less than a frame).
            pending += chunk[pos:]
            self._chunk = None
            return None
        if len(pending) < 5:
            self._top_up(5 - len(pending))
        if len(pending) < 4:
            return None
        length = int.from_bytes(pending[:4], "big")
        if length and len(pending) < 5:
            return None
        self._check_length(length, pending[4] if length else None)
        if len(pending) < 4 + length:
            self._top_up(4 + length - len(pending))
            if len(pending) < 4 + length:
                return None
        frame = memoryview(pending)[4 : 4 + length]
        # The view pins this bytearray: never resize it again, start a new one for what follows.
        self._pending = bytearray(pending[4 + length :])
        return frame

    def _index(self, index: int, what: str) -> int:
        if self.num_pieces is not None and index >= self.num_pieces:
            raise PeerProtocolError(f"{what} for piece {index} of {self.num_pieces}")
        return index

    def _block_limits(self) -> tuple[int, int, int]:
        """``(last piece, piece length, last piece's length)`` for :meth:`next_blocks`' range
        check, the same as :meth:`_block_ok` (``sys.maxsize`` stands in for what is unknown)."""
        n, pl, total = self.num_pieces, self.piece_length, self.total_length
        last = sys.maxsize if n is None else n - 1
        if n is None or pl is None or total is None:
            return last, sys.maxsize, sys.maxsize
        return last, pl, total - last * pl

    def _block_ok(self, index: int, begin: int, length: int) -> bool:
        """Whether a block lies inside its piece (the fast path; errors go the slow way)."""
        if self.num_pieces is not None and index >= self.num_pieces:
            return False
        if self.piece_length is None or self.total_length is None:
            return True
        return begin + length <= min(
            self.piece_length, self.total_length - index * self.piece_length
        )

    def _span(self, index: int, begin: int, length: int, what: str) -> None:
        """Check that ``[begin, begin + length)`` lies inside piece ``index``."""
        self._index(index, what)
        if self.piece_length is None or self.total_length is None:
            return
        size = min(self.piece_length, self.total_length - index * self.piece_length)
        if begin + length > size:
            raise PeerProtocolError(
                f"{what} of [{begin}, {begin + length}) beyond piece {index} ({size} bytes)"
            )

    def _parse(self, frame: memoryview) -> Event:
        if not frame:
            return KeepAlive()
        msg_id = frame[0]
        if msg_id in FIRST_ONLY_IDS and self._seen_message and msg_id not in _LATE_OK_IDS:
            name = MessageId(msg_id).name.lower()
            raise PeerProtocolError(f"{name} is only allowed as the first message")
        if msg_id not in NOT_ORDERED_IDS:
            self._seen_message = True
        if msg_id in FAST_IDS and not self.fast:
            name = MessageId(msg_id).name.lower()
            raise PeerProtocolError(f"{name} without the Fast extension negotiated (BEP 6)")
        if msg_id == MessageId.PIECE:
            index = int.from_bytes(frame[1:5], "big")
            begin = int.from_bytes(frame[5:9], "big")
            self._span(index, begin, len(frame) - 9, "piece")
            return Piece(index, begin, frame[9:])
        if msg_id == MessageId.HAVE:
            return Have(self._index(int.from_bytes(frame[1:5], "big"), "have"))
        if msg_id in (MessageId.REQUEST, MessageId.CANCEL, MessageId.REJECT_REQUEST):
            index = int.from_bytes(frame[1:5], "big")
            begin = int.from_bytes(frame[5:9], "big")
            length = int.from_bytes(frame[9:13], "big")
            if msg_id == MessageId.REQUEST:
                if not 0 < length <= self.max_block:
                    raise PeerProtocolError(f"request of {length} bytes (limit {self.max_block})")
                self._span(index, begin, length, "request")
                return Request(index, begin, length)
            if msg_id == MessageId.CANCEL:
                self._span(index, begin, length, "cancel")
                return Cancel(index, begin, length)
            self._span(index, begin, length, "reject")
            return RejectRequest(index, begin, length)
        if msg_id in SIMPLE_BY_ID:
            return SIMPLE_BY_ID[msg_id]
        if msg_id == MessageId.BITFIELD:
            bits = bytes(frame[1:])
            if self.num_pieces is not None and self.num_pieces % 8 and bits:
                spare = bits[-1] & (0xFF >> (self.num_pieces % 8))
                if spare:
                    raise PeerProtocolError("bitfield has spare bits set")
            return Bitfield(bits)
        if msg_id == MessageId.PORT:
            return Port(int.from_bytes(frame[1:3], "big"))
        if msg_id == MessageId.SUGGEST_PIECE:
            return SuggestPiece(self._index(int.from_bytes(frame[1:5], "big"), "suggest"))
        if msg_id == MessageId.ALLOWED_FAST:
            return AllowedFast(self._index(int.from_bytes(frame[1:5], "big"), "allowed fast"))
        if msg_id == MessageId.EXTENDED:
            return self._parse_extended(frame)
        return UnknownMessage(msg_id, bytes(frame[1:]))

    def _parse_extended(self, frame: memoryview) -> Event:
        if len(frame) < 2:
            raise PeerProtocolError("extended message without an extended id")
        ext_id = frame[1]
        if ext_id == 0:
            try:
                d = decode(frame[2:])
            except BencodeError as exc:
                raise PeerProtocolError(f"bad extended handshake: {exc.reason}") from None
            if not isinstance(d, dict):
                raise PeerProtocolError("extended handshake is not a dictionary")
            handshake = ExtendedHandshake.from_dict(d)
            # BEP 10: later handshakes update the map; an id of 0 disables an extension.  At
            # most MAX_EXTENSIONS names are remembered (repeated handshakes must not grow it).
            remote = self.remote_extensions
            for name, value in handshake.m.items():
                if not value:
                    remote.pop(name, None)
                elif name in remote or len(remote) < MAX_EXTENSIONS:
                    remote[name] = value
            return handshake
        ext_name = next((n for n, i in self.local_extensions.items() if i == ext_id), None)
        return Extended(ext_id, bytes(frame[2:]), ext_name)

    # --- sending ---------------------------------------------------------------------------

    def send_piece_header(self, index: int, begin: int, length: int) -> bytes:
        """The 13 bytes before an uploaded block, checked like ``send(Piece(...))``.

        The driver writes them and then the block itself (from the page cache or the disk
        cache), so a 16 KiB block is not copied into a joined message.

        Raises:
            LocalProtocolError: as :meth:`send` for a ``Piece`` of ``length`` bytes.
        """
        self._check_send(Piece(index, begin, b""))
        if length > self.max_block:
            raise LocalProtocolError(f"block of {length} bytes (limit {self.max_block})")
        self._sent_message = True
        return piece_header(index, begin, length)

    def pack_piece_headers(self, buf: memoryview, blocks: list[tuple[int, int, int]]) -> int:
        """Pack the 13-byte header of every ``(index, begin, length)`` block into ``buf``,
        each followed by room for its data, checked once as :meth:`send_piece_header`.

        Returns:
            The bytes the messages take (headers plus data).

        Raises:
            LocalProtocolError: as :meth:`send` for a ``Piece`` of the largest length.
        """
        self._check_send(Piece(0, 0, b""))
        pack, max_block, pos = _PIECE_HEAD.pack_into, self.max_block, 0
        for index, begin, length in blocks:
            if length > max_block:
                raise LocalProtocolError(f"block of {length} bytes (limit {self.max_block})")
            try:
                pack(buf, pos, 9 + length, 7, index, begin)
            except struct.error:
                raise LocalProtocolError(
                    f"value out of the 32-bit range in {index}, {begin}"
                ) from None
            pos += 13 + length
        if blocks:
            self._sent_message = True
        return pos

    def send_requests(self, blocks: list[tuple[int, int, int]]) -> bytes:
        """Encode several ``request`` messages at once, checked like ``send(Request(...))``.

        The request pipeline is refilled in batches after every read; one buffer and one
        ``struct`` call per request keep that cheap (docs/performance.md §9).

        Raises:
            LocalProtocolError: as :meth:`send` for a ``Request``.
        """
        self._check_send(Request(0, 0, 1))
        out = bytearray(17 * len(blocks))
        pack = _REQUEST.pack_into
        pos = 0
        for index, begin, length in blocks:
            if not 0 < length <= self.max_block:
                raise LocalProtocolError(f"request of {length} bytes (limit {self.max_block})")
            pack(out, pos, 13, _REQUEST_ID, index, begin, length)
            pos += 17
        if blocks:
            self._sent_message = True
        return bytes(out)

    def _check_send(self, event: Event) -> None:
        if self.state is ConnectionState.ERROR:
            raise LocalProtocolError("the connection is in the ERROR state")
        if self.our_handshake is None:
            raise LocalProtocolError(f"{type(event).__name__} before our handshake")
        if self.peer_handshake is None:
            # aria2 drops a connection whose first read holds more than the 68 handshake bytes
            # ("More than BtHandshakeMessage::MESSAGE_LENGTH bytes are buffered"), and the Fast
            # and extension bits are only known from the peer's handshake.
            raise LocalProtocolError(f"{type(event).__name__} before the peer's handshake")

    def send(self, event: Event) -> bytes:
        """Encode an event, checking that the protocol allows it now.

        Returns:
            The bytes to write to the peer.

        Raises:
            LocalProtocolError: a second handshake, a message before our handshake or before
                the peer's (aria2 closes a connection that pipelines past the handshake), a Fast
                extension message without BEP 6 negotiated, ``bitfield``/``have all``/
                ``have none`` after another message, a request or block above ``max_block``.
        """
        if self.state is ConnectionState.ERROR:
            raise LocalProtocolError("the connection is in the ERROR state")
        if isinstance(event, Handshake):
            if self.our_handshake is not None:
                raise LocalProtocolError("handshake already sent")
            if self._expected_info_hash is None and self.peer_handshake is not None:
                self._expected_info_hash = self.peer_handshake.info_hash
            if self._expected_info_hash not in (None, event.info_hash):
                raise LocalProtocolError("our handshake names another torrent")
            self.our_handshake = event
            return encode_message(event)
        self._check_send(event)
        if isinstance(event, HaveAll | HaveNone | Bitfield) and self._sent_message:
            raise LocalProtocolError(f"{type(event).__name__} only as the first message")
        fast_only = SuggestPiece | HaveAll | HaveNone | RejectRequest | AllowedFast
        if isinstance(event, fast_only) and not self.fast:
            raise LocalProtocolError(f"{type(event).__name__} needs the Fast extension")
        if isinstance(event, Request) and not 0 < event.length <= self.max_block:
            raise LocalProtocolError(f"request of {event.length} bytes (limit {self.max_block})")
        if isinstance(event, Piece) and len(event.data) > self.max_block:
            raise LocalProtocolError(f"block of {len(event.data)} bytes (limit {self.max_block})")
        if isinstance(event, ExtendedHandshake):
            self.local_extensions = {name: i for name, i in event.m.items() if i}
        if not isinstance(event, KeepAlive | Extended | ExtendedHandshake | Port):
            self._sent_message = True
        return encode_message(event)
