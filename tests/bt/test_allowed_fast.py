"""BEP 6 allowed fast, served: a seeding trioaria sends a fast peer its allowed fast set and
answers requests for those pieces while it chokes the peer; other requests are rejected.

A blocking socket drives the sans-IO :class:`~trioaria.bt.wire.PeerConnection` as the peer, and
never says ``interested``, so trioaria keeps it choked the whole time.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from tests.bt.swarm_helpers import make_torrent, start_trioaria, stop_process, wait_listening
from tests.servers.nginx import free_port
from trioaria.bt.fast import allowed_fast_set
from trioaria.bt.messages import (
    AllowedFast,
    Handshake,
    Piece,
    RejectRequest,
    Request,
    Unchoke,
)
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.wire import PeerConnection


def test_allowed_fast_pieces_are_served_while_choked(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    piece = 16384
    payload = os.urandom(40 * piece + 100)
    torrent = tmp_path / "f.torrent"
    raw = make_torrent(seed, [("f.bin", payload)], name="f.bin", piece_length=piece)
    torrent.write_bytes(raw)
    meta = parse_torrent(raw)
    expected = allowed_fast_set("127.0.0.1", meta.info_hash, meta.num_pieces, 10)
    outside = next(i for i in range(meta.num_pieces) if i not in expected)

    def size(index: int) -> int:  # the last piece holds 100 bytes: ask for no more
        return min(piece, len(payload) - index * piece)

    port = free_port()
    ours = start_trioaria(f"--dir={seed}", "-V", f"--listen-port={port}", str(torrent))
    fast: list[int] = []
    got: dict[int, bytes] = {}
    rejected: list[int] = []
    events: list[object] = []
    try:
        wait_listening(port, ours, "trioaria")
        deadline = time.monotonic() + 30
        while not (got.keys() == {expected[0]} and rejected):
            # the listener is up before -V has finished: an early connection is dropped
            assert time.monotonic() < deadline, events
            conn = PeerConnection(info_hash=meta.info_hash, num_pieces=meta.num_pieces)
            fast.clear()
            events.clear()
            with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
                sock.sendall(conn.send(Handshake(meta.info_hash, b"-XX0000-allowedfast1")))
                while not (got.keys() == {expected[0]} and rejected):
                    data = sock.recv(1 << 16)
                    if not data:
                        assert not events, f"trioaria closed the connection after {events}"
                        time.sleep(0.1)
                        break
                    conn.receive_data(data)
                    while (event := conn.next_event()) is not None:
                        events.append(type(event).__name__)
                        assert not isinstance(event, Unchoke)  # never interested: stays choked
                        if isinstance(event, AllowedFast):
                            fast.append(event.index)
                            if len(fast) == len(expected):
                                sock.sendall(
                                    conn.send(Request(expected[0], 0, size(expected[0])))
                                    + conn.send(Request(outside, 0, size(outside)))
                                )
                        elif isinstance(event, Piece):
                            got[event.index] = bytes(event.data)
                        elif isinstance(event, RejectRequest):
                            rejected.append(event.index)
    finally:
        stop_process(ours)
    assert "HaveAll" in events and events.index("HaveAll") < events.index("AllowedFast")
    assert fast == expected  # BEP 6's canonical set for 127.0.0.1, in draw order
    assert got[expected[0]] == payload[expected[0] * piece :][: size(expected[0])]
    assert rejected == [outside]
