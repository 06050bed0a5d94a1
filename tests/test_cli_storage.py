"""End-to-end tests of where and how the ``trioaria`` command writes, and of resuming.

The real CLI runs in a subprocess against nginx: ``-d``/``-o``, ``--allow-overwrite``,
``--auto-file-renaming`` (aria2's ``file.1.ext``), exit 13 for an existing file,
``--file-allocation``, ``-c`` without a control file (continue from the file's length unless
it has preallocated holes), and the ``.aria2`` control file (docs/decisions.md "Disk, durability and
resume"): present and parseable while a download runs, removed on success, kept on Ctrl-C and
used by the next run, exit 8 when the total length differs or the remote file was modified
after our last save.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from tests.cli_util import (
    MiB,
    child_env,
    gather,
    log_lines,
    run_aria2c,
    run_cli,
    serve_copy,
    unique_name,
)
from tests.servers.nginx import NginxServer
from trioaria.base.errors import ExitCode
from trioaria.storage import control_file as cf

__all__: list[str] = []

PIECE = MiB  # --piece-length default


def _range_starts(nginx: NginxServer, path: str) -> list[int]:
    starts = []
    for line in log_lines(nginx, path):
        if line.range.startswith("bytes="):
            starts.append(int(line.range[6:].split("-")[0]))
    return starts


def _control_with_pieces(total: int, done: set[int]) -> bytes:
    n = cf.num_pieces(total, PIECE)
    bits = bytearray(cf.bitfield_length(n))
    for i in done:
        bits[i // 8] |= 0x80 >> (i % 8)
    return cf.serialize(
        cf.ControlFile(piece_length=PIECE, total_length=total, bitfield=bytes(bits))
    )


async def _wait_for(predicate: Callable[[], bool], *, timeout: float = 20, what: str) -> None:
    """Poll a file-system condition (no event exists for another process's files), bounded."""
    try:
        with trio.fail_after(timeout):
            while not predicate():
                await trio.sleep(0.02)
    except trio.TooSlowError:
        raise AssertionError(f"no {what} within {timeout} s") from None


# --- output names -------------------------------------------------------------------------


async def test_dir_and_out(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("out")
    data = serve_copy(nginx, name, MiB + 123)
    url = nginx.url(f"/{name}")
    nested, renamed, sub = await gather(
        lambda: run_cli("-d", tmp_path / "new" / "deeper", url, home=tmp_path / "h1"),
        lambda: run_cli("-d", tmp_path / "o", "-o", "given.bin", url, home=tmp_path / "h2"),
        lambda: run_cli("-d", tmp_path / "s", "-o", "a/b/c.bin", url, home=tmp_path / "h3"),
    )
    for res in (nested, renamed, sub):
        assert res.returncode == 0, res
    assert (tmp_path / "new" / "deeper" / name).read_bytes() == data
    assert os.listdir(tmp_path / "o") == ["given.bin"]
    assert (tmp_path / "o" / "given.bin").read_bytes() == data
    assert (tmp_path / "s" / "a" / "b" / "c.bin").read_bytes() == data


async def test_existing_file_renaming_overwrite_and_exit_13(
    nginx: NginxServer, tmp_path: Path
) -> None:
    name = unique_name("exists")
    data = serve_copy(nginx, name, MiB)
    url = nginx.url(f"/{name}")
    old = b"old content that must survive\n"
    stem = name[: -len(".bin")]
    for sub in ("ren", "ren-aria2c", "over", "keep", "keep-aria2c"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / name).write_bytes(old)
    ren, ren_a, over, keep, keep_a = await gather(
        lambda: run_cli("-d", tmp_path / "ren", url, home=tmp_path / "h1"),
        lambda: run_aria2c("-d", tmp_path / "ren-aria2c", url, home=tmp_path / "h2"),
        lambda: run_cli(
            "--allow-overwrite=true", "-d", tmp_path / "over", url, home=tmp_path / "h3"
        ),
        lambda: run_cli(
            "--auto-file-renaming=false", "-d", tmp_path / "keep", url, home=tmp_path / "h4"
        ),
        lambda: run_aria2c(
            "--auto-file-renaming=false", "-d", tmp_path / "keep-aria2c", url, home=tmp_path / "h5"
        ),
    )
    # default --auto-file-renaming=true: file.1.bin, the old file untouched (as aria2c)
    assert ren.returncode == ren_a.returncode == 0, (ren, ren_a)
    assert sorted(os.listdir(tmp_path / "ren")) == sorted(os.listdir(tmp_path / "ren-aria2c"))
    assert sorted(os.listdir(tmp_path / "ren")) == sorted([name, f"{stem}.1.bin"])
    assert (tmp_path / "ren" / name).read_bytes() == old
    assert (tmp_path / "ren" / f"{stem}.1.bin").read_bytes() == data
    # --allow-overwrite=true: replaced in place
    assert over.returncode == 0, over
    assert os.listdir(tmp_path / "over") == [name]
    assert (tmp_path / "over" / name).read_bytes() == data
    # neither: exit 13, nothing touched (as aria2c)
    assert keep.returncode == keep_a.returncode == ExitCode.FILE_ALREADY_EXISTS, (keep, keep_a)
    assert os.listdir(tmp_path / "keep") == [name]
    assert (tmp_path / "keep" / name).read_bytes() == old
    assert name in keep.stdout + keep.stderr, keep


# --- file allocation --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["none", "prealloc", "trunc", "falloc"])
async def test_file_allocation(nginx: NginxServer, tmp_path: Path, mode: str) -> None:
    name = unique_name(f"alloc-{mode}")
    data = serve_copy(nginx, name, 5_000_000)
    res = await run_cli(
        "-x4", "-s4", "-k1M", f"--file-allocation={mode}", "--no-file-allocation-limit=0",
        "-d", tmp_path, nginx.url(f"/{name}"), home=tmp_path / "h",
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / name).read_bytes() == data
    assert not (tmp_path / f"{name}.aria2").exists()


# --- -c without a control file -----------------------------------------------------------------


async def test_continue_truncated_file(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("cont")
    data = serve_copy(nginx, name, 5_000_000)
    url = nginx.url(f"/{name}")
    first = await run_cli("-d", tmp_path, url, home=tmp_path / "h1")
    assert first.returncode == 0, first
    cut = 2_500_000  # not on a block boundary
    with open(tmp_path / name, "r+b") as f:
        f.truncate(cut)
    requests_before = len(log_lines(nginx, f"/{name}"))
    res = await run_cli("-c", "-x2", "-s2", "-k1M", "-d", tmp_path, url, home=tmp_path / "h2")
    assert res.returncode == 0, res
    assert (tmp_path / name).read_bytes() == data
    assert not (tmp_path / f"{name[:-4]}.1.bin").exists()
    starts = _range_starts(nginx, f"/{name}")[requests_before:]
    # besides the probe from byte 0, the data is fetched from the cut (its 16 KiB block) on
    fetch = sorted(s for s in starts if s > 0)
    assert fetch and cut - 16384 < fetch[0] <= cut, starts
    assert all(s == 0 or s > cut - 16384 for s in starts), starts


async def test_continue_on_file_with_holes_restarts(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("holes")
    data = serve_copy(nginx, name, 4 * MiB)
    target = tmp_path / name
    with open(target, "wb") as f:  # real bytes for the first MiB, then a hole to full length
        f.write(data[:MiB])
        f.truncate(len(data))
    res = await run_cli("-c", "-d", tmp_path, nginx.url(f"/{name}"), home=tmp_path / "h")
    assert res.returncode == 0, res
    assert target.read_bytes() == data  # the hole was fetched, not trusted


# --- the control file ----------------------------------------------------------------------


async def test_control_file_during_download(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("ctl")
    size = 2 * MiB + 5000
    data = serve_copy(nginx, name, size)
    control = tmp_path / f"{name}.aria2"
    seen: list[cf.ControlFile] = []

    async def watch() -> None:
        await _wait_for(control.exists, what="control file")
        seen.append(cf.parse(control.read_bytes()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        res = await run_cli("-d", tmp_path, nginx.url(f"/rate/1024k/{name}"), home=tmp_path / "h")
    assert res.returncode == 0, res
    assert seen, "control file never appeared"
    parsed = seen[0]
    assert parsed.total_length == size
    assert parsed.piece_length == PIECE
    assert parsed.num_pieces == 3
    assert cf.completed_length(parsed) < size
    assert (tmp_path / name).read_bytes() == data
    assert not control.exists()  # removed after success


async def test_interrupted_download_resumes(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("intr")
    size = 3 * MiB
    data = serve_copy(nginx, name, size)
    target = tmp_path / "r.bin"
    control = tmp_path / "r.bin.aria2"
    out = tmp_path / "first.out"
    argv = [
        sys.executable,
        "-m",
        "trioaria",
        "-x2",
        "-s2",
        "-k1M",
        "-d",
        str(tmp_path),
        "-o",
        "r.bin",
    ]

    def progressed() -> bool:
        try:
            return cf.completed_length(cf.parse(control.read_bytes())) >= 256 * 1024
        except Exception:  # not there yet, or caught mid-replace
            return False

    env = child_env(tmp_path / "h0")
    (tmp_path / "h0").mkdir()
    with open(out, "wb") as sink:
        proc = await trio.lowlevel.open_process(
            [*argv, nginx.url(f"/rate/256k/{name}")], stdout=sink, stderr=sink, env=env
        )
        try:
            await _wait_for(progressed, timeout=30, what="saved progress")
            proc.send_signal(signal.SIGINT)
            with trio.fail_after(20):
                code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert code == ExitCode.IN_PROGRESS, out.read_text()
    saved = cf.parse(control.read_bytes())
    assert saved.total_length == size
    done = cf.completed_length(saved)
    assert 0 < done < size
    # the saved blocks really are on disk
    on_disk = target.read_bytes()
    assert on_disk[:16384] == data[:16384]
    before = len(log_lines(nginx, f"/{name}"))
    res = await run_cli(
        "-x2",
        "-s2",
        "-k1M",
        "-d",
        tmp_path,
        "-o",
        "r.bin",
        nginx.url(f"/{name}"),
        home=tmp_path / "h",
    )
    assert res.returncode == 0, res
    assert target.read_bytes() == data
    assert not control.exists()
    fetched = sum(
        line.body_bytes
        for line in log_lines(nginx, f"/{name}")[before:]
        if line.range != "bytes=0-"
    )
    assert fetched <= size - done + 2 * PIECE, (fetched, done)


async def test_control_file_total_length_mismatch_exit_8(
    nginx: NginxServer, tmp_path: Path
) -> None:
    name = unique_name("mismatch")
    data = serve_copy(nginx, name, MiB)
    (tmp_path / name).write_bytes(data[:1000])
    (tmp_path / f"{name}.aria2").write_bytes(_control_with_pieces(2 * MiB, set()))
    res = await run_cli("-d", tmp_path, nginx.url(f"/{name}"), home=tmp_path / "h")
    # aria2 1.36 reports errorCode=1 here; docs/decisions.md settles on 8 (CANNOT_RESUME)
    assert res.returncode == ExitCode.CANNOT_RESUME, res
    assert "length" in res.stdout + res.stderr, res
    assert (tmp_path / name).read_bytes() == data[:1000]  # not truncated


async def test_remote_modified_after_control_file(nginx: NginxServer, tmp_path: Path) -> None:
    name, older_name = unique_name("modified"), unique_name("unmodified")
    size = 3 * MiB
    data = os.urandom(size)
    now = time.time()
    nginx.add_file(name, data, mtime=now - 1000)
    nginx.add_file(older_name, data, mtime=now - 1000)
    stale = os.urandom(PIECE)  # what piece 0 held before the remote file changed
    cases = {  # directory: (served name, content of piece 0 on disk, control file mtime)
        "newer": (name, stale, now - 2000),
        "overwrite": (name, stale, now - 2000),
        "older": (older_name, data[:PIECE], now - 500),
    }
    for sub, (served, piece0, saved) in cases.items():
        d = tmp_path / sub
        d.mkdir()
        (d / served).write_bytes(piece0 + bytes(size - PIECE))
        (d / f"{served}.aria2").write_bytes(_control_with_pieces(size, {0}))
        os.utime(d / f"{served}.aria2", (saved, saved))
    newer, overwrite, older = await gather(
        lambda: run_cli("-d", tmp_path / "newer", nginx.url(f"/{name}"), home=tmp_path / "h1"),
        lambda: run_cli(
            "--allow-overwrite=true",
            "-d",
            tmp_path / "overwrite",
            nginx.url(f"/{name}"),
            home=tmp_path / "h2",
        ),
        lambda: run_cli(
            "-d", tmp_path / "older", nginx.url(f"/{older_name}"), home=tmp_path / "h3"
        ),
    )
    # remote Last-Modified later than our last save: exit 8 with a clear message, nothing lost
    assert newer.returncode == ExitCode.CANNOT_RESUME, newer
    assert "modified" in newer.stdout + newer.stderr, newer
    assert (tmp_path / "newer" / f"{name}.aria2").exists()
    assert (tmp_path / "newer" / name).read_bytes()[:PIECE] == stale
    # --allow-overwrite=true restarts from zero: the stale piece 0 is not kept
    assert overwrite.returncode == 0, overwrite
    assert (tmp_path / "overwrite" / name).read_bytes() == data
    # remote older than the save: a normal resume that does not fetch piece 0 again
    assert older.returncode == 0, older
    assert (tmp_path / "older" / older_name).read_bytes() == data
    starts = _range_starts(nginx, f"/{older_name}")
    assert all(s == 0 or s >= PIECE for s in starts) and any(s >= PIECE for s in starts), starts
