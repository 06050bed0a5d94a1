"""Strict bencode decoding and canonical encoding, with the raw span of top-level values (pure).

Theory of operation
-------------------
BEP 3 ("bencoding") defines four types: byte strings ``<length>:<bytes>``, integers ``i<n>e``,
lists ``l...e`` and dictionaries ``d...e`` whose keys are byte strings "in sorted order (sorted as
raw strings, not alphanumerics)".  "i-0 is invalid.  All encodings with a leading zero, such as
i03, are invalid, other than i0, which of course corresponds to 0."

Everything that reaches trioaria from the network (torrent files, tracker responses, KRPC, PEX,
ut_metadata, extended handshakes) is untrusted, so the decoder here is our own (bencode.py accepts ``i+3e``, ``i 3e`` and ``1_0:``
through Python's ``int()``, and cannot report the ``info`` span).  It rejects:

* integers with a sign other than one leading ``-``, leading zeros, ``-0``, spaces or ``_``, an
  empty body, or a value outside the signed 64-bit range (aria2 and libtorrent store ``int64``);
* string lengths with a sign, leading zeros or non-digits, and lengths past the end of the input;
* non-string dictionary keys, unknown type bytes, truncated input and trailing data;
* nesting deeper than ``max_depth`` (default 100, libtorrent's ``bdecode`` depth limit) and input
  larger than ``max_size``, so a hostile document costs bounded time, memory and stack.

Dictionary keys out of order, or repeated, are accepted the way aria2 and libtorrent accept them
(docs/decisions.md, "bencode"): the last duplicate wins, as in aria2's ``Dict::put``.  The info
hash stays right because it is the SHA-1 of the raw bytes of the ``info`` value, never of a
re-encoding: :func:`decode_with_spans` reports the ``(start, end)`` offsets of every top-level
dictionary value.  ``strict_order=True`` rejects unsorted and duplicate keys for callers that need
canonical input.

:func:`encode` is canonical (keys sorted as raw bytes, no duplicates).  bencode.py (``bencodepy``)
is the cross-check in the property tests.

Every failure raises :class:`~trioaria.bt.errors.BencodeError` (exit 25) with the byte offset; no
``IndexError``, ``ValueError`` or ``RecursionError`` escapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

from .errors import BencodeError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_SIZE",
    "BValue",
    "Encodable",
    "decode",
    "decode_prefix",
    "decode_with_spans",
    "encode",
]

BValue: TypeAlias = int | bytes | list["BValue"] | dict[bytes, "BValue"]
"""A decoded value: strings stay ``bytes`` (BEP 3 strings are raw bytes, not text)."""

Encodable: TypeAlias = int | bytes | str | Sequence["Encodable"] | Mapping[bytes, "Encodable"]
"""What :func:`encode` accepts: ``str`` is encoded as UTF-8, any sequence as a list."""

DEFAULT_MAX_DEPTH = 100
"""Deepest nesting of lists and dictionaries accepted (libtorrent's default)."""

DEFAULT_MAX_SIZE = 64 * 1024 * 1024
"""Largest input accepted by default (a torrent of 64 MiB holds ~3 million piece hashes)."""

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
# "i" + "-" + 19 digits: the longest valid integer body; anything longer cannot fit in int64.
_MAX_INT_CHARS = 20
_MAX_LEN_DIGITS = 19

_D = 0x64  # d
_E = 0x65  # e
_I = 0x69  # i
_L = 0x6C  # l
_ZERO = 0x30
_NINE = 0x39
_MINUS = 0x2D

_Spans: TypeAlias = dict[bytes, tuple[int, int]]


def _string(x: bytes, i: int) -> tuple[bytes, int]:
    """Decode ``<len>:<bytes>`` at ``x[i]`` (a digit)."""
    colon = x.find(b":", i, i + _MAX_LEN_DIGITS + 1)
    if colon < 0:
        raise BencodeError("bad string length", i)
    digits = x[i:colon]
    if not digits.isdigit() or (digits[0] == _ZERO and len(digits) > 1):
        raise BencodeError("bad string length", i)
    end = colon + 1 + int(digits)
    if end > len(x):
        raise BencodeError("string length exceeds the data", i)
    return x[colon + 1 : end], end


def _integer(x: bytes, i: int) -> tuple[int, int]:
    """Decode ``i<n>e`` at ``x[i]`` (the ``i``)."""
    end = x.find(b"e", i + 1, i + 2 + _MAX_INT_CHARS)
    if end < 0:
        raise BencodeError("bad integer", i)
    body = x[i + 1 : end]
    digits = body[1:] if body[:1] == b"-" else body
    # BEP 3: "i-0 is invalid. All encodings with a leading zero, such as i03, are invalid".
    if (
        not digits.isdigit()
        or (digits[0] == _ZERO and (len(digits) > 1 or len(body) > 1))
        or len(digits) > _MAX_INT_CHARS - 1
    ):
        raise BencodeError("bad integer", i)
    value = int(body)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise BencodeError("integer out of 64-bit range", i)
    return value, end + 1


def _value(
    x: bytes, i: int, depth: int, max_depth: int, strict: bool, spans: _Spans | None
) -> tuple[BValue, int]:
    """Decode one value starting at ``x[i]``; returns it and the offset just past it."""
    if i >= len(x):
        raise BencodeError("unexpected end of data", i)
    c = x[i]
    if _ZERO <= c <= _NINE:
        return _string(x, i)
    if c == _I:
        return _integer(x, i)
    if c in (_L, _D):
        if depth >= max_depth:
            raise BencodeError(f"nesting deeper than {max_depth}", i)
        n = len(x)
        start = i
        i += 1
        if c == _L:
            items: list[BValue] = []
            while i < n and x[i] != _E:
                item, i = _value(x, i, depth + 1, max_depth, strict, None)
                items.append(item)
            if i >= n:
                raise BencodeError("unterminated list", start)
            return items, i + 1
        d: dict[bytes, BValue] = {}
        last: bytes | None = None
        while i < n and x[i] != _E:
            if not _ZERO <= x[i] <= _NINE:
                raise BencodeError("dictionary key is not a string", i)
            key_at = i
            key, i = _string(x, i)
            if strict and last is not None and key <= last:
                raise BencodeError("dictionary keys not sorted or duplicated", key_at)
            last = key
            value_at = i
            d[key], i = _value(x, i, depth + 1, max_depth, strict, None)
            if spans is not None:
                spans[key] = (value_at, i)
        if i >= n:
            raise BencodeError("unterminated dictionary", start)
        return d, i + 1
    raise BencodeError(f"unexpected byte {bytes([c])!r}", i)


def _prepare(data: bytes | bytearray | memoryview, max_size: int | None) -> bytes:
    if max_size is not None and len(data) > max_size:
        raise BencodeError(f"input of {len(data)} bytes exceeds the limit of {max_size}")
    return data if isinstance(data, bytes) else bytes(data)


def decode_prefix(
    data: bytes | bytearray | memoryview,
    start: int = 0,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_size: int | None = DEFAULT_MAX_SIZE,
    strict_order: bool = False,
) -> tuple[BValue, int]:
    """Decode the one value that starts at ``data[start]``; bytes after it are left alone.

    For messages that carry raw bytes after a bencoded dictionary (BEP 9 ut_metadata ``data``).

    Args:
        data: the input.
        start: offset of the value's first byte.
        max_depth: deepest list/dictionary nesting accepted.
        max_size: largest ``len(data)`` accepted (``None``: no limit).
        strict_order: also reject unsorted or duplicate dictionary keys.

    Returns:
        ``(value, end)``: the value and the offset one past its last byte.

    Raises:
        BencodeError: the input is not a valid bencoded value at ``start``.
    """
    x = _prepare(data, max_size)
    return _value(x, start, 0, max_depth, strict_order, None)


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_size: int | None = DEFAULT_MAX_SIZE,
    strict_order: bool = False,
) -> BValue:
    """Decode a complete bencoded document (BEP 3 "bencoding").

    Args:
        data: the whole input; trailing bytes after the value are an error.
        max_depth: deepest list/dictionary nesting accepted.
        max_size: largest input accepted (``None``: no limit).
        strict_order: also reject unsorted or duplicate dictionary keys.

    Returns:
        The value: ``int``, ``bytes``, ``list`` or ``dict`` with ``bytes`` keys.

    Raises:
        BencodeError: the input is not one valid bencoded value.
    """
    value, _ = _decode_all(data, max_depth, max_size, strict_order, None)
    return value


def decode_with_spans(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_size: int | None = DEFAULT_MAX_SIZE,
    strict_order: bool = False,
) -> tuple[BValue, dict[bytes, tuple[int, int]]]:
    """Decode a document and report where each top-level dictionary value lies in ``data``.

    The info hash of a torrent is ``sha1(data[start:end])`` for ``spans[b"info"]``: the raw
    bytes, so a non-canonical ``info`` (unsorted keys) hashes exactly as its author's client
    hashed it.  With duplicate keys the span is the last one's, matching the decoded value.

    Args:
        data: the whole input.
        max_depth: deepest list/dictionary nesting accepted.
        max_size: largest input accepted (``None``: no limit).
        strict_order: also reject unsorted or duplicate dictionary keys.

    Returns:
        ``(value, spans)``; ``spans`` is empty unless the document is a dictionary.

    Raises:
        BencodeError: the input is not one valid bencoded value.
    """
    spans: _Spans = {}
    value, _ = _decode_all(data, max_depth, max_size, strict_order, spans)
    return value, spans


def _decode_all(
    data: bytes | bytearray | memoryview,
    max_depth: int,
    max_size: int | None,
    strict: bool,
    spans: _Spans | None,
) -> tuple[BValue, _Spans | None]:
    """Decode the whole of ``data`` as one value (trailing bytes are an error)."""
    x = _prepare(data, max_size)
    value, end = _value(x, 0, 0, max_depth, strict, spans)
    if end != len(x):
        raise BencodeError("trailing data after the value", end)
    return value, spans


def _encode_into(value: Encodable, out: list[bytes], depth: int) -> None:
    if depth > DEFAULT_MAX_DEPTH:
        raise ValueError(f"cannot encode nesting deeper than {DEFAULT_MAX_DEPTH}")
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, str):
        raw = value.encode()
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, bool):
        raise TypeError("cannot bencode a bool (use 0 or 1)")
    elif isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"integer {value} outside the signed 64-bit range")
        out.append(b"i%de" % value)
    elif isinstance(value, Mapping):
        out.append(b"d")
        for key in sorted(value):
            if not isinstance(key, bytes):
                raise TypeError(f"dictionary key {key!r} is not bytes")
            out.append(b"%d:" % len(key))
            out.append(key)
            _encode_into(value[key], out, depth + 1)
        out.append(b"e")
    elif isinstance(value, Sequence):
        out.append(b"l")
        for item in value:
            _encode_into(item, out, depth + 1)
        out.append(b"e")
    else:
        raise TypeError(f"cannot bencode {type(value).__name__}")


def encode(value: Encodable) -> bytes:
    """Encode a value canonically (BEP 3: dictionary keys sorted as raw strings).

    Args:
        value: ``int`` (signed 64-bit), ``bytes``, ``str`` (as UTF-8), a sequence (list) or a
            mapping with ``bytes`` keys.

    Returns:
        The bencoded bytes.

    Raises:
        TypeError: an unsupported type (``bool``, ``float``, ``None``, a non-bytes key).
        ValueError: an integer outside int64 or nesting deeper than :data:`DEFAULT_MAX_DEPTH`.
    """
    out: list[bytes] = []
    _encode_into(value, out, 0)
    return b"".join(out)
