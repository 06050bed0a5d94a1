"""Run-wide driver services: background tasks of the drivers in one structured nursery.

Theory of operation
-------------------
Some driver state outlives one download: the FTP control-connection pool
(:class:`trioaria.ftp.client.FtpPool`) is shared by every download of a run, and its reaper
closes idle connections.  Such tasks follow the house rule (docs/design.md; trio's
``serve_listeners``): they are started with ``await nursery.start(...)``, so they run before
the first use, and they end when the nursery that owns them is cancelled.  No task is
spawned loosely (``spawn_system_task``).

The owner of the run (the download engine) opens that nursery once, around everything that
may use a driver::

    async with open_services():
        ...  # downloads

A driver then calls :func:`start_service` with a key and a ``task_status`` function: the first
call starts it with ``nursery.start`` and returns what it passed to ``task_status.started``;
later calls (concurrent ones included) return the same value.  Without an open services
nursery :func:`start_service` returns ``None`` and the driver runs without a background task
(the FTP pool then expires idle connections lazily, when it is used).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio

__all__ = ["open_services", "services_open", "start_service"]


class _Services:
    __slots__ = ("nursery", "pending", "values")

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.values: dict[str, object] = {}
        self.pending: dict[str, trio.Event] = {}


_SERVICES: trio.lowlevel.RunVar[_Services | None] = trio.lowlevel.RunVar(
    "trioaria_services", default=None
)


@asynccontextmanager
async def open_services() -> AsyncIterator[None]:
    """Open the nursery of this run's driver services; leaving the block cancels them.

    Nested use is allowed: the innermost block owns the services started inside it.
    """
    async with trio.open_nursery() as nursery:
        token = _SERVICES.set(_Services(nursery))
        try:
            yield
        finally:
            _SERVICES.reset(token)
            nursery.cancel_scope.cancel()


def services_open() -> bool:
    """Whether an :func:`open_services` block is active in this run."""
    return _SERVICES.get() is not None


async def start_service(key: str, fn: Callable[..., Awaitable[object]]) -> object | None:
    """Start ``fn(task_status=...)`` once per services block with ``nursery.start``.

    Args:
        key: names the service; a second call with the same key starts nothing.
        fn: an async function taking ``task_status`` and calling ``task_status.started(v)``.

    Returns:
        ``v`` (the same object for every call with *key*), or ``None`` when no
        :func:`open_services` block is active.
    """
    services = _SERVICES.get()
    if services is None:
        await trio.lowlevel.checkpoint()
        return None
    while key in services.pending:  # another task is starting it right now
        await services.pending[key].wait()
    if key in services.values:
        await trio.lowlevel.checkpoint()
        return services.values[key]
    starting = services.pending[key] = trio.Event()
    try:
        value: object = await services.nursery.start(fn)
        services.values[key] = value
    finally:
        del services.pending[key]
        starting.set()
    return value
