"""trioaria.bt.pex: BEP 11 codec (golden, round trip, hostile input) and the diff state."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.bt.bencode import encode
from trioaria.bt.errors import PeerProtocolError
from trioaria.bt.pex import (
    FLAG_REACHABLE,
    FLAG_SEED,
    PexMessage,
    PexPeer,
    PexState,
    decode_pex,
    encode_pex,
)
from trioaria.bt.tracker import PeerAddress

A = PeerAddress("10.0.0.1", 6881)
B = PeerAddress("::1", 80)
C = PeerAddress("10.0.0.3", 1)


def test_golden():
    message = PexMessage((PexPeer(A, FLAG_SEED | FLAG_REACHABLE), PexPeer(B, 1)), (C,))
    raw = encode_pex(message)
    assert raw == (
        b"d5:added6:\x0a\x00\x00\x01\x1a\xe17:added.f1:\x12"
        b"6:added618:" + bytes(15) + b"\x01\x00\x50" + b"8:added6.f1:\x01"
        b"7:dropped6:\x0a\x00\x00\x03\x00\x018:dropped60:e"
    )
    assert decode_pex(raw) == message


def test_lenient_decoding():
    raw = encode(
        {b"added": b"\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x50\x01\x02", b"added.f": b"\x02"}
    )
    assert decode_pex(raw) == PexMessage(
        (PexPeer(A, FLAG_SEED), PexPeer(PeerAddress("10.0.0.2", 80), 0)), ()
    )
    many = encode({b"dropped": b"\x0a\x00\x00\x01\x1a\xe1" * 500})
    assert len(decode_pex(many, max_peers=200).dropped) == 200
    assert decode_pex(b"de") == PexMessage()
    for bad in (b"", b"junk", b"le", b"d5:added"):
        with pytest.raises(PeerProtocolError):
            decode_pex(bad)


PEERS = st.builds(
    PexPeer,
    st.builds(
        PeerAddress,
        st.ip_addresses().map(str),
        st.integers(1, 65535),
    ),
    st.integers(0, 255),
)


@given(st.lists(PEERS, max_size=10), st.lists(PEERS.map(lambda p: p.address), max_size=10))
def test_round_trip(added, dropped):
    message = PexMessage(tuple(added), tuple(dropped))
    got = decode_pex(encode_pex(message))

    # The codec groups IPv4 before IPv6; order inside each family is kept.
    def by_family(items, key):
        return sorted(items, key=lambda x: ":" in key(x).host)

    assert list(got.added) == by_family(added, lambda p: p.address)
    assert list(got.dropped) == by_family(dropped, lambda a: a)


@given(st.binary(max_size=150))
def test_arbitrary_payloads_raise_only_peer_errors(raw):
    try:
        decode_pex(raw)
    except PeerProtocolError:
        pass


def test_state_diffs_once_a_minute_and_caps_at_50():
    state = PexState()
    assert state.diff([], now=0.0) is None
    first = state.diff([PexPeer(A), PexPeer(B, FLAG_SEED)], now=0.0)
    assert first == PexMessage((PexPeer(A), PexPeer(B, FLAG_SEED)), ())
    assert state.diff([PexPeer(C)], now=59.0) is None  # too soon
    second = state.diff([PexPeer(A), PexPeer(C)], now=60.0)
    assert second == PexMessage((PexPeer(C),), (B,))
    assert state.diff([PexPeer(A), PexPeer(C)], now=200.0) is None  # nothing new
    flags_changed = state.diff([PexPeer(A, FLAG_SEED), PexPeer(C)], now=300.0)
    assert flags_changed == PexMessage((PexPeer(A, FLAG_SEED),), ())
    crowd = [PexPeer(PeerAddress(f"10.1.0.{i}", 1)) for i in range(120)]
    sizes = []
    now = 400.0
    while (message := state.diff(crowd, now)) is not None:
        sizes.append((len(message.added), len(message.dropped)))
        now += 60
    assert sizes == [(50, 2), (50, 0), (20, 0)]
