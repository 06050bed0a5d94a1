"""Hostile traffic and the transaction table (BEP 5, sans-IO core driven with datagrams).

* Newcomers landing in a full bucket make the table ping its least recently seen questionable
  node once, not once per newcomer (BEP 5: that node "is pinged" to decide its fate).
* With the transaction table full, a query is not sent: no node is charged a failure for it,
  a direct query fails at once, and a lookup (a bucket refresh, ``get_peers``) completes instead
  of raising.
"""

from __future__ import annotations

import random

from trioaria.dht.krpc import Method, Query, encode_message
from trioaria.dht.lookup import LookupKind
from trioaria.dht.node_id import NodeId, NodeInfo
from trioaria.dht.protocol import QUERY_BURST, DhtProtocol, LookupDone, QueryFailed

OWN = NodeId(bytes(20))


def _far(i: int) -> NodeId:  # top bit set: all in the bucket farthest from OWN, which never splits
    return NodeId((0x80 << 152 | i).to_bytes(20, "big"))


def _flood(proto: DhtProtocol, now: float, sources: int = 60) -> None:
    n = 0
    for ip in range(sources):  # each source at its per-IP burst
        for _ in range(int(QUERY_BURST)):
            n += 1
            query = Query(b"tt", Method.PING, _far(n))
            proto.receive_datagram(encode_message(query), (f"10.0.{ip}.1", 1000 + n), now)


def test_newcomers_to_a_full_bucket_cause_one_ping() -> None:
    proto = DhtProtocol(OWN, 0.0, random.Random(1).randbytes)
    _flood(proto, 1.0)
    sent = proto.datagrams_to_send()
    pings = [a for data, a in sent if b"4:ping" in data and b"1:y1:q" in data]
    assert len(pings) == 1
    assert len(proto._tx) == 1


def test_a_full_transaction_table_sends_nothing_and_charges_nobody() -> None:
    proto = DhtProtocol(OWN, 0.0, random.Random(2).randbytes)
    good = NodeInfo(NodeId((1 << 100).to_bytes(20, "big")), "192.0.2.7", 6881)
    proto.table.heard_from(good, 0.5, response=True)
    for i in range(5000):  # our own queries to silent addresses fill the table
        proto.query((f"198.51.{i // 250}.{i % 250}", 6881), Method.PING, 1.0)
    assert len(proto._tx) == 4096
    while (event := proto.next_event()) is not None:
        assert isinstance(event, QueryFailed)  # the 904 that could not be sent
    proto.datagrams_to_send()
    for kind in (LookupKind.FIND_NODE, LookupKind.GET_PEERS):
        lookup = proto.start_lookup(good.id, kind, 2.0)
        events = []
        while (event := proto.next_event()) is not None:
            events.append(event)
        assert [e.lookup for e in events if isinstance(e, LookupDone)] == [lookup]
    assert not [a for _, a in proto.datagrams_to_send() if a == ("192.0.2.7", 6881)]
    entry = proto.table.get(good.id)
    assert entry is not None and entry.failures == 0
    proto.handle_timer(2.0)  # a bucket refresh in a full table does not raise either
