"""Local Service Discovery (BEP 14): the codec, the schedule and filters, and two LpdNode
drivers finding each other over multicast between two network namespaces.

The namespace test builds ``trioaria-lpd-a-*`` and ``trioaria-lpd-b-*`` joined by a veth pair
(10.77.14.1/24 and 10.77.14.2/24, ``multicast on``; see docs/testing.md) and runs one driver
process in each with ``ip netns exec``: each announces the same torrent with its own port, keeps
multicast loopback on so its own announce comes back (the cookie must drop it), and must learn
the other's address and port.  The namespaces are deleted in a ``finally``; a failed set-up fails
the test.  Nothing leaves the namespaces: they have no route but their veth link.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.bt.lpd import (
    MAX_HASHES_PER_MESSAGE,
    MAX_PEERS_PER_SOURCE,
    LpdAnnounce,
    LpdError,
    LpdPeer,
    LpdService,
    build_announce,
    parse_announce,
)

REPO = Path(__file__).resolve().parents[2]
IH = hashlib.sha1(b"lpd torrent").digest()


def test_golden_announce() -> None:
    raw = build_announce([IH], 6881, cookie="c0ffee")
    assert raw == (
        b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\n"
        b"Infohash: " + IH.hex().encode() + b"\r\ncookie: c0ffee\r\n\r\n\r\n"
    )
    assert parse_announce(raw) == LpdAnnounce("239.192.152.143:6771", 6881, (IH,), "c0ffee")
    six = build_announce([IH, bytes(20)], 1, group="ff15::efc0:988f")
    assert b"Host: [ff15::efc0:988f]:6771\r\n" in six
    assert parse_announce(six).info_hashes == (IH, bytes(20))


def test_lenient_where_the_bep_is_silent() -> None:
    raw = (
        b"BT-SEARCH * HTTP/1.1\nhost: 239.192.152.143:6771\nPORT: 51413\ninfohash: "
        + IH.hex().upper().encode()
        + b"\n\n"
    )
    assert parse_announce(raw) == LpdAnnounce("239.192.152.143:6771", 51413, (IH,), None)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"M-SEARCH * HTTP/1.1\r\nHost: x\r\nPort: 1\r\nInfohash: "
        + IH.hex().encode()
        + b"\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\nHost: x\r\nPort: 0\r\nInfohash: "
        + IH.hex().encode()
        + b"\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\nHost: x\r\nPort: 99999\r\nInfohash: "
        + IH.hex().encode()
        + b"\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\nHost: x\r\nPort: -1\r\nInfohash: "
        + IH.hex().encode()
        + b"\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\nHost: x\r\nPort: 1\r\nInfohash: zz"
        + IH.hex().encode()[2:]
        + b"\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\nHost: x\r\nPort: 1\r\nInfohash: abc\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\nHost: x\r\nPort: 1\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + IH.hex().encode() + b"\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\nHost x\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\n" + b"X: y\r\n" * 300,
    ],
)
def test_malformed(raw: bytes) -> None:
    with pytest.raises(LpdError):
        parse_announce(raw)


hashes = st.lists(st.binary(min_size=20, max_size=20), min_size=1, max_size=MAX_HASHES_PER_MESSAGE)


@given(hashes, st.integers(1, 65535), st.none() | st.text(alphabet="0123456789abcdef", max_size=16))
def test_round_trip(ihs: list[bytes], port: int, cookie: str | None) -> None:
    assert parse_announce(build_announce(ihs, port, cookie=cookie)) == LpdAnnounce(
        "239.192.152.143:6771", port, tuple(ihs), cookie
    )


@given(st.binary(max_size=400))
def test_garbage_never_crashes(raw: bytes) -> None:
    try:
        parse_announce(b"BT-SEARCH * HTTP/1.1\r\n" + raw)
    except LpdError:
        pass
    assert LpdService(1, "x").receive_datagram(raw, ("10.0.0.1", 1), 0.0) == []


def test_schedule_batches_and_rate_limits() -> None:
    svc = LpdService(6881, "me", interval=300)
    assert svc.get_timer() is None and svc.datagrams_to_send(0.0) == []
    many = [hashlib.sha1(bytes([i])).digest() for i in range(MAX_HASHES_PER_MESSAGE + 5)]
    for ih in many:
        svc.add_torrent(ih, 0.0)
    out = svc.datagrams_to_send(0.0)
    assert len(out) == 2 and {h for m in out for h in parse_announce(m).info_hashes} == set(many)
    assert svc.get_timer() == 300.0 and svc.datagrams_to_send(299.0) == []
    svc.remove_torrent(many[0])
    svc.add_torrent(many[0], 10.0)  # re-added: not again before a minute has passed
    assert svc.get_timer() == 60.0
    assert [parse_announce(m).info_hashes for m in svc.datagrams_to_send(60.0)] == [(many[0],)]


def test_receive_filters_own_cookie_unknown_torrents_and_floods() -> None:
    svc = LpdService(6881, "me")
    svc.add_torrent(IH, 0.0)
    theirs = build_announce([IH, bytes(20)], 7000, cookie="them")
    assert svc.receive_datagram(theirs, ("10.0.0.2", 6771), 1.0) == [
        LpdPeer(IH, ("10.0.0.2", 7000))
    ]
    assert (
        svc.receive_datagram(build_announce([IH], 6881, cookie="me"), ("10.0.0.1", 6771), 1.0) == []
    )
    got = sum(len(svc.receive_datagram(theirs, ("10.0.0.3", 6771), 2.0)) for _ in range(1000))
    assert got == MAX_PEERS_PER_SOURCE
    assert svc.receive_datagram(theirs, ("10.0.0.3", 6771), 62.0) != []  # a minute later


# --- two drivers, two namespaces -----------------------------------------------------------------

_DRIVER = r"""
import json, sys, trio
from trioaria.dht.lpd_node import LpdNode

ip, bt_port, ih_hex, group, iface = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

async def main():
    node = LpdNode(bt_port, ip if ":" not in group else iface, group=group, loop=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        node.add_torrent(bytes.fromhex(ih_hex))
        with trio.move_on_after(20):
            while True:  # re-announce each second until the neighbour answered (bounded)
                with trio.move_on_after(1):
                    await node.wait_peer()
                node.service.remove_torrent(bytes.fromhex(ih_hex))
                node.service.min_interval = 0
                node.add_torrent(bytes.fromhex(ih_hex))  # announce again now
                if node.peers:  # one more announce so the neighbour hears us too, then stop
                    await trio.sleep(1.5)
                    break
        nursery.cancel_scope.cancel()
    print(json.dumps({"peers": [[p.info_hash.hex(), p.address[0], p.address[1]] for p in node.peers], "sent": node.sent}))

trio.run(main)
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str]]:
    tag = secrets.token_hex(3)
    a, b = f"trioaria-lpd-a-{tag}", f"trioaria-lpd-b-{tag}"
    _ip("netns", "add", a)
    try:
        _ip("netns", "add", b)
        try:
            _ip("-n", a, "link", "add", "lpd0", "type", "veth", "peer", "name", "lpd1", "netns", b)
            for ns, dev, addr, addr6 in (
                (a, "lpd0", "10.77.14.1/24", "fd77:14::1/64"),
                (b, "lpd1", "10.77.14.2/24", "fd77:14::2/64"),
            ):
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "addr", "add", addr, "dev", dev)
                _ip("-n", ns, "-6", "addr", "add", addr6, "dev", dev, "nodad")
                _ip("-n", ns, "link", "set", dev, "up", "multicast", "on")
            yield a, b
        finally:
            subprocess.run(["ip", "netns", "delete", b], check=False, timeout=20)
    finally:
        subprocess.run(["ip", "netns", "delete", a], check=False, timeout=20)


def _run_pair(a: str, b: str, group: str, ips: tuple[str, str]) -> list[dict[str, object]]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                sys.executable,
                "-c",
                _DRIVER,
                ip,
                str(port),
                IH.hex(),
                group,
                dev,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )
        for ns, ip, port, dev in ((a, ips[0], 41001, "lpd0"), (b, ips[1], 41002, "lpd1"))
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_two_nodes_find_each_other_ipv4(namespaces: tuple[str, str]) -> None:
    res_a, res_b = _run_pair(*namespaces, "239.192.152.143", ("10.77.14.1", "10.77.14.2"))
    assert [IH.hex(), "10.77.14.2", 41002] in res_a["peers"], res_a
    assert [IH.hex(), "10.77.14.1", 41001] in res_b["peers"], res_b
    # our own looped-back announces were dropped by the cookie
    assert all(p[2] == 41002 for p in res_a["peers"]) and all(p[2] == 41001 for p in res_b["peers"])


def test_two_nodes_find_each_other_ipv6(namespaces: tuple[str, str]) -> None:
    res_a, res_b = _run_pair(*namespaces, "ff15::efc0:988f", ("fd77:14::1", "fd77:14::2"))
    assert any(p[2] == 41002 for p in res_a["peers"]), res_a
    assert any(p[2] == 41001 for p in res_b["peers"]), res_b
    assert all(p[2] == 41002 for p in res_a["peers"]) and all(p[2] == 41001 for p in res_b["peers"])


def test_the_node_keeps_the_last_peers_and_hands_out_each_once() -> None:
    """Neighbours re-announce for as long as we run: the node keeps the last MAX_PEERS it heard
    (not every announce ever), and a reader that counted what it took gets only what is new."""
    from trioaria.dht.lpd_node import MAX_PEERS, LpdNode

    node = LpdNode(6881, "127.0.0.1")
    batch = [LpdPeer(IH, ("10.0.0.2", 7000 + i)) for i in range(10)]
    node.add_found(batch)
    assert node.peers_since(0) == batch and node.peers_since(10) == []
    seen = node.found
    for _ in range(100):
        node.add_found(batch)
    assert len(node.peers) == MAX_PEERS and node.found == 1010
    assert node.peers_since(seen) == node.peers  # more arrived than is kept: all that is kept
    node.add_found(batch[:3])
    assert node.peers_since(1010) == batch[:3]


_LISTENER = r"""
import json, sys, trio
from trioaria.dht.lpd_node import LpdNode

async def main():
    node = LpdNode(41001, sys.argv[1])
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        node.add_torrent(bytes.fromhex(sys.argv[2]))
        print("READY", flush=True)
        await trio.sleep(3)
        nursery.cancel_scope.cancel()
    print(json.dumps([p.address[1] for p in node.peers]))

trio.run(main)
"""

_SENDER = r"""
import socket, sys, time
from trioaria.bt.lpd import build_announce
ih = bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[3]))
for i in range(10):
    s.sendto(build_announce([ih], 42000 + i, cookie="u"), (sys.argv[1], 6771))  # unicast
    s.sendto(build_announce([ih], 43000 + i, cookie="m"), ("239.192.152.143", 6771))
    time.sleep(0.2)
"""


def test_only_datagrams_to_the_group_are_heard(namespaces: tuple[str, str]) -> None:
    """As aria2 (its receiver binds the group address): an announce sent to the group is
    heard, one sent to the host's own address (from anywhere, not only the local network)
    is not."""
    a, b = namespaces
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO)}
    listener = subprocess.Popen(
        ["ip", "netns", "exec", a, sys.executable, "-c", _LISTENER, "10.77.14.1", IH.hex()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
    )  # fmt: skip
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "READY", listener.stderr
        subprocess.run(
            ["ip", "netns", "exec", b, sys.executable, "-c", _SENDER, "10.77.14.1", IH.hex(),
             "10.77.14.2"],
            check=True, timeout=30, cwd=REPO, env=env,
        )  # fmt: skip
        out, err = listener.communicate(timeout=30)
    finally:
        listener.kill()
    ports = json.loads(out.strip().splitlines()[-1])
    assert any(43000 <= p < 43010 for p in ports), (ports, err[-2000:])  # the group's
    assert not any(42000 <= p < 42010 for p in ports), ports  # unicast: never heard
