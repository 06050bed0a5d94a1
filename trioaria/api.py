"""The Python API, shaped like libaria2: a session that runs downloads inside your trio program.

``async with trioaria.Session(options) as s`` starts a download engine (docs/design.md §4) in a
nursery of its own; ``add_uri``, ``add_torrent`` and ``add_metalink`` queue downloads and return
their GIDs at once; ``status`` and ``tell_status`` read snapshots; ``pause``, ``unpause`` and
``remove`` change the queue; ``events()`` yields each download's lifecycle events (aria2's six
notifications) and ``wait(gid)`` waits for one download to stop.  Leaving the block shuts the
engine down gracefully (control files saved), or forcefully when the block raised.

Every call goes through the same backend as RPC (:class:`trioaria.rpc.backend.EngineBackend`),
so a download added here is exactly what ``aria2.addUri`` would have added: options by aria2's
names, magnets and ``.torrent`` URLs become BitTorrent downloads, GIDs are aria2's.  Methods
that cannot block are synchronous (trio's naming rule); a failed call raises
:class:`~trioaria.base.errors.TrioariaError` (an :class:`ApiError` for aria2's method errors).

:func:`download` is the synchronous helper: it runs a session under ``trio.run`` until the
given downloads stopped and returns their final snapshots.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import trio

from .base.errors import TrioariaError
from .base.stats import DownloadStats, DownloadStatus, EngineStats
from .cli.options import Options
from .cli.unsupported import check_refused
from .engine.factory import GroupFactory
from .engine.queue import DownloadEngine
from .rpc import options as rpc_options
from .rpc import status as rpc_status
from .rpc.backend import EngineBackend
from .rpc.messages import RpcMethodError
from .rpc.methods import expand_gid
from .rpc.server import NOTIFICATION_METHODS

__all__ = ["ApiError", "DownloadEvent", "Session", "download"]

_STOPPED = (DownloadStatus.COMPLETE, DownloadStatus.ERROR, DownloadStatus.REMOVED)
_TERMINAL_EVENTS = frozenset({"complete", "error", "stop"})


class ApiError(TrioariaError):
    """A call the engine refused (unknown GID, a download that cannot be paused now...)."""


@dataclass(frozen=True, slots=True)
class DownloadEvent:
    """One lifecycle event of one download.

    Attributes:
        kind: ``start``, ``pause``, ``stop`` (removed), ``complete``, ``error`` or
            ``bt-complete``.
        gid: the download's GID.
    """

    kind: str
    gid: str

    @property
    def method(self) -> str:
        """aria2's notification name (``aria2.onDownloadComplete``...)."""
        return NOTIFICATION_METHODS[self.kind]


def _strings(options: Mapping[str, Any] | None) -> dict[str, str | list[str]]:
    """Option values as aria2 takes them: strings (numbers and booleans converted)."""
    out: dict[str, str | list[str]] = {}
    for name, value in (options or {}).items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            out[name] = [str(v) for v in value]
        else:
            out[name] = str(value)
    return out


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except RpcMethodError as exc:
        raise ApiError(str(exc)) from None


class Session:
    """A running download engine (libaria2's ``Session``); see the module docstring.

    Args:
        options: global options by aria2's names (``{"dir": "/tmp", "split": 4}``); the
            defaults are aria2's.  Per-download options go to ``add_*``.

    Raises:
        OptionError: an invalid option value, or one refused until implemented.
    """

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        raw = _strings(options)
        check_refused(
            {k: v if isinstance(v, str) else "\n".join(v) for k, v in raw.items()},
            where="the Session options",
        )
        self.options = Options.defaults().with_overrides(raw)
        self.engine = DownloadEngine(self.options)
        self._backend = EngineBackend(self.engine, factory=GroupFactory())
        self._events_send, self._events = trio.open_memory_channel[DownloadEvent](math.inf)
        self._stopped: dict[str, trio.Event] = {}
        self._nursery_manager: Any = None
        self._running = False
        self._ended = False
        self.engine.listeners.append(self._on_event)

    # --- the session's life -----------------------------------------------------------------

    async def __aenter__(self) -> Session:
        self._nursery_manager = trio.open_nursery()
        nursery = await self._nursery_manager.__aenter__()
        nursery.start_soon(self._run)
        self._running = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self.engine.shutdown(force=exc is not None)
        try:
            return bool(await self._nursery_manager.__aexit__(exc_type, exc, tb))
        finally:
            self._running = False
            self._events_send.close()

    async def _run(self) -> None:
        try:
            await self.engine.run(keep_running=True)
        finally:
            self._ended = True  # nothing will stop any more: release every waiter
            for event in self._stopped.values():
                event.set()
            self._stopped.clear()

    def _on_event(self, kind: str, group: Any) -> None:
        gid = str(group.gid)
        self._events_send.send_nowait(DownloadEvent(kind, gid))
        if kind in _TERMINAL_EVENTS and gid in self._stopped:
            self._stopped.pop(gid).set()

    def shutdown(self, *, force: bool = False) -> None:
        """Stop every download (progress saved) and end the session's engine."""
        self.engine.shutdown(force=force)

    # --- adding -------------------------------------------------------------------------

    def add_uri(
        self,
        uris: str | Sequence[str],
        options: Mapping[str, Any] | None = None,
        *,
        position: int | None = None,
    ) -> str:
        """Queue one download whose mirrors are ``uris`` (a magnet is a torrent); its GID."""
        uri_list = [uris] if isinstance(uris, str) else list(uris)
        struct = rpc_options.request_options(_strings(options))
        return str(_call(self._backend.add_uri, uri_list, struct, position))

    def add_torrent(
        self,
        torrent: bytes | str | os.PathLike[str],
        uris: Iterable[str] = (),
        options: Mapping[str, Any] | None = None,
        *,
        position: int | None = None,
    ) -> str:
        """Queue a torrent given as its bytes or a path to the ``.torrent`` file; its GID."""
        data = _read(torrent)
        struct = rpc_options.request_options(_strings(options))
        return str(_call(self._backend.add_torrent, data, list(uris), struct, position))

    def add_metalink(
        self,
        metalink: bytes | str | os.PathLike[str],
        options: Mapping[str, Any] | None = None,
        *,
        position: int | None = None,
    ) -> list[str]:
        """Queue one download per file of a Metalink document (bytes or a path); the GIDs."""
        data = _read(metalink)
        struct = rpc_options.request_options(_strings(options))
        return list(_call(self._backend.add_metalink, data, struct, position))

    # --- reading ------------------------------------------------------------------------

    def _gid(self, gid: str) -> str:
        return str(_call(expand_gid, gid, self._backend.gids()))

    def status(self, gid: str) -> DownloadStats:
        """The download's :class:`~trioaria.base.stats.DownloadStats` snapshot."""
        group = self.engine.find(self._gid(gid))
        if group is None:
            raise ApiError(f"GID {gid} is not found")
        return group.statistics()

    def tell_status(self, gid: str, keys: Sequence[str] = ()) -> dict[str, Any]:
        """aria2's ``tellStatus`` struct (string-typed numbers), limited to ``keys``."""
        view = self._backend.view(self._gid(gid))
        if view is None:
            raise ApiError(f"GID {gid} is not found")
        return rpc_status.status_struct(view, keys)

    def downloads(self) -> list[DownloadStats]:
        """Snapshots of every download: running, queued, then stopped."""
        engine = self.engine
        return [g.statistics() for g in (*engine.active, *engine.waiting, *engine.stopped)]

    def global_stat(self) -> EngineStats:
        """The engine's snapshot (speeds and how many downloads are in each list)."""
        return self._backend.engine_stats()

    # --- changing -----------------------------------------------------------------------

    def pause(self, gid: str, *, force: bool = False) -> None:
        """Pause a running or queued download."""
        full = self._gid(gid)
        if not _call(self._backend.pause, full, force=force):
            raise ApiError(f"GID#{full} cannot be paused now")

    def unpause(self, gid: str) -> None:
        """Queue a paused download again."""
        full = self._gid(gid)
        if not _call(self._backend.unpause, full):
            raise ApiError(f"GID#{full} cannot be unpaused now")

    def remove(self, gid: str, *, force: bool = False) -> None:
        """Remove a running or queued download (it ends ``removed``)."""
        full = self._gid(gid)
        if not _call(self._backend.remove, full, force=force):
            raise ApiError(f"Active Download not found for GID#{full}")

    def change_option(self, gid: str, options: Mapping[str, Any]) -> None:
        """aria2's ``changeOption`` (``max-download-limit`` applies at once)."""
        full = self._gid(gid)
        if not _call(self._backend.change_option, full, _strings(options)):
            raise ApiError(f"Cannot change option for GID#{full}")

    def change_global_option(self, options: Mapping[str, Any]) -> None:
        """aria2's ``changeGlobalOption`` (``max-overall-download-limit``, ``-j``...)."""
        _call(self._backend.change_global_option, rpc_options.global_change(_strings(options)))

    # --- waiting ------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[DownloadEvent]:
        """Every download's lifecycle events, in order, until the session ends.

        One stream per session: two consumers share (split) the events.  Events are kept
        until read, so a long session that never reads them should not ask for them.
        """
        async for event in self._events:
            yield event

    def events_nowait(self) -> list[DownloadEvent]:
        """The events that arrived and were not read yet (never blocks)."""
        out: list[DownloadEvent] = []
        while True:
            try:
                out.append(self._events.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return out

    async def wait(self, gid: str) -> DownloadStats:
        """Wait until the download stopped (complete, error or removed); its last snapshot."""
        full = self._gid(gid)
        while True:
            stats = self.status(full)
            if stats.status in _STOPPED or self._ended:
                return stats
            event = self._stopped.setdefault(full, trio.Event())
            await event.wait()


def _read(document: bytes | str | os.PathLike[str]) -> bytes:
    if isinstance(document, bytes):
        return document
    with open(document, "rb") as f:
        return f.read()


def download(
    uris: str | Sequence[str],
    options: Mapping[str, Any] | None = None,
    **more: Any,
) -> list[DownloadStats]:
    """Download synchronously (``trio.run`` inside) and return the final snapshots.

    Each item of ``uris`` is one download (a magnet or a ``.torrent`` URL included); keyword
    arguments are more options with ``_`` for ``-`` (``max_connection_per_server=4``).
    """
    every = dict(options or {})
    every.update({k.replace("_", "-"): v for k, v in more.items()})
    items = [uris] if isinstance(uris, str) else list(uris)

    async def main() -> list[DownloadStats]:
        async with Session(every) as session:
            gids = [session.add_uri([u]) for u in items]
            return [await session.wait(g) for g in gids]

    return trio.run(main)
