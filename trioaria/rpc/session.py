"""``--save-session`` text: downloads in the ``-i`` input-file format (pure).

As aria2's ``SessionSerializer``: one entry per download that is not finished (active, waiting,
paused, failed), each a line of TAB-separated mirror URIs followed by indented ``name=value``
option lines: ``gid=`` always, ``pause=true`` for a paused download, then the per-download
options that were set explicitly.  Completed and removed downloads are kept only with their
``--force-save``; a download that failed because the file was not found (exit 3) only with
``--save-not-found`` (the default).  ``trioaria -i FILE`` (or ``aria2c -i FILE``) reads it back
with the same GIDs and states.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..base.stats import DownloadStatus
from ..cli.option_table import OPTIONS

__all__ = ["SessionEntry", "session_text"]

#: (uris, gid, state, option strings, explicitly set option names, failed as "not found")
SessionEntry = tuple[Iterable[str], str, DownloadStatus, Mapping[str, str], Iterable[str], bool]

_SKIP = frozenset({"gid", "pause"})


def session_text(entries: Iterable[SessionEntry]) -> str:
    """The session file's text for ``entries`` (any order; kept as given)."""
    lines: list[str] = []
    for uris, gid, state, strings, explicit, not_found in entries:
        force = strings.get("force-save") == "true"
        if state in (DownloadStatus.COMPLETE, DownloadStatus.REMOVED) and not force:
            continue
        if not_found and strings.get("save-not-found", "true") != "true":
            continue
        uri_list = [u for u in uris if "\t" not in u and "\n" not in u]
        if not uri_list:
            continue
        lines.append("\t".join(uri_list))
        lines.append(f" gid={gid}")
        if state is DownloadStatus.PAUSED:
            lines.append(" pause=true")
        for name in sorted(set(explicit)):
            spec = OPTIONS.get(name)
            if spec is None or not spec.per_download or name in _SKIP or name not in strings:
                continue
            for value in strings[name].split("\n"):
                lines.append(f" {name}={value}")
    return "".join(line + "\n" for line in lines)
