"""Swarms that meet through a real tracker: opentracker over HTTP (BEP 3) and UDP (BEP 15).

* aria2c seeds and announces to opentracker; trioaria learns the seed from the same tracker
  (``http://`` announce, then a torrent whose only tracker is ``udp://``) and downloads;
  likewise from a libtorrent seed over both;
* trioaria seeds and announces; aria2c (``udp://``) and libtorrent (``http://``), knowing
  nothing but the torrent, find it there and download.

Each test whitelists its own torrent (Debian's opentracker serves whitelisted hashes only) and
starts the leecher only once ``/scrape`` lists the seeder, so nobody waits for a re-announce.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.bt.swarm_helpers import (
    free_port,
    loopback_lt_session,
    make_torrent,
    run_trioaria,
    start_aria2c,
    start_trioaria,
    stop_process,
    wait_listening,
    wait_until,
)
from tests.servers.opentracker import OpenTracker
from trioaria.bt.metainfo import parse_torrent

try:
    import libtorrent as lt
except ImportError:  # a missing prerequisite is a failure: pip install libtorrent
    lt = None


def _torrent(tmp_path: Path, name: str, announce: str, size: int) -> tuple[Path, bytes, bytes]:
    """A seeded single-file torrent under ``tmp_path/seed``: (path, payload, info-hash)."""
    seed = tmp_path / "seed"
    seed.mkdir(exist_ok=True)
    payload = os.urandom(size)
    raw = make_torrent(seed, [(name, payload)], name=name, piece_length=32768, announce=announce)
    path = tmp_path / f"{name}.torrent"
    path.write_bytes(raw)
    return path, payload, parse_torrent(raw).info_hash


def _leech_from_aria2c(
    tmp_path: Path, opentracker: OpenTracker, announce: str, extra: tuple[str, ...] = ()
) -> None:
    torrent, payload, info_hash = _torrent(tmp_path, "ot.bin", announce, 1024 * 1024 + 77)
    opentracker.allow(info_hash)
    seeder, _ = start_aria2c(torrent, tmp_path / "seed", extra=extra)
    try:
        opentracker.wait_seeders(info_hash)
        dl = tmp_path / "dl"
        res = run_trioaria(f"--dir={dl}", "--seed-time=0", str(torrent), timeout=60)
    finally:
        stop_process(seeder)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "ot.bin").read_bytes() == payload


_wait = wait_until


def _lt_session() -> Any:
    return loopback_lt_session()


def _aria2c_dht(tmp_path: Path) -> tuple[str, ...]:
    """aria2c speaks to UDP trackers only from its DHT socket (no entry point: it stays local);
    trioaria runs with --enable-dht=false, so its announces use a socket of their own."""
    return (
        "--enable-dht=true",
        f"--dht-listen-port={free_port()}",
        f"--dht-file-path={tmp_path / 'aria2c-dht.dat'}",
    )


def test_leech_from_aria2c_via_opentracker_http(tmp_path: Path, opentracker: OpenTracker) -> None:
    _leech_from_aria2c(tmp_path, opentracker, opentracker.http_announce)


def test_leech_from_aria2c_via_opentracker_udp(tmp_path: Path, opentracker: OpenTracker) -> None:
    _leech_from_aria2c(tmp_path, opentracker, opentracker.udp_announce, _aria2c_dht(tmp_path))


@pytest.mark.parametrize("scheme", ["http", "udp"])
def test_leech_from_libtorrent_via_opentracker(
    tmp_path: Path, opentracker: OpenTracker, scheme: str
) -> None:
    announce = opentracker.http_announce if scheme == "http" else opentracker.udp_announce
    torrent, payload, info_hash = _torrent(tmp_path, "lt.bin", announce, 1024 * 1024 + 3)
    opentracker.allow(info_hash)
    ses = _lt_session()
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(str(torrent))
    params.save_path = str(tmp_path / "seed")
    params.flags |= lt.torrent_flags.seed_mode
    params.flags &= ~lt.torrent_flags.auto_managed  # active at once, announces at once
    params.flags &= ~lt.torrent_flags.paused
    ses.add_torrent(params)
    opentracker.wait_seeders(info_hash)
    dl = tmp_path / "dl"
    res = run_trioaria(f"--dir={dl}", "--seed-time=0", str(torrent), timeout=60)
    del ses
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "lt.bin").read_bytes() == payload


def test_seed_to_aria2c_via_opentracker_udp(tmp_path: Path, opentracker: OpenTracker) -> None:
    torrent, payload, info_hash = _torrent(
        tmp_path, "up.bin", opentracker.udp_announce, 1024 * 1024 + 17
    )
    opentracker.allow(info_hash)
    port = free_port()
    ours = start_trioaria(f"--dir={tmp_path / 'seed'}", "-V", f"--listen-port={port}", str(torrent))
    leecher = None
    try:
        wait_listening(port, ours, "trioaria")
        opentracker.wait_seeders(info_hash)
        dl = tmp_path / "dl"
        leecher, _ = start_aria2c(torrent, dl, seed=False, extra=_aria2c_dht(tmp_path))
        assert leecher.wait(timeout=60) == 0
        out, _ = ours.communicate(timeout=60)  # --seed-ratio=1.0: it ends by itself
    finally:
        stop_process(leecher)
        stop_process(ours)
    assert ours.returncode == 0, out.decode()
    assert (dl / "up.bin").read_bytes() == payload


def test_seed_to_libtorrent_via_opentracker(tmp_path: Path, opentracker: OpenTracker) -> None:
    torrent, payload, info_hash = _torrent(
        tmp_path, "up.bin", opentracker.http_announce, 1536 * 1024 + 5
    )
    opentracker.allow(info_hash)
    port = free_port()
    ours = start_trioaria(f"--dir={tmp_path / 'seed'}", "-V", f"--listen-port={port}", str(torrent))
    try:
        wait_listening(port, ours, "trioaria")
        opentracker.wait_seeders(info_hash)
        ses = _lt_session()
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(str(torrent))  # its only peer source is the tracker
        params.save_path = str(tmp_path / "dl")
        handle = ses.add_torrent(params)
        _wait(lambda: handle.status().is_seeding, "libtorrent to finish")
        out, _ = ours.communicate(timeout=60)  # --seed-ratio=1.0: it ends by itself
        del ses
    finally:
        stop_process(ours)
    assert ours.returncode == 0, out.decode()
    assert (tmp_path / "dl" / "up.bin").read_bytes() == payload
