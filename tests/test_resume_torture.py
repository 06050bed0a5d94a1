"""Resume torture: ``kill -9`` at random moments, then ``-c`` must finish byte-exact and cheaply.

docs/decisions.md "Disk, durability and resume": the control file is the commit point (data is
``fdatasync``ed before each save, the save is atomic), so after a crash at *any* moment a
``trioaria -c`` run must produce the exact file, and must not fetch again more than what the
last saved control file did not cover, plus at most one piece per connection of slack (the
probe request and the pieces in flight).

Each trial runs ``trioaria -x4 -s4 -k1M`` on a 64 MiB file served by nginx at 512 KiB/s per
connection, kills it with SIGKILL at a random moment (2-8 s; some trials in the first second,
before the first periodic save), reads the control file left behind and checks that every block
it marks done already holds the right bytes, then runs the same command with ``-c`` to
completion.  The bytes nginx sent to the second run come from its access log
(each run has its own ``--user-agent``).

The kill moments come from a seeded RNG; the seed is printed, and ``TRIOARIA_TORTURE_SEED``
replays a run.  ``TRIOARIA_TORTURE_PARALLEL`` sets how many trials run at once (rate limiting is
per connection, so concurrent trials barely slow each other); ``TRIOARIA_TORTURE_TRIALS`` sets
how many trials run (20 in CI; the README's figure comes from a 50-trial run).
"""

from __future__ import annotations

import os
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e_util import (
    block_done,
    completed_at,
    make_payload,
    nginx_bytes_sent,
    read_control,
    sha256_file,
    start_trioaria,
)

__all__: list[str] = []

SIZE = 64 << 20
PIECE = 1 << 20
CONNECTIONS = 4
RATE_KIB = 512
TRIALS = int(os.environ.get("TRIOARIA_TORTURE_TRIALS", "20"))
BLOCK = 16 * 1024
EARLY_TRIALS = (0, 10)  # killed within the first second, before the first periodic save
PARALLEL = int(os.environ.get("TRIOARIA_TORTURE_PARALLEL", "7"))
NAME = "torture.bin"


@dataclass
class TrialResult:
    index: int
    kill_at: float
    completed_at_kill: int
    control_existed: bool
    sent_second_run: int
    requests_second_run: int
    problems: list[str]

    def line(self) -> str:
        state = "ok" if not self.problems else "FAIL: " + "; ".join(self.problems)
        return (
            f"trial {self.index:2d} kill@{self.kill_at:5.2f}s completed={self.completed_at_kill:>9d}"
            f" control={'y' if self.control_existed else 'n'}"
            f" refetched={self.sent_second_run:>9d} in {self.requests_second_run} requests: {state}"
        )


def _args(out: Path, url: str, agent: str) -> list[str]:
    return [
        f"-x{CONNECTIONS}",
        f"-s{CONNECTIONS}",
        "-k1M",
        "-d",
        str(out),
        "--summary-interval=0",
        "--show-console-readout=false",
        f"--user-agent={agent}",
        url,
    ]


def _trial(
    index: int,
    kill_at: float,
    seed: int,
    root: Path,
    url: str,
    access_log: Path,
    digest: str,
    payload: bytes,
) -> TrialResult:
    work = root / f"trial{index:02d}"
    out = work / "dl"
    out.mkdir(parents=True)
    data_path = out / NAME
    control_path = out / f"{NAME}.aria2"
    first_agent = f"torture-{seed}-{index}-first"
    second_agent = f"torture-{seed}-{index}-second"
    problems: list[str] = []

    first = start_trioaria(_args(out, url, first_agent), work, "first")
    try:
        time.sleep(max(0.0, kill_at - first.elapsed()))  # the random kill moment is the point
        if first.poll() is not None:
            problems.append(f"first run exited by itself before the kill\n{first.describe()}")
        first.signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    control = read_control(control_path)  # a torn or invalid control file raises here
    completed = completed_at(control_path)
    if control is not None and (control.total_length, control.piece_length) != (SIZE, PIECE):
        problems.append(f"control file has wrong geometry: {control!r:.200}")
    if control is not None:
        # every block the control file marks done must hold the right bytes already
        on_disk = data_path.read_bytes() if data_path.exists() else b""
        for offset in range(0, SIZE, BLOCK):
            if block_done(control, offset):
                want = payload[offset : offset + BLOCK]
                if on_disk[offset : offset + BLOCK] != want:
                    problems.append(f"block at {offset} is marked done but its bytes differ")
                    break

    second = start_trioaria([*_args(out, url, second_agent), "-c"], work, "second")
    try:
        code = second.wait(240)
    finally:
        second.kill()
    if code != 0:
        problems.append(f"-c run exited {code}\n{second.describe()}")
    elif sha256_file(data_path) != digest:
        problems.append("-c run finished but the file differs from the original")
    if control_path.exists():
        problems.append("control file still present after a completed download")

    sent, lines = nginx_bytes_sent(access_log, second_agent)
    bound = (SIZE - completed) + CONNECTIONS * PIECE
    if sent > bound:
        problems.append(
            f"second run fetched {sent} bytes, more than (total - completed) + conns x piece"
            f" = {bound}; requests: {[(x.range, x.sent) for x in lines]}"
        )
    if not lines:
        problems.append("no nginx log lines for the second run")
    return TrialResult(index, kill_at, completed, control is not None, sent, len(lines), problems)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill9_then_continue_is_byte_exact_and_bounded(nginx, tmp_path: Path) -> None:
    env_seed = os.environ.get("TRIOARIA_TORTURE_SEED")
    seed = int(env_seed) if env_seed else random.SystemRandom().randrange(1 << 32)
    print(f"resume torture seed: {seed} (replay with TRIOARIA_TORTURE_SEED={seed})")
    rng = random.Random(seed)
    kill_times = [
        rng.uniform(0.05, 1.0) if i in EARLY_TRIALS else rng.uniform(2.0, 8.0)
        for i in range(TRIALS)
    ]

    payload = make_payload(SIZE, 0x70A1)
    nginx.add_file(NAME, payload)
    digest = sha256_file(nginx.root / NAME)
    url = nginx.url(f"/rate/{RATE_KIB}k/{NAME}")

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = [
            pool.submit(
                _trial, i, kill_times[i], seed, tmp_path, url, nginx.access_log, digest, payload
            )
            for i in range(TRIALS)
        ]
        results = [f.result() for f in futures]

    report = "\n".join(r.line() for r in results)
    print(report)
    failed = [r for r in results if r.problems]
    assert not failed, f"seed {seed}: {len(failed)} of {TRIALS} trials failed\n{report}"
    # The trials must have exercised both cases (otherwise the test tested nothing): kills
    # that left real progress behind (most late ones; under load the first periodic save can
    # come after 2 s), and early kills with little or nothing saved.
    late = [r for r in results if r.index not in EARLY_TRIALS]
    assert sum(r.completed_at_kill > 4 * PIECE for r in late) >= len(late) // 2, report
    early = [r for r in results if r.index in EARLY_TRIALS]
    assert all(r.completed_at_kill <= CONNECTIONS * PIECE for r in early), report
