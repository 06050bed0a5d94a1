"""trioaria: aria2, re-implemented in pure Python on trio.

Imports stay lazy here so `trioaria --version` starts fast (no trio, no h11).
"""

from __future__ import annotations

from ._version import __version__

__all__ = ["__version__"]
