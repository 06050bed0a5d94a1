"""The console entry's way out (``trioaria.cli.run``): ``os._exit`` after flushing the
streams and running the ``atexit`` hooks, the ordinary exit while a non-daemon thread runs
(docs/performance.md "Start-up")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trioaria.demo import serve_bytes

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["HOME"] = str(cwd)
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


_HOOK = (
    "import atexit, sys\n"
    "from trioaria.cli import _leave\n"
    "atexit.register(lambda: open(sys.argv[1], 'w').write('hook ran'))\n"
    "sys.stdout.write('buffered, not yet flushed')\n"
    "_leave(7)\n"
)
_THREAD = (
    "import sys, threading, time\n"
    "from trioaria.cli import _leave\n"
    "def work():\n"
    "    time.sleep(0.3)\n"
    "    open(sys.argv[1], 'w').write('finished')\n"
    "threading.Thread(target=work).start()\n"
    "_leave(3)\n"
)


@pytest.mark.parametrize(
    ("code", "status", "stdout", "written"),
    [
        (_HOOK, 7, "buffered, not yet flushed", "hook ran"),  # atexit hooks run, stdout flushed
        (_THREAD, 3, "", "finished"),  # a non-daemon thread is waited for
    ],
    ids=["atexit-and-flush", "non-daemon-thread"],
)
def test_leave(tmp_path: Path, code: str, status: int, stdout: str, written: str) -> None:
    done = _python(code, str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == status, done.stderr
    assert done.stdout == stdout
    assert (tmp_path / "out").read_text() == written


def test_leave_under_a_profiler_takes_the_ordinary_exit(tmp_path: Path) -> None:
    """``python -m cProfile -m trioaria`` writes its profile after the program returns."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    prof = tmp_path / "run.prof"
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "trioaria", "--version"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert prof.stat().st_size > 0


def test_module_entry_downloads_and_keeps_the_log(tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    url = f"http://127.0.0.1:{serve_bytes(payload)}/f.bin"
    log = tmp_path / "run.log"
    done = _python(
        "from trioaria.cli import run; run()",
        "--no-conf",
        "--summary-interval=0",
        f"--log={log}",
        "--log-level=info",
        "-d",
        str(tmp_path),
        "-o",
        "out.bin",
        url,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.bin").read_bytes() == payload
    assert "Download complete" in log.read_text()  # the file handler was flushed
    assert "Download Results" in done.stdout  # and so was the summary on stdout
