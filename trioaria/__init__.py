"""trioaria: aria2, re-implemented in pure Python on trio.

Imports stay lazy here so `trioaria --version` starts fast (no trio, no h11).
"""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["ApiError", "DownloadEvent", "Session", "__version__", "download"]

_API = frozenset({"ApiError", "DownloadEvent", "Session", "download"})


def __getattr__(name: str) -> Any:
    """``trioaria.Session`` and friends (:mod:`trioaria.api`), imported on first use."""
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'trioaria' has no attribute {name!r}")
