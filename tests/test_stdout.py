"""``-o -`` (trioaria.storage.stdout): the download goes to standard output in order, split
over connections, with no control file, and never runs more than a window ahead of a slow
reader (aria2 #190)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import trio

from tests.cli_util import child_env
from tests.e2e_util import wait_for
from tests.servers.fault import FaultServer, run_fault_server_in_thread
from trioaria.storage.stdout import DEFAULT_WINDOW

MiB = 1 << 20


async def _run_bytes(*args: object, home: Path) -> tuple[int, bytes, str]:
    """The CLI with its stdout kept as bytes (``run_cli`` decodes it)."""
    home.mkdir(parents=True, exist_ok=True)
    with trio.fail_after(60):
        proc = await trio.run_process(
            [sys.executable, "-m", "trioaria", *map(str, args)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=str(home),
            env=child_env(home),
        )
    return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")


async def test_stdout_split_download(fault_server: FaultServer, tmp_path: Path) -> None:
    data = random.Random(7).randbytes(6 * MiB + 123)
    fault_server.add_file("six.bin", data)
    out = tmp_path / "d"
    code, stdout, stderr = await _run_bytes(
        "-o", "-", "-x4", "-s4", "-k1M", "-d", out, fault_server.url("/ok/six.bin"),
        home=tmp_path / "h",
    )  # fmt: skip
    assert code == 0, stderr
    assert stdout == data
    assert "Download Results" in stderr  # the readout moved to stderr
    assert list(out.iterdir()) == []  # no file, no control file, no scratch left
    ranged = [r for r in fault_server.requests if r.headers.get("range", "bytes=0-") != "bytes=0-"]
    assert ranged  # it really was split


async def test_stdout_unknown_length_stall_times_out(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A body without a length that stops coming ends at ``--timeout`` (exit 2), not never."""
    code, stdout, stderr = await _run_bytes(
        "-o", "-", "--timeout=1", "--max-tries=1", "-d", tmp_path / "d",
        fault_server.url("/http10/data.bin?after=1000"), home=tmp_path / "h",
    )  # fmt: skip
    assert code == 2, stderr
    assert stdout == fault_server.files["data.bin"][:1000]  # what came was passed on
    assert "no data from" in stderr


async def test_stdout_unknown_length(fault_server: FaultServer, tmp_path: Path) -> None:
    """An HTTP/1.0 body without a length: copied as it arrives."""
    code, stdout, stderr = await _run_bytes(
        "-o", "-", "-d", tmp_path / "d", fault_server.url("/http10/data.bin"), home=tmp_path / "h"
    )
    assert code == 0, stderr
    assert stdout == fault_server.files["data.bin"]
    assert not (tmp_path / "d").exists() or list((tmp_path / "d").iterdir()) == []


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _scratch_bytes(directory: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in directory.rglob("*") if p.is_file())


def test_slow_reader_bounded_memory(tmp_path: Path) -> None:
    """Nobody reads stdout at first: the download fills one window and waits (no request
    beyond it); then the reader takes everything, in order, and the CLI's peak RSS stays
    under 64 MiB although the file is larger."""
    size = 72 * MiB
    data = random.Random(3).randbytes(size)
    server = FaultServer({"big.bin": data})
    port, stop = run_fault_server_in_thread(server)
    out = tmp_path / "d"
    out.mkdir()
    home = tmp_path / "h"
    home.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trioaria", "-o", "-", "-x4", "-s4", "-k1M", "-q", "-d", str(out),
         f"http://127.0.0.1:{port}/ok/big.bin"],
        stdout=subprocess.PIPE, stderr=(tmp_path / "err").open("wb"), cwd=home, env=child_env(home),
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        # the window fills while the pipe is full and unread
        assert wait_for(lambda: _scratch_bytes(out) >= DEFAULT_WINDOW, 60), _scratch_bytes(out)
        starts = [
            int(r.headers["range"][6:].split("-")[0])
            for r in server.requests
            if "range" in r.headers
        ]
        assert max(starts) < DEFAULT_WINDOW + MiB, starts  # nothing fetched beyond the window
        # and it stays there while nobody reads: a bounded wait for something that must not
        # happen (without the window the whole file would land in about a second)
        assert not wait_for(lambda: _scratch_bytes(out) > DEFAULT_WINDOW + 4 * MiB, 2)
        got = bytearray()
        peak = 0
        while len(got) < size - MiB:
            chunk = proc.stdout.read(min(MiB, size - MiB - len(got)))
            assert chunk
            got += chunk
            peak = max(peak, _status_kib(proc.pid, "VmHWM"))
            # delivered bytes are punched out of the scratch file: the disk holds a window
            assert _scratch_bytes(out) <= DEFAULT_WINDOW + 4 * MiB
        got += proc.stdout.read()
        assert proc.wait(60) == 0, (tmp_path / "err").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stop()
    assert bytes(got) == data
    assert peak < 64 * 1024, f"peak RSS {peak} KiB"
    assert list(out.iterdir()) == []


async def test_stdout_checksum(fault_server: FaultServer, tmp_path: Path) -> None:
    """--checksum still applies: the bytes were streamed, and a mismatch is exit 32."""
    import hashlib

    data = fault_server.files["data.bin"]
    url = fault_server.url("/ok/data.bin")
    good = "sha-256=" + hashlib.sha256(data).hexdigest()
    code, stdout, stderr = await _run_bytes(
        "-o", "-", f"--checksum={good}", "-d", tmp_path / "d", url, home=tmp_path / "h"
    )  # fmt: skip
    assert code == 0, stderr
    assert stdout == data
    code, _, stderr = await _run_bytes(
        "-o", "-", "--checksum=sha-256=" + "0" * 64, "-d", tmp_path / "e", url,
        home=tmp_path / "h2",
    )  # fmt: skip
    assert code == 32, stderr
