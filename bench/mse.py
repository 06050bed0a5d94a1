"""MSE speed: RC4-encrypted vs plaintext leech from one local libtorrent seeder, trioaria and aria2c.

Issue 11's MSE target (docs/performance.md): an MSE-encrypted download runs at ≥ 60 % of the
plaintext throughput.  The same ratio for aria2c, measured in the same run, is the reference.

Method (``bench/bt.py``'s set-up and helpers): random data in a scratch directory (tmpfs when
root), a v1 torrent with 1 MiB pieces, the bench's HTTP tracker handing out one libtorrent
seeder on 127.0.0.1 (DHT, LSD, UPnP, NAT-PMP and uTP off).  Two modes, one seeder whose
settings are switched between them:

* ``plain``: the seeder has encryption disabled (``out_enc_policy = in_enc_policy = 2``), so
  only plaintext BitTorrent connections are accepted; the tools run with their defaults;
* ``rc4``: the seeder forces encryption with RC4 only (``out_enc_policy = in_enc_policy = 0``,
  ``allowed_enc_level = 2``, ``prefer_rc4``) and both tools run with
  ``--bt-require-crypto=true --bt-min-crypto-level=arc4``.  A plaintext or
  header-only-obfuscated connection is refused by the seeder, so a completed download proves
  the payload went through RC4 both ways.

One discarded warm-up round, then ``--runs`` rounds; each round runs every mode and tool (the
seeder's settings switched between modes), alternating which mode and which tool go first, so a
change in the load of a shared machine weighs on plaintext and RC4 alike; each client is measured by ``bench/run.py``'s launcher (``os.wait4`` rusage of
the client only) and every file is checked by SHA-256.  Throughput is size / wall time of the
whole process (start-up and the end-of-download hash checks included, the same for both modes).

Usage::

    python bench/mse.py                    # 512 MiB, 3 runs
    python bench/mse.py --size 128 --runs 1 --tools trioaria
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bt import Tracker, _add, _argv, _wait, make_torrent
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

lt: Any
try:
    lt = importlib.import_module("libtorrent")
except ImportError:  # pragma: no cover - reported to the user
    lt = None

__all__ = ["main"]

TOOLS = ("aria2c", "trioaria")
MODES: dict[str, dict[str, Any]] = {
    # libtorrent enc_policy: 0 forced, 1 enabled, 2 disabled; allowed_enc_level: 1 plain, 2 rc4
    "plain": {"out_enc_policy": 2, "in_enc_policy": 2, "allowed_enc_level": 3},
    "rc4": {"out_enc_policy": 0, "in_enc_policy": 0, "allowed_enc_level": 2, "prefer_rc4": True},
}
TOOL_OPTS = {
    "plain": (),
    "rc4": ("--bt-require-crypto=true", "--bt-min-crypto-level=arc4"),
}


def _session() -> Any:
    return lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "allow_multiple_connections_per_ip": True,
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "alert_mask": 0,
            **MODES["plain"],
        }
    )


def leech_once(
    tool: str, mode: str, torrent: Path, out: Path, sha: str, env: dict[str, str]
) -> Measurement:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    r = measure(
        _argv(tool, "--seed-time=0", *TOOL_OPTS[mode], "-d", str(out), str(torrent)),
        env=env,
        cwd=out,
    )
    target = out / "payload.bin"
    ok = r.returncode == 0 and target.exists() and sha256_file(target) == sha
    if not ok:
        print(f"    !! {tool} {mode}: rc={r.returncode}", file=sys.stderr)
    shutil.rmtree(out, ignore_errors=True)
    return Measurement(r.wall, r.user, r.sys, r.maxrss_kib, r.returncode, ok)


def _med(ms: list[Measurement], attr: str) -> float:
    good = [m for m in ms if m.ok] or ms
    return float(statistics.median(getattr(m, attr) for m in good))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512, help="payload size in MiB (default 512)")
    ap.add_argument("--runs", type=int, default=3, help="measured runs per tool and mode (3)")
    ap.add_argument(
        "--tools", default=",".join(TOOLS), help="comma-separated tools to run (aria2c,trioaria)"
    )
    args = ap.parse_args(argv)
    if lt is None:
        print("libtorrent is not installed: python -m pip install libtorrent", file=sys.stderr)
        return 2
    tools = tuple(t for t in TOOLS if t in args.tools.split(","))
    if not tools:
        print(f"--tools: choose from {', '.join(TOOLS)}", file=sys.stderr)
        return 2
    if "aria2c" in tools and not os.path.exists(ARIA2C):
        print("aria2c is not installed", file=sys.stderr)
        return 2
    size = args.size * MiB
    t0 = time.monotonic()
    results: dict[tuple[str, str], list[Measurement]] = {}
    with scratch_dir(2 * size + 256 * MiB, tmpfs=True) as base:
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
        try:
            # modes alternate run by run (not all plain runs, then all RC4 ones), so a change
            # in the load of a shared machine weighs on both sides of the ratio alike
            for i in range(args.runs + 1):  # round 0 is the warm-up
                for mode in MODES if i % 2 == 0 else tuple(MODES)[::-1]:
                    ses.apply_settings(MODES[mode])
                    for tool in tools if i % 2 == 0 else tools[::-1]:
                        m = leech_once(tool, mode, torrent, base / "out", sha, env)
                        print(f"  {mode} {tool}: {m.wall:.2f} s, ok={m.ok}", file=sys.stderr)
                        if i:
                            results.setdefault((mode, tool), []).append(m)
        finally:
            tracker.close()
            ses.remove_torrent(handle)

    print(
        f"\ntrioaria MSE bench — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU, "
        f"{args.size} MiB from one libtorrent {lt.__version__} seeder, 1 MiB pieces, median of "
        f"{args.runs} runs after a warm-up; took {time.monotonic() - t0:.0f} s\n"
    )
    print("| mode | tool | wall s | MiB/s | CPU s | peak RSS MiB | failed |")
    print("|---|---|---|---|---|---|---|")
    for mode in MODES:
        for tool in tools:
            ms = results[(mode, tool)]
            wall = _med(ms, "wall")
            print(
                f"| {mode} | {tool} | {wall:.2f} | {size / MiB / wall:.0f} | {_med(ms, 'cpu'):.2f} "
                f"| {_med(ms, 'maxrss_kib') / 1024:.1f} | {sum(not m.ok for m in ms)} |"
            )
    print("\n| tool | RC4 throughput / plaintext throughput | target | verdict |")
    print("|---|---|---|---|")
    for tool in tools:
        ratio = _med(results[("plain", tool)], "wall") / _med(results[("rc4", tool)], "wall")
        verdict = ("PASS" if ratio >= 0.6 else "FAIL") if tool == "trioaria" else "(reference)"
        print(f"| {tool} | {ratio:.2f} | ≥ 0.60 | {verdict} |")
    return 0 if all(m.ok for ms in results.values() for m in ms) else 1


if __name__ == "__main__":
    raise SystemExit(main())
