"""A torrent downloaded with ``--all-proxy``: the ``.torrent`` URL and every HTTP announce go
through the proxy (as aria2 fetches them: like any HTTP download); the peer connections to the
aria2c seed stay direct, as in aria2.  tinyproxy's log must show the torrent fetch and the
announces, the tracker must see them, and the payload must be byte-exact."""

from __future__ import annotations

import os
from pathlib import Path

from tests.bt.swarm_helpers import make_torrent, run_trioaria, start_aria2c, stop_process
from tests.bt.tracker_server import Tracker
from tests.servers.nginx import NginxServer
from tests.servers.proxies import PASSWORD, USER, ProxyServer

PEER_ID = b"-TA0100-"


def test_torrent_url_and_announces_through_the_proxy(
    tmp_path: Path, nginx: NginxServer, tinyproxy: ProxyServer
) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(1024 * 1024 + 333)
    with Tracker(interval=1) as tracker:
        blob = make_torrent(
            seed, [("px.bin", payload)], name="px.bin", piece_length=65536, announce=tracker.url
        )
        torrent = tmp_path / "px.torrent"
        torrent.write_bytes(blob)
        name = f"px-{os.urandom(4).hex()}.torrent"
        nginx.add_file(name, blob)
        aria2c, _ = start_aria2c(torrent, seed)
        try:
            res = run_trioaria(
                f"--dir={dl}",
                "--seed-time=0",
                f"--all-proxy={tinyproxy.uri(user=USER, password=PASSWORD)}",
                nginx.url(f"/{name}"),
            )
        finally:
            stop_process(aria2c)
        ours = [a for a in tracker.state.announces if a.peer_id.startswith(PEER_ID)]
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "px.bin").read_bytes() == payload
    log = tinyproxy.log_text()
    assert f"GET http://127.0.0.1:{nginx.port}/{name}" in log
    announces = log.count(f"GET {tracker.url}?")
    assert announces >= 2 and announces >= len(ours) >= 2, (announces, len(ours))
