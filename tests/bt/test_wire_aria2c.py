"""The peer wire codec against a real peer: aria2c seeding on 127.0.0.1.

A blocking socket drives :class:`~trioaria.bt.wire.PeerConnection` (the codec is sans-IO, so
any loop will do): handshake, BEP 10 extended handshake, BEP 6 ``have all`` and ``allowed
fast``, a BEP 9 ut_metadata request whose answer hashes to the info hash, then every block of
the torrent, compared with the seeded file.  Also pins aria2c's ordering: its extended
handshake comes *before* ``have all``, and it drops a connection that sends anything after the
handshake before its own handshake arrived (the codec refuses to).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time

import pytest

from tests.servers.nginx import free_port
from tests.servers.process import stop_process
from trioaria.base.errors import LocalProtocolError
from trioaria.bt.bencode import encode
from trioaria.bt.messages import (
    BLOCK_SIZE,
    AllowedFast,
    Extended,
    ExtendedHandshake,
    Handshake,
    HaveAll,
    Interested,
    Piece,
    Request,
    Unchoke,
)
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.ut_metadata import (
    MetadataAssembler,
    MetadataData,
    MetadataRequest,
    decode_message,
    encode_message,
)
from trioaria.bt.wire import PeerConnection

PIECE_LENGTH = 32768


@pytest.fixture(scope="module")
def aria2c_seed(tmp_path_factory):
    aria2c = shutil.which("aria2c")
    if aria2c is None:
        pytest.fail("aria2c is not installed")  # .ci/run installs it
    root = tmp_path_factory.mktemp("seed")
    payload = os.urandom(5 * PIECE_LENGTH + 12345)
    (root / "payload.bin").write_bytes(payload)
    pieces = b"".join(
        hashlib.sha1(payload[i : i + PIECE_LENGTH]).digest()
        for i in range(0, len(payload), PIECE_LENGTH)
    )
    info = {
        b"name": b"payload.bin",
        b"piece length": PIECE_LENGTH,
        b"pieces": pieces,
        b"length": len(payload),
    }
    torrent = encode({b"info": info})
    (root / "seed.torrent").write_bytes(torrent)
    port = free_port()
    process = subprocess.Popen(
        [
            aria2c,
            "--no-conf",
            "--seed-ratio=0.0",
            "--check-integrity=true",
            f"--dir={root}",
            f"--listen-port={port}",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--summary-interval=0",
            "--quiet",
            str(root / "seed.torrent"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("aria2c did not start listening")
                time.sleep(0.1)
        yield parse_torrent(torrent), payload, port
    finally:
        stop_process(process)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=20)


def test_leech_everything_from_aria2c(aria2c_seed):
    meta, payload, port = aria2c_seed
    conn = PeerConnection(info_hash=meta.info_hash, num_pieces=meta.num_pieces)
    events: list[object] = []
    blocks: dict[tuple[int, int], bytes] = {}
    metadata = None
    assembler: MetadataAssembler | None = None
    wanted = {
        (i, b) for i in range(meta.num_pieces) for b in range(0, meta.piece_size(i), BLOCK_SIZE)
    }
    with _connect(port) as sock:
        sock.sendall(conn.send(Handshake(meta.info_hash, b"-TA0100-testtesttest")))
        with pytest.raises(LocalProtocolError, match="peer's handshake"):
            conn.send(Interested())
        while blocks.keys() != wanted or metadata is None:
            data = sock.recv(1 << 16)
            assert data, f"aria2c closed the connection after {events}"
            conn.receive_data(data)
            while (event := conn.next_event()) is not None:
                if not isinstance(event, Piece | AllowedFast):
                    events.append(event)
                if isinstance(event, Handshake):
                    sock.sendall(
                        conn.send(ExtendedHandshake(m={"ut_metadata": 3}, client="trioaria test"))
                        + conn.send(Interested())
                    )
                elif isinstance(event, ExtendedHandshake):
                    assert event.metadata_size is not None
                    assembler = MetadataAssembler(meta.info_hash, event.metadata_size)
                    ext = conn.remote_extensions["ut_metadata"]
                    for piece in assembler.missing():
                        request = encode_message(MetadataRequest(piece))
                        sock.sendall(conn.send(Extended(ext, request)))
                elif isinstance(event, Extended):
                    assert event.name == "ut_metadata"
                    message = decode_message(event.payload)
                    assert isinstance(message, MetadataData)
                    metadata = assembler.add(message)
                elif isinstance(event, Unchoke):
                    for index, begin in sorted(wanted):
                        length = min(BLOCK_SIZE, meta.piece_size(index) - begin)
                        sock.sendall(conn.send(Request(index, begin, length)))
                elif isinstance(event, Piece):
                    blocks[(event.index, event.begin)] = bytes(event.data)
    assert isinstance(events[0], Handshake) and events[0].peer_id.startswith(b"A2-")
    assert events[0].supports_fast and events[0].supports_extensions
    kinds = [type(e) for e in events]
    assert kinds.index(ExtendedHandshake) < kinds.index(HaveAll)
    assert conn.fast and conn.extensions
    hs = next(e for e in events if isinstance(e, ExtendedHandshake))
    assert hs.metadata_size == len(meta.info_bytes) and hs.listen_port == port
    assert metadata == meta.info_bytes
    assert b"".join(blocks[k] for k in sorted(blocks)) == payload
