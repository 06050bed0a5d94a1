"""From a parsed Metalink file to what the download machinery takes.

The parser (:mod:`trioaria.metalink.parse`) is pure and cannot build
:class:`~trioaria.storage.session.PieceHashes` (that class lives in the storage session, a
driver); this module converts, and orders mirrors as RFC 5854 §4.2.17.1 asks (lowest priority
value first).
"""

from __future__ import annotations

from ..storage.session import PieceHashes
from .parse import ChunkHashes, MetalinkFile

__all__ = ["mirror_urls", "piece_hashes"]


def piece_hashes(chunks: ChunkHashes | None) -> PieceHashes | None:
    """RFC 5854 §4.2.11 ``<pieces>`` as the storage session's :class:`PieceHashes`."""
    if chunks is None or not chunks.digests:
        return None
    return PieceHashes(chunks.algorithm, chunks.piece_length, chunks.digests)


def mirror_urls(file: MetalinkFile) -> list[str]:
    """The file's urls in priority order (RFC 5854 §4.2.17.1: 1 is tried first)."""
    return [u.url for u in sorted(file.urls, key=lambda u: u.priority)]
