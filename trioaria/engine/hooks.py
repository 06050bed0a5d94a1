"""Event hooks: ``--on-download-start/-pause/-stop/-complete/-error`` and
``--on-bt-download-complete`` (aria2 manual, "Event Hook"; ``src/util.cc`` ``executeHook``).

Theory of operation
-------------------
Each hook runs ``COMMAND GID NUM_FILES FIRST_PATH`` (no shell: COMMAND is a program path,
as aria2's ``execlp``).  GID is the download's 16 hex digits, NUM_FILES the number of
selected files and FIRST_PATH the first selected file's path (empty when unknown).  Which
hook fires when follows aria2's ``executeStopHook``:

============== =====================================================================
event           hook
============== =====================================================================
start           ``--on-download-start``
pause           ``--on-download-pause``
complete        ``--on-download-complete``, else ``--on-download-stop``
error           ``--on-download-error``, else ``--on-download-stop``
stop            ``--on-download-stop`` (removed, or unfinished at shutdown)
bt-complete     ``--on-bt-download-complete`` (a torrent is complete, before seeding;
                ``complete`` comes after seeding)
============== =====================================================================

Hooks never block a transfer: the process is started and the engine goes on at once.  A
waiter task in the engine's hook nursery reaps it and logs a non-zero exit; when the run
ends the waiters are cancelled and hooks still running are left to finish on their own,
as aria2 (which forks and never waits) leaves them.
"""

from __future__ import annotations

import logging
import os
import subprocess
from typing import TYPE_CHECKING

import trio

from ..base.stats import DownloadStats
from ..storage.naming import apply_dir, name_from_url

if TYPE_CHECKING:
    from .group import RequestGroup

__all__ = ["HOOK_OPTIONS", "HookRunner", "hook_arguments", "hook_for"]

log = logging.getLogger("trioaria.engine.hooks")

#: Every hook option (any of them set turns the runner on).
HOOK_OPTIONS = (
    "on-download-start",
    "on-download-pause",
    "on-download-stop",
    "on-download-complete",
    "on-download-error",
    "on-bt-download-complete",
)


def hook_for(event: str, get: object) -> str | None:
    """The command for *event* given the download's options (``get(name)``), or None."""
    assert callable(get)
    direct = {
        "start": "on-download-start",
        "pause": "on-download-pause",
        "bt-complete": "on-bt-download-complete",
        "stop": "on-download-stop",
    }
    if event in direct:
        return get(direct[event]) or None
    if event == "complete":
        return get("on-download-complete") or get("on-download-stop") or None
    if event == "error":
        return get("on-download-error") or get("on-download-stop") or None
    return None


def hook_arguments(stats: DownloadStats, fallback_path: str = "") -> tuple[str, str, str]:
    """``(GID, NUM_FILES, FIRST_PATH)`` for a download (aria2 ``executeHookByOptName``)."""
    selected = [f for f in stats.files if f.selected]
    if selected:
        return stats.gid, str(len(selected)), selected[0].path
    path = stats.path or fallback_path
    return stats.gid, "1" if path else "0", path


class HookRunner:
    """Starts hook processes in the engine's hook nursery (see the module docstring)."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self.started = 0

    def fire(self, event: str, group: RequestGroup) -> None:
        """Run the hook for *event* of *group*, if one is set (never blocks)."""
        command = hook_for(event, group.options.get)
        if not command:
            return
        try:
            stats = group.statistics()
        except Exception:  # a snapshot must never break the queue
            log.debug("no statistics for the hook of GID#%s", group.gid, exc_info=True)
            return
        argv = [str(command), *hook_arguments(stats, _expected_path(group))]
        self.started += 1
        log.info("Executing user command: %s", " ".join(argv))
        self._nursery.start_soon(self._run, argv)

    async def _run(self, argv: list[str]) -> None:
        try:
            # a hook fired just before the run ends is still started (only the wait is
            # cancelled), so the shield covers the spawn alone
            with trio.CancelScope(shield=True):
                proc = await trio.lowlevel.open_process(
                    argv,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # a Ctrl-C at the terminal is ours, not the hook's
                )
        except OSError as exc:
            log.error("Could not execute user command: %s: %s", argv[0], exc)
            return
        code = await proc.wait()
        if code != 0:
            log.warning("user command %s exited with status %d", argv[0], code)


def _expected_path(group: RequestGroup) -> str:
    """The path a download will have before its probe names it (``-d`` + ``-o``)."""
    out = group.options.get("out")
    if not out:
        uris = [u for u in group.uris if "://" in u]
        if not uris:
            return ""
        out = name_from_url(uris[0])
    return apply_dir(os.path.abspath(os.path.expanduser(group.options.get("dir") or ".")), out)
