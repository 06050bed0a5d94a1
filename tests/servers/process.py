"""Stopping a server child process: SIGTERM, then SIGKILL after a grace period (shared helper)."""

from __future__ import annotations

import subprocess

__all__ = ["stop_process"]


def stop_process(process: subprocess.Popen[bytes] | None, *, grace: float = 10) -> None:
    """Terminate ``process`` if it still runs; kill it if it has not exited after ``grace`` s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)
