"""trioaria.bt.udp_tracker: BEP 15 packets (golden, round trips) and the sans-IO client."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.bt.errors import TrackerError
from trioaria.bt.tracker import AnnounceEvent, AnnounceRequest, PeerAddress, ScrapeStats
from trioaria.bt.udp_tracker import (
    UdpAnnounceRequest,
    UdpAnnounceResponse,
    UdpConnectRequest,
    UdpConnectResponse,
    UdpError,
    UdpScrapeRequest,
    UdpScrapeResponse,
    UdpTimeout,
    UdpTrackerClient,
    decode_udp_request,
    decode_udp_response,
    encode_udp,
)

IH = bytes(range(20))
PID = b"-TA0100-abcdefghijkl"
REQ = AnnounceRequest(
    IH, PID, 6881, uploaded=3, downloaded=2, left=1, event=AnnounceEvent.STARTED, key=7
)


def test_connect_golden():
    raw = encode_udp(UdpConnectRequest(0x01020304))
    assert raw == bytes.fromhex("00000417271019800000000001020304")
    assert decode_udp_request(raw) == UdpConnectRequest(0x01020304)
    resp = bytes.fromhex("00000000010203041122334455667788")
    assert decode_udp_response(resp) == UdpConnectResponse(0x01020304, 0x1122334455667788)


def test_announce_request_layout():
    raw = encode_udp(UdpAnnounceRequest(0x1122334455667788, 9, REQ))
    assert len(raw) == 98
    assert raw[:8] == bytes.fromhex("1122334455667788")
    assert raw[8:16] == bytes.fromhex("0000000100000009")
    assert raw[16:36] == IH and raw[36:56] == PID
    assert raw[56:64] == (2).to_bytes(8, "big")  # downloaded
    assert raw[64:72] == (1).to_bytes(8, "big")  # left
    assert raw[72:80] == (3).to_bytes(8, "big")  # uploaded
    assert raw[80:84] == (2).to_bytes(4, "big")  # event: started = 2
    assert raw[84:88] == bytes(4)  # ip: default
    assert raw[88:92] == (7).to_bytes(4, "big")  # key
    assert raw[92:96] == (50).to_bytes(4, "big")  # num_want
    assert raw[96:98] == (6881).to_bytes(2, "big")
    numwant_default = encode_udp(
        UdpAnnounceRequest(1, 1, AnnounceRequest(IH, PID, 1, numwant=None))
    )
    assert numwant_default[92:96] == b"\xff\xff\xff\xff"  # -1: "default"


def test_responses_golden():
    raw = bytes.fromhex("00000001000000090000070800000002000000037f0000011ae1")
    assert decode_udp_response(raw) == UdpAnnounceResponse(
        9, 1800, 2, 3, (PeerAddress("127.0.0.1", 6881),)
    )
    raw6 = bytes.fromhex("0000000100000009000007080000000200000003") + bytes(15) + b"\x01\x00\x50"
    assert decode_udp_response(raw6, ipv6=True).peers == (PeerAddress("::1", 80),)
    raw = bytes.fromhex("0000000200000004000000010000000200000003")
    assert decode_udp_response(raw) == UdpScrapeResponse(4, (ScrapeStats(1, 2, 3),))
    raw = bytes.fromhex("0000000300000004") + b"unknown torrent"
    assert decode_udp_response(raw) == UdpError(4, "unknown torrent")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        bytes(7),
        bytes.fromhex("000000000000000111"),
        bytes.fromhex("00000001000000010000"),
        bytes.fromhex("0000000100000001") + bytes(12) + b"12345",
        bytes.fromhex("0000000200000001") + bytes(11),
        bytes.fromhex("0000000900000001"),
    ],
)
def test_bad_responses(raw):
    with pytest.raises(TrackerError):
        decode_udp_response(raw)


def test_bad_requests():
    for raw in (
        bytes(15),
        bytes(16),  # connect action but no magic
        bytes.fromhex("00000417271019800000000100000000") + bytes(10),
        bytes.fromhex("00000000000000010000000200000000") + bytes(19),
        bytes.fromhex("00000000000000010000000700000000"),
    ):
        with pytest.raises(TrackerError):
            decode_udp_request(raw)
    bad_event = bytearray(encode_udp(UdpAnnounceRequest(1, 1, REQ)))
    bad_event[83] = 9
    with pytest.raises(TrackerError):
        decode_udp_request(bytes(bad_event))
    with pytest.raises(ValueError):
        encode_udp(UdpAnnounceRequest(1, 1, AnnounceRequest(IH[:5], PID, 1)))
    with pytest.raises(ValueError):
        encode_udp(UdpAnnounceResponse(1, 1, 1, 1, (PeerAddress("::1", 1),)))


U32 = st.integers(0, 2**32 - 1)
HASH = st.binary(min_size=20, max_size=20)
REQUESTS = st.one_of(
    st.builds(UdpConnectRequest, U32),
    st.builds(
        UdpAnnounceRequest,
        st.integers(0, 2**64 - 1),
        U32,
        st.builds(
            AnnounceRequest,
            HASH,
            HASH,
            st.integers(0, 65535),
            uploaded=st.integers(0, 2**64 - 1),
            downloaded=st.integers(0, 2**64 - 1),
            left=st.integers(0, 2**64 - 1),
            event=st.sampled_from(list(AnnounceEvent)),
            numwant=st.none() | st.integers(0, 2**31 - 1),
            key=U32,
        ),
        U32,
    ),
    st.builds(
        UdpScrapeRequest, st.integers(0, 2**64 - 1), U32, st.lists(HASH, max_size=5).map(tuple)
    ),
)


@given(REQUESTS)
def test_request_round_trip(packet):
    # compact/no_peer_id and the other HTTP-only fields are not on the UDP wire; defaults come back.
    assert decode_udp_request(encode_udp(packet)) == packet


@given(
    U32,
    U32,
    U32,
    U32,
    st.lists(st.tuples(st.ip_addresses(v=4), st.integers(1, 65535)), max_size=5),
    st.lists(st.tuples(st.ip_addresses(v=6), st.integers(1, 65535)), max_size=5),
)
def test_response_round_trip(tid, interval, leechers, seeders, v4, v6):
    for ipv6, peers in ((False, v4), (True, v6)):
        packet = UdpAnnounceResponse(
            tid, interval, leechers, seeders, tuple(PeerAddress(str(ip), p) for ip, p in peers)
        )
        assert decode_udp_response(encode_udp(packet, ipv6=ipv6), ipv6=ipv6) == packet
    scrape = UdpScrapeResponse(tid, (ScrapeStats(interval, leechers, seeders),) * 3)
    assert decode_udp_response(encode_udp(scrape)) == scrape
    assert decode_udp_response(encode_udp(UdpConnectResponse(tid, interval))) == UdpConnectResponse(
        tid, interval
    )


@given(st.binary(max_size=120))
def test_arbitrary_datagrams_raise_only_tracker_errors(raw):
    for decoder in (decode_udp_response, decode_udp_request):
        try:
            decoder(raw)
        except TrackerError:
            pass


# --- the client --------------------------------------------------------------------------------


def client(**kw) -> UdpTrackerClient:
    counter = itertools.count(100)
    return UdpTrackerClient(lambda: next(counter), **kw)


def connect_reply(datagram: bytes, cid: int = 0xC1D) -> bytes:
    request = decode_udp_request(datagram)
    assert isinstance(request, UdpConnectRequest)
    return encode_udp(UdpConnectResponse(request.transaction_id, cid))


def test_connect_then_announce():
    c = client()
    c.announce(REQ, now=0.0)
    (hello,) = c.datagrams_to_send(0.0)
    assert c.datagrams_to_send(0.0) == []
    c.receive_datagram(connect_reply(hello), now=1.0)
    (ann,) = c.datagrams_to_send(1.0)
    request = decode_udp_request(ann)
    assert isinstance(request, UdpAnnounceRequest)
    assert request.connection_id == 0xC1D and request.request == REQ
    # Each new request draws a fresh transaction id from the source.
    assert (decode_udp_request(hello).transaction_id, request.transaction_id) == (100, 101)
    reply = UdpAnnounceResponse(request.transaction_id, 900, 1, 2, (PeerAddress("10.0.0.1", 1),))
    c.receive_datagram(encode_udp(reply), now=2.0)
    assert c.next_event() == reply
    assert c.next_event() is None and not c.busy and c.get_timer() is None


def test_stray_and_malformed_datagrams_are_ignored():
    c = client()
    c.announce(REQ, now=0.0)
    (hello,) = c.datagrams_to_send(0.0)
    tid = decode_udp_request(hello).transaction_id
    c.receive_datagram(encode_udp(UdpConnectResponse(tid + 1, 5)), now=0.1)  # wrong tid
    c.receive_datagram(b"garbage", now=0.1)
    c.receive_datagram(encode_udp(UdpScrapeResponse(tid, ())), now=0.1)  # wrong kind
    assert c.datagrams_to_send(0.2) == [] and c.next_event() is None
    c.receive_datagram(connect_reply(hello), now=0.3)
    assert len(c.datagrams_to_send(0.3)) == 1


def test_connection_id_is_reused_for_a_minute():
    c = client()
    c.announce(REQ, now=0.0)
    (hello,) = c.datagrams_to_send(0.0)
    c.receive_datagram(connect_reply(hello), now=0.0)
    (ann,) = c.datagrams_to_send(0.0)
    c.receive_datagram(
        encode_udp(UdpAnnounceResponse(decode_udp_request(ann).transaction_id, 1, 0, 0)), 0.0
    )
    c.announce(REQ, now=59.0)
    (again,) = c.datagrams_to_send(59.0)
    assert isinstance(decode_udp_request(again), UdpAnnounceRequest)
    c.receive_datagram(
        encode_udp(UdpAnnounceResponse(decode_udp_request(again).transaction_id, 1, 0, 0)), 59.5
    )
    c.scrape([IH], now=60.0)
    (late,) = c.datagrams_to_send(60.0)
    assert isinstance(decode_udp_request(late), UdpConnectRequest)
    c.receive_datagram(connect_reply(late, 77), now=60.5)
    (scrape,) = c.datagrams_to_send(60.5)
    request = decode_udp_request(scrape)
    assert isinstance(request, UdpScrapeRequest) and request.connection_id == 77
    assert request.info_hashes == (IH,)
    c.receive_datagram(
        encode_udp(UdpScrapeResponse(request.transaction_id, (ScrapeStats(1, 2, 3),))), 61
    )
    events = [c.next_event() for _ in range(3)]
    assert isinstance(events[2], UdpScrapeResponse) and events[2].stats == (ScrapeStats(1, 2, 3),)


def test_retransmissions_follow_bep15_then_time_out():
    c = client()
    c.announce(REQ, now=0.0)
    (first,) = c.datagrams_to_send(0.0)
    sends = [0.0]
    gave_up_at = None
    while (deadline := c.get_timer()) is not None:
        gave_up_at = deadline
        c.handle_timer(deadline - 0.001)  # not yet
        assert c.datagrams_to_send(deadline - 0.001) == []
        c.handle_timer(deadline)
        out = c.datagrams_to_send(deadline)
        if out:
            assert out == [first]  # the same datagram, the same transaction id
            sends.append(deadline)
    # 15 * 2^n for n = 0..8: sent at 0, 15, 45, 105, ... then given up 3840 s after the last.
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert gaps == [15.0 * 2**n for n in range(8)]
    assert gave_up_at == sends[-1] + 15.0 * 2**8
    event = c.next_event()
    assert isinstance(event, UdpTimeout) and event.attempts == 9


def test_error_ends_the_operation_and_the_queue_moves_on():
    c = client(timeout_base=1.0, max_retransmissions=0)
    c.announce(REQ, now=0.0)
    c.scrape([IH], now=0.0)
    (hello,) = c.datagrams_to_send(0.0)
    tid = decode_udp_request(hello).transaction_id
    c.receive_datagram(encode_udp(UdpError(tid, "go away")), now=0.5)
    assert c.next_event() == UdpError(tid, "go away")
    (hello2,) = c.datagrams_to_send(0.5)  # the scrape starts
    assert isinstance(decode_udp_request(hello2), UdpConnectRequest)
    c.handle_timer(1.5)
    assert isinstance(c.next_event(), UdpTimeout)
    assert not c.busy
    with pytest.raises(ValueError):
        c.scrape([], now=2.0)
