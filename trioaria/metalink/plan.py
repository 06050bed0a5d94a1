"""From a parsed Metalink document to the downloads the engine runs.

The parser (:mod:`trioaria.metalink.parse`) is pure and cannot build
:class:`~trioaria.storage.session.PieceHashes` (that class lives in the storage session, a
driver); this module converts, reads the document from disk, and turns every selected
``metalink:file`` (RFC 5854 §4.1.2) into one download:

* its urls are the download's mirrors in priority order (RFC 5854 §4.2.17.1: 1 first);
* its strongest whole-file hash (§4.2.4) becomes ``--checksum`` (exit 32 on mismatch) unless
  the user gave one;
* its strongest ``pieces`` (§4.2.11) become the storage session's piece hashes when
  ``--realtime-chunk-checksum`` is on (the default): a bad piece is fetched again and the
  mirror that served it is blamed;
* its name (§4.1.2.1, already made safe) becomes ``--out`` under ``--dir``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..base.errors import MetalinkError
from ..storage.session import PieceHashes
from .parse import ChunkHashes, Metalink, MetalinkFile, parse_metalink

__all__ = [
    "METALINK_SUFFIXES",
    "MetalinkDownload",
    "is_metalink_path",
    "load_metalink",
    "metalink_downloads",
    "mirror_urls",
    "piece_hashes",
]

METALINK_SUFFIXES = (".meta4", ".metalink")
"""Local files with these names are read as Metalink documents (aria2 does the same)."""

_SCHEMES = ("http://", "https://", "ftp://", "ftps://", "ftpes://", "sftp://")

_cache: dict[tuple[str, str | None], Metalink] = {}


@dataclass(frozen=True, slots=True)
class MetalinkDownload:
    """One file of a document, ready for :class:`~trioaria.engine.group.RequestGroup`.

    Attributes:
        uris: mirrors, best priority first.
        options: the entry's options with ``out`` and (if given) ``checksum`` set.
        piece_hashes: the piece hashes to verify as pieces land, or None.
        name: the file's safe relative name.
    """

    uris: list[str]
    options: Any
    piece_hashes: PieceHashes | None
    name: str


def piece_hashes(chunks: ChunkHashes | None) -> PieceHashes | None:
    """RFC 5854 §4.2.11 ``<pieces>`` as the storage session's :class:`PieceHashes`."""
    if chunks is None or not chunks.digests:
        return None
    return PieceHashes(chunks.algorithm, chunks.piece_length, chunks.digests)


def mirror_urls(file: MetalinkFile) -> list[str]:
    """The file's urls in priority order (RFC 5854 §4.2.17.1: 1 is tried first)."""
    return [u.url for u in sorted(file.urls, key=lambda u: u.priority)]


def is_metalink_path(uri: str) -> bool:
    """A command-line argument naming a local Metalink file (``.meta4`` or ``.metalink``)."""
    return "://" not in uri and uri.lower().endswith(METALINK_SUFFIXES)


def load_metalink(path: str, *, base_uri: str | None = None) -> Metalink:
    """Read and parse the document at ``path`` (``-``: standard input), once per run.

    Raises:
        MetalinkError: exit 20, for an unreadable or invalid document.
    """
    key = (path, base_uri)
    if key in _cache:
        return _cache[key]
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise MetalinkError(f"Failed to read the Metalink file {path}: {exc.strerror}") from None
    try:
        doc = parse_metalink(data, base_uri=base_uri)
    except MetalinkError as exc:
        raise MetalinkError(f"{path}: {exc}") from None
    _cache[key] = doc
    return doc


def _selected(doc: Metalink, options: Any) -> list[MetalinkFile]:
    ranges: Sequence[range] | None = options.get("select-file")
    if not ranges:
        return list(doc.files)
    return [f for i, f in enumerate(doc.files, 1) if any(i in r for r in ranges)]


def metalink_downloads(paths: Sequence[str], options: Any) -> list[MetalinkDownload]:
    """Every selected file of every document in ``paths`` as one download each.

    Raises:
        MetalinkError: exit 20, for an invalid document or a file without usable urls.
    """
    base_uri = options.get("metalink-base-uri") or None
    downloads: list[MetalinkDownload] = []
    for path in paths:
        doc = load_metalink(path, base_uri=base_uri)
        for file in _selected(doc, options):
            uris = [u for u in mirror_urls(file) if u.lower().startswith(_SCHEMES)]
            if not uris:
                raise MetalinkError(
                    f"{path}: no usable URL for {file.name!r}"
                    + (" (torrent metaurls are not followed yet)" if file.metaurls else "")
                )
            overrides: dict[str, str] = {"out": file.name}
            best = file.best_hash()
            if best is not None and not options.get("checksum"):
                overrides["checksum"] = f"{best.algorithm}={best.hexdigest}"
            hashes = (
                piece_hashes(file.best_pieces()) if options.get("realtime-chunk-checksum") else None
            )
            downloads.append(
                MetalinkDownload(uris, options.with_overrides(overrides), hashes, file.name)
            )
    return downloads
