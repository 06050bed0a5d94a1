"""trioaria.bt.ut_metadata (BEP 9) and metainfo.serialize_torrent (--bt-save-metadata)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.bt.bencode import encode
from trioaria.bt.errors import PeerProtocolError
from trioaria.bt.metainfo import parse_info, parse_torrent, serialize_torrent
from trioaria.bt.ut_metadata import (
    METADATA_PIECE_SIZE,
    MetadataAssembler,
    MetadataData,
    MetadataReject,
    MetadataRequest,
    decode_message,
    encode_message,
    serve,
)

from .conftest import DATA, hashes_for, make_torrent

# BEP 9's own examples.
GOLDEN = [
    (MetadataRequest(0), b"d8:msg_typei0e5:piecei0ee"),
    (MetadataData(0, 34256, b"x" * 10), b"d8:msg_typei1e5:piecei0e10:total_sizei34256eexxxxxxxxxx"),
    (MetadataReject(0), b"d8:msg_typei2e5:piecei0ee"),
]


@pytest.mark.parametrize(("message", "raw"), GOLDEN)
def test_golden(message, raw):
    assert encode_message(message) == raw
    assert decode_message(raw) == message


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"junk",
        b"li1ee",
        b"d8:msg_typei3e5:piecei0ee",
        b"d8:msg_typei0ee",
        b"d8:msg_typei0e5:piecei-1ee",
        b"d8:msg_typei0e5:piecei999999ee",
        b"d8:msg_typei0e5:piecei0eeTRAILING",
        b"d8:msg_typei1e5:piecei0ee" + b"x",
        b"d8:msg_typei1e5:piecei0e10:total_sizei0eex",
        b"d8:msg_typei1e5:piecei0e10:total_sizei99999999999ee",
        b"d8:msg_typei1e5:piecei0e10:total_sizei5ee" + b"x" * (METADATA_PIECE_SIZE + 1),
    ],
)
def test_bad_messages(raw):
    with pytest.raises(PeerProtocolError):
        decode_message(raw)


@given(st.integers(0, 400), st.integers(1, 8 * 1024 * 1024), st.binary(max_size=100))
def test_round_trip(piece, total, data):
    for message in (
        MetadataRequest(piece),
        MetadataReject(piece),
        MetadataData(piece, total, data),
    ):
        assert decode_message(encode_message(message)) == message


@given(st.binary(max_size=120))
def test_arbitrary_payloads_raise_only_peer_errors(raw):
    try:
        decode_message(raw)
    except PeerProtocolError:
        pass


def _big_info() -> bytes:
    total = 2500 * 16384  # 2500 piece hashes: 50 KB of metadata, 4 ut_metadata pieces
    return encode(
        {
            b"name": b"big.bin",
            b"piece length": 16384,
            b"pieces": hashes_for(total, 16384),
            b"length": total,
        }
    )


def test_serve_and_assemble_out_of_order():
    info = _big_info()
    info_hash = hashlib.sha1(info).digest()
    assembler = MetadataAssembler(info_hash, len(info))
    assert assembler.num_pieces == 4 and assembler.missing() == [0, 1, 2, 3]
    answers = [serve(info, MetadataRequest(i)) for i in (3, 1, 0, 2)]
    assert serve(info, MetadataRequest(4)) == MetadataReject(4)
    results = [assembler.add(decode_message(encode_message(a))) for a in answers]
    assert results[:3] == [None, None, None]
    assert results[3] == info
    meta = parse_info(results[3])
    assert meta.info_hash == info_hash and meta.name == "big.bin"


def test_assembler_rejects_bad_sizes_and_resets_on_a_wrong_hash():
    info = _big_info()
    assembler = MetadataAssembler(hashlib.sha1(info).digest(), len(info))
    with pytest.raises(PeerProtocolError, match="total_size"):
        assembler.add(MetadataData(0, len(info) + 1, info[:METADATA_PIECE_SIZE]))
    with pytest.raises(PeerProtocolError, match="piece 4 of 4"):
        assembler.add(MetadataData(4, len(info), b""))
    with pytest.raises(PeerProtocolError, match="expected 16384"):
        assembler.add(MetadataData(0, len(info), b"short"))
    with pytest.raises(PeerProtocolError, match="expected"):
        assembler.add(MetadataData(3, len(info), info[3 * METADATA_PIECE_SIZE :] + b"x"))
    forged = bytearray(info)
    forged[-5] ^= 1
    for i in range(4):
        chunk = bytes(forged[i * METADATA_PIECE_SIZE : (i + 1) * METADATA_PIECE_SIZE])
        assert assembler.add(MetadataData(i, len(info), chunk)) is None
    assert assembler.failures == 1 and assembler.missing() == [0, 1, 2, 3]
    for i in range(4):
        result = assembler.add(serve(info, MetadataRequest(i)))
    assert result == info
    for size in (0, 8 * 1024 * 1024 + 1):
        with pytest.raises(PeerProtocolError):
            MetadataAssembler(bytes(20), size)


@pytest.mark.parametrize("name", ["multi.torrent", "unsorted.torrent", "hybrid.torrent"])
def test_serialize_torrent_keeps_the_info_hash(name):
    original = parse_torrent((DATA / name).read_bytes(), default_name=name)
    again = parse_torrent(serialize_torrent(original), default_name=name)
    assert again == original


def test_serialize_after_a_magnet():
    info = encode(
        {b"name": b"f", b"piece length": 16384, b"pieces": hashes_for(5, 16384), b"length": 5}
    )
    meta = parse_info(
        info, announce_list=[["http://a/", "http://b/"], ["udp://c:1"]], url_list=["http://w/"]
    )
    data = serialize_torrent(meta)
    assert data.startswith(
        b"d8:announce9:http://a/13:announce-listll9:http://a/9:http://b/el9:udp://c:1ee4:info"
    )
    assert parse_torrent(data) == meta
    bare = parse_info(info)
    assert serialize_torrent(bare) == b"d4:info" + info + b"e"
    full = parse_torrent(
        make_torrent(
            {b"name": b"f", b"piece length": 16384, b"pieces": hashes_for(5, 16384), b"length": 5},
            comment=b"c",
            created_by=b"me",
            creation_date=1700000000,
            nodes=[[b"h", 1]],
        )
    )
    assert parse_torrent(serialize_torrent(full)) == full
