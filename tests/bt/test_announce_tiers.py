"""The announce loop over BEP 12 tiers: a tracker URL that cannot be used (from a hostile
torrent, a magnet's ``tr``, ``--bt-tracker``) is one failed tracker and the next URL answers,
never a crash; the URLs of a tier are tried in a shuffled order.  A real HTTP tracker on
127.0.0.1 (tests/bt/tracker_server.py)."""

from __future__ import annotations

import random

import pytest
import trio

from tests.bt.tracker_server import Tracker
from trioaria.bt.announce import AnnounceCounters, AnnounceEvent, Announcer

IH = bytes(range(20))
PID = b"-TA0100-tierstierstt"


def _announcer(tiers: list[list[str]], got: list[tuple[str, int]], **kw: object) -> Announcer:
    return Announcer(
        tiers,
        info_hash=IH,
        peer_id=PID,
        port=6881,
        counters=lambda: AnnounceCounters(0, 0, 100),
        on_peers=got.extend,
        timeout=5,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "bad",
    [
        "http://t.example:99999/announce",
        "udp://t.example:70000/announce",
        "udp://t.example:abc/announce",
        "http://[::1/announce",
        "udp://a..b:6969/announce",
        "http://a..b/announce",
        "http://127.0.0.1:1/a b\x00c",  # a target no request line may carry
    ],
)
async def test_an_unusable_url_is_one_failed_tracker(bad: str) -> None:
    with Tracker(interval=900) as tracker:
        tracker.state.swarms[IH] = {("1.2.3.4", 6881): b"p" * 20}
        got: list[tuple[str, int]] = []
        # the bad URL first (the rng keeps the order) and alone in its own tier before
        ann = _announcer([[bad], [bad, tracker.url]], got, rng=_Keep())
        with trio.fail_after(10):
            interval = await ann._announce_tiers(AnnounceEvent.STARTED)
    assert interval == 900
    assert got == [("1.2.3.4", 6881)]
    assert ann.last_error.startswith(bad)


class _Keep(random.Random):
    """An rng whose shuffle keeps the order (``sample`` returns the list as it is)."""

    def sample(self, population, k, *, counts=None):  # type: ignore[no-untyped-def, override]
        return list(population)[:k]


def test_the_urls_of_a_tier_are_shuffled() -> None:
    """BEP 12: "the list will be shuffled when first read, and then parsed in order"."""
    tier = [f"http://t{i}.example/announce" for i in range(8)]
    firsts = {_announcer([tier, ["udp://u:1"]], [], rng=random.Random(seed)).tiers[0][0]
              for seed in range(20)}  # fmt: skip
    assert len(firsts) > 1
    ann = _announcer([tier], [], rng=random.Random(1))
    assert sorted(ann.tiers[0]) == sorted(tier)
    assert ann.tiers == [random.Random(1).sample(tier, len(tier))]
