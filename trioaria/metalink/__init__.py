"""Metalink v4 (RFC 5854) and Metalink 3.0 documents.

* :mod:`trioaria.metalink.parse` -- the pure parser: bytes in, frozen dataclasses out, every
  failure a :class:`~trioaria.base.errors.MetalinkError` (aria2's exit 20).
* :mod:`trioaria.metalink.plan` -- what a parsed file means to the storage session
  (:class:`~trioaria.storage.session.PieceHashes`) and to the mirror list.
"""

from __future__ import annotations

__all__: list[str] = []
