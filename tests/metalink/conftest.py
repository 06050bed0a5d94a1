"""Fixtures of the Metalink tests: the Metalink-speaking nginx (tests/metalink/ml_nginx.py)."""

from __future__ import annotations

from tests.metalink.ml_nginx import ml_nginx

__all__ = ["ml_nginx"]
