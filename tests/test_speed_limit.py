"""Rate limits and ``--lowest-speed-limit`` (aria2 manual, "Advanced Options" / "HTTP/FTP Options").

Three layers are tested:

* the pure token bucket (:class:`trioaria.base.policy.SpeedLimit`) with explicit time, including a
  hypothesis model check of its two guarantees: never more than ``rate * t + burst`` bytes by
  time ``t``, and a greedy reader gets the full rate;
* the driver's read path (``Transfers.read_limited``, the one every connection uses) under
  trio's ``autojump_clock``: several connections sharing a per-download and an overall bucket,
  a limit changed at run time (RPC ``changeOption``), and throttle sleeps not counting as
  ``--timeout``;
* end to end, the ``trioaria`` CLI against nginx: ``--max-download-limit`` and
  ``--max-overall-download-limit`` hold the average speed within ±10 % over ~10 s, and
  ``--lowest-speed-limit`` gives aria2c's exit status (5) on a slow server and falls back to a
  second mirror exactly as aria2c does.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cli_util import gather, log_lines, run_aria2c, run_cli, unique_name
from tests.servers.nginx import NginxServer
from trioaria.base.errors import ExitCode
from trioaria.base.policy import BURST_SECONDS, MIN_READ, SpeedLimit, burst, min_read
from trioaria.base.sources import RangeStream
from trioaria.engine.transfer import Transfers

KiB = 1024
MiB = 1 << 20


# --- the pure token bucket ------------------------------------------------------------------


def test_unlimited_is_a_no_op() -> None:
    lim = SpeedLimit(0)
    assert not lim.limited
    assert lim.read_size(MiB, 0.0) == MiB
    assert lim.delay_for(10 * MiB, 0.0) == 0.0
    lim.consume(10 * MiB, 0.0)
    assert lim.delay_for(10 * MiB, 0.0) == 0.0
    assert lim.tokens(0.0) == math.inf


def test_bucket_starts_full_then_caps_reads_and_charges_debt() -> None:
    rate = MiB
    lim = SpeedLimit(rate)
    cap = rate * BURST_SECONDS
    assert burst(rate) == cap
    # a full bucket allows a quarter second's worth, not the whole 1 MiB buffer
    assert lim.read_size(MiB, 100.0) == int(cap)
    assert lim.delay_for(int(cap), 100.0) == 0.0
    lim.consume(int(cap), 100.0)
    # empty: the next read is the 16 KiB floor and must wait for it
    assert lim.read_size(MiB, 100.0) == MIN_READ
    assert lim.delay_for(MIN_READ, 100.0) == pytest.approx(MIN_READ / rate)
    lim.consume(MIN_READ, 100.0)
    # a second connection asking now queues behind the first one's reservation
    assert lim.delay_for(MIN_READ, 100.0) == pytest.approx(2 * MIN_READ / rate)
    # time pays the debt back
    assert lim.tokens(100.0 + MIN_READ / rate) == pytest.approx(0.0)
    # unused reservation is refunded, never beyond the burst
    lim.refund(10 * MiB, 200.0)
    assert lim.tokens(200.0) == cap


def test_low_rates_read_a_second_at_a_time() -> None:
    assert min_read(1000) == 1000
    assert min_read(10 * MiB) == MIN_READ
    lim = SpeedLimit(1000)
    assert lim.read_size(MiB, 0.0) == 1000  # the burst is one min_read here
    lim.consume(1000, 0.0)
    assert lim.delay_for(lim.read_size(MiB, 0.0), 0.0) == pytest.approx(1.0)


def test_rate_can_change_at_run_time() -> None:
    lim = SpeedLimit(4 * MiB)
    assert lim.tokens(0.0) == MiB  # full at 4 MiB/s
    lim.rate = 64 * KiB  # lowered (RPC changeOption): the stored burst shrinks at once
    assert lim.tokens(0.0) == burst(64 * KiB) == MIN_READ
    lim.rate = 0  # unlimited
    assert lim.delay_for(100 * MiB, 0.0) == 0.0
    lim.rate = MiB  # limited again: refills at the new rate
    lim.consume(int(lim.tokens(1.0)) + MiB, 1.0)
    assert lim.delay_for(1, 1.0) == pytest.approx(1.0 + 1 / MiB)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.integers(min_value=1, max_value=64 * MiB),
    steps=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=4 * MiB),  # buffer size offered
            st.floats(min_value=0.0, max_value=1.0),  # fraction the socket delivers
            st.floats(min_value=0.0, max_value=0.5),  # idle gap after the read
        ),
        min_size=1,
        max_size=60,
    ),
)
def test_model_never_exceeds_rate_plus_burst(
    rate: int, steps: list[tuple[int, float, float]]
) -> None:
    lim = SpeedLimit(rate)
    t, total = 10.0, 0
    start = t
    for want, frac, gap in steps:
        size = lim.read_size(want, t)
        assert 1 <= size <= want
        assert size <= max(burst(rate), min_read(rate))  # no read overshoots the bucket
        delay = lim.delay_for(size, t)
        lim.consume(size, t)
        t += delay
        n = int(size * frac)
        lim.refund(size - n, t)
        total += n
        # by the time a read completes, at most burst + rate * elapsed bytes were read
        assert total <= burst(rate) + rate * (t - start) + 1e-6 * rate
        t += gap


@settings(deadline=None)  # a loaded CI machine must not turn slowness into a failure
@given(rate=st.integers(min_value=1, max_value=64 * MiB))
def test_model_greedy_reader_gets_the_full_rate(rate: int) -> None:
    lim = SpeedLimit(rate)
    t, total = 0.0, 0
    while t < 10.0:
        size = lim.read_size(MiB, t)
        delay = lim.delay_for(size, t)
        lim.consume(size, t)
        t += delay
        total += size
    assert rate * t <= total <= rate * t + burst(rate) + 1e-6 * rate


# --- the driver's read path under a virtual clock -------------------------------------------


class _Endless(RangeStream):
    """A body that is always ready: every read is as large as the buffer offered."""

    def __init__(self) -> None:
        self.reads: list[int] = []

    async def read_into(self, buf: memoryview) -> int:
        await trio.lowlevel.checkpoint()
        self.reads.append(len(buf))
        return len(buf)

    async def finish(self, *, drained: bool) -> None:
        pass


async def _connections(
    limits_for: list[tuple[SpeedLimit, ...]], seconds: float, timeout: float = 60.0
) -> tuple[list[_Endless], float]:
    """Run one reader per entry of ``limits_for`` for ``seconds`` of (virtual) time."""
    streams = [_Endless() for _ in limits_for]
    start = trio.current_time()

    async def conn(stream: _Endless, limits: tuple[SpeedLimit, ...]) -> None:
        mv = memoryview(bytearray(MiB))
        with trio.CancelScope(deadline=trio.current_time() + timeout) as cs:
            while trio.current_time() - start < seconds:
                await Transfers.read_limited(stream, mv, limits, cs)
                cs.deadline = max(cs.deadline, trio.current_time() + timeout)
        assert not cs.cancelled_caught, "a throttle sleep counted as --timeout"

    async with trio.open_nursery() as nursery:
        for stream, limits in zip(streams, limits_for, strict=True):
            nursery.start_soon(conn, stream, limits)
    return streams, trio.current_time() - start


async def test_connections_share_download_and_overall_buckets(autojump_clock: object) -> None:
    overall = SpeedLimit(MiB)
    per_a, per_b = SpeedLimit(256 * KiB), SpeedLimit(0)
    # download A (3 connections) is capped at 256 KiB/s; B (2 connections) takes the rest of
    # the overall 1 MiB/s
    limits = [(per_a, overall)] * 3 + [(per_b, overall)] * 2
    streams, elapsed = await _connections(limits, 10.0)
    a = sum(sum(s.reads) for s in streams[:3])
    b = sum(sum(s.reads) for s in streams[3:])
    assert elapsed == pytest.approx(10.0, abs=0.2)
    assert a == pytest.approx(256 * KiB * elapsed, rel=0.05)
    assert a + b == pytest.approx(MiB * elapsed, rel=0.05)
    for s in streams:  # every connection makes progress; no read exceeds a bucket's burst
        assert sum(s.reads) > 0
        assert max(s.reads) <= burst(MiB)
    for s in streams[:3]:
        assert max(s.reads) <= burst(256 * KiB)


async def test_limit_changed_while_running(autojump_clock: object) -> None:
    lim = SpeedLimit(128 * KiB)
    streams = [_Endless(), _Endless()]
    marks: list[int] = []

    async def conn(stream: _Endless) -> None:
        mv = memoryview(bytearray(MiB))
        with trio.CancelScope() as cs:
            while trio.current_time() < 10.0:
                await Transfers.read_limited(stream, mv, (lim,), cs)

    async def change() -> None:
        await trio.sleep_until(5.0)
        marks.append(sum(sum(s.reads) for s in streams))
        lim.rate = MiB  # RPC changeOption max-download-limit=1M

    async with trio.open_nursery() as nursery:
        nursery.start_soon(change)
        for s in streams:
            nursery.start_soon(conn, s)
    first = marks[0]
    second = sum(sum(s.reads) for s in streams) - first
    assert first == pytest.approx(128 * KiB * 5, rel=0.1)
    assert second == pytest.approx(MiB * 5, rel=0.1)


async def test_throttle_sleep_is_not_a_read_timeout(autojump_clock: object) -> None:
    # 4 connections at 16 KiB/s: each waits ~4 s per 16 KiB read, far beyond a 1 s --timeout
    lim = SpeedLimit(16 * KiB)
    streams, elapsed = await _connections([(lim,)] * 4, 20.0, timeout=1.0)
    total = sum(sum(s.reads) for s in streams)
    assert total == pytest.approx(16 * KiB * elapsed, rel=0.1)


# --- end to end -----------------------------------------------------------------------------


def _avg_speeds(stdout: str) -> list[float]:
    """Bytes/s of every row of the "Download Results" table."""
    units = {"B": 1, "KiB": KiB, "MiB": MiB}
    out = []
    for m in re.finditer(r"^\w{6}\|OK  \|\s*([\d.,]+)(B|KiB|MiB)/s\|", stdout, re.M):
        out.append(float(m.group(1).replace(",", "")) * units[m.group(2)])
    return out


async def test_download_limits_hold_within_ten_percent(nginx: NginxServer, tmp_path: Path) -> None:
    rate = 512 * KiB
    one, two, three = unique_name("lim"), unique_name("ovl-a"), unique_name("ovl-b")
    data = os.urandom(5 * MiB)  # 10 s at the limit
    half = os.urandom(5 * MiB // 2)  # two of these share the overall limit: 10 s
    nginx.add_file(one, data)
    nginx.add_file(two, half)
    nginx.add_file(three, half)
    per, overall = await gather(
        lambda: run_cli(
            f"--max-download-limit={rate}", "-x4", "-s4", "-k1M", "-d", tmp_path / "a",
            nginx.url(f"/{one}"), home=tmp_path / "h1",
        ),
        lambda: run_cli(
            f"--max-overall-download-limit={rate}", "-Z", "-j2", "-x2", "-s2", "-k1M",
            "-d", tmp_path / "b", nginx.url(f"/{two}"), nginx.url(f"/{three}"),
            home=tmp_path / "h2",
        ),
    )  # fmt: skip
    assert per.returncode == 0, per
    assert overall.returncode == 0, overall
    assert (tmp_path / "a" / one).read_bytes() == data
    assert (tmp_path / "b" / two).read_bytes() == half
    assert (tmp_path / "b" / three).read_bytes() == half
    # the bytes took at least 90 % of the time the limit implies (process start-up only adds)
    assert per.elapsed >= 0.9 * len(data) / rate, per
    assert overall.elapsed >= 0.9 * 2 * len(half) / rate, overall
    # and the measured average speed is the limit, ±10 %
    (speed,) = _avg_speeds(per.stdout)
    assert speed == pytest.approx(rate, rel=0.1), per
    speeds = _avg_speeds(overall.stdout)
    assert len(speeds) == 2, overall
    # both started together, so all the bytes took as long as the slower one: 2 x its average
    assert 2 * min(speeds) == pytest.approx(rate, rel=0.1), overall
    # several connections were used under the limit, all from the same shared bucket
    assert len({line.connection for line in log_lines(nginx, f"/{one}")}) >= 2


async def test_lowest_speed_limit_like_aria2c(nginx: NginxServer, tmp_path: Path) -> None:
    """aria2 checks each connection after --startup-idle-time (10 s): at or below the limit it is
    closed and its URI fails; exit 5 unless another mirror completes the file."""
    name = unique_name("lowest")
    data = os.urandom(5 * MiB)  # 5 min at 16 KiB/s: only the speed check can end it in time
    nginx.add_file(name, data)
    slow, fast = nginx.url(f"/rate/16k/{name}"), nginx.url(f"/{name}")
    common = ("--lowest-speed-limit=100K", "--uri-selector=inorder", "--max-tries=1")
    ours, theirs, ours_m, theirs_m = await gather(
        lambda: run_cli(*common, "-d", tmp_path / "a", slow, home=tmp_path / "h1"),
        lambda: run_aria2c(*common, "-d", tmp_path / "b", slow, home=tmp_path / "h2"),
        lambda: run_cli(
            *common, "-d", tmp_path / "c", "-o", "m.bin", slow, fast, home=tmp_path / "h3"
        ),
        lambda: run_aria2c(
            *common, "-d", tmp_path / "d", "-o", "m.bin", slow, fast, home=tmp_path / "h4"
        ),
    )
    assert theirs.returncode == ExitCode.TOO_SLOW_DOWNLOAD_SPEED, theirs
    assert ours.returncode == ExitCode.TOO_SLOW_DOWNLOAD_SPEED, ours
    assert "Too slow" in ours.stdout + ours.stderr, ours
    assert 10 <= ours.elapsed < 30, ours
    # the partial data is kept for a later -c, as aria2 does
    assert (tmp_path / "a" / f"{name}.aria2").exists()
    # with a second mirror the slow one is dropped and the other finishes the file
    assert theirs_m.returncode == 0, theirs_m
    assert ours_m.returncode == 0, ours_m
    assert (tmp_path / "c" / "m.bin").read_bytes() == data
    assert 10 <= ours_m.elapsed < 30, ours_m
    ranged = [line.range for line in log_lines(nginx, f"/{name}") if line.range]
    assert any(re.match(r"bytes=[1-9]\d*-", r) for r in ranged), ranged  # resumed, not restarted
