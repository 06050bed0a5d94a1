"""Tests for ``trioaria.storage.checksum``: aria2's ``--checksum`` option, RFC 3230 ``Digest``, hashing."""

from __future__ import annotations

import base64
import hashlib
import itertools
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.errors import ChecksumError, ExitCode, OptionError, StorageError, TrioariaError
from trioaria.storage.checksum import (
    ALGORITHMS,
    Checksum,
    canonical_algorithm,
    digest_length,
    hash_file_ranges,
    is_stronger,
    new_hasher,
    parse_checksum_option,
    parse_digest_header,
    pick_strongest,
)

# Published vectors for "abc" (FIPS 180-4 examples, RFC 1321 A.5) and Adler-32 of "Wikipedia".
ABC = {
    "md5": "900150983cd24fb0d6963f7d28e17f72",
    "sha-1": "a9993e364706816aba3e25717850c26c9cd0d89d",
    "sha-224": "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
    "sha-256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    "sha-384": (
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
        "8086072ba1e7cc2358baeca134c825a7"
    ),
    "sha-512": (
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    ),
}


@pytest.mark.parametrize("algorithm", sorted(ABC))
def test_known_vectors(algorithm: str) -> None:
    h = new_hasher(algorithm)
    h.update(b"a")
    h.update(b"bc")
    assert h.digest().hex() == ABC[algorithm]
    assert h.hexdigest() == ABC[algorithm]
    assert h.digest_size == ALGORITHMS[algorithm] == len(bytes.fromhex(ABC[algorithm]))


def test_adler32() -> None:
    h = new_hasher("ADLER32")
    h.update(b"Wiki")
    h.update(b"pedia")
    assert h.digest() == bytes.fromhex("11e60398")  # the classic example
    assert h.digest_size == 4
    assert h.name == "adler32"
    assert new_hasher("adler32").digest() == b"\x00\x00\x00\x01"


def test_algorithm_names() -> None:
    assert set(ALGORITHMS) == {
        "md5",
        "sha-1",
        "sha-224",
        "sha-256",
        "sha-384",
        "sha-512",
        "adler32",
    }
    assert canonical_algorithm("SHA-256") == "sha-256"
    assert canonical_algorithm("sha1") == "sha-1"
    assert canonical_algorithm("Sha256") == "sha-256"
    assert canonical_algorithm("sha512") == "sha-512"
    assert digest_length("sha-384") == 48
    for bad in ["sha", "sha-3", "crc32", "", "md4"]:
        with pytest.raises(ValueError):
            canonical_algorithm(bad)
    with pytest.raises(ValueError):
        new_hasher("whirlpool")


def test_strength_order_is_aria2s() -> None:
    order = ["md5", "sha-1", "sha-224", "sha-256", "sha-384", "sha-512"]
    for weaker, stronger in itertools.pairwise(order):
        assert is_stronger(stronger, weaker)
        assert not is_stronger(weaker, stronger)
    assert not is_stronger("md5", "adler32")
    assert not is_stronger("adler32", "md5")
    assert is_stronger("md5", "unknown")
    assert not is_stronger("unknown", "md5")


# --- --checksum ---------------------------------------------------------------------------------


def test_parse_checksum_option() -> None:
    c = parse_checksum_option("sha-256=" + ABC["sha-256"].upper())
    assert c == Checksum("sha-256", bytes.fromhex(ABC["sha-256"]))
    assert c.hexdigest == ABC["sha-256"]
    assert parse_checksum_option("SHA-1=" + ABC["sha-1"]).algorithm == "sha-1"
    assert parse_checksum_option("sha1=" + ABC["sha-1"]).algorithm == "sha-1"
    assert parse_checksum_option("md5=" + ABC["md5"]).digest == bytes.fromhex(ABC["md5"])
    assert parse_checksum_option("adler32=11E60398").digest == bytes.fromhex("11e60398")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("", "TYPE=DIGEST"),
        ("sha-256", "TYPE=DIGEST"),
        ("whirlpool=00", "unsupported hash type"),
        ("=00", "unsupported hash type"),
        ("sha-256=" + "0" * 63, "64 hex digits, got 63"),
        ("sha-256=" + "0" * 65, "64 hex digits"),
        ("md5=" + "g" * 32, "not hexadecimal"),
        ("md5=" + "0" * 30 + " 0", "not hexadecimal"),  # bytes.fromhex would accept the space
        ("md5=" + "\u0660" * 32, "not hexadecimal"),  # non-ASCII digits
        ("md5=", "32 hex digits, got 0"),
    ],
)
def test_parse_checksum_option_errors(value: str, needle: str) -> None:
    with pytest.raises(OptionError, match=needle) as info:
        parse_checksum_option(value)
    assert info.value.exit_code == ExitCode.OPTION_ERROR == 28
    assert "--checksum" in str(info.value)


@given(st.text(max_size=80))
def test_parse_checksum_option_never_raises_anything_else(value: str) -> None:
    try:
        c = parse_checksum_option(value)
    except OptionError:
        return
    assert len(c.digest) == ALGORITHMS[c.algorithm]


@given(st.sampled_from(sorted(ALGORITHMS)), st.data())
def test_parse_checksum_option_round_trip(algorithm: str, data: st.DataObject) -> None:
    n = ALGORITHMS[algorithm]
    raw = data.draw(st.binary(min_size=n, max_size=n))
    assert parse_checksum_option(f"{algorithm.upper()}={raw.hex()}") == Checksum(algorithm, raw)


def test_checksum_value_checks_and_verify() -> None:
    with pytest.raises(ValueError):
        Checksum("SHA-256", bytes(32))  # not canonical
    with pytest.raises(ValueError):
        Checksum("sha-256", bytes(31))
    c = Checksum("md5", bytes.fromhex(ABC["md5"]))
    c.verify(bytes.fromhex(ABC["md5"]))
    with pytest.raises(ChecksumError, match="expected 9001") as info:
        c.verify(bytes(16), what="file.bin")
    assert info.value.exit_code == ExitCode.CHECKSUM_ERROR == 32
    assert "file.bin" in str(info.value)


# --- hashing through a read callback -------------------------------------------------------------


@given(
    st.binary(max_size=5000),
    st.integers(1, 700),
    st.sampled_from(sorted(ALGORITHMS)),
    st.integers(1, 5000),
)
def test_hash_file_ranges_matches_one_shot(
    data: bytes, chunk: int, algorithm: str, cap: int
) -> None:
    calls: list[tuple[int, int]] = []

    def read(offset: int, length: int) -> bytes:
        assert length <= chunk
        calls.append((offset, length))
        return data[offset : offset + min(length, cap)]  # short reads are continued

    got = hash_file_ranges(read, len(data), algorithm, chunk=chunk)
    if algorithm == "adler32":
        expected = zlib.adler32(data).to_bytes(4, "big")
    else:
        expected = hashlib.new(algorithm.replace("-", ""), data).digest()
    assert got == expected
    assert sum(length for _, length in calls) >= len(data)


def test_hash_file_ranges_prefix_and_errors() -> None:
    data = b"abcdef"
    assert hash_file_ranges(lambda o, n: data[o : o + n], 3, "sha-256").hex() == ABC["sha-256"]
    assert hash_file_ranges(lambda o, n: b"", 0, "md5") == hashlib.md5(b"").digest()
    with pytest.raises(StorageError, match="ended at 6"):
        hash_file_ranges(lambda o, n: data[o : o + n], 10, "md5", chunk=4)
    with pytest.raises(ValueError):
        hash_file_ranges(lambda o, n: b"x" * (n + 1), 10, "md5")
    with pytest.raises(ValueError):
        hash_file_ranges(lambda o, n: b"", 10, "md5", chunk=0)
    with pytest.raises(ValueError):
        hash_file_ranges(lambda o, n: b"", 10, "crc32")


# --- Digest header (RFC 3230) --------------------------------------------------------------------


def _b64(hexdigest: str) -> str:
    return base64.b64encode(bytes.fromhex(hexdigest)).decode()


def test_parse_digest_header() -> None:
    value = f"SHA-256={_b64(ABC['sha-256'])}, MD5={_b64(ABC['md5'])},sha={_b64(ABC['sha-1'])}"
    got = parse_digest_header(value)
    assert got == {
        "sha-256": bytes.fromhex(ABC["sha-256"]),
        "sha-1": bytes.fromhex(ABC["sha-1"]),
        "md5": bytes.fromhex(ABC["md5"]),
    }
    assert list(got) == ["sha-256", "sha-1", "md5"]  # strongest first
    assert pick_strongest(got) == Checksum("sha-256", bytes.fromhex(ABC["sha-256"]))


def test_parse_digest_header_skips_what_aria2_skips() -> None:
    good = _b64(ABC["sha-512"])
    assert parse_digest_header("") == {}
    assert parse_digest_header("UNIXsum=30637") == {}  # unsupported
    assert parse_digest_header(f"MD5={good}") == {}  # wrong length for md5
    assert parse_digest_header("SHA-256=!!!notbase64") == {}
    assert parse_digest_header("SHA-256") == {}
    assert parse_digest_header(f"SHA-512={good}, SHA-512={good}") == {
        "sha-512": bytes.fromhex(ABC["sha-512"])
    }
    # the same algorithm with two different values: dropped altogether
    other = base64.b64encode(bytes(64)).decode()
    conflict = parse_digest_header(f"SHA-512={good}, md5={_b64(ABC['md5'])}, sha-512={other}")
    assert conflict == {"md5": bytes.fromhex(ABC["md5"])}
    # unpadded base64 and RFC 9530 byte sequences
    assert parse_digest_header("sha-256=" + _b64(ABC["sha-256"]).rstrip("=")) == {
        "sha-256": bytes.fromhex(ABC["sha-256"])
    }
    assert parse_digest_header(f"sha-256=:{_b64(ABC['sha-256'])}:") == {
        "sha-256": bytes.fromhex(ABC["sha-256"])
    }
    assert pick_strongest({}) is None
    assert pick_strongest({"bogus": b"", "md5": b"short"}) is None


@given(st.text(max_size=200))
def test_parse_digest_header_never_raises(value: str) -> None:
    try:
        got = parse_digest_header(value)
    except (ValueError, TrioariaError):  # allowed by the contract; the implementation never does
        return
    for algorithm, raw in got.items():
        assert len(raw) == ALGORITHMS[algorithm]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["MD5", "SHA", "SHA-256", "sha-512", "Adler32", "UNIXsum"]),
            st.binary(max_size=70),
        ),
        max_size=6,
    )
)
def test_parse_digest_header_structured(items: list[tuple[str, bytes]]) -> None:
    value = ",".join(f" {name} = {base64.b64encode(raw).decode()} " for name, raw in items)
    got = parse_digest_header(value)
    alias = {"sha": "sha-1", "unixsum": None}
    expected: dict[str, set[bytes]] = {}
    for name, raw in items:
        algorithm = alias.get(name.lower(), name.lower())
        if algorithm is not None and len(raw) == ALGORITHMS[algorithm]:
            expected.setdefault(algorithm, set()).add(raw)
    assert got == {a: next(iter(v)) for a, v in expected.items() if len(v) == 1}
