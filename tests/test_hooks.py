"""Event hooks (trioaria.engine.hooks): ``--on-download-*`` and ``--on-bt-download-complete``
run ``COMMAND GID NUM_FILES FIRST_PATH`` as aria2 does, without ever holding up a transfer."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import trio

from tests.bt.swarm_helpers import make_torrent
from tests.cli_util import run_cli
from tests.e2e_util import wait_for
from tests.servers.fault import FaultServer
from trioaria.engine.hooks import hook_for

GID = "0123456789abcdef"


def _hook(tmp_path: Path, name: str, *, block: bool = False) -> tuple[Path, Path]:
    """A hook program appending ``name ARGS`` to a log; a blocking one then waits for a
    release file (at most 30 s) and appends ``name done``."""
    log = tmp_path / "hooks.log"
    script = tmp_path / f"{name}.py"
    release = tmp_path / "release"
    body = [
        f"#!{sys.executable}",
        "import os, sys, time",
        f"log = {str(log)!r}",
        "with open(log, 'a') as f:",
        f"    f.write({name!r} + ' ' + ' '.join(sys.argv[1:]) + '\\n')",
    ]
    if block:
        body += [
            # hand the CLI's stdout/stderr pipes back, or the test's run_cli would wait for
            # this hook to end before it sees the CLI's exit
            "null = os.open(os.devnull, os.O_WRONLY)",
            "os.dup2(null, 1)",
            "os.dup2(null, 2)",
            "deadline = time.monotonic() + 30",
            f"while not os.path.exists({str(release)!r}) and time.monotonic() < deadline:",
            "    time.sleep(0.05)",
            "with open(log, 'a') as f:",
            f"    f.write({name!r} + ' done\\n')",
        ]
    script.write_text("\n".join(body) + "\n")
    script.chmod(0o755)
    return script, log


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


async def test_slow_hook_does_not_stall_the_download(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """The start hook blocks until released; the download (and the run) completes while the
    hook's log shows it still running, and the complete hook gets aria2's arguments."""
    slow, log = _hook(tmp_path, "start", block=True)
    done, _ = _hook(tmp_path, "complete")
    out = tmp_path / "d"
    try:
        res = await run_cli(
            f"--on-download-start={slow}", f"--on-download-complete={done}", f"--gid={GID}",
            "-d", out, fault_server.url("/ok/data.bin"), home=tmp_path / "h",
        )  # fmt: skip
        assert res.returncode == 0, res
        assert (out / "data.bin").read_bytes() == fault_server.files["data.bin"]
        assert wait_for(lambda: any(x.startswith("complete") for x in _lines(log)), 30)
        lines = _lines(log)
        assert f"start {GID} 1 {out / 'data.bin'}" in lines
        assert f"complete {GID} 1 {out / 'data.bin'}" in lines
        assert "start done" not in lines  # the start hook is still running
    finally:
        (tmp_path / "release").touch()
    assert wait_for(lambda: "start done" in _lines(log), 30)


async def test_error_hook_and_stop_fallback(fault_server: FaultServer, tmp_path: Path) -> None:
    err, log = _hook(tmp_path, "error")
    stop, _ = _hook(tmp_path, "stop")
    url = fault_server.url("/ok/missing.bin")
    res = await run_cli(
        f"--on-download-error={err}", f"--on-download-stop={stop}", f"--gid={GID}",
        "-d", tmp_path / "d", "--max-tries=1", url, home=tmp_path / "h1",
    )  # fmt: skip
    assert res.returncode == 3, res
    # without --on-download-error, --on-download-stop handles the error (aria2)
    res = await run_cli(
        f"--on-download-stop={stop}", "--gid=fedcba9876543210",
        "-d", tmp_path / "d", "--max-tries=1", url, home=tmp_path / "h2",
    )  # fmt: skip
    assert res.returncode == 3, res
    assert wait_for(lambda: len(_lines(log)) >= 2, 30)
    lines = _lines(log)
    assert f"error {GID} 1 {tmp_path / 'd' / 'missing.bin'}" in lines
    assert any(x.startswith("stop fedcba9876543210 ") for x in lines)
    assert not any(x.startswith(f"stop {GID}") for x in lines)  # error hook took precedence


async def test_bt_complete_hook_after_hash_check(tmp_path: Path) -> None:
    """A torrent whose data is already there: -V finds it complete, and
    --on-bt-download-complete runs before (zero) seeding, then --on-download-complete."""
    data = tmp_path / "data"
    data.mkdir()
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(
        make_torrent(data, [("a.bin", os.urandom(70000)), ("b.bin", b"x" * 5000)], name="pair")
    )
    bt, log = _hook(tmp_path, "bt")
    done, _ = _hook(tmp_path, "complete")
    res = await run_cli(
        f"--on-bt-download-complete={bt}", f"--on-download-complete={done}", f"--gid={GID}",
        "-V", "--seed-time=0", "--enable-dht=false", "-d", data, torrent, home=tmp_path / "h",
    )  # fmt: skip
    assert res.returncode == 0, res
    assert wait_for(lambda: len(_lines(log)) >= 2, 30)
    first = str(data / "pair" / "a.bin")
    assert sorted(_lines(log)) == [f"bt {GID} 2 {first}", f"complete {GID} 2 {first}"]


@pytest.mark.parametrize(
    ("event", "options", "expected"),
    [
        ("start", {"on-download-start": "s"}, "s"),
        ("pause", {"on-download-pause": "p"}, "p"),
        ("stop", {"on-download-stop": "x", "on-download-complete": "c"}, "x"),
        ("complete", {"on-download-stop": "x", "on-download-complete": "c"}, "c"),
        ("complete", {"on-download-stop": "x"}, "x"),
        ("error", {"on-download-stop": "x", "on-download-error": "e"}, "e"),
        ("error", {"on-download-stop": "x"}, "x"),
        ("error", {"on-download-complete": "c"}, None),
        ("bt-complete", {"on-bt-download-complete": "b", "on-download-complete": "c"}, "b"),
        ("bt-complete", {"on-download-complete": "c"}, None),
        ("start", {}, None),
    ],
)
def test_which_hook(event: str, options: dict[str, str], expected: str | None) -> None:
    assert hook_for(event, options.get) == expected


async def test_pause_hook_in_process(fault_server: FaultServer, tmp_path: Path) -> None:
    """Pausing an active download (what RPC aria2.pause does) runs --on-download-pause."""
    from trioaria.base.stats import DownloadStatus
    from trioaria.cli.options import Options
    from trioaria.engine.group import RequestGroup
    from trioaria.engine.queue import DownloadEngine

    pause, log = _hook(tmp_path, "pause")
    opts = Options.defaults().with_overrides(
        {"dir": str(tmp_path / "d"), "on-download-pause": str(pause), "gid": GID}
    )
    engine = DownloadEngine(opts)
    group = RequestGroup([fault_server.url("/stall/data.bin?after=1000")], opts, gid=GID)
    engine.add(group)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine.run)
        with trio.fail_after(30):
            while not (group.state is DownloadStatus.ACTIVE and group.path):
                await trio.sleep(0.01)  # bounded poll: the group has no "probed" event
        assert engine.pause(group)
    with trio.fail_after(30):
        while not _lines(log):
            await trio.sleep(0.02)  # the hook is another process: poll its log, bounded
    assert _lines(log) == [f"pause {GID} 1 {tmp_path / 'd' / 'data.bin'}"]


async def test_stop_hook_at_shutdown(fault_server: FaultServer, tmp_path: Path) -> None:
    """A download left unfinished by a shutdown runs --on-download-stop (aria2's
    executeStopHook for IN_PROGRESS), not --on-download-error."""
    from trioaria.base.stats import DownloadStatus
    from trioaria.cli.options import Options
    from trioaria.engine.group import RequestGroup
    from trioaria.engine.queue import DownloadEngine

    stop, log = _hook(tmp_path, "stop")
    err, _ = _hook(tmp_path, "error")
    opts = Options.defaults().with_overrides(
        {"dir": str(tmp_path / "d"), "on-download-stop": str(stop), "on-download-error": str(err)}
    )
    engine = DownloadEngine(opts)
    group = RequestGroup([fault_server.url("/stall/data.bin?after=1000")], opts, gid=GID)
    engine.add(group)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine.run)
        with trio.fail_after(30):
            while not (group.state is DownloadStatus.ACTIVE and group.path):
                await trio.sleep(0.01)  # bounded poll: the group has no "probed" event
        engine.shutdown()
    with trio.fail_after(30):
        while not _lines(log):
            await trio.sleep(0.02)  # the hook is another process: poll its log, bounded
    assert _lines(log) == [f"stop {GID} 1 {tmp_path / 'd' / 'data.bin'}"]
