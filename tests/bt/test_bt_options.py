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
