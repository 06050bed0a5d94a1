"""``.torrent`` metainfo and magnet URIs: parse, validate, info hash, file list (pure).

Theory of operation
-------------------
BEP 3 ("metainfo files") is a bencoded dictionary whose ``info`` value describes the payload:
``name``, ``piece length``, ``pieces`` (20-byte SHA-1 per piece) and either ``length`` (single
file) or ``files`` (a list of ``{length, path}``; "the files are concatenated in the order they
appear in the files list").  The info hash is "the urlencoded 20-byte SHA1 hash of the value of the
info key from the Metainfo file": we hash the *raw span* reported by
:func:`~trioaria.bt.bencode.decode_with_spans`, so a torrent with non-canonical key order keeps
the hash its creator's client computed.

Around ``info`` the root may carry ``announce`` and ``announce-list`` (BEP 12: tiers; when the
list is present "the client will ignore the announce key"), ``url-list`` (BEP 19 web seeds, one
string or a list), ``nodes`` (BEP 5), ``comment``/``created by``/``creation date``.  Inside
``info``, ``private=1`` (BEP 27) keeps the torrent off DHT, PEX and LPD, and ``attr`` containing
``p`` marks a BEP 47 padding file.

Naming and path rules follow aria2's ``bittorrent_helper.cc`` (checked with ``aria2c -S`` in
tests/bt/test_metainfo_aria2c.py): ``name.utf-8``/``path.utf-8`` win over ``name``/``path``; a
string that is not valid UTF-8 is percent-encoded whole (``util::encodeNonUtf8``), control
characters in valid UTF-8 become ``%XX`` (``util::escapePath``); a missing ``name`` becomes the
torrent file's base name plus ``.file``.  A path that is absolute, contains ``.``/``..`` or is
empty raises :class:`~trioaria.bt.errors.MetainfoError` (exit 26) and nothing is written.  We are
stricter than aria2 in two places the issue asks for: an empty component (``a//b``) is refused
(aria2 keeps it), and two files with the same path, or a file that is also another file's
directory, are refused (aria2 would write one over the other).

Magnet links (BEP 9 "magnet URI format"): ``xt=urn:btih:`` with 40 hex digits or 32 base32
characters, ``dn``, ``tr`` (repeatable), ``x.pe`` peer addresses and ``ws`` web seeds (BEP 19).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NewType
from urllib.parse import quote, unquote_to_bytes

from ..base.errors import StorageError
from ..storage.layout import FileLayout, safe_relative_path
from .bencode import DEFAULT_MAX_SIZE, BValue, Encodable, decode_with_spans, encode
from .errors import MagnetError, MetainfoError

__all__ = [
    "InfoHash",
    "Magnet",
    "Metainfo",
    "TorrentFile",
    "make_magnet_uri",
    "parse_host_port",
    "parse_info",
    "parse_magnet",
    "parse_torrent",
    "serialize_torrent",
]

InfoHash = NewType("InfoHash", bytes)
"""A v1 info hash: the 20-byte SHA-1 of the raw bencoded ``info`` dictionary."""

_HASH_LEN = 20


@dataclass(frozen=True, slots=True)
class TorrentFile:
    """One file of a torrent, in BEP 3 order.

    Attributes:
        path: safe relative POSIX path under the download directory; for a multi-file torrent it
            starts with the torrent's name (``"multi/sub/b.txt"``), for a single file it is the
            name itself.
        length: size in bytes.
        offset: offset of the file's first byte in the concatenation of all files.
        padding: a BEP 47 padding file (``attr`` contains ``p``): zeros, never written.
        url_path: for a multi-file torrent, the file's path below the torrent name as a web
            seed URL writes it (each raw component percent-encoded); ``""`` for a single file.
    """

    path: str
    length: int
    offset: int
    padding: bool = False
    url_path: str = ""


@dataclass(frozen=True, slots=True)
class Metainfo:
    """A validated v1 torrent.

    Attributes:
        info_hash: SHA-1 of ``info_bytes``.
        info_bytes: the raw bencoded ``info`` dictionary (served to peers by BEP 9 ut_metadata).
        name: the torrent name after aria2's UTF-8/escaping rules.
        piece_length: bytes per piece (the last piece may be shorter).
        pieces: the concatenated 20-byte piece hashes.
        files: every file, offsets ascending.
        total_length: sum of the file lengths.
        multi_file: the ``info`` had a ``files`` list.
        private: BEP 27 ``private=1``: use only the torrent's trackers.
        announce_list: BEP 12 tiers of tracker URLs (``announce`` alone gives one tier).
        url_list: BEP 19 web seed URLs.
        nodes: BEP 5 DHT bootstrap nodes ``(host, port)`` from the torrent.
        comment: ``comment.utf-8`` or ``comment``.
        created_by: ``created by``.
        creation_date: ``creation date`` (seconds since the epoch).
    """

    info_hash: InfoHash
    info_bytes: bytes = field(repr=False)
    name: str
    piece_length: int
    pieces: bytes = field(repr=False)
    files: tuple[TorrentFile, ...]
    total_length: int
    multi_file: bool
    private: bool = False
    announce_list: tuple[tuple[str, ...], ...] = ()
    url_list: tuple[str, ...] = ()
    nodes: tuple[tuple[str, int], ...] = ()
    comment: str | None = None
    created_by: str | None = None
    creation_date: int | None = None

    @property
    def num_pieces(self) -> int:
        """Number of pieces (``len(pieces) // 20``)."""
        return len(self.pieces) // _HASH_LEN

    @property
    def info_hash_hex(self) -> str:
        """The info hash as 40 lowercase hex digits (as ``aria2c -S`` prints it)."""
        return self.info_hash.hex()

    @property
    def trackers(self) -> tuple[str, ...]:
        """Every tracker URL, tiers flattened in order, without duplicates."""
        return tuple(dict.fromkeys(url for tier in self.announce_list for url in tier))

    def piece_hash(self, index: int) -> bytes:
        """The expected SHA-1 of piece ``index``."""
        if not 0 <= index < self.num_pieces:
            raise IndexError(f"piece {index} out of range")
        return self.pieces[index * _HASH_LEN : (index + 1) * _HASH_LEN]

    def piece_size(self, index: int) -> int:
        """Length of piece ``index``: ``piece_length`` except for a shorter last piece."""
        if not 0 <= index < self.num_pieces:
            raise IndexError(f"piece {index} out of range")
        return min(self.piece_length, self.total_length - index * self.piece_length)

    def layout(self) -> FileLayout:
        """The files as a :class:`~trioaria.storage.layout.FileLayout` for the disk layer."""
        return FileLayout([(f.path, f.length) for f in self.files])

    def web_seed_url(self, base: str, index: int = 0) -> str:
        """The URL of file ``index`` on a BEP 19 web seed, as aria2 builds it.

        Multi-file: ``base`` (plus ``/`` if missing), the name, then the file's path, every part
        percent-encoded.  Single file: ``base`` plus the name when ``base`` ends in ``/``
        (BEP 19: "the client must add the name field"), else ``base`` itself.
        """
        name = quote(self.name, safe="")
        if self.multi_file:
            sep = "" if base.endswith("/") else "/"
            return f"{base}{sep}{name}/{self.files[index].url_path}"
        return base + name if base.endswith("/") else base

    def magnet_uri(self) -> str:
        """A magnet link for this torrent, byte-identical to ``aria2c -S``'s "Magnet URI"."""
        return make_magnet_uri(self.info_hash, self.name, self.trackers)


@dataclass(frozen=True, slots=True)
class Magnet:
    """A parsed magnet URI (BEP 9).

    Attributes:
        info_hash: the 20-byte v1 info hash from ``xt=urn:btih:``.
        display_name: ``dn``, if given.
        trackers: ``tr`` values in order (``tr.1``, ``tr.2``... accepted too), duplicates dropped.
        peers: ``x.pe`` peer addresses that parsed as ``host:port``.
        web_seeds: ``ws`` values (BEP 19).
        exact_length: ``xl``, if given and numeric.
    """

    info_hash: InfoHash
    display_name: str | None = None
    trackers: tuple[str, ...] = ()
    peers: tuple[tuple[str, int], ...] = ()
    web_seeds: tuple[str, ...] = ()
    exact_length: int | None = None

    @property
    def info_hash_hex(self) -> str:
        """The info hash as 40 lowercase hex digits."""
        return self.info_hash.hex()


# --- helpers --------------------------------------------------------------------------------


def _text(raw: bytes) -> str:
    """aria2 ``util::encodeNonUtf8``: valid UTF-8 is kept, anything else is percent-encoded."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return quote(raw, safe="")


def _get_str(d: dict[bytes, BValue], *keys: bytes) -> bytes | None:
    """The first of ``keys`` whose value is a string (``name.utf-8`` before ``name``)."""
    for key in keys:
        value = d.get(key)
        if isinstance(value, bytes):
            return value
    return None


def _get_int(d: dict[bytes, BValue], key: bytes) -> int | None:
    value = d.get(key)
    return value if isinstance(value, int) else None


def _safe_path(components: Sequence[str], shown: str) -> str:
    joined = "/".join(components)
    if joined.startswith("/"):
        raise MetainfoError(f"Detected directory traversal directive in {shown} (absolute path)")
    if "" in joined.split("/"):
        raise MetainfoError(f"Empty path component in {shown}")
    try:
        return safe_relative_path(components)
    except StorageError:
        raise MetainfoError(f"Detected directory traversal directive in {shown}") from None


def _strings(value: BValue | None) -> list[str]:
    """A string or a list of strings, stripped, empty ones dropped (url-list, a tier)."""
    items = [value] if isinstance(value, bytes) else value if isinstance(value, list) else []
    out: list[str] = []
    for item in items:
        if isinstance(item, bytes):
            text = _text(item.strip())
            if text:
                out.append(text)
    return out


def _announce_list(root: dict[bytes, BValue]) -> tuple[tuple[str, ...], ...]:
    tiers: list[tuple[str, ...]] = []
    raw = root.get(b"announce-list")
    if isinstance(raw, list):
        for tier in raw:
            if isinstance(tier, list):
                urls = tuple(dict.fromkeys(_strings(tier)))
                if urls:
                    tiers.append(urls)
    if not tiers:
        # BEP 12 says to ignore `announce` when `announce-list` exists; an announce-list with no
        # usable URL is treated as absent (libtorrent does the same), not as "no trackers".
        tiers.extend((url,) for url in _strings(root.get(b"announce")))
    return tuple(tiers)


def _nodes(root: dict[bytes, BValue]) -> tuple[tuple[str, int], ...]:
    raw = root.get(b"nodes")
    out: list[tuple[str, int]] = []
    if isinstance(raw, list):
        for node in raw:
            if (
                isinstance(node, list)
                and len(node) == 2
                and isinstance(node[0], bytes)
                and isinstance(node[1], int)
                and 0 < node[1] < 65536
                and node[0]
            ):
                out.append((_text(node[0]), node[1]))
    return tuple(out)


def _base_name(default_name: str) -> str:
    return default_name.rstrip("/").rpartition("/")[2]


def _files(
    info: dict[bytes, BValue], name_components: list[str], shown_name: str
) -> tuple[tuple[TorrentFile, ...], bool]:
    raw_files = info.get(b"files")
    if isinstance(raw_files, list):
        if not raw_files:
            raise MetainfoError("The files list is empty.")
        files: list[TorrentFile] = []
        offset = 0
        for entry in raw_files:
            if not isinstance(entry, dict):
                raise MetainfoError("A files entry is not a dictionary.")
            length = _length(entry)
            attr = entry.get(b"attr")
            padding = isinstance(attr, bytes) and b"p" in attr
            raw_path = entry.get(b"path.utf-8")
            if not isinstance(raw_path, list):
                raw_path = entry.get(b"path")
            if not isinstance(raw_path, list) and padding:
                # BEP 47: a padding file need not have a path; its recommended one
                raw_path = [b".pad", str(length).encode()]
            if not isinstance(raw_path, list):
                raise MetainfoError("Missing path in a files entry.")
            if not raw_path:
                raise MetainfoError("Path is empty.")
            parts: list[str] = []
            url_parts: list[str] = []
            for element in raw_path:
                if not isinstance(element, bytes):
                    raise MetainfoError("A path element is not a string.")
                parts.append(_text(element))
                url_parts.append(quote(element, safe=""))
            url_path = "/".join(url_parts)
            shown = "/".join([shown_name, *parts])
            path = _safe_path([*name_components, *parts], shown)
            files.append(TorrentFile(path, length, offset, padding, url_path))
            offset += length
        _check_unique(files)
        return tuple(files), True
    length = _length(info)
    path = _safe_path(name_components, shown_name)
    return (TorrentFile(path, length, 0),), False


def _length(d: dict[bytes, BValue]) -> int:
    length = d.get(b"length")
    if not isinstance(length, int):
        raise MetainfoError("Missing length in torrent metainfo.")
    if length < 0:
        raise MetainfoError(f"length does not allow negative integer {length}")
    return length


def _check_unique(files: Iterable[TorrentFile]) -> None:
    """Two files may not share a path, nor a file be another's directory; padding files of
    equal length may share one (BEP 47 recommends ``.pad/N`` for all of them: zeros, never
    selected, so they cannot disagree)."""
    paths: set[str] = set()
    pads: dict[str, int] = {}
    dirs: set[str] = set()
    for f in files:
        if f.padding and pads.get(f.path, f.length) == f.length and f.path not in paths:
            pads[f.path] = f.length
        elif f.path in paths or f.path in pads:
            raise MetainfoError(f"Duplicate file path {f.path}")
        else:
            paths.add(f.path)
        parts = f.path.split("/")
        for k in range(1, len(parts)):
            dirs.add("/".join(parts[:k]))
    paths.update(pads)
    clash = paths & dirs
    if clash:
        raise MetainfoError(f"{min(clash)} is both a file and a directory")


def _info(
    info: dict[bytes, BValue], info_bytes: bytes, default_name: str
) -> tuple[InfoHash, str, int, bytes, tuple[TorrentFile, ...], int, bool, bool]:
    raw_name = _get_str(info, b"name.utf-8", b"name")
    if raw_name:
        shown_name = _text(raw_name)
    else:
        base = _base_name(default_name) or hashlib.sha1(info_bytes).hexdigest()
        shown_name = base + ".file"
    # Checked as aria2 checks it, before the files; aria2 also shows and names the download
    # after the escaped name (util::escapePath), which is what the check returns.
    name = _safe_path([shown_name], shown_name)
    name_components = [name]
    piece_length = info.get(b"piece length")
    if not isinstance(piece_length, int):
        raise MetainfoError("Missing piece length in torrent metainfo.")
    if piece_length <= 0:
        raise MetainfoError(f"piece length must be positive, not {piece_length}")
    pieces = info.get(b"pieces")
    if not isinstance(pieces, bytes):
        if info.get(b"meta version") == 2:
            raise MetainfoError("v2-only torrents (BEP 52) are not supported.")
        raise MetainfoError("Missing pieces in torrent metainfo.")
    if len(pieces) % _HASH_LEN:
        raise MetainfoError("The length of pieces is not a multiple of 20.")
    files, multi = _files(info, name_components, shown_name)
    total = sum(f.length for f in files)
    if len(pieces) // _HASH_LEN != -(-total // piece_length):
        raise MetainfoError("Too few/many piece hash.")
    private = info.get(b"private") == 1
    info_hash = InfoHash(hashlib.sha1(info_bytes).digest())
    return info_hash, name, piece_length, pieces, files, total, multi, private


def parse_info(
    info_bytes: bytes,
    *,
    default_name: str = "",
    announce_list: Sequence[Sequence[str]] = (),
    url_list: Sequence[str] = (),
) -> Metainfo:
    """Build a :class:`Metainfo` from a bare ``info`` dictionary (BEP 9 ut_metadata result).

    Args:
        info_bytes: the bencoded ``info`` dictionary; its SHA-1 is the info hash (the caller
            compares it with the magnet's).
        default_name: used for a missing ``name`` (base name + ``.file``); the info hash in
            hex when empty.
        announce_list: tracker tiers to attach (the magnet's ``tr`` values).
        url_list: web seeds to attach (the magnet's ``ws`` values).

    Raises:
        BencodeError: ``info_bytes`` is not valid bencode (exit 25).
        MetainfoError: it is not a valid ``info`` dictionary (exit 26).
    """
    info, _ = decode_with_spans(info_bytes, max_size=DEFAULT_MAX_SIZE)
    if not isinstance(info, dict):
        raise MetainfoError("The info value is not a dictionary.")
    info_hash, name, piece_length, pieces, files, total, multi, private = _info(
        info, bytes(info_bytes), default_name
    )
    return Metainfo(
        info_hash=info_hash,
        info_bytes=bytes(info_bytes),
        name=name,
        piece_length=piece_length,
        pieces=pieces,
        files=files,
        total_length=total,
        multi_file=multi,
        private=private,
        announce_list=tuple(tuple(t) for t in announce_list if t),
        url_list=tuple(url_list),
    )


def parse_torrent(data: bytes, *, default_name: str = "") -> Metainfo:
    """Parse and validate a ``.torrent`` file (BEP 3, 12, 19, 27, 47).

    Args:
        data: the file's bytes.
        default_name: the torrent file's path or name; a torrent without ``name`` is named
            after its base name plus ``.file``, as aria2 does.

    Returns:
        The validated torrent; ``files`` carry safe relative paths and global offsets.

    Raises:
        BencodeError: not valid bencode (exit 25, aria2's "Bencode decoding failed").
        MetainfoError: valid bencode but not a usable v1 torrent (exit 26).
    """
    root, spans = decode_with_spans(data, max_size=DEFAULT_MAX_SIZE)
    if not isinstance(root, dict):
        raise MetainfoError("torrent file does not contain a root dictionary.")
    info = root.get(b"info")
    if not isinstance(info, dict):
        raise MetainfoError("Missing info in torrent metainfo.")
    start, end = spans[b"info"]
    info_bytes = data[start:end]
    info_hash, name, piece_length, pieces, files, total, multi, private = _info(
        info, info_bytes, default_name
    )
    comment = _get_str(root, b"comment.utf-8", b"comment")
    created_by = _get_str(root, b"created by")
    return Metainfo(
        info_hash=info_hash,
        info_bytes=info_bytes,
        name=name,
        piece_length=piece_length,
        pieces=pieces,
        files=files,
        total_length=total,
        multi_file=multi,
        private=private,
        announce_list=_announce_list(root),
        url_list=tuple(_strings(root.get(b"url-list"))),
        nodes=_nodes(root),
        comment=_text(comment) if comment is not None else None,
        created_by=_text(created_by) if created_by is not None else None,
        creation_date=_get_int(root, b"creation date"),
    )


def serialize_torrent(meta: Metainfo) -> bytes:
    """A ``.torrent`` file for ``meta`` (``--bt-save-metadata`` after a magnet download).

    The ``info`` value is written as the raw bytes it was parsed from, never re-encoded, so the
    file's info hash is ``meta.info_hash``.  Trackers go to ``announce`` (the first) and
    ``announce-list`` (every tier), web seeds to ``url-list``; keys are in BEP 3's sorted order.
    """
    root: dict[bytes, Encodable] = {}
    if meta.trackers:
        root[b"announce"] = meta.trackers[0]
        root[b"announce-list"] = [list(tier) for tier in meta.announce_list]
    if meta.comment is not None:
        root[b"comment"] = meta.comment
    if meta.created_by is not None:
        root[b"created by"] = meta.created_by
    if meta.creation_date is not None:
        root[b"creation date"] = meta.creation_date
    if meta.nodes:
        root[b"nodes"] = [[host, port] for host, port in meta.nodes]
    if meta.url_list:
        root[b"url-list"] = list(meta.url_list)
    parts = [b"d"]
    for key in sorted([*root, b"info"]):
        parts.append(b"%d:%s" % (len(key), key))
        parts.append(meta.info_bytes if key == b"info" else encode(root[key]))
    parts.append(b"e")
    return b"".join(parts)


def make_magnet_uri(info_hash: bytes, name: str | None = None, trackers: Iterable[str] = ()) -> str:
    """A magnet link in aria2's form: ``xt`` in upper-case hex, then ``dn`` and each ``tr``.

    Values are percent-encoded byte-wise with only RFC 3986 unreserved characters left as they
    are (aria2 ``util::percentEncode``).
    """
    parts = [f"magnet:?xt=urn:btih:{info_hash.hex().upper()}"]
    if name:
        parts.append("dn=" + quote(name, safe=""))
    parts.extend("tr=" + quote(url, safe="") for url in trackers)
    return "&".join(parts)


def parse_host_port(text: str) -> tuple[str, int] | None:
    """Split ``host:port`` or ``[v6]:port``; ``None`` when it is not that shape.

    Used for magnet ``x.pe`` values and ``--bt-external-ip``-style options.
    """
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            return None
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            return None
    if not host or not _is_ascii_digits(port_text) or len(port_text) > 5:
        return None
    port = int(port_text)
    if not 0 < port < 65536:
        return None
    return host, port


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_BASE32_DIGITS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcdefghijklmnopqrstuvwxyz")


def _btih(uri: str, value: str) -> InfoHash:
    if len(value) == 40:
        if not _HEX_DIGITS.issuperset(value):
            raise MagnetError(uri, f"bad hex info hash {value!r}")
        return InfoHash(bytes.fromhex(value))
    if len(value) == 32:
        if not _BASE32_DIGITS.issuperset(value):
            raise MagnetError(uri, f"bad base32 info hash {value!r}")
        return InfoHash(base64.b32decode(value.upper()))
    raise MagnetError(uri, f"info hash {value!r} is neither 40 hex nor 32 base32 characters")


def parse_magnet(uri: str) -> Magnet:
    """Parse a magnet URI (BEP 9: ``magnet:?xt=urn:btih:<info-hash>&dn=...&tr=...&x.pe=...``).

    Args:
        uri: the whole URI.

    Returns:
        The info hash and the optional parts.  Malformed ``x.pe`` values are skipped.

    Raises:
        MagnetError: not a magnet URI, or no usable ``xt=urn:btih:`` (exit 27).
    """
    head, sep, query = uri.partition("?")
    if head.lower() != "magnet:" or not sep:
        raise MagnetError(uri, "not a magnet: URI")
    info_hash: InfoHash | None = None
    saw_v2 = False
    name: str | None = None
    trackers: list[str] = []
    peers: list[tuple[str, int]] = []
    seeds: list[str] = []
    length: int | None = None
    for item in query.split("&"):
        key, _, raw = item.partition("=")
        value = _text(unquote_to_bytes(raw))
        key = key.lower()
        if key == "xt" or key.startswith("xt."):
            if value.lower().startswith("urn:btih:"):
                if info_hash is None:
                    info_hash = _btih(uri, value[9:])
            elif value.lower().startswith("urn:btmh:"):
                saw_v2 = True
        elif key == "dn":
            name = value
        elif (key == "tr" or key.startswith("tr.")) and value:
            trackers.append(value)
        elif key == "x.pe":
            peer = parse_host_port(value)
            if peer is not None:
                peers.append(peer)
        elif key == "ws" and value:
            seeds.append(value)
        elif key == "xl" and _is_ascii_digits(value) and len(value) < 20:
            length = int(value)
    if info_hash is None:
        reason = "only a v2 (urn:btmh) hash, not supported" if saw_v2 else "no xt=urn:btih:"
        raise MagnetError(uri, reason)
    return Magnet(
        info_hash=info_hash,
        display_name=name,
        trackers=tuple(dict.fromkeys(trackers)),
        peers=tuple(peers),
        web_seeds=tuple(dict.fromkeys(seeds)),
        exact_length=length,
    )
