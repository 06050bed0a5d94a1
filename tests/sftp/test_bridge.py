"""trioaria.sftp.bridge: trio drives an asyncio loop in its own thread (docs/design.md)."""

from __future__ import annotations

import asyncio
import threading

import pytest
import trio

from trioaria.sftp import bridge as bridge_mod
from trioaria.sftp.bridge import acquire


async def test_run_returns_results_and_raises_errors_on_the_asyncio_thread() -> None:
    b = acquire()
    try:
        seen: list[str] = []

        async def where() -> str:
            seen.append(threading.current_thread().name)
            await asyncio.sleep(0)
            return "ok"

        assert await b.run(where()) == "ok"
        assert seen == ["trioaria-asyncio"]

        async def boom() -> None:
            raise KeyError("x")

        with pytest.raises(KeyError):
            await b.run(boom())
    finally:
        await b.release()
    assert b.closed


async def test_trio_cancel_returns_at_once_and_cancels_the_asyncio_task() -> None:
    b = acquire()
    cancelled = threading.Event()
    try:

        async def forever() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        start = trio.current_time()
        with trio.move_on_after(0.05) as scope:
            await b.run(forever())
        assert scope.cancelled_caught
        assert trio.current_time() - start < 1
        # the asyncio side sees the cancellation on its own thread, a moment later
        assert await trio.to_thread.run_sync(cancelled.wait, 5)
        assert await b.run(asyncio.sleep(0, result=7)) == 7  # the loop is still usable
    finally:
        await b.release()


async def test_shared_loop_is_reference_counted_and_stopped_by_the_last_user() -> None:
    a = acquire()
    b = acquire()
    assert a is b
    thread = a._thread
    await a.release()
    assert not a.closed
    assert thread.is_alive()
    pending = a.submit(asyncio.sleep(3600))  # still pending when the loop stops
    await b.release()
    assert a.closed
    assert not thread.is_alive()
    assert pending.cancelled()
    with pytest.raises(RuntimeError):
        a.submit(asyncio.sleep(0))
    c = acquire()  # a new user gets a fresh loop
    try:
        assert c is not a
        assert await c.run(asyncio.sleep(0, result=1)) == 1
    finally:
        await c.release()
    assert bridge_mod._shared is None
