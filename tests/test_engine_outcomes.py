"""A download's outcome is its own error, with its own exit code, whatever nursery it was
raised in; options that decide how a download starts or ends are honoured (aria2 manual)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import trio

from tests.cli_util import run_cli
from tests.servers.fault import FaultServer
from trioaria.base.errors import ExitCode
from trioaria.base.stats import DownloadStatus
from trioaria.cli.options import Options
from trioaria.engine.group import RequestGroup

MB = 1 << 20


def _opts(tmp_path: Path, **extra: str) -> Options:
    base = {
        "dir": str(tmp_path),
        "split": "2",
        "max-connection-per-server": "2",
        "min-split-size": "1M",
        "retry-wait": "0",
    }
    base.update(extra)
    return Options.defaults().with_overrides(base)


async def test_a_failed_download_to_stdout_keeps_its_exit_code(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """-o -: a server closing mid-body with -m1 is exit 6, as without -o - (not a wrapped
    'ExceptionGroup' and exit 1)."""
    res = await run_cli(
        "-m1", "--summary-interval=0", "-o", "-", "-d", tmp_path / "d",
        fault_server.url("/drop/data.bin?after=1000"), home=tmp_path / "h", timeout=30,
    )  # fmt: skip
    assert "ExceptionGroup" not in res.stdout + res.stderr, res
    assert res.returncode == ExitCode.NETWORK_PROBLEM, res


async def test_max_file_not_found_reached_during_the_transfer_is_exit_4(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The probed mirror sends nothing yet, the second answers 404: with
    --max-file-not-found=1 the download ends with exit 4 (aria2 MAX_FILE_NOT_FOUND)."""
    fault_server.add_file("big.bin", random.Random(5).randbytes(4 * MB))
    group = RequestGroup(
        [fault_server.url("/stall/big.bin?after=0"), fault_server.url("/status/404")],
        _opts(tmp_path, **{"max-file-not-found": "1"}),
    )
    with trio.fail_after(10):
        await group.run()
    assert group.state is DownloadStatus.ERROR
    assert group.error is not None and "ExceptionGroup" not in str(group.error), group.error
    assert group.error.exit_code == ExitCode.MAX_FILE_NOT_FOUND, group.error


def _stale_complete_file(tmp_path: Path, size: int) -> Path:
    """A zero-filled f.bin whose control file claims every piece done."""
    from trioaria.storage import control_file as cf

    target = tmp_path / "f.bin"
    target.write_bytes(b"\0" * size)
    bits = (1 << (size // MB)) - 1
    bitfield = (bits << (8 - size // MB)).to_bytes(1, "big")
    Path(str(target) + ".aria2").write_bytes(
        cf.serialize(cf.ControlFile(piece_length=MB, total_length=size, bitfield=bitfield))
    )
    return target


async def test_remove_control_file_with_allow_overwrite_starts_from_scratch(
    tmp_path: Path,
) -> None:
    """aria2: --remove-control-file removes the control file before the download; with
    --allow-overwrite=true the download always starts from scratch."""
    from trioaria.demo import serve_bytes

    data = random.Random(7).randbytes(2 * MB)
    port = serve_bytes(data)
    target = _stale_complete_file(tmp_path, len(data))
    group = RequestGroup(
        [f"http://127.0.0.1:{port}/f.bin"],
        _opts(tmp_path, **{"remove-control-file": "true", "allow-overwrite": "true"}),
    )
    with trio.fail_after(10):
        await group.run()
    assert group.state is DownloadStatus.COMPLETE, group.error
    assert target.read_bytes() == data
    assert not Path(str(target) + ".aria2").exists()


async def test_remove_control_file_without_allow_overwrite_renames(tmp_path: Path) -> None:
    """Without --allow-overwrite the file left without its control file is not trusted: the
    download is renamed (f.1.bin), as for any existing file."""
    from trioaria.demo import serve_bytes

    data = random.Random(8).randbytes(2 * MB)
    port = serve_bytes(data)
    target = _stale_complete_file(tmp_path, len(data))
    group = RequestGroup(
        [f"http://127.0.0.1:{port}/f.bin"], _opts(tmp_path, **{"remove-control-file": "true"})
    )
    with trio.fail_after(10):
        await group.run()
    assert group.state is DownloadStatus.COMPLETE, group.error
    assert (tmp_path / "f.1.bin").read_bytes() == data
    assert target.read_bytes() == b"\0" * len(data)  # the user's file is left alone


async def test_force_sequential_ignores_out(fault_server: FaultServer, tmp_path: Path) -> None:
    """aria2 manual, --out: "When the --force-sequential option is used, this option is
    ignored": each URI keeps its own name instead of all of them writing x.bin."""
    fault_server.add_file("a.bin", random.Random(3).randbytes(50_000))
    fault_server.add_file("b.bin", random.Random(4).randbytes(50_000))
    out = tmp_path / "d"
    res = await run_cli(
        "-Z", "-o", "x.bin", "--summary-interval=0", "-d", out,
        fault_server.url("/ok/a.bin"), fault_server.url("/ok/b.bin"),
        home=tmp_path / "h", timeout=30,
    )  # fmt: skip
    assert res.returncode == 0, res
    assert sorted(p.name for p in out.iterdir()) == ["a.bin", "b.bin"], res


async def _two_of_one_name(
    tmp_path: Path, a: bytes, b: bytes, **extra: str
) -> tuple[Any, RequestGroup, RequestGroup]:
    """Two downloads of different files both named f.bin, run at once (-j2) to their end."""
    from trioaria.demo import serve_bytes
    from trioaria.engine.queue import DownloadEngine

    pa, pb = serve_bytes(a, rate=4 * MB), serve_bytes(b, rate=4 * MB)
    opts = _opts(tmp_path, **{"max-concurrent-downloads": "2", **extra})
    engine = DownloadEngine(opts)
    ga = RequestGroup([f"http://127.0.0.1:{pa}/f.bin"], opts)
    gb = RequestGroup([f"http://127.0.0.1:{pb}/f.bin"], opts)
    engine.add_many([ga, gb])
    with trio.fail_after(15):
        await engine.run()
    return engine, ga, gb


async def test_two_running_downloads_of_one_name_never_share_its_file(tmp_path: Path) -> None:
    """-j2, two different files both named f.bin (two -i lines, two addUri): aria2 renames
    the second download (isSameFileBeingDownloaded: f.1.bin), never both into f.bin."""
    a = random.Random(1).randbytes(3 * MB)
    b = random.Random(2).randbytes(3 * MB)
    engine, ga, gb = await _two_of_one_name(tmp_path, a, b)
    outcome = [(g.state, str(g.error), g.path) for g in (ga, gb)]
    assert all(g.state is DownloadStatus.COMPLETE for g in (ga, gb)), outcome
    assert sorted(Path(g.path).name for g in (ga, gb)) == ["f.1.bin", "f.bin"], outcome
    assert Path(ga.path).read_bytes() == a and Path(gb.path).read_bytes() == b
    assert not engine.paths_in_use._owners  # every claim given back


async def test_a_running_downloads_file_is_not_taken_without_renaming(tmp_path: Path) -> None:
    """--auto-file-renaming=false: the second download of a running download's file fails
    with exit 13 (aria2 tryAutoFileRenaming) and the first completes intact."""
    a = random.Random(1).randbytes(3 * MB)
    _, ga, gb = await _two_of_one_name(tmp_path, a, a[::-1], **{"auto-file-renaming": "false"})
    states = sorted((g.state.value, g.error.exit_code if g.error else 0) for g in (ga, gb))
    assert states == [("complete", 0), ("error", ExitCode.FILE_ALREADY_EXISTS)], states
    assert (tmp_path / "f.bin").read_bytes() in (a, a[::-1])


async def test_a_torrent_whose_file_another_download_writes_is_refused(tmp_path: Path) -> None:
    """aria2 RequestGroup::createInitialCommand: a torrent whose file is being downloaded by
    another running download fails with exit 11 (DUPLICATE_DOWNLOAD), nothing written."""
    from tests.bt.swarm_helpers import make_torrent
    from trioaria.engine.factory import GroupFactory
    from trioaria.engine.paths_in_use import PathsInUse

    src = tmp_path / "src"
    src.mkdir()
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(make_torrent(src, [("t.bin", b"x" * 70_000)], name="t.bin"))
    out = tmp_path / "out"
    opts = _opts(
        out, **{"enable-dht": "false", "bt-enable-lpd": "false", "seed-time": "0"}
    )  # fmt: skip
    (group,) = GroupFactory().make_groups([str(torrent)], opts)
    group.paths_in_use = PathsInUse()
    group.paths_in_use.claim([str(out / "t.bin")], "another-gid")
    with trio.fail_after(10):
        await group.run()
    assert group.error is not None and group.error.exit_code == ExitCode.DUPLICATE_DOWNLOAD
    assert not (out / "t.bin").exists()


async def test_force_save_keeps_the_control_file_of_a_completed_download(
    tmp_path: Path,
) -> None:
    """aria2 removes a finished download's control file only without --force-save; with it
    the control file stays (every piece done), so running the saved entry again reports
    'already completed' instead of downloading a second copy (f.1.bin)."""
    from trioaria.demo import serve_bytes
    from trioaria.storage import control_file as cf

    data = random.Random(9).randbytes(2 * MB)
    port = serve_bytes(data)
    opts = _opts(tmp_path, **{"force-save": "true"})
    for _ in range(2):
        group = RequestGroup([f"http://127.0.0.1:{port}/f.bin"], opts)
        with trio.fail_after(10):
            await group.run()
        assert group.state is DownloadStatus.COMPLETE, group.error
        control = tmp_path / "f.bin.aria2"
        assert cf.completed_length(cf.parse(control.read_bytes())) == len(data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin", "f.bin.aria2"]
    assert (tmp_path / "f.bin").read_bytes() == data


def _saved_first_piece(tmp_path: Path, data: bytes) -> None:
    """r.bin with its first piece written and a control file saying so."""
    from trioaria.storage import control_file as cf

    (tmp_path / "r.bin").write_bytes(data[:MB] + bytes(len(data) - MB))
    (tmp_path / "r.bin.aria2").write_bytes(
        cf.serialize(cf.ControlFile(piece_length=MB, total_length=len(data), bitfield=b"\x80"))
    )


async def test_always_resume_gives_up_a_server_that_cannot_resume(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """aria2 --always-resume=true (the default): saved progress and a server that ignores
    Range: exit 8, the control file and the saved piece kept (not a silent restart)."""
    data = random.Random(11).randbytes(3 * MB)
    fault_server.add_file("r.bin", data)
    _saved_first_piece(tmp_path, data)
    res = await run_cli(
        "--max-tries=2", "--retry-wait=0", "-d", tmp_path, fault_server.url("/norange/r.bin"),
        home=tmp_path / "h", timeout=30,
    )  # fmt: skip
    assert res.returncode == ExitCode.CANNOT_RESUME, res
    assert (tmp_path / "r.bin.aria2").exists()
    assert (tmp_path / "r.bin").read_bytes()[:MB] == data[:MB]


async def test_without_always_resume_the_download_starts_over(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """--always-resume=false: once every source failed to resume (max-resume-failure-tries
    0), the download starts over from byte 0 and completes."""
    data = random.Random(12).randbytes(3 * MB)
    fault_server.add_file("r.bin", data)
    _saved_first_piece(tmp_path, data)
    res = await run_cli(
        "--always-resume=false", "--retry-wait=0", "-d", tmp_path,
        fault_server.url("/norange/r.bin"), home=tmp_path / "h", timeout=30,
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "r.bin").read_bytes() == data
    assert not (tmp_path / "r.bin.aria2").exists()


async def test_max_resume_failure_tries_counts_the_sources_that_failed(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """--always-resume=false --max-resume-failure-tries=1 with two mirrors that ignore Range:
    the first failure already restarts the download (aria2: the count reached N)."""
    data = random.Random(13).randbytes(3 * MB)
    fault_server.add_file("r.bin", data)
    fault_server.add_file("s.bin", data)
    _saved_first_piece(tmp_path, data)
    group = RequestGroup(
        [fault_server.url("/norange/r.bin"), fault_server.url("/norange/s.bin")],
        _opts(
            tmp_path, **{"always-resume": "false", "max-resume-failure-tries": "1", "out": "r.bin"}
        ),
    )
    with trio.fail_after(20):
        await group.run()
    assert group.state is DownloadStatus.COMPLETE, group.error
    assert (tmp_path / "r.bin").read_bytes() == data


async def test_a_stop_does_not_wait_for_a_whole_checksum_pass(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """-V --checksum over an existing 1 GiB file: the hash goes in steps, so a stop takes
    effect within one step instead of after the whole pass (aria2 checks in small steps on
    its event loop too)."""
    from trioaria.engine.queue import DownloadEngine

    size = 1 << 30
    with open(tmp_path / "data.bin", "wb") as f:
        f.truncate(size)  # sparse: reading it costs CPU, not disk
    opts = _opts(
        tmp_path, **{"check-integrity": "true", "checksum": "sha-256=" + "00" * 32, "split": "1"}
    )
    engine = DownloadEngine(opts)
    group = RequestGroup([fault_server.url(f"/huge/data.bin?len={size}")], opts)
    engine.add(group)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine.run)
        with trio.fail_after(10):
            while group.phase != "Checksum":
                await trio.sleep(0.005)
        await trio.sleep(0.05)
        assert group.phase_done < size
        start = trio.current_time()
        engine.shutdown(force=True)
        with trio.fail_after(30):
            while engine.active:
                await trio.sleep(0.01)
        elapsed = trio.current_time() - start
    assert elapsed < 0.5, f"the stop took {elapsed:.2f} s (the checksum pass ran to its end)"


async def test_a_group_whose_task_starts_after_a_shutdown_never_runs(tmp_path: Path) -> None:
    """The engine starts a group's task, then a Ctrl-C arrives before the task runs: the
    group has no cancel scope yet, so it must see the shutdown itself and stay queued
    (unfinished, exit 7) instead of downloading to its end."""
    from trioaria.engine.queue import DownloadEngine

    engine = DownloadEngine(_opts(tmp_path))
    group = RequestGroup(["http://127.0.0.1:9/never.bin"], engine.options)
    engine.active.append(group)
    engine.shutdown()
    await engine._run_group(group)
    assert group.state is DownloadStatus.WAITING and engine.waiting == [group]
    assert not engine.active and engine.exit_code() == ExitCode.IN_PROGRESS


async def test_remove_control_file_never_deletes_a_running_downloads_control_file(
    tmp_path: Path,
) -> None:
    """aria2 checks isSameFileBeingDownloaded before it honours --remove-control-file: B (same
    name, --remove-control-file) is renamed and leaves running download A's control file."""
    from trioaria.demo import serve_bytes
    from trioaria.engine.queue import DownloadEngine

    a = random.Random(1).randbytes(8 * MB)
    b = random.Random(2).randbytes(1 * MB)
    pa, pb = serve_bytes(a, rate=1 * MB), serve_bytes(b, rate=1 * MB)
    opts = _opts(tmp_path, **{"max-concurrent-downloads": "2", "split": "1"})
    engine = DownloadEngine(opts)
    ga = RequestGroup([f"http://127.0.0.1:{pa}/f.bin"], opts)
    gb = RequestGroup(
        [f"http://127.0.0.1:{pb}/f.bin"], opts.with_overrides({"remove-control-file": "true"})
    )
    control = tmp_path / "f.bin.aria2"
    engine.add(ga)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine.run)
        with trio.fail_after(10):
            while not control.exists():
                await trio.sleep(0.01)
            engine.add(gb)
            while not gb.path:
                await trio.sleep(0.01)
        a_running = ga.state is DownloadStatus.ACTIVE
        still_there = control.exists()
        engine.shutdown(force=True)
    assert a_running and Path(gb.path).name == "f.1.bin"
    assert still_there, "B's --remove-control-file deleted running download A's control file"


def test_a_reader_of_stdout_that_went_away_does_not_stop_the_download(
    tmp_path: Path,
) -> None:
    """aria2 ignores SIGPIPE while it downloads, so ``aria2c URI | head -c 10`` still
    completes the file: the console goes quiet, the download goes on."""
    import os
    import subprocess
    import sys

    from tests.cli_util import child_env
    from trioaria.demo import serve_bytes

    data = random.Random(21).randbytes(2 * MB)
    port = serve_bytes(data, rate=1 * MB)
    out = tmp_path / "out"
    r, w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trioaria", "--no-conf", "--summary-interval=1", "-d", str(out),
         f"http://127.0.0.1:{port}/f.bin"],
        stdout=w, stderr=subprocess.PIPE, cwd=str(tmp_path), env=child_env(tmp_path),
    )  # fmt: skip
    os.close(w)
    try:
        os.read(r, 10)  # the reader takes a few bytes, then goes away (| head -c 10)
    finally:
        os.close(r)
    err = proc.communicate(timeout=30)[1].decode(errors="replace")
    assert "Traceback" not in err, err[-800:]
    assert proc.returncode == 0, (proc.returncode, err[-800:])
    assert (out / "f.bin").read_bytes() == data
