"""MSE/PE against libtorrent with encryption forced and RC4 only, both directions.

libtorrent's ``forced`` policy refuses plain handshakes in and out and ``allowed_enc_level=rc4``
refuses plaintext payload, so each completed download proves trioaria's RC4 stream: trioaria
leeches a magnet from the libtorrent seeder (trioaria dials), and libtorrent leeches from a
trioaria seeder that requires crypto (libtorrent dials trioaria's listener).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from tests.bt.swarm_helpers import (
    REPO,
    free_port,
    make_torrent,
    run_trioaria,
    stop_process,
    trioaria_args,
    wait_listening,
)
from tests.bt.test_dht_download import lt, lt_seed, lt_session, wait
from trioaria.bt.metainfo import parse_torrent


def _forced(ses: Any) -> Any:
    ses.apply_settings(
        {
            "out_enc_policy": lt.enc_policy.forced,
            "in_enc_policy": lt.enc_policy.forced,
            "allowed_enc_level": lt.enc_level.rc4,
        }
    )
    return ses


def test_leech_from_libtorrent_with_encryption_forced(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(600_000)
    raw = make_torrent(seed, [("f.bin", payload)], name="f.bin", piece_length=65536)
    meta = parse_torrent(raw)
    ses = _forced(lt_session(dht=False))
    lt_seed(ses, raw, seed)
    magnet = f"magnet:?xt=urn:btih:{meta.info_hash_hex}&x.pe=127.0.0.1:{ses.listen_port()}"
    res = run_trioaria(f"--dir={dl}", "--seed-time=0", "--bt-require-crypto=true", magnet)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "f.bin").read_bytes() == payload
    ses.pause()


def test_seed_to_libtorrent_with_encryption_forced(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(600_000)
    raw = make_torrent(seed, [("g.bin", payload)], name="g.bin", piece_length=65536)
    torrent = tmp_path / "g.torrent"
    torrent.write_bytes(raw)
    port = free_port()
    args = trioaria_args(f"--dir={seed}", "-V", "--bt-require-crypto=true", str(torrent))
    args.append(f"--listen-port={port}")
    log = (tmp_path / "trioaria.log").open("wb")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    ours = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_listening(port, ours, "trioaria")
        ses = _forced(lt_session(dht=False))
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(raw))
        params.save_path = str(dl)
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        handle = ses.add_torrent(params)
        handle.connect_peer(("127.0.0.1", port))
        wait(lambda: handle.status().is_seeding, "libtorrent to finish", timeout=60)
        assert ours.wait(timeout=60) == 0  # --seed-ratio=1.0: it uploaded everything
        ses.pause()
    finally:
        stop_process(ours)
        log.close()
    assert (dl / "g.bin").read_bytes() == payload
