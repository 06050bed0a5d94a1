"""From a parsed Metalink document to the downloads the engine runs.

The parser (:mod:`trioaria.metalink.parse`) is pure and cannot build
:class:`~trioaria.storage.session.PieceHashes` (that class lives in the storage session, a
driver); this module converts, reads the document from disk, and turns every chosen
``metalink:file`` (RFC 5854 §4.1.2) into one download, as aria2's ``Metalink2RequestGroup``
does (one download per file: each file keeps its own piece length for its chunk hashes and
its own control file):

* ``--metalink-version``, ``--metalink-language`` and ``--metalink-os`` keep only the files
  whose ``version`` (§4.2.18) equals, and whose ``language`` (§4.2.6) / ``os`` (§4.2.10) list
  contains, the value given; ``--select-file`` then indexes the files left (aria2's order);
* its urls are the download's mirrors in priority order (RFC 5854 §4.2.17.1: 1 first); a url
  whose ``location`` (§4.2.17.2) is in ``--metalink-location``, or whose protocol is
  ``--metalink-preferred-protocol``, moves ahead by 999999 (aria2 ``setLocationPriority`` /
  ``setProtocolPriority``; both together stack);
* with ``--metalink-enable-unique-protocol`` (the default) the download remembers it: once one
  url of a host answered, the host's urls of other protocols are not used
  (:mod:`trioaria.metalink.groups`);
* Metalink 3 ``maxconnections`` of the file caps ``--split`` (1 turns segmenting off);
* its strongest whole-file hash (§4.2.4) becomes ``--checksum`` (exit 32 on mismatch) unless
  the user gave one;
* its strongest ``pieces`` (§4.2.11) become the storage session's piece hashes when
  ``--realtime-chunk-checksum`` is on (the default): a bad piece is fetched again and the
  mirror that served it is blamed;
* its ``signature`` (§4.2.14) is saved as ``<file>.sig`` after the download, unless that file
  exists;
* a ``metaurl`` of media type ``torrent`` (§4.2.8.2) is handed to BitTorrent when the file has
  no url a range source can serve; other metaurl types are ignored with a notice;
* its name (§4.1.2.1, already made safe) becomes ``--out`` under ``--dir``.
"""

from __future__ import annotations

import logging
import os
import sys
import urllib.parse
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..base.errors import MetalinkError
from ..storage.session import PieceHashes
from .parse import (
    LOWEST_PRIORITY,
    MAX_DOCUMENT_SIZE,
    ChunkHashes,
    Metalink,
    MetalinkFile,
    MetaUrl,
    Signature,
    parse_metalink,
)

__all__ = [
    "METALINK_SUFFIXES",
    "MetalinkDownload",
    "choose_files",
    "document_downloads",
    "host_of",
    "is_metalink_path",
    "load_metalink",
    "metalink_downloads",
    "mirror_urls",
    "piece_hashes",
]

log = logging.getLogger("trioaria.metalink")

METALINK_SUFFIXES = (".meta4", ".metalink")
"""Local files with these names are read as Metalink documents (aria2 does the same)."""

_SCHEMES = ("http://", "https://", "ftp://", "ftps://", "ftpes://", "sftp://")
_TORRENT_TYPES = ("torrent", "application/x-bittorrent")

_CACHED = 8
"""Documents kept parsed: the command line checks its documents before the downloads are
built from them (standard input can be read once only); an RPC daemon, handed a new document
with every ``aria2.addMetalink``, keeps no more than these."""
_cache: OrderedDict[tuple[str, str | None], tuple[tuple[int, int, int] | None, Metalink]] = (
    OrderedDict()
)


@dataclass(frozen=True, slots=True)
class MetalinkDownload:
    """One file of a document, ready for :class:`~trioaria.engine.group.RequestGroup`.

    Attributes:
        uris: mirrors, best priority first; with ``torrent`` they are its web seeds (BEP 19).
        options: the entry's options with ``out`` and (if given) ``checksum`` set.
        piece_hashes: the piece hashes to verify as pieces land, or None.
        name: the file's safe relative name.
        signature: the file's signature, saved as ``<file>.sig`` after the download.
        torrent: a torrent metaurl to hand to BitTorrent, or None.
        torrent_file: the file's path inside that (multi-file) torrent (the metaurl's
            ``name``, RFC 5854 §4.2.8.3): only that file is downloaded; None: every file.
        unique_protocol: ``--metalink-enable-unique-protocol`` for this download.
        size: the file's ``<size>``: a mirror serving another length is dropped.
    """

    uris: list[str]
    options: Any
    piece_hashes: PieceHashes | None
    name: str
    signature: Signature | None = None
    torrent: str | None = None
    unique_protocol: bool = False
    torrent_file: str | None = None
    size: int | None = None


def piece_hashes(chunks: ChunkHashes | None) -> PieceHashes | None:
    """RFC 5854 §4.2.11 ``<pieces>`` as the storage session's :class:`PieceHashes`."""
    if chunks is None or not chunks.digests:
        return None
    return PieceHashes(chunks.algorithm, chunks.piece_length, chunks.digests)


def _locations(options: Any) -> set[str]:
    raw = str(options.get("metalink-location") or "")
    return {loc.strip().lower() for loc in raw.split(",") if loc.strip()}


def mirror_urls(file: MetalinkFile, options: Any = None) -> list[str]:
    """The file's urls, best first.

    RFC 5854 §4.2.17.1: priority 1 is tried first.  aria2 subtracts 999999 from the priority
    of a url in one of ``--metalink-location``'s countries and of one whose protocol is
    ``--metalink-preferred-protocol``; equal priorities keep document order.
    """
    locations = _locations(options) if options is not None else set()
    preferred = str(options.get("metalink-preferred-protocol") or "none") if options else "none"

    def rank(index_url: tuple[int, Any]) -> tuple[int, int]:
        index, url = index_url
        priority = int(url.priority)
        if url.location is not None and url.location in locations:
            priority -= LOWEST_PRIORITY
        if preferred != "none" and url.url.lower().startswith(preferred + "://"):
            priority -= LOWEST_PRIORITY
        return priority, index

    return [u.url for _, u in sorted(enumerate(file.urls), key=rank)]


def choose_files(doc: Metalink, options: Any) -> list[MetalinkFile]:
    """aria2 ``Metalinker::queryEntry`` then ``--select-file`` (indexes of the files left)."""
    version = str(options.get("metalink-version") or "")
    language = str(options.get("metalink-language") or "")
    os_name = str(options.get("metalink-os") or "")
    files = [
        f
        for f in doc.files
        if (not version or f.version == version)
        and (not language or language in f.languages)
        and (not os_name or os_name in f.oses)
    ]
    ranges: Sequence[range] | None = options.get("select-file")
    if ranges:
        files = [f for i, f in enumerate(files, 1) if any(i in r for r in ranges)]
    return files


def is_metalink_path(uri: str) -> bool:
    """A command-line argument naming a local Metalink file (``.meta4`` or ``.metalink``)."""
    return "://" not in uri and uri.lower().endswith(METALINK_SUFFIXES)


def load_metalink(path: str, *, base_uri: str | None = None) -> Metalink:
    """Read and parse the document at ``path`` (``-``: standard input), once per run.

    Raises:
        MetalinkError: exit 20, for an unreadable or invalid document.
    """
    key = (path, base_uri)
    try:
        if path == "-":
            stamp = None
            if key in _cache:
                return _cache[key][1]
            data = sys.stdin.buffer.read(MAX_DOCUMENT_SIZE + 1)
        else:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
                cached = _cache.get(key)
                if cached is not None and cached[0] == stamp:
                    _cache.move_to_end(key)
                    return cached[1]
                data = f.read(MAX_DOCUMENT_SIZE + 1)  # the parser refuses a larger one
    except OSError as exc:
        raise MetalinkError(f"Failed to read the Metalink file {path}: {exc.strerror}") from None
    try:
        doc = parse_metalink(data, base_uri=base_uri)
    except MetalinkError as exc:
        raise MetalinkError(f"{path}: {exc}") from None
    _cache[key] = (stamp, doc)
    _cache.move_to_end(key)
    for old in [k for k in _cache if k[0] != "-"][: max(0, len(_cache) - _CACHED)]:
        del _cache[old]  # standard input stays: it cannot be read a second time
    return doc


def _torrent_metaurl(file: MetalinkFile) -> MetaUrl | None:
    for meta in file.metaurls:  # already in priority order
        if meta.mediatype.lower() in _TORRENT_TYPES and meta.url.lower().startswith(
            ("http://", "https://")
        ):
            return meta
    return None


def _max_connections(file: MetalinkFile, options: Any) -> dict[str, str]:
    """Metalink 3 ``maxconnections`` caps ``--split`` (aria2 ``setNumConcurrentCommand``)."""
    if file.max_connections is None:
        return {}
    split = int(options.get("split") or 1)
    return {"split": str(max(1, min(split, file.max_connections)))}


def document_downloads(doc: Metalink, options: Any, *, where: str) -> list[MetalinkDownload]:
    """The chosen files of one parsed document, one download each.

    Args:
        doc: the parsed document.
        options: the entry's options.
        where: the document's path or URI (messages).

    Raises:
        MetalinkError: exit 20, for a file without a url or torrent that can be used.
    """
    files = choose_files(doc, options)
    if not files:
        log.log(25, "%s: no file matches the --metalink-* preferences", where)
    downloads: list[MetalinkDownload] = []
    for file in files:
        uris = [u for u in mirror_urls(file, options) if u.lower().startswith(_SCHEMES)]
        metaurl = _torrent_metaurl(file)
        torrent = metaurl.url if metaurl is not None else None
        for meta in file.metaurls:
            if meta.url != torrent:
                log.log(
                    25,
                    "%s: metaurl %s of type %s is ignored (only torrents are followed)",
                    where, meta.url, meta.mediatype,
                )  # fmt: skip
        if uris and metaurl is not None and metaurl.name is not None:
            # the urls serve one file of a multi-file torrent: they cannot be its web seeds
            log.log(
                25,
                "%s: %s has mirrors, so its torrent %s is not used",
                where, file.name, torrent,
            )  # fmt: skip
            metaurl = torrent = None
        elif uris and torrent is not None:
            log.log(25, "%s: the mirrors of %s are web seeds of its torrent", where, file.name)
        if not uris and torrent is None:
            raise MetalinkError(f"{where}: no usable URL for {file.name!r}")
        overrides: dict[str, str] = {"out": file.name, **_max_connections(file, options)}
        best = file.best_hash()
        if best is not None and not options.get("checksum") and torrent is None:
            overrides["checksum"] = f"{best.algorithm}={best.hexdigest}"
        hashes = (
            piece_hashes(file.best_pieces()) if options.get("realtime-chunk-checksum") else None
        )
        if torrent is not None:
            overrides = {"follow-torrent": "mem"}  # the torrent names its own files
            hashes = None
        downloads.append(
            MetalinkDownload(
                uris,
                # the document's --select-file chose this file; it is no index into the torrent
                (options.without("select-file") if torrent else options).with_overrides(overrides),
                hashes,
                file.name,
                signature=file.signature,
                torrent=torrent,
                unique_protocol=bool(options.get("metalink-enable-unique-protocol")),
                torrent_file=metaurl.name if metaurl is not None else None,
                size=file.size,
            )
        )
    return downloads


def metalink_downloads(paths: Sequence[str], options: Any) -> list[MetalinkDownload]:
    """Every chosen file of every document in ``paths`` as one download each.

    Raises:
        MetalinkError: exit 20, for an invalid document or a file without usable urls.
    """
    base_uri = options.get("metalink-base-uri") or None
    downloads: list[MetalinkDownload] = []
    for path in paths:
        doc = load_metalink(path, base_uri=base_uri)
        downloads.extend(document_downloads(doc, options, where=path))
    return downloads


def host_of(uri: str) -> str:
    """The host name of ``uri`` (lower case; empty if none): unique-protocol groups by it."""
    return (urllib.parse.urlsplit(uri).hostname or "").lower()
