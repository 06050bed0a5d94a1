"""A Metalink file whose only source is a ``torrent`` metaurl is downloaded over BitTorrent.

aria2c seeds the torrent through a local tracker (tests/bt/tracker_server.py); the ``.torrent``
is served by the Metalink nginx; ``trioaria -M`` fetches it into memory (RFC 5854 §4.2.8) and
leeches the file from aria2c.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.bt.swarm_helpers import make_torrent, run_trioaria, start_aria2c, stop_process
from tests.bt.tracker_server import Tracker
from tests.metalink.ml_nginx import MetalinkNginx

NS = "urn:ietf:params:xml:ns:metalink"


def test_torrent_metaurl_is_leeched(ml_nginx: MetalinkNginx, tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(1024 * 1024 + 99)
    with Tracker(interval=1) as tracker:
        torrent = tmp_path / "t.torrent"
        torrent.write_bytes(
            make_torrent(
                seed, [("t.bin", payload)], name="t.bin", piece_length=65536, announce=tracker.url
            )
        )
        ml_nginx.add_file("f/tm/t.torrent", torrent.read_bytes())
        doc = tmp_path / "t.meta4"
        doc.write_text(
            f'<metalink xmlns="{NS}"><file name="t.bin"><size>{len(payload)}</size>'
            f'<metaurl mediatype="torrent">{ml_nginx.url("/f/tm/t.torrent")}</metaurl>'
            '<metaurl mediatype="application/x-other">http://127.0.0.1:1/x</metaurl>'
            "</file></metalink>"
        )
        aria2c, _ = start_aria2c(torrent, seed)
        try:
            res = run_trioaria(f"--dir={dl}", "--seed-time=0", "-M", str(doc))
        finally:
            stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "t.bin").read_bytes() == payload
    assert ml_nginx.requests("/f/tm/t.torrent")
    assert not (dl / "t.torrent").exists(), "the torrent stays in memory"
    assert "is ignored (only torrents are followed)" in res.stdout + res.stderr, res
