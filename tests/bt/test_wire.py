"""trioaria.bt.wire / messages: golden bytes both ways, fragmentation invariance, limits, states."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trioaria.base.errors import LocalProtocolError
from trioaria.bt.errors import PeerProtocolError
from trioaria.bt.messages import (
    BLOCK_SIZE,
    PROTOCOL_HEADER,
    AllowedFast,
    Bitfield,
    Cancel,
    Choke,
    ConnectionClosed,
    Extended,
    ExtendedHandshake,
    Handshake,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
    UnknownMessage,
    encode_message,
    make_reserved,
    piece_header,
)
from trioaria.bt.wire import ConnectionState, PeerConnection

IH = bytes(range(20))
PID_A = b"-TA0100-aaaaaaaaaaaa"
PID_B = b"-AR1360-bbbbbbbbbbbb"

# (event, wire bytes): BEP 3 layout, checked by hand against the spec text.
GOLDEN = [
    (KeepAlive(), b"\x00\x00\x00\x00"),
    (Choke(), b"\x00\x00\x00\x01\x00"),
    (Unchoke(), b"\x00\x00\x00\x01\x01"),
    (Interested(), b"\x00\x00\x00\x01\x02"),
    (NotInterested(), b"\x00\x00\x00\x01\x03"),
    (Have(258), b"\x00\x00\x00\x05\x04\x00\x00\x01\x02"),
    (Bitfield(b"\xf0\x80"), b"\x00\x00\x00\x03\x05\xf0\x80"),
    (
        Request(1, 16384, 16384),
        b"\x00\x00\x00\x0d\x06\x00\x00\x00\x01\x00\x00\x40\x00\x00\x00\x40\x00",
    ),
    (Piece(2, 32768, b"abc"), b"\x00\x00\x00\x0c\x07\x00\x00\x00\x02\x00\x00\x80\x00abc"),
    (Cancel(1, 0, 16384), b"\x00\x00\x00\x0d\x08\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x40\x00"),
    (Port(6881), b"\x00\x00\x00\x03\x09\x1a\xe1"),
    (SuggestPiece(7), b"\x00\x00\x00\x05\x0d\x00\x00\x00\x07"),
    (HaveAll(), b"\x00\x00\x00\x01\x0e"),
    (HaveNone(), b"\x00\x00\x00\x01\x0f"),
    (
        RejectRequest(1, 0, 16384),
        b"\x00\x00\x00\x0d\x10\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x40\x00",
    ),
    (AllowedFast(9), b"\x00\x00\x00\x05\x11\x00\x00\x00\x09"),
    (
        ExtendedHandshake(m={"ut_metadata": 3}, metadata_size=1000),
        b"\x00\x00\x00\x30\x14\x00d1:md11:ut_metadatai3ee13:metadata_sizei1000ee",
    ),
    (
        Extended(3, b"d8:msg_typei0e5:piecei0ee"),
        b"\x00\x00\x00\x1b\x14\x03d8:msg_typei0e5:piecei0ee",
    ),
    (UnknownMessage(99, b"xy"), b"\x00\x00\x00\x03\x63xy"),
]


def opened(*, fast: bool = True, num_pieces: int | None = None, **kw) -> PeerConnection:
    """A connection whose handshakes are done both ways (ours sent, the peer's received)."""
    conn = PeerConnection(info_hash=IH, num_pieces=num_pieces, **kw)
    conn.send(Handshake(IH, PID_A, make_reserved(fast=fast)))
    conn.receive_data(encode_message(Handshake(IH, PID_B, make_reserved(fast=fast))))
    assert isinstance(conn.next_event(), Handshake)
    return conn


def events_of(conn: PeerConnection) -> list[object]:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def feed(conn: PeerConnection, data: bytes, cuts: list[int] | None = None) -> list[object]:
    """Feed data split at ``cuts`` (sorted offsets), draining events after every chunk."""
    out: list[object] = []
    bounds = [0, *sorted(set(cuts or [])), len(data)]
    for a, b in itertools.pairwise(bounds):
        if b > a:
            conn.receive_data(data[a:b])
            out.extend(events_of(conn))
    return out


def test_handshake_golden_and_bits():
    hs = Handshake(IH, PID_A, make_reserved(extensions=True, fast=True, dht=True))
    raw = encode_message(hs)
    assert raw == PROTOCOL_HEADER + bytes([0, 0, 0, 0, 0, 0x10, 0, 0x05]) + IH + PID_A
    assert len(raw) == 68
    assert hs.supports_extensions and hs.supports_fast and hs.supports_dht
    plain = Handshake(IH, PID_A, bytes(8))
    assert not (plain.supports_extensions or plain.supports_fast or plain.supports_dht)
    with pytest.raises(LocalProtocolError):
        Handshake(IH[:19], PID_A)


@pytest.mark.parametrize(("event", "raw"), GOLDEN)
def test_golden_encode(event, raw):
    assert encode_message(event) == raw


@pytest.mark.parametrize(("event", "raw"), GOLDEN)
def test_golden_decode_whole_bytewise_and_with_trailing(event, raw):
    first_only = isinstance(event, Bitfield | HaveAll | HaveNone)
    for cuts in ([], list(range(1, len(raw)))):
        conn = opened()
        if isinstance(event, Extended):
            conn.send(ExtendedHandshake(m={"ut_metadata": 3}))
        assert feed(conn, raw, cuts) == [event]
    conn = opened()
    trailing = encode_message(Have(1))
    assert feed(conn, raw + trailing) == [event, Have(1)]
    if not first_only:
        conn = opened()
        assert feed(conn, trailing + raw) == [Have(1), event]


def test_extended_message_carries_our_extension_name():
    conn = opened()
    conn.send(ExtendedHandshake(m={"ut_metadata": 3, "ut_pex": 0}))
    assert conn.local_extensions == {"ut_metadata": 3}
    ev = feed(conn, encode_message(Extended(3, b"x")) + encode_message(Extended(4, b"y")))
    assert ev == [Extended(3, b"x", "ut_metadata"), Extended(4, b"y", None)]


def test_extended_handshake_updates_the_remote_map():
    conn = opened()
    feed(conn, encode_message(ExtendedHandshake(m={"ut_metadata": 2, "ut_pex": 1}, reqq=500)))
    assert conn.remote_extensions == {"ut_metadata": 2, "ut_pex": 1}
    feed(conn, encode_message(ExtendedHandshake(m={"ut_pex": 0})))
    assert conn.remote_extensions == {"ut_metadata": 2}


def test_extended_handshake_fields_and_leniency():
    hs = ExtendedHandshake(
        m={"ut_metadata": 1},
        listen_port=6881,
        client="trioaria 0.1",
        yourip=b"\x7f\x00\x00\x01",
        reqq=250,
        metadata_size=31337,
        extra={b"upload_only": 1},
    )
    conn = opened()
    (got,) = feed(conn, encode_message(hs))
    assert got == hs
    # Wrong types are ignored, not fatal: peers in the wild send all sorts.
    raw = b"d1:md1:ai1e1:bi999e1:c1:xe1:pi0e1:v3:abc6:yourip1:x4:reqq1:xe"
    (got,) = feed(opened(), b"\x00\x00\x00" + bytes([len(raw) + 2]) + b"\x14\x00" + raw)
    assert got.m == {"a": 1} and got.listen_port is None and got.client == "abc"
    assert got.yourip is None and got.reqq is None


@pytest.mark.parametrize(
    "payload",
    [b"\x00", b"\x00not bencode", b"\x00i5e", b"\x00d1:m"],
    ids=["empty", "junk", "int", "cut"],
)
def test_bad_extended_handshake(payload):
    conn = opened()
    with pytest.raises(PeerProtocolError):
        feed(conn, (len(payload) + 1).to_bytes(4, "big") + b"\x14" + payload)
    with pytest.raises(PeerProtocolError):
        feed(opened(), b"\x00\x00\x00\x01\x14")


def test_piece_inside_one_chunk_is_a_view_of_that_chunk():
    conn = opened()
    block = bytes(range(256)) * 64
    chunk = encode_message(Have(0)) + encode_message(Piece(1, 0, block)) + encode_message(Have(1))
    conn.receive_data(chunk)
    events = events_of(conn)
    piece = events[1]
    assert isinstance(piece.data, memoryview) and piece.data.obj is chunk
    assert piece.data == block and len(piece.data) == BLOCK_SIZE


def test_piece_split_across_chunks_stays_valid_after_more_data():
    conn = opened()
    block = b"\xab" * BLOCK_SIZE
    raw = encode_message(Piece(1, 0, block)) + encode_message(Piece(2, 0, b"\xcd" * BLOCK_SIZE))
    first = feed(conn, raw[:100] + b"", [50])
    assert first == []
    conn.receive_data(raw[100 : BLOCK_SIZE + 20])
    (piece,) = events_of(conn)
    kept = piece.data
    # More data after the view was handed out: the view must not change or break.
    rest = feed(conn, raw[BLOCK_SIZE + 20 :] + encode_message(Have(3)), [5000, 9000])
    assert kept == block
    assert rest == [Piece(2, 0, b"\xcd" * BLOCK_SIZE), Have(3)]


def test_undrained_chunks_keep_their_order():
    conn = opened()
    raw = b"".join(encode_message(Have(i)) for i in range(10))
    conn.receive_data(raw[:23])
    assert conn.next_event() == Have(0)
    conn.receive_data(raw[23:])  # without draining first
    assert events_of(conn) == [Have(i) for i in range(1, 10)]
    assert conn.buffered == 0


def test_eof_at_a_boundary_and_mid_message():
    conn = opened()
    conn.receive_data(encode_message(Choke()))
    conn.receive_data(b"")
    assert events_of(conn) == [Choke(), ConnectionClosed()]
    assert conn.state is ConnectionState.CLOSED and conn.next_event() is None
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"x")
    # a peer that hangs up in the middle of a message has closed the connection, no more
    # (it is not a protocol violation: a killed peer must not be banned)
    for partial in (encode_message(Have(1))[:3], encode_message(Piece(0, 0, b"x" * 100))[:50]):
        conn = opened()
        conn.receive_data(partial)
        conn.receive_data(b"")
        assert events_of(conn) == [ConnectionClosed()]
        assert conn.state is ConnectionState.CLOSED and conn.buffered == 0


def test_handshake_checks():
    conn = PeerConnection(info_hash=IH)
    conn.receive_data(b"\x13BitTorrent protocoX")
    with pytest.raises(PeerProtocolError, match="not a BitTorrent handshake"):
        conn.next_event()
    conn = PeerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\n")
    with pytest.raises(PeerProtocolError):
        conn.next_event()
    conn = PeerConnection(info_hash=IH)
    conn.receive_data(encode_message(Handshake(bytes(20), PID_B)))
    with pytest.raises(PeerProtocolError, match="another torrent"):
        conn.next_event()
    assert conn.state is ConnectionState.ERROR
    with pytest.raises(PeerProtocolError):  # sticky
        conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.send(KeepAlive())


def test_incoming_connection_learns_the_torrent_from_the_peer():
    conn = PeerConnection()
    data = encode_message(Handshake(IH, PID_B)) + encode_message(Interested())
    assert feed(conn, data, list(range(1, 69))) == [Handshake(IH, PID_B), Interested()]
    with pytest.raises(LocalProtocolError, match="another torrent"):
        conn.send(Handshake(bytes(20), PID_A))
    conn.send(Handshake(IH, PID_A))
    assert conn.fast and conn.extensions


LIMIT_CASES = {
    "huge prefix": (b"\xff\xff\xff\xff", "exceeds every limit"),
    "piece too big": (piece_header(0, 0, BLOCK_SIZE + 1)[:5], "block >"),
    "piece too short": (b"\x00\x00\x00\x05\x07", "piece message of length 5"),
    "have too long": (b"\x00\x00\x00\x06\x04", "have message of length 6"),
    "choke with payload": (b"\x00\x00\x00\x02\x00", "choke message of length 2"),
    "request short": (b"\x00\x00\x00\x0c\x06", "request message of length 12"),
    "port short": (b"\x00\x00\x00\x02\x09", "port message"),
    "extended too big": (b"\x00\x10\x00\x01\x14", "too long"),
    "unknown too big": (b"\x00\x10\x00\x01\x63", "too long"),
}


@pytest.mark.parametrize("name", sorted(LIMIT_CASES))
def test_length_limits_fail_before_the_body_arrives(name):
    prefix, message = LIMIT_CASES[name]
    conn = opened()
    conn.receive_data(prefix)
    with pytest.raises(PeerProtocolError, match=message):
        conn.next_event()
    # The same prefix inside a larger chunk fails the same way.
    conn = opened()
    conn.receive_data(encode_message(Have(0)) + prefix)
    assert conn.next_event() == Have(0)
    with pytest.raises(PeerProtocolError, match=message):
        conn.next_event()


def test_full_block_is_accepted_and_limits_are_configurable():
    conn = opened()
    assert feed(conn, encode_message(Piece(0, 0, b"z" * BLOCK_SIZE))) == [
        Piece(0, 0, b"z" * BLOCK_SIZE)
    ]
    # A whole oversized piece inside one chunk (the fast path) fails like a split one.
    with pytest.raises(PeerProtocolError, match="block >"):
        feed(opened(), encode_message(Piece(0, 0, b"z" * (BLOCK_SIZE + 1))))
    big = opened(max_block=32768)
    assert feed(big, encode_message(Piece(0, 0, b"z" * 32768))) == [Piece(0, 0, b"z" * 32768)]
    small = opened(max_message=10)
    with pytest.raises(PeerProtocolError):
        feed(small, encode_message(Bitfield(b"\xff" * 10)))


def test_bitfield_checks_with_known_piece_count():
    assert feed(opened(num_pieces=12), encode_message(Bitfield(b"\xff\xf0"))) == [
        Bitfield(b"\xff\xf0")
    ]
    with pytest.raises(PeerProtocolError, match="expected 3"):
        feed(opened(num_pieces=12), encode_message(Bitfield(b"\xff\xf0\x00\x00")))
    with pytest.raises(PeerProtocolError, match="spare bits"):
        feed(opened(num_pieces=12), encode_message(Bitfield(b"\xff\xf8")))
    assert feed(opened(num_pieces=16), encode_message(Bitfield(b"\xff\xff"))) == [
        Bitfield(b"\xff\xff")
    ]


def test_set_num_pieces_enables_index_checks():
    conn = opened()
    assert feed(conn, encode_message(Have(500))) == [Have(500)]
    conn.set_num_pieces(10)
    for event in (
        Have(10),
        Request(10, 0, 1),
        Piece(10, 0, b"x"),
        SuggestPiece(10),
        AllowedFast(10),
    ):
        c = opened(num_pieces=10)
        with pytest.raises(PeerProtocolError, match="piece 10 of 10"):
            feed(c, encode_message(event))
    with pytest.raises(PeerProtocolError):
        feed(conn, encode_message(Cancel(10, 0, 1)))


def test_blocks_must_lie_inside_their_piece():
    # 3 pieces of 32 KiB and a last piece of 1000 bytes.
    def geo() -> PeerConnection:
        return opened(piece_length=32768, total_length=2 * 32768 + 1000)

    assert geo().num_pieces == 3
    ok = [Request(0, 16384, 16384), Request(2, 0, 1000), Piece(2, 999, b"x"), Cancel(1, 0, 16384)]
    assert feed(geo(), b"".join(encode_message(e) for e in ok)) == ok
    for bad in (
        Request(0, 16385, 16384),
        Request(2, 0, 1001),
        Request(2, 4294967295, 1),
        Piece(2, 1000, b"x"),
        Cancel(0, 32768, 1),
        RejectRequest(2, 990, 11),
        Request(3, 0, 1),
    ):
        with pytest.raises(PeerProtocolError, match=r"beyond piece|of 3"):
            feed(geo(), encode_message(bad))
    conn = opened()
    conn.set_geometry(16384, 16384)
    with pytest.raises(PeerProtocolError):
        feed(conn, encode_message(Request(0, 1, 16384)))
    with pytest.raises(ValueError):
        opened(num_pieces=5, piece_length=16384, total_length=16384)
    with pytest.raises(ValueError):
        opened().set_geometry(0, 1)


@pytest.mark.parametrize("first", [Bitfield(b"\x80"), HaveAll(), HaveNone()])
def test_first_message_only(first):
    # Allowed first, also after an extended handshake and a port message (aria2 sends those first).
    conn = opened()
    early = (
        encode_message(ExtendedHandshake(m={}))
        + encode_message(Port(1))
        + encode_message(KeepAlive())
    )
    assert feed(conn, early + encode_message(first))[-1] == first
    conn = opened()
    if isinstance(first, HaveNone):
        with pytest.raises(PeerProtocolError, match="only allowed as the first message"):
            feed(conn, encode_message(Unchoke()) + encode_message(first))
    else:  # aria2 sends a later bitfield / have all instead of many haves (checkHave)
        assert feed(conn, encode_message(Unchoke()) + encode_message(first))[-1] == first


@pytest.mark.parametrize(
    "event", [SuggestPiece(1), HaveAll(), HaveNone(), RejectRequest(1, 0, 1), AllowedFast(1)]
)
def test_fast_messages_need_bep6_on_both_sides(event):
    with pytest.raises(PeerProtocolError, match="BEP 6"):
        feed(opened(fast=False), encode_message(event))
    with pytest.raises(LocalProtocolError, match="Fast extension"):
        opened(fast=False).send(event)
    # We offered fast, the peer did not.
    conn = PeerConnection(info_hash=IH)
    conn.send(Handshake(IH, PID_A))
    feed(conn, encode_message(Handshake(IH, PID_B, make_reserved(fast=False))))
    assert not conn.fast
    with pytest.raises(PeerProtocolError):
        feed(conn, encode_message(event))


def test_request_length_limits_both_ways():
    with pytest.raises(PeerProtocolError, match="request of 16385"):
        feed(opened(), encode_message(Request(0, 0, BLOCK_SIZE + 1)))
    with pytest.raises(PeerProtocolError, match="request of 0"):
        feed(opened(), encode_message(Request(0, 0, 0)))
    with pytest.raises(LocalProtocolError):
        opened().send(Request(0, 0, BLOCK_SIZE + 1))
    with pytest.raises(LocalProtocolError):
        opened().send(Piece(0, 0, b"x" * (BLOCK_SIZE + 1)))


def test_send_rules():
    conn = PeerConnection(info_hash=IH)
    with pytest.raises(LocalProtocolError, match="before our handshake"):
        conn.send(Interested())
    assert conn.send(Handshake(IH, PID_A)) == encode_message(Handshake(IH, PID_A))
    with pytest.raises(LocalProtocolError, match="before the peer's handshake"):
        conn.send(Interested())
    with pytest.raises(LocalProtocolError, match="already sent"):
        conn.send(Handshake(IH, PID_A))
    conn = opened()
    conn.send(ExtendedHandshake(m={"ut_metadata": 1}))
    conn.send(Bitfield(b"\x80"))
    assert conn.send(Have(0)) == encode_message(Have(0))
    with pytest.raises(LocalProtocolError, match="first message"):
        conn.send(HaveAll())
    for bad in (
        Have(1 << 32),
        Port(70000),
        Extended(0, b""),
        Extended(256, b""),
        UnknownMessage(300, b""),
    ):
        with pytest.raises(LocalProtocolError):
            encode_message(bad)
    with pytest.raises(LocalProtocolError):
        encode_message(ConnectionClosed())


def test_piece_header_matches_encoded_piece():
    block = b"q" * 100
    assert piece_header(3, 16384, len(block)) + block == encode_message(Piece(3, 16384, block))
    conn = opened()
    assert conn.send_piece_header(3, 16384, len(block)) == piece_header(3, 16384, len(block))
    with pytest.raises(LocalProtocolError):
        conn.send_piece_header(0, 0, BLOCK_SIZE + 1)
    with pytest.raises(LocalProtocolError, match="first message"):
        conn.send(Bitfield(b"\x80"))
    with pytest.raises(LocalProtocolError, match="before our handshake"):
        PeerConnection(info_hash=IH).send_piece_header(0, 0, 1)


def test_pack_piece_headers_lays_out_a_batch_of_blocks() -> None:
    """The upload path packs every header of a batch into one buffer, data slots between."""
    blocks = [(3, 0, 100), (3, 100, 7), (9, 16384, 1)]
    buf = memoryview(bytearray(200))
    conn = opened()
    end = conn.pack_piece_headers(buf, blocks)
    assert end == sum(13 + n for _, _, n in blocks)
    at, expected = 0, b""
    for index, begin, length in blocks:
        expected += piece_header(index, begin, length) + bytes(length)
        at += 13 + length
    assert bytes(buf[:end]) == expected
    with pytest.raises(LocalProtocolError):
        conn.pack_piece_headers(buf, [(0, 0, BLOCK_SIZE + 1)])
    with pytest.raises(LocalProtocolError, match="before our handshake"):
        PeerConnection(info_hash=IH).pack_piece_headers(buf, blocks)


# --- properties -------------------------------------------------------------------------------

U32 = st.integers(0, 2**32 - 1)
INDEX = st.integers(0, 99)
LATER = st.one_of(
    st.builds(KeepAlive),
    st.builds(Choke),
    st.builds(Unchoke),
    st.builds(Interested),
    st.builds(NotInterested),
    st.builds(Have, INDEX),
    st.builds(Request, INDEX, U32, st.integers(1, BLOCK_SIZE)),
    st.builds(Piece, INDEX, U32, st.binary(max_size=300)),
    st.builds(Cancel, INDEX, U32, U32),
    st.builds(Port, st.integers(0, 65535)),
    st.builds(SuggestPiece, INDEX),
    st.builds(RejectRequest, INDEX, U32, U32),
    st.builds(AllowedFast, INDEX),
    st.builds(
        ExtendedHandshake,
        m=st.dictionaries(st.text(min_size=1, max_size=8), st.integers(1, 255), max_size=3),
        listen_port=st.none() | st.integers(1, 65535),
        client=st.none() | st.text(max_size=10),
        reqq=st.none() | st.integers(1, 1000),
        metadata_size=st.none() | st.integers(1, 10**7),
    ),
    st.builds(Extended, st.integers(1, 255), st.binary(max_size=50)),
    st.builds(UnknownMessage, st.integers(21, 255), st.binary(max_size=20)),
)
FIRST = st.one_of(
    st.builds(Bitfield, st.just(b"\xff" * 12 + b"\xf0")), st.builds(HaveAll), st.builds(HaveNone)
)


@settings(max_examples=200)
@given(st.none() | FIRST, st.lists(LATER, max_size=12), st.data())
def test_fragmentation_invariance(first, later, data):
    events = ([first] if first is not None else []) + later
    raw = b"".join(encode_message(e) for e in events)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=20))
    conn = opened(num_pieces=100)
    got = feed(conn, raw, cuts)
    assert got == events
    assert conn.buffered == 0
    # And a sender-side connection accepts the same sequence.
    sender = opened(num_pieces=100)
    assert b"".join(sender.send(e) for e in events) == raw


def events_with_blocks(conn: PeerConnection) -> list[object]:
    """As :func:`events_of`, taking every run of whole blocks with ``next_blocks`` first."""
    out: list[object] = []
    while True:
        blocks = conn.next_blocks()
        out.extend(Piece(i, b, bytes(d)) for i, b, d in blocks)
        if blocks:
            continue
        event = conn.next_event()
        if event is None:
            return out
        out.append(event)


@settings(max_examples=200)
@given(st.lists(LATER, max_size=12), st.data())
def test_next_blocks_gives_what_next_event_gives(events, data):
    """The bulk path (whole ``piece`` messages in a row) changes nothing but the speed: the
    same messages in the same order, however the bytes are cut; a block that does not fit its
    piece is left to next_event, which refuses it."""
    # pieces 0-3 and the last two (99 may be shorter); rarely one past the end, which is refused
    # (and hides what follows it)
    index = st.integers(0, 40).map(lambda i: (0, 1, 2, 3, 98, 99)[i % 6] if i < 40 else 100)
    blocks = data.draw(
        st.lists(st.builds(Piece, index, st.integers(0, 16), st.binary(max_size=16)), max_size=8)
    )
    order = data.draw(st.permutations(events + blocks))
    raw = b"".join(encode_message(e) for e in order)
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(raw)), max_size=8))))
    slow, quick = opened(num_pieces=100), opened(num_pieces=100)
    # 100 pieces of 16 bytes, the last one maybe shorter; or no geometry (the piece count only)
    total = data.draw(st.integers(99 * 16 + 1, 100 * 16 + 1))
    if total <= 100 * 16:
        quick.set_geometry(16, total)
        slow.set_geometry(16, total)
    got_slow: list[object] = []
    got_quick: list[object] = []
    errors = []
    for conn, got, drain in ((slow, got_slow, events_of), (quick, got_quick, events_with_blocks)):
        try:
            for a, b in itertools.pairwise([0, *cuts, len(raw)]):
                if b > a:
                    conn.receive_data(raw[a:b])
                    got.extend(drain(conn))
        except PeerProtocolError as exc:
            errors.append(str(exc))
    assert [
        e if not isinstance(e, Piece) else (e.index, e.begin, bytes(e.data)) for e in got_quick
    ] == [e if not isinstance(e, Piece) else (e.index, e.begin, bytes(e.data)) for e in got_slow]
    assert len(errors) in (0, 2) and len(set(errors)) <= 1


@pytest.mark.parametrize(
    ("index", "begin", "size", "taken"),
    [
        (0, 0, 16, True),  # a whole piece
        (0, 8, 8, True),  # its end
        (0, 8, 9, False),  # one byte past it
        (98, 15, 1, True),
        (99, 0, 10, True),  # the last piece holds 10 bytes
        (99, 5, 5, True),
        (99, 5, 6, False),
        (100, 0, 1, False),  # no such piece
    ],
)
def test_next_blocks_range_check_at_piece_ends(index, begin, size, taken):
    """The bulk path's range check, byte-exact: a block that fits its piece is taken; one that
    does not is left to next_event, which refuses it."""
    conn = opened(num_pieces=100)
    conn.set_geometry(16, 99 * 16 + 10)
    conn.receive_data(encode_message(Piece(index, begin, b"x" * size)))
    blocks = conn.next_blocks()
    if taken:
        assert [(i, b, bytes(d)) for i, b, d in blocks] == [(index, begin, b"x" * size)]
    else:
        assert blocks == []
        with pytest.raises(PeerProtocolError):
            conn.next_event()


@given(st.binary(max_size=200), st.data())
def test_arbitrary_bytes_after_handshake_raise_only_peer_errors(raw, data):
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=5))
    conn = opened(num_pieces=data.draw(st.none() | st.integers(1, 64)))
    try:
        feed(conn, raw, cuts)
        conn.receive_data(b"")
        events_of(conn)
    except PeerProtocolError:
        assert conn.state is ConnectionState.ERROR


@given(st.binary(max_size=100))
def test_arbitrary_handshake_bytes_raise_only_peer_errors(raw):
    conn = PeerConnection(info_hash=IH)
    try:
        conn.receive_data(PROTOCOL_HEADER[: len(raw) % 21] + raw)
        events_of(conn)
    except PeerProtocolError:
        pass


def test_the_remote_extension_map_is_bounded() -> None:
    """BEP 10: later handshakes update ``m``; repeated ones with new names do not grow it past
    MAX_EXTENSIONS, while known names still update and an id of 0 still removes."""
    from trioaria.bt.wire import MAX_EXTENSIONS

    conn = opened()
    for k in range(5):
        names = {f"x{k}_{i}": 1 + i % 200 for i in range(100)}
        conn.receive_data(encode_message(ExtendedHandshake(m={"ut_pex": 1, **names})))
        assert isinstance(conn.next_event(), ExtendedHandshake)
    assert len(conn.remote_extensions) == MAX_EXTENSIONS
    conn.receive_data(encode_message(ExtendedHandshake(m={"ut_pex": 9, "x0_1": 0})))
    conn.next_event()
    assert conn.remote_extensions["ut_pex"] == 9 and "x0_1" not in conn.remote_extensions
