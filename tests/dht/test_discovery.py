"""bt/discovery.py in process: the DHT side of a download on loopback (IPv4 and ::1).

Our own DhtNodes stand in for the rest of the DHT: a bootstrap node and a "seeder" node that
announced a port.  ``Discovery`` must find that port for a swarm over IPv4 and over IPv6 (one UDP
port for both), announce itself, save ``dht.dat`` in aria2's layout, and use the built-in bootstrap
list only when allowed (proved with an injected resolver that points the names at loopback).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest
import trio

from trioaria.bt.discovery import Discovery
from trioaria.dht.node import DhtNode
from trioaria.dht.node_id import Address, NodeId
from trioaria.dht.persist import parse_dht_file

INFO_HASH = bytes(range(40, 60))


class FakeSwarm:
    """The two things Discovery needs of a swarm (a real Swarm needs a whole download)."""

    def __init__(self) -> None:
        self.info_hash = INFO_HASH
        self.peers: list[tuple[str, int]] = []
        self.got = trio.Event()

    def add_peers(self, addrs: Iterable[tuple[str, int]]) -> None:
        self.peers.extend(addrs)
        self.got.set()


def options(**values: object) -> dict[str, object]:
    base: dict[str, object] = {
        "enable-dht": "true",
        "enable-dht6": "false",
        "dht-listen-port": 0,
        "dht-listen-addr": "127.0.0.1",
        "dht-message-timeout": 2,
    }
    base.update({k.replace("_", "-"): v for k, v in values.items()})
    return base


async def _network(nursery: trio.Nursery, host: str, seeder_port: int) -> tuple[DhtNode, DhtNode]:
    """A bootstrap node and a seeder node that announced ``seeder_port`` through it."""
    boot = DhtNode(host, 0)
    seeder = DhtNode(host, 0)
    await nursery.start(boot.run)
    await nursery.start(seeder.run)
    await seeder.bootstrap([(host, boot.port)])
    await seeder.announce(NodeId(INFO_HASH), seeder_port)
    return boot, seeder


@pytest.mark.parametrize("family", [4, 6])
async def test_finds_the_announced_peer_and_announces_itself(tmp_path: Path, family: int) -> None:
    host = "::1" if family == 6 else "127.0.0.1"
    dat = tmp_path / f"dht{family}.dat"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            boot, _seeder = await _network(nursery, host, 4321)
            key = "dht_entry_point6" if family == 6 else "dht_entry_point"
            opts = options(
                enable_dht6="true" if family == 6 else "false",
                dht_listen_addr6="::1",
                dht_file_path=str(tmp_path / "dht4.dat"),
                dht_file_path6=str(tmp_path / "dht6.dat"),
                **{key: (host, boot.port)},
            )
            discovery = Discovery(opts.get)
            async with trio.open_nursery() as inner:
                port = await inner.start(discovery.run)
                assert set(discovery.nodes) == ({4, 6} if family == 6 else {4})
                assert all(n.port == port for n in discovery.nodes.values())  # one UDP port
                swarm = FakeSwarm()
                inner.start_soon(discovery.serve_swarm, swarm, 5555)
                await swarm.got.wait()
                assert (host, 4321) in swarm.peers
                # our announce reached the bootstrap node: it now hands out port 5555
                probe = DhtNode(host, 0)
                await nursery.start(probe.run)
                answer = await probe.get_peers_from((host, boot.port), NodeId(INFO_HASH))
                assert (host, 5555) in [(str(ip), int(p)) for ip, p in answer.values]
                inner.cancel_scope.cancel()
            nursery.cancel_scope.cancel()
    state = parse_dht_file(dat.read_bytes(), family)  # saved on the way out
    assert (host, boot.port) in [(n.ip, n.port) for n in state.nodes]


async def test_private_torrents_never_use_the_dht() -> None:
    discovery = Discovery(options().get)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(discovery.run)
            await discovery.serve_swarm(FakeSwarm(), 5555, True)  # returns at once
            nursery.cancel_scope.cancel()


async def _default_bootstrap(
    monkeypatch: pytest.MonkeyPatch, *, allowed: bool
) -> tuple[int, list[str]]:
    """Run Discovery with no entry point; the built-in names resolve to one loopback node."""
    if allowed:
        monkeypatch.delenv("TRIOARIA_NO_DEFAULT_BOOTSTRAP", raising=False)
    asked: list[str] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            boot = DhtNode("127.0.0.1", 0)
            await nursery.start(boot.run)

            async def resolve(host: str, port: int, family: int) -> Address | None:
                asked.append(host)
                return ("127.0.0.1", boot.port)

            opts = options(dht_default_bootstrap="true")
            discovery = Discovery(opts.get, resolve=resolve)
            async with trio.open_nursery() as inner:
                await inner.start(discovery.run)
                await discovery.ready.wait()
                inner.cancel_scope.cancel()
            nursery.cancel_scope.cancel()
    return len(boot.protocol.table), asked


async def test_built_in_bootstrap_when_the_table_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    known, asked = await _default_bootstrap(monkeypatch, allowed=True)
    assert "router.bittorrent.com" in asked
    assert known >= 1  # the "public" node (on loopback) heard from us


async def test_built_in_bootstrap_off_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert os.environ.get("TRIOARIA_NO_DEFAULT_BOOTSTRAP") == "1"  # tests/conftest.py
    known, asked = await _default_bootstrap(monkeypatch, allowed=False)
    assert asked == [] and known == 0


async def test_option_turns_the_built_in_list_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIOARIA_NO_DEFAULT_BOOTSTRAP", raising=False)
    asked: list[str] = []

    async def resolve(host: str, port: int, family: int) -> Address | None:
        asked.append(host)
        return None

    discovery = Discovery(options(dht_default_bootstrap="false").get, resolve=resolve)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(discovery.run)
            await discovery.ready.wait()
            nursery.cancel_scope.cancel()
    assert asked == []


async def test_an_empty_table_is_not_saved(tmp_path: Path) -> None:
    dat = tmp_path / "dht.dat"
    discovery = Discovery(options(dht_file_path=str(dat)).get)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(discovery.run)
            await discovery.ready.wait()
            nursery.cancel_scope.cancel()
    assert not dat.exists()


def test_free_in_both_families_is_free_on_both() -> None:
    """With ``--dht-listen-port`` left to the OS and both families on, the number the IPv4 node
    gets must also be free on the IPv6 address (it was not, once in CI: the IPv6 DHT was then
    disabled with "Address already in use")."""
    import socket

    from trioaria.bt.discovery import _free_in_both

    taken = []
    for _ in range(20):  # hold many ::1 ports, so a v4-only choice would often collide
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        taken.append(s)
    try:
        for _ in range(20):
            port = _free_in_both("127.0.0.1", "::1")
            assert port > 0
            assert port not in {s.getsockname()[1] for s in taken}
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s4,
                socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s6,
            ):
                s4.bind(("127.0.0.1", port))
                s6.bind(("::1", port))
    finally:
        for s in taken:
            s.close()
