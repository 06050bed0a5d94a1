"""Faults end in a correct file or a bounded, clear error (issues 9 and 15), against real
misbehaving servers on loopback (tests/servers/fault.py) driven through the real CLI."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.cli_util import run_cli
from tests.servers.fault import FaultServer
from trioaria.base.errors import ExitCode

MiB = 1 << 20


def _payload(size: int, seed: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


async def test_hung_mirror_does_not_hold_a_complete_download(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Issue 9: -x2 -s2 over two mirrors, one hangs after 256 KiB of every response.

    Every byte arrives within a second or two from the good mirror (it races the hung
    connection's segment in the endgame); the download must end then, not when --timeout (60 s
    here) expires on the hung connection."""
    data = _payload(4 * MiB, 1)
    fault_server.add_file("h.bin", data)
    result = await run_cli(
        "-x2",
        "-s2",
        "-k1M",
        "--timeout=60",
        "--summary-interval=0",
        "-d",
        tmp_path / "out",
        fault_server.url("/stall/h.bin?after=262144"),
        fault_server.url("/ok/h.bin"),
        home=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result
    assert (tmp_path / "out" / "h.bin").read_bytes() == data
    # far below the 60 s --timeout: the finishing connection cancelled the hung one
    assert result.elapsed < 30, result


async def test_max_tries_counts_attempts_without_lasting_progress(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Issue 15 part 2: no Range support and every response cut at half.  Each attempt starts
    over from byte 0, so no attempt makes lasting progress: --max-tries=3 ends it after three
    requests with exit 8 (cannot resume), instead of restarting forever."""
    data = _payload(2 * MiB, 2)
    fault_server.add_file("cut.bin", data)
    result = await run_cli(
        "--max-tries=3",
        "--retry-wait=0",
        "--summary-interval=0",
        "-d",
        tmp_path / "out",
        fault_server.url("/norangedrop/cut.bin"),
        home=tmp_path,
        timeout=60,
    )
    assert result.returncode == ExitCode.CANNOT_RESUME, result
    requests = [r for r in fault_server.requests if r.target.startswith("/norangedrop/")]
    assert len(requests) == 3, [r.target for r in requests]


async def test_lasting_progress_resets_the_try_count(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The other side of the same rule: a server with Range support that drops every response
    after 300,000 bytes still completes the file, since each attempt keeps what it wrote."""
    data = _payload(2 * MiB, 3)
    fault_server.add_file("d.bin", data)
    result = await run_cli(
        "--max-tries=2",
        "--retry-wait=0",
        "--summary-interval=0",
        "-d",
        tmp_path / "out",
        fault_server.url("/drop/d.bin?after=300000"),
        home=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result
    assert (tmp_path / "out" / "d.bin").read_bytes() == data


async def test_absurd_content_length_is_refused_at_once(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Issue 15 part 4: ``Content-Length: 2**56`` is refused before any piece state is built:
    a clear one-line error and aria2's exit code 9, no MemoryError, no file left behind."""
    fault_server.add_file("big.bin", b"x" * 1000)
    for allocation in ("prealloc", "none", "falloc"):
        out = tmp_path / allocation
        result = await run_cli(
            f"--file-allocation={allocation}",
            "--summary-interval=0",
            "-d",
            out,
            fault_server.url(f"/huge/big.bin?len={2**56}"),
            home=tmp_path,
            timeout=60,
        )
        assert result.returncode == ExitCode.NOT_ENOUGH_DISK_SPACE, result
        text = result.stdout + result.stderr
        assert "MemoryError" not in text and "Traceback" not in text, result
        assert str(2**56) in text, result
        assert not (out / "big.bin").exists()
        assert not out.exists() or not os.listdir(out)


async def test_failing_piece_is_fetched_again_from_another_mirror_and_blamed(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Piece hashes as Metalink chunk checksums give them: one mirror serves one corrupt byte.
    The piece it wrote fails its hash, is reset, blamed on that mirror and fetched again from the
    other one; the file ends byte-exact and the liar's failure count shows the blame."""
    from trioaria.base.stats import DownloadStatus
    from trioaria.cli.options import Options
    from trioaria.engine.group import RequestGroup
    from trioaria.storage.session import PieceHashes

    piece = 1 << 20
    data = _payload(6 * piece, 4)
    fault_server.add_file("m.bin", data)
    digests = tuple(hashlib.sha1(data[i : i + piece]).digest() for i in range(0, len(data), piece))
    liar = fault_server.url(f"/corrupt/m.bin?at={3 * piece + 77}")
    honest = fault_server.url("/ok/m.bin")
    options = Options.defaults().with_overrides(
        {
            "dir": str(tmp_path),
            "split": "2",
            "max-connection-per-server": "1",
            "min-split-size": "1M",
            "uri-selector": "inorder",
        }
    )
    group = RequestGroup([liar, honest], options, piece_hashes=PieceHashes("sha-1", piece, digests))
    await group.run()
    assert group.state is DownloadStatus.COMPLETE, group.error
    assert (tmp_path / "m.bin").read_bytes() == data
    assert group.session is not None and group.session.hash_failures >= 1
    stats = {s.uri: s for s in group.statistics().sources}
    assert stats[liar].failures >= 1, stats
    assert "failed its hash check" in stats[liar].last_error
    assert stats[honest].failures == 0


async def test_length_beyond_free_space_is_refused_when_preallocating(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Within trioaria's limit but beyond the free space of the download directory (statvfs):
    refused at once when --file-allocation=prealloc must write it all, exit 9."""
    st = os.statvfs(tmp_path)
    claimed = st.f_bavail * st.f_frsize + (1 << 30)
    fault_server.add_file("fs.bin", b"y" * 1000)
    result = await run_cli(
        "--file-allocation=prealloc",
        "--summary-interval=0",
        "-d",
        tmp_path / "o",
        fault_server.url(f"/huge/fs.bin?len={claimed}"),
        home=tmp_path,
        timeout=60,
    )
    assert result.returncode == ExitCode.NOT_ENOUGH_DISK_SPACE, result
    assert "No space left on device" in result.stdout + result.stderr, result
    assert not (tmp_path / "o" / "fs.bin").exists()


async def test_mirror_that_lies_about_ranges_is_retired_not_fatal(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Issue 15 part 1: a mirror answering ranges with a wrong Content-Range, or with 200 and
    the whole body although it advertised Accept-Ranges, is retired; the honest mirror
    finishes the file (exit 0), and the liar's statistics say why."""
    data = _payload(8 * MiB, 5)
    fault_server.add_file("r.bin", data)
    for mode in ("liecr", "fullbody"):
        out = tmp_path / mode
        result = await run_cli(
            "-x4",
            "-s4",
            "-k1M",
            "--summary-interval=0",
            "--download-result=full",
            "-d",
            out,
            fault_server.url(f"/{mode}/r.bin"),
            fault_server.url("/ok/r.bin"),
            home=tmp_path,
            timeout=60,
        )
        assert result.returncode == 0, result
        assert (out / "r.bin").read_bytes() == data


async def test_single_server_ignoring_later_ranges_still_completes(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """Issue 15 part 1, the measured case: one server, -x4 -s4; it advertises Accept-Ranges but
    answers every ranged request with 200 and the whole body.  The first connection streams the
    complete body, so the bad connections are dropped and that one finishes the file."""
    data = _payload(8 * MiB, 6)
    fault_server.add_file("s.bin", data)
    result = await run_cli(
        "-x4",
        "-s4",
        "-k1M",
        "--summary-interval=0",
        "-d",
        tmp_path / "o",
        fault_server.url("/fullbody/s.bin"),
        home=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result
    assert (tmp_path / "o" / "s.bin").read_bytes() == data
