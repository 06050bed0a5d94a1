"""Two connections to one peer: the second is refused, the running one stays.

The swarm is driven with stand-in peers; a seeding trioaria is driven with a blocking socket
that connects twice under one peer id.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import trio

from tests.bt.swarm_helpers import make_torrent, start_trioaria, stop_process, wait_listening
from tests.servers.nginx import free_port
from trioaria.bt.messages import Handshake, HaveAll, Interested, Unchoke
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.swarm import Swarm
from trioaria.bt.wire import PeerConnection

LOW, HIGH = b"A" * 20, b"B" * 20


class _StandIn:
    def __init__(self, peer_id: bytes, outgoing: bool, port: int = 0) -> None:
        self.peer_id = peer_id
        self.outgoing = outgoing
        self.closed = False
        self.addr = ("127.0.0.1", port)
        self.listen_addr = self.addr if outgoing else None

    def close(self) -> None:
        self.closed = True


def test_swarm_refuses_a_second_connection() -> None:
    trio.run(_refuses_a_second_connection)


async def _refuses_a_second_connection() -> None:
    swarm = Swarm(b"i" * 20, HIGH, meta=None, session=None)
    old = _StandIn(LOW, outgoing=False, port=40001)
    other = _StandIn(b"C" * 20, outgoing=False, port=40002)
    swarm.peers.update([old, other])  # type: ignore[list-item]
    # LOW dialled us, then we dialled LOW: ours is refused, theirs keeps running
    dialled = _StandIn(b"", outgoing=True, port=6881)
    swarm.peers.add(dialled)  # type: ignore[arg-type]
    assert swarm.admit_peer_id(dialled, LOW) is False  # type: ignore[arg-type]
    assert not old.closed and not other.closed
    # the running one now stands for the address we dialled: not dialled again
    assert old.listen_addr == ("127.0.0.1", 6881)
    swarm.peers.discard(dialled)  # type: ignore[arg-type]
    assert not swarm._dialable(("127.0.0.1", 6881))
    # a second incoming connection from LOW: refused too
    third = _StandIn(b"", outgoing=False, port=40003)
    assert swarm.admit_peer_id(third, LOW) is False  # type: ignore[arg-type]
    assert old.listen_addr == ("127.0.0.1", 6881)
    # a peer id seen nowhere else is admitted; a closed connection does not count
    assert swarm.admit_peer_id(third, b"D" * 20) is True  # type: ignore[arg-type]
    old.closed = True
    assert swarm.admit_peer_id(third, LOW) is True  # type: ignore[arg-type]


def _handshake(
    sock: socket.socket, conn: PeerConnection, info_hash: bytes, peer_id: bytes
) -> list[object]:
    """Send our handshake; return the events up to the peer's HaveAll (empty if it closed)."""
    sock.sendall(conn.send(Handshake(info_hash, peer_id)))
    events: list[object] = []
    deadline = time.monotonic() + 20
    while not any(isinstance(e, HaveAll) for e in events):
        assert time.monotonic() < deadline, events
        data = sock.recv(1 << 16)
        if not data:
            return []
        conn.receive_data(data)
        while (event := conn.next_event()) is not None:
            events.append(event)
    return events


def _closed_unserved(sock: socket.socket, conn: PeerConnection) -> bool:
    """True when the peer closed the connection without serving it (no HaveAll)."""
    seen: list[object] = []
    deadline = time.monotonic() + 20
    while True:
        assert time.monotonic() < deadline, seen
        data = sock.recv(1 << 16)
        if not data:
            return True
        conn.receive_data(data)
        while (event := conn.next_event()) is not None:
            seen.append(event)
            if isinstance(event, HaveAll):
                return False


def test_second_connection_under_one_peer_id_is_closed(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    payload = os.urandom(8 * 16384)
    torrent = tmp_path / "f.torrent"
    raw = make_torrent(seed, [("f.bin", payload)], name="f.bin", piece_length=16384)
    torrent.write_bytes(raw)
    meta = parse_torrent(raw)
    port = free_port()
    ours = start_trioaria(f"--dir={seed}", "-V", f"--listen-port={port}", str(torrent))
    twin_id = b"-XX0000-duplicatepid"
    try:
        wait_listening(port, ours, "trioaria")
        first = None
        deadline = time.monotonic() + 30
        while first is None:  # the listener is up before -V has finished: retry until served
            assert time.monotonic() < deadline, "trioaria never sent HaveAll"
            sock = socket.create_connection(("127.0.0.1", port), timeout=20)
            conn = PeerConnection(info_hash=meta.info_hash, num_pieces=meta.num_pieces)
            if _handshake(sock, conn, meta.info_hash, twin_id):
                first = (sock, conn)
            else:
                sock.close()
                time.sleep(0.1)
        with first[0]:
            # the same peer id again: trioaria closes the connection
            with socket.create_connection(("127.0.0.1", port), timeout=20) as twin:
                twin_conn = PeerConnection(info_hash=meta.info_hash, num_pieces=meta.num_pieces)
                twin.sendall(twin_conn.send(Handshake(meta.info_hash, twin_id)))
                assert _closed_unserved(twin, twin_conn)
            # another peer id is served as usual
            with socket.create_connection(("127.0.0.1", port), timeout=20) as other:
                other_conn = PeerConnection(info_hash=meta.info_hash, num_pieces=meta.num_pieces)
                assert _handshake(other, other_conn, meta.info_hash, b"-XX0000-anotherpeer1")
            # the first connection still works: interested is answered by an unchoke
            sock, conn = first
            sock.sendall(conn.send(Interested()))
            unchoked = False
            deadline = time.monotonic() + 20
            while not unchoked:
                assert time.monotonic() < deadline
                data = sock.recv(1 << 16)
                assert data, "trioaria closed the first connection"
                conn.receive_data(data)
                while (event := conn.next_event()) is not None:
                    unchoked = unchoked or isinstance(event, Unchoke)
    finally:
        stop_process(ours)
