"""trioaria against libtorrent (the PyPI wheel, 2.x) on 127.0.0.1, both directions.

* libtorrent seeds; trioaria leeches a magnet link whose ``x.pe`` names the libtorrent peer, so the
  metadata comes over BEP 9 from libtorrent and the pieces after it;
* trioaria seeds (``-V`` on existing data, ``--seed-ratio=1.0``) and libtorrent leeches, dialling
  trioaria's ``--listen-port``; trioaria stops by itself once it uploaded the whole size.

libtorrent is configured for loopback only: no DHT, LSD, UPnP or NAT-PMP, several connections
per IP allowed (every peer is 127.0.0.1).  The torrents are v1-only (aria2c mishashes v1+v2 hybrids).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.bt.swarm_helpers import (
    loopback_lt_session,
    make_torrent,
    run_trioaria,
    start_trioaria,
    stop_process,
    wait_until,
)
from tests.servers.nginx import free_port
from trioaria.bt.metainfo import parse_torrent

try:
    import libtorrent as lt
except ImportError:  # a missing prerequisite is a failure: pip install libtorrent
    lt = None


def _session() -> Any:
    return loopback_lt_session()


_wait = wait_until


def test_magnet_from_libtorrent_seed(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(2 * 1024 * 1024 + 321)
    raw = make_torrent(seed, [("lt.bin", payload)], name="lt.bin", piece_length=65536)
    meta = parse_torrent(raw)
    ses = _session()
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(raw))
    params.save_path = str(seed)
    params.flags |= lt.torrent_flags.seed_mode
    # an auto-managed torrent is not "active" at once: incoming peers are refused meanwhile
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    handle = ses.add_torrent(params)
    _wait(lambda: handle.status().is_seeding, "libtorrent to seed")
    port = ses.listen_port()
    magnet = f"magnet:?xt=urn:btih:{meta.info_hash_hex}&dn=lt.bin&x.pe=127.0.0.1:{port}"
    res = run_trioaria(f"--dir={dl}", "--seed-time=0", magnet)
    del ses
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "lt.bin").read_bytes() == payload


def test_seed_to_libtorrent(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(1536 * 1024 + 7)
    torrent = tmp_path / "up.torrent"
    raw = make_torrent(seed, [("up.bin", payload)], name="up.bin", piece_length=32768)
    torrent.write_bytes(raw)
    port = free_port()
    ours = start_trioaria(f"--dir={seed}", "-V", f"--listen-port={port}", str(torrent))
    try:
        from tests.bt.swarm_helpers import wait_listening

        wait_listening(port, ours, "trioaria")
        ses = _session()
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(raw))
        params.save_path = str(dl)
        handle = ses.add_torrent(params)
        handle.connect_peer(("127.0.0.1", port))
        _wait(lambda: handle.status().is_seeding, "libtorrent to finish", timeout=90)
        out, _ = ours.communicate(timeout=60)  # --seed-ratio=1.0: it ends by itself
        del ses
    finally:
        stop_process(ours)
    assert ours.returncode == 0, out.decode()
    assert (dl / "up.bin").read_bytes() == payload


def test_libtorrent_leeches_pieces_trioaria_got_over_http(tmp_path: Path, nginx: Any) -> None:
    """BEP 19 mixed sources: trioaria fetches a torrent from a slow web seed (nginx) only, and a
    libtorrent leecher that knows no web seed gets every piece from trioaria, through HAVE
    messages while the download runs and uploads afterwards."""
    import uuid

    from tests.bt.swarm_helpers import wait_listening
    from tests.e2e_util import nginx_bytes_sent
    from trioaria.bt.bencode import decode, encode

    src, ours_dir, lt_dir = tmp_path / "src", tmp_path / "ours", tmp_path / "lt"
    for d in (src, ours_dir, lt_dir):
        d.mkdir()
    payload = os.urandom(1024 * 1024 + 99)
    raw = make_torrent(src, [("ws.bin", payload)], name="ws.bin", piece_length=32768)
    prefix = f"lt-ws-{uuid.uuid4().hex[:8]}"
    nginx.add_file(f"{prefix}/ws.bin", payload)
    doc = decode(raw)
    assert isinstance(doc, dict)
    doc[b"url-list"] = [nginx.url(f"/rate/400k/{prefix}/ws.bin").encode()]
    torrent = tmp_path / "ws.torrent"
    torrent.write_bytes(encode(doc))
    port = free_port()
    agent = f"lt-ws-{uuid.uuid4().hex}"
    ours = start_trioaria(
        f"--dir={ours_dir}", f"--listen-port={port}", f"--user-agent={agent}", str(torrent)
    )
    try:
        wait_listening(port, ours, "trioaria")
        ses = _session()
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(raw))  # no url-list: trioaria is its only source
        params.save_path = str(lt_dir)
        handle = ses.add_torrent(params)
        handle.connect_peer(("127.0.0.1", port))
        _wait(lambda: handle.status().is_seeding, "libtorrent to finish", timeout=90)
        out, _ = ours.communicate(timeout=60)  # --seed-ratio=1.0: it ends by itself
        del ses
    finally:
        stop_process(ours)
    assert ours.returncode == 0, out.decode()
    assert (ours_dir / "ws.bin").read_bytes() == payload
    assert (lt_dir / "ws.bin").read_bytes() == payload
    sent, _ = nginx_bytes_sent(nginx.access_log, agent)
    assert sent >= len(payload)  # every byte trioaria had came over HTTP
