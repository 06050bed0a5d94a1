"""transmission-daemon (3.x) leeches from trioaria with MSE required on both sides.

transmission runs with ``encryption: 2`` ("required": it drops any peer that does not complete
the MSE handshake with RC4) and the trioaria seed with ``--bt-require-crypto=true
--bt-min-crypto-level=arc4`` (it neither sends nor accepts a plain handshake and selects only
RC4), so the download can only complete through RC4 both ways.  transmission never dials a
tracker-given 127.0.0.1 peer, so, as in ``interop/test_bt_transmission.py``, it announces first
as a leecher and the trioaria seed, whose first announce returns it, dials it (the MSE
initiator is trioaria; ``interop/test_bt_transmission.py`` covers trioaria as the MSE initiator
against a transmission seed, and ``tests/bt/test_mse_stream.py`` the receiver side).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from tests.bt.swarm_helpers import free_port, make_torrent, start_trioaria, stop_process
from tests.servers.opentracker import OpenTracker
from tests.servers.transmission import start_transmission
from trioaria.bt.metainfo import parse_torrent


def test_transmission_requiring_crypto_leeches_from_trioaria(
    tmp_path: Path, opentracker: OpenTracker
) -> None:
    transmission = start_transmission(tmp_path / "transmission", encryption=2)
    try:
        assert transmission.rpc("session-get")["encryption"] == "required"
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
        ours = start_trioaria(
            f"--dir={seed}",
            "-V",
            f"--listen-port={free_port()}",
            "--bt-require-crypto=true",
            "--bt-min-crypto-level=arc4",
            str(torrent),
        )
        try:
            transmission.wait_seeding(torrent_id)
            out, _ = ours.communicate(timeout=60)  # --seed-ratio=1.0: it ends by itself
        finally:
            stop_process(ours)
        assert ours.returncode == 0, out.decode() + transmission.log
        assert (dl / "up.bin").read_bytes() == payload
    finally:
        stop_process(transmission.process)
        with contextlib.suppress(OSError):
            shutil.rmtree(transmission.config_dir)
