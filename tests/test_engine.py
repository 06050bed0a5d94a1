"""DownloadEngine and RequestGroup in-process, against a real loopback Range server.

The server is trioaria.demo's (a real HTTP/1.1 server with Range); nginx-based end-to-end tests live
in the CLI test modules.
"""

from __future__ import annotations

import random

import pytest
import trio

from trioaria.base.errors import LocalProtocolError
from trioaria.base.stats import DownloadStatus
from trioaria.cli.options import Options
from trioaria.demo import serve_bytes
from trioaria.engine.group import RequestGroup
from trioaria.engine.lifecycle import transition
from trioaria.engine.queue import DownloadEngine

MB = 1 << 20
DATA = random.Random(5).randbytes(3 * MB + 123)


@pytest.fixture(scope="module")
def url() -> str:
    port = serve_bytes(DATA, rate=8 * MB)
    return f"http://127.0.0.1:{port}/data.bin"


def _opts(tmp_path, **extra: str) -> Options:
    base = {
        "dir": str(tmp_path),
        "split": "4",
        "max-connection-per-server": "4",
        "min-split-size": "1M",
    }
    base.update(extra)
    return Options.defaults().with_overrides(base)


def test_lifecycle_table_rejects_impossible_changes():
    assert transition(DownloadStatus.WAITING, "start") is DownloadStatus.ACTIVE
    assert transition(DownloadStatus.ACTIVE, "stop") is DownloadStatus.WAITING
    with pytest.raises(LocalProtocolError):
        transition(DownloadStatus.COMPLETE, "start")


async def test_group_downloads_segmented_and_reports_statistics(tmp_path, url):
    group = RequestGroup([url], _opts(tmp_path))
    await group.run()
    assert group.state is DownloadStatus.COMPLETE, group.error
    stats = group.statistics()
    assert stats.total_length == len(DATA) == stats.completed_length
    assert stats.num_pieces == 4
    assert stats.bitfield == b"\xf0"
    assert (tmp_path / "data.bin").read_bytes() == DATA
    assert not (tmp_path / "data.bin.aria2").exists()
    assert group.bytes_fetched == len(DATA)


async def test_engine_respects_max_concurrent_downloads(tmp_path, url):
    opts = _opts(tmp_path, **{"max-concurrent-downloads": "1", "auto-file-renaming": "true"})
    engine = DownloadEngine(opts)
    groups = [RequestGroup([url], opts) for _ in range(3)]
    engine.add_many(groups)
    seen_active = []

    async def sample() -> None:
        for _ in range(400):
            seen_active.append(engine.statistics().num_active)
            await trio.sleep(0.01)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        await engine.run()
        nursery.cancel_scope.cancel()
    assert max(seen_active) == 1
    assert engine.exit_code() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.1.bin", "data.2.bin", "data.bin"]
    assert all(g.state is DownloadStatus.COMPLETE for g in groups)


async def test_engine_shutdown_leaves_resumable_state(tmp_path):
    port = serve_bytes(DATA, rate=256 * 1024)
    slow_url = f"http://127.0.0.1:{port}/slow.bin"
    opts = _opts(tmp_path)
    engine = DownloadEngine(opts)
    group = RequestGroup([slow_url], opts)
    engine.add(group)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine.run)
        with trio.fail_after(10):
            while group.statistics().completed_length < MB // 2:
                await trio.sleep(0.05)
        engine.shutdown()
    assert group.state is DownloadStatus.WAITING
    assert engine.exit_code() == 7
    assert (tmp_path / "slow.bin.aria2").exists()
    # resume in-process: only the missing bytes are fetched
    done_before = group.statistics().completed_length
    again = RequestGroup([slow_url], _opts(tmp_path, **{"continue": "true"}))
    await again.run()
    assert again.state is DownloadStatus.COMPLETE, again.error
    assert (tmp_path / "slow.bin").read_bytes() == DATA
    assert again.bytes_fetched <= len(DATA) - done_before + 4 * MB
