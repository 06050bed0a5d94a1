"""The aria2 ``.aria2`` control file: a pure ``parse(bytes)`` / ``serialize(value)`` codec.

This is the resume record aria2 keeps next to a download (aria2 ``src/DefaultBtProgressInfoFile.cc``,
layout in docs/aria2-compat.md).  trioaria reads and writes the same bytes, so aria2c can resume our
downloads and we can resume theirs (docs/decisions.md "Disk, durability and resume")::

    u16   version            0x0000 (host byte order, read only) or 0x0001 (big-endian)
    u8[4] extension          ext[3] & 1: BitTorrent download (enables the info-hash check)
    u32   infoHashLength     0..20
    u8[]  infoHash
    u32   pieceLength        != 0
    u64   totalLength
    u64   uploadLength       BitTorrent only; 0 otherwise
    u32   bitfieldLength     == ceil(ceil(totalLength / pieceLength) / 8)
    u8[]  bitfield           completed pieces, MSB first
    u32   numInFlightPieces
          repeat: u32 index (< numPieces), u32 length (<= pieceLength),
                  u32 pieceBitfieldLength (== ceil(ceil(length / 16384) / 8)),
                  u8[] pieceBitfield (one bit per 16 KiB block, MSB first)

Reading follows aria2's ``load()``:

* Version 0 files use host byte order; every aria2 build that wrote them ran on little-endian
  hosts in practice (x86, ARM), so version 0 is decoded little-endian.  We always write version 1.
* Bytes after the last in-flight piece are ignored, as aria2 never reads them.
* Spare bits at the end of a bitfield are cleared on load: aria2 copies them but never counts them
  (``bitfield::countSetBit`` masks the last byte), so they carry no information.
* An info hash may be present while the extension bit is clear (aria2's own version 0 fixture
  ``load-nonBt.aria2`` is such a file); both are kept as read.
* In-flight pieces are kept in file order, duplicates included, so ``serialize(parse(x)) == x``
  for every file aria2 writes.  aria2 inserts them into a set keyed by index (the first wins);
  :func:`completed_length` does the same.

Where aria2 checks the file against the running download (total length, piece length, info hash),
this module offers :func:`validate_against`, since the codec itself knows nothing of the download.
Unlike aria2, :func:`parse` also checks the in-flight records when the caller is going to drop
them after a piece length change; aria2 never writes malformed ones, so nothing real is lost.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from trioaria.base.errors import CannotResumeError, PieceLengthChangedError, ResumeFileError

__all__ = [
    "BLOCK_LENGTH",
    "CONTROL_FILE_SUFFIX",
    "INFO_HASH_LENGTH",
    "TEMP_SUFFIX",
    "ControlFile",
    "InFlightPiece",
    "bitfield_length",
    "completed_length",
    "convert_piece_length",
    "num_pieces",
    "parse",
    "piece_bitfield_length",
    "serialize",
    "validate_against",
]

BLOCK_LENGTH = 16384
"""aria2's block size inside a piece (``Piece::BLOCK_LENGTH``): one in-flight bit per block."""

INFO_HASH_LENGTH = 20
"""A BitTorrent v1 info hash (SHA-1)."""

CONTROL_FILE_SUFFIX = ".aria2"
"""The control file of ``path`` is ``path + CONTROL_FILE_SUFFIX``."""

TEMP_SUFFIX = "__temp"
"""aria2 writes ``<name>.aria2__temp`` and renames it over ``<name>.aria2``."""

_U32_MAX = 0xFFFF_FFFF
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF
_BT_EXTENSION_BIT = 0x01


# --- geometry --------------------------------------------------------------------------------


def num_pieces(total_length: int, piece_length: int) -> int:
    """Number of pieces of ``piece_length`` bytes covering ``total_length`` bytes (last shorter).

    Raises:
        ValueError: if ``piece_length`` is not positive or ``total_length`` is negative.
    """
    if piece_length <= 0:
        raise ValueError(f"piece length must be positive, not {piece_length}")
    if total_length < 0:
        raise ValueError(f"total length must not be negative, not {total_length}")
    return -(-total_length // piece_length)


def bitfield_length(bits: int) -> int:
    """Bytes needed for ``bits`` bits, MSB first (``ceil(bits / 8)``)."""
    return (bits + 7) // 8


def piece_bitfield_length(length: int) -> int:
    """Bytes of the per-block bitfield of a piece of ``length`` bytes (aria2 ``Piece``)."""
    return bitfield_length(-(-length // BLOCK_LENGTH))


def _spare_mask(bits: int) -> int:
    """Mask of the *used* bits of the last byte of a ``bits``-bit field (0xFF when aligned)."""
    rem = bits % 8
    return 0xFF if rem == 0 else (0xFF << (8 - rem)) & 0xFF


def _has_spare_bits(data: bytes, bits: int) -> bool:
    return bool(data) and bool(data[-1] & ~_spare_mask(bits) & 0xFF)


def _clear_spare_bits(data: bytes, bits: int) -> bytes:
    if not _has_spare_bits(data, bits):
        return data
    return data[:-1] + bytes([data[-1] & _spare_mask(bits)])


def _bit(data: bytes, index: int) -> bool:
    return bool(data[index >> 3] & (0x80 >> (index & 7)))


def _count_bits(data: bytes) -> int:
    return int.from_bytes(data, "big").bit_count()


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InFlightPiece:
    """A piece that was partly downloaded when the control file was saved.

    Attributes:
        index: the piece number (``< num_pieces``).
        length: bytes in this piece (``piece_length``, or less for the last piece).
        bitfield: one bit per 16 KiB block, MSB first, ``piece_bitfield_length(length)`` bytes,
            spare bits zero.  A set bit means the block's bytes were written.

    Raises:
        ValueError: on a negative or too large field, a wrong bitfield size or set spare bits.
    """

    index: int
    length: int
    bitfield: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.index <= _U32_MAX:
            raise ValueError(f"in-flight piece index out of range: {self.index}")
        if not 0 <= self.length <= _U32_MAX:
            raise ValueError(f"in-flight piece length out of range: {self.length}")
        expected = piece_bitfield_length(self.length)
        if len(self.bitfield) != expected:
            raise ValueError(
                f"in-flight piece {self.index}: block bitfield is {len(self.bitfield)} bytes,"
                f" expected {expected} for {self.length} bytes"
            )
        if _has_spare_bits(self.bitfield, self.num_blocks):
            raise ValueError(f"in-flight piece {self.index}: block bitfield has spare bits set")

    @property
    def num_blocks(self) -> int:
        """Number of 16 KiB blocks (the last one may be shorter)."""
        return -(-self.length // BLOCK_LENGTH)

    @property
    def completed_length(self) -> int:
        """Bytes of the blocks marked done (aria2 ``BitfieldMan::getCompletedLength``)."""
        return _completed_bytes(self.bitfield, self.num_blocks, BLOCK_LENGTH, self.length)


@dataclass(frozen=True, slots=True)
class ControlFile:
    """The content of one ``.aria2`` control file.

    Attributes:
        piece_length: bytes per piece (HTTP/FTP: ``--piece-length``; BitTorrent: the torrent's).
        total_length: the download's total size in bytes.
        bitfield: completed pieces, MSB first, ``ceil(num_pieces / 8)`` bytes, spare bits zero.
        in_flight: partly downloaded pieces, in file order.
        upload_length: bytes uploaded so far (BitTorrent; 0 otherwise).
        info_hash: the torrent's 20-byte info hash, empty otherwise (at most 20 bytes).
        bittorrent: the extension bit: the download is a torrent and ``info_hash`` is checked.
        version: the format version that was read (0 or 1); :func:`serialize` always writes 1.

    Raises:
        ValueError: when the fields are inconsistent (construction is validated so that every
            value serializes to a file aria2 accepts).
    """

    piece_length: int
    total_length: int
    bitfield: bytes
    in_flight: tuple[InFlightPiece, ...] = ()
    upload_length: int = 0
    info_hash: bytes = b""
    bittorrent: bool = False
    version: int = 1

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise ValueError(f"unsupported control file version {self.version}")
        if not 0 < self.piece_length <= _U32_MAX:
            raise ValueError(f"piece length out of range: {self.piece_length}")
        if not 0 <= self.total_length <= _U64_MAX:
            raise ValueError(f"total length out of range: {self.total_length}")
        if not 0 <= self.upload_length <= _U64_MAX:
            raise ValueError(f"upload length out of range: {self.upload_length}")
        if len(self.info_hash) > INFO_HASH_LENGTH:
            raise ValueError(f"info hash of {len(self.info_hash)} bytes (at most 20)")
        n = num_pieces(self.total_length, self.piece_length)
        if len(self.bitfield) != bitfield_length(n):
            raise ValueError(
                f"bitfield is {len(self.bitfield)} bytes, expected {bitfield_length(n)}"
                f" for {n} pieces"
            )
        if _has_spare_bits(self.bitfield, n):
            raise ValueError("bitfield has spare bits set")
        if len(self.in_flight) > _U32_MAX:
            raise ValueError("too many in-flight pieces")
        for piece in self.in_flight:
            if piece.index >= n:
                raise ValueError(f"in-flight piece index {piece.index} out of range ({n} pieces)")
            if piece.length > self.piece_length:
                raise ValueError(
                    f"in-flight piece {piece.index} is {piece.length} bytes,"
                    f" longer than the piece length {self.piece_length}"
                )

    @classmethod
    def empty(
        cls,
        total_length: int,
        piece_length: int,
        *,
        info_hash: bytes = b"",
    ) -> ControlFile:
        """A control file with no progress (a BitTorrent one when ``info_hash`` is given)."""
        n = num_pieces(total_length, piece_length)
        return cls(
            piece_length=piece_length,
            total_length=total_length,
            bitfield=bytes(bitfield_length(n)),
            info_hash=info_hash,
            bittorrent=bool(info_hash),
        )

    @property
    def num_pieces(self) -> int:
        """``ceil(total_length / piece_length)``."""
        return num_pieces(self.total_length, self.piece_length)

    def piece_done(self, index: int) -> bool:
        """Whether piece ``index`` is marked complete in :attr:`bitfield`."""
        if not 0 <= index < self.num_pieces:
            raise IndexError(index)
        return _bit(self.bitfield, index)

    @property
    def has_progress(self) -> bool:
        """Any completed piece or any in-flight piece (aria2's test before a piece length change)."""
        return bool(self.in_flight) or any(self.bitfield)


def _completed_bytes(bits: bytes, nbits: int, unit: int, total: int) -> int:
    """aria2 ``computeCompletedLength``: set units times ``unit``, the last unit shorter."""
    count = _count_bits(bits)
    if count == 0:
        return 0
    if _bit(bits, nbits - 1):
        return (count - 1) * unit + (total - (nbits - 1) * unit)
    return count * unit


def completed_length(cf: ControlFile) -> int:
    """Bytes already downloaded: complete pieces plus done blocks of in-flight pieces.

    Matches aria2's ``DefaultPieceStorage::getCompletedLength`` after a load, except that an
    in-flight record for a piece already marked complete is not counted twice, and a duplicated
    in-flight index counts once (the first record wins, as in aria2's in-flight set).
    """
    done = _completed_bytes(cf.bitfield, cf.num_pieces, cf.piece_length, cf.total_length)
    seen: set[int] = set()
    for piece in cf.in_flight:
        if piece.index in seen or _bit(cf.bitfield, piece.index):
            continue
        seen.add(piece.index)
        done += piece.completed_length
    return done


# --- parse -----------------------------------------------------------------------------------


class _Reader:
    """A cursor over the file's bytes that raises ResumeFileError on truncation."""

    __slots__ = ("_data", "_order", "_pos")

    def __init__(self, data: bytes, order: Literal["little", "big"] = "big") -> None:
        self._data = data
        self._pos = 0
        self._order: Literal["little", "big"] = order

    def take(self, n: int, what: str) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise ResumeFileError(
                f"control file truncated: {what} needs {n} bytes at offset {self._pos},"
                f" {len(self._data) - self._pos} left"
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), self._order)

    def set_order(self, order: Literal["little", "big"]) -> None:
        self._order = order

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos


def parse(data: bytes) -> ControlFile:
    """Decode a control file (version 0 or 1).

    Args:
        data: the whole file.  Bytes after the last in-flight piece are ignored, as in aria2.

    Returns:
        The decoded :class:`ControlFile`; spare bitfield bits are cleared.

    Raises:
        ResumeFileError: with a one-line message on any malformed input: an unknown version,
            truncation, an info hash longer than 20 bytes, a zero piece length, a bitfield or
            block-bitfield length mismatch, an in-flight index or length out of range.
    """
    data = bytes(data)
    r = _Reader(data)
    raw_version = r.take(2, "version")
    if raw_version == b"\x00\x01":
        version = 1
    elif raw_version == b"\x00\x00":
        version = 0
        r.set_order("little")
    else:
        raise ResumeFileError(f"unsupported control file version: {raw_version.hex()}")
    extension = r.take(4, "extension")
    bittorrent = bool(extension[3] & _BT_EXTENSION_BIT)

    hash_len = r.uint(4, "info hash length")
    if hash_len > INFO_HASH_LENGTH:
        raise ResumeFileError(f"invalid info hash length in control file: {hash_len}")
    info_hash = r.take(hash_len, "info hash")

    piece_length = r.uint(4, "piece length")
    if piece_length == 0:
        raise ResumeFileError("piece length in control file must not be 0")
    total_length = r.uint(8, "total length")
    upload_length = r.uint(8, "upload length")

    n = num_pieces(total_length, piece_length)
    bf_len = r.uint(4, "bitfield length")
    if bf_len != bitfield_length(n):
        raise ResumeFileError(
            f"bitfield length mismatch in control file: expected {bitfield_length(n)},"
            f" actual {bf_len}"
        )
    bitfield = _clear_spare_bits(r.take(bf_len, "bitfield"), n)

    count = r.uint(4, "number of in-flight pieces")
    # Each record is at least 12 bytes: fail at once on an absurd count.
    if count * 12 > r.remaining:
        raise ResumeFileError(
            f"control file truncated: {count} in-flight pieces need at least {count * 12}"
            f" bytes, {r.remaining} left"
        )
    pieces: list[InFlightPiece] = []
    for i in range(count):
        index = r.uint(4, f"in-flight piece #{i} index")
        if index >= n:
            raise ResumeFileError(f"in-flight piece index out of range: {index} ({n} pieces)")
        length = r.uint(4, f"in-flight piece #{i} length")
        if length > piece_length:
            raise ResumeFileError(
                f"in-flight piece length out of range: {length} (piece length {piece_length})"
            )
        pbf_len = r.uint(4, f"in-flight piece #{i} bitfield length")
        expected = piece_bitfield_length(length)
        if pbf_len != expected:
            raise ResumeFileError(
                f"in-flight piece {index} bitfield length mismatch: expected {expected},"
                f" actual {pbf_len}"
            )
        blocks = -(-length // BLOCK_LENGTH)
        pbf = _clear_spare_bits(r.take(pbf_len, f"in-flight piece #{i} bitfield"), blocks)
        pieces.append(InFlightPiece(index=index, length=length, bitfield=pbf))

    try:
        return ControlFile(
            piece_length=piece_length,
            total_length=total_length,
            bitfield=bitfield,
            in_flight=tuple(pieces),
            upload_length=upload_length,
            info_hash=info_hash,
            bittorrent=bittorrent,
            version=version,
        )
    except ValueError as exc:  # pragma: no cover - every rule is checked above
        raise ResumeFileError(f"malformed control file: {exc}") from None


# --- serialize -------------------------------------------------------------------------------


def serialize(cf: ControlFile) -> bytes:
    """Encode ``cf`` as a version 1 (big-endian) control file, byte for byte as aria2 does.

    In-flight pieces are written in ``cf.in_flight`` order (aria2 writes them by index).
    """
    out = bytearray(b"\x00\x01")
    out += bytes([0, 0, 0, _BT_EXTENSION_BIT if cf.bittorrent else 0])
    out += len(cf.info_hash).to_bytes(4, "big")
    out += cf.info_hash
    out += cf.piece_length.to_bytes(4, "big")
    out += cf.total_length.to_bytes(8, "big")
    out += cf.upload_length.to_bytes(8, "big")
    out += len(cf.bitfield).to_bytes(4, "big")
    out += cf.bitfield
    out += len(cf.in_flight).to_bytes(4, "big")
    for piece in cf.in_flight:
        out += piece.index.to_bytes(4, "big")
        out += piece.length.to_bytes(4, "big")
        out += len(piece.bitfield).to_bytes(4, "big")
        out += piece.bitfield
    return bytes(out)


# --- checks against the current download ---------------------------------------------------


def validate_against(
    cf: ControlFile,
    *,
    total_length: int,
    piece_length: int,
    info_hash: bytes = b"",
    allow_piece_length_change: bool = False,
) -> None:
    """Check a loaded control file against the download it is meant to resume (aria2 ``load``).

    Checks run in aria2's order: info hash, total length, piece length.

    Args:
        cf: the parsed control file.
        total_length: the download's current total length.
        piece_length: the piece length the download uses now.
        info_hash: the torrent's info hash for a BitTorrent download, empty otherwise.  It is
            compared only when the file's extension bit says BitTorrent, as in aria2.
        allow_piece_length_change: ``--allow-piece-length-change``.

    Raises:
        ResumeFileError: the info hash is missing, of the wrong length, or differs.
        CannotResumeError: the total length differs (exit 8: the remote file changed).
        PieceLengthChangedError: the piece length differs, progress exists and the change is not
            allowed (exit 10).  Without progress, or when allowed, the caller converts the file
            with :func:`convert_piece_length`.
    """
    if info_hash and cf.bittorrent:
        if len(cf.info_hash) != INFO_HASH_LENGTH:
            raise ResumeFileError(f"invalid info hash length in control file: {len(cf.info_hash)}")
        if cf.info_hash != info_hash:
            raise ResumeFileError(
                f"info hash mismatch. expected: {info_hash.hex()}, actual: {cf.info_hash.hex()}"
            )
    if cf.total_length != total_length:
        raise CannotResumeError(
            f"total length mismatch. expected: {total_length}, actual: {cf.total_length}"
            " (the remote file changed since the control file was saved)"
        )
    if cf.piece_length != piece_length and cf.has_progress and not allow_piece_length_change:
        raise PieceLengthChangedError(
            f"detected a change in piece length ({cf.piece_length} -> {piece_length}). You can"
            " proceed with --allow-piece-length-change=true, but you may lose some download"
            " progress."
        )


def convert_piece_length(cf: ControlFile, new_piece_length: int) -> ControlFile:
    """Re-express the completed pieces of ``cf`` in pieces of ``new_piece_length`` bytes.

    aria2 ``util::convertBitfield``: a new piece is complete only if every old piece overlapping
    it is complete.  In-flight pieces are dropped (their partial blocks are lost, as in aria2).

    Raises:
        ValueError: if ``new_piece_length`` is not in ``1 .. 2**32 - 1``.
    """
    if not 0 < new_piece_length <= _U32_MAX:
        raise ValueError(f"piece length out of range: {new_piece_length}")
    old_len, total = cf.piece_length, cf.total_length
    old_n = cf.num_pieces
    new_n = num_pieces(total, new_piece_length)
    # missing[k] = number of incomplete old pieces among the first k.
    missing = [0] * (old_n + 1)
    acc = 0
    for k in range(old_n):
        if not _bit(cf.bitfield, k):
            acc += 1
        missing[k + 1] = acc
    out = bytearray(bitfield_length(new_n))
    for i in range(new_n):
        start = i * new_piece_length
        end = min(start + new_piece_length, total)  # exclusive, > start
        first, last = start // old_len, (end - 1) // old_len
        if missing[last + 1] - missing[first] == 0:
            out[i >> 3] |= 0x80 >> (i & 7)
    return replace(cf, piece_length=new_piece_length, bitfield=bytes(out), in_flight=())
