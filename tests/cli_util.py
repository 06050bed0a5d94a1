"""Helpers for end-to-end CLI tests: run ``python -m trioaria`` / ``aria2c`` in a clean child env.

Shared by every CLI test module (HTTP, FTP, SFTP, exit codes, readout, input files).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from tests.servers.nginx import NginxServer

__all__ = [
    "ARIA2C",
    "REPO",
    "CliResult",
    "LogLine",
    "MiB",
    "child_env",
    "gather",
    "log_lines",
    "run_aria2c",
    "run_cli",
    "run_process",
    "serve_copy",
    "unique_name",
]

REPO = Path(__file__).resolve().parent.parent
ARIA2C = shutil.which("aria2c") or "/usr/bin/aria2c"
MiB = 1 << 20


# --- helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    """What one CLI run produced."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    def __str__(self) -> str:  # shown by pytest when an assertion on the result fails
        return (
            f"argv={self.argv}\nexit={self.returncode} elapsed={self.elapsed:.2f}s\n"
            f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}"
        )


def child_env(home: Path) -> dict[str, str]:
    """The environment for a CLI child: no proxies, no user config, this tree importable."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and not k.startswith("TRIOARIA_")
    }
    env.pop("XDG_CONFIG_HOME", None)
    env["HOME"] = str(home)  # no ~/.aria2/aria2.conf of the user's
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


async def run_process(
    argv: Sequence[str],
    *,
    home: Path,
    timeout: float = 60,
    prefix: Sequence[str] = (),
    env: dict[str, str] | None = None,
    stdin: bytes = b"",
) -> CliResult:
    """Run ``prefix + argv`` with ``HOME=home`` (also its working directory), output captured.

    ``env`` adds to (or overrides) :func:`child_env`; ``stdin`` is fed to the child.
    """
    argv = [*prefix, *argv]
    home.mkdir(parents=True, exist_ok=True)
    full_env = child_env(home)
    full_env.update(env or {})
    start = time.monotonic()
    with trio.fail_after(timeout):
        proc = await trio.run_process(
            argv,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=str(home),
            env=full_env,
            stdin=stdin,
        )
    return CliResult(
        argv=argv,
        returncode=proc.returncode,
        stdout=proc.stdout.decode(errors="replace"),
        stderr=proc.stderr.decode(errors="replace"),
        elapsed=time.monotonic() - start,
    )


async def run_cli(*args: str | os.PathLike[str], home: Path, timeout: float = 60) -> CliResult:
    """Run ``python -m trioaria ARGS`` with ``HOME=home`` (also its working directory)."""
    return await run_process(
        [sys.executable, "-m", "trioaria", *map(str, args)], home=home, timeout=timeout
    )


async def run_aria2c(*args: str | os.PathLike[str], home: Path, timeout: float = 60) -> CliResult:
    """Run the real ``aria2c --no-conf ARGS`` the same way (for exit-status comparisons)."""
    return await run_process([ARIA2C, "--no-conf", *map(str, args)], home=home, timeout=timeout)


async def gather(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run the zero-argument async callables concurrently; results in the same order."""
    results: list[Any] = [None] * len(calls)

    async def one(i: int, call: Callable[[], Awaitable[Any]]) -> None:
        results[i] = await call()

    async with trio.open_nursery() as nursery:
        for i, call in enumerate(calls):
            nursery.start_soon(one, i, call)
    return results


@dataclass(frozen=True)
class LogLine:
    """One nginx access-log line (format ``conn`` in tests/servers/nginx.py)."""

    connection: int
    method: str
    path: str
    status: int
    body_bytes: int
    range: str


_LOG_RE = re.compile(r'^(\d+) \d+ "(\S+) (\S+)[^"]*" (\d+) (\d+) "([^"]*)"')


def log_lines(nginx: NginxServer, path: str) -> list[LogLine]:
    """Access-log lines whose request path is exactly *path*."""
    out = []
    for line in nginx.access_log.read_text(errors="replace").splitlines():
        m = _LOG_RE.match(line)
        if m and m.group(3) == path:
            out.append(
                LogLine(
                    int(m.group(1)), m.group(2), m.group(3), int(m.group(4)), int(m.group(5)),
                    m.group(6),
                )
            )  # fmt: skip
    return out


def serve_copy(nginx: NginxServer, name: str, size: int = 5_000_000) -> bytes:
    """Serve fresh random bytes as ``/name`` on nginx; returns them."""
    data = os.urandom(size)
    nginx.add_file(name, data)
    return data


def unique_name(prefix: str) -> str:
    """``prefix-<8 hex>.bin``: a file name no other test serves."""
    return f"{prefix}-{os.urandom(4).hex()}.bin"
