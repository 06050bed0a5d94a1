"""The issue's flood bound: 10^5 queries from one address in 20 s (virtual time).

The core answers at most its per-IP budget (``QUERY_BURST`` at once, then ``QUERY_RATE`` a
second) and its memory grows by at most 2 MiB (tracemalloc), whatever the queries ask for:
pings, find_node, get_peers and announce_peer with forged tokens, each with a fresh
transaction id and target.
"""

from __future__ import annotations

import random
import tracemalloc

from trioaria.dht.krpc import Query, encode_message
from trioaria.dht.node_id import NodeId
from trioaria.dht.protocol import QUERY_BURST, QUERY_RATE, DhtProtocol

QUERIES = 100_000
SECONDS = 20.0


def test_flood_from_one_address_is_capped_and_memory_bounded() -> None:
    rng = random.Random(7)
    proto = DhtProtocol(NodeId(bytes(20)), 0.0, rng.randbytes)
    sender = NodeId(rng.randbytes(20))
    methods = ["ping", "find_node", "get_peers", "announce_peer"]
    datagrams = []
    for i in range(2_000):  # a pool of distinct queries, reused round-robin
        method = methods[i % 4]
        args: dict[str, object] = {}
        if method == "find_node":
            args["target"] = NodeId(rng.randbytes(20))
        elif method in ("get_peers", "announce_peer"):
            args["info_hash"] = NodeId(rng.randbytes(20))
        if method == "announce_peer":
            args.update(port=6881, token=rng.randbytes(8))
        datagrams.append(encode_message(Query(i.to_bytes(2, "big"), method, sender, **args)))
    proto.receive_datagram(datagrams[0], ("10.1.1.1", 6881), 0.0)  # warm the lazy structures
    proto.datagrams_to_send()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        replies = 0
        for i in range(QUERIES):
            now = SECONDS * i / QUERIES
            proto.receive_datagram(datagrams[i % len(datagrams)], ("10.1.1.1", 6881), now)
            replies += len(proto.datagrams_to_send())
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert replies <= QUERY_BURST + QUERY_RATE * SECONDS + 1
    assert replies >= QUERY_RATE * SECONDS / 2  # capped, not silenced
    assert proto.dropped >= QUERIES - replies - 1
    assert grown <= 2 * 1024 * 1024, grown
