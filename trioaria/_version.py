"""The one place the version lives (read by pyproject and `trioaria --version`)."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
