"""The command line: options, help, console readout, input files.

``main`` is imported lazily so that ``trioaria --version`` and ``-h`` do not pay for trio, ssl and
the protocol drivers (issue 15: start-up time).
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the ``trioaria`` command (see :func:`trioaria.cli.app.main`)."""
    from .app import main as run

    return run(argv)
