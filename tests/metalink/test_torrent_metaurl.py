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


def test_mirrors_are_web_seeds_of_the_torrent(ml_nginx: MetalinkNginx, tmp_path: Path) -> None:
    # no tracker, no peer: the file's url serves the torrent as its web seed (BEP 19)
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(512 * 1024 + 7)
    raw = make_torrent(seed, [("w.bin", payload)], name="w.bin", piece_length=32768)
    ml_nginx.add_file("f/ws/w.torrent", raw)
    ml_nginx.add_file("f/ws/w.bin", payload)
    doc = tmp_path / "w.meta4"
    doc.write_text(
        f'<metalink xmlns="{NS}"><file name="w.bin"><size>{len(payload)}</size>'
        f"<url>{ml_nginx.url('/f/ws/w.bin')}</url>"
        f'<metaurl mediatype="torrent">{ml_nginx.url("/f/ws/w.torrent")}</metaurl>'
        "</file></metalink>"
    )
    res = run_trioaria(f"--dir={dl}", "--seed-time=0", "-M", str(doc))
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "w.bin").read_bytes() == payload
    assert ml_nginx.requests("/f/ws/w.torrent") and ml_nginx.requests("/f/ws/w.bin")
    assert "are web seeds of its torrent" in res.stdout + res.stderr


def test_metaurl_name_selects_one_file_of_the_torrent(
    ml_nginx: MetalinkNginx, tmp_path: Path
) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    one, two = os.urandom(200 * 1024 + 3), os.urandom(300 * 1024 + 5)
    with Tracker(interval=1) as tracker:
        torrent = tmp_path / "m.torrent"
        torrent.write_bytes(
            make_torrent(
                seed,
                [("a/one.bin", one), ("two.bin", two)],
                name="multi",
                piece_length=32768,
                announce=tracker.url,
            )
        )
        ml_nginx.add_file("f/mn/m.torrent", torrent.read_bytes())
        doc = tmp_path / "m.meta4"
        doc.write_text(
            f'<metalink xmlns="{NS}"><file name="two.bin"><size>{len(two)}</size>'
            f'<metaurl mediatype="torrent" name="two.bin">{ml_nginx.url("/f/mn/m.torrent")}'
            "</metaurl></file></metalink>"
        )
        aria2c, _ = start_aria2c(torrent, seed)
        try:
            res = run_trioaria(f"--dir={dl}", "--seed-time=0", "-M", str(doc))
        finally:
            stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "multi" / "two.bin").read_bytes() == two
    other = dl / "multi" / "a" / "one.bin"  # only the piece it shares with two.bin, if any
    assert not other.exists() or other.read_bytes() != one
