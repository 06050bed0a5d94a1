"""Helpers shared by the BitTorrent core tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from trioaria.bt.bencode import encode

DATA = Path(__file__).parent / "data"


def make_torrent(info: dict[bytes, Any], raw: dict[bytes, Any] | None = None, **root: Any) -> bytes:
    """A .torrent with ``info``, the root keys of ``raw``, and root keys given as keyword arguments
    (``__`` stands for ``-`` and ``_`` for a space: ``announce__list``, ``created_by``)."""
    doc: dict[bytes, Any] = {b"info": info, **(raw or {})}
    for key, value in root.items():
        doc[key.replace("__", "-").replace("_", " ").encode()] = value
    return encode(doc)


def hashes_for(total: int, piece_length: int) -> bytes:
    """Piece hashes of the right count (the bytes do not matter to the parser)."""
    count = -(-total // piece_length)
    return b"".join(hashlib.sha1(i.to_bytes(4, "big")).digest() for i in range(count))
