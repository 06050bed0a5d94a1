"""The --uri-selector policies (trioaria.engine.uri_selector): aria2's inorder, feedback, adaptive."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.engine.uri_selector import (
    DAY,
    AdaptiveSelector,
    Candidate,
    FeedbackSelector,
    InorderSelector,
    make_selector,
)

KiB = 1024


def c(index: int, **kw: object) -> Candidate:
    kw.setdefault("host", f"h{index}")
    return Candidate(index=index, **kw)  # type: ignore[arg-type]


# --- inorder --------------------------------------------------------------------------------


def test_inorder_round_robin_then_backups() -> None:
    sel = InorderSelector()
    # -s2 with three URIs: the first two in turn, the third is a backup
    assert sel.select([c(0), c(1), c(2)], context="first").index == 0  # type: ignore[union-attr]
    pick = sel.select([c(0, connections=1), c(1), c(2)], context="supplementary")
    assert pick is not None and pick.index == 1
    pick = sel.select([c(0, connections=1), c(1, connections=1), c(2)], context="replacement")
    assert pick is not None and pick.index == 2  # only when the first two are busier
    # speeds do not matter to inorder
    pick = sel.select([c(0, speed=1), c(1, speed=10**9)], context="first")
    assert pick is not None and pick.index == 0


def test_empty_candidates_give_none() -> None:
    for name in ("inorder", "feedback", "adaptive"):
        assert make_selector(name, split=4).select([], context="first") is None


def test_unknown_selector_name() -> None:
    with pytest.raises(ValueError, match="uri-selector"):
        make_selector("random")


# --- feedback -------------------------------------------------------------------------------


def test_feedback_fastest_unused_host_first() -> None:
    sel = FeedbackSelector()
    cands = [c(0, speed=30 * KiB), c(1, speed=900 * KiB), c(2)]
    pick = sel.select(cands, context="first")
    assert pick is not None and pick.index == 1


def test_feedback_slow_or_unknown_in_list_order() -> None:
    sel = FeedbackSelector()
    # at or below 20 KiB/s is not "fast": list order decides, untested ones included
    pick = sel.select([c(0, speed=10 * KiB), c(1)], context="first")
    assert pick is not None and pick.index == 0
    pick = sel.select([c(0), c(1, speed=10 * KiB)], context="first")
    assert pick is not None and pick.index == 0


def test_feedback_avoids_error_records() -> None:
    sel = FeedbackSelector()
    pick = sel.select([c(0, error=True, speed=0), c(1)], context="first")
    assert pick is not None and pick.index == 1
    # ... unless nothing else is left
    pick = sel.select([c(0, error=True, speed=0)], context="first")
    assert pick is not None and pick.index == 0


def test_feedback_spreads_over_hosts_then_prefers_speed_per_connection() -> None:
    sel = FeedbackSelector()
    # host h1 not in use yet: it comes first even though h0 is known fast
    cands = [c(0, speed=5000 * KiB, connections=1, host_connections=1), c(1, speed=100 * KiB)]
    pick = sel.select(cands, context="replacement")
    assert pick is not None and pick.index == 1
    # every host in use: the best per-connection speed wins
    cands = [
        c(0, speed=100 * KiB, connections=1, host_connections=1),
        c(1, speed=5000 * KiB, connections=3, host_connections=3),
    ]
    pick = sel.select(cands, context="replacement")
    assert pick is not None and pick.index == 1
    # an untested source (no connection yet) on a busy host is tried before that
    cands.append(c(2, host="h1", host_connections=3))
    pick = sel.select(cands, context="replacement")
    assert pick is not None and pick.index == 2


# --- adaptive -------------------------------------------------------------------------------


def test_adaptive_tests_three_mirrors_first() -> None:
    sel = AdaptiveSelector(split=4, rng=random.Random(1))
    # one known fast mirror, two untested: aria2 wants three tested, so an untested one goes
    cands = [c(0, speed=5000 * KiB), c(1), c(2)]
    pick = sel.select(cands, context="first")
    assert pick is not None and pick.index == 1


def test_adaptive_best_mirror_for_first_and_replacements() -> None:
    sel = AdaptiveSelector(split=4, rng=random.Random(1))
    cands = [c(0, speed=50 * KiB), c(1, speed=5000 * KiB), c(2, speed=100 * KiB)]
    for ctx in ("first", "replacement"):
        pick = sel.select(cands, context=ctx)  # type: ignore[arg-type]
        assert pick is not None and pick.index == 1


def test_adaptive_random_among_mirrors_within_25_percent() -> None:
    sel = AdaptiveSelector(split=1, rng=random.Random(7))
    cands = [c(0, speed=1000), c(1, speed=900), c(2, speed=700)]
    seen = {sel.select(cands, context="replacement").index for _ in range(200)}  # type: ignore[union-attr]
    assert seen == {0, 1}  # 700 is more than 25 % below the best


def test_adaptive_supplementary_connections_evaluate() -> None:
    sel = AdaptiveSelector(split=3, rng=random.Random(1))
    now = 100 * DAY
    cands = [
        c(0, speed=5000 * KiB, last_updated=now, counter=3),
        c(1, speed=10 * KiB, last_updated=now - 3 * DAY, counter=1),  # due: 2**1 days
        c(2, speed=20 * KiB, last_updated=now, counter=1),
        c(3),  # untested
    ]
    first = sel.select(cands, context="supplementary", now=now)
    assert first is not None and first.index == 3
    second = sel.select(cands[:3], context="supplementary", now=now)
    assert second is not None and second.index == 1
    # the evaluation budget (split - 1 = 2) is spent: the best mirror from now on
    third = sel.select(cands, context="supplementary", now=now)
    assert third is not None and third.index == 0


def test_adaptive_without_any_speed_round_robins() -> None:
    sel = AdaptiveSelector(split=4, rng=random.Random(1))
    cands = [c(0, connections=1), c(1, connections=1)]  # both under test, nothing measured
    pick = sel.select(cands, context="supplementary")
    assert pick is not None and pick.index == 0
    pick = sel.select([c(0, connections=2), c(1, connections=1)], context="supplementary")
    assert pick is not None and pick.index == 1


def test_probe_order() -> None:
    cands = [c(0, speed=50 * KiB), c(1, speed=5000 * KiB)]
    assert [x.index for x in InorderSelector().order(cands)] == [0, 1]
    assert [x.index for x in FeedbackSelector().order(cands)] == [1, 0]
    assert [x.index for x in AdaptiveSelector(2).order(cands)] == [1, 0]


# --- properties -----------------------------------------------------------------------------

candidates = st.lists(
    st.builds(
        Candidate,
        index=st.integers(0, 50),
        host=st.sampled_from(["a", "b", "c", "d"]),
        connections=st.integers(0, 8),
        host_connections=st.integers(0, 8),
        speed=st.none() | st.integers(0, 10**9),
        error=st.booleans(),
        last_updated=st.none() | st.floats(0, 10**9, allow_nan=False),
        counter=st.integers(0, 20),
    ),
    max_size=12,
    unique_by=lambda x: x.index,
)


@given(
    candidates,
    st.sampled_from(["inorder", "feedback", "adaptive"]),
    st.sampled_from(["first", "supplementary", "replacement"]),
    st.integers(1, 16),
    st.integers(0, 2**32),
)
def test_selection_is_always_a_candidate(cands, name, ctx, split, seed) -> None:
    sel = make_selector(name, split=split, rng=random.Random(seed))
    for _ in range(3):
        pick = sel.select(cands, context=ctx, now=5e8)
        if cands:
            assert pick in cands
        else:
            assert pick is None
    order = sel.order(cands, now=5e8)
    assert sorted(x.index for x in order) == sorted(x.index for x in cands)


@given(candidates)
def test_feedback_never_picks_error_when_a_clean_one_exists(cands) -> None:
    pick = FeedbackSelector().select(cands, context="replacement")
    if any(not x.error for x in cands):
        assert pick is not None and not pick.error
