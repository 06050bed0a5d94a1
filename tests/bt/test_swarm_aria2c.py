"""trioaria's BitTorrent engine end to end against aria2c on 127.0.0.1.

aria2c seeds and trioaria leeches (through a local HTTP tracker, tests/bt/tracker_server.py);
trioaria seeds (``-V`` on existing data, default ``--seed-ratio=1.0``) and aria2c leeches;
``--select-file`` on a multi-file torrent; a magnet link whose metadata comes from aria2c over
BEP 9 (``x.pe`` names the peer); resume after ``kill -9`` from the ``.aria2`` file with the
BitTorrent bit and info hash.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.bt.swarm_helpers import (
    make_torrent,
    run_trioaria,
    start_aria2c,
    start_trioaria,
    stop_process,
)
from tests.bt.tracker_server import Tracker
from trioaria.bt.metainfo import parse_torrent
from trioaria.storage import control_file as cf

PEER_ID = b"-TA0100-"


@pytest.fixture
def tracker():
    with Tracker(interval=1) as t:
        yield t


def test_leech_from_aria2c_with_tracker_events(tmp_path: Path, tracker: Tracker) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(3 * 1024 * 1024 + 777)
    torrent = tmp_path / "p.torrent"
    torrent.write_bytes(
        make_torrent(
            seed, [("p.bin", payload)], name="p.bin", piece_length=65536, announce=tracker.url
        )
    )
    meta = parse_torrent(torrent.read_bytes())
    aria2c, _ = start_aria2c(torrent, seed)
    try:
        res = run_trioaria(f"--dir={dl}", "--seed-time=0", str(torrent))
    finally:
        stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "p.bin").read_bytes() == payload
    assert not (dl / "p.bin.aria2").exists()
    ours = [a for a in tracker.state.announces if a.peer_id.startswith(PEER_ID)]
    assert ours[0].event == "started"
    assert ours[0].left == len(payload) and ours[0].info_hash == meta.info_hash
    assert [a.event for a in ours][-2:] == ["completed", "stopped"]
    assert ours[-1].left == 0 and ours[-1].downloaded >= len(payload)


def test_seed_to_aria2c_until_ratio(tmp_path: Path, tracker: Tracker) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(2 * 1024 * 1024 + 5)
    torrent = tmp_path / "s.torrent"
    torrent.write_bytes(
        make_torrent(seed, [("s.bin", payload)], name="s.bin", announce=tracker.url)
    )
    # trioaria verifies the existing file (-V) and seeds until it uploaded the whole size
    # once (the default --seed-ratio=1.0); aria2c leeches and stops when done.
    ours = start_trioaria(f"--dir={seed}", "-V", str(torrent))
    try:
        leech, _ = start_aria2c(torrent, dl, seed=False)
        try:
            assert leech.wait(timeout=90) == 0
        finally:
            stop_process(leech)
        out, _ = ours.communicate(timeout=60)
    finally:
        stop_process(ours)
    assert ours.returncode == 0, out.decode()
    assert (dl / "s.bin").read_bytes() == payload
    mine = [a for a in tracker.state.announces if a.peer_id.startswith(PEER_ID)]
    assert mine[0].event == "started" and mine[0].left == 0
    assert mine[-1].event == "stopped" and mine[-1].uploaded >= len(payload)
    assert "completed" not in [a.event for a in mine]  # it never downloaded anything


def test_select_file_leaves_unselected_file_uncreated(tmp_path: Path, tracker: Tracker) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    files = [
        ("a.bin", os.urandom(65536)),
        ("sub/b.bin", os.urandom(65536)),
        ("c.bin", os.urandom(40000)),
    ]
    torrent = tmp_path / "m.torrent"
    torrent.write_bytes(make_torrent(seed, files, name="multi", announce=tracker.url))
    aria2c, _ = start_aria2c(torrent, seed)
    try:
        res = run_trioaria(f"--dir={dl}", "--seed-time=0", "--select-file=1,3", str(torrent))
    finally:
        stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "multi" / "a.bin").read_bytes() == files[0][1]
    assert (dl / "multi" / "c.bin").read_bytes() == files[2][1]
    assert not (dl / "multi" / "sub").exists()


def test_magnet_metadata_from_aria2c(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(300_000)
    torrent = tmp_path / "g.torrent"
    torrent.write_bytes(make_torrent(seed, [("g.bin", payload)], name="g.bin"))
    meta = parse_torrent(torrent.read_bytes())
    aria2c, port = start_aria2c(torrent, seed)
    magnet = f"magnet:?xt=urn:btih:{meta.info_hash_hex}&dn=g.bin&x.pe=127.0.0.1:{port}"
    try:
        res = run_trioaria(f"--dir={dl}", "--seed-time=0", "--bt-save-metadata", magnet)
    finally:
        stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "g.bin").read_bytes() == payload
    saved = parse_torrent((dl / f"{meta.info_hash_hex}.torrent").read_bytes())
    assert saved.info_hash == meta.info_hash


def test_resume_after_kill(tmp_path: Path, tracker: Tracker) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(1536 * 1024)
    torrent = tmp_path / "r.torrent"
    torrent.write_bytes(
        make_torrent(seed, [("r.bin", payload)], name="r.bin", announce=tracker.url)
    )
    meta = parse_torrent(torrent.read_bytes())
    control = dl / "r.bin.aria2"
    aria2c, _ = start_aria2c(torrent, seed, extra=("--max-upload-limit=256K",))
    try:
        first = start_trioaria(f"--dir={dl}", "--seed-time=0", str(torrent))
        try:
            deadline = time.monotonic() + 60
            while True:  # until the control file holds at least two verified pieces
                assert time.monotonic() < deadline, "no progress saved"
                assert first.poll() is None, "finished before it could be killed"
                if control.exists():
                    try:
                        saved = cf.parse(control.read_bytes())
                    except Exception:
                        saved = None
                    if saved is not None and sum(bin(b).count("1") for b in saved.bitfield) >= 2:
                        break
                time.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            stop_process(first)
        saved = cf.parse(control.read_bytes())
        assert saved.bittorrent and saved.info_hash == meta.info_hash
        done = sum(bin(b).count("1") for b in saved.bitfield) * meta.piece_length
        res = run_trioaria(f"--dir={dl}", "--seed-time=0", str(torrent), timeout=90)
    finally:
        stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "r.bin").read_bytes() == payload
    second = [a for a in tracker.state.announces if a.peer_id.startswith(PEER_ID)]
    started = [a for a in second if a.event == "started"]
    assert len(started) == 2 and started[1].left <= len(payload) - done
    completed = [a for a in second if a.event == "completed"]
    assert completed and completed[-1].downloaded <= len(payload) - done + meta.piece_length


def test_show_files_matches_aria2c(tmp_path: Path) -> None:
    files = [("a.bin", os.urandom(5000)), ("d/b.txt", os.urandom(7000))]
    torrent = tmp_path / "x.torrent"
    torrent.write_bytes(make_torrent(tmp_path, files, name="x", announce="http://127.0.0.1:9/a"))
    ours = run_trioaria("-S", str(torrent), cwd=tmp_path)
    theirs = subprocess.run(
        ["aria2c", "-S", str(torrent)], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
