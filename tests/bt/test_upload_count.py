"""Uploaded bytes are counted block by block as they go out, so a connection closed half-way
through a slow batch still counts what it sent, and ``--seed-ratio`` is reached.

A seeding trioaria (``--seed-ratio=0.6``) serves two blocking-socket leechers in turn: the first
asks for 1 MiB at once but reads only ~300 KiB through a tiny receive buffer, then resets the
connection (trioaria's send of that batch is cut off half-way); the second takes the second half
of the 2 MiB file.  Counting only whole batches, trioaria would stand at 1 MiB uploaded (ratio
0.5) and seed on; counting blocks, it passes 0.6 and exits by itself.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

from tests.bt.swarm_helpers import make_torrent, start_trioaria, stop_process, wait_listening
from tests.servers.nginx import free_port
from trioaria.bt.messages import BLOCK_SIZE, Handshake, HaveAll, Interested, Piece, Unchoke
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.wire import PeerConnection

PIECE = 256 * 1024
SIZE = 2 * 1024 * 1024


def _blocks(first: int, last: int) -> list[tuple[int, int, int]]:
    """Requests for the bytes [first, last) of the file, one per block."""
    return [(o // PIECE, o % PIECE, BLOCK_SIZE) for o in range(first, last, BLOCK_SIZE)]


def _until_unchoked(
    sock: socket.socket, conn: PeerConnection, info_hash: bytes, pid: bytes
) -> bool:
    """Handshake and ``interested``; True once trioaria unchokes us (False: it closed)."""
    sock.sendall(conn.send(Handshake(info_hash, pid)))
    seen_all = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            return False
        conn.receive_data(data)
        while (event := conn.next_event()) is not None:
            if isinstance(event, HaveAll) and not seen_all:
                seen_all = True
                sock.sendall(conn.send(Interested()))
            if isinstance(event, Unchoke):
                return True
    raise AssertionError("never unchoked")


def _connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:  # before connect: the window the peer sees stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", port))
    return sock


def test_a_batch_cut_off_half_way_still_counts(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    payload = os.urandom(SIZE)
    torrent = tmp_path / "u.torrent"
    raw = make_torrent(seed, [("u.bin", payload)], name="u.bin", piece_length=PIECE)
    torrent.write_bytes(raw)
    meta = parse_torrent(raw)
    port = free_port()
    ours = start_trioaria(
        f"--dir={seed}", "-V", f"--listen-port={port}", "--seed-ratio=0.6", "--seed-time=2",
        str(torrent),
    )  # fmt: skip
    try:
        wait_listening(port, ours, "trioaria")
        # the first leecher: 1 MiB asked for, ~300 KiB read, then a reset
        deadline = time.monotonic() + 30
        while True:  # the listener is up before -V has finished: retry until served
            assert time.monotonic() < deadline, "trioaria never unchoked the first leecher"
            first = _connect(port, rcvbuf=4096)
            conn = PeerConnection(info_hash=meta.info_hash, num_pieces=meta.num_pieces)
            if _until_unchoked(first, conn, meta.info_hash, b"-XX0000-slowleecher1"):
                break
            first.close()
            time.sleep(0.1)
        first.sendall(conn.send_requests(_blocks(0, SIZE // 2)))
        got = 0
        while got < 300 * 1024:
            chunk = first.recv(4096)
            assert chunk, "trioaria closed the first connection"
            got += len(chunk)
            time.sleep(0.002)
        first.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        first.close()  # RST: trioaria's send of the rest of the batch fails
        # the second leecher: the second half, read whole
        second = _connect(port)
        with second:
            conn = PeerConnection(info_hash=meta.info_hash, num_pieces=meta.num_pieces)
            assert _until_unchoked(second, conn, meta.info_hash, b"-XX0000-fastleecher1")
            wanted = _blocks(SIZE // 2, SIZE)
            second.sendall(conn.send_requests(wanted))
            received: dict[int, bytes] = {}
            deadline = time.monotonic() + 20
            while len(received) < len(wanted):
                assert time.monotonic() < deadline, len(received)
                data = second.recv(1 << 16)
                assert data, "trioaria closed the second connection"
                conn.receive_data(data)
                while (event := conn.next_event()) is not None:
                    if isinstance(event, Piece):
                        received[event.index * PIECE + event.begin] = bytes(event.data)
            assert b"".join(received[o] for o in sorted(received)) == payload[SIZE // 2 :]
            # 1 MiB from the second, > 200 KiB from the first: past 0.6, so trioaria stops
            out, _ = ours.communicate(timeout=30)
        assert ours.returncode == 0, out.decode(errors="replace")
    finally:
        stop_process(ours)
