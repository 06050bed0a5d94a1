"""The FTP pool's reaper is a structured task (issue 9): started with ``nursery.start`` in the
run's services nursery before the pool is used, and cancelled with that nursery, which
closes every idle connection.  Against a real pyftpdlib server on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from tests.servers.ftp import FtpServer
from trioaria.cli.options import build_options
from trioaria.engine.source_factory import make_source, open_services
from trioaria.ftp import client as ftp_client
from trioaria.ftp.client import FtpPool, get_pool, open_pool
from trioaria.net.services import services_open, start_service

DATA = bytes(range(256)) * 1000


def _options() -> Any:
    base = {"no-netrc": "true", "connect-timeout": "10", "timeout": "10"}
    return build_options({}, {}, base=base)


async def _download(url: str) -> bytes:
    source = make_source(url, _options())
    try:
        probe = await source.probe()
        assert probe.stream is not None
        buf = memoryview(bytearray(1 << 16))
        got = bytearray()
        for _ in range(10_000):  # bounded
            n = await probe.stream.read_into(buf)
            if not n:
                break
            got += buf[:n]
        await probe.stream.finish(drained=True)
        return bytes(got)
    finally:
        await source.aclose()


def _idle(pool: FtpPool) -> list[ftp_client.FtpConnection]:
    return [c for conns in pool._idle.values() for c in conns]


async def test_reaper_runs_before_use_and_ends_with_its_nursery(
    ftp_server: FtpServer, tmp_path: Path
) -> None:
    ftp_server.add_file("r.bin", DATA)
    async with open_services():
        assert services_open()
        pool = await open_pool()
        assert pool.serving  # started (task_status.started) before open_pool returned
        assert await _download(ftp_server.url("r.bin", userinfo="test:secret")) == DATA
        assert get_pool() is pool
        idle = _idle(pool)
        assert len(idle) == 1 and not idle[0]._stream.closed
    # leaving the block cancelled the reaper, which closed the idle connection
    assert not services_open()
    assert not pool.serving
    assert pool.idle_count == 0 and idle[0]._stream.closed


async def test_reaper_expires_idle_connections(
    ftp_server: FtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ftp_client, "IDLE_SECONDS", 0.3)  # the clock is real: shorten it
    ftp_server.add_file("e.bin", DATA)
    async with open_services():
        assert await _download(ftp_server.url("e.bin", userinfo="test:secret")) == DATA
        pool = get_pool()
        (conn,) = _idle(pool)
        with trio.fail_after(5):
            while pool.idle_count:  # bounded by fail_after; the reaper wakes every 0.1 s
                await trio.sleep(0.05)
        assert conn._stream.closed


async def test_concurrent_first_users_share_one_pool_and_one_reaper() -> None:
    started: list[FtpPool] = []
    original = FtpPool.serve

    async def counting(
        self: FtpPool, *, task_status: trio.TaskStatus[FtpPool] = trio.TASK_STATUS_IGNORED
    ) -> None:
        started.append(self)
        await trio.sleep(0.05)  # a slow start: the other callers must wait for it
        await original(self, task_status=task_status)

    FtpPool.serve = counting  # type: ignore[method-assign]
    try:
        pools: list[FtpPool] = []
        async with open_services():

            async def one() -> None:
                pools.append(await open_pool())

            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(one)
        assert len(started) == 1
        assert len(pools) == 5 and all(p is pools[0] for p in pools)
    finally:
        FtpPool.serve = original  # type: ignore[method-assign]


async def test_without_services_no_task_and_start_service_says_so() -> None:
    assert not services_open()

    async def never(*, task_status: Any) -> None:  # pragma: no cover - must not run
        raise AssertionError("started without a services nursery")

    assert await start_service("x", never) is None
    pool = await open_pool()
    assert not pool.serving  # lazy expiry only: nothing runs in the background
    # a services block opened later in the same run adopts that pool and starts its reaper
    async with open_services():
        assert await open_pool() is pool and pool.serving
    assert not pool.serving
