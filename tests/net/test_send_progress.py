"""``ByteStream.send_all(data, progress)``: the count of bytes handed to the kernel is reported
after each ``send``, so a sender cancelled half-way knows how much went out (the peer task
counts uploaded blocks with it).  Real TCP on 127.0.0.1."""

from __future__ import annotations

import trio

from tests.net.test_low_water import _connected

SIZE = 8 * 1024 * 1024  # far more than the socket buffers hold


async def test_progress_rises_to_the_whole_length() -> None:
    async with _connected() as (ours, receiver):
        seen: list[int] = []
        got = 0

        async def drain() -> None:
            nonlocal got
            while got < SIZE:
                got += len(await receiver.receive_some(1 << 20))

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain)
                await ours.send_all(bytes(SIZE), seen.append)
        assert got == SIZE
        assert seen == sorted(seen) and seen[-1] == SIZE
        assert len(seen) > 1  # the kernel took it in several sends


async def test_a_cancelled_send_has_reported_what_went_out() -> None:
    async with _connected() as (ours, _receiver):
        seen: list[int] = []
        with trio.move_on_after(0.3) as cs:  # nobody reads: the send stalls half-way
            await ours.send_all(bytes(SIZE), seen.append)
        assert cs.cancelled_caught
        assert seen and 0 < seen[-1] < SIZE


async def test_try_send_takes_what_the_kernel_takes_at_once() -> None:
    """``try_send`` (the peer task's short road for small messages while its writer is idle):
    the bytes go out without blocking; a full send buffer takes nothing (``None``); after a
    close, ``None`` too (the writer's next ``send_all`` reports the error)."""
    async with _connected() as (ours, receiver):
        assert ours.try_send(b"") is None
        assert ours.try_send(b"hello") == 5
        with trio.fail_after(5):
            assert await receiver.receive_some(100) == b"hello"
        sent = 0
        for _ in range(10_000):  # nobody reads: the buffers fill up
            n = ours.try_send(bytes(1 << 16))
            if n is None:
                break
            sent += n
        assert n is None and sent > 0
        ours.close_nowait()
        assert ours.try_send(b"x") is None
