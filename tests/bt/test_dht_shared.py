"""One DHT node for the whole run: two torrents seeding at the same time share one UDP port.

``--dht-listen-port`` names a single port.  If each download ran a node of its own, the second
could not bind it and would fail; with the run-wide node (the engine's services nursery) both
torrents complete.  (The TCP
listener is still one per download, so ``--listen-port`` gets two ports.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.bt.swarm_helpers import free_port, run_trioaria
from trioaria.bt.bencode import encode


def _torrent(directory: Path, name: str) -> Path:
    payload = os.urandom(50_000)
    (directory / name).write_bytes(payload)
    info = {
        b"name": name.encode(),
        b"piece length": 32768,
        b"length": len(payload),
        b"pieces": b"".join(
            hashlib.sha1(payload[i : i + 32768]).digest() for i in range(0, len(payload), 32768)
        ),
    }
    path = directory / f"{name}.torrent"
    path.write_bytes(encode({b"info": info}))
    return path


def test_two_torrents_share_one_dht_port(tmp_path: Path) -> None:
    a, b = _torrent(tmp_path, "a.bin"), _torrent(tmp_path, "b.bin")
    dat = tmp_path / "dht.dat"
    res = run_trioaria(
        f"--dir={tmp_path}", "-V", "--seed-time=0.05", "--enable-dht=true",
        f"--dht-listen-port={free_port()}", "--dht-listen-addr=127.0.0.1",
        f"--dht-file-path={dat}", f"--listen-port={free_port()},{free_port()}", str(a), str(b),
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("|OK  |") == 2, res.stdout
    assert not dat.exists()  # nobody answered: an empty table is not saved
