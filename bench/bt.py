"""BitTorrent speed: trioaria vs aria2c leeching from, and seeding to, one local libtorrent peer.

The BitTorrent targets of docs/performance.md, measured as ratios in the same run (never timed
asserts in tests):

* leech: a file (512 MiB by default) from one libtorrent seeder on 127.0.0.1 — wall time
  ≤ 0.5 x aria2c's, CPU per GiB ≤ 1.2 x aria2c's;
* seed: the same file to one libtorrent leecher until the share ratio reaches 1.0 — seeding CPU
  per GiB ≤ 1.2 x aria2c's.  Both tools check the data first (``-V``); that check is measured
  separately (a ``-V --seed-time=0`` run with no peer) and subtracted, so the figure is the
  seeding alone;
* first peer connection after the tracker reply: the bench's tracker notes when it answered,
  the libtorrent seeder notes when the client connected (target ≤ 50 ms);
* for information, no target: the same leech of a 1 MiB torrent, the fixed cost of one run
  (interpreter and imports, tracker, handshake, shutdown), and the leech CPU beyond it.

Method: random data in a scratch directory (tmpfs when root), a v1 torrent with 1 MiB pieces
hashed here, a tiny HTTP tracker (a thread of this script) that hands out the libtorrent
seeder's address, libtorrent (PyPI wheel) in this process with DHT, LSD, UPnP and NAT-PMP off.
Each tool runs once as a discarded warm-up, then ``--runs`` times alternating which goes first;
each client is measured by ``bench/run.py``'s launcher (``os.wait4`` rusage of the client only).
Every leeched file is checked by SHA-256; medians are over successful runs.

Usage::

    python bench/bt.py                 # 512 MiB, 5 runs (~3 min)
    python bench/bt.py --size 64 --runs 3   # smoke
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import shutil
import statistics
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from run import (
    ARIA2C,
    Measurement,
    MiB,
    child_env,
    make_random_file,
    measure,
    scratch_dir,
    sha256_file,
)

from trioaria.bt.bencode import encode

try:
    import libtorrent as lt
except ImportError:  # pragma: no cover - reported to the user
    lt = None

__all__ = ["main"]

PIECE = 1 * MiB
COMMON = [
    "--no-conf", "-q", "--allow-overwrite=true", "--auto-file-renaming=false",
    "--summary-interval=0", "--file-allocation=none", "--enable-dht=false",
    "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
]  # fmt: skip


# --- torrent and tracker ------------------------------------------------------------------


def make_torrent(path: Path, announce: str) -> bytes:
    """A v1 single-file torrent of ``path`` with :data:`PIECE`-sized pieces."""
    hashes = bytearray()
    with open(path, "rb") as f:
        while chunk := f.read(PIECE):
            hashes += hashlib.sha1(chunk).digest()
    info = {
        b"name": path.name.encode(),
        b"piece length": PIECE,
        b"length": path.stat().st_size,
        b"pieces": bytes(hashes),
    }
    return encode({b"announce": announce.encode(), b"info": info})


class Tracker:
    """An HTTP tracker answering every announce with ``peers`` (compact) and noting the time."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []
        self.replies: list[float] = []
        tracker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.urlsplit(self.path).query
                if "event=stopped" in query:
                    body = encode({b"interval": 1800, b"peers": b""})
                else:
                    compact = b"".join(
                        bytes(map(int, ip.split("."))) + port.to_bytes(2, "big")
                        for ip, port in tracker.peers
                    )
                    body = encode({b"interval": 1800, b"peers": compact})
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                tracker.replies.append(time.monotonic())

            def log_message(self, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hangs up early (aria2c does at exit) is not news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/announce"

    def close(self) -> None:
        self.server.shutdown()


# --- libtorrent peers ---------------------------------------------------------------------


def _session() -> Any:
    return lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "allow_multiple_connections_per_ip": True,
            # a dial refused while the tool still checks (-V) is retried after 1 s, not 60 s
            "min_reconnect_time": 1,
            # TCP only (uTP first costs a 6 s timeout against aria2c) and plaintext: the
            # payload path is measured, not RC4
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "out_enc_policy": 2,
            "in_enc_policy": 2,
            # incoming_connection_alert (ConnectClock) is in the peer category, not connect
            "alert_mask": int(lt.alert.category_t.connect_notification)
            | int(lt.alert.category_t.peer_notification),
        }
    )


def _add(ses: Any, raw: bytes, save: Path, *, seed: bool) -> Any:
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(raw))
    params.save_path = str(save)
    if seed:
        params.flags |= lt.torrent_flags.seed_mode
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    return ses.add_torrent(params)


def _wait(predicate: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


class ConnectClock:
    """When a peer first connected to the seeder after the tracker's latest reply."""

    def __init__(self, ses: Any) -> None:
        self.ses = ses
        self.stop = threading.Event()
        self.connects: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            if self.ses.wait_for_alert(50) is None:
                continue
            now = time.monotonic()
            for alert in self.ses.pop_alerts():
                if isinstance(alert, lt.incoming_connection_alert):
                    self.connects.append(now)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


# --- runs -----------------------------------------------------------------------------------


def _argv(tool: str, *opts: str) -> list[str]:
    if tool == "aria2c":
        return [ARIA2C, *COMMON, *opts]
    return [sys.executable, "-m", "trioaria", *COMMON, *opts]


def leech_once(
    tool: str, torrent: Path, out: Path, sha: str, env: dict[str, str],
    tracker: Tracker, clock: ConnectClock, name: str = "payload.bin",
) -> tuple[Measurement, float | None]:  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    first_reply = len(tracker.replies)
    first_connect = len(clock.connects)
    r = measure(_argv(tool, "--seed-time=0", "-d", str(out), str(torrent)), env=env, cwd=out)
    target = out / name
    ok = r.returncode == 0 and target.exists() and sha256_file(target) == sha
    if not ok:
        print(f"    !! {tool} leech: rc={r.returncode}", file=sys.stderr)
    delay = None
    replies = tracker.replies[first_reply:]
    connects = [t for t in clock.connects[first_connect:] if replies and t >= replies[0]]
    if replies and connects:
        delay = connects[0] - replies[0]
    shutil.rmtree(out, ignore_errors=True)
    return Measurement(r.wall, r.user, r.sys, r.maxrss_kib, r.returncode, ok), delay


def seed_once(
    tool: str, raw: bytes, torrent: Path, data_dir: Path, work: Path, env: dict[str, str],
    *, with_peer: bool,
) -> Measurement:  # fmt: skip
    """``tool`` checks ``data_dir`` (-V) and, ``with_peer``, seeds to a libtorrent leecher
    until the ratio is 1.0; without, it exits after the check (``--seed-time=0``)."""
    port = _free_port()
    opts = ["-V", "-d", str(data_dir), f"--listen-port={port}", "--bt-tracker-interval=1800"]
    if not with_peer:
        r = measure(_argv(tool, *opts, "--seed-time=0", str(torrent)), env=env, cwd=work)
        return Measurement(r.wall, r.user, r.sys, r.maxrss_kib, r.returncode, r.returncode == 0)
    leech_dir = work / "lt-leech"
    shutil.rmtree(leech_dir, ignore_errors=True)
    leech_dir.mkdir()
    ses = _session()
    handle = _add(ses, raw, leech_dir, seed=False)
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(
            measure(
                _argv(tool, *opts, "--seed-ratio=1.0", "--seed-time=10", str(torrent)),
                env=env,
                cwd=work,
            )
        )
    )
    thread.start()
    # dial the tool once it listens (it checks the data first); again if the dial failed
    deadline = time.monotonic() + 120
    dialled = 0.0
    while thread.is_alive() and time.monotonic() < deadline:
        if handle.status().num_peers == 0 and time.monotonic() - dialled > 2 and _listening(port):
            handle.connect_peer(("127.0.0.1", port))
            dialled = time.monotonic()
        thread.join(0.05)
    thread.join()
    complete = handle.status().is_seeding
    del handle, ses
    shutil.rmtree(leech_dir, ignore_errors=True)
    r = result[0]
    ok = r.returncode == 0 and complete
    if not ok:
        print(f"    !! {tool} seed: rc={r.returncode} leecher complete={complete}", file=sys.stderr)
    return Measurement(r.wall, r.user, r.sys, r.maxrss_kib, r.returncode, ok)


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _med(ms: list[Measurement], fn: Any) -> float:
    good = [m for m in ms if m.ok] or ms
    return float(statistics.median(fn(m) for m in good))


def _verdict(value: float, limit: float) -> str:
    return "PASS" if value <= limit else "FAIL"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512, help="payload size in MiB (default 512)")
    ap.add_argument("--runs", type=int, default=5, help="measured runs per tool (default 5)")
    args = ap.parse_args(argv)
    if lt is None:
        print("libtorrent is not installed: python -m pip install libtorrent", file=sys.stderr)
        return 2
    if not os.path.exists(ARIA2C):
        print("aria2c is not installed", file=sys.stderr)
        return 2
    size = args.size * MiB
    gib = size / (1 << 30)
    t0 = time.monotonic()
    with scratch_dir(3 * size + 256 * MiB, tmpfs=True) as base:
        seed_dir = base / "seed"
        seed_dir.mkdir()
        payload = seed_dir / "payload.bin"
        sha = make_random_file(payload, size)
        tracker = Tracker()
        raw = make_torrent(payload, tracker.url)
        torrent = base / "payload.torrent"
        torrent.write_bytes(raw)
        env = child_env(base / "pycache")
        ses = _session()
        handle = _add(ses, raw, seed_dir, seed=True)
        _wait(lambda: handle.status().is_seeding, "libtorrent to seed")
        tracker.peers = [("127.0.0.1", ses.listen_port())]
        clock = ConnectClock(ses)
        tools = ("aria2c", "trioaria")
        leech: dict[str, list[Measurement]] = {t: [] for t in tools}
        delays: dict[str, list[float]] = {t: [] for t in tools}
        for i in range(args.runs + 1):  # round 0 is the warm-up
            order = tools if i % 2 == 0 else tools[::-1]
            for tool in order:
                m, delay = leech_once(tool, torrent, base / "out", sha, env, tracker, clock)
                print(f"  leech {tool}: {m.wall:.2f} s, ok={m.ok}", file=sys.stderr)
                if i:
                    leech[tool].append(m)
                    if delay is not None:
                        delays[tool].append(delay)
        # Start-up and shutdown: the same leech of a 1 MiB torrent (informational: shows how
        # much of the leech figure is per byte and how much is the fixed cost of one run).
        tiny = seed_dir / "tiny.bin"
        tiny_sha = make_random_file(tiny, 1 * MiB)
        tiny_raw = make_torrent(tiny, tracker.url)
        tiny_torrent = base / "tiny.torrent"
        tiny_torrent.write_bytes(tiny_raw)
        tiny_handle = _add(ses, tiny_raw, seed_dir, seed=True)
        _wait(lambda: tiny_handle.status().is_seeding, "libtorrent to seed the 1 MiB torrent")
        fixed: dict[str, list[Measurement]] = {t: [] for t in tools}
        for i in range(args.runs + 1):
            for tool in tools if i % 2 == 0 else tools[::-1]:
                m, _ = leech_once(
                    tool, tiny_torrent, base / "out", tiny_sha, env, tracker, clock, "tiny.bin"
                )
                if i:
                    fixed[tool].append(m)
        ses.remove_torrent(tiny_handle)
        clock.close()
        handle.pause()
        tracker.peers = []  # seeding runs: the libtorrent leecher dials the tool itself
        check: dict[str, list[Measurement]] = {t: [] for t in tools}
        seed: dict[str, list[Measurement]] = {t: [] for t in tools}
        for i in range(args.runs + 1):
            order = tools if i % 2 == 0 else tools[::-1]
            for tool in order:
                c = seed_once(tool, raw, torrent, seed_dir, base, env, with_peer=False)
                s = seed_once(tool, raw, torrent, seed_dir, base, env, with_peer=True)
                print(f"  check {tool}: {c.wall:.2f} s; seed: {s.wall:.2f} s, ok={s.ok}",
                      file=sys.stderr)  # fmt: skip
                if i:
                    check[tool].append(c)
                    seed[tool].append(s)
        tracker.close()
        ses.remove_torrent(handle)

    print(f"\ntrioaria BitTorrent bench — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU, "
          f"{args.size} MiB, 1 MiB pieces, median of {args.runs} runs after a warm-up, "
          f"libtorrent {lt.__version__} as the other peer; took {time.monotonic() - t0:.0f} s\n")  # fmt: skip
    print("| run | tool | wall s | CPU s | CPU s per GiB | peak RSS MiB | failed |")
    print("|---|---|---|---|---|---|---|")
    figures: dict[tuple[str, str], float] = {}
    rows = (("leech", leech), ("leech 1 MiB", fixed), ("check (-V only)", check),
            ("check + seed", seed))  # fmt: skip
    for label, table in rows:
        for tool in tools:
            ms = table[tool]
            wall, cpu = _med(ms, lambda m: m.wall), _med(ms, lambda m: m.cpu)
            rss = _med(ms, lambda m: m.maxrss_kib) / 1024
            figures[(label, tool)] = cpu
            figures[(label + " wall", tool)] = wall
            bad = sum(not m.ok for m in ms)
            per_gib = f"{cpu / gib:.2f}" if label != "leech 1 MiB" else "-"
            print(f"| {label} | {tool} | {wall:.2f} | {cpu:.2f} | {per_gib} | {rss:.1f} | {bad} |")
    print()
    lw = figures[("leech wall", "trioaria")] / figures[("leech wall", "aria2c")]
    lc = figures[("leech", "trioaria")] / figures[("leech", "aria2c")]
    seed_cpu = {
        t: max(figures[("check + seed", t)] - figures[("check (-V only)", t)], 1e-3) for t in tools
    }
    sc = seed_cpu["trioaria"] / seed_cpu["aria2c"]
    print("| target | figure | limit | verdict |")
    print("|---|---|---|---|")
    print(f"| leech wall vs aria2c | {lw:.2f}x | 0.5x | {_verdict(lw, 0.5)} |")
    print(f"| leech CPU per GiB vs aria2c | {lc:.2f}x | 1.2x | {_verdict(lc, 1.2)} |")
    print(f"| seeding CPU per GiB vs aria2c (check subtracted: trioaria {seed_cpu['trioaria']:.2f} s,"
          f" aria2c {seed_cpu['aria2c']:.2f} s) | {sc:.2f}x | 1.2x | {_verdict(sc, 1.2)} |")  # fmt: skip
    per_byte = {t: figures[("leech", t)] - figures[("leech 1 MiB", t)] for t in tools}
    pb = per_byte["trioaria"] / max(per_byte["aria2c"], 1e-3)
    print(f"| (information) leech CPU beyond one run's fixed cost, the 1 MiB leech's CPU "
          f"subtracted: trioaria {per_byte['trioaria']:.2f} s, aria2c {per_byte['aria2c']:.2f} s "
          f"| {pb:.2f}x | - | - |")  # fmt: skip
    for tool in tools:
        if delays[tool]:
            d = statistics.median(delays[tool]) * 1000
            print(f"| {tool}: first peer connection after the tracker reply | {d:.0f} ms | 50 ms "
                  f"| {_verdict(d, 50) if tool == 'trioaria' else '-'} |")  # fmt: skip
        else:
            print(
                f"| {tool}: first peer connection after the tracker reply | not seen | 50 ms | - |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
