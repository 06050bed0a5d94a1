"""Signals end to end: SIGINT graceful, SIGTERM/SIGHUP forced, a second SIGINT forces.

aria2 (``src/MultiUrlRequestInfo.cc``, docs/decisions.md's last table row): the first SIGINT starts a
graceful shutdown ("Shutdown sequence commencing... Press Ctrl-C again for emergency
shutdown."), a second SIGINT, SIGTERM or SIGHUP forces it.  Either way an unfinished download
exits 7 (IN_PROGRESS) and its ``.aria2`` control file is saved, so ``-c`` later fetches only
what is missing and produces the exact file.

Every test runs the CLI as a subprocess against nginx (``/rate/512k/...`` per connection, so
the download is still running when the signal arrives) and waits with deadlines only.
"""

from __future__ import annotations

import signal
import zlib
from pathlib import Path

import pytest

from tests.e2e_util import (
    ChildRun,
    completed_at,
    make_payload,
    nginx_bytes_sent,
    read_control,
    sha256_file,
    start_trioaria,
    wait_for,
)

__all__: list[str] = []

SIZE = 8 << 20
PIECE = 1 << 20
CONNECTIONS = 4
SHUTDOWN_MESSAGE = "Shutdown sequence commencing"


def _args(out: Path, url: str, agent: str) -> list[str]:
    return [
        f"-x{CONNECTIONS}",
        f"-s{CONNECTIONS}",
        "-k1M",
        "-d",
        str(out),
        "--summary-interval=0",
        f"--user-agent={agent}",
        url,
    ]


def _start_and_wait_for_progress(nginx, tmp_path: Path, name: str) -> tuple[ChildRun, Path, str]:
    """Serve a fresh file, start trioaria on it, return once a control file shows progress."""
    payload = make_payload(SIZE, zlib.crc32(name.encode()))
    nginx.add_file(name, payload)
    digest = sha256_file(nginx.root / name)
    out = tmp_path / "dl"
    out.mkdir()
    run = start_trioaria(
        _args(out, nginx.url(f"/rate/512k/{name}"), f"{name}-first"), tmp_path, "first"
    )
    control = out / f"{name}.aria2"
    try:
        assert wait_for(lambda: completed_at(control) > 0 or run.poll() is not None, 20), (
            "no progress saved within 20 s\n" + run.describe()
        )
        assert run.poll() is None, (
            "trioaria ended before it could be interrupted\n" + run.describe()
        )
    except BaseException:
        run.kill()
        raise
    return run, out, digest


def _check_saved_and_resume(
    nginx, tmp_path: Path, name: str, out: Path, digest: str, before: int
) -> None:
    """The control file is valid and at least as far as before the signal; -c finishes it."""
    control_path = out / f"{name}.aria2"
    control = read_control(control_path)
    assert control is not None, "no control file after the interrupted run"
    assert (control.total_length, control.piece_length) == (SIZE, PIECE)
    saved = completed_at(control_path)
    assert before <= saved < SIZE, (before, saved)
    agent = f"{name}-second"
    second = start_trioaria(
        [*_args(out, nginx.url(f"/rate/512k/{name}"), agent), "-c"], tmp_path, "second"
    )
    try:
        assert second.wait(60) == 0, second.describe()
    finally:
        second.kill()
    assert sha256_file(out / name) == digest
    assert not control_path.exists()
    sent, lines = nginx_bytes_sent(nginx.access_log, agent)
    assert lines, "the -c run made no request"
    assert sent <= (SIZE - saved) + CONNECTIONS * PIECE, [(x.range, x.sent) for x in lines]


def test_sigint_once_is_graceful_and_resumable(nginx, tmp_path: Path) -> None:
    name = "sig-int.bin"
    run, out, digest = _start_and_wait_for_progress(nginx, tmp_path, name)
    try:
        before = completed_at(out / f"{name}.aria2")
        run.signal(signal.SIGINT)
        code = run.wait(15)
    finally:
        run.kill()
    assert code == 7, run.describe()
    assert SHUTDOWN_MESSAGE in run.stdout, run.describe()
    assert "INPR" in run.stdout, run.describe()
    assert "Traceback" not in run.stderr, run.describe()
    _check_saved_and_resume(nginx, tmp_path, name, out, digest, before)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_sighup_force_shutdown_and_save(nginx, tmp_path: Path, signum: int) -> None:
    name = f"sig-{signal.Signals(signum).name.lower()}.bin"
    run, out, digest = _start_and_wait_for_progress(nginx, tmp_path, name)
    try:
        before = completed_at(out / f"{name}.aria2")
        run.signal(signum)
        code = run.wait(15)
    finally:
        run.kill()
    assert code == 7, run.describe()
    assert SHUTDOWN_MESSAGE not in run.stdout, "a forced shutdown is not the graceful sequence"
    assert "Traceback" not in run.stderr, run.describe()
    _check_saved_and_resume(nginx, tmp_path, name, out, digest, before)


def test_repeated_sigint_during_shutdown_forces_cleanly(nginx, tmp_path: Path) -> None:
    """Ctrl-C mashed: the second SIGINT lands during shutdown, later ones while results print
    and while the interpreter exits.  Still exit 7, no traceback, control file saved."""
    name = "sig-int2.bin"
    run, out, digest = _start_and_wait_for_progress(nginx, tmp_path, name)
    sent = 0
    try:
        before = completed_at(out / f"{name}.aria2")
        run.signal(signal.SIGINT)

        def keep_interrupting() -> bool:
            nonlocal sent
            if run.poll() is not None:
                return True
            run.signal(signal.SIGINT)
            sent += 1
            return False

        assert wait_for(keep_interrupting, 15, interval=0.001), run.describe()
        code = run.wait(5)
    finally:
        run.kill()
    assert sent >= 1, "the process exited before a second SIGINT could be sent"
    assert code == 7, run.describe()
    assert "Traceback" not in run.stderr and "KeyboardInterrupt" not in run.stderr, run.describe()
    _check_saved_and_resume(nginx, tmp_path, name, out, digest, before)
