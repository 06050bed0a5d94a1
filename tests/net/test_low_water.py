"""``ByteStream.wait_for_bytes``: a reader owed a lot waits until a whole buffer's worth has
arrived (``SO_RCVLOWAT``), with a bound on the wait, and EOF still wakes it
(docs/performance.md §9).  Real TCP on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from trioaria.net.connect import ByteStream, open_stream

WANT = 64 * 1024


@asynccontextmanager
async def _connected() -> AsyncIterator[tuple[ByteStream, trio.SocketStream]]:
    """Our stream (the reader) and the raw server side (the sender) of one connection."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        accepted: list[trio.SocketStream] = []

        async def accept() -> None:
            accepted.append(await listeners[0].accept())

        nursery.start_soon(accept)
        ours = await open_stream("127.0.0.1", port, tls=None, connect_timeout=5)
        with trio.fail_after(5):
            while not accepted:
                await trio.sleep(0.001)
    try:
        yield ours, accepted[0]
    finally:
        ours.close_nowait()
        await accepted[0].aclose()
        await listeners[0].aclose()


def _lowat(stream: ByteStream) -> int:
    sock = stream._sock  # the mark the kernel holds
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT))


async def test_the_wait_ends_only_once_enough_bytes_arrived() -> None:
    async with _connected() as (ours, sender):
        done = trio.Event()

        async def wait() -> None:
            assert await ours.wait_for_bytes(WANT, patience=30)
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            await sender.send_all(b"x" * 1000)
            await trio.sleep(0.1)
            assert not done.is_set()  # 1,000 bytes are waiting, but not WANT
            await sender.send_all(b"y" * WANT)
            with trio.fail_after(5):
                await done.wait()
        buf = memoryview(bytearray(2 * WANT))
        assert await ours.receive_into(buf) >= WANT
        assert _lowat(ours) == WANT  # kept for the next read of the same size
        await ours.wait_for_bytes(1, patience=30)
        assert _lowat(ours) == 1


async def test_patience_runs_out_and_a_plain_read_still_gets_a_few_bytes() -> None:
    async with _connected() as (ours, sender):
        await sender.send_all(b"abc")
        with trio.fail_after(5):
            assert not await ours.wait_for_bytes(WANT, patience=0.05)  # ran out of patience
        assert _lowat(ours) == 1
        buf = memoryview(bytearray(WANT))
        with trio.fail_after(5):
            n = await ours.receive_into(buf)
            assert bytes(buf[:n]) == b"abc"
            await sender.send_all(b"de")  # a later small message is not held back either
            n = await ours.receive_into(buf)
        assert bytes(buf[:n]) == b"de"


async def test_end_of_stream_ends_the_wait() -> None:
    async with _connected() as (ours, sender):
        await sender.send_all(b"last words")
        await sender.send_eof()
        with trio.fail_after(5):
            assert await ours.wait_for_bytes(WANT, patience=30)
            buf = memoryview(bytearray(WANT))
            n = await ours.receive_into(buf)
            assert bytes(buf[:n]) == b"last words"
            assert await ours.receive_into(buf) == 0
