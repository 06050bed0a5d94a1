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

Any positive piece length works, as in aria2 and libtorrent: every piece is cut into 16 KiB
blocks from its own start, the last block of each piece (and of the last piece) shorter when the
piece length is not a multiple of 16 KiB (40000 -> 16384 + 16384 + 7232; BEP 3 requests never
cross a piece).  Block ``k`` of piece ``p`` has the global index ``p * blocks_per_piece + k``;
when 16 KiB divides the piece length this is the plain ``offset // 16 KiB``.  Every conversion
between offsets and blocks goes through :meth:`PieceStorage.block_of`,
:meth:`PieceStorage.block_ceil`, :meth:`PieceStorage.block_start` and
:meth:`PieceStorage.block_span`.  These blocks are exactly aria2's ``Piece`` blocks, so the control
file's in-flight bits map one to one.

A block is marked done only after its bytes were handed to ``os.pwrite`` (docs/decisions.md: the
control file is the commit point), so a snapshot never claims bytes that are not in the file.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from .bitfield import Bitfield

__all__ = ["BLOCK_LENGTH", "BlockMap", "PieceStorage", "block_length_for", "spans_in_units"]

BLOCK_LENGTH = 16 * 1024


def block_length_for(piece_length: int) -> int:
    """The full block length of pieces of ``piece_length`` bytes: 16 KiB (BEP 3 requests),
    or the piece length itself when it is smaller (one short block per piece, as aria2)."""
    if piece_length <= 0:
        return BLOCK_LENGTH
    return min(BLOCK_LENGTH, piece_length)


def spans_in_units(
    spans: Iterable[tuple[int, int]], unit: int, keep: Callable[[int], object]
) -> list[tuple[int, int]]:
    """The parts of the half-open, ascending ``spans`` that lie in units ``x // unit`` for
    which ``keep(unit index)`` holds, adjacent parts merged: the missing blocks of wanted
    pieces (the picker), the bytes of a write outside complete pieces (the session)."""
    out: list[tuple[int, int]] = []
    for a, b in spans:
        cur = a
        while cur < b:
            k = cur // unit
            stop = min(b, (k + 1) * unit)
            if keep(k):
                if out and out[-1][1] == cur:
                    out[-1] = (out[-1][0], stop)
                else:
                    out.append((cur, stop))
            cur = stop
    return out


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
    The last block of every piece is shorter when 16 KiB does not divide the piece length
    (see the module docstring); ``block_length`` names a full block.
    """

    def __init__(
        self, total_length: int, piece_length: int, block_length: int | None = None
    ) -> None:
        if block_length is None:
            block_length = block_length_for(piece_length)
        if total_length < 0:
            raise ValueError("total_length must be >= 0")
        if piece_length <= 0 or not 0 < block_length <= piece_length:
            raise ValueError("piece_length and block_length must be positive")
        self.total_length = total_length
        self.piece_length = piece_length
        self.block_length = block_length
        self.blocks_per_piece = -(-piece_length // block_length)
        self.num_pieces = -(-total_length // piece_length)
        last_piece = total_length - (self.num_pieces - 1) * piece_length if total_length else 0
        self.num_blocks = (
            (self.num_pieces - 1) * self.blocks_per_piece + -(-last_piece // block_length)
            if total_length
            else 0
        )
        #: 16 KiB divides the piece length: every block but the very last is full
        self.uniform = piece_length % block_length == 0
        #: the length of the last block of a full piece
        self.tail_length = piece_length - (self.blocks_per_piece - 1) * block_length
        self.pieces = Bitfield(self.num_pieces)
        self.verified = Bitfield(self.num_pieces)
        self._blocks = BlockMap(self.num_blocks)
        self._done_blocks = 0
        self._done_tails = 0  # done blocks that end a full piece (counted when not uniform)
        self._last_block_len = (
            total_length - self.block_start(self.num_blocks - 1) if total_length else 0
        )
        self._last_is_tail = self.num_blocks > 0 and self.num_blocks % self.blocks_per_piece == 0

    # --- geometry -------------------------------------------------------------------

    def piece_size(self, index: int) -> int:
        start = index * self.piece_length
        return min(self.piece_length, self.total_length - start)

    def piece_blocks(self, index: int) -> range:
        first = index * self.blocks_per_piece
        return range(first, min(first + self.blocks_per_piece, self.num_blocks))

    def block_start(self, block: int) -> int:
        """The offset where ``block`` starts (``total_length`` from ``num_blocks`` on)."""
        if block >= self.num_blocks:
            return self.total_length
        if self.uniform:
            return block * self.block_length
        piece, k = divmod(block, self.blocks_per_piece)
        return piece * self.piece_length + k * self.block_length

    def block_span(self, block: int) -> tuple[int, int]:
        """Byte range ``[start, end)`` of ``block``."""
        bl = self.block_length
        if self.uniform:
            start = block * bl
            return start, min(start + bl, self.total_length)
        piece, k = divmod(block, self.blocks_per_piece)
        base = piece * self.piece_length
        start = base + k * bl
        return start, min(start + bl, base + self.piece_length, self.total_length)

    def block_size(self, block: int) -> int:
        """The byte length of ``block``."""
        start, end = self.block_span(block)
        return end - start

    def block_of(self, offset: int) -> int:
        """The block holding byte ``offset``."""
        if self.uniform:
            return offset // self.block_length
        piece, rest = divmod(offset, self.piece_length)
        return piece * self.blocks_per_piece + rest // self.block_length

    def block_ceil(self, offset: int) -> int:
        """Index of the first block starting at or after ``offset`` (end offset -> block count)."""
        if offset >= self.total_length:
            return self.num_blocks
        if self.uniform:
            return -(-offset // self.block_length)
        piece, rest = divmod(offset, self.piece_length)
        return piece * self.blocks_per_piece + -(-rest // self.block_length)

    def is_block_boundary(self, offset: int) -> bool:
        """``offset`` is where a block starts (or the end of the download)."""
        return offset >= self.total_length or self.block_start(self.block_of(offset)) == offset

    def span_length(self, first: int, end: int) -> int:
        """Bytes in blocks ``[first, end)``."""
        return self.block_start(end) - self.block_start(first)

    # --- state ----------------------------------------------------------------------

    @property
    def completed_length(self) -> int:
        """Bytes in done blocks."""
        bl = self.block_length
        done = self._done_blocks * bl - self._done_tails * (bl - self.tail_length)
        if self.num_blocks and self._blocks[-1]:
            done -= (self.tail_length if self._last_is_tail else bl) - self._last_block_len
        return done

    def _tails_done(self, first: int, end: int) -> int:
        """Done blocks in ``[first, end)`` that end a piece (only kept when not uniform)."""
        bpp = self.blocks_per_piece
        blocks = self._blocks
        t = first // bpp * bpp + bpp - 1
        if t < first:
            t += bpp
        count = 0
        while t < end:
            count += blocks[t]
            t += bpp
        return count

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
        if not self.uniform:
            self._done_tails -= self._tails_done(first, end)
        self._blocks.fill(first, end, 1)
        self._done_blocks += before
        if not self.uniform:
            self._done_tails += self._tails_done(first, end)
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
        last = self.num_blocks if end >= self.total_length else self.block_of(end)
        return self.mark_blocks(first, last)

    def clear_piece(self, index: int) -> None:
        """Forget a piece (its hash did not match): all its blocks become missing."""
        rng = self.piece_blocks(index)
        self._done_blocks -= self._blocks.count(1, rng.start, rng.stop)
        if not self.uniform:
            self._done_tails -= self._tails_done(rng.start, rng.stop)
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
        self._done_tails = 0
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
        """The control file's bits of ``piece``: one per block (aria2 ``Piece``: 16 KiB blocks
        from the piece's start, the last one short), so ours map one to one."""
        blocks = self._blocks
        bits = Bitfield(len(rng))
        for j, block in enumerate(rng):
            if blocks[block]:
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
            for k in range(min(len(rng), len(bits) * 8)):
                if bits[k // 8] & (0x80 >> (k % 8)):
                    self.mark_blocks(rng.start + k, rng.start + k + 1)
