"""aria2c <-> trioaria resume exchange through the ``.aria2`` control file.

docs/decisions.md: "The ``.aria2`` file keeps aria2's version 1 byte layout exactly (aria2c must
resume ours, and we theirs)."  Each case interrupts one client in the middle of a segmented
download (``-x4 -s4 -k1M``, nginx at 512 KiB/s per connection) and lets the other one finish
it with ``-c``.  The result must be byte-exact, the control file gone, and the second client
must fetch only about what the control file said was missing: at most the missing bytes plus
one piece per connection (nginx's ``$body_bytes_sent`` for the second client's user agent).

(a) trioaria, SIGINT (must exit 7 and leave ``<file>.aria2``) -> ``aria2c -c``
(b) aria2c (``--auto-save-interval=1``), SIGINT -> ``trioaria -c``; additionally no ranged
    request of trioaria may start inside a block aria2c's control file marks as written
(c) trioaria, SIGKILL (only the periodic saves count) -> ``aria2c -c``
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e_util import (
    block_done,
    completed_at,
    make_payload,
    nginx_bytes_sent,
    read_control,
    sha256_file,
    start_aria2c,
    start_trioaria,
    wait_for,
)

__all__: list[str] = []

SIZE = 16 << 20
PIECE = 1 << 20
CONNECTIONS = 4
PROGRESS_BEFORE_INTERRUPT = 2 << 20

CASES = {
    # case: (first client, signal, second client)
    "trioaria-SIGINT-then-aria2c": ("trioaria", signal.SIGINT, "aria2c"),
    "aria2c-SIGINT-then-trioaria": ("aria2c", signal.SIGINT, "trioaria"),
    "trioaria-SIGKILL-then-aria2c": ("trioaria", signal.SIGKILL, "aria2c"),
}


def _start(client: str, args: list[str], workdir: Path, name: str):
    if client == "aria2c":
        return start_aria2c(args, workdir, name)
    return start_trioaria(args, workdir, name)


@pytest.mark.parametrize("case", list(CASES))
def test_resume_exchange(nginx, tmp_path: Path, case: str) -> None:
    first_client, signum, second_client = CASES[case]
    name = f"exchange-{case}.bin"
    nginx.add_file(name, make_payload(SIZE, len(case)))
    digest = sha256_file(nginx.root / name)
    url = nginx.url(f"/rate/512k/{name}")
    out = tmp_path / "dl"
    control_path = out / f"{name}.aria2"
    common = [
        f"-x{CONNECTIONS}",
        f"-s{CONNECTIONS}",
        "-k1M",
        "-d",
        str(out),
        "--summary-interval=0",
    ]
    first_agent, second_agent = f"{case}-first", f"{case}-second"

    first_args = [*common, f"--user-agent={first_agent}", url]
    if first_client == "aria2c":
        first_args.insert(0, "--auto-save-interval=1")
    first = _start(first_client, first_args, tmp_path, "first")
    try:
        assert wait_for(
            lambda: (
                completed_at(control_path) >= PROGRESS_BEFORE_INTERRUPT or first.poll() is not None
            ),
            30,
        ), "no progress saved within 30 s\n" + first.describe()
        assert first.poll() is None, "finished before the interrupt\n" + first.describe()
        first.signal(signum)
        code = first.wait(15)
    finally:
        first.kill()
    if signum == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == 7, first.describe()  # both clients: 7 = unfinished downloads

    control = read_control(control_path)
    assert control is not None, f"{first_client} left no control file\n" + first.describe()
    assert (control.total_length, control.piece_length) == (SIZE, PIECE)
    completed = completed_at(control_path)
    assert PROGRESS_BEFORE_INTERRUPT <= completed < SIZE

    second = _start(
        second_client, [*common, "-c", f"--user-agent={second_agent}", url], tmp_path, "second"
    )
    try:
        assert second.wait(90) == 0, second.describe()
    finally:
        second.kill()
    assert sha256_file(out / name) == digest, f"{second_client} -c produced a different file"
    assert not control_path.exists(), "control file left after completion"

    sent, lines = nginx_bytes_sent(nginx.access_log, second_agent)
    ranges = [(x.range, x.sent) for x in lines]
    assert lines, f"{second_client} -c made no request"
    missing = SIZE - completed
    assert sent <= missing + CONNECTIONS * PIECE, (
        f"{second_client} -c fetched {sent} bytes; {missing} were missing: {ranges}"
    )
    if second_client == "trioaria":
        # Ranged requests (not the probe, which asks for ``bytes=0-``) start at missing blocks.
        for line in lines:
            if line.range.startswith("bytes=") and line.range != "bytes=0-":
                start = int(line.range[len("bytes=") :].split("-")[0])
                assert not block_done(control, start), (
                    f"trioaria re-requested block at {start}, which aria2c had written: {ranges}"
                )
