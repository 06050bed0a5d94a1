"""Endgame: one very slow mirror among fast ones must not hold up the finish.

aria2 splits the largest remaining segment when a connection frees up and, at the very end,
lets idle connections race the slowest one; ``storage.picker.RangePicker`` does the same
(halving the slow tail, then racing its last piece).  The requirement tested here is the
functional property: with four mirror URIs of one file, one throttled to 50 KiB/s, the download
finishes no more than 2 s later than the same download from the three fast mirrors alone.
Without an endgame the slow connection's last piece alone (1 MiB at 50 KiB/s) would take 20 s.

All mirrors live on the one nginx (different ``/rate/<N>k/`` paths), so they share the per-host
cap ``-x``: ``-x4 -s4`` gives every mirror a connection.  Both downloads run at the same time
(rate limits are per connection) so they see the same machine load.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e_util import make_payload, nginx_bytes_sent, sha256_file, start_trioaria

__all__: list[str] = []

SIZE = 16 << 20
FAST_RATES_KIB = (2048, 2049, 1024)  # distinct paths: three mirrors; the last one moderate
SLOW_RATE_KIB = 50
ALLOWED_DELAY = 2.0


def _args(out: Path, agent: str, uris: list[str]) -> list[str]:
    return [
        "-x4",
        "-s4",
        "-k1M",
        "-d",
        str(out),
        "--summary-interval=0",
        "--show-console-readout=false",
        f"--user-agent={agent}",
        *uris,
    ]


@pytest.mark.parametrize("slow_index", [0, 2], ids=["slow-first", "slow-third"])
def test_slow_mirror_does_not_delay_finish(nginx, tmp_path: Path, slow_index: int) -> None:
    name = f"endgame-{slow_index}.bin"
    nginx.add_file(name, make_payload(SIZE, 0xE6 + slow_index))
    digest = sha256_file(nginx.root / name)
    fast = [nginx.url(f"/rate/{rate}k/{name}") for rate in FAST_RATES_KIB]
    slow = nginx.url(f"/rate/{SLOW_RATE_KIB}k/{name}")
    four = list(fast)
    four.insert(slow_index, slow)

    agents = {"three": f"endgame-{slow_index}-three", "four": f"endgame-{slow_index}-four"}
    runs = {}
    try:
        for key, uris in (("three", fast), ("four", four)):
            out = tmp_path / key
            runs[key] = start_trioaria(_args(out, agents[key], uris), out, key)
        elapsed = {}
        for key, run in runs.items():
            code = run.wait(90)
            elapsed[key] = run.elapsed()
            assert code == 0, run.describe()
            assert sha256_file(tmp_path / key / name) == digest, key
    finally:
        for run in runs.values():
            run.kill()

    # The slow mirror must really have been used, or this test proves nothing.
    _, lines = nginx_bytes_sent(nginx.access_log, agents["four"])
    slow_path = f"/rate/{SLOW_RATE_KIB}k/"
    assert any(slow_path in x.request for x in lines), [x.request for x in lines]
    assert elapsed["four"] <= elapsed["three"] + ALLOWED_DELAY, (
        f"four mirrors (one at {SLOW_RATE_KIB} KiB/s) took {elapsed['four']:.2f}s,"
        f" three fast mirrors {elapsed['three']:.2f}s\n" + runs["four"].describe()
    )


async def test_eta_of_a_short_tail_of_a_running_on_response_is_never() -> None:
    """``Transfers._eta_of``: the speed estimate of a segment with at most ``SHORT_TAIL`` bytes
    left whose response runs on past it (the probe's, a split victim's) is "never", so an idle
    connection races it (a paced server holds those bytes for its next burst); the same tail of
    an exact range keeps its estimate, and a connection with no speed yet has none (None)."""
    import trio

    from trioaria.base.speed import SpeedMeter
    from trioaria.engine.transfer import SHORT_TAIL, Transfers
    from trioaria.storage.picker import Segment

    t = Transfers.__new__(Transfers)
    t._seg_meters, t._seg_req_ends = {}, {}
    seg = Segment(id=1, start=0, end=8 << 20, pos=(8 << 20) - SHORT_TAIL)
    assert t._eta_of(seg) is None  # not reading yet
    meter = SpeedMeter(trio.current_time() - 1.0)
    meter.add(20 << 20, trio.current_time() - 0.5)
    t._seg_meters[seg.id] = meter
    t._seg_req_ends[seg.id] = seg.end  # an exact range: the estimate stands
    exact = t._eta_of(seg)
    assert exact is not None and exact < 0.1
    t._seg_req_ends[seg.id] = 64 << 20  # the response runs on past the segment
    assert t._eta_of(seg) == float("inf")
    seg.pos -= 1  # one byte more than a short tail: the estimate stands again
    assert t._eta_of(seg) == pytest.approx(exact, rel=0.01)
