"""trioaria.bt.bencode: strictness table, round trips against bencode.py, spans, hostile input."""

from __future__ import annotations

import hashlib

import bencodepy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.errors import ExitCode
from trioaria.bt.bencode import (
    DEFAULT_MAX_DEPTH,
    decode,
    decode_prefix,
    decode_with_spans,
    encode,
)
from trioaria.bt.errors import BencodeError

INT64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
VALUES = st.recursive(
    INT64 | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.binary(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)

GOOD = [
    (b"i0e", 0),
    (b"i-1e", -1),
    (b"i42e", 42),
    (b"i9223372036854775807e", (1 << 63) - 1),
    (b"i-9223372036854775808e", -(1 << 63)),
    (b"0:", b""),
    (b"3:a:c", b"a:c"),
    (b"le", []),
    (b"de", {}),
    (b"l1:ai1elee", [b"a", 1, []]),
    (b"d1:ai1e1:bd1:cleee", {b"a": 1, b"b": {b"c": []}}),
    # Unsorted and duplicate keys are accepted as aria2/libtorrent accept them; the last one wins.
    (b"d1:bi1e1:ai2ee", {b"b": 1, b"a": 2}),
    (b"d1:ai1e1:ai2ee", {b"a": 2}),
]

BAD = [
    b"",
    b"i03e",
    b"i-0e",
    b"i-03e",
    b"i+3e",
    b"i 3e",
    b"i3 e",
    b"i1_0e",
    b"ie",
    b"i-e",
    b"i3",
    b"i9223372036854775808e",
    b"i-9223372036854775809e",
    b"i123456789012345678901234567890e",
    b"03:abc",
    b"-1:a",
    b"+3:abc",
    b" 3:abc",
    b"3 :abc",
    b"1_0:aaaaaaaaaa",
    b"3:ab",
    b"5:abc",
    b"99999999999999999999:a",
    b"i3eXX",
    b"3:abcd",
    b"l",
    b"li1e",
    b"d",
    b"d1:a",
    b"d1:ai1e",
    b"di1ei2ee",
    b"dlei1ee",
    b"x",
    b"e",
    b"l" * 5000,
    b"\xff",
]


@pytest.mark.parametrize(("data", "value"), GOOD)
def test_good(data, value):
    assert decode(data) == value
    assert decode(bytearray(data)) == value
    assert decode(memoryview(data)) == value


@pytest.mark.parametrize("data", BAD)
def test_bad(data):
    with pytest.raises(BencodeError) as info:
        decode(data)
    assert info.value.exit_code == ExitCode.BENCODE_PARSE_ERROR
    assert str(info.value).startswith("Bencode decoding failed")


def test_error_carries_offset():
    with pytest.raises(BencodeError) as info:
        decode(b"li1ei03ee")
    assert info.value.offset == 4
    assert info.value.reason == "bad integer"


def test_strict_order_rejects_unsorted_and_duplicate_keys():
    for data in (b"d1:bi1e1:ai2ee", b"d1:ai1e1:ai2ee", b"ld1:bi1e1:ai2eee"):
        with pytest.raises(BencodeError):
            decode(data, strict_order=True)
    assert decode(b"d1:ai1e1:bi2ee", strict_order=True) == {b"a": 1, b"b": 2}


def test_depth_limit_is_exact():
    ok = b"l" * DEFAULT_MAX_DEPTH + b"e" * DEFAULT_MAX_DEPTH
    assert decode(ok) is not None
    deep = b"l" * (DEFAULT_MAX_DEPTH + 1) + b"e" * (DEFAULT_MAX_DEPTH + 1)
    with pytest.raises(BencodeError, match="nesting deeper"):
        decode(deep)
    with pytest.raises(BencodeError, match="nesting deeper"):
        decode(b"d1:a" * 1000 + b"i1e" + b"e" * 1000)
    assert decode(b"ll" * 3 + b"e" * 6, max_depth=6) == [[[[[[]]]]]]
    with pytest.raises(BencodeError):
        decode(b"ll" * 3 + b"e" * 6, max_depth=5)


def test_nesting_bomb_of_a_megabyte_is_rejected_fast():
    with pytest.raises(BencodeError):
        decode(b"l" * (1 << 20))


def test_size_limit():
    data = b"10:" + b"a" * 10
    assert decode(data, max_size=13) == b"a" * 10
    with pytest.raises(BencodeError, match="exceeds the limit"):
        decode(data, max_size=12)
    assert decode(data, max_size=None) == b"a" * 10


def test_decode_prefix_leaves_the_rest():
    data = b"d8:msg_typei1e5:piecei0eeRAWPAYLOAD"
    value, end = decode_prefix(data)
    assert value == {b"msg_type": 1, b"piece": 0}
    assert data[end:] == b"RAWPAYLOAD"
    assert decode_prefix(b"xxi7eyy", 2) == (7, 5)
    with pytest.raises(BencodeError):
        decode_prefix(b"d1:a")


def test_spans_give_the_raw_info_bytes():
    # Keys inside info deliberately unsorted: the hash must be over the raw bytes, not a re-encoding.
    info = b"d4:name1:x6:lengthi3ee"
    data = b"d8:announce3:url4:info" + info + b"7:comment2:hie"
    value, spans = decode_with_spans(data)
    start, end = spans[b"info"]
    assert data[start:end] == info
    assert hashlib.sha1(data[start:end]).digest() != hashlib.sha1(encode(value[b"info"])).digest()
    assert data[slice(*spans[b"announce"])] == b"3:url"
    assert decode_with_spans(b"li1ee")[1] == {}


def test_spans_of_a_duplicate_key_follow_the_winning_value():
    data = b"d4:infod1:ai1ee4:infod1:bi2eee"
    value, spans = decode_with_spans(data)
    assert value == {b"info": {b"b": 2}}
    assert data[slice(*spans[b"info"])] == b"d1:bi2ee"


def test_encode_golden_and_type_errors():
    assert encode({b"b": [1, "é", b"y"], b"a": {}}) == b"d1:ade1:bli1e2:\xc3\xa91:yee"
    assert encode((1, 2)) == b"li1ei2ee"
    assert encode(bytearray(b"ab")) == b"2:ab"
    for bad in (True, 1.5, None, {"str-key": 1}, {b"k": None}):
        with pytest.raises(TypeError):
            encode(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        encode(1 << 63)


@given(VALUES)
def test_round_trip_and_bencodepy_agree(value):
    data = encode(value)
    assert decode(data, strict_order=True) == value
    assert data == bencodepy.encode(value)
    assert decode(data) == bencodepy.decode(data)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_bencode_error(data):
    try:
        value = decode(data)
    except BencodeError:
        return
    # Whatever we accept, bencode.py accepts too and reads the same way.
    assert bencodepy.decode(data) == value


@given(st.binary(max_size=200))
def test_strict_acceptance_means_canonical(data):
    try:
        value = decode(data, strict_order=True)
    except BencodeError:
        return
    assert encode(value) == data


@given(VALUES, st.data())
def test_mutations_raise_only_bencode_error(value, data):
    raw = bytearray(encode(value))
    pos = data.draw(st.integers(0, len(raw)))
    action = data.draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
    byte = data.draw(st.integers(0, 255))
    if action == "insert":
        raw.insert(pos, byte)
    elif action == "truncate":
        del raw[pos:]
    elif pos < len(raw):
        if action == "delete":
            del raw[pos]
        else:
            raw[pos] = byte
    try:
        decode(bytes(raw))
    except BencodeError:
        pass


@given(st.dictionaries(st.binary(max_size=6), VALUES, max_size=4), VALUES)
def test_info_span_hash_equals_hash_of_canonical_info(extra, info):
    root = dict(extra)
    root[b"info"] = info
    data = encode(root)
    _, spans = decode_with_spans(data)
    start, end = spans[b"info"]
    assert hashlib.sha1(data[start:end]).digest() == hashlib.sha1(encode(info)).digest()


@given(VALUES, st.binary(max_size=20))
def test_prefix_decoding_finds_the_end(value, tail):
    data = encode(value)
    decoded, end = decode_prefix(data + tail)
    assert decoded == value
    assert end == len(data)
