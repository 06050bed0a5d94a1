"""The files being written by running downloads, so that two downloads never share one.

aria2 ``RequestGroupMan::isSameFileBeingDownloaded``: a download whose file another running
download already writes is renamed (``file.1.ext``; exit 13 without
``--auto-file-renaming``), and a torrent is refused (exit 11).  A download claims its paths
when it decides them and gives them back when it ends (finished, failed, paused or removed).
"""

from __future__ import annotations

import os

__all__ = ["PathsInUse"]


class PathsInUse:
    """Absolute file paths claimed by running downloads, each with its owner's GID."""

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}

    def taken(self, path: str, gid: str) -> bool:
        """Whether a download other than ``gid`` writes ``path``."""
        owner = self._owners.get(os.path.abspath(path))
        return owner is not None and owner != gid

    def claim(self, paths: list[str], gid: str) -> None:
        """``gid`` writes these files (callers check :meth:`taken` first)."""
        for path in paths:
            self._owners[os.path.abspath(path)] = gid

    def release(self, gid: str) -> None:
        """Every path of ``gid`` is free again."""
        for path in [p for p, owner in self._owners.items() if owner == gid]:
            del self._owners[path]
