"""aria2c as the oracle for tracker requests: what a real client sends to HTTP and UDP trackers.

* HTTP (BEP 3/23): aria2c announces to a tracker served by this test; rebuilding the same
  announce with :func:`~trioaria.bt.tracker.build_announce_url` from the values aria2c sent
  gives aria2c's URL byte for byte (only ``key`` differs in kind: aria2c sends 8 raw bytes, we
  send 8 hex digits; both are opaque to trackers).
* UDP (BEP 15): aria2c's ``connect`` and ``announce`` datagrams decode with our codec, and it
  accepts our ``connect`` answer (the announce carries our connection id).  aria2c appends two
  zero bytes to the 98-byte announce (an old draft's extensions field); the decoder ignores them.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from tests.servers.nginx import free_port
from tests.servers.process import stop_process
from trioaria.bt.bencode import encode
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.tracker import AnnounceEvent, AnnounceRequest, build_announce_url
from trioaria.bt.udp_tracker import (
    UdpAnnounceRequest,
    UdpAnnounceResponse,
    UdpConnectRequest,
    UdpConnectResponse,
    decode_udp_request,
    encode_udp,
)

INFO = {
    b"name": b"tracked.bin",
    b"piece length": 16384,
    b"pieces": hashlib.sha1(b"a").digest() * 3,
    b"length": 40000,
}


def _aria2c(torrent: Path, workdir: Path, listen_port: int) -> subprocess.Popen[bytes]:
    aria2c = shutil.which("aria2c")
    if aria2c is None:
        pytest.fail("aria2c is not installed")  # .ci/run installs it
    return subprocess.Popen(
        [
            aria2c,
            "--no-conf",
            f"--dir={workdir}",
            f"--listen-port={listen_port}",
            "--enable-dht=true",  # aria2c sends UDP tracker traffic from its DHT socket
            f"--dht-listen-port={free_port()}",
            f"--dht-file-path={workdir / 'dht.dat'}",
            "--bt-enable-lpd=false",
            "--summary-interval=0",
            "--quiet",
            str(torrent),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def http_tracker() -> Iterator[tuple[int, list[str], threading.Event]]:
    paths: list[str] = []
    seen = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            seen.set()
            body = encode({b"interval": 1800, b"peers": b""})
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], paths, seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_announce_url_matches_aria2c(http_tracker, tmp_path):
    port, paths, seen = http_tracker
    announce = f"http://127.0.0.1:{port}/announce?passkey=abc"
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(encode({b"announce": announce.encode(), b"info": INFO}))
    meta = parse_torrent(torrent.read_bytes())
    listen = free_port()
    process = _aria2c(torrent, tmp_path, listen)
    try:
        assert seen.wait(20), "aria2c did not announce"
    finally:
        stop_process(process)
    theirs = f"http://127.0.0.1:{port}" + paths[0]
    params = dict(item.split("=", 1) for item in theirs.split("?", 1)[1].split("&"))
    peer_id = unquote_to_bytes(params["peer_id"])
    request = AnnounceRequest(
        info_hash=meta.info_hash,
        peer_id=peer_id,
        port=listen,
        left=meta.total_length,
        event=AnnounceEvent.STARTED,
        key=0x1234,
    )
    ours = build_announce_url(announce, request)
    assert ours.replace("key=00001234", "key=" + params["key"]) == theirs


def test_udp_tracker_packets_match_aria2c(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tracker:
        tracker.bind(("127.0.0.1", 0))
        tracker.settimeout(20)
        port = tracker.getsockname()[1]
        torrent = tmp_path / "u.torrent"
        torrent.write_bytes(
            encode({b"announce": f"udp://127.0.0.1:{port}/announce".encode(), b"info": INFO})
        )
        meta = parse_torrent(torrent.read_bytes())
        listen = free_port()
        process = _aria2c(torrent, tmp_path, listen)
        try:
            data, addr = tracker.recvfrom(2048)
            hello = decode_udp_request(data)
            assert isinstance(hello, UdpConnectRequest) and len(data) == 16
            tracker.sendto(encode_udp(UdpConnectResponse(hello.transaction_id, 0xC0FFEE)), addr)
            data, addr = tracker.recvfrom(2048)
            announce = decode_udp_request(data)
            tracker.sendto(
                encode_udp(UdpAnnounceResponse(announce.transaction_id, 1800, 0, 0)), addr
            )
        finally:
            stop_process(process)
    assert isinstance(announce, UdpAnnounceRequest)
    assert announce.connection_id == 0xC0FFEE
    assert announce.transaction_id != hello.transaction_id
    r = announce.request
    assert (r.info_hash, r.port, r.left, r.uploaded, r.downloaded) == (
        meta.info_hash,
        listen,
        meta.total_length,
        0,
        0,
    )
    assert r.event is AnnounceEvent.STARTED and r.numwant == 50
    assert r.peer_id.startswith(b"A2-")
    assert len(data) == 100 and data[98:] == b"\x00\x00"
