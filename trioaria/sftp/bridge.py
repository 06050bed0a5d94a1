"""A bridge from trio to one asyncio event loop running in its own thread (docs/design.md).

asyncssh is an asyncio library.  trioaria never calls it from trio directly: every asyncssh
object lives on one asyncio loop that runs in a daemon thread, and trio code hands that loop
coroutines with :meth:`AioBridge.run` (await the result) or :meth:`AioBridge.submit` (start now,
await later with :meth:`AioBridge.wait`).

Rules (docs/design.md "thread bridge"):

* A trio cancellation returns at once; the asyncio task is cancelled a moment later on its own
  thread (``Future.cancel``), so a cancelled SFTP read never blocks a trio cancel scope.
* The wake-up from the asyncio thread goes through the trio token.  If the trio run already
  finished, the wake-up is dropped instead of raising ``RunFinishedError`` on the asyncio thread.
* The loop is shared and reference counted (:func:`acquire` / :meth:`AioBridge.release`): the
  first user starts the thread, the last one stops it — after cancelling whatever is still
  pending there — and joins it, so all SSH work is over before ``trio.run`` returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

__all__ = ["AioBridge", "acquire"]

T = TypeVar("T")

_JOIN_SECONDS = 5.0


class AioBridge:
    """An asyncio event loop in a daemon thread, driven from trio."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._users = 0
        self._closed = False
        self._thread = threading.Thread(target=self._main, name="trioaria-asyncio", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # --- calls ---------------------------------------------------------------------------

    def submit(self, awaitable: Awaitable[T]) -> concurrent.futures.Future[T]:
        """Start ``awaitable`` on the asyncio loop now; the future completes on that thread.

        Any awaitable is accepted (``asyncssh.connect()`` returns an awaitable context
        manager, which ``run_coroutine_threadsafe`` would refuse on its own).
        """
        if self._closed:
            raise RuntimeError("the asyncio bridge is closed")
        return asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), self.loop)

    async def wait(self, future: concurrent.futures.Future[T]) -> T:
        """Wait for ``future`` from trio; a trio cancellation cancels the asyncio task."""
        if not future.done():
            token = trio.lowlevel.current_trio_token()
            done = trio.Event()

            def wake(_: object) -> None:
                try:
                    token.run_sync_soon(done.set)
                except trio.RunFinishedError:  # the trio run is over: nobody waits any more
                    pass

            future.add_done_callback(wake)
            try:
                await done.wait()
            except BaseException:
                future.cancel()
                raise
        else:
            await trio.lowlevel.checkpoint()
        return future.result()

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the asyncio loop and return its result (or raise its error)."""
        return await self.wait(self.submit(awaitable))

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Call a synchronous function on the asyncio thread (e.g. ``conn.close``)."""
        if not self._closed:
            self.loop.call_soon_threadsafe(fn, *args)

    # --- lifetime --------------------------------------------------------------------------

    async def release(self) -> None:
        """Drop one user; the last one stops the loop and joins its thread."""
        global _shared
        self._users -= 1
        if self._users > 0 or self._closed:
            return
        if _shared is self:
            _shared = None
        self._closed = True
        stop = asyncio.run_coroutine_threadsafe(_cancel_all_and_stop(), self.loop)
        try:
            with trio.move_on_after(_JOIN_SECONDS):
                await trio.to_thread.run_sync(stop.result, abandon_on_cancel=True)
                await trio.to_thread.run_sync(
                    self._thread.join, _JOIN_SECONDS, abandon_on_cancel=True
                )
        except concurrent.futures.CancelledError:  # pragma: no cover - loop already gone
            pass


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _cancel_all_and_stop() -> None:
    """Cancel the tasks still pending on this loop, let them unwind, then stop the loop."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=2)
    loop = asyncio.get_running_loop()
    await loop.shutdown_asyncgens()
    loop.call_soon(loop.stop)


_shared: AioBridge | None = None


def acquire() -> AioBridge:
    """The process-wide bridge, started on first use; pair every call with ``release()``."""
    global _shared
    if _shared is None or _shared.closed:
        _shared = AioBridge()
    _shared._users += 1
    return _shared
