"""A hostile peer next to an honest aria2c seed: trioaria bans it and completes from aria2c.

The hostile peer (a thread with a plain socket) claims every piece, unchokes at once and then
either answers requests with wrong bytes (the piece fails its SHA-1 check, the peer is blamed and
banned) or sends an absurd length prefix (the connection is dropped at once).  Both peers are
handed out by the local tracker.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from pathlib import Path

import pytest

from tests.bt.swarm_helpers import make_torrent, run_trioaria, start_aria2c, stop_process
from tests.bt.tracker_server import Tracker
from trioaria.bt.metainfo import parse_torrent


class HostilePeer:
    def __init__(self, info_hash: bytes, num_pieces: int, mode: str) -> None:
        self.info_hash = info_hash
        self.num_pieces = num_pieces
        self.mode = mode
        self.requests = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stop = False

    def __enter__(self) -> HostilePeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join(10)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._peer, args=(conn,), daemon=True).start()

    def _recv(self, conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def _peer(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            with conn:
                self._recv(conn, 68)
                conn.sendall(
                    b"\x13BitTorrent protocol" + bytes(8) + self.info_hash + b"-XX0000-hostilepeer!"
                )
                bits = bytearray((self.num_pieces + 7) // 8)
                for i in range(self.num_pieces):
                    bits[i // 8] |= 0x80 >> (i % 8)
                conn.sendall(struct.pack(">IB", 1 + len(bits), 5) + bits)
                conn.sendall(struct.pack(">IB", 1, 1))  # unchoke
                while True:
                    length = struct.unpack(">I", self._recv(conn, 4))[0]
                    body = self._recv(conn, length) if length else b""
                    if not body or body[0] != 6:
                        continue
                    self.requests += 1
                    index, begin, size = struct.unpack(">III", body[1:13])
                    if self.mode == "oversized":
                        conn.sendall(struct.pack(">IB", 0x7FFFFFF0, 7) + b"x" * 100)
                        self._recv(conn, 1)  # until trioaria hangs up
                    payload = os.urandom(size)  # wrong bytes
                    conn.sendall(struct.pack(">IBII", 9 + size, 7, index, begin) + payload)
        except OSError:
            return


@pytest.mark.parametrize("mode", ["bad-data", "oversized"])
def test_hostile_peer_is_dropped_and_download_completes(tmp_path: Path, mode: str) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(1024 * 1024 + 99)
    with Tracker(interval=1) as tracker:
        torrent = tmp_path / "h.torrent"
        torrent.write_bytes(
            make_torrent(seed, [("h.bin", payload)], name="h.bin", announce=tracker.url)
        )
        meta = parse_torrent(torrent.read_bytes())
        with HostilePeer(meta.info_hash, meta.num_pieces, mode) as hostile:
            tracker.state.swarms.setdefault(meta.info_hash, {})[("127.0.0.1", hostile.port)] = (
                b"-XX0000-hostilepeer!"
            )
            aria2c, _ = start_aria2c(torrent, seed, extra=("--max-upload-limit=1M",))
            log = tmp_path / "log.txt"
            try:
                res = run_trioaria(
                    f"--dir={dl}", "--seed-time=0", f"--log={log}", "--log-level=info", str(torrent)
                )
            finally:
                stop_process(aria2c)
            requests = hostile.requests
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "h.bin").read_bytes() == payload
    assert requests >= 1, "the hostile peer was never asked for a block"
    text = log.read_text()
    where = f"127.0.0.1:{hostile.port}"
    if mode == "bad-data":
        assert f"banning <peer {where}>" in text
        assert "failed its sha-1 check" in text
    else:
        assert f"<peer {where}>: protocol violation" in text
