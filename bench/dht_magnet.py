"""DHT speed: a magnet with no tracker to the first data byte through a local DHT, trioaria vs aria2c.

Issue 11's DHT target (docs/performance.md): magnet to first data byte ≤ 0.25 x aria2c's time
in the same set-up (aria2c needs about 25 s).

Set-up, rebuilt for every run so no tool sees another's leftovers (dead nodes in the routing
tables, dead peers in the announce store): two libtorrent sessions in this process on
127.0.0.1, as docs/testing.md's DHT download test — a bare DHT node (the only entry point) and a
seeder that bootstrapped from it and announced the torrent (the bench waits until the bare node
hands the seeder out, asked with trioaria's own ``DhtNode``).  The tool then gets only
``magnet:?xt=urn:btih:<hash>``, ``--dht-entry-point=<bare node>``, a fresh empty
``--dht-file-path`` and fresh ports; it must find the seeder with ``get_peers``, fetch the
metadata (BEP 9) and the pieces.

"First data byte" is taken from the output file, the same way for both tools: the bench polls
(every 5 ms) the payload file's allocated blocks (``st_blocks``), which stay 0 while the file is
only created or sized (``--file-allocation=none``, a sparse file) and grow with the first piece
written.  The clock starts just before the launcher forks the tool, so interpreter start-up
counts against trioaria.  The time to completion (exit) is reported too.  Each run's file is
checked by SHA-256.

Usage::

    python bench/dht_magnet.py                   # 16 MiB payload, 3 runs per tool
    python bench/dht_magnet.py --runs 1 --size 4
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio
from run import (
    ARIA2C,
    MiB,
    RunResult,
    child_env,
    make_random_file,
    measure,
    scratch_dir,
    sha256_file,
)

from trioaria.bt.bencode import encode
from trioaria.dht.node import DhtNode
from trioaria.dht.node_id import NodeId

lt: Any
try:
    lt = importlib.import_module("libtorrent")
except ImportError:  # pragma: no cover - reported to the user
    lt = None

__all__ = ["main"]

TOOLS = ("aria2c", "trioaria")
PIECE = 256 * 1024
NAME = "payload.bin"


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_torrent(path: Path) -> tuple[bytes, bytes]:
    """A tracker-less v1 torrent of ``path``; returns (torrent bytes, info hash)."""
    import hashlib

    hashes = bytearray()
    with open(path, "rb") as f:
        while chunk := f.read(PIECE):
            hashes += hashlib.sha1(chunk).digest()
    info = encode(
        {
            b"name": path.name.encode(),
            b"piece length": PIECE,
            b"length": path.stat().st_size,
            b"pieces": bytes(hashes),
        }
    )
    return b"d4:info" + info + b"e", hashlib.sha1(info).digest()


def _session(bootstrap: tuple[str, int] | None = None) -> Any:
    ses = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "outgoing_interfaces": "127.0.0.1",
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_lsd": False,
            "enable_dht": True,
            "dht_bootstrap_nodes": "",
            "allow_multiple_connections_per_ip": True,
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_ignore_dark_internet": False,
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "alert_mask": 0,
        }
    )
    if bootstrap is not None:
        ses.add_dht_node(bootstrap)
    return ses


async def _peers_from(address: tuple[str, int], info_hash: bytes) -> list[tuple[str, int]]:
    node = DhtNode("127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        with trio.move_on_after(5):
            response = await node.get_peers_from(address, NodeId(info_hash))
            nursery.cancel_scope.cancel()
            return [(str(ip), int(port)) for ip, port in response.values or ()]
        nursery.cancel_scope.cancel()
    return []


class LocalDht:
    """A bare libtorrent DHT node plus a libtorrent seeder that announced through it."""

    def __init__(self, raw: bytes, info_hash: bytes, seed_dir: Path) -> None:
        self.bare = _session()
        self.entry = ("127.0.0.1", self.bare.listen_port())
        self.seeder = _session(self.entry)
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(raw))
        params.save_path = str(seed_dir)
        params.flags |= lt.torrent_flags.seed_mode
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        self.handle = self.seeder.add_torrent(params)
        mine = ("127.0.0.1", self.seeder.listen_port())
        deadline = time.monotonic() + 60
        while mine not in trio.run(_peers_from, self.entry, info_hash):
            if time.monotonic() > deadline:
                raise RuntimeError("the seeder's announce never reached the bare node")
            self.handle.force_dht_announce()
            time.sleep(0.25)

    def close(self) -> None:
        self.seeder.remove_torrent(self.handle)
        self.seeder.pause()
        self.bare.pause()
        del self.handle, self.seeder, self.bare


def _argv(tool: str, out: Path, entry: tuple[str, int], magnet: str) -> list[str]:
    opts = [
        "--no-conf", "-q", "--allow-overwrite=true", "--auto-file-renaming=false",
        "--summary-interval=0", "--file-allocation=none", "--seed-time=0",
        "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--enable-dht=true",
        "--enable-dht6=false", f"--dht-entry-point={entry[0]}:{entry[1]}",
        f"--dht-listen-port={_free_port(socket.SOCK_DGRAM)}",
        f"--dht-file-path={out / 'dht.dat'}", f"--listen-port={_free_port()}",
        "-d", str(out / "dl"), magnet,
    ]  # fmt: skip
    if tool == "aria2c":
        return [ARIA2C, *opts]
    return [sys.executable, "-m", "trioaria", *opts]


def run_once(
    tool: str, raw: bytes, info_hash: bytes, seed_dir: Path, out: Path, sha: str,
    env: dict[str, str],
) -> tuple[float | None, float, bool]:  # fmt: skip
    """(seconds to the first data byte or None, seconds to exit, completed and verified)."""
    shutil.rmtree(out, ignore_errors=True)
    (out / "dl").mkdir(parents=True)
    dht = LocalDht(raw, info_hash, seed_dir)
    target = out / "dl" / NAME
    magnet = f"magnet:?xt=urn:btih:{info_hash.hex()}"
    result: list[RunResult] = []
    thread = threading.Thread(
        target=lambda: result.append(
            measure(_argv(tool, out, dht.entry, magnet), env=env, cwd=out, timeout=180)
        )
    )
    start = time.monotonic()
    thread.start()
    first: float | None = None
    try:
        while thread.is_alive():
            if first is None:
                try:
                    if os.stat(target).st_blocks > 0:
                        first = time.monotonic() - start
                except OSError:
                    pass
            thread.join(0.005)
        thread.join()
    finally:
        dht.close()
    r = result[0]
    ok = r.returncode == 0 and target.exists() and sha256_file(target) == sha
    if first is None and ok:
        first = r.wall  # finished between two polls
    shutil.rmtree(out, ignore_errors=True)
    return first, r.wall, ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=16, help="payload size in MiB (default 16)")
    ap.add_argument("--runs", type=int, default=3, help="measured runs per tool (default 3)")
    args = ap.parse_args(argv)
    if lt is None:
        print("libtorrent is not installed: python -m pip install libtorrent", file=sys.stderr)
        return 2
    if not os.path.exists(ARIA2C):
        print("aria2c is not installed", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    firsts: dict[str, list[float]] = {t: [] for t in TOOLS}
    walls: dict[str, list[float]] = {t: [] for t in TOOLS}
    failed = dict.fromkeys(TOOLS, 0)
    with scratch_dir(3 * args.size * MiB + 64 * MiB, tmpfs=True) as base:
        seed_dir = base / "seed"
        seed_dir.mkdir()
        sha = make_random_file(seed_dir / NAME, args.size * MiB)
        raw, info_hash = make_torrent(seed_dir / NAME)
        env = child_env(base / "pycache")
        env["TRIOARIA_NO_DEFAULT_BOOTSTRAP"] = "1"  # the entry point is given anyway
        for i in range(args.runs + 1):  # round 0 is the warm-up
            for tool in TOOLS if i % 2 == 0 else TOOLS[::-1]:
                first, wall, ok = run_once(tool, raw, info_hash, seed_dir, base / "out", sha, env)
                shown = "-" if first is None else f"{first:.2f}"
                print(
                    f"  {tool}: first byte {shown} s, done {wall:.2f} s, ok={ok}", file=sys.stderr
                )
                if i:
                    if ok and first is not None:
                        firsts[tool].append(first)
                        walls[tool].append(wall)
                    else:
                        failed[tool] += 1

    print(
        f"\ntrioaria DHT magnet bench — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU, "
        f"{args.size} MiB payload, libtorrent {lt.__version__} bare node + seeder, median of "
        f"{args.runs} runs after a warm-up; took {time.monotonic() - t0:.0f} s\n"
    )
    print("| tool | magnet to first data byte, s (min-max) | magnet to done, s | failed |")
    print("|---|---|---|---|")
    for tool in TOOLS:
        if firsts[tool]:
            f = firsts[tool]
            print(f"| {tool} | {statistics.median(f):.2f} ({min(f):.2f}-{max(f):.2f}) "
                  f"| {statistics.median(walls[tool]):.2f} | {failed[tool]} |")  # fmt: skip
        else:
            print(f"| {tool} | - | - | {failed[tool]} |")
    if firsts["trioaria"] and firsts["aria2c"]:
        ratio = statistics.median(firsts["trioaria"]) / statistics.median(firsts["aria2c"])
        verdict = "PASS" if ratio <= 0.25 else "FAIL"
        print("\n| target | figure | limit | verdict |\n|---|---|---|---|")
        print(f"| first data byte vs aria2c | {ratio:.2f}x | ≤ 0.25x | {verdict} |")
    return 0 if not any(failed.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
