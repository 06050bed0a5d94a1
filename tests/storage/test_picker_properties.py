"""Picker: peers' block claims, availability, wanted pieces, endgame and blame.

Unit cases first, then a hypothesis state machine in which peers with random bitfields and range
sources join, claim, write out of order, get choked, fail hashes and leave, with the invariants
of issue 9 checked after every step and completion driven at the end (bounded).
"""

from __future__ import annotations

import random
import tracemalloc

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from trioaria.storage.bitfield import Bitfield
from trioaria.storage.picker import (
    Picker,
    RangePicker,
    Segment,
    head_tail_pieces,
    parse_prioritize_piece,
)
from trioaria.storage.pieces import BLOCK_LENGTH, PieceStorage

BL = BLOCK_LENGTH
PL = 4 * BL  # 4 blocks a piece keeps the cases small


def bits(n: int, on: set[int] | range) -> Bitfield:
    bf = Bitfield(n)
    for i in on:
        bf.set(i)
    return bf


def make(pieces: int = 8, *, seed: int = 1, **kw: object) -> Picker:
    return Picker(PieceStorage(pieces * PL, PL), min_split_size=PL, rng=random.Random(seed), **kw)  # type: ignore[arg-type]


def piece_of(block: int) -> int:
    return block // 4


# --- unit cases ---------------------------------------------------------------------------


def test_range_picker_is_the_picker() -> None:
    assert RangePicker is Picker


def test_peer_claims_only_pieces_it_has_and_finishes_pieces() -> None:
    p = make()
    p.add_source("a", bits(8, {2, 5}))
    got = p.claim_blocks("a", 6)
    assert {piece_of(b) for b in got} <= {2, 5}
    assert len(got) == 6
    assert got[:4] == [8, 9, 10, 11] or got[:4] == [20, 21, 22, 23]  # one piece before the next
    assert p.claim_blocks("a", 4) == [b for b in (*range(8, 12), *range(20, 24)) if b not in got]
    assert p.claim_blocks("a", 4) == []  # everything it has is claimed


def test_rarest_first_with_random_ties() -> None:
    p = make()
    p.add_source("a", bits(8, range(8)))
    p.add_source("b", bits(8, {1, 2, 3, 4, 5, 6, 7}))
    p.add_source("c", bits(8, {3, 4, 5, 6, 7}))
    p.add_source("seed", bits(8, range(8)))
    assert [p.availability(i) for i in range(8)] == [2, 3, 3, 4, 4, 4, 4, 4]
    first = p.claim_blocks("a", 4)
    assert {piece_of(b) for b in first} == {0}  # piece 0 is the rarest
    nxt = p.claim_blocks("a", 4)
    assert {piece_of(b) for b in nxt} <= {1, 2}
    # ties are broken at random: different seeds start on different pieces among equals
    starts = set()
    for seed in range(20):
        q = make(seed=seed)
        q.add_source("x", bits(8, range(8)))
        starts.add(piece_of(q.claim_blocks("x", 1)[0]))
    assert len(starts) > 3


def test_have_and_leaving_change_availability() -> None:
    p = make()
    p.add_source("a", bits(8, {0}))
    p.add_source("m", None)  # a mirror: has everything, does not count
    p.add_source("s", bits(8, range(8)))  # a seed counts for every piece
    assert p.availability(0) == 2 and p.availability(1) == 1
    p.source_has("a", 1)
    assert p.availability(1) == 2
    p.remove_source("s")
    assert p.availability(0) == 1 and p.availability(2) == 0


def test_started_pieces_come_first() -> None:
    p = make()
    p.add_source("a", bits(8, range(8)))
    p.add_source("b", bits(8, range(8)))
    a = p.claim_blocks("a", 2)
    b = p.claim_blocks("b", 2)
    assert piece_of(a[0]) == piece_of(b[0])  # b helps finish a's piece


def test_priority_pieces_first_then_rarest() -> None:
    p = make()
    p.add_source("a", bits(8, range(8)))
    p.add_source("b", bits(8, {0}))
    p.set_piece_priority([7, 6], 1)
    got = p.claim_blocks("a", 8)
    assert {piece_of(b) for b in got} == {6, 7}
    assert {piece_of(b) for b in p.claim_blocks("a", 4)} <= {1, 2, 3, 4, 5}  # then the rarest


def test_inorder_selector_for_peers() -> None:
    p = make(selector="inorder")
    p.add_source("a", bits(8, {1, 3, 6}))
    assert p.claim_blocks("a", 12) == [*range(4, 8), *range(12, 16), *range(24, 28)]


def test_unwanted_pieces_are_never_handed_out() -> None:
    p = make(wanted=bits(8, {1, 2}))
    p.add_source("a", bits(8, range(8)))
    got = p.claim_blocks("a", 32)
    assert {piece_of(b) for b in got} == {1, 2}
    for b in got:
        p.block_written("a", b)
    assert p.is_complete()
    p.set_wanted(bits(8, {1, 2, 3}))
    assert not p.is_complete()
    seg = p.next_segment("m")
    assert seg is not None and (seg.start, seg.end) == (3 * PL, 4 * PL)  # runs stop at unwanted


def test_range_source_with_partial_have_stays_inside() -> None:
    p = make()
    seg = p.next_segment("web", have=bits(8, {2, 3, 6}))
    assert seg is not None and (seg.start, seg.end) == (2 * PL, 4 * PL)


def test_segments_and_claims_exclude_each_other() -> None:
    p = make()
    p.add_source("a", bits(8, {0, 1}))
    claimed = p.claim_blocks("a", 6)
    seg = p.next_segment("m")
    assert seg is not None and seg.start >= 6 * BL  # the mirror's run starts after the claims
    assert not set(claimed) & set(range(seg.start // BL, seg.end // BL))
    # a peer with nothing free cuts the segment's tail (both halves >= -k) and claims there
    p.add_source("b", bits(8, range(8)))
    free_before = {b for a, e in p.gaps() for b in range(a, e)}
    got = p.claim_blocks("b", 8)
    cut = [b for b in got if b not in free_before]
    assert cut and min(cut) >= seg.end // BL and seg.end - seg.pos >= PL


def test_block_written_completes_pieces_and_records_writers() -> None:
    p = make()
    p.add_source("a", bits(8, {0}))
    got = p.claim_blocks("a", 4)
    outs = [p.block_written("a", b) for b in got]
    assert [o.pieces for o in outs] == [[], [], [], [0]]
    assert p.writers_of(0) == frozenset({"a"})
    p.piece_verified(0)
    assert p.writers_of(0) == frozenset()


def test_blocks_written_run_matches_block_by_block() -> None:
    """One call for a run (the fast path of a fast peer) leaves the picker exactly as one
    :meth:`Picker.block_written` per block does: pieces, writers, claims, counts."""
    runs = [(0, 6), (6, 9), (9, 16), (16, 17), (20, 32)]
    one, many = make(selector="inorder"), make(selector="inorder")
    for p in (one, many):
        p.add_source("a", bits(8, range(8)))
        assert p.claim_blocks("a", 32) == list(range(32))
    for first, end in runs:
        batched = one.blocks_written("a", first, end)
        singles = [many.block_written("a", b) for b in range(first, end)]
        assert batched.pieces == [p for o in singles for p in o.pieces]
        assert batched.cancels == [] and not batched.duplicate
    for p in (one, many):
        assert p.claims_of("a") == frozenset(range(17, 20))
    assert [one.writers_of(i) for i in range(8)] == [many.writers_of(i) for i in range(8)]
    assert one.statistics() == many.statistics()
    assert one.storage.completed_length == many.storage.completed_length == 29 * BL
    assert one.storage.pieces.to_bytes() == many.storage.pieces.to_bytes()
    # a run of blocks already written is a duplicate, and a run with a foreign block works
    assert one.blocks_written("a", 0, 4).duplicate
    one.add_source("b", bits(8, range(8)))
    assert one.claim_blocks("b", 2) == [17, 18]  # endgame duplicates of "a"'s claims
    out = one.blocks_written("b", 16, 20)  # "a" still held 17..19: CANCELs owed to it
    assert out.cancels == [("a", 17), ("a", 18), ("a", 19)] and out.pieces == [4]
    assert one.claims_of("a") == one.claims_of("b") == frozenset()


def test_endgame_duplicates_are_bounded_and_cancelled() -> None:
    p = make(pieces=1)
    for s in "abc":
        p.add_source(s, bits(1, {0}))
    a = p.claim_blocks("a", 4)
    assert a == [0, 1, 2, 3] and p.in_endgame
    b = p.claim_blocks("b", 4)
    assert sorted(b) == [0, 1, 2, 3]  # duplicates of a's claims
    assert p.claim_blocks("c", 4) == []  # max_duplicates = 2 claimers per block
    assert p.claim_blocks("b", 4) == []  # never a block it already holds
    out = p.block_written("b", 2)
    assert out.cancels == [("a", 2)]
    assert 2 not in p.claims_of("a")
    late = p.block_written("a", 2)
    assert late.duplicate and late.pieces == []
    for blk in (0, 1, 3):
        p.block_written("a", blk)
    assert p.is_complete() and not p.claims_of("b")


def test_mirror_races_the_blocks_peers_hold_at_the_end() -> None:
    p = make(pieces=1)
    p.add_source("slow", bits(1, {0}))
    assert p.claim_blocks("slow", 4) == [0, 1, 2, 3] and p.in_endgame
    seg = p.next_segment("mirror")
    assert seg is not None and (seg.start, seg.end) == (0, PL)
    p.advance(seg, 2 * BL)
    assert p.take_cancels() == [("slow", 0), ("slow", 1)]
    assert p.claims_of("slow") == frozenset({2, 3})
    p.block_written("slow", 2)
    out = p.block_written("slow", 3)
    assert out.pieces == [0] and out.stopped == [seg] and seg.finished
    assert p.is_complete()


def test_blocks_a_leaving_peer_held_go_to_the_mirror_racing_them() -> None:
    p = make(pieces=1)
    p.add_source("peer", bits(1, {0}))
    p.add_source("other", bits(1, {0}))
    p.claim_blocks("peer", 4)
    seg = p.next_segment("mirror")
    assert seg is not None and not seg.finished
    p.remove_source("peer")  # its claims would be free again, but the mirror is on them
    assert p.gaps() == [] and p.in_endgame
    dups = p.claim_blocks("other", 4)  # endgame: the mirror's last piece, from its end
    assert dups == [3, 2, 1, 0]
    p.advance(seg, seg.remaining)
    assert sorted(p.take_cancels()) == [("other", b) for b in range(4)]
    assert p.is_complete() and p.claims_of("other") == frozenset()


def test_unclaim_and_release_return_blocks() -> None:
    p = make(pieces=2)
    p.add_source("a", bits(2, {0, 1}))
    p.add_source("b", bits(2, {0, 1}))
    got = p.claim_blocks("a", 8)
    assert len(got) == 8
    assert p.claim_blocks("b", 1) != [] and p.in_endgame  # a duplicate
    p.unclaim("a", got[-1])
    p.release("a")
    assert p.claims_of("a") == frozenset()
    assert not p.in_endgame
    assert len(p.claim_blocks("a", 8)) >= 7


def test_piece_failed_blames_writers_and_prefers_others() -> None:
    p = make(pieces=2)
    p.add_source("bad", bits(2, {0, 1}))
    p.add_source("good", bits(2, {0, 1}))
    for b in p.claim_blocks("bad", 4):
        p.block_written("bad", b)
    assert p.storage.pieces[0]
    assert p.piece_failed(0) == frozenset({"bad"})
    assert not p.storage.pieces[0] and not p.storage.is_block_done(0)
    got = p.claim_blocks("bad", 4)
    assert {piece_of(b) for b in got} == {1}  # not piece 0 while "good" can take it
    assert {piece_of(b) for b in p.claim_blocks("good", 4)} == {0}
    p.remove_source("good")  # only the blamed one is left: it gets the piece again
    assert {piece_of(b) for b in p.claim_blocks("bad", 4)} == {0}


def test_range_source_blame_prefers_the_other_mirror() -> None:
    p = make(pieces=2)
    seg = p.next_segment("bad")
    assert seg is not None
    p.advance(seg, seg.remaining)
    p.release(seg)
    p.next_segment("good")  # nothing to do, but "good" is now known
    assert p.piece_failed(1) == frozenset({"bad"})
    assert p.next_segment("bad", endgame=False) is None
    again = p.next_segment("good")
    assert again is not None and (again.start, again.end) == (PL, 2 * PL)


def test_release_of_a_source_drops_segments_and_claims() -> None:
    p = make()
    p.add_source("m", None)
    seg = p.next_segment("m")
    assert seg is not None
    p.claim_blocks("m", 2)
    p.release("m")
    assert seg.released and not p.active and p.claims_of("m") == frozenset()
    assert p.gaps() == [(0, 32)]


def test_storage_reset_behind_the_pickers_back_is_noticed() -> None:
    p = make(pieces=2)
    seg = p.next_segment("m")
    assert seg is not None
    p.advance(seg, PL + BL)
    p.storage.reset()
    p.release(seg)
    assert not p.is_complete()
    assert p.gaps() == [(0, 8)]


def test_range_sources_alone_keep_no_per_block_state() -> None:
    """A 16 TiB claim served by mirrors only: the picker's state grows with its segments,
    not with the length (PieceStorage keeps its blocks the same way)."""
    tracemalloc.start()
    try:
        p = Picker(PieceStorage(1 << 44, 1 << 20), min_split_size=1 << 20, rng=random.Random(1))
        a = p.next_segment("m1")
        b = p.next_segment("m2")
        assert a is not None and b is not None and a.end == b.start == 1 << 43
        p.advance(a, 3 << 20)
        assert not p.is_complete() and p.gaps() == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_wanted_mask_with_range_sources_only() -> None:
    p = make(wanted=bits(8, {0, 1, 5}))
    first = p.next_segment("m")
    assert first is not None and (first.start, first.end) == (0, 2 * PL)
    second = p.next_segment("m")
    assert second is not None and (second.start, second.end) == (5 * PL, 6 * PL)
    for seg in (first, second):
        p.advance(seg, seg.remaining)
        p.release(seg)
    assert p.is_complete() and not p.storage.is_complete()
    p.set_wanted(None)
    assert not p.is_complete()
    assert p.gaps() == [(8, 20), (24, 32)]


@pytest.mark.parametrize("with_peer", [False, True], ids=["range-mode", "block-mode"])
def test_restarts_from_zero_without_range_support(with_peer: bool) -> None:
    """A server without ranges: each failure resets the storage and releases the segment."""
    p = Picker(PieceStorage(2 * PL, PL), min_split_size=PL, allow_split=False)
    if with_peer:
        p.add_source("peer", bits(2, set()))
    for _ in range(3):
        seg = p.next_segment("s")
        assert seg is not None and (seg.start, seg.end) == (0, 2 * PL)
        assert p.advance(seg, PL + 100) == [0]
        p.storage.reset()
        p.release(seg)
        assert not p.is_complete()
    seg = p.next_segment("s")
    assert seg is not None
    p.advance(seg, seg.remaining)
    assert p.is_complete()


def test_head_tail_helpers() -> None:
    assert parse_prioritize_piece("head=2M,tail") == (2 << 20, 1 << 20)
    assert parse_prioritize_piece("tail=512K") == (None, 512 << 10)
    with pytest.raises(ValueError):
        parse_prioritize_piece("middle")
    files = [(0, 10 * PL), (10 * PL, PL // 2)]
    assert head_tail_pieces(files, PL, PL, 2 * PL) == {0, 8, 9, 10}
    p = make(pieces=11)
    p.add_source("a", bits(11, range(11)))
    p.prioritize_head_tail(files, PL, PL)
    assert {piece_of(b) for b in p.claim_blocks("a", 12)} == {0, 9, 10}


def test_statistics_snapshot() -> None:
    p = make(pieces=1)
    assert p.statistics().free_blocks is None  # range mode: no per-block state
    p.add_source("a", bits(1, {0}))
    p.add_source("b", bits(1, {0}))
    p.claim_blocks("a", 4)
    p.claim_blocks("b", 2)
    stats = p.statistics()
    assert (stats.claimed_blocks, stats.duplicate_claims, stats.free_blocks) == (6, 2, 0)
    assert stats.in_endgame and stats.missing_pieces == 1


# --- the state machine --------------------------------------------------------------------


class PickerMachine(RuleBasedStateMachine):
    """Random peers and range sources against one picker; invariants after every step."""

    peers = Bundle("peers")
    piece_length = PL

    def __init__(self) -> None:
        super().__init__()
        self.picker: Picker
        self.n = 0
        self.haves: dict[str, Bitfield | None] = {}
        self.held: dict[str, set[int]] = {}  # the model of each peer's claims
        self.segs: list[Segment] = []
        self.ever_wrote: dict[int, set[str]] = {}
        self.counter = 0

    @initialize(
        pieces=st.integers(1, 12),
        short=st.integers(0, 3),
        selector=st.sampled_from(["default", "inorder", "random", "geom"]),
        wanted=st.none() | st.lists(st.booleans(), min_size=12, max_size=12),
        seed=st.integers(0, 1000),
        maxd=st.integers(1, 3),
    )
    def setup(
        self,
        pieces: int,
        short: int,
        selector: str,
        wanted: list[bool] | None,
        seed: int,
        maxd: int,
    ) -> None:
        pl = self.piece_length
        total = pieces * pl - short * BL - (7 if short else 0)
        storage = PieceStorage(max(total, 1), pl)
        self.n = storage.num_pieces
        wf = None if wanted is None else bits(self.n, {i for i in range(self.n) if wanted[i]})
        self.picker = Picker(
            storage,
            min_split_size=pl,
            selector=selector,
            rng=random.Random(seed),
            wanted=wf,
            max_duplicates=maxd,
        )

    # --- peers ---------------------------------------------------------------------------

    @rule(
        target=peers,
        on=st.sets(st.integers(0, 11)),
        kind=st.sampled_from(["partial", "seed", "mirror"]),
    )
    def add_peer(self, on: set[int], kind: str) -> str:
        self.counter += 1
        name = f"p{self.counter}"
        have: Bitfield | None
        if kind == "mirror":
            have = None
        elif kind == "seed":
            have = bits(self.n, range(self.n))
        else:
            have = bits(self.n, {i for i in on if i < self.n})
        self.picker.add_source(name, have)
        self.haves[name] = have
        self.held[name] = set()
        return name

    @rule(name=consumes(peers))
    def remove_peer(self, name: str) -> None:
        self.picker.remove_source(name)
        del self.haves[name]
        del self.held[name]
        assert self.picker.claims_of(name) == frozenset()
        assert not [s for s in self.picker.active if s.source == name]

    @rule(name=peers, i=st.integers(0, 11))
    def have(self, name: str, i: int) -> None:
        piece = i % self.n
        self.picker.source_has(name, piece)
        bf = self.haves[name]
        if bf is not None:
            bf.set(piece)

    @rule(name=peers, k=st.integers(1, 9))
    def claim(self, name: str, k: int) -> None:
        p = self.picker
        others = set().union(*(h for s, h in self.held.items() if s != name))
        got = p.claim_blocks(name, k)
        seg_blocks = self._segment_blocks()  # after: a peer may cut a segment's tail
        assert len(got) <= k and len(set(got)) == len(got)
        have = self.haves[name]
        for b in got:
            piece = self.picker.storage.block_span(b)[0] // self.picker.storage.piece_length
            assert have is None or have[piece], "claim outside the source's bitfield"
            assert p.is_wanted(piece), "claim of an unwanted piece"
            assert not p.storage.is_block_done(b)
            assert b not in self.held[name], "a block it already holds"
            if b in others or b in seg_blocks:
                assert p.in_endgame, "a duplicate claim outside the endgame"
        self.held[name].update(got)

    @rule(name=peers, i=st.integers(0, 40))
    def write(self, name: str, i: int) -> None:
        held = sorted(self.held[name])
        if not held:
            return
        b = held[i % len(held)]
        holders = {s for s, h in self.held.items() if b in h and s != name}
        was_done = self.picker.storage.is_block_done(b)
        out = self.picker.block_written(name, b)
        self.held[name].discard(b)
        assert out.duplicate == was_done
        if not was_done:
            self.ever_wrote.setdefault(
                self.picker.storage.block_span(b)[0] // self.picker.storage.piece_length, set()
            ).add(name)
            assert {s for s, _ in out.cancels} == holders  # a CANCEL for every duplicate
            for s, blk in out.cancels:
                assert blk == b
                self.held[str(s)].discard(b)

    @rule(name=peers, i=st.integers(0, 40), k=st.integers(1, 8))
    def write_run(self, name: str, i: int, k: int) -> None:
        """A read's worth of consecutive blocks the peer holds, marked with one call."""
        held = sorted(self.held[name])
        if not held:
            return
        first = end = held[i % len(held)]
        while end in self.held[name] and end - first < k:
            end += 1
        st_ = self.picker.storage
        was_done = {b: st_.is_block_done(b) for b in range(first, end)}
        holders = {
            (s, b)
            for b in range(first, end)
            if not was_done[b]
            for s, h in self.held.items()
            if b in h and s != name
        }
        out = self.picker.blocks_written(name, first, end)
        assert out.duplicate == all(was_done.values())
        assert set(out.cancels) == holders  # a CANCEL for every duplicate
        for b in range(first, end):
            self.held[name].discard(b)
            if not was_done[b]:
                self.ever_wrote.setdefault(piece_of(b), set()).add(name)
        for s, blk in out.cancels:
            self.held[str(s)].discard(blk)

    @rule(name=peers, i=st.integers(0, 40))
    def choke(self, name: str, i: int) -> None:
        held = sorted(self.held[name])
        if held:
            b = held[i % len(held)]
            self.picker.unclaim(name, b)
            self.held[name].discard(b)

    @rule(name=peers)
    def release_all(self, name: str) -> None:
        self.picker.release(name)
        self.held[name] = set()
        assert self.picker.claims_of(name) == frozenset()
        self.segs = [s for s in self.segs if s.source != name]

    # --- range sources -------------------------------------------------------------------

    @rule(name=peers, endgame=st.booleans())
    def next_segment(self, name: str, endgame: bool) -> None:
        p = self.picker
        seg = p.next_segment(name, endgame=endgame)
        if seg is None:
            return
        have = self.haves[name]
        pl = p.storage.piece_length
        for piece in range(seg.start // pl, (seg.end - 1) // pl + 1):
            assert have is None or have[piece]
        if seg.twin is None and not p.in_endgame:
            claimed = set().union(*self.held.values())
            assert not claimed & set(
                range(p.storage.block_of(seg.pos), p.storage.block_ceil(seg.end))
            )
        self.segs.append(seg)

    @rule(i=st.integers(0, 20), frac=st.floats(0.0, 1.0))
    def advance(self, i: int, frac: float) -> None:
        live = [s for s in self.segs if not s.finished]
        if not live:
            return
        seg = live[i % len(live)]
        n = max(1, int(seg.remaining * frac))
        self._advance(seg, n)

    @rule(i=st.integers(0, 20))
    def release_segment(self, i: int) -> None:
        if self.segs:
            seg = self.segs[i % len(self.segs)]
            self.picker.release(seg)
            self.segs.remove(seg)

    # --- hashes and selection ------------------------------------------------------------

    @rule(i=st.integers(0, 11))
    def fail_piece(self, i: int) -> None:
        done = [j for j in range(self.n) if self.picker.storage.pieces[j]]
        if not done:
            return
        piece = done[i % len(done)]
        blamed = self.picker.piece_failed(piece)
        assert self.ever_wrote.get(piece, set()) <= blamed
        self.ever_wrote.pop(piece, None)
        assert not self.picker.storage.pieces[piece]

    @rule(i=st.integers(0, 11))
    def verify_piece(self, i: int) -> None:
        done = [j for j in range(self.n) if self.picker.storage.pieces[j]]
        if done:
            piece = done[i % len(done)]
            self.picker.piece_verified(piece)
            self.ever_wrote.pop(piece, None)

    @rule(on=st.lists(st.booleans(), min_size=12, max_size=12))
    def set_wanted(self, on: list[bool]) -> None:
        self.picker.set_wanted(bits(self.n, {i for i in range(self.n) if on[i]}))

    # --- invariants ----------------------------------------------------------------------

    def _segment_blocks(self) -> set[int]:
        out: set[int] = set()
        for s in self.picker.active:
            if not s.finished:
                st_ = self.picker.storage
                out.update(range(st_.block_of(s.pos), st_.block_ceil(s.end)))
        return out

    def _advance(self, seg: Segment, n: int) -> None:
        self.picker.advance(seg, min(n, seg.remaining))
        for source, blk in self.picker.take_cancels():
            self.held[str(source)].discard(blk)

    @invariant()
    def claims_match_the_model(self) -> None:
        if not hasattr(self, "picker"):
            return
        p = self.picker
        for name, held in self.held.items():
            assert p.claims_of(name) == held
            for b in held:
                assert not p.storage.is_block_done(b), "a claim on a written block"
        count: dict[int, int] = {}
        for held in self.held.values():
            for b in held:
                count[b] = count.get(b, 0) + 1
        assert all(c <= p.max_duplicates for c in count.values())

    @invariant()
    def availability_is_the_sum_of_bitfields(self) -> None:
        if not hasattr(self, "picker"):
            return
        for i in range(self.n):
            expect = sum(1 for h in self.haves.values() if h is not None and h[i])
            assert self.picker.availability(i) == expect

    @invariant()
    def complete_exactly_when_every_wanted_piece_is_written(self) -> None:
        if not hasattr(self, "picker"):
            return
        p = self.picker
        expect = all(p.storage.pieces[i] for i in range(self.n) if p.is_wanted(i))
        assert p.is_complete() == expect

    def teardown(self) -> None:
        if not hasattr(self, "picker"):
            return
        # every connection finishes or drops its work; then one mirror and one seed finish
        p = self.picker
        for seg in list(self.segs):
            p.release(seg)
        for name in list(self.held):
            p.release(name)
            self.held[name] = set()
        p.add_source("final-seed", bits(self.n, range(self.n)))
        self.held["final-seed"] = set()
        for _ in range(4 * p.storage.num_blocks + 8):  # bounded
            if p.is_complete():
                break
            got = p.claim_blocks("final-seed", 3)
            for b in got:
                p.block_written("final-seed", b)
            seg = p.next_segment("final-mirror")
            if seg is not None:
                p.advance(seg, seg.remaining)
                p.release(seg)
            if not got and seg is None:
                raise AssertionError("no work offered before completion")
        assert p.is_complete()
        for i in range(self.n):
            if p.is_wanted(i):
                assert p.storage.pieces[i]


def _machine_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )


TestPickerMachine = PickerMachine.TestCase
TestPickerMachine.settings = _machine_settings(150)


class OddPiecePickerMachine(PickerMachine):
    """The same with pieces of 3 x 16 KiB + 1 bytes: four blocks, the last one byte long."""

    piece_length = 3 * BL + 1


TestOddPiecePickerMachine = OddPiecePickerMachine.TestCase
TestOddPiecePickerMachine.settings = _machine_settings(80)
