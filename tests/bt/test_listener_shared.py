"""One peer listener per run (as aria2): every torrent of the run is reached on one port.

Two torrents seeded by one trioaria process with one ``--listen-port`` reach two aria2c
leechers that learn that port from the tracker; two torrents leeched at once from two aria2c
seeders with one port; and, in process, a peer that dials while its torrent is still being
checked (``-V``) is held and handed over once the swarm registers, instead of being dropped.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.bt.swarm_helpers import (
    free_port,
    make_torrent,
    run_trioaria,
    start_aria2c,
    start_trioaria,
    stop_process,
)
from tests.bt.tracker_server import Tracker
from tests.rpc.rpc_util import running_daemon
from trioaria.base.errors import ExitCode, TrioariaError
from trioaria.bt.listener import PeerListener
from trioaria.bt.messages import PROTOCOL_HEADER
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.mse import CryptoPolicy

PEER_ID = b"-TA0100-"


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    with Tracker(interval=1) as t:
        yield t


def _two_torrents(root: Path, tmp_path: Path, tracker: Tracker) -> list[tuple[Path, bytes]]:
    out = []
    for name, size in (("a.bin", 700_000), ("b.bin", 500_001)):
        payload = os.urandom(size)
        torrent = tmp_path / f"{name}.torrent"
        torrent.write_bytes(make_torrent(root, [(name, payload)], name=name, announce=tracker.url))
        out.append((torrent, payload))
    return out


def test_two_torrents_seeded_on_one_port(tmp_path: Path, tracker: Tracker) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    torrents = _two_torrents(seed, tmp_path, tracker)
    port = free_port()
    # -V on the existing data, default --seed-ratio=1.0: the run ends once both were uploaded
    ours = start_trioaria(
        f"--dir={seed}", "-V", f"--listen-port={port}", *(str(t) for t, _ in torrents)
    )
    try:
        leeches = [start_aria2c(t, dl, seed=False)[0] for t, _ in torrents]
        try:
            for leech in leeches:
                assert leech.wait(timeout=90) == 0
        finally:
            for leech in leeches:
                stop_process(leech)
        out, _ = ours.communicate(timeout=60)
    finally:
        stop_process(ours)
    assert ours.returncode == 0, out.decode()
    for torrent, payload in torrents:
        assert (dl / torrent.name.removesuffix(".torrent")).read_bytes() == payload
        info_hash = parse_torrent(torrent.read_bytes()).info_hash
        mine = [
            a
            for a in tracker.state.announces
            if a.peer_id.startswith(PEER_ID) and a.info_hash == info_hash
        ]
        assert mine and {a.port for a in mine} == {port}
        assert mine[-1].uploaded >= len(payload)


def test_two_torrents_leeched_with_one_port(tmp_path: Path, tracker: Tracker) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    torrents = _two_torrents(seed, tmp_path, tracker)
    seeders = [start_aria2c(t, seed)[0] for t, _ in torrents]
    port = free_port()
    try:
        res = run_trioaria(
            f"--dir={dl}",
            "--seed-time=0",
            f"--listen-port={port}",
            *(str(t) for t, _ in torrents),
        )
    finally:
        for s in seeders:
            stop_process(s)
    assert res.returncode == 0, res.stdout + res.stderr
    for torrent, payload in torrents:
        assert (dl / torrent.name.removesuffix(".torrent")).read_bytes() == payload
    ports = {a.port for a in tracker.state.announces if a.peer_id.startswith(PEER_ID)}
    assert ports == {port}


async def test_rpc_daemon_runs_two_torrents_on_one_port(tmp_path: Path, tracker: Tracker) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    torrents = _two_torrents(seed, tmp_path, tracker)
    seeders = [start_aria2c(t, seed)[0] for t, _ in torrents]
    port = free_port()
    try:
        async with running_daemon(dl, **{"listen-port": str(port)}) as d:
            gids = []
            for torrent, _ in torrents:
                data = base64.b64encode(torrent.read_bytes()).decode()
                gids.append(await d.result("aria2.addTorrent", data, [], {"seed-time": "0"}))
            for gid in gids:
                status = await d.wait_status(gid, "complete", "error", limit=1200)
                assert status["status"] == "complete", status
    finally:
        for s in seeders:
            stop_process(s)
    for torrent, payload in torrents:
        assert (dl / torrent.name.removesuffix(".torrent")).read_bytes() == payload
    ports = {a.port for a in tracker.state.announces if a.peer_id.startswith(PEER_ID)}
    assert ports == {port}


class _Swarm:
    """What the listener needs of a swarm: records the connections it is handed."""

    def __init__(self, info_hash: bytes) -> None:
        self.info_hash = info_hash
        self.crypto = CryptoPolicy()
        self.listen_port = 0
        self.handed: list[bytes] = []

    def accept(self, stream: object, addr: tuple[str, int], initial: bytes) -> bool:
        self.handed.append(initial)
        return True


def _handshake(info_hash: bytes) -> bytes:
    return PROTOCOL_HEADER + bytes(8) + info_hash + b"-XX0000-" + bytes(12)


async def test_peer_for_an_expected_torrent_is_held_until_it_registers() -> None:
    listener = PeerListener([0])
    expected, unknown = b"E" * 20, b"U" * 20
    async with trio.open_nursery() as nursery:
        port = await nursery.start(listener.run)
        listener.expect(expected, CryptoPolicy())
        swarm = _Swarm(expected)
        early = await trio.open_tcp_stream("127.0.0.1", port)
        await early.send_all(_handshake(expected))
        stray = await trio.open_tcp_stream("127.0.0.1", port)
        await stray.send_all(_handshake(unknown))
        # the stray peer is closed at once; the early one is still open, waiting
        assert await stray.receive_some(1) == b""
        assert listener.refused == 1
        with trio.fail_after(10):
            while listener._pending == 0:
                await trio.sleep(0.01)
        listener.register(swarm)  # type: ignore[arg-type]
        with trio.fail_after(10):
            while not swarm.handed:
                await trio.sleep(0.01)
        assert swarm.handed == [_handshake(expected)]
        assert swarm.listen_port == port
        await early.aclose()
        await stray.aclose()
        nursery.cancel_scope.cancel()


async def test_held_peer_is_closed_when_the_torrent_is_forgotten() -> None:
    listener = PeerListener([0])
    expected = b"F" * 20
    async with trio.open_nursery() as nursery:
        port = await nursery.start(listener.run)
        listener.expect(expected, CryptoPolicy())
        early = await trio.open_tcp_stream("127.0.0.1", port)
        await early.send_all(_handshake(expected))
        with trio.fail_after(10):
            while listener._pending == 0:
                await trio.sleep(0.01)
        listener.forget(expected)  # e.g. -V failed: the torrent never runs
        assert await early.receive_some(1) == b""
        assert listener.refused == 1
        await early.aclose()
        nursery.cancel_scope.cancel()


def test_second_download_of_the_same_torrent_is_refused() -> None:
    """aria2: "InfoHash ... is already registered." (exit 12), until the first one is gone."""
    listener = PeerListener([0])
    listener.expect(b"D" * 20, CryptoPolicy())
    with pytest.raises(TrioariaError, match="already registered") as info:
        listener.expect(b"D" * 20, CryptoPolicy())
    assert info.value.exit_code == ExitCode.DUPLICATE_INFO_HASH
    listener.forget(b"D" * 20)
    listener.expect(b"D" * 20, CryptoPolicy())  # the first download ended: allowed again
