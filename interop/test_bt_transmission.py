"""trioaria against transmission-daemon (3.x) on 127.0.0.1, both directions.

* transmission seeds (it verifies the existing data, then announces to opentracker over HTTP,
  or over UDP); trioaria finds it through the tracker and downloads a multi-file torrent;
* transmission seeds; trioaria dials it from a magnet's ``x.pe`` with no tracker at all, so the
  metadata (BEP 9) and then the pieces come from transmission, MSE required on our side;
* transmission leeches and announces; a trioaria seed (``-V`` on existing data) finds it
  through the tracker and dials it; trioaria ends by itself at ``--seed-ratio=1.0``; the same
  with transmission requiring encryption and trioaria requiring RC4 (MSE both ways).

transmission unchokes and declares interest only on its 10-second rechoke pulse, so each
test spends most of its time waiting for that, not transferring.

Each test runs a fresh daemon (see ``tests/servers/transmission.py``) with DHT, LPD, PEX and
uTP off, and whitelists its torrent in the session's opentracker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bt.swarm_helpers import (
    free_port,
    make_torrent,
    run_trioaria,
    start_trioaria,
    stop_process,
)
from tests.servers.opentracker import OpenTracker
from tests.servers.transmission import Transmission, running_transmission
from trioaria.bt.metainfo import parse_torrent

Files = list[tuple[str, bytes]]


def _multi_torrent(tmp_path: Path, announce: str | None) -> tuple[bytes, Files]:
    """A multi-file torrent whose data is written under ``tmp_path/seed``.

    The data is new for every test, so each test has an info-hash of its own: a hash shared
    with an earlier test would find that test's departed peers listed at the session's tracker.
    """
    files = [
        ("a.bin", os.urandom(400 * 1024 + 3)),
        ("sub/b.bin", os.urandom(200 * 1024 + 11)),
        ("sub/c.txt", b"transmission\n" * 100),
    ]
    seed = tmp_path / "seed"
    seed.mkdir()
    raw = make_torrent(seed, files, name="multi", piece_length=32768, announce=announce)
    return raw, files


def _seed_in_transmission(tmp_path: Path, transmission: Transmission, raw: bytes) -> None:
    torrent_id = transmission.add(raw, tmp_path / "seed")  # verifies the data, then seeds
    transmission.wait_seeding(torrent_id)


def _assert_files(root: Path, files: Files) -> None:
    for rel, data in files:
        assert (root / "multi" / rel).read_bytes() == data, rel


@pytest.mark.parametrize("scheme", ["http", "udp"])
def test_leech_from_transmission_via_opentracker(
    tmp_path: Path, transmission: Transmission, opentracker: OpenTracker, scheme: str
) -> None:
    announce = opentracker.http_announce if scheme == "http" else opentracker.udp_announce
    raw, files = _multi_torrent(tmp_path, announce)
    info_hash = parse_torrent(raw).info_hash
    opentracker.allow(info_hash)  # before transmission's first announce
    _seed_in_transmission(tmp_path, transmission, raw)
    opentracker.wait_seeders(info_hash)
    torrent = tmp_path / "multi.torrent"
    torrent.write_bytes(raw)
    dl = tmp_path / "dl"
    res = run_trioaria(f"--dir={dl}", "--seed-time=0", str(torrent), timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr + transmission.log
    _assert_files(dl, files)


def test_magnet_from_transmission_direct_with_mse(
    tmp_path: Path, transmission: Transmission
) -> None:
    raw, files = _multi_torrent(tmp_path, None)
    _seed_in_transmission(tmp_path, transmission, raw)
    meta = parse_torrent(raw)
    magnet = (
        f"magnet:?xt=urn:btih:{meta.info_hash_hex}&dn=multi&x.pe=127.0.0.1:{transmission.peer_port}"
    )
    dl = tmp_path / "dl"
    res = run_trioaria(
        f"--dir={dl}",
        "--seed-time=0",
        "--bt-require-crypto=true",
        "--bt-min-crypto-level=arc4",
        magnet,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr + transmission.log
    _assert_files(dl, files)


def _transmission_leeches_from_trioaria(
    tmp_path: Path, transmission: Transmission, opentracker: OpenTracker, *flags: str
) -> None:
    """transmission never dials a tracker-given 127.0.0.1 peer (it treats 127/8 as a martian
    address), so it announces first as a leecher and the trioaria seed (``-V`` on existing data,
    then ``flags``), whose first announce returns it, dials it."""
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(1024 * 1024 + 9)
    raw = make_torrent(
        seed, [("up.bin", payload)], name="up.bin", announce=opentracker.http_announce
    )
    torrent = tmp_path / "up.torrent"
    torrent.write_bytes(raw)
    info_hash = parse_torrent(raw).info_hash
    opentracker.allow(info_hash)
    torrent_id = transmission.add(raw, dl)
    opentracker.wait_swarm(info_hash, leechers=1)
    port = free_port()
    ours = start_trioaria(f"--dir={seed}", "-V", f"--listen-port={port}", *flags, str(torrent))
    try:
        transmission.wait_seeding(torrent_id)
        out, _ = ours.communicate(timeout=60)  # --seed-ratio=1.0: it ends by itself
    finally:
        stop_process(ours)
    assert ours.returncode == 0, out.decode() + transmission.log
    assert (dl / "up.bin").read_bytes() == payload


def test_transmission_leeches_from_trioaria_via_opentracker(
    tmp_path: Path, transmission: Transmission, opentracker: OpenTracker
) -> None:
    _transmission_leeches_from_trioaria(tmp_path, transmission, opentracker)


def test_transmission_requiring_crypto_leeches_from_trioaria(
    tmp_path: Path, opentracker: OpenTracker
) -> None:
    """transmission with ``encryption: 2`` ("required": it drops any peer that does not complete
    the MSE handshake with RC4) and the trioaria seed with ``--bt-require-crypto=true
    --bt-min-crypto-level=arc4`` (it neither sends nor accepts a plain handshake and selects only
    RC4): the download can only complete through RC4 both ways, trioaria as the MSE initiator
    (``test_magnet_from_transmission_direct_with_mse`` has transmission as the seed,
    ``tests/bt/test_mse_stream.py`` the receiver side)."""
    with running_transmission(tmp_path / "transmission", encryption=2) as transmission:
        assert transmission.rpc("session-get")["encryption"] == "required"
        _transmission_leeches_from_trioaria(
            tmp_path, transmission, opentracker,
            "--bt-require-crypto=true", "--bt-min-crypto-level=arc4",
        )  # fmt: skip
