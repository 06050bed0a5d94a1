"""UDP trackers share the DHT socket when the DHT runs (checked by the source port).

A BEP 15 tracker on 127.0.0.1 (a trio UDP socket and the codec of ``trioaria/bt/udp_tracker.py``)
records the source address of every request.  An Announcer given ``Discovery.udp_for`` must send
from the DHT node's port and get its peers back, while the node keeps answering KRPC pings on the
same port; without the DHT the announce uses a socket of its own.
"""

from __future__ import annotations

import trio

from trioaria.bt.announce import AnnounceCounters, Announcer
from trioaria.bt.discovery import Discovery
from trioaria.bt.tracker import PeerAddress
from trioaria.bt.udp_tracker import (
    UdpAnnounceRequest,
    UdpAnnounceResponse,
    UdpConnectRequest,
    UdpConnectResponse,
    decode_udp_request,
    encode_udp,
)
from trioaria.dht.node import DhtNode

INFO_HASH = bytes(range(70, 90))


async def _tracker(
    sources: list[tuple[str, int]], task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    with sock:
        await sock.bind(("127.0.0.1", 0))
        task_status.started(sock.getsockname()[1])
        while True:
            data, address = await sock.recvfrom(2048)
            sources.append((address[0], address[1]))
            request = decode_udp_request(data)
            if isinstance(request, UdpConnectRequest):
                reply = encode_udp(UdpConnectResponse(request.transaction_id, 0xABCDEF))
            elif isinstance(request, UdpAnnounceRequest):
                peers = (PeerAddress("127.0.0.9", 5151),)
                reply = encode_udp(UdpAnnounceResponse(request.transaction_id, 1800, 1, 1, peers))
            else:
                continue
            await sock.sendto(reply, address)


async def _announce_once(tracker_port: int, udp_for: object) -> list[tuple[str, int]]:
    got: list[tuple[str, int]] = []
    done = trio.Event()

    def on_peers(peers: list[tuple[str, int]]) -> None:
        got.extend(peers)
        done.set()

    announcer = Announcer(
        [[f"udp://127.0.0.1:{tracker_port}/announce"]],
        info_hash=INFO_HASH,
        peer_id=b"-TA0100-sharedsocket",
        port=6881,
        counters=lambda: AnnounceCounters(0, 0, 1),
        on_peers=on_peers,
        timeout=10,
        udp_shared=udp_for,  # type: ignore[arg-type]
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(announcer.run)
        await done.wait()
        nursery.cancel_scope.cancel()
    return got


async def test_udp_tracker_uses_the_dht_socket_and_the_dht_keeps_working() -> None:
    sources: list[tuple[str, int]] = []
    opts = {"enable-dht": "true", "dht-listen-port": 0, "dht-listen-addr": "127.0.0.1"}
    discovery = Discovery(opts.get)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            tracker_port = await nursery.start(_tracker, sources)
            dht_port = await nursery.start(discovery.run)
            assert await _announce_once(tracker_port, discovery.udp_for) == [("127.0.0.9", 5151)]
            assert sources and {port for _, port in sources} == {dht_port}
            probe = DhtNode("127.0.0.1", 0)
            await nursery.start(probe.run)
            assert await probe.ping(("127.0.0.1", dht_port)) == discovery.nodes[4].node_id
            nursery.cancel_scope.cancel()


async def test_without_the_dht_the_tracker_gets_its_own_socket() -> None:
    sources: list[tuple[str, int]] = []
    discovery = Discovery({"enable-dht": "false"}.get)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            tracker_port = await nursery.start(_tracker, sources)
            await nursery.start(discovery.run)
            assert discovery.udp_for(4) is None
            assert await _announce_once(tracker_port, discovery.udp_for) == [("127.0.0.9", 5151)]
            assert sources
            nursery.cancel_scope.cancel()
