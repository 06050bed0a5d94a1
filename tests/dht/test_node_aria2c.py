"""DhtNode against aria2c's DHT on 127.0.0.1, both directions, and aria2c's dht.dat both ways.

aria2c seeds a torrent with DHT on.  Its ``--dht-file-path`` is a ``dht.dat`` *we* wrote
listing only our node, so aria2c's first contact with the DHT is our node (aria2c loading our
file).  It must then query us and announce the torrent to us with a token we issued.  Our node
pings, find_nodes, get_peers and announces to aria2c and checks the answers.  When aria2c
stops it saves its table; that file must parse with our codec and hold our node.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import trio

from trioaria.bt.bencode import encode
from trioaria.dht.node import DhtNode
from trioaria.dht.node_id import NodeId, NodeInfo
from trioaria.dht.persist import DhtState, parse_dht_file, serialize_dht_file


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed_torrent(root: Path) -> bytes:
    payload = random.Random(5).randbytes(40000)
    (root / "d.bin").write_bytes(payload)
    info = {
        b"name": b"d.bin",
        b"piece length": 16384,
        b"length": len(payload),
        b"pieces": b"".join(
            hashlib.sha1(payload[i : i + 16384]).digest() for i in range(0, len(payload), 16384)
        ),
    }
    (root / "d.torrent").write_bytes(encode({b"info": info}))
    return hashlib.sha1(encode(info)).digest()


async def test_dht_node_and_aria2c(tmp_path: Path) -> None:
    aria2c = shutil.which("aria2c")
    if aria2c is None:
        pytest.fail("aria2c is not installed")
    info_hash = NodeId(_seed_torrent(tmp_path))
    ours = DhtNode("127.0.0.1", query_timeout=5)
    aria_id = NodeId(hashlib.sha1(b"aria2c's id from our file").digest())
    dht_port, tcp_port = _free_udp_port(), _free_tcp_port()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(ours.run)
        dat = tmp_path / "dht.dat"
        dat.write_bytes(
            serialize_dht_file(DhtState(aria_id, (NodeInfo(ours.node_id, "127.0.0.1", port),), 1))
        )
        process = await trio.lowlevel.open_process(
            [
                aria2c, "--no-conf", f"--dir={tmp_path}", "--seed-ratio=0.0", "--check-integrity=true",
                f"--listen-port={tcp_port}", "--enable-dht=true", "--enable-dht6=false",
                f"--dht-listen-port={dht_port}", f"--dht-file-path={dat}", "--dht-message-timeout=5",
                "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--summary-interval=0",
                "--quiet", str(tmp_path / "d.torrent"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            aria = ("127.0.0.1", dht_port)
            # aria2c loads our dht.dat: it queries us and announces its torrent to us
            for _ in range(300):
                if any(a.info_hash == info_hash for a in ours.announced):
                    break
                assert process.returncode is None, "aria2c exited"
                await trio.sleep(0.2)
            else:
                raise AssertionError(
                    f"aria2c never announced to us; table {ours.protocol.table.nodes()}"
                )
            assert ours.announced[0].peer == ("127.0.0.1", tcp_port)
            seen = ours.protocol.table.find_address(aria)
            assert seen is not None and seen.info.id == aria_id  # aria2c kept the id from our file
            # and we query aria2c
            assert await ours.ping(aria) == aria_id
            found = await ours.find_node(aria, NodeId(bytes(20)))
            assert (
                found.id == aria_id
                and found.version is not None
                and found.version.startswith(b"A2")
            )
            other = NodeId(hashlib.sha1(b"a torrent we announce").digest())
            first = await ours.get_peers_from(aria, other)
            assert first.token is not None and first.values == ()
            await ours.announce_to(aria, other, 6881, first.token)
            second = await ours.get_peers_from(aria, other)
            assert ("127.0.0.1", 6881) in second.values
            mine = await ours.get_peers_from(aria, info_hash)
            assert mine.token is not None
            # the iterative lookup through aria2c finds aria2c's own announce on our node as well
            assert ("127.0.0.1", tcp_port) in await ours.get_peers(info_hash)
        finally:
            process.terminate()  # SIGTERM: aria2c saves its dht.dat and exits
            with trio.move_on_after(15):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            nursery.cancel_scope.cancel()
    saved = parse_dht_file(dat.read_bytes())  # aria2c rewrote it on exit
    assert saved.local_id == aria_id and saved.saved_at > 1
    assert NodeInfo(ours.node_id, "127.0.0.1", port) in saved.nodes
