"""Peer wire messages: ids, event dataclasses and their encoding (pure).

BEP 3 "peer messages" (``choke`` ... ``cancel``), BEP 5 ``port``, BEP 6 Fast extension
(``suggest piece``, ``have all``, ``have none``, ``reject request``, ``allowed fast``) and BEP 10
extension messages (id 20; extended id 0 is the bencoded handshake).  Every message is a frozen,
slotted dataclass under :class:`Event`; :func:`encode_message` turns one into wire bytes without
any state checks, and :class:`~trioaria.bt.wire.PeerConnection` adds the checks and the parser.
Wire layout: a 4-byte big-endian length (0 is a keep-alive), one id byte, the payload; integers
are 4-byte big-endian except ``port`` (2 bytes).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..base.errors import LocalProtocolError
from .bencode import BValue, Encodable, encode

__all__ = [
    "BLOCK_SIZE",
    "DEFAULT_MAX_MESSAGE",
    "HANDSHAKE_LENGTH",
    "PROTOCOL_HEADER",
    "AllowedFast",
    "Bitfield",
    "Cancel",
    "Choke",
    "ConnectionClosed",
    "Event",
    "Extended",
    "ExtendedHandshake",
    "Handshake",
    "Have",
    "HaveAll",
    "HaveNone",
    "Interested",
    "KeepAlive",
    "MessageId",
    "NotInterested",
    "Piece",
    "Port",
    "RejectRequest",
    "Request",
    "SuggestPiece",
    "Unchoke",
    "UnknownMessage",
    "encode_message",
    "make_reserved",
    "piece_header",
]

PROTOCOL_HEADER = b"\x13BitTorrent protocol"
"""BEP 3: "the number nineteen (in decimal) followed by the string 'BitTorrent protocol'"."""

HANDSHAKE_LENGTH = 68
BLOCK_SIZE = 16 * 1024
"""The request size every client uses (BEP 3); the largest block we send or accept."""

DEFAULT_MAX_MESSAGE = 1 << 20
"""Largest ``bitfield`` (before the piece count is known), extended or unknown message."""


class MessageId(enum.IntEnum):
    """Peer wire message ids: BEP 3 (0-8), BEP 5 (9), BEP 6 (0x0D-0x11), BEP 10 (20)."""

    CHOKE = 0
    UNCHOKE = 1
    INTERESTED = 2
    NOT_INTERESTED = 3
    HAVE = 4
    BITFIELD = 5
    REQUEST = 6
    PIECE = 7
    CANCEL = 8
    PORT = 9
    SUGGEST_PIECE = 0x0D
    HAVE_ALL = 0x0E
    HAVE_NONE = 0x0F
    REJECT_REQUEST = 0x10
    ALLOWED_FAST = 0x11
    EXTENDED = 20


# Reserved-bit positions (BEP 4 "Reserved Bit Allocations"): byte index and mask.
_EXTENSION_BIT = (5, 0x10)  # BEP 10
_FAST_BIT = (7, 0x04)  # BEP 6
_DHT_BIT = (7, 0x01)  # BEP 5

# Exact payload length (after the length prefix, id included) of the fixed-size messages.
FIXED_LENGTH: dict[int, int] = {
    MessageId.CHOKE: 1,
    MessageId.UNCHOKE: 1,
    MessageId.INTERESTED: 1,
    MessageId.NOT_INTERESTED: 1,
    MessageId.HAVE: 5,
    MessageId.REQUEST: 13,
    MessageId.CANCEL: 13,
    MessageId.PORT: 3,
    MessageId.SUGGEST_PIECE: 5,
    MessageId.HAVE_ALL: 1,
    MessageId.HAVE_NONE: 1,
    MessageId.REJECT_REQUEST: 13,
    MessageId.ALLOWED_FAST: 5,
}
FAST_IDS = frozenset(
    {
        MessageId.SUGGEST_PIECE,
        MessageId.HAVE_ALL,
        MessageId.HAVE_NONE,
        MessageId.REJECT_REQUEST,
        MessageId.ALLOWED_FAST,
    }
)
FIRST_ONLY_IDS = frozenset({MessageId.BITFIELD, MessageId.HAVE_ALL, MessageId.HAVE_NONE})
# Messages that may come before the bitfield: BEP 10 says the extended handshake "should be sent
# immediately after the standard bittorrent handshake" (aria2 and uTorrent send it before the
# bitfield), and aria2 sends its DHT ``port`` early as well.
NOT_ORDERED_IDS = frozenset({MessageId.EXTENDED, MessageId.PORT})


def make_reserved(*, extensions: bool = True, fast: bool = True, dht: bool = False) -> bytes:
    """The 8 reserved handshake bytes advertising BEP 10, BEP 6 and BEP 5 support."""
    reserved = bytearray(8)
    for wanted, (index, mask) in ((extensions, _EXTENSION_BIT), (fast, _FAST_BIT), (dht, _DHT_BIT)):
        if wanted:
            reserved[index] |= mask
    return bytes(reserved)


def _has_bit(reserved: bytes, bit: tuple[int, int]) -> bool:
    return bool(reserved[bit[0]] & bit[1])


# --- events -----------------------------------------------------------------------------------


class Event:
    """Base class of everything :meth:`PeerConnection.next_event` returns and ``send`` takes."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Handshake(Event):
    """BEP 3 handshake.

    Attributes:
        info_hash: the torrent's 20-byte info hash.
        peer_id: the sender's 20-byte peer id.
        reserved: the 8 reserved bytes (see :func:`make_reserved`).
    """

    info_hash: bytes
    peer_id: bytes
    reserved: bytes = field(default_factory=make_reserved)

    def __post_init__(self) -> None:
        if len(self.info_hash) != 20 or len(self.peer_id) != 20 or len(self.reserved) != 8:
            raise LocalProtocolError("handshake needs a 20-byte info hash and peer id, 8 reserved")

    @property
    def supports_extensions(self) -> bool:
        """BEP 10 extension protocol bit (reserved byte 5, 0x10)."""
        return _has_bit(self.reserved, _EXTENSION_BIT)

    @property
    def supports_fast(self) -> bool:
        """BEP 6 Fast extension bit (reserved byte 7, 0x04)."""
        return _has_bit(self.reserved, _FAST_BIT)

    @property
    def supports_dht(self) -> bool:
        """BEP 5 DHT bit (reserved byte 7, 0x01)."""
        return _has_bit(self.reserved, _DHT_BIT)


@dataclass(frozen=True, slots=True)
class KeepAlive(Event):
    """A zero-length message."""


@dataclass(frozen=True, slots=True)
class Choke(Event):
    """BEP 3 ``choke``."""


@dataclass(frozen=True, slots=True)
class Unchoke(Event):
    """BEP 3 ``unchoke``."""


@dataclass(frozen=True, slots=True)
class Interested(Event):
    """BEP 3 ``interested``."""


@dataclass(frozen=True, slots=True)
class NotInterested(Event):
    """BEP 3 ``not interested``."""


@dataclass(frozen=True, slots=True)
class Have(Event):
    """BEP 3 ``have``: the sender has verified piece ``index``."""

    index: int


@dataclass(frozen=True, slots=True)
class Bitfield(Event):
    """BEP 3 ``bitfield``: bit ``i`` (high bit first) set when the sender has piece ``i``."""

    bits: bytes


@dataclass(frozen=True, slots=True)
class Request(Event):
    """BEP 3 ``request`` of ``length`` bytes at ``begin`` in piece ``index``."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class Piece(Event):
    """BEP 3 ``piece``: a block.  ``data`` received is a zero-copy ``memoryview`` (module doc)."""

    index: int
    begin: int
    data: bytes | bytearray | memoryview = field(repr=False)


@dataclass(frozen=True, slots=True)
class Cancel(Event):
    """BEP 3 ``cancel`` of an earlier request."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class Port(Event):
    """BEP 5 ``port``: the sender's DHT node listens on this UDP port."""

    port: int


@dataclass(frozen=True, slots=True)
class SuggestPiece(Event):
    """BEP 6 ``suggest piece``."""

    index: int


@dataclass(frozen=True, slots=True)
class HaveAll(Event):
    """BEP 6 ``have all``: the sender is a seed (instead of a full bitfield)."""


@dataclass(frozen=True, slots=True)
class HaveNone(Event):
    """BEP 6 ``have none``."""


@dataclass(frozen=True, slots=True)
class RejectRequest(Event):
    """BEP 6 ``reject request``: the request will not be served."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class AllowedFast(Event):
    """BEP 6 ``allowed fast``: piece ``index`` may be requested while choked."""

    index: int


@dataclass(frozen=True, slots=True)
class ExtendedHandshake(Event):
    """BEP 10 extended handshake (extended message id 0).

    Attributes:
        m: extension name -> the id the *sender* wants to receive it as (0: disabled).
        listen_port: ``p``, the sender's TCP listen port.
        client: ``v``, the client name and version.
        yourip: ``yourip``, our address as the sender sees it (4 or 16 bytes).
        ipv4: ``ipv4``, the sender's IPv4 address (4 bytes).
        ipv6: ``ipv6``, the sender's IPv6 address (16 bytes).
        reqq: ``reqq``, how many outstanding requests the sender queues.
        metadata_size: BEP 9 ``metadata_size``, the length of the ``info`` dictionary.
        extra: every other key, as decoded (sent back unchanged by ``send``).
    """

    m: Mapping[str, int] = field(default_factory=dict)
    listen_port: int | None = None
    client: str | None = None
    yourip: bytes | None = None
    ipv4: bytes | None = None
    ipv6: bytes | None = None
    reqq: int | None = None
    metadata_size: int | None = None
    extra: Mapping[bytes, BValue] = field(default_factory=dict)

    def to_dict(self) -> dict[bytes, Encodable]:
        """The bencodable dictionary (``m`` first; unset fields left out)."""
        d: dict[bytes, Encodable] = dict(self.extra)
        d[b"m"] = {name.encode(): ext_id for name, ext_id in self.m.items()}
        optional: tuple[tuple[bytes, Encodable | None], ...] = (
            (b"p", self.listen_port),
            (b"v", self.client),
            (b"yourip", self.yourip),
            (b"ipv4", self.ipv4),
            (b"ipv6", self.ipv6),
            (b"reqq", self.reqq),
            (b"metadata_size", self.metadata_size),
        )
        for key, value in optional:
            if value is not None:
                d[key] = value
        return d

    @classmethod
    def from_dict(cls, d: dict[bytes, BValue]) -> ExtendedHandshake:
        """Read a decoded handshake leniently: wrongly typed optional fields are ignored."""
        raw_m = d.get(b"m")
        m: dict[str, int] = {}
        if isinstance(raw_m, dict):
            for key, value in raw_m.items():
                if isinstance(value, int) and 0 <= value <= 255:
                    try:
                        m[key.decode()] = value
                    except UnicodeDecodeError:
                        continue

        def integer(key: bytes, low: int, high: int) -> int | None:
            value = d.get(key)
            return value if isinstance(value, int) and low <= value <= high else None

        def raw(key: bytes, *sizes: int) -> bytes | None:
            value = d.get(key)
            return value if isinstance(value, bytes) and len(value) in sizes else None

        client = d.get(b"v")
        known = {b"m", b"p", b"v", b"yourip", b"ipv4", b"ipv6", b"reqq", b"metadata_size"}
        return cls(
            m=m,
            listen_port=integer(b"p", 1, 65535),
            client=client.decode("utf-8", "replace") if isinstance(client, bytes) else None,
            yourip=raw(b"yourip", 4, 16),
            ipv4=raw(b"ipv4", 4),
            ipv6=raw(b"ipv6", 16),
            reqq=integer(b"reqq", 1, 1 << 31),
            metadata_size=integer(b"metadata_size", 1, 1 << 31),
            extra={k: v for k, v in d.items() if k not in known},
        )


@dataclass(frozen=True, slots=True)
class Extended(Event):
    """A BEP 10 extended message other than the handshake.

    Attributes:
        ext_id: the extended message id (received: one *we* advertised; sent: one the *peer*
            advertised).
        payload: the bytes after the id.
        name: on receipt, the extension name we registered for ``ext_id`` (``None`` if unknown).
    """

    ext_id: int
    payload: bytes = field(repr=False)
    name: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class UnknownMessage(Event):
    """A message with an id this module does not know (BEP 3 leaves them to be ignored)."""

    msg_id: int
    payload: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    """The peer closed the connection at a message boundary."""


# --- encoding ---------------------------------------------------------------------------------


def _frame(msg_id: int, payload: bytes = b"") -> bytes:
    return (len(payload) + 1).to_bytes(4, "big") + bytes((msg_id,)) + payload


def _u32(*values: int) -> bytes:
    try:
        return b"".join(v.to_bytes(4, "big") for v in values)
    except OverflowError:
        raise LocalProtocolError(f"value out of the 32-bit range in {values}") from None


def piece_header(index: int, begin: int, length: int) -> bytes:
    """The 13 bytes (prefix, id 7, index, begin) that precede ``length`` bytes of block data."""
    return _u32(9 + length) + bytes((MessageId.PIECE,)) + _u32(index, begin)


_SIMPLE = {
    KeepAlive: b"\x00\x00\x00\x00",
    Choke: _frame(MessageId.CHOKE),
    Unchoke: _frame(MessageId.UNCHOKE),
    Interested: _frame(MessageId.INTERESTED),
    NotInterested: _frame(MessageId.NOT_INTERESTED),
    HaveAll: _frame(MessageId.HAVE_ALL),
    HaveNone: _frame(MessageId.HAVE_NONE),
}


def encode_message(event: Event) -> bytes:
    """Encode one event to wire bytes, without any connection state checks.

    Raises:
        LocalProtocolError: the event cannot be sent (unknown type, a value out of range).
    """
    simple = _SIMPLE.get(type(event))
    if simple is not None:
        return simple
    match event:
        case Handshake(info_hash=info_hash, peer_id=peer_id, reserved=reserved):
            return PROTOCOL_HEADER + reserved + info_hash + peer_id
        case Have(index=index):
            return _frame(MessageId.HAVE, _u32(index))
        case Bitfield(bits=bits):
            return _frame(MessageId.BITFIELD, bytes(bits))
        case Request(index=index, begin=begin, length=length):
            return _frame(MessageId.REQUEST, _u32(index, begin, length))
        case Piece(index=index, begin=begin, data=data):
            return piece_header(index, begin, len(data)) + bytes(data)
        case Cancel(index=index, begin=begin, length=length):
            return _frame(MessageId.CANCEL, _u32(index, begin, length))
        case Port(port=port):
            if not 0 <= port <= 65535:
                raise LocalProtocolError(f"port {port} out of range")
            return _frame(MessageId.PORT, port.to_bytes(2, "big"))
        case SuggestPiece(index=index):
            return _frame(MessageId.SUGGEST_PIECE, _u32(index))
        case RejectRequest(index=index, begin=begin, length=length):
            return _frame(MessageId.REJECT_REQUEST, _u32(index, begin, length))
        case AllowedFast(index=index):
            return _frame(MessageId.ALLOWED_FAST, _u32(index))
        case ExtendedHandshake():
            return _frame(MessageId.EXTENDED, b"\x00" + encode(event.to_dict()))
        case Extended(ext_id=ext_id, payload=payload):
            if not 0 < ext_id <= 255:
                raise LocalProtocolError(f"extended message id {ext_id} out of 1..255")
            return _frame(MessageId.EXTENDED, bytes((ext_id,)) + bytes(payload))
        case UnknownMessage(msg_id=msg_id, payload=payload):
            if not 0 <= msg_id <= 255:
                raise LocalProtocolError(f"message id {msg_id} out of range")
            return _frame(msg_id, bytes(payload))
    raise LocalProtocolError(f"cannot send {type(event).__name__}")


SIMPLE_BY_ID: dict[int, Event] = {
    MessageId.CHOKE: Choke(),
    MessageId.UNCHOKE: Unchoke(),
    MessageId.INTERESTED: Interested(),
    MessageId.NOT_INTERESTED: NotInterested(),
    MessageId.HAVE_ALL: HaveAll(),
    MessageId.HAVE_NONE: HaveNone(),
}
