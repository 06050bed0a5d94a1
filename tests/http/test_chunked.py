"""Tests for the strict incremental chunked decoder (trioaria.http.chunked)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.errors import HttpProtocolError
from trioaria.http.chunked import ChunkedDecoder


def encode(
    chunks: list[bytes], *, ext: bool = False, trailer: bytes = b"", upper: bool = False
) -> bytes:
    out = bytearray()
    for chunk in chunks:
        size = f"{len(chunk):X}" if upper else f"{len(chunk):x}"
        out += size.encode() + (b" ;name=value" if ext else b"") + b"\r\n" + chunk + b"\r\n"
    out += b"0\r\n" + trailer + b"\r\n"
    return bytes(out)


def decode_in_pieces(wire: bytes, cuts: list[int]) -> tuple[bytes, ChunkedDecoder]:
    decoder = ChunkedDecoder()
    payload = bytearray()
    edges = sorted({0, len(wire), *(c for c in cuts if 0 < c < len(wire))})
    for lo, hi in itertools.pairwise(edges):
        for piece in decoder.feed(wire[lo:hi]):
            payload += piece
    return bytes(payload), decoder


def feed_three_ways(wire: bytes) -> list[tuple[bytes, ChunkedDecoder]]:
    return [
        decode_in_pieces(wire, []),
        decode_in_pieces(wire, list(range(len(wire)))),
        decode_in_pieces(wire + b"NEXT", [len(wire)]),
    ]


CASES = [
    ([b"hello", b" ", b"world"], {}),
    ([], {}),
    ([b"x" * 70000], {"ext": True}),
    ([b"\r\n0\r\n\r\n"], {"upper": True}),  # framing-like bytes inside data
    ([b"abc"], {"trailer": b"Digest: sha-256=xyz\r\nX-T: 1\r\n"}),
]


@pytest.mark.parametrize(("chunks", "options"), CASES)
def test_decode_whole_bytewise_trailing(chunks: list[bytes], options: dict[str, object]) -> None:
    wire = encode(chunks, **options)  # type: ignore[arg-type]
    results = feed_three_ways(wire)
    for payload, decoder in results:
        assert payload == b"".join(chunks)
        assert decoder.done
        decoder.check_complete()
        assert decoder.payload_bytes == len(payload)
    assert results[0][1].unused == b""
    assert results[2][1].unused == b"NEXT"


def test_pieces_are_views_of_input() -> None:
    wire = bytearray(encode([b"abcdef"]))
    pieces = ChunkedDecoder().feed(wire)
    assert [bytes(p) for p in pieces] == [b"abcdef"]
    assert pieces[0].obj is wire  # zero-copy


@given(
    chunks=st.lists(st.binary(min_size=1, max_size=300), max_size=12),
    cuts=st.lists(st.integers(0, 5000), max_size=30),
    ext=st.booleans(),
    upper=st.booleans(),
)
def test_round_trip_random_chunkings(
    chunks: list[bytes], cuts: list[int], ext: bool, upper: bool
) -> None:
    wire = encode(chunks, ext=ext, upper=upper)
    payload, decoder = decode_in_pieces(wire, cuts)
    assert payload == b"".join(chunks)
    assert decoder.done


@given(
    chunks=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=8),
    data=st.data(),
)
def test_truncation_detected(chunks: list[bytes], data: st.DataObject) -> None:
    wire = encode(chunks)
    cut = data.draw(st.integers(0, len(wire) - 1))
    payload, decoder = decode_in_pieces(wire[:cut], data.draw(st.lists(st.integers(0, cut))))
    assert not decoder.done
    assert b"".join(chunks).startswith(payload)
    with pytest.raises(HttpProtocolError, match="truncated"):
        decoder.check_complete()


@given(st.binary(max_size=64))
def test_garbage_never_crashes(wire: bytes) -> None:
    decoder = ChunkedDecoder()
    try:
        decoder.feed(wire)
    except HttpProtocolError:
        with pytest.raises(HttpProtocolError):
            decoder.feed(b"0\r\n\r\n")  # a failed decoder stays failed


@pytest.mark.parametrize(
    "wire",
    [
        b"zz\r\n",  # not hex
        b"\r\n",  # empty size
        b"-5\r\n",
        b"0x5\r\n",
        b" 5\r\n",
        b"5\n",  # bare LF
        b"11111111111111111\r\n",  # 17 hex digits
        b"5\r\nhelloXX",  # data not followed by CRLF
        b"5\r\nhello\rX",
        b"0\r\nno colon here\r\n\r\n",  # bad trailer field
        b"1" * 5000,  # size line too long
    ],
)
def test_rejects(wire: bytes) -> None:
    with pytest.raises(HttpProtocolError):
        decode_in_pieces(wire, list(range(len(wire))))
    with pytest.raises(HttpProtocolError):
        ChunkedDecoder().feed(wire)


def test_trailer_limit() -> None:
    decoder = ChunkedDecoder(max_trailer=100)
    with pytest.raises(HttpProtocolError, match="trailer"):
        decoder.feed(b"0\r\n" + b"X-A: 123456789\r\n" * 20 + b"\r\n")
