"""The console readout while seeding: aria2's ``[#gid SEED(ratio) CN:n SD:n UL:speed(total)]``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.bt.swarm_helpers import make_torrent, start_aria2c, start_trioaria, stop_process
from tests.bt.tracker_server import Tracker

SEED_LINE = re.compile(r"\[#[0-9a-f]{6} SEED\((\d+\.\d)\) CN:(\d+) SD:0 UL:[^(\]]+\(([^)]+)\)\]")


def test_readout_shows_seed_ratio_while_seeding(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(1536 * 1024)
    with Tracker(interval=1) as tracker:
        torrent = tmp_path / "r.torrent"
        torrent.write_bytes(
            make_torrent(seed, [("r.bin", payload)], name="r.bin", announce=tracker.url)
        )
        # -V finds the data complete, so trioaria seeds to --seed-ratio=1.0; the leecher takes
        # about 3 s (512 KiB/s), and a piped readout prints one line per second
        ours = start_trioaria(f"--dir={seed}", "-V", str(torrent))
        try:
            leech, _ = start_aria2c(torrent, dl, seed=False, extra=("--max-download-limit=512K",))
            try:
                assert leech.wait(timeout=90) == 0
            finally:
                stop_process(leech)
            out, _ = ours.communicate(timeout=60)
        finally:
            stop_process(ours)
    text = out.decode()
    assert ours.returncode == 0, text
    assert (dl / "r.bin").read_bytes() == payload
    seeding = SEED_LINE.findall(text)
    assert seeding, text
    ratios = [float(r) for r, _cn, _ul in seeding]
    assert ratios == sorted(ratios) and 0 < ratios[-1] <= 1.0  # it stops at --seed-ratio=1.0
    assert any(int(cn) >= 1 for _r, cn, _ul in seeding)
