"""Block geometry for any piece length (issue 10): 16 KiB blocks from each piece's start, the
last block of every piece (and of the last piece) shorter, as aria2 and libtorrent cut them
(docs/design.md §5, "Pieces and blocks")."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trioaria.storage.pieces import BLOCK_LENGTH, PieceStorage

PIECE_LENGTHS = st.one_of(
    st.integers(1, 5 * BLOCK_LENGTH),
    st.sampled_from([BLOCK_LENGTH, 3 * BLOCK_LENGTH + 1, 40000, 2 * 16411, 1 << 20, 1000003]),
)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 12 * BLOCK_LENGTH), PIECE_LENGTHS)
def test_blocks_tile_every_piece_in_16k_steps(total: int, piece_length: int) -> None:
    total %= 60 * piece_length + 1  # at most 60 pieces: tiny pieces stay quick
    s = PieceStorage(total, piece_length)
    spans = [s.block_span(b) for b in range(s.num_blocks)]
    # the blocks tile [0, total) in index order, never crossing a piece
    assert [a for a, _ in spans] == ([0, *(e for _, e in spans[:-1])] if spans else [])
    assert (spans[-1][1] if spans else 0) == total
    for block, (a, e) in enumerate(spans):
        piece = a // piece_length
        assert (e - 1) // piece_length == piece
        assert block in s.piece_blocks(piece)
        k = block - s.piece_blocks(piece).start
        assert a == piece * piece_length + k * min(BLOCK_LENGTH, piece_length)
        assert 0 < e - a <= BLOCK_LENGTH
        assert s.block_size(block) == e - a
        assert s.block_start(block) == a
        assert s.block_of(a) == s.block_of(e - 1) == block
        assert s.block_ceil(a) == block and s.block_ceil(a + 1) == block + 1
        assert s.is_block_boundary(a) and (e - a == 1 or not s.is_block_boundary(a + 1))
    for piece in range(s.num_pieces):
        rng = s.piece_blocks(piece)
        assert len(rng) == -(-s.piece_size(piece) // BLOCK_LENGTH)
        # every block but a piece's last is a full 16 KiB (or the whole piece when smaller)
        assert all(s.block_size(b) == min(BLOCK_LENGTH, piece_length) for b in rng[:-1])
    assert s.block_start(s.num_blocks) == total
    assert s.span_length(0, s.num_blocks) == total


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 30 * BLOCK_LENGTH),
    PIECE_LENGTHS,
    st.lists(st.tuples(st.integers(0, 400), st.integers(1, 12)), max_size=12),
    st.lists(st.integers(0, 40), max_size=3),
)
def test_completed_length_and_control_file_bits(
    total: int, piece_length: int, marks: list[tuple[int, int]], failed: list[int]
) -> None:
    s = PieceStorage(total, piece_length)
    done: set[int] = set()
    for first, n in marks:
        first %= s.num_blocks
        end = min(first + n, s.num_blocks)
        s.mark_blocks(first, end)
        done.update(range(first, end))
    for piece in failed:
        if piece < s.num_pieces:
            s.clear_piece(piece)
            done.difference_update(s.piece_blocks(piece))
    assert s.completed_length == sum(s.block_size(b) for b in done)
    assert s.is_complete() == (len(done) == s.num_blocks)
    # the control file has one bit per 16 KiB block of a piece, the last short (aria2 Piece)
    bitfield, in_flight = s.snapshot()
    for piece, length, bits in in_flight:
        assert length == s.piece_size(piece)
        blocks = -(-length // BLOCK_LENGTH)
        assert len(bits) == (blocks + 7) // 8
    back = PieceStorage(total, piece_length)
    back.load(bitfield, in_flight)
    assert [back.is_block_done(b) for b in range(s.num_blocks)] == [
        b in done for b in range(s.num_blocks)
    ]
    assert back.completed_length == s.completed_length


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20 * BLOCK_LENGTH), PIECE_LENGTHS, st.integers(0, 20 * BLOCK_LENGTH))
def test_mark_bytes_marks_exactly_the_blocks_inside(
    total: int, piece_length: int, cut: int
) -> None:
    s = PieceStorage(total, piece_length)
    start = min(cut, total)
    s.mark_bytes(start, total)
    for block in range(s.num_blocks):
        a, _ = s.block_span(block)
        assert s.is_block_done(block) == (a >= start)
