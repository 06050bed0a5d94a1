"""DHT cores without sockets: routing table, tokens, peer store, dht.dat, lookups, the protocol,
and a 1,000-node network simulated in memory on virtual time."""

from __future__ import annotations

import hashlib
import random
from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.bt.bencode import encode
from trioaria.dht.krpc import ErrorMessage, Method, Query, Response, decode_message, encode_message
from trioaria.dht.lookup import Lookup, LookupKind
from trioaria.dht.node_id import NodeId, NodeInfo, bucket_index, distance
from trioaria.dht.persist import HEADER, DhtFileError, DhtState, parse_dht_file, serialize_dht_file
from trioaria.dht.protocol import (
    QUERY_BURST,
    DhtProtocol,
    LookupDone,
    PeerAnnounced,
    QueryAnswered,
    QueryFailed,
)
from trioaria.dht.routing import GOOD_FOR, REFRESH_INTERVAL, Liveness, RoutingTable
from trioaria.dht.tokens import SECRET_LIFETIME, PeerStore, TokenManager


def nid(n: int) -> NodeId:
    return NodeId(n.to_bytes(20, "big"))


def rnd(seed: int):  # type: ignore[no-untyped-def]
    return random.Random(seed).randbytes


OWN = nid(0)


def node(n: int) -> NodeInfo:
    """A node with id ``n`` and an address derived from it (distinct ids, distinct addresses)."""
    h = hashlib.sha1(n.to_bytes(20, "big")).digest()
    return NodeInfo(
        nid(n), f"10.{h[0]}.{h[1]}.{h[2]}", 1024 + int.from_bytes(h[3:5], "big") % 60000
    )


# --- routing table ------------------------------------------------------------------------------


def test_bucket_splits_only_near_our_id() -> None:
    t = RoutingTable(OWN, 0.0)
    far = [node((1 << 159) + i) for i in range(20)]  # all share 0 bits with us
    for n in far:
        t.heard_from(n, 1.0, response=True)
    assert len(t) == 8  # the far bucket filled up and could not split further
    near = [node(i + 1) for i in range(40)]
    for n in near:
        t.heard_from(n, 1.0, response=True)
    assert t.bucket_count > 2
    for entry in t.nodes():
        assert entry.liveness(1.0) is Liveness.GOOD
    assert t.closest(nid(3), 2) == [node(3), node(2)]


def test_liveness_and_replacement() -> None:
    t = RoutingTable(OWN, 0.0)
    for i in range(8):
        t.heard_from(node((1 << 159) + i), 0.0, response=True)
    newcomer = node((1 << 159) + 100)
    assert t.heard_from(newcomer, 10.0, response=True) == []  # all good: discarded (cached)
    later = GOOD_FOR + 20
    to_ping = t.heard_from(newcomer, later, response=True)
    assert len(to_ping) == 1  # questionable: ping the least recently seen
    stale = to_ping[0]
    t.failed(stale.id, later)
    assert t.get(stale.id) is not None
    t.failed(stale.id, later + 1)  # second failure in a row: bad, replaced from the cache
    assert t.get(stale.id) is None and t.get(newcomer.id) is not None
    # a node that answered once stays good while it keeps querying us
    e = t.get(newcomer.id)
    assert (
        e is not None and e.liveness(later + 2) is Liveness.QUESTIONABLE
    )  # not heard in the table yet
    t.heard_from(newcomer, later + 2, response=True)
    t.heard_from(newcomer, later + GOOD_FOR + 5, response=False)
    assert e.liveness(later + GOOD_FOR + 6) is Liveness.GOOD


def test_one_entry_per_address_and_refresh_targets() -> None:
    t = RoutingTable(OWN, 0.0)
    t.heard_from(NodeInfo(nid(5), "10.0.0.1", 5), 0.0, response=True)
    t.heard_from(NodeInfo(nid(6), "10.0.0.1", 5), 0.0, response=True)
    assert len(t) == 1
    for i in range(30):
        t.heard_from(node(i + 10), 0.0, response=True)
    assert t.get_timer() == REFRESH_INTERVAL
    targets = t.buckets_to_refresh(REFRESH_INTERVAL, rnd(1))
    assert len(targets) == t.bucket_count
    for depth, target in enumerate(targets[:-1]):
        assert bucket_index(OWN, target) == depth  # each target lands in its own bucket
    assert t.buckets_to_refresh(REFRESH_INTERVAL + 1, rnd(1)) == []


# --- tokens and peers -----------------------------------------------------------------------


def test_tokens_rotate_and_live_five_to_ten_minutes() -> None:
    tm = TokenManager(rnd(2), 0.0)
    tok = tm.token_for("10.1.1.1", 0.0)
    assert tm.check(tok, "10.1.1.1", 1.0) and not tm.check(tok, "10.1.1.2", 1.0)
    assert tm.check(tok, "10.1.1.1", SECRET_LIFETIME + 1)  # previous secret
    assert not tm.check(tok, "10.1.1.1", 2 * SECRET_LIFETIME + 1)
    tok2 = tm.token_for("::1", 3 * SECRET_LIFETIME)
    assert not tm.check(tok2, "::1", 100 * SECRET_LIFETIME)


def test_peer_store_bounds_and_expiry() -> None:
    ps = PeerStore(max_torrents=2, max_peers=3, lifetime=100)
    for i in range(5):
        ps.add(b"a" * 20, (f"10.0.0.{i}", 1), float(i))
    assert ps.get(b"a" * 20, 5.0) == [("10.0.0.4", 1), ("10.0.0.3", 1), ("10.0.0.2", 1)]
    ps.add(b"b" * 20, ("10.0.0.9", 1), 0.0)
    ps.add(b"c" * 20, ("10.0.0.9", 1), 0.0)
    assert len(ps) == 2 and ps.get(b"a" * 20, 5.0) == []
    assert ps.get(b"c" * 20, 101.0) == []


# --- dht.dat -------------------------------------------------------------------------------------


def test_dht_file_layout() -> None:
    state = DhtState(
        nid(7), (NodeInfo(nid(9), "127.0.0.1", 6881), NodeInfo(nid(10), "::1", 6882)), 1700000000
    )
    raw = serialize_dht_file(state, 4)
    assert raw[:8] == HEADER and len(raw) == 56 + 2 * 56
    assert raw[8:16] == (1700000000).to_bytes(8, "big") and raw[24:44] == nid(7)
    assert raw[48:52] == (2).to_bytes(4, "big")
    entry = raw[56:112]
    assert (
        entry[0] == 6
        and entry[8:14] == bytes([127, 0, 0, 1, 0x1A, 0xE1])
        and entry[32:52] == nid(9)
    )
    back = parse_dht_file(raw, 4)
    assert back.local_id == nid(7) and back.nodes == (NodeInfo(nid(9), "127.0.0.1", 6881),)
    assert back.saved_at == 1700000000
    raw6 = serialize_dht_file(state, 6)
    assert parse_dht_file(raw6, 6).nodes == (NodeInfo(nid(10), "::1", 6882),)
    assert parse_dht_file(raw6, 4).nodes == ()  # wrong family entries are skipped
    with pytest.raises(DhtFileError):
        parse_dht_file(b"\xa1\xa2\x02\0\0\0\0\x04" + bytes(48))
    with pytest.raises(DhtFileError):
        parse_dht_file(raw[:-1])


@given(st.binary(max_size=200))
def test_dht_file_garbage(raw: bytes) -> None:
    try:
        parse_dht_file(HEADER + raw)
    except DhtFileError:
        pass


# --- the protocol --------------------------------------------------------------------------------


class Net:
    """Delivers datagrams between in-memory protocols; addresses are (ip, port)."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[str, int], DhtProtocol] = {}
        self.sent = 0

    def run(self, now: float, limit: int = 10**6) -> None:
        queue: deque[tuple[bytes, tuple[str, int], tuple[str, int]]] = deque()

        def collect() -> None:
            for addr, proto in self.nodes.items():
                for data, dest in proto.datagrams_to_send():
                    queue.append((data, addr, dest))

        collect()
        while queue and limit:
            limit -= 1
            data, src, dest = queue.popleft()
            self.sent += 1
            target = self.nodes.get(dest)
            if target is not None:
                target.receive_datagram(data, src, now)
                for out, to in target.datagrams_to_send():
                    queue.append((out, dest, to))
            src_proto = self.nodes[src]
            for out, to in src_proto.datagrams_to_send():
                queue.append((out, src, to))
        assert not queue, "simulation did not settle"


def events(proto: DhtProtocol) -> list[object]:
    out = []
    while (e := proto.next_event()) is not None:
        out.append(e)
    return out


def test_ping_find_node_get_peers_announce() -> None:
    net = Net()
    a = DhtProtocol(nid(1 << 100), 0.0, rnd(1))
    b = DhtProtocol(nid(2 << 100), 0.0, rnd(2))
    net.nodes[("10.0.0.1", 1)] = a
    net.nodes[("10.0.0.2", 2)] = b
    r = a.query(("10.0.0.2", 2), Method.PING, 1.0)
    net.run(1.0)
    (ev,) = events(a)
    assert isinstance(ev, QueryAnswered) and ev.request == r and ev.response.id == b.own_id
    assert a.table.get(b.own_id) is not None and b.table.get(a.own_id) is not None
    ih = NodeId(hashlib.sha1(b"x").digest())
    r = a.query(("10.0.0.2", 2), Method.GET_PEERS, 2.0, info_hash=ih)
    net.run(2.0)
    (ev,) = events(a)
    assert isinstance(ev, QueryAnswered) and ev.response.token and not ev.response.values
    assert ev.response.nodes == (NodeInfo(a.own_id, "10.0.0.1", 1),)
    token = ev.response.token
    a.query(("10.0.0.2", 2), Method.ANNOUNCE_PEER, 3.0, info_hash=ih, port=6881, token=token)
    a.query(
        ("10.0.0.2", 2),
        Method.ANNOUNCE_PEER,
        3.0,
        info_hash=ih,
        port=1,
        token=b"forged",
        implied_port=True,
    )
    net.run(3.0)
    got = events(a)
    assert isinstance(got[0], QueryAnswered)
    assert isinstance(got[1], QueryFailed) and got[1].error is not None
    assert (got[1].error.code, got[1].error.message) == (203, "Invalid token")
    assert events(b) == [PeerAnnounced(ih, ("10.0.0.1", 6881))]
    a.query(("10.0.0.2", 2), Method.GET_PEERS, 4.0, info_hash=ih)
    net.run(4.0)
    (ev,) = events(a)
    assert isinstance(ev, QueryAnswered) and ev.response.values == (("10.0.0.1", 6881),)


def test_timeouts_unknown_methods_and_garbage() -> None:
    a = DhtProtocol(nid(1), 0.0, rnd(1), query_timeout=10)
    r = a.query(("10.0.0.9", 9), Method.FIND_NODE, 0.0, target=nid(5))
    assert a.get_timer() == 10.0
    a.datagrams_to_send()
    a.handle_timer(10.0)
    assert events(a) == [QueryFailed(r, None)]
    # unknown method: 204; malformed query: 203; garbage: dropped
    a.receive_datagram(
        encode({b"t": b"q1", b"y": b"q", b"q": b"vote", b"a": {b"id": nid(3)}}),
        ("10.0.0.3", 3),
        1.0,
    )
    a.receive_datagram(
        encode({b"t": b"q2", b"y": b"q", b"q": b"ping", b"a": {}}), ("10.0.0.3", 3), 1.0
    )
    a.receive_datagram(b"garbage", ("10.0.0.3", 3), 1.0)
    a.receive_datagram(encode_message(Response(b"zz", nid(3))), ("10.0.0.3", 3), 1.0)  # unsolicited
    out = [decode_message(d) for d, _ in a.datagrams_to_send()]
    assert [(m.t, m.code) for m in out if isinstance(m, ErrorMessage)] == [
        (b"q1", 204),
        (b"q2", 203),
    ]
    assert a.dropped == 2


def test_answers_come_only_from_the_queried_address() -> None:
    a = DhtProtocol(nid(1), 0.0, rnd(1))
    a.query(("10.0.0.2", 2), Method.PING, 0.0)
    ((data, _),) = a.datagrams_to_send()
    q = decode_message(data)
    a.receive_datagram(encode_message(Response(q.t, nid(2))), ("10.0.0.66", 2), 1.0)
    assert events(a) == [] and a.dropped == 1
    a.receive_datagram(encode_message(Response(q.t, nid(2))), ("10.0.0.2", 2), 1.0)
    assert isinstance(events(a)[0], QueryAnswered)


def test_query_flood_is_capped() -> None:
    a = DhtProtocol(nid(1), 0.0, rnd(1))
    ping = encode_message(Query(b"aa", "ping", nid(2)))
    for _ in range(10_000):
        a.receive_datagram(ping, ("10.9.9.9", 9), 5.0)  # all at one instant
    assert len(a.datagrams_to_send()) == QUERY_BURST
    for i in range(20_000):  # many sources: the limiter's memory stays bounded
        a.receive_datagram(ping, (f"10.{i >> 8}.{i & 255}.1", 9), 6.0)
    assert len(a._limits) <= 4096


def test_lookup_state_machine_alpha_and_termination() -> None:
    target = nid(0)
    seeds = [node(1000 + i) for i in range(10)]
    lk = Lookup(target, LookupKind.FIND_NODE, seeds, k=4, alpha=3)
    first = lk.next_queries()
    assert len(first) == 3 and lk.next_queries() == []
    assert [distance(n.id, target) for n in first] == sorted(distance(s.id, target) for s in seeds)[
        :3
    ]
    lk.on_response(first[0].address, first[0].id, [node(5), node(6)])
    lk.on_failure(first[1].address)
    nxt = lk.next_queries()
    assert {n.id for n in nxt} == {nid(5), nid(6)}
    for n in nxt:
        lk.on_response(n.address, n.id, [])
    assert not lk.done  # first[2] is still in flight
    lk.on_response(first[2].address, first[2].id, [])
    while qs := lk.next_queries():
        for n in qs:
            lk.on_response(n.address, n.id, [])
    assert lk.done and [c.info.id for c in lk.closest_responded()][:2] == [nid(5), nid(6)]
    assert lk.rounds == 2  # nodes 5 and 6 were learned from a seed


def test_thousand_nodes_converge_and_find_the_announced_peer() -> None:
    r = random.Random(1000)
    net = Net()
    protos: list[DhtProtocol] = []
    infos: list[NodeInfo] = []
    for i in range(1000):
        own = NodeId(r.randbytes(20))
        p = DhtProtocol(own, 0.0, random.Random(i).randbytes, refresh=False)
        addr = (f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", 6881)
        net.nodes[addr] = p
        protos.append(p)
        infos.append(NodeInfo(own, *addr))
    by_id = sorted(infos, key=lambda n: n.id)
    for p in protos:  # each node knows 40 random nodes and its 10 nearest (a warmed-up network)
        known = r.sample(infos, 40) + sorted(infos, key=lambda n: distance(n.id, p.own_id))[:11]
        for n in known:
            p.table.heard_from(n, 0.0, response=True)
    ih = NodeId(hashlib.sha1(b"simulated torrent").digest())
    seeder = protos[1]
    lookup_id = seeder.start_lookup(ih, LookupKind.GET_PEERS, 1.0, announce_port=51413)
    net.run(1.0)
    (done,) = [e for e in events(seeder) if isinstance(e, LookupDone)]
    assert done.lookup == lookup_id and len(done.nodes) == 8 and done.rounds <= 8
    truly_closest = sorted(by_id, key=lambda n: distance(n.id, ih))[:8]
    assert [n.id for n in done.nodes] == [n.id for n in truly_closest]
    leecher = protos[777]
    leecher.start_lookup(ih, LookupKind.GET_PEERS, 2.0)
    net.run(2.0)
    (found,) = [e for e in events(leecher) if isinstance(e, LookupDone)]
    assert (infos[1].ip, 51413) in found.peers and found.rounds <= 8
    assert net.sent < 20_000
