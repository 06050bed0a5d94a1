"""Start-up cost: trioaria vs aria2c wall time for ``--version``, ``-h`` and a 1 MiB download.

Issue 15 (part 6): every small download pays the interpreter, the imports and the set-up before
its first request.  The target is a 1 MiB download from a loopback server within 5 x aria2c's
wall time, measured here in the same run (never a timed assert in tests).  For scale, the table
also shows the floor no Python program gets under: ``python -c pass`` and ``import trio``.

Method: Python caches bytecode in a private ``PYTHONPYCACHEPREFIX`` (removed at exit); the file is served from 127.0.0.1 by :func:`trioaria.demo.serve_bytes` (a thread of this
process, unthrottled); each command runs once as a discarded warm-up, then ``--runs`` times,
alternating which tool goes first; the table gives the median wall time of each and the ratio.
Every download's output is checked byte for byte and every exit status must be 0.

Usage::

    python bench/startup.py              # 9 runs each
    python bench/startup.py --runs 21
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from trioaria.demo import serve_bytes  # noqa: E402 - after the path set-up above

__all__ = ["main"]

SIZE = 1 << 20
COMMON = [
    "--no-conf",
    "--console-log-level=error",
    "--summary-interval=0",
    "--allow-overwrite=true",
    "--auto-file-renaming=false",
]


_PYCACHE = tempfile.mkdtemp(prefix="trioaria-startup-pycache-")


def _env() -> dict[str, str]:
    """No proxies; this tree first on the path; bytecode cached in a private directory, as an
    installed wheel has its ``.pyc`` files (``PYTHONDONTWRITEBYTECODE`` would make every run
    compile every module: 80 ms of a 250 ms download)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = _PYCACHE
    return env


def _time(argv: list[str], cwd: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, timeout=120)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace")
        raise SystemExit(f"{argv} exited {done.returncode}:\n{output[-2000:]}")
    return elapsed


def _measure(
    pair: dict[str, list[str]], runs: int, cwd: str, check: Path | None
) -> dict[str, float]:
    """Median wall seconds per tool: one warm-up each, then ``runs`` rounds in ABBA order."""
    samples: dict[str, list[float]] = {name: [] for name in pair}
    names = list(pair)
    for name in names:
        _time(pair[name], cwd)
    for i in range(runs):
        for name in names if i % 2 == 0 else reversed(names):
            samples[name].append(_time(pair[name], cwd))
            if check is not None:
                got = (Path(cwd) / "out.bin").read_bytes()
                if got != check.read_bytes():
                    raise SystemExit(f"{name}: the downloaded file differs")
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args(argv)
    aria2c = shutil.which("aria2c")
    if aria2c is None:
        raise SystemExit("aria2c is needed (apt-get install aria2)")
    ours = [sys.executable, "-m", "trioaria"]
    payload = os.urandom(SIZE)
    port = serve_bytes(payload)
    url = f"http://127.0.0.1:{port}/f.bin"
    with tempfile.TemporaryDirectory(prefix="trioaria-startup-") as cwd:
        reference = Path(cwd) / "reference.bin"
        reference.write_bytes(payload)
        download = [*COMMON, "-d", cwd, "-o", "out.bin", url]
        rows = [
            ("python -c pass", {"python": [sys.executable, "-c", "pass"]}, None),
            ("python -c 'import trio'", {"python": [sys.executable, "-c", "import trio"]}, None),
            (
                "--version",
                {"trioaria": [*ours, "--version"], "aria2c": [aria2c, "--version"]},
                None,
            ),
            ("-h", {"trioaria": [*ours, "-h"], "aria2c": [aria2c, "-h"]}, None),
            (
                "1 MiB download (loopback)",
                {"trioaria": [*ours, *download], "aria2c": [aria2c, *download]},
                reference,
            ),
        ]
        print(f"median of {args.runs} runs after a warm-up; Python {sys.version.split()[0]}\n")
        print("| command | trioaria | aria2c | ratio |")
        print("|---|---|---|---|")
        verdict = ""
        for label, pair, check in rows:
            medians = _measure(pair, args.runs, cwd, check)
            if "aria2c" not in medians:
                print(f"| {label} (floor) | {medians['python'] * 1000:.0f} ms | | |")
                continue
            ratio = medians["trioaria"] / medians["aria2c"]
            print(
                f"| {label} | {medians['trioaria'] * 1000:.0f} ms | "
                f"{medians['aria2c'] * 1000:.0f} ms | {ratio:.1f}x |"
            )
            if check is not None:
                verdict = f"target (1 MiB download within 5x aria2c): {'met' if ratio <= 5 else 'NOT met'} ({ratio:.1f}x)"
        print(f"\n{verdict}")
    shutil.rmtree(_PYCACHE, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
