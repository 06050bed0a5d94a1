"""A flood of idle incoming connections: the listener bounds its half-open handshakes
(each would hold a descriptor and a task for HANDSHAKE_DEADLINE, and cost two 768-bit
modular exponentiations once it sends 96 bytes), closing the rest at once."""

from __future__ import annotations

import os

import trio

from trioaria.bt.listener import MAX_HALF_OPEN, PeerListener

N = 300  # with the test's own ends: 600 descriptors, under a 1024 limit


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_idle_connection_flood_is_bounded() -> None:
    listener = PeerListener([0])
    async with trio.open_nursery() as nursery:
        port = await nursery.start(listener.run)
        base = _fds()
        clients = []
        with trio.fail_after(10):
            for _ in range(N):
                clients.append(await trio.open_tcp_stream("127.0.0.1", port))
            await trio.sleep(0.5)  # let the accept loop take what it will
        server_side = _fds() - base - N
        for c in clients:
            c.socket.close()
        nursery.cancel_scope.cancel()
    assert server_side <= MAX_HALF_OPEN, f"{server_side} half-open incoming connections held"
    assert listener.refused >= N - MAX_HALF_OPEN
