"""aria2c and libtorrent find a trioaria seeder through the DHT: trioaria announces, a trioaria
node answers.

A :class:`~trioaria.dht.node.DhtNode` in this process is the only other DHT node.  trioaria seeds
a torrent that has no tracker, with ``--dht-entry-point`` at that node: it must announce itself
there (``announce_peer``).  aria2c then downloads the same torrent with the node as its entry
point: the node answers aria2c's ``get_peers`` with trioaria's address, so the download can only
complete if both the announce and our node's answers are right.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import trio

from tests.bt.swarm_helpers import REPO, aria2c_path, free_port, make_torrent, trioaria_args
from tests.bt.test_dht_download import lt, lt_session
from trioaria.bt.metainfo import parse_torrent
from trioaria.dht.node import DhtNode


async def test_aria2c_finds_an_announced_trioaria_seeder(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(400_000)
    torrent = tmp_path / "n.torrent"
    torrent.write_bytes(make_torrent(seed, [("n.bin", payload)], name="n.bin"))
    meta = parse_torrent(torrent.read_bytes())
    boot = DhtNode("127.0.0.1", 0)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    log = (tmp_path / "trioaria.log").open("wb")
    async with trio.open_nursery() as nursery:
        await nursery.start(boot.run)
        entry = f"--dht-entry-point=127.0.0.1:{boot.port}"
        ours = await trio.lowlevel.open_process(
            trioaria_args(
                f"--dir={seed}", "-V", "--enable-dht=true", entry,
                f"--dht-listen-port={free_port()}", f"--dht-file-path={tmp_path / 'ours.dat'}",
                str(torrent),
            ),
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            with trio.fail_after(30):
                while not any(a.info_hash == meta.info_hash for a in boot.announced):
                    assert ours.poll() is None, (tmp_path / "trioaria.log").read_text()
                    await trio.sleep(0.05)
            theirs = [
                aria2c_path(), "--no-conf", f"--dir={dl}", "--seed-time=0",
                f"--listen-port={free_port()}", "--enable-dht=true", entry,
                f"--dht-listen-port={free_port()}", f"--dht-file-path={tmp_path / 'a.dat'}",
                "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                "--summary-interval=0", "--quiet", str(torrent),
            ]  # fmt: skip
            with trio.fail_after(90):
                done = await trio.run_process(theirs, check=False)
            assert done.returncode == 0
            with trio.fail_after(60):  # trioaria stops by itself at --seed-ratio=1.0
                assert await ours.wait() == 0, (tmp_path / "trioaria.log").read_text()
        finally:
            if ours.returncode is None:
                ours.kill()
                await ours.wait()
            log.close()
        nursery.cancel_scope.cancel()
    assert (dl / "n.bin").read_bytes() == payload


async def test_libtorrent_finds_an_announced_trioaria_seeder(tmp_path: Path) -> None:
    """The same with a libtorrent leecher (in process, DHT on, bootstrapped from our node)."""
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(400_000)
    raw = make_torrent(seed, [("m.bin", payload)], name="m.bin")
    torrent = tmp_path / "m.torrent"
    torrent.write_bytes(raw)
    meta = parse_torrent(raw)
    boot = DhtNode("127.0.0.1", 0)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    log = (tmp_path / "trioaria.log").open("wb")
    async with trio.open_nursery() as nursery:
        await nursery.start(boot.run)
        ours = await trio.lowlevel.open_process(
            trioaria_args(
                f"--dir={seed}", "-V", "--enable-dht=true",
                f"--dht-entry-point=127.0.0.1:{boot.port}", f"--dht-listen-port={free_port()}",
                f"--dht-file-path={tmp_path / 'ours.dat'}", str(torrent),
            ),
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            with trio.fail_after(30):
                while not any(a.info_hash == meta.info_hash for a in boot.announced):
                    assert ours.poll() is None, (tmp_path / "trioaria.log").read_text()
                    await trio.sleep(0.05)
            ses = lt_session(dht=True, bootstrap=("127.0.0.1", boot.port))
            params = lt.add_torrent_params()
            params.ti = lt.torrent_info(lt.bdecode(raw))
            params.save_path = str(dl)
            params.flags &= ~lt.torrent_flags.auto_managed
            params.flags &= ~lt.torrent_flags.paused
            handle = ses.add_torrent(params)
            with trio.fail_after(60):
                while not handle.status().is_seeding:
                    await trio.sleep(0.1)
            ses.pause()
        finally:
            if ours.returncode is None:
                ours.kill()
                await ours.wait()
            log.close()
        nursery.cancel_scope.cancel()
    assert (dl / "m.bin").read_bytes() == payload
