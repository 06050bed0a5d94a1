"""trioaria.sftp.hostkey: ``--ssh-host-key-md`` pins (aria2's digest of the raw key blob) and the
known_hosts policy of docs/decisions.md "SFTP host keys"."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.sftp.hostkey import (
    DIGESTS,
    HostKeyPin,
    Verdict,
    decide,
    fingerprint,
    key_digest,
    parse_pin,
)

# The wire blob of an ssh-ed25519 key: string "ssh-ed25519" || string key32 (RFC 8709 §4).
BLOB = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(32))
OTHER = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(range(1, 33))


@pytest.mark.parametrize(
    ("kind", "hashname"), [("sha-1", "sha1"), ("md5", "md5"), ("sha-256", "sha256")]
)
def test_key_digest_is_aria2s_hash_of_the_raw_blob(kind: str, hashname: str) -> None:
    assert key_digest(kind, BLOB) == hashlib.new(hashname, BLOB).hexdigest()


def test_parse_pin_forms() -> None:
    hexd = hashlib.sha1(BLOB).hexdigest()
    assert parse_pin(None) is None
    assert parse_pin("") is None
    assert parse_pin(f"sha-1={hexd.upper()}") == HostKeyPin("sha-1", hexd)
    assert parse_pin(("sha-1", hexd)) == HostKeyPin("sha-1", hexd)  # the option parser's form
    assert str(parse_pin(f" MD5 = {'a' * 32} ")) == f"md5={'a' * 32}"


@pytest.mark.parametrize(
    "bad",
    ["sha-1", "sha1=" + "0" * 40, "sha-1=" + "0" * 39, "md5=" + "g" * 32, "sha-512=" + "0" * 128],
)
def test_parse_pin_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_pin(bad)


@given(kind=st.sampled_from(sorted(DIGESTS)), raw=st.text(max_size=90))
def test_parse_pin_never_crashes_otherwise(kind: str, raw: str) -> None:
    try:
        pin = parse_pin(f"{kind}={raw}")
    except ValueError:
        return
    assert pin is not None
    assert len(pin.hexdigest) == DIGESTS[kind][1]


@given(blob=st.binary(max_size=200), kind=st.sampled_from(sorted(DIGESTS)))
def test_pin_accepts_exactly_its_own_key(blob: bytes, kind: str) -> None:
    pin = HostKeyPin(kind, key_digest(kind, blob))
    assert decide(blob, "h:22", pin=pin).verdict is Verdict.PINNED
    other = blob + b"x"
    d = decide(other, "h:22", pin=pin, known=[other])  # a pin decides alone
    assert d.verdict is Verdict.PIN_MISMATCH
    assert not d.accept
    assert key_digest(kind, other) in d.message
    assert pin.hexdigest in d.message


def test_known_hosts_policy() -> None:
    assert decide(BLOB, "h:22", pin=None, known=[OTHER, BLOB]).verdict is Verdict.KNOWN
    changed = decide(BLOB, "h:22", pin=None, known=[OTHER])
    assert changed.verdict is Verdict.CHANGED
    assert not changed.accept
    assert fingerprint(BLOB) in changed.message
    revoked = decide(BLOB, "h:22", pin=None, known=[BLOB], revoked=[BLOB])
    assert revoked.verdict is Verdict.REVOKED
    assert not revoked.accept
    unknown = decide(BLOB, "h:2222", pin=None)
    assert unknown.accept
    assert unknown.warn
    assert "h:2222" in unknown.message
    assert key_digest("sha-1", BLOB) in unknown.message  # ready to paste into a pin


def test_fingerprint_is_openssh_format() -> None:
    import base64

    want = base64.b64encode(hashlib.sha256(BLOB).digest()).decode().rstrip("=")
    assert fingerprint(BLOB) == f"SHA256:{want}"
