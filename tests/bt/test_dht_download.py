"""The DHT in real downloads: a magnet with no tracker, peers found through libtorrent DHT nodes.

Two libtorrent sessions run in this process on 127.0.0.1: a bare DHT node (the entry point) and
a seeder that bootstrapped from it and announced the torrent.  trioaria gets only the magnet's
info hash and ``--dht-entry-point``: it must find the seeder through ``get_peers``, fetch the
metadata over BEP 9 and the pieces, announce itself (``announce_peer``; the bare node then hands
out trioaria's port, checked with our own :class:`~trioaria.dht.node.DhtNode`), and leave its
routing table in ``--dht-file-path`` in aria2's ``dht.dat`` layout.  The IPv6 case runs the DHT
on ::1 only (``--enable-dht6``, ``--dht-entry-point6``): our own nodes there name an aria2c
seeder, which trioaria must find through ``nodes6``/``values`` and dial over IPv6.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.bt.swarm_helpers import (
    REPO,
    free_port,
    make_torrent,
    run_trioaria,
    start_aria2c,
    stop_process,
    trioaria_args,
)
from trioaria.bt.metainfo import parse_torrent
from trioaria.dht.node import DhtNode
from trioaria.dht.node_id import NodeId
from trioaria.dht.persist import parse_dht_file

try:
    import libtorrent as lt
except ImportError:  # a missing prerequisite is a failure: pip install libtorrent
    lt = None


def lt_session(*, dht: bool, bootstrap: tuple[str, int] | None = None) -> Any:
    """A loopback-only libtorrent session (settings as docs/testing.md's libtorrent peers)."""
    if lt is None:
        pytest.fail("libtorrent is not installed (python3 -m pip install libtorrent)")
    ses = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "outgoing_interfaces": "127.0.0.1",
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_lsd": False,
            "enable_dht": dht,
            "dht_bootstrap_nodes": "",
            "allow_multiple_connections_per_ip": True,
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_ignore_dark_internet": False,
            "alert_mask": 0,
        }
    )
    if bootstrap is not None:
        ses.add_dht_node(bootstrap)
    return ses


def wait(predicate: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def lt_seed(ses: Any, raw: bytes, directory: Path, *, pex: bool = True) -> Any:
    params = lt.add_torrent_params()
    if not pex:
        params.flags |= lt.torrent_flags.disable_pex
    params.ti = lt.torrent_info(lt.bdecode(raw))
    params.save_path = str(directory)
    params.flags |= lt.torrent_flags.seed_mode
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    handle = ses.add_torrent(params)
    wait(lambda: handle.status().is_seeding, "libtorrent to seed")
    return handle


async def _peers_from(address: tuple[str, int], info_hash: bytes) -> list[tuple[str, int]]:
    node = DhtNode("127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        with trio.fail_after(20):
            response = await node.get_peers_from(address, NodeId(info_hash))
        nursery.cancel_scope.cancel()
    return [(str(ip), int(port)) for ip, port in response.values or ()]


def test_magnet_without_tracker_completes_through_libtorrent_dht(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(700_000)
    raw = make_torrent(seed, [("d.bin", payload)], name="d.bin", piece_length=65536)
    meta = parse_torrent(raw)
    bare = lt_session(dht=True)
    entry = ("127.0.0.1", bare.listen_port())
    seeder = lt_session(dht=True, bootstrap=entry)
    handle = lt_seed(seeder, raw, seed)

    def announced() -> bool:
        handle.force_dht_announce()
        if ("127.0.0.1", seeder.listen_port()) in trio.run(_peers_from, entry, meta.info_hash):
            return True
        time.sleep(0.5)
        return False

    wait(announced, "the libtorrent seeder's announce to reach the bare node", timeout=30)
    port = free_port()
    dht_dat = tmp_path / "state" / "dht.dat"
    res = run_trioaria(
        f"--dir={dl}",
        "--seed-time=0",
        f"--listen-port={port}",
        "--enable-dht=true",
        f"--dht-listen-port={free_port()}",
        f"--dht-entry-point=127.0.0.1:{entry[1]}",
        f"--dht-file-path={dht_dat}",
        f"magnet:?xt=urn:btih:{meta.info_hash_hex}&dn=d.bin",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "d.bin").read_bytes() == payload
    # trioaria announced its listen port: the bare node hands it out now
    assert ("127.0.0.1", port) in trio.run(_peers_from, entry, meta.info_hash)
    state = parse_dht_file(dht_dat.read_bytes())
    assert ("127.0.0.1", entry[1]) in [(n.ip, n.port) for n in state.nodes]
    seeder.pause()
    bare.pause()


async def test_magnet_over_the_ipv6_dht(tmp_path: Path) -> None:
    """``--enable-dht6`` alone, on ::1: the peer (an aria2c seeder) is found through nodes6."""
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(300_000)
    torrent = tmp_path / "six.torrent"
    torrent.write_bytes(make_torrent(seed, [("six.bin", payload)], name="six.bin"))
    meta = parse_torrent(torrent.read_bytes())
    aria2c, aria2c_port = start_aria2c(torrent, seed)
    try:
        boot, helper = DhtNode("::1", 0), DhtNode("::1", 0)
        async with trio.open_nursery() as nursery:
            await nursery.start(boot.run)
            await nursery.start(helper.run)
            with trio.fail_after(20):
                await helper.bootstrap([("::1", boot.port)])
                await helper.announce(NodeId(meta.info_hash), aria2c_port)  # aria2c's port
            res = await trio.run_process(
                trioaria_args(
                    f"--dir={dl}", "--seed-time=0", "--enable-dht6=true",
                    "--dht-listen-addr6=::1", f"--dht-listen-port={free_port()}",
                    f"--dht-entry-point6=[::1]:{boot.port}",
                    f"--dht-file-path6={tmp_path / 'dht6.dat'}",
                    f"magnet:?xt=urn:btih:{meta.info_hash_hex}",
                ),
                capture_stdout=True, capture_stderr=True, check=False,
                env=dict(os.environ, PYTHONPATH=str(REPO)),
            )  # fmt: skip
            nursery.cancel_scope.cancel()
    finally:
        stop_process(aria2c)
    assert res.returncode == 0, (res.stdout + res.stderr).decode(errors="replace")
    assert (dl / "six.bin").read_bytes() == payload
    state = parse_dht_file((tmp_path / "dht6.dat").read_bytes(), 6)
    assert ("::1", boot.port) in [(n.ip, n.port) for n in state.nodes]
