"""A peer that asks and does not read: the replies a peer task owes (rejects, metadata pieces,
HAVEs) wait in its queue, and past MAX_QUEUED_OUT bytes the connection is closed instead of
growing without bound.  A real TCP connection on 127.0.0.1 whose far side never reads."""

from __future__ import annotations

import trio

from tests.net.test_low_water import _connected
from trioaria.bt.peer_task import MAX_QUEUED_OUT, PeerTask
from trioaria.bt.swarm import Swarm


async def test_replies_a_peer_does_not_read_are_bounded() -> None:
    async with _connected() as (ours, _far):
        swarm = Swarm(b"i" * 20, b"p" * 20, meta=None)
        task = PeerTask(swarm, ours, ("127.0.0.1", 1), outgoing=False)
        chunk = b"r" * (1 << 20)
        for _ in range(MAX_QUEUED_OUT // len(chunk)):
            task.queue(chunk)
        assert not task.closed and len(task._out) == MAX_QUEUED_OUT
        task.queue(b"one more reply")
        assert task.closed
        task.queue(chunk)  # closed: dropped
        assert len(task._out) <= MAX_QUEUED_OUT + len(b"one more reply")
        await trio.lowlevel.checkpoint()
