"""PEX is off for private torrents (BEP 27): trioaria's BEP 10 handshake has no ``ut_pex``.

A raw client connects to a trioaria seeder and reads its extended handshake: ``m`` names
``ut_pex`` for a public torrent and not for the same data flagged ``private=1``.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.bt.swarm_helpers import REPO, free_port, stop_process, trioaria_args, wait_listening
from trioaria.bt.bencode import encode
from trioaria.bt.messages import ExtendedHandshake, Handshake, make_reserved
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.wire import PeerConnection


def _extensions(port: int, info_hash: bytes) -> dict[str, int] | None:
    """trioaria's BEP 10 ``m``; None when it hung up (the torrent is not registered yet)."""
    conn = PeerConnection(info_hash=info_hash)
    hello = conn.send(Handshake(info_hash, b"-XX0000-pexprobe0000", make_reserved(fast=False)))
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(hello)
        for _ in range(100):
            data = sock.recv(65536)
            if not data:
                return None
            conn.receive_data(data)
            while (event := conn.next_event()) is not None:
                if isinstance(event, ExtendedHandshake):
                    return dict(event.m)
    raise AssertionError("no extended handshake")


@pytest.mark.parametrize("private", [False, True])
def test_ut_pex_is_offered_only_for_public_torrents(tmp_path: Path, private: bool) -> None:
    payload = os.urandom(40_000)
    (tmp_path / "p.bin").write_bytes(payload)
    info: dict[bytes, object] = {
        b"name": b"p.bin",
        b"piece length": 32768,
        b"length": len(payload),
        b"pieces": b"".join(
            hashlib.sha1(payload[i : i + 32768]).digest() for i in range(0, len(payload), 32768)
        ),
    }
    if private:
        info[b"private"] = 1
    torrent = tmp_path / "p.torrent"
    torrent.write_bytes(encode({b"info": info}))
    meta = parse_torrent(torrent.read_bytes())
    assert meta.private is private
    port = free_port()
    args = trioaria_args(f"--dir={tmp_path}", "-V", "--seed-time=1", str(torrent))
    args.append(f"--listen-port={port}")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    ours = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_listening(port, ours, "trioaria")
        deadline = time.monotonic() + 30  # the listener is up before -V registers the torrent
        while (m := _extensions(port, meta.info_hash)) is None:
            assert time.monotonic() < deadline and ours.poll() is None, "no answer"
            time.sleep(0.1)
    finally:
        stop_process(ours)
    assert "ut_metadata" in m
    assert ("ut_pex" in m) is not private
