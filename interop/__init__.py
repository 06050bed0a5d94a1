"""Interoperability tests: trioaria against other clients and peers (aria2c first), on loopback."""

from __future__ import annotations

__all__: list[str] = []
