"""Helpers for end-to-end tests that run the ``trioaria`` CLI (or ``aria2c``) as a subprocess.

Everything here is bounded: every wait has a deadline, every child is killed on the way out.
Output goes to files (never to an unread pipe, which would block a chatty child), and the
``.aria2`` control file is read with the project's own codec
(:mod:`trioaria.storage.control_file`, the aria2 version 1 layout), so a test can say exactly
how many bytes were committed when a process died.

Byte accounting uses the nginx fixture's access log (``tests/servers/nginx.py``), whose lines
end with ``$status $body_bytes_sent "$http_range" "$http_user_agent"``: give every run its own
``--user-agent`` and :func:`nginx_bytes_sent` sums what nginx sent to that run.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from trioaria.storage import control_file as cf

__all__ = [
    "ARIA2C",
    "ChildRun",
    "LogLine",
    "block_done",
    "completed_at",
    "make_payload",
    "nginx_bytes_sent",
    "nginx_log_lines",
    "read_control",
    "sha256_file",
    "start_aria2c",
    "start_trioaria",
    "wait_for",
]

ARIA2C = shutil.which("aria2c") or "/usr/bin/aria2c"

_REPO = Path(__file__).resolve().parent.parent

# The tail of the nginx fixture's ``conn`` log format.
_LOG_RE = re.compile(
    r'^(?P<conn>\d+) (?P<reqs>\d+) "(?P<request>[^"]*)" (?P<status>\d+) (?P<sent>\d+)'
    r' "(?P<range>[^"]*)" "(?P<ua>[^"]*)"$'
)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@dataclass
class ChildRun:
    """A child process whose stdout/stderr go to files in ``workdir``."""

    process: subprocess.Popen[bytes]
    workdir: Path
    name: str
    started: float

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stdout(self) -> str:
        return (self.workdir / f"{self.name}.out").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.workdir / f"{self.name}.err").read_text(errors="replace")

    def poll(self) -> int | None:
        return self.process.poll()

    def signal(self, signum: int) -> None:
        """Send ``signum`` unless the child already exited."""
        if self.process.poll() is None:
            try:
                os.kill(self.process.pid, signum)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float) -> int:
        """Wait at most ``timeout`` seconds; on timeout kill the child and fail loudly."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} did not exit within {timeout}s\n--- stdout (tail)\n"
                f"{self.stdout[-3000:]}\n--- stderr (tail)\n{self.stderr[-3000:]}"
            ) from None

    def kill(self) -> None:
        """SIGKILL and reap (idempotent)."""
        if self.process.poll() is None:
            self.signal(signal.SIGKILL)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
            pass

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def describe(self) -> str:
        """Exit status plus output tails, for assertion messages."""
        return (
            f"{self.name}: exit {self.process.poll()}\n--- stdout (tail)\n{self.stdout[-2500:]}"
            f"\n--- stderr (tail)\n{self.stderr[-2500:]}"
        )


def _start(cmd: Sequence[str], workdir: Path, name: str) -> ChildRun:
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), env.get("PYTHONPATH")]))
    with (
        open(workdir / f"{name}.out", "wb") as out,
        open(workdir / f"{name}.err", "wb") as err,
    ):
        process = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env=env,
        )
    return ChildRun(process, workdir, name, time.monotonic())


def start_trioaria(args: Sequence[str], workdir: Path, name: str) -> ChildRun:
    """Start ``python -m trioaria ARGS`` with output captured to ``workdir/name.{out,err}``."""
    return _start([sys.executable, "-m", "trioaria", *args], workdir, name)


def start_aria2c(args: Sequence[str], workdir: Path, name: str) -> ChildRun:
    """Start ``aria2c ARGS`` (no config file, no DHT) with output captured like trioaria's."""
    base = [ARIA2C, "--no-conf", "--enable-dht=false", "--enable-dht6=false"]
    return _start([*base, *args], workdir, name)


def read_control(path: Path) -> cf.ControlFile | None:
    """Parse ``path`` (a ``.aria2`` file); None when it does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    return cf.parse(raw)


def completed_at(path: Path) -> int:
    """Completed bytes recorded in the control file ``path`` (0 when there is none)."""
    control = read_control(path)
    return 0 if control is None else cf.completed_length(control)


def block_done(control: cf.ControlFile, offset: int) -> bool:
    """Whether the 16 KiB block holding byte ``offset`` is recorded as written in ``control``
    (its piece is complete, or the piece is in flight with that block's bit set)."""
    index, within = divmod(offset, control.piece_length)
    if control.piece_done(index):
        return True
    for piece in control.in_flight:
        if piece.index == index:  # the first record wins, as in aria2
            block = within // cf.BLOCK_LENGTH
            return bool(piece.bitfield[block // 8] & (0x80 >> (block % 8)))
    return False


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def make_payload(size: int, seed: int) -> bytes:
    """``size`` pseudo-random bytes from ``seed`` (reproducible, incompressible)."""
    return random.Random(seed).randbytes(size)


@dataclass(frozen=True)
class LogLine:
    """One nginx access-log line of the fixture's ``conn`` format."""

    connection: int
    request: str
    status: int
    sent: int
    range: str
    user_agent: str


def nginx_log_lines(access_log: Path) -> list[LogLine]:
    lines = []
    for text in access_log.read_text(errors="replace").splitlines():
        m = _LOG_RE.match(text)
        if m is None:
            continue
        lines.append(
            LogLine(
                int(m["conn"]),
                m["request"],
                int(m["status"]),
                int(m["sent"]),
                m["range"],
                m["ua"],
            )
        )
    return lines


def nginx_bytes_sent(
    access_log: Path, user_agent: str, *, settle: float = 0.5, timeout: float = 10.0
) -> tuple[int, list[LogLine]]:
    """Sum ``$body_bytes_sent`` over the requests nginx logged for ``user_agent``.

    nginx writes a line when a request ends, which can be a moment after the client exited
    (it notices a closed connection on its next write).  So wait until the lines for this
    agent stop changing for ``settle`` seconds (at most ``timeout``).

    Returns:
        ``(bytes, lines)``.
    """
    deadline = time.monotonic() + timeout
    last: list[LogLine] | None = None
    stable_since = time.monotonic()
    while True:
        now_lines = [x for x in nginx_log_lines(access_log) if x.user_agent == user_agent]
        now = time.monotonic()
        if now_lines != last:
            last = now_lines
            stable_since = now
        elif now - stable_since >= settle or now >= deadline:
            return sum(x.sent for x in now_lines), now_lines
        time.sleep(0.05)
