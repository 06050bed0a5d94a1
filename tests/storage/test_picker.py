"""RangePicker: gaps, splitting at -k, stream selectors and the endgame race."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trioaria.storage.picker import RangePicker, Segment
from trioaria.storage.pieces import BLOCK_LENGTH, PieceStorage

MB = 1 << 20


def make(total=16 * MB, k=MB, selector="default", **kw):
    return RangePicker(
        PieceStorage(total, MB), min_split_size=k, selector=selector, rng=random.Random(1), **kw
    )


def test_first_segment_is_whole_file():
    p = make()
    seg = p.next_segment("a")
    assert (seg.start, seg.end) == (0, 16 * MB)


def test_split_largest_remaining_at_piece_boundary():
    p = make()
    a = p.next_segment("a")
    b = p.next_segment("b")
    assert (a.start, a.end) == (0, 8 * MB)
    assert (b.start, b.end) == (8 * MB, 16 * MB)
    c = p.next_segment("c")
    assert (c.start, c.end) == (4 * MB, 8 * MB)  # ties go to the lower segment
    assert a.end == 4 * MB
    for seg in p.active:
        assert seg.start % MB == 0 and seg.end % MB == 0


def test_min_split_size_limits_splitting():
    p = make(total=4 * MB, k=2 * MB)
    a = p.next_segment("a")
    b = p.next_segment("b")
    assert (a.end, b.start) == (2 * MB, 2 * MB)
    # each half is exactly -k now: no further split, the third connection races instead
    c = p.next_segment("c", endgame=False)
    assert c is None


def test_inorder_splits_just_ahead_of_reader():
    p = make(selector="inorder")
    a = p.next_segment("a")
    b = p.next_segment("b")
    assert (a.start, a.end) == (0, MB)
    assert (b.start, b.end) == (MB, 16 * MB)


def test_advance_marks_blocks_and_finishes():
    p = make(total=2 * MB)
    seg = p.next_segment("a")
    assert p.advance(seg, MB) == [0]
    assert not seg.finished
    assert p.advance(seg, MB) == [1]
    assert seg.finished and p.is_complete()
    with pytest.raises(ValueError):
        p.advance(seg, 1)


def test_released_segment_leaves_a_gap_that_is_picked_up():
    p = make(total=4 * MB)
    seg = p.next_segment("a")
    p.advance(seg, MB + 100)
    p.release(seg)
    assert p.gaps() == [(MB // BLOCK_LENGTH, 4 * MB // BLOCK_LENGTH)]
    nxt = p.next_segment("b")
    assert (nxt.start, nxt.end) == (MB, 4 * MB)


def test_endgame_twin_finishes_slow_segment():
    p = make(total=2 * MB, k=MB)
    slow = p.next_segment("slow")
    fast = p.next_segment("fast")
    assert (slow.end, fast.start) == (MB, MB)
    p.advance(fast, MB)
    p.release(fast)
    p.advance(slow, 3 * BLOCK_LENGTH)
    twin = p.next_segment("fast")  # one piece or less left: race it
    assert twin is not None and twin.twin is slow
    assert twin.start == 3 * BLOCK_LENGTH and twin.end == MB
    p.advance(twin, twin.remaining)
    assert p.is_complete()
    assert slow.finished  # the slow connection sees its work is done and stops


def test_no_split_source_gets_nothing_more():
    p = make(allow_split=False)
    p.next_segment("a")
    assert p.next_segment("b", endgame=False) is None


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12 * MB),
    st.sampled_from(["default", "inorder", "random", "geom"]),
    st.lists(st.tuples(st.integers(0, 5), st.integers(1, 3 * MB)), min_size=1, max_size=200),
)
def test_random_schedule_always_completes_exactly(total, selector, steps):
    """Any interleaving of connections advancing, failing and joining completes the file."""
    p = RangePicker(
        PieceStorage(total, MB), min_split_size=MB, selector=selector, rng=random.Random(7)
    )
    segs = {}
    written = bytearray(total)
    for conn, n in steps * 50:
        if p.is_complete():
            break
        seg = segs.get(conn)
        if seg is None or seg.finished:
            if seg is not None:
                p.release(seg)
            seg = p.next_segment(conn)
            segs[conn] = seg
            if seg is None:
                continue
        k = min(n, seg.remaining)
        written[seg.pos : seg.pos + k] = b"\x01" * k
        p.advance(seg, k)
        if n % 7 == 0:  # a failure now and then
            p.release(seg)
            segs[conn] = None
    for seg in list(p.active):  # the connections still reading finish their segments
        if not seg.finished:
            written[seg.pos : seg.end] = b"\x01" * seg.remaining
            p.advance(seg, seg.remaining)
        p.release(seg)
    while not p.is_complete():
        seg = p.next_segment("tail")
        assert seg is not None
        written[seg.pos : seg.end] = b"\x01" * seg.remaining
        p.advance(seg, seg.remaining)
        p.release(seg)
    assert written.count(0) == 0 or p.storage.completed_length == total
    assert p.storage.completed_length == total


def _slow_half_left(total: int, k: int) -> tuple[RangePicker, Segment]:
    """Two connections split the file; the second finishes its half: the first is the tail."""
    p = make(total=total, k=k)
    slow = p.next_segment("slow")
    fast = p.next_segment("fast")
    assert (slow.end, fast.start) == (total // 2, total // 2)
    p.advance(fast, fast.remaining)
    p.release(fast)
    return p, slow


def test_endgame_halves_a_long_slow_tail_before_racing():
    p, slow = _slow_half_left(8 * MB, 4 * MB)
    helper = p.next_segment("fast")
    assert helper.twin is None and (helper.start, helper.end) == (2 * MB, 4 * MB)
    assert slow.end == 2 * MB


def test_endgame_does_not_race_what_ends_soon():
    p = make(total=2 * MB, k=MB)
    slow = p.next_segment("slow")
    fast = p.next_segment("fast")
    p.advance(fast, fast.remaining)
    p.release(fast)
    assert p.next_segment("fast", eta_of=lambda s: 0.1, race_min_eta=1.0) is None
    assert p.next_segment("fast", eta_of=lambda s: 5.0, race_min_eta=1.0).twin is slow


def test_steal_spares_a_segment_that_ends_soon():
    """``steal_min_eta``: a segment its connection finishes within the limit is not split; one
    without an estimate yet (None: the fan-out) or a slow one is split as before."""
    p = make(total=8 * MB, k=MB)
    a = p.next_segment("a")
    assert p.next_segment("b", eta_of=lambda s: 0.1, race_min_eta=1.0, steal_min_eta=0.25) is None
    assert (a.start, a.end) == (0, 8 * MB)
    b = p.next_segment("b", eta_of=lambda s: None, race_min_eta=1.0, steal_min_eta=0.25)
    assert (b.start, b.end, a.end) == (4 * MB, 8 * MB, 4 * MB)
    c = p.next_segment("c", eta_of=lambda s: 5.0, race_min_eta=1.0, steal_min_eta=0.25)
    assert c is not None and c.twin is None and c.start in (2 * MB, 6 * MB)


def test_steal_spares_a_tail_from_halving_and_a_short_tail_is_raced():
    p, slow = _slow_half_left(4 * MB, 2 * MB)
    # 2 MiB left: too little to split at -k 2M; more than a piece, so the endgame would halve
    # it, but not when it ends within steal_min_eta (and it is not raced within race_min_eta)
    assert (
        p.next_segment("fast", eta_of=lambda s: 0.1, race_min_eta=1.0, steal_min_eta=0.25) is None
    )
    assert (slow.start, slow.end) == (0, 2 * MB)
    p.advance(slow, slow.remaining - 4 * BLOCK_LENGTH)
    # the engine's estimate for a short tail of a running-on response is "never": raced
    twin = p.next_segment(
        "fast", eta_of=lambda s: float("inf"), race_min_eta=1.0, steal_min_eta=0.25
    )
    assert twin is not None and twin.twin is slow and twin.end == 2 * MB
