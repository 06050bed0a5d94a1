"""``--bt-request-peer-speed-limit`` (how many peers a leecher dials) and ``--bt-max-open-files``
(descriptors a multi-file download keeps open), aria2's rules (issue 10, part 2)."""

from __future__ import annotations

import os
from pathlib import Path

import trio
import trio.testing

from tests.bt.swarm_helpers import make_torrent, run_trioaria, start_aria2c, stop_process
from tests.bt.tracker_server import Tracker
from trioaria.bt.swarm import MIN_PEERS, Swarm
from trioaria.storage.session import StorageSession

PIECE = 32768


def _swarm(tmp_path: Path, *, max_peers: int, limit: int) -> Swarm:
    session = StorageSession(
        str(tmp_path / "d"),
        [("a.bin", 4 * PIECE)],
        piece_length=PIECE,
        control_path=str(tmp_path / "d.aria2"),
    )
    return Swarm(
        b"i" * 20, b"p" * 20, meta=None, session=session, max_peers=max_peers,
        request_peer_speed_limit=limit,
    )  # fmt: skip


def _fill(swarm: Swarm, count: int) -> None:
    swarm._connecting = {("127.0.0.1", 10000 + i) for i in range(count)}


def test_slow_leecher_dials_past_max_peers(tmp_path: Path) -> None:
    async def main() -> None:
        swarm = _swarm(tmp_path, max_peers=55, limit=50 * 1024)
        _fill(swarm, 55)
        assert swarm._dial_room()  # nothing arrives: below the limit, up to 2 x 55
        _fill(swarm, 110)
        assert not swarm._dial_room()

    trio.run(main, clock=trio.testing.MockClock())


def test_fast_leecher_stops_at_min_peers(tmp_path: Path) -> None:
    async def main() -> None:
        swarm = _swarm(tmp_path, max_peers=55, limit=50 * 1024)
        now = trio.current_time()
        for i in range(20):  # 1 MiB/s for the meter's window
            swarm.down_meter.add(1 << 20, now - 1 + i / 20)
        _fill(swarm, MIN_PEERS - 1)
        assert swarm._dial_room()
        _fill(swarm, MIN_PEERS)
        assert not swarm._dial_room()  # fast enough: no new peer past aria2's minimum

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_without_a_limit_max_peers_holds(tmp_path: Path) -> None:
    async def main() -> None:
        swarm = _swarm(tmp_path, max_peers=5, limit=0)
        _fill(swarm, 4)
        assert swarm._dial_room()
        _fill(swarm, 5)
        assert not swarm._dial_room()

    trio.run(main, clock=trio.testing.MockClock())


def test_max_open_files_bounds_descriptors(tmp_path: Path) -> None:
    # eight files written in turn through a session that may keep two open
    session = StorageSession(
        str(tmp_path / "d"),
        [(f"f{i}.bin", 1000) for i in range(8)],
        piece_length=PIECE,
        control_path=str(tmp_path / "d.aria2"),
        max_open_files=2,
    )
    trio.run(session.open, "new")
    try:
        for i in range(8):
            session.disk.write(i * 1000, b"x" * 1000)
            assert session.disk.statistics().open_files <= 2
    finally:
        trio.run(session.disk.aclose)


def test_multi_file_torrent_with_one_open_file(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    files = [(f"d/f{i}.bin", os.urandom(50_000 + i)) for i in range(6)]
    with Tracker(interval=1) as tracker:
        torrent = tmp_path / "m.torrent"
        torrent.write_bytes(
            make_torrent(seed, files, name="m", piece_length=PIECE, announce=tracker.url)
        )
        aria2c, _ = start_aria2c(torrent, seed)
        try:
            res = run_trioaria(
                f"--dir={dl}", "--seed-time=0", "--bt-max-open-files=1", str(torrent)
            )
        finally:
            stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    for rel, data in files:
        assert (dl / "m" / rel).read_bytes() == data


def test_candidates_are_bounded(tmp_path: Path) -> None:
    """A peer flooding PEX (100 fresh addresses a message, as often as it likes) cannot grow the
    list of addresses waiting to be dialled past aria2's 1024; the newest stay."""
    from trioaria.bt.swarm import MAX_CANDIDATES

    async def main() -> None:
        swarm = _swarm(tmp_path, max_peers=55, limit=0)
        for k in range(50):
            swarm.add_peers((f"10.{k}.{i // 250}.{i % 250}", 6881) for i in range(100))
        assert len(swarm._candidates) == MAX_CANDIDATES
        assert ("10.49.0.99", 6881) in swarm._candidates
        assert ("10.0.0.0", 6881) not in swarm._candidates

    trio.run(main, clock=trio.testing.MockClock())
