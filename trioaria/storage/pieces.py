"""Which bytes of a download are done: pieces of ``--piece-length`` made of 16 KiB blocks.

Theory of operation
-------------------
The download's byte space ``[0, total_length)`` is cut into pieces (aria2 ``--piece-length``,
1 MiB by default for HTTP/FTP/SFTP; the torrent's piece length for BitTorrent) and every piece
into 16 KiB blocks (the BitTorrent request size, BEP 3, and the unit of aria2's control file
in-flight bitfields).  The only state kept here is one byte per block (0 = missing,
1 = written), a :class:`Bitfield` of written pieces and one of *verified* pieces (their hash
matched: BEP 3 SHA-1 piece hashes, Metalink chunk checksums), so every protocol shares it:
HTTP/FTP/SFTP segments report byte ranges, BitTorrent reports blocks, and the control file
(``storage.control_file``) is produced from and loaded into the same two structures.

A piece length that is not a multiple of 16 KiB (aria2 and libtorrent accept them, e.g. 40000)
gets the largest block length that divides it and is at most 16 KiB (10000 for 40000), so the
geometry stays uniform for every protocol and every BitTorrent request still fits in 16 KiB
(:func:`block_length_for`).  The control file keeps aria2's one bit per 16 KiB block of a piece
(the last one short); :meth:`PieceStorage.snapshot` and :meth:`PieceStorage.load` translate: a
16 KiB block is written when all of our blocks it overlaps are, and back.

A block is marked done only after its bytes were handed to ``os.pwrite`` (docs/decisions.md: the
control file is the commit point), so a snapshot never claims bytes that are not in the file.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .bitfield import Bitfield

__all__ = ["BLOCK_LENGTH", "MIN_BLOCK_LENGTH", "BlockMap", "PieceStorage", "block_length_for"]

BLOCK_LENGTH = 16 * 1024
#: the smallest block :func:`block_length_for` settles for (below it a request costs too much)
MIN_BLOCK_LENGTH = 1024


def block_length_for(piece_length: int) -> int:
    """The block length of pieces of ``piece_length`` bytes (BEP 3 requests are <= 16 KiB).

    16 KiB when it divides the piece length; the piece length itself when it is smaller (one
    short block per piece, as aria2); otherwise the largest divisor of the piece length that is
    at most 16 KiB.

    Raises:
        ValueError: no divisor of at least :data:`MIN_BLOCK_LENGTH` bytes exists.
    """
    if piece_length <= 0:
        return BLOCK_LENGTH
    if piece_length <= BLOCK_LENGTH or piece_length % BLOCK_LENGTH == 0:
        return min(BLOCK_LENGTH, piece_length)
    for length in range(BLOCK_LENGTH, MIN_BLOCK_LENGTH - 1, -1):
        if piece_length % length == 0:
            return length
    raise ValueError(
        f"piece length {piece_length} has no block length between {MIN_BLOCK_LENGTH}"
        f" and {BLOCK_LENGTH} bytes that divides it"
    )


class BlockMap:
    """One byte per block (0 = missing, 1 = written), allocated in chunks as blocks are written.

    A server can claim any length; the state kept for it must grow with what is downloaded, not
    with the claim (issue 15).  Chunks of 65,536 blocks (1 GiB of data, 64 KiB of state) are
    created on the first write inside them; a missing chunk reads as all zeros.
    """

    CHUNK = 1 << 16

    __slots__ = ("_chunks", "length")

    def __init__(self, length: int) -> None:
        self.length = length
        self._chunks: dict[int, bytearray] = {}

    def __getitem__(self, index: int) -> int:
        if index < 0:
            index += self.length
        chunk = self._chunks.get(index >> 16)
        return chunk[index & 0xFFFF] if chunk is not None else 0

    def _spans(self, start: int, stop: int) -> Iterator[tuple[int, int, int]]:
        """``(chunk, offset, end)`` pieces of ``[start, stop)``."""
        c = self.CHUNK
        while start < stop:
            key, off = divmod(start, c)
            end = min(c, off + stop - start)
            yield key, off, end
            start += end - off

    def _written_spans(self, start: int, stop: int) -> Iterator[tuple[int, int, int]]:
        """Like :meth:`_spans`, over the allocated chunks only (missing ones hold no 1s)."""
        c = self.CHUNK
        first, last = start // c, (stop - 1) // c
        keys = self._chunks.keys()
        if last - first + 1 > len(keys):
            candidates: Iterable[int] = sorted(k for k in keys if first <= k <= last)
        else:
            candidates = (k for k in range(first, last + 1) if k in self._chunks)
        for key in candidates:
            off = max(start, key * c) - key * c
            end = min(stop, (key + 1) * c) - key * c
            yield key, off, end

    def count(self, value: int, start: int, stop: int) -> int:
        if stop <= start:
            return 0
        c = self.CHUNK
        key = start // c
        if (stop - 1) // c == key:  # one chunk: the common case, no generators
            chunk = self._chunks.get(key)
            if chunk is None:
                return 0 if value else stop - start
            base = key * c
            return chunk.count(value, start - base, stop - base)
        ones = sum(self._chunks[k].count(1, o, e) for k, o, e in self._written_spans(start, stop))
        return ones if value else (stop - start) - ones

    def find(self, value: int, start: int, stop: int | None = None) -> int:
        """The first index in ``[start, stop)`` holding ``value``, or -1."""
        if stop is None:
            stop = self.length
        if stop <= start:
            return -1
        c = self.CHUNK
        spans = self._written_spans(start, stop) if value else self._spans(start, stop)
        for key, off, end in spans:
            chunk = self._chunks.get(key)
            if chunk is None:
                return key * c + off  # value == 0: an unallocated chunk is all zeros
            i = chunk.find(value, off, end)
            if i >= 0:
                return key * c + i
        return -1

    def fill(self, start: int, stop: int, value: int) -> None:
        byte = b"\x01" if value else b"\x00"
        c = self.CHUNK
        key = start // c
        if stop > start and (stop - 1) // c == key:  # one chunk: the common case
            chunk = self._chunks.get(key)
            if chunk is None:
                if not value:
                    return
                chunk = self._chunks[key] = bytearray(min(c, self.length - key * c))
            base = key * c
            chunk[start - base : stop - base] = byte * (stop - start)
            return
        for key, off, end in self._spans(start, stop):
            chunk = self._chunks.get(key)
            if chunk is None:
                if not value:
                    continue
                size = min(self.CHUNK, self.length - key * self.CHUNK)
                chunk = self._chunks[key] = bytearray(size)
            chunk[off:end] = byte * (end - off)

    def clear(self) -> None:
        self._chunks.clear()

    @property
    def allocated(self) -> int:
        """Bytes of state held (for tests: it grows with what is written)."""
        return sum(len(chunk) for chunk in self._chunks.values())


class PieceStorage:
    """Block- and piece-level completion state of one download.

    Blocks are 16 KiB, or the piece length itself when pieces are smaller (a tiny torrent:
    aria2's ``Piece`` then holds one short block, so its control file has one bit per piece).
    """

    def __init__(
        self, total_length: int, piece_length: int, block_length: int | None = None
    ) -> None:
        if block_length is None:
            block_length = block_length_for(piece_length)
        if total_length < 0:
            raise ValueError("total_length must be >= 0")
        if piece_length <= 0 or block_length <= 0 or piece_length % block_length:
            raise ValueError("piece_length must be a positive multiple of block_length")
        self.total_length = total_length
        self.piece_length = piece_length
        self.block_length = block_length
        self.blocks_per_piece = piece_length // block_length
        self.num_pieces = -(-total_length // piece_length)
        self.num_blocks = -(-total_length // block_length)
        self.pieces = Bitfield(self.num_pieces)
        self.verified = Bitfield(self.num_pieces)
        self._blocks = BlockMap(self.num_blocks)
        self._done_blocks = 0
        # The last block may be short; everything else is block_length.
        self._last_block_len = (
            total_length - (self.num_blocks - 1) * block_length if total_length else 0
        )

    # --- geometry -------------------------------------------------------------------

    def piece_size(self, index: int) -> int:
        start = index * self.piece_length
        return min(self.piece_length, self.total_length - start)

    def piece_blocks(self, index: int) -> range:
        first = index * self.blocks_per_piece
        return range(first, min(first + self.blocks_per_piece, self.num_blocks))

    def block_span(self, block: int) -> tuple[int, int]:
        """Byte range ``[start, end)`` of ``block``."""
        start = block * self.block_length
        return start, min(start + self.block_length, self.total_length)

    def block_of(self, offset: int) -> int:
        return offset // self.block_length

    def block_ceil(self, offset: int) -> int:
        """Index of the first block starting at or after ``offset`` (end offset -> block count)."""
        if offset >= self.total_length:
            return self.num_blocks
        return -(-offset // self.block_length)

    # --- state ----------------------------------------------------------------------

    @property
    def completed_length(self) -> int:
        """Bytes in done blocks."""
        if self.num_blocks and self._blocks[-1]:
            return (self._done_blocks - 1) * self.block_length + self._last_block_len
        return self._done_blocks * self.block_length

    def is_complete(self) -> bool:
        return self._done_blocks == self.num_blocks

    def is_block_done(self, block: int) -> bool:
        return bool(self._blocks[block])

    def blocks_done_in(self, first: int, end: int) -> int:
        return self._blocks.count(1, first, end)

    def mark_blocks(self, first: int, end: int) -> list[int]:
        """Mark blocks ``[first, end)`` written; return the pieces this completed."""
        if first >= end:
            return []
        before = self._blocks.count(0, first, end)
        if not before:
            return []
        self._blocks.fill(first, end, 1)
        self._done_blocks += before
        completed = []
        bpp = self.blocks_per_piece
        for piece in range(first // bpp, (end - 1) // bpp + 1):
            if self.pieces[piece]:
                continue
            rng = self.piece_blocks(piece)
            if self._blocks.count(0, rng.start, rng.stop) == 0:
                self.pieces.set(piece)
                completed.append(piece)
        return completed

    def mark_bytes(self, start: int, end: int) -> list[int]:
        """Mark every block fully inside the written byte range ``[start, end)``."""
        first = self.block_ceil(start)
        last = self.num_blocks if end >= self.total_length else end // self.block_length
        return self.mark_blocks(first, last)

    def clear_piece(self, index: int) -> None:
        """Forget a piece (its hash did not match): all its blocks become missing."""
        rng = self.piece_blocks(index)
        self._done_blocks -= self._blocks.count(1, rng.start, rng.stop)
        self._blocks.fill(rng.start, rng.stop, 0)
        self.pieces.clear(index)
        self.verified.clear(index)

    def mark_verified(self, index: int) -> None:
        """A written piece's hash matched (the piece states: missing -> partial -> written ->
        verified, or back to missing through :meth:`clear_piece` when it failed)."""
        if not self.pieces[index]:
            raise ValueError(f"piece {index} is not written; it cannot be verified")
        self.verified.set(index)

    def piece_state(self, index: int) -> str:
        """``missing``, ``partial``, ``written`` or ``verified``."""
        if self.verified[index]:
            return "verified"
        if self.pieces[index]:
            return "written"
        rng = self.piece_blocks(index)
        return "partial" if self._blocks.count(1, rng.start, rng.stop) else "missing"

    def reset(self) -> None:
        """Forget everything (restart from zero)."""
        self._blocks.clear()
        self._done_blocks = 0
        self.pieces = Bitfield(self.num_pieces)
        self.verified = Bitfield(self.num_pieces)

    def missing_runs(self, first: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
        """Maximal runs ``[a, b)`` of missing blocks within ``[first, end)``."""
        stop = self.num_blocks if end is None else end
        blocks = self._blocks
        i = first
        while i < stop:
            a = blocks.find(0, i, stop)
            if a < 0:
                return
            b = blocks.find(1, a, stop)
            if b < 0:
                b = stop
            yield a, b
            i = b

    # --- control-file form (aria2 DefaultBtProgressInfoFile) ----------------------------

    def snapshot(self) -> tuple[bytes, list[tuple[int, int, bytes]]]:
        """Return ``(piece_bitfield, in_flight)`` as the control file stores them.

        ``in_flight`` lists ``(piece_index, piece_length, block_bitfield)`` for every
        incomplete piece with at least one written block.
        """
        in_flight = []
        bpp = self.blocks_per_piece
        blocks = self._blocks
        # Only pieces that have some but not all blocks: scan done blocks outside full pieces.
        i = 0
        n = self.num_blocks
        while i < n:
            j = blocks.find(1, i)
            if j < 0:
                break
            piece = j // bpp
            rng = self.piece_blocks(piece)
            if not self.pieces[piece]:
                bits = self._file_bits(piece, rng)
                in_flight.append((piece, self.piece_size(piece), bits.to_bytes()))
            i = rng.stop
        return self.pieces.to_bytes(), in_flight

    def _file_bits(self, piece: int, rng: range) -> Bitfield:
        """The control file's bits of ``piece``: one per 16 KiB block (aria2 ``Piece``)."""
        blocks, bl = self._blocks, self.block_length
        size = self.piece_size(piece)
        count = -(-size // BLOCK_LENGTH)
        bits = Bitfield(count)
        same = bl == BLOCK_LENGTH or (count == 1 and len(rng) == 1)
        for j in range(count):
            if same:
                if blocks[rng.start + j]:
                    bits.set(j)
                continue
            # ours overlapping [j*16K, min((j+1)*16K, size)) must all be written
            a = (j * BLOCK_LENGTH) // bl
            b = -(-min((j + 1) * BLOCK_LENGTH, size) // bl)
            if blocks.count(0, rng.start + a, rng.start + b) == 0:
                bits.set(j)
        return bits

    def load(self, bitfield: bytes, in_flight: list[tuple[int, int, bytes]]) -> None:
        """Replace the state with a control file's ``bitfield`` and ``in_flight`` pieces."""
        self.reset()
        pieces = Bitfield.from_bytes(bitfield, self.num_pieces)
        for piece in pieces.iter_set():
            rng = self.piece_blocks(piece)
            self.mark_blocks(rng.start, rng.stop)
        for piece, _length, bits in in_flight:
            if not 0 <= piece < self.num_pieces or self.pieces[piece]:
                continue
            rng = self.piece_blocks(piece)

            def bit(j: int, bits: bytes = bits) -> bool:
                return j // 8 < len(bits) and bool(bits[j // 8] & (0x80 >> (j % 8)))

            bl, size = self.block_length, self.piece_size(piece)
            for k in range(len(rng)):
                if bl == BLOCK_LENGTH or len(rng) == 1:
                    done = bit(k)
                else:  # every 16 KiB block of the file that overlaps ours must be set
                    a = (k * bl) // BLOCK_LENGTH
                    b = -(-min((k + 1) * bl, size) // BLOCK_LENGTH)
                    done = all(bit(j) for j in range(a, b))
                if done:
                    self.mark_blocks(rng.start + k, rng.start + k + 1)
