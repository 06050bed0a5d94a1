"""DownloadEngine: the root nursery, the download queue and ``-j`` (docs/design.md).

The engine owns the root nursery.  Each queued :class:`~trioaria.engine.group.RequestGroup` runs as
one task in it (and opens its own nursery inside), at most ``--max-concurrent-downloads`` at a
time, in queue order.  Shutdown is a cancel: every active group saves its control file in a
shielded ``finally`` and ends in ``waiting`` (aria2's "INPR" in the results table).

``--max-overall-download-limit`` is one :class:`~trioaria.base.policy.SpeedLimit` token bucket held
here and handed to every group it runs; each group also has its own ``--max-download-limit``.

aria2 exits with the code of the *last* error (``src/MultiUrlRequestInfo.cc``); an unfinished
download at shutdown gives 7 (IN_PROGRESS).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import trio

from ..base.errors import ExitCode
from ..base.policy import SpeedLimit
from ..base.stats import DownloadStatus, EngineStats
from ..net.services import open_services
from .group import RequestGroup
from .hooks import HookRunner
from .lifecycle import transition
from .paths_in_use import PathsInUse

__all__ = ["DownloadEngine"]

log = logging.getLogger("trioaria.engine.queue")


class DownloadEngine:
    """Runs request groups ``-j`` at a time until the queue is empty or shutdown."""

    def __init__(self, options: Any) -> None:
        self.options = options
        self.waiting: list[RequestGroup] = []
        self.active: list[RequestGroup] = []
        self.stopped: list[RequestGroup] = []
        self._wakeup = trio.Event()
        self._shutdown = False
        self._forced = False
        self._nursery: trio.Nursery | None = None
        # --max-overall-download-limit: one token bucket shared by every download's
        # connections; assign ``download_limit.rate`` to change it (RPC changeGlobalOption).
        self.download_limit = SpeedLimit(int(options.get("max-overall-download-limit") or 0))
        # the files running downloads write: a second download of one is renamed (aria2)
        self.paths_in_use = PathsInUse()
        # RPC (trioaria.rpc.backend): lifecycle listeners called as fn(event, group) with event
        # "start", "pause", "stop" (removed), "complete" or "error"; what to do with a group
        # once its run ends ("unpause": queue it again at the front, "remove"); counters.
        self.listeners: list[Callable[[str, RequestGroup], None]] = []
        self._after: dict[int, str] = {}
        self.stopped_total = 0
        self._keep_running = False
        # --on-download-*: hook processes, started in the run's hook nursery (engine.hooks)
        self.hooks: HookRunner | None = None

    # --- queue ------------------------------------------------------------------------

    def add(self, group: RequestGroup) -> None:
        self.waiting.append(group)
        self._wakeup.set()

    def add_many(self, groups: Iterable[RequestGroup]) -> None:
        for g in groups:
            self.add(g)

    # --- RPC: the queue as aria2's RequestGroupMan exposes it -------------------------------

    def wake(self) -> None:
        """Look at the queue again (after ``-j`` or a queued group changed)."""
        self._wakeup.set()

    def find(self, gid: str) -> RequestGroup | None:
        """The group with this GID in any list."""
        for group in (*self.active, *self.waiting, *self.stopped):
            if group.gid == gid:
                return group
        return None

    def insert(self, group: RequestGroup, position: int | None = None) -> None:
        """Queue ``group`` at ``position`` (0 = front; None or beyond the end = back)."""
        if position is None or position >= len(self.waiting):
            self.waiting.append(group)
        else:
            self.waiting.insert(max(0, position), group)
        self._wakeup.set()

    def pause(self, group: RequestGroup) -> bool:
        """Pause an active or waiting group; an active one goes back to the queue's front."""
        if group in self.active:
            if group.state is DownloadStatus.ACTIVE:
                group.cancel("pause")
                return True
            if group.state is DownloadStatus.WAITING:  # its task has not run yet
                group.state = transition(group.state, "pause")
                return True
            return False
        if group in self.waiting and group.state is DownloadStatus.WAITING:
            group.state = transition(group.state, "pause")
            # a download that never ran runs no hook (aria2): $3 would name a file it never wrote
            self._notify("pause", group, hooks=False)
            return True
        return False

    def unpause(self, group: RequestGroup) -> bool:
        """paused -> waiting; a group still stopping is queued again once it has stopped."""
        if group in self.waiting and group.state is DownloadStatus.PAUSED:
            group.state = transition(group.state, "unpause")
            self._wakeup.set()
            return True
        if group in self.active and group.state in (DownloadStatus.PAUSED, DownloadStatus.ACTIVE):
            if group.state is DownloadStatus.ACTIVE and self._after.get(id(group)) != "unpause":
                return False
            self._after[id(group)] = "unpause"
            return True
        return False

    def restart(self, group: RequestGroup) -> None:
        """Stop an active group and queue it again at the front (RPC changeOption)."""
        if group in self.active and group.state is DownloadStatus.ACTIVE:
            self._after[id(group)] = "unpause"
            group.cancel("pause")

    def remove(self, group: RequestGroup) -> bool:
        """Remove a group: an active one ends ``removed``; a queued one is dropped (aria2)."""
        if group in self.active:
            if group.state is DownloadStatus.ACTIVE:
                group.cancel("remove")
            elif group.state is DownloadStatus.WAITING:
                group.state = transition(group.state, "remove")
            else:
                self._after[id(group)] = "remove"
            return True
        if group in self.waiting:
            self.waiting.remove(group)
            self._notify("stop", group, hooks=False)  # it never ran: no hook (aria2)
            self._wakeup.set()
            return True
        return False

    def change_position(self, group: RequestGroup, pos: int, how: str) -> int | None:
        """Move a queued group (``POS_SET``/``POS_CUR``/``POS_END``); its new index, or None."""
        if group not in self.waiting:
            return None
        current = self.waiting.index(group)
        base = {"POS_SET": 0, "POS_CUR": current, "POS_END": len(self.waiting) - 1}[how]
        dest = min(max(0, base + pos), len(self.waiting) - 1)
        self.waiting.pop(current)
        self.waiting.insert(dest, group)
        self._wakeup.set()
        return dest

    def remove_result(self, group: RequestGroup) -> bool:
        """Forget a stopped group (RPC removeDownloadResult)."""
        if group in self.stopped:
            self.stopped.remove(group)
            return True
        return False

    def purge_results(self) -> None:
        """Forget every stopped group (RPC purgeDownloadResult)."""
        self.stopped.clear()

    def _notify(self, event: str, group: RequestGroup, *, hooks: bool = True) -> None:
        if hooks and self.hooks is not None:
            self.hooks.fire(event, group)
        for listener in list(self.listeners):
            try:
                listener(event, group)
            except Exception:  # a listener must never break the queue
                log.debug("lifecycle listener failed", exc_info=True)

    def _next_waiting(self) -> RequestGroup | None:
        """The first queued group that may start; paused ones stay queued, ended ones stop."""
        for group in list(self.waiting):
            if group.state is DownloadStatus.PAUSED:
                continue
            self.waiting.remove(group)
            if group.state is DownloadStatus.WAITING:
                return group
            self.stopped.append(group)
        return None

    def _finished(self, group: RequestGroup) -> None:
        """Where a group goes when its task ends: back to the queue (paused) or stopped."""
        after = self._after.pop(id(group), "")
        if after == "remove" and group.state is DownloadStatus.PAUSED:
            group.state = transition(group.state, "remove")
        if after == "unpause" and group.state is DownloadStatus.PAUSED:
            group.state = transition(group.state, "unpause")
        if group.state in (DownloadStatus.PAUSED, DownloadStatus.WAITING) and not self._shutdown:
            self.waiting.insert(0, group)  # aria2: a paused download goes to the queue's front
            if group.state is DownloadStatus.PAUSED:
                self._notify("pause", group)
            return
        self.stopped.append(group)
        self.stopped_total += 1
        if group.state in (DownloadStatus.WAITING, DownloadStatus.ACTIVE) and self.hooks:
            self.hooks.fire("stop", group)  # unfinished at shutdown (aria2 executeStopHook)
        event = {
            DownloadStatus.COMPLETE: "complete",
            DownloadStatus.ERROR: "error",
            DownloadStatus.REMOVED: "stop",
        }.get(group.state)
        error = group.error
        if event == "error" and error is not None and error.exit_code == ExitCode.IN_PROGRESS:
            event = "stop"  # stopped unfinished (--bt-stop-timeout): aria2's stop hook, not error
        if event:
            self._notify(event, group)
        limit = self.options.get("max-download-result")
        if self._keep_running and limit is not None and len(self.stopped) > limit:
            self._trim_results(int(limit))

    def _trim_results(self, limit: int) -> None:
        """``--max-download-result``: forget the oldest results beyond ``limit``; with
        ``--keep-unfinished-download-result`` (the default) only finished ones (complete or
        removed), so ``--save-session`` still sees every failed or unfinished download."""
        excess = len(self.stopped) - limit
        if not self.options.get("keep-unfinished-download-result"):
            del self.stopped[:excess]
            return
        finished = (DownloadStatus.COMPLETE, DownloadStatus.REMOVED)
        kept: list[RequestGroup] = []
        for group in self.stopped:
            if excess > 0 and group.state in finished:
                excess -= 1
                continue
            kept.append(group)
        self.stopped[:] = kept

    # --- running ----------------------------------------------------------------------

    async def run(self, *, keep_running: bool = False) -> None:
        """Run until every download stopped (or forever with ``keep_running``, for RPC).

        The run's driver services (the FTP connection pool's reaper) live in a nursery around
        every download's, started with ``nursery.start`` on first use (``net.services``).
        """
        self._keep_running = keep_running
        cookies = self.options.get("load-cookies") or self.options.get("save-cookies")
        if cookies:  # the run's cookie jar (trioaria.http.cookie_files), loaded up front
            from ..http.cookie_files import run_jar

            run_jar(self.options)
        async with (
            open_services(),
            trio.open_nursery() as hook_nursery,
            trio.open_nursery() as nursery,
        ):
            self.hooks = HookRunner(hook_nursery)
            self._nursery = nursery
            while True:
                limit = max(1, self.options.get("max-concurrent-downloads"))
                while not self._shutdown and self.waiting and len(self.active) < limit:
                    group = self._next_waiting()
                    if group is None:
                        break
                    self.active.append(group)
                    nursery.start_soon(self._run_group, group)
                startable = any(g.state is DownloadStatus.WAITING for g in self.waiting)
                if not self.active and (self._shutdown or (not startable and not keep_running)):
                    break
                self._wakeup = trio.Event()
                await self._wakeup.wait()
            # hooks still running are left to finish on their own (aria2 never waits)
            hook_nursery.cancel_scope.cancel()
        self._nursery = None
        self.hooks = None
        if self.options.get("save-cookies"):
            from ..http.cookie_files import save_run_cookies

            save_run_cookies(self.options)

    async def _run_group(self, group: RequestGroup) -> None:
        group.overall_limit = self.download_limit
        group.paths_in_use = self.paths_in_use
        if group.state is not DownloadStatus.WAITING:  # paused or removed before it ran (RPC)
            self.active.remove(group)
            self._finished(group)
            self._wakeup.set()
            return
        if self._shutdown:  # shut down between its start and now: it never ran, it waits on
            self.active.remove(group)
            self.waiting.insert(0, group)
            self._wakeup.set()
            return
        self._notify("start", group)
        group.notify = self._hook_only(group)
        try:
            await group.run()
        finally:
            self.active.remove(group)
            self._finished(group)
            self._wakeup.set()

    def _hook_only(self, group: RequestGroup) -> Callable[[str], None]:
        """What a group calls for events only hooks know (``bt-complete``)."""

        def notify(event: str) -> None:
            if self.hooks is not None:
                self.hooks.fire(event, group)

        return notify

    def shutdown(self, *, force: bool = False) -> None:
        """Stop everything; progress is saved (first Ctrl-C graceful, then forced)."""
        self._shutdown = True
        self._forced = self._forced or force
        for group in list(self.active):
            group.cancel("stop")
        self._wakeup.set()

    @property
    def is_shutting_down(self) -> bool:
        return self._shutdown

    # --- results ----------------------------------------------------------------------

    def all_groups(self) -> list[RequestGroup]:
        return [*self.stopped, *self.active, *self.waiting]

    def exit_code(self) -> int:
        """aria2's rule: the last error's code; 7 if something is unfinished; else 0."""
        code = ExitCode.FINISHED
        for group in self.stopped:
            if group.state is DownloadStatus.ERROR and group.error is not None:
                code = group.error.exit_code
        if code == ExitCode.FINISHED and (
            self.waiting
            or self.active
            or any(g.state in (DownloadStatus.WAITING, DownloadStatus.ACTIVE) for g in self.stopped)
        ):
            code = ExitCode.IN_PROGRESS
        return int(code)

    def statistics(self) -> EngineStats:
        downloads = tuple(g.statistics() for g in self.all_groups())
        active = [d for d in downloads if d.status is DownloadStatus.ACTIVE]
        return EngineStats(
            download_speed=sum(d.download_speed for d in active),
            upload_speed=sum(d.upload_speed for d in active),
            num_active=len(active),
            num_waiting=sum(
                1 for d in downloads if d.status in (DownloadStatus.WAITING, DownloadStatus.PAUSED)
            ),
            num_stopped=sum(
                1
                for d in downloads
                if d.status
                in (DownloadStatus.COMPLETE, DownloadStatus.ERROR, DownloadStatus.REMOVED)
            ),
            downloads=downloads,
        )
