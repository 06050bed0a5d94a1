"""``-S/--show-files`` for Metalink documents, in aria2c 1.36's layout (pure).

aria2c prints a ``Files:`` table of every file of the document, path and length (``0B (0)``
when the document gives no size).  A positional ``.meta4``/``.metalink`` path is introduced by
the ``>>> Printing the contents of file ...`` line; one given with ``-M`` is not (aria2c does
the same).  Each report ends with an empty line.
"""

from __future__ import annotations

from ..cli.console import format_size
from .parse import Metalink

__all__ = ["format_metalink_files"]

_RULE = "=" * 75
_LINE = "-" * 75


def format_metalink_files(doc: Metalink, path: str, *, banner: bool) -> str:
    """The ``-S`` report of ``doc``, read from ``path``."""
    out = [f">>> Printing the contents of file '{path}'..."] if banner else []
    out += ["Files:", "idx|path/length", f"===+{_RULE}"]
    for i, f in enumerate(doc.files, start=1):
        size = f.size or 0
        out.append(f"{i:>3}|{f.name}")
        out.append(f"   |{format_size(size)} ({size:,})")
        out.append(f"---+{_LINE}")
    return "\n".join(out) + "\n\n"
