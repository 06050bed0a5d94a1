"""Happy Eyeballs (RFC 8305) in a network namespace: an IPv6 address that never answers.

The test creates its own namespace (``ip netns add trioaria-he-<random>``, deleted in a
``finally``) holding only ``lo`` and a veth pair: ``he0`` has ``fd00:db8:4e::1/64`` and a
permanent neighbour entry sending ``fd00:db8:4e::2`` to a MAC address nobody has, so a SYN
to ``fd00:db8:4e::2`` goes out of ``he0``, its peer ``he1`` drops the frame (not its MAC),
and nothing ever comes back: no RST, no ICMP, no neighbour-discovery failure (unlike
``ip route add blackhole``, which fails at once).  Inside the
namespace a small driver (``ip netns exec``) serves a file on 127.0.0.1 and injects a
resolver (``trio.socket.set_custom_hostname_resolver``) that maps ``dual.test`` to
``[fd00:db8:4e::2, 127.0.0.1]``.  Then:

* a plain connect to the IPv6 address must still be pending after 1 s (the trap holds);
* :func:`trioaria.net.connect.open_stream` must end up on 127.0.0.1 after the Happy Eyeballs delay
  (250 ms) and far before its 20 s connect timeout;
* the whole HTTP source (probe and body) works through the same name.

Nothing leaves the namespace: it has no route anywhere but its own two interfaces, and the
driver (the only process that connects) runs inside it.  ``tests/test_happy_eyeballs.py`` is
the in-process variant (a full accept queue on ``::1``).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from trioaria.net.connect import HAPPY_EYEBALLS_DELAY

REPO = Path(__file__).resolve().parent.parent
SILENT = "fd00:db8:4e::2"

_DRIVER = r"""
import json, random, socket, sys, time
import trio
from trioaria.demo import serve_bytes
from trioaria.http.source import HttpSource
from trioaria.net.connect import open_stream
from trioaria.cli.options import Options

SILENT = sys.argv[1]
DATA = random.Random(8305).randbytes(300_000)


class Resolver(trio.abc.HostnameResolver):
    def __init__(self, table):
        self.table, self.asked = table, []

    async def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.asked.append(name)
        await trio.lowlevel.checkpoint()
        return [a for a in self.table[name] if family in (0, a[0])]

    async def getnameinfo(self, sockaddr, flags):
        raise NotImplementedError


def trap_holds(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect((SILENT, port))
    except TimeoutError:
        return "pending"
    except OSError as exc:
        return f"error: {exc}"
    finally:
        s.close()
    return "connected"


async def main(port):
    resolver = Resolver({"dual.test": [
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (SILENT, port, 0, 0)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
    ]})
    trio.socket.set_custom_hostname_resolver(resolver)
    start = trio.current_time()
    stream = await open_stream("dual.test", port, tls=None, connect_timeout=20)
    elapsed = trio.current_time() - start
    peer = list(stream.peer[:2])
    await stream.aclose()
    options = Options.defaults().with_overrides({"connect-timeout": "20", "timeout": "20"})
    source = HttpSource(f"http://dual.test:{port}/he.bin", options)
    try:
        probe = await source.probe()
        buf = memoryview(bytearray(1 << 16))
        got = bytearray()
        while n := await probe.stream.read_into(buf):
            got += buf[:n]
        await probe.stream.finish(drained=True)
    finally:
        await source.aclose()
    return {"elapsed": elapsed, "peer": peer, "asked": resolver.asked,
            "length": probe.total_length, "body_ok": bytes(got) == DATA}


port = serve_bytes(DATA)
result = {"trap": trap_holds(port)}
result.update(trio.run(main, port))
print(json.dumps(result))
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh namespace: ``lo`` up, and a link where packets to ``SILENT`` vanish."""
    name = f"trioaria-he-{secrets.token_hex(4)}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "add", "he0", "type", "veth", "peer", "name", "he1")
        _ip("-n", name, "link", "set", "he0", "up")
        _ip("-n", name, "link", "set", "he1", "up")
        _ip("-n", name, "-6", "addr", "add", "fd00:db8:4e::1/64", "dev", "he0", "nodad")
        _ip(
            "-n", name, "-6", "neigh", "add", SILENT, "lladdr", "02:00:5e:00:53:99",
            "dev", "he0", "nud", "permanent",
        )  # fmt: skip
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False, timeout=20)


def test_falls_back_to_ipv4_when_ipv6_never_answers(namespace: str) -> None:
    proc = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", _DRIVER, SILENT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["trap"] == "pending", result  # the IPv6 address really never answers
    assert result["peer"] == ["127.0.0.1", result["peer"][1]], result
    # IPv6 was tried first and hung; IPv4 started after the delay, not after the timeout
    assert HAPPY_EYEBALLS_DELAY * 0.8 <= result["elapsed"] < 5, result
    assert result["asked"][0] == "dual.test", result
    assert result["length"] == 300_000 and result["body_ok"], result


def test_namespace_is_gone_afterwards() -> None:
    """The fixture's ``finally`` deletes what it made (run after the test above)."""
    listed = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, timeout=20, check=True
    ).stdout
    assert "trioaria-he-" not in listed, listed
