"""``-S/--show-files`` for torrents: aria2c's "BitTorrent File Information" report (pure).

The layout is aria2c 1.36's (``src/bittorrent_helper.cc`` ``print``), line for line, so scripts
that read ``aria2c -S`` output can read ours; tests compare the two.
"""

from __future__ import annotations

import datetime

from ..bt.metainfo import Metainfo
from .console import format_size

__all__ = ["format_torrent_info"]

_RULE = "=" * 75
_LINE = "-" * 75


def _size(n: int) -> str:
    return f"{format_size(n)} ({n:,})"


def format_torrent_info(meta: Metainfo, path: str) -> str:
    """The ``-S`` report of ``meta``, read from ``path``."""
    out = [f">>> Printing the contents of file '{path}'...", "*** BitTorrent File Information ***"]
    if meta.comment:
        out.append(f"Comment: {meta.comment}")
    if meta.creation_date is not None:
        moment = datetime.datetime.fromtimestamp(meta.creation_date, datetime.UTC)
        out.append(f"Creation Date: {moment.strftime('%a, %d %b %Y %H:%M:%S GMT')}")
    if meta.created_by:
        out.append(f"Created By: {meta.created_by}")
    out.append(f"Mode: {'multi' if meta.multi_file else 'single'}")
    out.append("Announce:")
    out.extend(" " + " ".join(tier) for tier in meta.announce_list)
    out.append(f"Info Hash: {meta.info_hash_hex}")
    out.append(f"Piece Length: {format_size(meta.piece_length)}")
    out.append(f"The Number of Pieces: {meta.num_pieces}")
    out.append(f"Total Length: {_size(meta.total_length)}")
    if meta.url_list:
        out.append("URL List:")
        out.extend(f" {url}" for url in meta.url_list)
    out.append(f"Name: {meta.name}")
    out.append(f"Magnet URI: {meta.magnet_uri()}")
    out.append("Files:")
    out.append("idx|path/length")
    out.append(f"===+{_RULE}")
    for i, f in enumerate(meta.files, start=1):
        out.append(f"{i:>3}|./{f.path}")
        out.append(f"   |{_size(f.length)}")
        out.append(f"---+{_LINE}")
    return "\n".join(out) + "\n"
