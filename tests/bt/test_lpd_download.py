"""LPD in real downloads: two trioaria processes in two network namespaces find each other.

The namespaces (``tests/bt/test_lpd.py``'s fixture: a veth pair with multicast on, nothing else)
hold a trioaria seeder and a trioaria leecher of a torrent with no tracker, DHT off.  Both run
with ``--bt-enable-lpd=true --bt-lpd-interface=<their veth>``: the leecher's announce reaches the
seeder, which dials it, so the download can only complete through Local Peer Discovery.  A
failed namespace set-up fails the test (the fixture raises).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.bt.swarm_helpers import REPO, make_torrent
from tests.bt.test_lpd import namespaces  # noqa: F401 - the fixture

_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO), "LC_ALL": "C"}


def _trioaria(ns: str, home: Path, *args: str) -> list[str]:
    return [
        "ip", "netns", "exec", ns, sys.executable, "-m", "trioaria", "--no-conf",
        "--summary-interval=0", "--enable-dht=false", "--bt-enable-lpd=true", *args,
    ]  # fmt: skip


def test_leecher_and_seeder_meet_through_lpd(
    tmp_path: Path,
    namespaces: tuple[str, str],  # noqa: F811 - the fixture
) -> None:
    a, b = namespaces
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(300_000)
    torrent = tmp_path / "l.torrent"
    torrent.write_bytes(make_torrent(seed, [("l.bin", payload)], name="l.bin"))
    log = tmp_path / "seeder.log"
    env = dict(_ENV, HOME=str(tmp_path))
    seeder = subprocess.Popen(
        _trioaria(
            a, tmp_path, "--listen-port=41001", "--bt-lpd-interface=lpd0", f"--dir={seed}", "-V",
            f"--log={log}", "--log-level=info", str(torrent),
        ),
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and "LPD: announcing" in log.read_text(errors="replace")):
            assert seeder.poll() is None, log.read_text(errors="replace") if log.exists() else ""
            assert time.monotonic() < deadline, "the seeder never joined the LPD group"
            time.sleep(0.05)
        leech = subprocess.run(
            _trioaria(
                b, tmp_path, "--listen-port=41002", "--bt-lpd-interface=10.77.14.2",
                f"--dir={dl}", "--seed-time=0", str(torrent),
            ),
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert leech.returncode == 0, leech.stdout + leech.stderr
        assert seeder.wait(timeout=60) == 0  # --seed-ratio=1.0 reached: it uploaded everything
    finally:
        if seeder.poll() is None:
            seeder.kill()
            seeder.wait(timeout=10)
    assert (dl / "l.bin").read_bytes() == payload
