"""BEP 5 PORT messages: trioaria sets the DHT bit, sends its DHT port, and pings the node a
peer names in its own PORT message.

A raw client (the peer wire codec over a trio TCP stream) handshakes with a trioaria seeder that
runs the DHT: trioaria's handshake has the DHT bit and a PORT message carries its
``--dht-listen-port``.  The client then sends PORT naming a DhtNode of this process: that node
must receive a ping from trioaria's DHT port (it then knows trioaria's node).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import trio

from tests.bt.swarm_helpers import REPO, free_port, trioaria_args
from trioaria.bt.bencode import encode
from trioaria.bt.messages import Handshake, Port, make_reserved
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.wire import PeerConnection
from trioaria.dht.node import DhtNode


async def test_port_messages_both_ways(tmp_path: Path) -> None:
    payload = os.urandom(40_000)
    (tmp_path / "q.bin").write_bytes(payload)
    info = {
        b"name": b"q.bin",
        b"piece length": 32768,
        b"length": len(payload),
        b"pieces": b"".join(
            hashlib.sha1(payload[i : i + 32768]).digest() for i in range(0, len(payload), 32768)
        ),
    }
    torrent = tmp_path / "q.torrent"
    torrent.write_bytes(encode({b"info": info}))
    meta = parse_torrent(torrent.read_bytes())
    port, dht_port = free_port(), free_port()
    args = trioaria_args(
        f"--dir={tmp_path}", "-V", "--seed-time=1", "--enable-dht=true",
        f"--dht-listen-port={dht_port}", "--dht-listen-addr=127.0.0.1",
        f"--dht-file-path={tmp_path / 'dht.dat'}", str(torrent),
    )  # fmt: skip
    args.append(f"--listen-port={port}")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    ours = await trio.lowlevel.open_process(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ours_node = DhtNode("127.0.0.1", 0)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(ours_node.run)
            with trio.fail_after(30):
                theirs: Handshake | None = None
                told: Port | None = None
                while told is None:  # until the torrent is registered (after -V) and answers
                    assert ours.poll() is None, "trioaria exited"
                    try:
                        stream = await trio.open_tcp_stream("127.0.0.1", port)
                    except OSError:
                        await trio.sleep(0.05)
                        continue
                    conn = PeerConnection(info_hash=meta.info_hash)
                    reserved = make_reserved(fast=False, dht=True)
                    await stream.send_all(
                        conn.send(Handshake(meta.info_hash, b"-XX0000-portprobe000", reserved))
                    )
                    while told is None:
                        data = await stream.receive_some(65536)
                        if not data:
                            await stream.aclose()
                            await trio.sleep(0.05)
                            break
                        conn.receive_data(data)
                        while (event := conn.next_event()) is not None:
                            if isinstance(event, Handshake):
                                theirs = event
                            elif isinstance(event, Port):
                                told = event
                assert theirs is not None and theirs.supports_dht
                assert told.port == dht_port
                await stream.send_all(conn.send(Port(ours_node.port)))
                while not len(ours_node.protocol.table):  # trioaria's ping made it known
                    await trio.sleep(0.05)
                (known,) = ours_node.protocol.table.nodes()
                assert known.info.port == dht_port
                await stream.aclose()
            nursery.cancel_scope.cancel()
    finally:
        ours.kill()
        await ours.wait()
