"""RPC at scale: ``aria2.tellWaiting(0, 1000)`` on 1,000 queued downloads, trioaria vs aria2c.

Issue 12's target: within 1.5 x aria2c's time, measured in the same run (never a timed assert in
tests; ``tests/rpc/test_scale.py`` checks the answers).  Both daemons run on loopback ports from
the OS with the same options; 1,000 paused downloads are added to each with one
``system.multicall``; then each tool answers ``tellWaiting(0, 1000)`` once as a warm-up and
``--runs`` times over one keep-alive HTTP connection, alternating which tool goes first.  The
table gives the median wall time of a call and the ratio; every answer must list 1,000 downloads.

Usage::

    python bench/rpc_queue.py            # 15 runs each
    python bench/rpc_queue.py --runs 51
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

__all__ = ["main"]

SECRET = "bench"
QUEUE = 1000


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _argv(tool: str, port: int, directory: str) -> list[str]:
    common = [
        "--no-conf", "--enable-rpc", f"--rpc-secret={SECRET}", f"--rpc-listen-port={port}",
        f"--dir={directory}", "--quiet", "--max-concurrent-downloads=1",
    ]  # fmt: skip
    if tool == "aria2c":
        aria2c = shutil.which("aria2c") or "/usr/bin/aria2c"
        return [aria2c, "--enable-dht=false", "--enable-dht6=false", *common]
    return [sys.executable, "-m", "trioaria", *common]


def _call(conn: http.client.HTTPConnection, method: str, params: list[Any]) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    conn.request("POST", "/jsonrpc", body=body, headers={"Content-Type": "application/json"})
    answer = json.loads(conn.getresponse().read())
    if "result" not in answer:
        raise RuntimeError(f"{method}: {answer}")
    return answer["result"]


def _connect(port: int, process: subprocess.Popen[bytes]) -> http.client.HTTPConnection:
    deadline = time.monotonic() + 30
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            _call(conn, "aria2.getVersion", [f"token:{SECRET}"])
            return conn
        except OSError:
            conn.close()
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daemon on {port} did not start") from None
            time.sleep(0.05)


def _fill(conn: http.client.HTTPConnection) -> None:
    calls = [
        {
            "methodName": "aria2.addUri",
            "params": [f"token:{SECRET}", [f"http://127.0.0.1:9/f{i}"], {"pause": "true"}],
        }
        for i in range(QUEUE)
    ]
    _call(conn, "system.multicall", [calls])


def _time_once(conn: http.client.HTTPConnection) -> float:
    start = time.perf_counter()
    result = _call(conn, "aria2.tellWaiting", [f"token:{SECRET}", 0, QUEUE])
    elapsed = time.perf_counter() - start
    if len(result) != QUEUE:
        raise RuntimeError(f"tellWaiting listed {len(result)} downloads")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    tools = ("aria2c", "trioaria")
    times: dict[str, list[float]] = {t: [] for t in tools}
    with tempfile.TemporaryDirectory(prefix="trioaria-rpc-bench-") as scratch:
        procs: dict[str, subprocess.Popen[bytes]] = {}
        conns: dict[str, http.client.HTTPConnection] = {}
        try:
            for tool in tools:
                port = _port()
                procs[tool] = subprocess.Popen(
                    _argv(tool, port, os.path.join(scratch, tool)),
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                conns[tool] = _connect(port, procs[tool])
                _fill(conns[tool])
                _time_once(conns[tool])  # warm-up
            for i in range(args.runs):
                order = tools if i % 2 == 0 else tools[::-1]
                for tool in order:
                    times[tool].append(_time_once(conns[tool]))
        finally:
            for conn in conns.values():
                conn.close()
            for process in procs.values():
                process.kill()
                process.wait()
    med = {t: statistics.median(v) for t, v in times.items()}
    print(f"tellWaiting(0, {QUEUE}) on {QUEUE} queued downloads, median of {args.runs} runs")
    print(f"{'tool':<10} {'median ms':>10}")
    for tool in tools:
        print(f"{tool:<10} {med[tool] * 1000:>10.2f}")
    print(f"ratio trioaria / aria2c: {med['trioaria'] / med['aria2c']:.2f} (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
