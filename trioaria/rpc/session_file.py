"""``--save-session`` on disk: at exit, every ``--save-session-interval`` seconds, on RPC
``aria2.saveSession`` (driver).

The text is :func:`trioaria.rpc.session.session_text` over every download the engine knows (the
queue, the running ones, the results).  It is written atomically (a temporary name, fsync, then
a rename) so a ``kill -9`` leaves either the previous file or the new one, never half a file;
a name ending in ``.gz`` is gzipped (``-i`` reads it back).  The periodic saver writes only
when the text changed, as aria2 does (it compares a digest of the content).
"""

from __future__ import annotations

import gzip
import logging
from typing import Any

import trio

from ..base.errors import ExitCode
from ..base.stats import DownloadStatus
from ..storage.disk import write_file_atomic
from .session import session_text

__all__ = ["run_session_saver", "save_session_file", "session_file_text", "write_atomic"]

log = logging.getLogger("trioaria.rpc.session_file")


def _not_found(group: Any) -> bool:
    """The download failed because the file was not found (``--save-not-found``; aria2's
    ``SessionSerializer`` counts ``--max-file-not-found`` failures, exit 4, too)."""
    error = group.error
    return (
        group.state is DownloadStatus.ERROR
        and error is not None
        and int(error.exit_code) in (ExitCode.RESOURCE_NOT_FOUND, ExitCode.MAX_FILE_NOT_FOUND)
    )


def session_file_text(engine: Any) -> str:
    """The session file's text for ``engine``: running, queued, then stopped downloads.

    Downloads uploaded over RPC without a file (``--rpc-save-upload-metadata=false``) are
    left out, as aria2 leaves them out.
    """
    groups = [
        g
        for g in (*engine.active, *engine.waiting, *engine.stopped)
        if getattr(g, "save_in_session", True)
    ]
    return session_text(
        (g.uris, g.gid, g.state, g.options.as_strings(), g.options.explicit_names(), _not_found(g))
        for g in groups
    )


def write_atomic(path: str, data: bytes) -> None:
    """Write a small file through a temporary name and a rename (``.gz`` is gzipped).

    Raises:
        OSError: the file cannot be written.
    """
    if path.endswith(".gz"):
        data = gzip.compress(data)
    write_file_atomic(path, data)


def save_session_file(engine: Any, path: str) -> str:
    """Write ``--save-session`` for ``engine`` now; returns the text written.

    Raises:
        OSError: the file cannot be written.
    """
    text = session_file_text(engine)
    write_atomic(path, text.encode("utf-8"))
    log.log(25, "Serialized session to '%s' successfully.", path)
    return text


async def run_session_saver(engine: Any, interval: float) -> None:
    """``--save-session-interval``: save every ``interval`` seconds when the text changed, to
    the engine's current ``--save-session`` (RPC ``changeGlobalOption`` may change it)."""
    last: tuple[str, str] | None = None
    while True:
        await trio.sleep(interval)
        path = str(engine.options.get("save-session") or "")
        if not path:
            continue
        text = session_file_text(engine)
        if (path, text) == last:
            continue
        try:
            write_atomic(path, text.encode("utf-8"))
            last = (path, text)
        except OSError as exc:
            log.error("Failed to serialize session to '%s': %s", path, exc)
