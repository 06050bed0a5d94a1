"""trioaria.bt.choker: BEP 3 tit-for-tat and optimistic unchoking, aria2's slot rules."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from trioaria.bt.choker import ChokePeer, Choker


def first(seq):
    return seq[0]


def leecher(key, rate, *, interested=True, block_age=1.0, now=100.0, **kw):
    return ChokePeer(key, interested, download_rate=rate, last_block=now - block_age, **kw)


def test_leecher_unchokes_the_three_fastest_plus_one_optimistic():
    choker = Choker(first)
    assert choker.get_timer() is None
    peers = [
        leecher("slow", 10),
        leecher("a", 500),
        leecher("b", 400),
        leecher("c", 300),
        leecher("d", 200),
        leecher("snub", 10_000, snubbed=True),
        leecher("stale", 9_000, block_age=31),  # no block for 31 s: not a regular unchoker
        leecher("bored", 8_000, interested=False),
    ]
    result = choker.run(peers, 100.0, seeding=False)
    # "slow" is the first choked, interested, unsnubbed peer: the optimistic draw.
    assert result.optimistic == "slow"
    assert result.unchoked == {"a", "b", "c", "slow"}
    assert choker.get_timer() == 110.0


def test_optimistic_slot_rotates_every_third_round():
    draws = []

    def choose(seq):
        pick = seq[-1]
        draws.append(pick.key)
        return pick

    choker = Choker(choose)
    peers = [leecher(k, r) for k, r in (("a", 5), ("b", 4), ("c", 3), ("x", 1), ("y", 0))]
    optimistic = [choker.run(peers, 100.0 + 10 * i, seeding=False).optimistic for i in range(7)]
    # Drawn at rounds 0, 3 and 6 only; kept in between.
    assert optimistic == ["y"] * 7
    assert len(draws) == 3


def test_optimistic_peer_that_earns_a_regular_slot_is_replaced():
    choker = Choker(first)
    peers = [
        leecher("fast", 900),
        leecher("b", 5),
        leecher("c", 4),
        leecher("d", 3),
        leecher("e", 0),
    ]
    result = choker.run(peers, 100.0, seeding=False)
    # "fast" was drawn first, but is a regular unchoker; "d" (the first choked, interested peer
    # outside the top three) gets the optimistic slot.
    assert result.unchoked == {"fast", "b", "c", "d"} and result.optimistic == "d"


def test_leaving_optimistic_peer_is_replaced_at_once():
    choker = Choker(first)
    peers = [leecher("a", 1, block_age=99), leecher("b", 1, block_age=99)]
    assert choker.run(peers, 100.0, seeding=False).optimistic == "a"
    assert choker.run(peers[1:], 110.0, seeding=False).optimistic == "b"


def test_seeder_prefers_uploads_then_recent_unchokes_then_rate():
    choker = Choker(first)
    now = 1000.0
    peers = [
        ChokePeer("fast", True, upload_rate=900),
        ChokePeer("busy", True, upload_rate=1, uploading=True),
        ChokePeer("fresh", True, upload_rate=2, last_unchoked=now - 5),
        ChokePeer("old", True, upload_rate=3, last_unchoked=now - 50),
        ChokePeer("mid", True, upload_rate=500),
        ChokePeer("nosy", False, upload_rate=10_000),
    ]
    r0 = choker.run(peers, now, seeding=True)
    assert r0.unchoked == {"busy", "fresh", "fast", "mid"} and r0.optimistic == "mid"
    r1 = choker.run(peers, now + 10, seeding=True)
    assert r1.optimistic == "mid"
    r2 = choker.run(peers, now + 20, seeding=True)  # the third round: four regular, no optimistic
    # "fresh" is 25 s past its unchoke now: ranked by rate again, below "old".
    assert r2.optimistic is None and r2.unchoked == {"busy", "fast", "mid", "old"}


PEERS = st.lists(
    st.builds(
        ChokePeer,
        key=st.integers(0, 30),
        interested=st.booleans(),
        download_rate=st.floats(0, 1e6),
        upload_rate=st.floats(0, 1e6),
        snubbed=st.booleans(),
        last_block=st.none() | st.floats(0, 100),
        last_unchoked=st.none() | st.floats(0, 100),
        uploading=st.booleans(),
        am_choking=st.booleans(),
    ),
    max_size=25,
    unique_by=lambda p: p.key,
)


@given(PEERS, st.booleans(), st.integers(0, 2**32))
def test_invariants(peers, seeding, seed):
    rng = random.Random(seed)
    choker = Choker(rng.choice)
    for i in range(4):
        result = choker.run(peers, 100.0 + 10 * i, seeding=seeding)
        by_key = {p.key: p for p in peers}
        assert result.unchoked <= by_key.keys()
        assert len(result.unchoked) <= 4
        assert all(by_key[k].interested for k in result.unchoked)
        if not seeding:
            assert not any(by_key[k].snubbed for k in result.unchoked)
        if result.optimistic is not None:
            assert result.optimistic in result.unchoked
