"""PieceStorage and Bitfield: block/piece bookkeeping shared by every protocol."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trioaria.storage.bitfield import Bitfield
from trioaria.storage.pieces import BLOCK_LENGTH, BlockMap, PieceStorage

KB = 1024
MB = 1024 * KB


def test_bitfield_bit_order_is_msb_first():
    bf = Bitfield(10)
    bf.set(0)
    bf.set(9)
    assert bf.to_bytes() == b"\x80\x40"
    assert bf.count() == 2
    assert list(bf.iter_set()) == [0, 9]


def test_bitfield_rejects_spare_bits_and_wrong_size():
    with pytest.raises(ValueError):
        Bitfield.from_bytes(b"\xff\xff", 10)
    with pytest.raises(ValueError):
        Bitfield.from_bytes(b"\xff", 10)
    assert Bitfield.from_bytes(b"\xff\xc0", 10).all()


@given(st.integers(0, 200), st.data())
def test_bitfield_roundtrip(n, data):
    bits = data.draw(st.sets(st.integers(0, max(0, n - 1)), max_size=n)) if n else set()
    bf = Bitfield(n)
    for i in bits:
        bf.set(i)
    again = Bitfield.from_bytes(bf.to_bytes(), n)
    assert again == bf
    assert set(again.iter_set()) == bits
    assert again.count() == len(bits)


def test_geometry_last_piece_and_block_short():
    ps = PieceStorage(MB + 100, MB)
    assert ps.num_pieces == 2
    assert ps.piece_size(1) == 100
    assert ps.num_blocks == MB // BLOCK_LENGTH + 1
    assert ps.block_span(ps.num_blocks - 1) == (MB, MB + 100)


def test_mark_bytes_only_full_blocks():
    ps = PieceStorage(4 * MB, MB)
    assert ps.mark_bytes(0, BLOCK_LENGTH - 1) == []
    assert ps.completed_length == 0
    assert ps.mark_bytes(0, MB) == [0]
    assert ps.completed_length == MB
    # a range starting mid-block marks only the blocks it fully covers
    ps.mark_bytes(MB + 10, MB + 3 * BLOCK_LENGTH)
    assert ps.completed_length == MB + 2 * BLOCK_LENGTH


def test_mark_to_end_includes_short_last_block():
    ps = PieceStorage(MB + 100, MB)
    assert ps.mark_bytes(0, MB + 100) == [0, 1]
    assert ps.is_complete()
    assert ps.completed_length == MB + 100


def test_clear_piece_after_hash_failure():
    ps = PieceStorage(2 * MB, MB)
    ps.mark_bytes(0, 2 * MB)
    ps.clear_piece(1)
    assert ps.completed_length == MB
    assert not ps.pieces[1]
    assert list(ps.missing_runs()) == [(64, 128)]


def test_snapshot_and_load_roundtrip_with_in_flight():
    ps = PieceStorage(3 * MB + 5, MB)
    ps.mark_bytes(0, MB)
    ps.mark_bytes(MB, MB + 3 * BLOCK_LENGTH)
    ps.mark_bytes(3 * MB, 3 * MB + 5)
    bitfield, in_flight = ps.snapshot()
    assert bitfield == b"\x90"  # pieces 0 and 3 complete
    assert in_flight == [(1, MB, b"\xe0" + bytes(7))]
    other = PieceStorage(3 * MB + 5, MB)
    other.load(bitfield, in_flight)
    assert other.completed_length == ps.completed_length
    assert list(other.missing_runs()) == list(ps.missing_runs())


@given(
    st.integers(1, 5 * MB),
    st.lists(st.tuples(st.integers(0, 5 * MB), st.integers(0, 2 * MB)), max_size=20),
)
def test_snapshot_load_hypothesis(total, writes):
    ps = PieceStorage(total, MB)
    for start, length in writes:
        start = min(start, total)
        ps.mark_bytes(start, min(total, start + length))
    bitfield, in_flight = ps.snapshot()
    other = PieceStorage(total, MB)
    other.load(bitfield, in_flight)
    assert other.completed_length == ps.completed_length
    assert other.pieces == ps.pieces
    assert list(other.missing_runs()) == list(ps.missing_runs())


# --- BlockMap: block state that grows with what is written (issue 15) -----------------------


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(1, 3 * BlockMap.CHUNK + 7),
    ops=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.integers(0, 1)), max_size=12),
    probes=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=6),
)
def test_block_map_behaves_like_a_bytearray(length, ops, probes) -> None:
    bm, ref = BlockMap(length), bytearray(length)
    for fa, fb, value in ops:
        a, b = sorted((int(fa * length), int(fb * length)))
        bm.fill(a, b, value)
        ref[a:b] = bytes([value]) * (b - a)
    for fa, fb in probes:
        a, b = sorted((int(fa * length), int(fb * length)))
        for value in (0, 1):
            assert bm.count(value, a, b) == ref.count(value, a, b)
            assert bm.find(value, a, b) == ref.find(value, a, b)
        assert bm[a % length] == ref[a % length]


def test_piece_state_grows_with_what_is_written_not_with_the_claim() -> None:
    st = PieceStorage(1 << 44, 1 << 20)  # a 16 TiB claim
    assert st._blocks.allocated == 0
    st.mark_bytes(0, 5 << 20)
    assert st._blocks.allocated <= BlockMap.CHUNK
    assert st.completed_length == 5 << 20
    assert list(st.missing_runs(0, 400))[:1] == [(320, 400)]
