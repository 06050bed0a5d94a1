"""KRPC codec: BEP 5's own examples as golden vectors, hypothesis round trips, hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.bt.bencode import encode
from trioaria.dht.krpc import (
    ErrorMessage,
    KrpcDecodeError,
    Method,
    Query,
    Response,
    decode_message,
    encode_message,
)
from trioaria.dht.node_id import (
    NodeId,
    NodeInfo,
    bucket_index,
    decode_nodes,
    decode_peer,
    distance,
    encode_nodes,
    encode_peer,
    random_id_in_bucket,
)

A = NodeId(b"abcdefghij0123456789")
M = NodeId(b"mnopqrstuvwxyz123456")

# BEP 5 "KRPC Protocol" examples, byte for byte.
GOLDEN = [
    (b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe", Query(b"aa", "ping", A)),
    (b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re", Response(b"aa", M)),
    (
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
        Query(b"aa", "find_node", A, target=M),
    ),
    (
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
        Query(b"aa", "get_peers", A, info_hash=M),
    ),
    (
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
        Response(
            b"aa",
            A,
            token=b"aoeusnth",
            values=(("97.120.106.101", 11893), ("105.100.104.116", 28269)),
        ),
    ),
    (
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        Query(
            b"aa", "announce_peer", A, info_hash=M, port=6881, token=b"aoeusnth", implied_port=True
        ),
    ),
    (
        b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
        ErrorMessage(b"aa", 201, "A Generic Error Ocurred"),
    ),
]


@pytest.mark.parametrize(("raw", "message"), GOLDEN)
def test_bep5_examples(raw: bytes, message: object) -> None:
    assert decode_message(raw) == message
    assert encode_message(message) == raw  # type: ignore[arg-type]


def test_find_node_response_and_nodes6() -> None:
    nodes = (NodeInfo(M, "127.0.0.1", 6881), NodeInfo(A, "10.0.0.2", 1))
    nodes6 = (NodeInfo(M, "::1", 6882),)
    raw = encode_message(
        Response(b"xy", A, nodes, nodes6, ip=("127.0.0.1", 5)), version=b"TA\x01\x00"
    )
    back = decode_message(raw)
    assert isinstance(back, Response)
    assert back.nodes == nodes and back.nodes6 == nodes6 and back.ip == ("127.0.0.1", 5)
    assert back.version == b"TA\x01\x00"


def test_want_and_unknown_method() -> None:
    raw = encode(
        {
            b"t": b"1",
            b"y": b"q",
            b"q": b"find_node",
            b"a": {b"id": A, b"target": M, b"want": [b"n4", b"n6"]},
        }
    )
    q = decode_message(raw)
    assert isinstance(q, Query) and q.want == (b"n4", b"n6") and q.method == Method.FIND_NODE
    raw = encode({b"t": b"1", b"y": b"q", b"q": b"vote", b"a": {b"id": A}})
    q = decode_message(raw)
    assert isinstance(q, Query) and q.method == "vote"


@pytest.mark.parametrize(
    ("raw", "is_query", "t"),
    [
        (b"", False, None),
        (b"le", False, None),
        (b"d1:y1:qe", False, None),
        (b"d1:t1:x1:y1:qe", True, b"x"),  # no q
        (b"d1:ade1:q4:ping1:t1:x1:y1:qe", True, b"x"),  # no id
        (b"d1:ad2:id3:abce1:q4:ping1:t1:x1:y1:qe", True, b"x"),  # short id
        (b"d1:rde1:t1:x1:y1:re", False, b"x"),
        (b"d1:eli201ee1:t1:x1:y1:ee", False, b"x"),
        (b"d1:t1:x1:y1:ze", False, b"x"),
        (b"d1:rd2:id20:mnopqrstuvwxyz1234565:nodes3:abce1:t1:x1:y1:re", False, b"x"),
        (
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti0e5:token1:ae1:q13:announce_peer1:t1:x1:y1:qe",
            True,
            b"x",
        ),
    ],
)
def test_malformed(raw: bytes, is_query: bool, t: bytes | None) -> None:
    with pytest.raises(KrpcDecodeError) as info:
        decode_message(raw)
    assert info.value.is_query == is_query and info.value.transaction == t


def test_oversized_datagram() -> None:
    with pytest.raises(KrpcDecodeError):
        decode_message(b"d1:t1:x" + b"0" * 9000)


ids = st.binary(min_size=20, max_size=20).map(NodeId)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(1, 65535)
node4 = st.builds(NodeInfo, ids, ipv4, ports)
node6 = st.builds(NodeInfo, ids, ipv6, ports)
tids = st.binary(min_size=1, max_size=4)

queries = st.one_of(
    st.builds(Query, tids, st.just("ping"), ids),
    st.builds(Query, tids, st.just("find_node"), ids, target=ids),
    st.builds(
        Query,
        tids,
        st.just("get_peers"),
        ids,
        info_hash=ids,
        want=st.sampled_from([(), (b"n4",), (b"n4", b"n6")]),
    ),
    st.builds(
        Query,
        tids,
        st.just("announce_peer"),
        ids,
        info_hash=ids,
        port=ports,
        token=st.binary(max_size=20),
        implied_port=st.booleans(),
    ),
)
responses = st.builds(
    Response,
    tids,
    ids,
    nodes=st.lists(node4, max_size=8).map(tuple),
    nodes6=st.lists(node6, max_size=8).map(tuple),
    values=st.lists(st.tuples(st.one_of(ipv4, ipv6), ports), max_size=20).map(tuple),
    token=st.none() | st.binary(max_size=20),
    ip=st.none() | st.tuples(ipv4, ports),
)
errors = st.builds(ErrorMessage, tids, st.integers(200, 299), st.text(max_size=30))


@given(st.one_of(queries, responses, errors))
def test_round_trip(message: Query | Response | ErrorMessage) -> None:
    assert decode_message(encode_message(message)) == message


@given(st.binary(max_size=300))
def test_random_bytes_never_crash(raw: bytes) -> None:
    try:
        decode_message(raw)
    except KrpcDecodeError:
        pass


@given(st.one_of(queries, responses, errors), st.data())
def test_mutated_messages_never_crash(
    message: Query | Response | ErrorMessage, data: st.DataObject
) -> None:
    raw = bytearray(encode_message(message))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        decode_message(bytes(raw))
    except KrpcDecodeError:
        pass


@given(st.lists(node4, max_size=10), st.lists(node6, max_size=10))
def test_compact_nodes(n4: list[NodeInfo], n6: list[NodeInfo]) -> None:
    assert decode_nodes(encode_nodes(n4), 4) == n4
    assert decode_nodes(encode_nodes(n6), 6) == n6


def test_compact_peer_and_distance() -> None:
    assert encode_peer("1.2.3.4", 0x1A2B) == b"\x01\x02\x03\x04\x1a\x2b"
    assert decode_peer(b"\x01\x02\x03\x04\x1a\x2b") == ("1.2.3.4", 0x1A2B)
    assert decode_peer(encode_peer("::1", 6881)) == ("::1", 6881)
    with pytest.raises(ValueError):
        decode_peer(b"12345")
    assert distance(A, A) == 0 and bucket_index(A, A) == 160
    assert bucket_index(b"\x00" * 20, b"\x80" + b"\x00" * 19) == 0
    assert bucket_index(b"\x00" * 20, b"\x00\x01" + b"\x00" * 18) == 15


@given(ids, st.integers(0, 160), st.binary(min_size=20, max_size=20))
def test_random_id_keeps_prefix(prefix: NodeId, bits: int, rnd: bytes) -> None:
    out = random_id_in_bucket(prefix, bits, rnd)
    assert bucket_index(prefix, out) >= bits
