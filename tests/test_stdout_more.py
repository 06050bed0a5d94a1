"""``-o -`` from a server without ranges past the 16 MiB window, and a reader that goes away
(trioaria/storage/stdout.py and its caller in engine/group.py)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

from tests.cli_util import child_env
from tests.servers.fault import FaultServer, run_fault_server_in_thread

MiB = 1 << 20


def _cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "trioaria", "--no-conf", *map(str, args)]


def test_stdout_from_server_without_ranges_larger_than_window(tmp_path: Path) -> None:
    """A server that does not support Range (no Accept-Ranges, answers 200 to everything):
    the file still comes whole over its one connection, as it does with ``-o file``.  The
    16 MiB fence must not end that body and ask for a range the server cannot serve."""
    data = random.Random(11).randbytes(24 * MiB + 5)
    server = FaultServer({"big.bin": data})
    port, stop = run_fault_server_in_thread(server)
    home = tmp_path / "h"
    home.mkdir()
    try:
        proc = subprocess.run(
            _cli("-o", "-", "--max-tries=2", "--retry-wait=0", "-d", tmp_path / "d",
                 f"http://127.0.0.1:{port}/norange/big.bin"),
            capture_output=True, cwd=home, env=child_env(home), timeout=30,
        )  # fmt: skip
    finally:
        stop()
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, stderr[-600:]
    assert proc.stdout == data


def test_stdout_reader_closes_early_gives_one_clear_line(tmp_path: Path) -> None:
    """``trioaria -o - URL | head -c 100``: the reader goes away.  The download must end with
    one clear line naming the cause (standard output closed / broken pipe), not an opaque
    "ExceptionGroup: Exceptions from Trio nursery (1 sub-exception)", and must not promise a
    resume that a stream cannot do."""
    data = random.Random(12).randbytes(40 * MiB)
    server = FaultServer({"big.bin": data})
    port, stop = run_fault_server_in_thread(server)
    home = tmp_path / "h"
    home.mkdir()
    try:
        proc = subprocess.Popen(
            _cli("-o", "-", "-x4", "-s4", "-k1M", "-d", tmp_path / "d",
                 f"http://127.0.0.1:{port}/ok/big.bin"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=home, env=child_env(home),
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(100) == data[:100]
        proc.stdout.close()
        try:
            code = proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stderr = proc.stderr.read().decode(errors="replace")
    finally:
        stop()
    assert code != 0
    assert "ExceptionGroup" not in stderr, stderr[-800:]
    assert "Exceptions from Trio nursery" not in stderr, stderr[-800:]
