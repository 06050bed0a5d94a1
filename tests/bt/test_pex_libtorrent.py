"""PEX in a real swarm: trioaria learns a seeder only through libtorrent's ``ut_pex``.

Two libtorrent sessions on 127.0.0.1: a seeder, and a leecher that has the torrent's metadata,
is connected to the seeder and downloads at 2 KiB/s.  trioaria gets a magnet whose only ``x.pe``
is that leecher: it can fetch the metadata there (BEP 9) but hardly a piece, so the download
completes only if the leecher's ``ut_pex`` message named the seeder and trioaria dialled it (the
seeder runs without PEX, so it cannot learn trioaria from the leecher and dial it instead; with
``--enable-peer-exchange=false`` the same setup does not complete).  trioaria's own messages, and PEX being off, are checked in process
(``tests/bt/test_pex_exchange.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.bt.swarm_helpers import make_torrent, run_trioaria
from tests.bt.test_dht_download import lt, lt_seed, lt_session, wait
from trioaria.bt.metainfo import parse_torrent


def _middle_peer(raw: bytes, directory: Path, seeder_port: int) -> tuple[Any, Any]:
    ses = lt_session(dht=False)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(raw))
    params.save_path = str(directory)
    params.download_limit = 2048  # stays a leecher (a finished peer would drop the seed)
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    handle = ses.add_torrent(params)
    handle.connect_peer(("127.0.0.1", seeder_port))
    wait(lambda: handle.status().num_peers > 0, "the middle peer to reach the seeder")
    return ses, handle


def _setup(tmp_path: Path) -> tuple[bytes, Any, Any, Any, Any, str]:
    seed, middle = tmp_path / "seed", tmp_path / "middle"
    seed.mkdir()
    middle.mkdir()
    payload = os.urandom(500_000)
    raw = make_torrent(seed, [("x.bin", payload)], name="x.bin", piece_length=65536)
    meta = parse_torrent(raw)
    seeder = lt_session(dht=False)
    # the seeder itself takes no PEX: it must not learn trioaria from the leecher and dial it
    seed_handle = lt_seed(seeder, raw, seed, pex=False)
    mid, mid_handle = _middle_peer(raw, middle, seeder.listen_port())
    magnet = f"magnet:?xt=urn:btih:{meta.info_hash_hex}&dn=x.bin&x.pe=127.0.0.1:{mid.listen_port()}"
    return payload, seeder, seed_handle, mid, mid_handle, magnet


def test_seeder_learned_through_pex_gets_connected(tmp_path: Path) -> None:
    payload, seeder, _seed_handle, mid, mid_handle, magnet = _setup(tmp_path)
    dl = tmp_path / "dl"
    res = run_trioaria(f"--dir={dl}", "--seed-time=0", magnet, timeout=90)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "x.bin").read_bytes() == payload
    assert mid_handle.status().num_pieces <= 2  # most pieces could only come from the seeder
    seeder.pause()
    mid.pause()
