"""trioaria.bt.tracker: announce URLs, HTTP announce/scrape responses, compact peers."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from tests.servers.canned import redirect_to, serve_canned
from trioaria.bt.announce import http_get
from trioaria.bt.bencode import encode
from trioaria.bt.errors import TrackerError, TrackerFailure
from trioaria.bt.tracker import (
    AnnounceEvent,
    AnnounceRequest,
    PeerAddress,
    ScrapeStats,
    build_announce_url,
    decode_compact_peers,
    encode_compact_peers,
    parse_announce_response,
    parse_scrape_response,
    scrape_url,
    split_tracker_url,
)

IH = bytes(range(20))
PID = b"-TA0100-abcdefghijkl"


def test_announce_url_golden():
    request = AnnounceRequest(
        IH, PID, 6881, uploaded=1, downloaded=2, left=3, event=AnnounceEvent.STARTED, key=0xABCD
    )
    assert build_announce_url("http://t/announce", request) == (
        "http://t/announce?info_hash=%00%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10%11%12%13"
        "&peer_id=-TA0100-abcdefghijkl&uploaded=1&downloaded=2&left=3&compact=1&key=0000ABCD"
        "&numwant=50&no_peer_id=1&port=6881&event=started&supportcrypto=1"
    )


def test_announce_url_options():
    r = AnnounceRequest(
        IH,
        PID,
        0,
        numwant=None,
        compact=False,
        no_peer_id=False,
        tracker_id=b"t i",
        require_crypto=True,
        ip="10.0.0.1",
        event=AnnounceEvent.STOPPED,
    )
    url = build_announce_url("http://t/a?passkey=x#frag", r)
    assert url.startswith("http://t/a?passkey=x&info_hash=")
    query = url.split("&", 1)[1]
    assert "compact" not in query and "numwant" not in query and "no_peer_id" not in query
    assert "port=" not in query and "key=" not in query
    assert query.endswith("&event=stopped&trackerid=t%20i&requirecrypto=1&ip=10.0.0.1")
    assert "event=" not in build_announce_url("http://t/a", AnnounceRequest(IH, PID, 1))
    assert AnnounceEvent.COMPLETED.http_name == "completed"
    assert AnnounceEvent.NONE.http_name == ""
    for bad in (
        AnnounceRequest(IH[:19], PID, 1),
        AnnounceRequest(IH, PID, 70000),
        AnnounceRequest(IH, PID, 1, left=-1),
    ):
        with pytest.raises(ValueError):
            build_announce_url("http://t/a", bad)


@given(
    st.binary(min_size=20, max_size=20),
    st.binary(min_size=20, max_size=20),
    st.integers(0, 65535),
    st.integers(0, 2**63),
    st.sampled_from(list(AnnounceEvent)),
)
def test_announce_url_round_trip(info_hash, peer_id, port, left, event):
    url = build_announce_url(
        "http://tracker:80/ann", AnnounceRequest(info_hash, peer_id, port, left=left, event=event)
    )
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == ("tracker:80", "/ann")
    raw = dict(item.split("=", 1) for item in parts.query.split("&"))
    assert unquote_to_bytes(raw["info_hash"]) == info_hash
    assert unquote_to_bytes(raw["peer_id"]) == peer_id
    assert int(raw["left"]) == left
    assert raw.get("event", "") == event.http_name
    assert dict(parse_qsl(parts.query, encoding="latin-1"))["left"] == str(left)


def test_compact_peers_golden():
    v4 = bytes([127, 0, 0, 1, 0x1A, 0xE1, 10, 0, 0, 2, 0, 80])
    assert decode_compact_peers(v4) == [PeerAddress("127.0.0.1", 6881), PeerAddress("10.0.0.2", 80)]
    v6 = bytes(15) + b"\x01" + b"\x1a\xe1"
    assert decode_compact_peers(v6, ipv6=True) == [PeerAddress("::1", 6881)]
    assert decode_compact_peers(bytes(6)) == []  # port 0 dropped
    with pytest.raises(TrackerError):
        decode_compact_peers(b"12345")
    with pytest.raises(TrackerError):
        decode_compact_peers(bytes(17), ipv6=True)
    assert encode_compact_peers([("127.0.0.1", 6881), PeerAddress("::1", 6881)]) == (v4[:6], v6)
    for bad in (("host.example", 1), ("1.2.3.4", 0), ("1.2.3.4", 65536)):
        with pytest.raises(ValueError):
            encode_compact_peers([bad])


@given(
    st.lists(st.tuples(st.ip_addresses(), st.integers(1, 65535)), max_size=10),
)
def test_compact_peers_round_trip(peers):
    v4, v6 = encode_compact_peers([(str(ip), port) for ip, port in peers])
    got = decode_compact_peers(v4) + decode_compact_peers(v6, ipv6=True)
    expected = [PeerAddress(str(ip), p) for ip, p in peers if ip.version == 4] + [
        PeerAddress(str(ip), p) for ip, p in peers if ip.version == 6
    ]
    assert got == expected


def test_announce_response_compact_and_peers6():
    body = encode(
        {
            b"interval": 1800,
            b"min interval": 60,
            b"complete": 3,
            b"incomplete": 7,
            b"tracker id": b"abc",
            b"warning message": b"slow down",
            b"external ip": bytes([1, 2, 3, 4]),
            b"peers": bytes([127, 0, 0, 1, 0x1A, 0xE1]),
            b"peers6": bytes(15) + b"\x01\x00\x50",
        }
    )
    r = parse_announce_response(body)
    assert r.interval == 1800 and r.min_interval == 60
    assert (r.complete, r.incomplete) == (3, 7)
    assert r.tracker_id == b"abc" and r.warning == "slow down"
    assert r.external_ip == bytes([1, 2, 3, 4])
    assert r.peers == (PeerAddress("127.0.0.1", 6881), PeerAddress("::1", 80))


def test_announce_response_dict_peers():
    peers = [
        {b"ip": b"10.0.0.1", b"port": 6881, b"peer id": b"p" * 20},
        {b"ip": b"example.org", b"port": 1},
        {b"ip": b"::1", b"port": 2, b"peer id": b"short"},
        {b"ip": b"10.0.0.3", b"port": 0},
        {b"ip": 5, b"port": 1},
        {b"ip": b"\xff", b"port": 1},
        {b"port": 1},
        b"junk",
    ]
    r = parse_announce_response(encode({b"interval": 5, b"peers": peers}))
    assert r.peers == (
        PeerAddress("10.0.0.1", 6881, b"p" * 20),
        PeerAddress("example.org", 1),
        PeerAddress("::1", 2),
    )
    assert parse_announce_response(b"de") == parse_announce_response(b"d5:peerslee")
    assert parse_announce_response(b"de").interval is None


def test_failure_and_malformed_responses():
    with pytest.raises(TrackerFailure) as info:
        parse_announce_response(encode({b"failure reason": "unregistered torrent", b"interval": 1}))
    assert info.value.reason == "unregistered torrent"
    assert isinstance(info.value, TrackerError)
    for body in (b"", b"<html>", b"le", b"d8:intervali5e"):
        with pytest.raises(TrackerError):
            parse_announce_response(body)


def test_a_malformed_compact_list_is_skipped():
    """A ``peers``/``peers6`` string of a length that is not a multiple of 6/18 is skipped and
    the rest of the answer used, as aria2 does (not the whole answer thrown away)."""
    good, _ = encode_compact_peers([PeerAddress("1.2.3.4", 6881)])
    r = parse_announce_response(encode({b"interval": 1800, b"peers": good, b"peers6": bytes(17)}))
    assert r.interval == 1800 and r.peers == (PeerAddress("1.2.3.4", 6881),)
    r = parse_announce_response(encode({b"interval": 60, b"peers": b"12345"}))
    assert r.interval == 60 and r.peers == ()


@pytest.mark.parametrize(
    ("url", "split"),
    [
        ("http://t.example/announce", ("http", "t.example", 80, "/announce")),
        ("HTTPS://t.example:8443/a?b=c", ("https", "t.example", 8443, "/a?b=c")),
        ("udp://[::1]:6969/announce", ("udp", "::1", 6969, "/announce")),
        ("http://t.example/a b", ("http", "t.example", 80, "/a%20b")),  # a valid request line
        ("http://t.example", ("http", "t.example", 80, "/")),
    ],
)
def test_split_tracker_url(url, split):
    assert split_tracker_url(url) == split


@pytest.mark.parametrize(
    "url",
    [
        "http://t.example:99999/announce",  # port out of range
        "udp://t.example:abc/announce",  # not a number
        "udp://t.example/announce",  # BEP 15 needs a port
        "http://[::1/announce",  # unclosed bracket
        "http://a..b/announce",  # an empty label: IDNA refuses it
        "ftp://t.example/announce",
        "http:///announce",
    ],
)
def test_split_tracker_url_refuses_what_cannot_be_used(url):
    with pytest.raises(TrackerError, match="bad tracker URL"):
        split_tracker_url(url)


@given(st.text(max_size=60) | st.text(max_size=40).map(lambda t: "http://" + t))
def test_split_tracker_url_raises_only_tracker_errors(url):
    try:
        scheme, host, port, target = split_tracker_url(url)
    except TrackerError:
        return
    assert scheme in ("http", "https", "udp") and host and 0 < port < 65536
    assert target.isascii() and not any(c.isspace() for c in target)


@given(st.binary(max_size=200))
def test_arbitrary_bodies_raise_only_tracker_errors(body):
    try:
        parse_announce_response(body)
    except TrackerError:
        pass


@pytest.mark.parametrize(
    ("announce", "scrape"),
    [  # BEP 48's table
        ("http://example.com/announce", "http://example.com/scrape"),
        ("http://example.com/x/announce", "http://example.com/x/scrape"),
        ("http://example.com/announce.php", "http://example.com/scrape.php"),
        ("http://example.com/a", None),
        ("http://example.com/announce?x2%0644", "http://example.com/scrape?x2%0644"),
        ("http://example.com/announce?x=2/4", "http://example.com/scrape?x=2/4"),
        ("http://example.com/x%064announce", None),
    ],
)
def test_scrape_url(announce, scrape):
    assert scrape_url(announce) == scrape


def test_scrape_response():
    body = encode({b"files": {IH: {b"complete": 5, b"downloaded": 50, b"incomplete": 10}}})
    assert parse_scrape_response(body, IH) == ScrapeStats(5, 50, 10)
    assert parse_scrape_response(body, bytes(20)) is None
    assert parse_scrape_response(encode({b"files": {IH: {}}}), IH) == ScrapeStats(0, 0, 0)
    with pytest.raises(TrackerFailure):
        parse_scrape_response(encode({b"failure reason": b"no"}), IH)


async def test_a_bad_torrent_url_is_named_as_such() -> None:
    """The .torrent of a download is fetched by the same HTTP code as announces; its errors
    name what was fetched (not a 'tracker URL')."""
    from trioaria.bt.announce import http_get

    with pytest.raises(TrackerError, match=r"bad \.torrent URL"):
        await http_get("http://[::1/x.torrent", timeout=1, what=".torrent URL")
    with pytest.raises(TrackerError, match="bad tracker URL"):
        await http_get("http://[::1/announce", timeout=1)


async def test_a_redirect_to_udp_is_not_fetched_over_tcp(nursery: trio.Nursery) -> None:
    """A tracker (or .torrent URL) answers 302 Location: udp://host:port/announce.  aria2
    (and http/client.py's SchemeRedirect for downloads) never speaks HTTP to a udp:// URL: no
    HTTP request goes over TCP to that host and port."""
    got: list[bytes] = []

    async def victim(stream: trio.SocketStream) -> None:
        async with stream:
            with trio.move_on_after(2):
                got.append(await stream.receive_some(4096))

    victims = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, victim, victims)
    vport = victims[0].socket.getsockname()[1]

    port = await serve_canned(nursery, redirect_to(f"udp://127.0.0.1:{vport}/announce"))
    with trio.fail_after(5):
        with pytest.raises(TrackerError):
            await http_get(f"http://127.0.0.1:{port}/announce?x=1", timeout=3)
    assert not got, f"an HTTP request went over TCP to the udp:// target: {got[0][:40]!r}"
