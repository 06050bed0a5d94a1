"""Incoming peers past --bt-max-peers while leeching slower than --bt-request-peer-speed-limit.

aria2 (PeerReceiveHandshakeCommand::executeInternal) takes an incoming peer when
``(!downloadFinished && downloadSpeed < bt-request-peer-speed-limit) || lessThanMaxPeers()``;
trioaria takes it up to twice --bt-max-peers then, as its own dialling goes.
"""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from trioaria.bt.swarm import Swarm
from trioaria.net.connect import ByteStream
from trioaria.storage.session import StorageSession

PIECE = 32768


async def _handed(tmp_path: Path, connected: int) -> bool:
    """Whether a stalled leecher (--bt-max-peers=3, nothing downloaded, a 50 KiB/s
    --bt-request-peer-speed-limit) takes one more incoming peer with ``connected`` peers."""
    session = StorageSession(
        str(tmp_path / "d"), [("a.bin", 4 * PIECE)], piece_length=PIECE,
        control_path=str(tmp_path / "d.aria2"),
    )  # fmt: skip
    swarm = Swarm(
        b"i" * 20, b"p" * 20, meta=None, session=session, max_peers=3,
        request_peer_speed_limit=50 * 1024,
    )  # fmt: skip
    a, b = trio.socket.socketpair()
    try:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                swarm._nursery = nursery
                swarm.peers = {object() for _ in range(connected)}  # type: ignore[misc]
                handed = swarm.accept(ByteStream(trio.SocketStream(a)), ("127.0.0.1", 6881), b"")
                nursery.cancel_scope.cancel()
    finally:
        b.close()
        a.close()
    return handed


async def test_slow_leecher_accepts_incoming_past_max_peers(tmp_path: Path) -> None:
    assert await _handed(tmp_path, 3), "a stalled leecher refused a peer at --bt-max-peers"


async def test_past_twice_max_peers_even_a_stalled_leecher_refuses(tmp_path: Path) -> None:
    assert not await _handed(tmp_path, 6)
