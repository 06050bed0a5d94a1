"""Happy Eyeballs (RFC 8305) through the whole HTTP source: an address that never answers first.

An injected resolver (``trio.socket.set_custom_hostname_resolver``, in-process) maps a name to
``[::1 port A, 127.0.0.1 port B]``.  Port A on ``::1`` is a listener whose accept queue is full
(``listen(0)`` plus one connection never accepted), so the kernel drops further SYNs and a
connect there hangs.  The download must fall back to 127.0.0.1 after the Happy Eyeballs delay
(250 ms), far sooner than the connect timeout.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import trio

from tests.resolver_util import StaticResolver
from tests.servers.fault import FaultServer
from trioaria.cli.options import Options
from trioaria.http.source import HttpSource
from trioaria.net.connect import HAPPY_EYEBALLS_DELAY


@pytest.fixture
def black_hole_v6() -> Iterator[int]:
    """A ``::1`` port where connects hang (a listener with a full accept queue)."""
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("::1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        for _ in range(3):  # fill the accept queue (backlog 0 holds one)
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setblocking(False)
            fillers.append(s)
            try:
                s.connect(("::1", port))
            except BlockingIOError:
                pass
        # check the trap: one more connect must not complete within 0.5 s
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        fillers.append(probe)
        probe.settimeout(0.5)
        with pytest.raises(TimeoutError):
            probe.connect(("::1", port))
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


def _options(**values: str) -> Options:
    return Options.defaults().with_overrides({k.replace("_", "-"): v for k, v in values.items()})


async def test_falls_back_to_ipv4_after_the_delay(
    fault_server: FaultServer, black_hole_v6: int
) -> None:
    assert fault_server.port is not None
    resolver = StaticResolver(
        {
            "dual.test": [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", black_hole_v6, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", fault_server.port)),
            ]
        }
    )
    trio.socket.set_custom_hostname_resolver(resolver)
    source = HttpSource(
        f"http://dual.test:{fault_server.port}/ok/data.bin",
        _options(connect_timeout="20", timeout="20"),
    )
    start = trio.current_time()
    try:
        with trio.fail_after(10):
            probe = await source.probe()
        elapsed = trio.current_time() - start
        assert probe.total_length == len(fault_server.files["data.bin"])
        assert probe.stream is not None
        await probe.stream.finish(drained=False)
    finally:
        await source.aclose()
    assert resolver.asked == ["dual.test"]
    # the IPv6 attempt came first and hung; IPv4 was started after the delay, not the timeout
    assert HAPPY_EYEBALLS_DELAY * 0.8 <= elapsed < 5, elapsed
    assert fault_server.requests and fault_server.requests[0].target == "/ok/data.bin"
