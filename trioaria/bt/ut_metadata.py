"""BEP 9 ``ut_metadata``: fetching a torrent's ``info`` dictionary from peers (pure).

Theory of operation
-------------------
A magnet link gives only the info hash; the ``info`` dictionary comes from peers that advertise
the ``ut_metadata`` extension and its ``metadata_size`` in their BEP 10 handshake.  The metadata
is cut into 16 KiB pieces ("the last piece may be smaller").  Each message is the payload of an
:class:`~trioaria.bt.messages.Extended` message: a bencoded dictionary with ``msg_type``
(0 request, 1 data, 2 reject) and ``piece``; a data message adds ``total_size`` and is followed
by the piece's raw bytes, right after the dictionary.

:func:`decode_message` / :func:`encode_message` are the codec; :func:`serve` answers a request
from our own ``info`` bytes; :class:`MetadataAssembler` collects pieces, checks each one's size
against ``metadata_size``, and once all arrived checks "the SHA-1 hash of the metadata matches
the info-hash" before handing the bytes to :func:`~trioaria.bt.metainfo.parse_info`.  A wrong
hash discards everything (BEP 9 does not say which peer lied); the driver starts over, asking
other peers.  Sizes are bounded (``max_size``, default 8 MiB) so a peer cannot make us allocate
what it likes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from .bencode import decode_prefix, encode
from .errors import BencodeError, PeerProtocolError

__all__ = [
    "EXTENSION_NAME",
    "METADATA_PIECE_SIZE",
    "MetadataAssembler",
    "MetadataData",
    "MetadataReject",
    "MetadataRequest",
    "decode_message",
    "encode_message",
    "serve",
]

EXTENSION_NAME = "ut_metadata"
METADATA_PIECE_SIZE = 16 * 1024
DEFAULT_MAX_SIZE = 8 * 1024 * 1024

_REQUEST, _DATA, _REJECT = 0, 1, 2


@dataclass(frozen=True, slots=True)
class MetadataRequest:
    """``msg_type`` 0: send me metadata piece ``piece``."""

    piece: int


@dataclass(frozen=True, slots=True)
class MetadataData:
    """``msg_type`` 1: metadata piece ``piece`` of a ``total_size``-byte ``info``."""

    piece: int
    total_size: int
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class MetadataReject:
    """``msg_type`` 2: the peer will not send piece ``piece``."""

    piece: int


MetadataMessage = MetadataRequest | MetadataData | MetadataReject


def encode_message(message: MetadataMessage) -> bytes:
    """The payload of the Extended message carrying ``message``."""
    if isinstance(message, MetadataData):
        head = encode(
            {b"msg_type": _DATA, b"piece": message.piece, b"total_size": message.total_size}
        )
        return head + message.data
    kind = _REQUEST if isinstance(message, MetadataRequest) else _REJECT
    return encode({b"msg_type": kind, b"piece": message.piece})


def decode_message(payload: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> MetadataMessage:
    """Decode an Extended payload sent to our ``ut_metadata`` id.

    Raises:
        PeerProtocolError: not a bencoded dictionary, an unknown ``msg_type``, a bad ``piece`` or
            ``total_size``, data longer than a piece or trailing bytes after a non-data message.
    """
    try:
        head, end = decode_prefix(payload, max_size=None)
    except BencodeError as exc:
        raise PeerProtocolError(f"bad ut_metadata message: {exc.reason}") from None
    if not isinstance(head, dict):
        raise PeerProtocolError("ut_metadata message is not a dictionary")
    kind, piece = head.get(b"msg_type"), head.get(b"piece")
    if not isinstance(piece, int) or not 0 <= piece < -(-max_size // METADATA_PIECE_SIZE):
        raise PeerProtocolError(f"ut_metadata message with piece {piece!r}")
    if kind == _DATA:
        total = head.get(b"total_size")
        if not isinstance(total, int) or not 0 < total <= max_size:
            raise PeerProtocolError(f"ut_metadata total_size {total!r}")
        data = bytes(payload[end:])
        if len(data) > METADATA_PIECE_SIZE:
            raise PeerProtocolError(f"ut_metadata piece of {len(data)} bytes")
        return MetadataData(piece, total, data)
    if end != len(payload):
        raise PeerProtocolError("trailing bytes after a ut_metadata request or reject")
    if kind == _REQUEST:
        return MetadataRequest(piece)
    if kind == _REJECT:
        return MetadataReject(piece)
    raise PeerProtocolError(f"unknown ut_metadata msg_type {kind!r}")


def serve(info_bytes: bytes, request: MetadataRequest) -> MetadataData | MetadataReject:
    """Answer a peer's request from our ``info`` bytes (a reject for a piece out of range)."""
    start = request.piece * METADATA_PIECE_SIZE
    if start >= len(info_bytes):
        return MetadataReject(request.piece)
    chunk = info_bytes[start : start + METADATA_PIECE_SIZE]
    return MetadataData(request.piece, len(info_bytes), chunk)


class MetadataAssembler:
    """Collects metadata pieces for one info hash and verifies the result.

    Args:
        info_hash: the 20-byte hash the metadata must have.
        total_size: the ``metadata_size`` a peer announced.
        max_size: the largest metadata accepted.

    Raises:
        PeerProtocolError: ``total_size`` is not in ``1..max_size``.
    """

    def __init__(self, info_hash: bytes, total_size: int, *, max_size: int = DEFAULT_MAX_SIZE):
        if not 0 < total_size <= max_size:
            raise PeerProtocolError(f"metadata_size {total_size} out of 1..{max_size}")
        self.info_hash = info_hash
        self.total_size = total_size
        self.num_pieces = -(-total_size // METADATA_PIECE_SIZE)
        self._pieces: dict[int, bytes] = {}
        self.failures = 0

    def piece_length(self, piece: int) -> int:
        """Expected size of ``piece``: 16 KiB, the last one what remains."""
        return min(METADATA_PIECE_SIZE, self.total_size - piece * METADATA_PIECE_SIZE)

    def missing(self) -> list[int]:
        """Pieces not received yet, ascending."""
        return [i for i in range(self.num_pieces) if i not in self._pieces]

    def add(self, message: MetadataData) -> bytes | None:
        """Store a data message; return the verified metadata once the last piece is in.

        Returns:
            The ``info`` bytes when complete and their SHA-1 equals the info hash; ``None``
            while pieces are missing, or when the hash did not match (then every piece is
            dropped, ``failures`` grows, and :meth:`missing` lists them all again).

        Raises:
            PeerProtocolError: the message contradicts the announced size (wrong
                ``total_size``, piece index or piece length).
        """
        if message.total_size != self.total_size:
            raise PeerProtocolError(
                f"ut_metadata total_size {message.total_size}, expected {self.total_size}"
            )
        if not 0 <= message.piece < self.num_pieces:
            raise PeerProtocolError(f"ut_metadata piece {message.piece} of {self.num_pieces}")
        if len(message.data) != self.piece_length(message.piece):
            raise PeerProtocolError(
                f"ut_metadata piece {message.piece} of {len(message.data)} bytes, "
                f"expected {self.piece_length(message.piece)}"
            )
        self._pieces[message.piece] = message.data
        if len(self._pieces) < self.num_pieces:
            return None
        metadata = b"".join(self._pieces[i] for i in range(self.num_pieces))
        if hashlib.sha1(metadata).digest() != self.info_hash:
            self._pieces.clear()
            self.failures += 1
            return None
        return metadata
