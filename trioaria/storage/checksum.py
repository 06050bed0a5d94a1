"""Whole-file checksums: ``--checksum=TYPE=DIGEST``, RFC 3230 ``Digest`` headers, and hashing.

aria2 behaviour implemented here:

* Hash type names are aria2's (``src/MessageDigest.cc``): ``md5``, ``sha-1``, ``sha-224``,
  ``sha-256``, ``sha-384``, ``sha-512`` and ``adler32``, compared case-insensitively.  aria2's
  Metalink 3 aliases ``sha1``/``sha256`` (``MessageDigest::getCanonicalHashType``) are accepted,
  and so, more leniently than aria2, are ``sha224``/``sha384``/``sha512``.
* ``--checksum=TYPE=DIGEST`` (``ChecksumOptionHandler``): split at the first ``=``, the type must
  be supported and the digest must be exactly twice the digest length in hex digits.
* ``Digest:`` (RFC 3230 §4.3.2, aria2 ``HttpResponse::getDigest``): a comma-separated list of
  ``algorithm=base64``; unknown algorithms and values of the wrong length are skipped, and an
  algorithm listed twice with different values is dropped altogether.  RFC 3230 §4.1.1 names
  SHA-1 ``SHA``, so ``SHA`` is read as ``sha-1`` (aria2 itself asks for ``SHA`` in Want-Digest
  but then ignores it).  An RFC 9530 byte-sequence value ``:base64:`` is accepted too.
* Strength order for choosing among several digests (``MessageDigest::isStronger``):
  sha-512 > sha-384 > sha-256 > sha-224 > sha-1 > md5 = adler32.

Everything here is pure: :func:`hash_file_ranges` reads through a callback, so a driver decides
where (and in which thread) the bytes come from.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from trioaria.base.errors import ChecksumError, OptionError, StorageError

__all__ = [
    "ALGORITHMS",
    "Checksum",
    "Hasher",
    "canonical_algorithm",
    "digest_length",
    "feed_hasher",
    "hash_file_ranges",
    "is_stronger",
    "new_hasher",
    "parse_checksum_option",
    "parse_digest_header",
    "pick_strongest",
]

ALGORITHMS: dict[str, int] = {
    "sha-1": 20,
    "sha-224": 28,
    "sha-256": 32,
    "sha-384": 48,
    "sha-512": 64,
    "md5": 16,
    "adler32": 4,
}
"""Supported algorithms (aria2's canonical names) and their digest lengths in bytes."""

_STRENGTH: dict[str, int] = {
    "sha-1": 1,
    "sha-224": 2,
    "sha-256": 3,
    "sha-384": 4,
    "sha-512": 5,
    "md5": 0,
    "adler32": 0,
}

_ALIASES: dict[str, str] = {
    "sha1": "sha-1",
    "sha224": "sha-224",
    "sha256": "sha-256",
    "sha384": "sha-384",
    "sha512": "sha-512",
}

# RFC 3230 §4.1.1 registers "SHA" for SHA-1; only the Digest header uses that name.
_DIGEST_HEADER_ALIASES: dict[str, str] = {**_ALIASES, "sha": "sha-1"}

_HASHLIB_NAMES: dict[str, str] = {
    "md5": "md5",
    "sha-1": "sha1",
    "sha-224": "sha224",
    "sha-256": "sha256",
    "sha-384": "sha384",
    "sha-512": "sha512",
}

_HEX = re.compile(r"[0-9a-f]*", re.ASCII)


def canonical_algorithm(name: str) -> str:
    """aria2's canonical name for hash type ``name`` (case-insensitive, aliases resolved).

    Raises:
        ValueError: if the type is not supported.
    """
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in ALGORITHMS:
        raise ValueError(
            f"unsupported hash type {name!r} (supported: {', '.join(sorted(ALGORITHMS))})"
        )
    return key


def digest_length(algorithm: str) -> int:
    """Digest length in bytes of ``algorithm`` (any accepted spelling); ValueError if unknown."""
    return ALGORITHMS[canonical_algorithm(algorithm)]


def is_stronger(lhs: str, rhs: str) -> bool:
    """aria2 ``MessageDigest::isStronger``: an unknown ``lhs`` is never stronger, an unknown
    ``rhs`` always weaker."""
    try:
        left = _STRENGTH[canonical_algorithm(lhs)]
    except ValueError:
        return False
    try:
        right = _STRENGTH[canonical_algorithm(rhs)]
    except ValueError:
        return True
    return left > right


@dataclass(frozen=True, slots=True)
class Checksum:
    """An expected whole-file digest.

    Attributes:
        algorithm: the canonical aria2 name, e.g. ``"sha-256"``.
        digest: the raw digest bytes (``ALGORITHMS[algorithm]`` long).

    Raises:
        ValueError: on an unsupported algorithm or a digest of the wrong length.
    """

    algorithm: str
    digest: bytes

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unsupported or non-canonical hash type {self.algorithm!r}")
        if len(self.digest) != ALGORITHMS[self.algorithm]:
            raise ValueError(
                f"{self.algorithm} digest must be {ALGORITHMS[self.algorithm]} bytes,"
                f" not {len(self.digest)}"
            )

    @property
    def hexdigest(self) -> str:
        return self.digest.hex()

    def verify(self, actual: bytes, *, what: str = "download") -> None:
        """Raise :class:`~trioaria.base.errors.ChecksumError` (exit 32) unless ``actual`` matches."""
        if actual != self.digest:
            raise ChecksumError(
                f"checksum mismatch for {what} ({self.algorithm}): expected {self.hexdigest},"
                f" got {actual.hex()}"
            )


def parse_checksum_option(value: str) -> Checksum:
    """Parse ``--checksum=TYPE=DIGEST`` (hex digest; type and digest case-insensitive).

    Raises:
        OptionError: naming ``--checksum``, on a missing ``=``, an unsupported type, non-hex
            digits or a digest of the wrong length (exit 28).
    """
    name, sep, hexdigest = value.partition("=")
    if not sep:
        raise OptionError(f"--checksum: expected TYPE=DIGEST, got {value!r}")
    try:
        algorithm = canonical_algorithm(name)
    except ValueError as exc:
        raise OptionError(f"--checksum: {exc}") from None
    hexdigest = hexdigest.strip().lower()
    if _HEX.fullmatch(hexdigest) is None:
        raise OptionError(f"--checksum: digest {hexdigest!r} is not hexadecimal")
    want = ALGORITHMS[algorithm] * 2
    if len(hexdigest) != want:
        raise OptionError(
            f"--checksum: a {algorithm} digest has {want} hex digits, got {len(hexdigest)}"
        )
    return Checksum(algorithm, bytes.fromhex(hexdigest))


# --- hashing ---------------------------------------------------------------------------------


class Hasher(Protocol):
    """The part of the ``hashlib`` object interface trioaria uses."""

    @property
    def name(self) -> str: ...

    @property
    def digest_size(self) -> int: ...

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...


class _Adler32:
    """Adler-32 (RFC 1950 §9) behind the hashlib interface; digest is the big-endian u32."""

    __slots__ = ("_value",)
    name = "adler32"
    digest_size = 4

    def __init__(self, value: int = 1) -> None:
        self._value = value

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        self._value = zlib.adler32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")

    def hexdigest(self) -> str:
        return self.digest().hex()

    def copy(self) -> _Adler32:
        return _Adler32(self._value)


def new_hasher(algorithm: str) -> Hasher:
    """A fresh hasher for ``algorithm`` (any accepted spelling); ValueError if unsupported.

    MD5 and SHA-1 are created with ``usedforsecurity=False`` so they work on FIPS builds: here
    they only detect corruption, as in aria2.
    """
    key = canonical_algorithm(algorithm)
    if key == "adler32":
        return _Adler32()
    return hashlib.new(_HASHLIB_NAMES[key], usedforsecurity=False)


def hash_file_ranges(
    read: Callable[[int, int], bytes],
    total: int,
    algorithm: str,
    chunk: int = 1 << 20,
) -> bytes:
    """Digest of bytes ``0 .. total`` obtained through ``read(offset, length)``.

    Args:
        read: returns up to ``length`` bytes at ``offset``; a short read is continued from where
            it stopped, an empty one before ``total`` means the file is too short.
        total: number of bytes to hash.
        algorithm: hash type (any accepted spelling).
        chunk: the largest ``length`` asked for at once.

    Raises:
        StorageError: the data ended before ``total`` bytes.
        ValueError: an unsupported algorithm, a non-positive ``chunk`` or negative ``total``,
            or ``read`` returned more than it was asked for.
    """
    if total < 0:
        raise ValueError(f"total must not be negative, not {total}")
    hasher = new_hasher(algorithm)
    feed_hasher(hasher, read, 0, total, chunk)
    return hasher.digest()


def feed_hasher(
    hasher: Hasher,
    read: Callable[[int, int], bytes],
    start: int,
    end: int,
    chunk: int = 1 << 20,
) -> None:
    """Feed bytes ``start .. end`` to ``hasher`` through ``read`` (as :func:`hash_file_ranges`,
    which hashes a whole file at once; a caller may hash one span after another).

    Raises:
        StorageError: the data ended before ``end``.
        ValueError: a non-positive ``chunk``, or ``read`` returned more than it was asked for.
    """
    if chunk <= 0:
        raise ValueError(f"chunk must be positive, not {chunk}")
    offset = start
    while offset < end:
        want = min(chunk, end - offset)
        data = read(offset, want)
        if len(data) > want:
            raise ValueError(f"read({offset}, {want}) returned {len(data)} bytes")
        if not data:
            raise StorageError(f"file ended at {offset} bytes while hashing {end} bytes")
        hasher.update(data)
        offset += len(data)


# --- Digest header ---------------------------------------------------------------------------


def _b64decode(text: str) -> bytes | None:
    if len(text) >= 2 and text[0] == ":" and text[-1] == ":":  # RFC 9530 / RFC 8941 bytes
        text = text[1:-1].strip()
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def parse_digest_header(value: str) -> dict[str, bytes]:
    """Parse an RFC 3230 ``Digest`` header value into ``{canonical algorithm: raw digest}``.

    Several header lines may be joined with ``", "`` first.  Never raises: entries aria2 would
    ignore (unknown algorithm, bad base64, wrong length) are skipped, and an algorithm given
    twice with different digests is dropped.  The result is ordered strongest first.

    Example: ``"SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=,MD5=..."`` gives
    ``{"sha-256": b"...", "md5": b"..."}``.
    """
    found: dict[str, bytes] = {}
    conflicting: set[str] = set()
    for item in value.split(","):
        name, sep, encoded = item.partition("=")
        name = name.strip().lower()
        if not name or not sep:
            continue
        algorithm = _DIGEST_HEADER_ALIASES.get(name, name)
        if algorithm not in ALGORITHMS:
            continue
        raw = _b64decode(encoded.strip())
        if raw is None or len(raw) != ALGORITHMS[algorithm]:
            continue
        if algorithm in found and found[algorithm] != raw:
            conflicting.add(algorithm)
        found.setdefault(algorithm, raw)
    ordered = sorted(
        (a for a in found if a not in conflicting), key=lambda a: _STRENGTH[a], reverse=True
    )
    return {a: found[a] for a in ordered}


def pick_strongest(digests: Mapping[str, bytes]) -> Checksum | None:
    """The strongest supported entry of ``digests`` as a :class:`Checksum`, or None if none."""
    best: Checksum | None = None
    for name, raw in digests.items():
        try:
            candidate = Checksum(canonical_algorithm(name), raw)
        except ValueError:
            continue
        if best is None or is_stronger(candidate.algorithm, best.algorithm):
            best = candidate
    return best
