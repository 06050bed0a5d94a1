"""DhtNode drivers talking to each other over UDP on loopback: IPv4 and IPv6 (BEP 32)."""

from __future__ import annotations

import hashlib

import pytest
import trio

from trioaria.dht.node import DhtNode, DhtQueryError
from trioaria.dht.node_id import NodeId
from trioaria.dht.persist import parse_dht_file, serialize_dht_file


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_bootstrap_announce_and_find(host: str) -> None:
    ih = NodeId(hashlib.sha1(b"swarm").digest())
    nodes = [DhtNode(host, query_timeout=2) for _ in range(6)]
    async with trio.open_nursery() as nursery:
        ports = [await nursery.start(n.run) for n in nodes]
        entry = (host, ports[0])
        for n in nodes[1:]:
            assert await n.bootstrap([entry]) >= 1
        for n in nodes[1:]:  # a second pass: everyone learns the later nodes too
            await n.bootstrap([entry])
        assert await nodes[2].announce(ih, 51413) == []
        found = await nodes[5].get_peers(ih)
        assert (host, 51413) in found
        response = await nodes[5].find_node(entry, nodes[3].node_id)
        listed = response.nodes6 if ":" in host else response.nodes
        assert nodes[3].node_id in {n.id for n in listed}
        # a silent address fails with DhtQueryError after the query timeout (real time: 2 s)
        with pytest.raises(DhtQueryError):
            await nodes[1].ping((host, 9))
        state = nodes[1].save_state(7)
        assert parse_dht_file(serialize_dht_file(state, nodes[1].family), nodes[1].family) == state
        nursery.cancel_scope.cancel()


async def test_linked_ipv4_and_ipv6_nodes_answer_want() -> None:
    v4a = DhtNode("127.0.0.1")
    v6a = DhtNode("::1", node_id=v4a.node_id)  # BEP 32: one id, both families
    v4a.link(v6a)
    v6b, v4b = DhtNode("::1"), DhtNode("127.0.0.1")
    v4b.link(v6b)
    async with trio.open_nursery() as nursery:
        p4 = await nursery.start(v4a.run)
        p6 = await nursery.start(v6a.run)
        q6 = await nursery.start(v6b.run)
        await nursery.start(v4b.run)
        await v6b.ping(("::1", p6))  # v6a now knows v6b
        response = await v4b.find_node(("127.0.0.1", p4), NodeId(bytes(20)))  # want n4 + n6
        assert ("::1", q6) in {n.address for n in response.nodes6}
        nursery.cancel_scope.cancel()
