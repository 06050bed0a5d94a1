"""BitTorrent options end to end: ``--bt-stop-timeout`` and ``--bt-hash-check-seed``."""

from __future__ import annotations

import os
from pathlib import Path

from tests.bt.swarm_helpers import make_torrent, run_trioaria


def test_bt_stop_timeout_stops_a_torrent_without_sources(tmp_path: Path) -> None:
    """No peer and no web seed: after 1 s without a byte the torrent stops (aria2: exit 7) and
    keeps its control file for a later resume."""
    src, dl = tmp_path / "src", tmp_path / "dl"
    src.mkdir()
    torrent = tmp_path / "lonely.torrent"
    torrent.write_bytes(make_torrent(src, [("lonely.bin", os.urandom(70_000))], name="lonely.bin"))
    res = run_trioaria(f"--dir={dl}", "--bt-stop-timeout=1", str(torrent), timeout=30)
    assert res.returncode == 7, res.stdout + res.stderr
    assert "--bt-stop-timeout" in res.stdout + res.stderr
    assert (dl / "lonely.bin.aria2").exists()
    # the results row reads as aria2's (result IN_PROGRESS -> INPR), and it ran once
    rows = [line for line in res.stdout.splitlines() if line.count("|") >= 3]
    assert len(rows) == 2 and "|INPR|" in rows[1], res.stdout
    assert "(INPR):download in-progress." in res.stdout
    assert "(ERR)" not in res.stdout
    assert res.stdout.count("Stop downloading torrent") <= 1, res.stdout


def test_hash_check_seed_false_ends_after_a_complete_check(tmp_path: Path) -> None:
    """``-V`` on complete data with ``--bt-hash-check-seed=false``: checked, done, no seeding
    (with the default ``--seed-ratio=1.0`` and no leecher it would seed forever)."""
    seed = tmp_path / "seed"
    seed.mkdir()
    payload = os.urandom(100_000)
    torrent = tmp_path / "done.torrent"
    torrent.write_bytes(make_torrent(seed, [("done.bin", payload)], name="done.bin"))
    res = run_trioaria(
        f"--dir={seed}", "-V", "--bt-hash-check-seed=false", str(torrent), timeout=30
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert (seed / "done.bin").read_bytes() == payload


def test_tiny_pieces_from_and_to_aria2c(tmp_path: Path) -> None:
    """8 KiB pieces (below the 16 KiB block, one block per piece, as aria2's ``Piece``) and a
    last piece of 3 bytes: leeched from an aria2c seed, then seeded back to an aria2c leecher."""
    from tests.bt.swarm_helpers import start_aria2c, start_trioaria, stop_process
    from tests.bt.tracker_server import Tracker

    seed, dl, again = tmp_path / "seed", tmp_path / "dl", tmp_path / "again"
    for d in (seed, dl, again):
        d.mkdir()
    payload = os.urandom(20 * 8192 + 3)
    with Tracker(interval=1) as tracker:
        torrent = tmp_path / "tiny.torrent"
        torrent.write_bytes(
            make_torrent(
                seed, [("tiny.bin", payload)], name="tiny.bin", piece_length=8192,
                announce=tracker.url,
            )
        )  # fmt: skip
        aria2c, _ = start_aria2c(torrent, seed)
        try:
            res = run_trioaria(f"--dir={dl}", "--seed-time=0", str(torrent))
        finally:
            stop_process(aria2c)
        assert res.returncode == 0, res.stdout + res.stderr
        assert (dl / "tiny.bin").read_bytes() == payload
        ours = start_trioaria(f"--dir={dl}", "-V", str(torrent))
        try:
            leech, _ = start_aria2c(torrent, again, seed=False)
            try:
                assert leech.wait(timeout=60) == 0
            finally:
                stop_process(leech)
        finally:
            stop_process(ours)
    assert (again / "tiny.bin").read_bytes() == payload


def test_seed_unverified_seeds_existing_files_without_checking(tmp_path: Path) -> None:
    """``--bt-seed-unverified``: files there without a control file are seeded as they are
    (no exit 13, no -V needed) until ``--seed-ratio``; an aria2c leecher gets them."""
    from tests.bt.swarm_helpers import start_aria2c, start_trioaria, stop_process
    from tests.bt.tracker_server import Tracker

    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(8 * 16384)
    with Tracker(interval=1) as tracker:
        torrent = tmp_path / "u.torrent"
        torrent.write_bytes(
            make_torrent(seed, [("u.bin", payload)], name="u.bin", announce=tracker.url)
        )
        ours = start_trioaria(f"--dir={seed}", "--bt-seed-unverified", str(torrent))
        try:
            leech, _ = start_aria2c(torrent, dl, seed=False)
            try:
                assert leech.wait(timeout=60) == 0
            finally:
                stop_process(leech)
            out, _ = ours.communicate(timeout=60)
        finally:
            stop_process(ours)
    assert ours.returncode == 0, out.decode()
    assert (dl / "u.bin").read_bytes() == payload
    assert not (seed / "u.bin.aria2").exists()
