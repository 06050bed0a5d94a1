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
from collections.abc import Iterable
from typing import Any

import trio

from ..base.errors import ExitCode
from ..base.policy import SpeedLimit
from ..base.stats import DownloadStatus, EngineStats
from ..net.services import open_services
from .group import RequestGroup

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

    # --- queue ------------------------------------------------------------------------

    def add(self, group: RequestGroup) -> None:
        self.waiting.append(group)
        self._wakeup.set()

    def add_many(self, groups: Iterable[RequestGroup]) -> None:
        for g in groups:
            self.add(g)

    # --- running ----------------------------------------------------------------------

    async def run(self, *, keep_running: bool = False) -> None:
        """Run until every download stopped (or forever with ``keep_running``, for RPC).

        The run's driver services (the FTP connection pool's reaper) live in a nursery around
        every download's, started with ``nursery.start`` on first use (``net.services``).
        """
        async with open_services(), trio.open_nursery() as nursery:
            self._nursery = nursery
            while True:
                limit = max(1, self.options.get("max-concurrent-downloads"))
                while not self._shutdown and self.waiting and len(self.active) < limit:
                    group = self.waiting.pop(0)
                    if group.state is not DownloadStatus.WAITING:
                        self.stopped.append(group)
                        continue
                    self.active.append(group)
                    nursery.start_soon(self._run_group, group)
                if not self.active and (self._shutdown or (not self.waiting and not keep_running)):
                    break
                self._wakeup = trio.Event()
                await self._wakeup.wait()
        self._nursery = None

    async def _run_group(self, group: RequestGroup) -> None:
        group.overall_limit = self.download_limit
        try:
            await group.run()
        finally:
            self.active.remove(group)
            self.stopped.append(group)
            self._wakeup.set()

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
