"""aria2c ⇄ trioaria resume exchange over SFTP (password login, asyncssh server).

One tool is interrupted with SIGINT (graceful: exit 7, ``.aria2`` control file saved), the
other resumes with ``-c`` and must finish byte-exact while reading only about what was
missing.  Both directions, with the same options (``-x3 -s3 -k1M``: 1 MiB pieces in both
tools).  The server throttles ``/slow/`` to 1 MiB/s per SSH session so the first run is
reliably interrupted mid-way, and logs every read (``read CONN OFFSET SIZE``), which is how
the bytes each run fetched are counted.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_util import (
    ChildRun,
    completed_at,
    make_payload,
    read_control,
    sha256_file,
    start_aria2c,
    start_trioaria,
    wait_for,
)
from tests.servers.sftp import SftpServer, SshKeys, start_sftp_server

MiB = 1 << 20
SIZE = 8 * MiB + 12345
CONNECTIONS = 3
PIECE = MiB
START = {"trioaria": start_trioaria, "aria2c": start_aria2c}


@pytest.fixture(scope="module")
def slow_sftp(tmp_path_factory: pytest.TempPathFactory, ssh_keys: SshKeys) -> Iterator[SftpServer]:
    base = tmp_path_factory.mktemp("sftp_exchange")
    with open(base / "stderr.log", "wb") as err:  # asyncio's "socket.send() raised" noise
        server = start_sftp_server(
            base / "root", ssh_keys, log=base / "server.log", slow_rate=MiB, stderr=err
        )
    try:
        yield server
    finally:
        server.stop()


def _bytes_read(server: SftpServer, name: str, since: int) -> int:
    """What the server sent for ``name`` on sessions that opened it after log line *since*."""
    lines = server.log_lines()[since:]
    conns = {x[1] for x in lines if x[0] == "open" and x[2].endswith(name)}
    return sum(int(x[3]) for x in lines if x[0] == "read" and x[1] in conns)


def _written(path: Path, data: bytes) -> int:
    """Bytes of whole 16 KiB blocks already in ``path`` as they are in ``data`` (the payload is
    random, so a preallocated zero block never matches)."""
    try:
        got = path.read_bytes()
    except OSError:
        return 0
    block = 16 * 1024
    return block * sum(
        1
        for i in range(0, min(len(got), len(data)) - block + 1, block)
        if got[i : i + block] == data[i : i + block]
    )


def _args(out: Path, url: str) -> list[str]:
    return [f"-x{CONNECTIONS}", f"-s{CONNECTIONS}", "-k1M", "-d", str(out),
            "--summary-interval=0", url]  # fmt: skip


@pytest.mark.parametrize(("first", "second"), [("trioaria", "aria2c"), ("aria2c", "trioaria")])
def test_sigint_then_other_tool_resumes(
    slow_sftp: SftpServer, tmp_path: Path, first: str, second: str
) -> None:
    name = f"x-{first}-{os.urandom(3).hex()}.bin"
    data = make_payload(SIZE, seed=len(name) + (first == "aria2c"))
    slow_sftp.add_file(f"slow/{name}", data)
    url = slow_sftp.url(f"slow/{name}")
    out = tmp_path / "out"
    control = out / f"{name}.aria2"

    mark = len(slow_sftp.log_lines())
    run: ChildRun = START[first](_args(out, url), tmp_path / "run1", "first")
    try:
        # the server has sent 3 MiB and the client has written more than a MiB of whole blocks
        # (what the server sent may still be on its way when it is counted)
        progressed = wait_for(
            lambda: (
                (
                    _bytes_read(slow_sftp, name, mark) >= 3 * MiB
                    and _written(out / name, data) >= MiB + 4 * 16 * 1024
                )
                or run.poll() is not None
            ),
            30,
        )
        assert progressed and run.poll() is None, run.describe()
        run.signal(signal.SIGINT)
        code = run.wait(20)
    finally:
        run.kill()
    assert code == 7, run.describe()
    assert "Traceback" not in run.stderr + run.stdout, run.describe()
    saved_control = read_control(control)
    assert saved_control is not None, run.describe()
    assert saved_control.total_length == SIZE
    saved = completed_at(control)
    assert MiB <= saved < SIZE, saved

    mark = len(slow_sftp.log_lines())
    resume = START[second](["-c", *_args(out, url)], tmp_path / "run2", "second")
    try:
        assert resume.wait(60) == 0, resume.describe()
    finally:
        resume.kill()
    assert "Traceback" not in resume.stderr + resume.stdout, resume.describe()
    assert sha256_file(out / name) == sha256_file(slow_sftp.root / "slow" / name)
    assert not control.exists()
    fetched = _bytes_read(slow_sftp, name, mark)
    missing = SIZE - saved
    # only about the missing bytes: at most a partly written piece per connection more
    # (the pieces in flight at the interrupt are re-fetched whole by aria2c)
    assert missing <= fetched <= missing + CONNECTIONS * PIECE, (saved, missing, fetched)
