"""What users and scripts see, as aria2 shows it: the "will resume" note after any unfinished
result, the stop hook (not the error hook) for --bt-stop-timeout, a console that cannot encode
a name still printing the results, and RPC option changes that take effect (upload limits,
--save-session) and --save-not-found covering --max-file-not-found."""

from __future__ import annotations

import base64
import sys
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

import trio

from tests.bt.swarm_helpers import make_torrent
from tests.cli_util import run_cli, run_process
from tests.e2e_util import wait_for
from tests.rpc.rpc_util import running_daemon
from tests.servers.fault import FaultServer

GID = "0123456789abcdef"
HINT = "will resume download if the transfer is restarted."


# --- the resume note after a failed download ------------------------------------------------


async def test_resume_hint_after_an_error(fault_server: FaultServer, tmp_path: Path) -> None:
    """aria2c (MultiUrlRequestInfo::getResult) prints the hint whenever not every download
    completed (an ERR counts), not only for exit 7; checked against aria2c 1.36 on a 404."""
    with trio.fail_after(30):
        res = await run_cli(
            "--no-conf", "-d", tmp_path / "d", "--max-tries=1",
            fault_server.url("/ok/missing.bin"), home=tmp_path / "h",
        )  # fmt: skip
    assert res.returncode == 3, res
    assert "(ERR):error occurred." in res.stdout, res
    assert HINT in res.stdout, res


# --- --bt-stop-timeout runs --on-download-stop ----------------------------------------------


def _hook(tmp_path: Path, name: str) -> tuple[Path, Path]:
    log = tmp_path / "hooks.log"
    script = tmp_path / f"{name}.py"
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        f"    f.write({name!r} + ' ' + ' '.join(sys.argv[1:]) + '\\n')\n"
    )
    script.chmod(0o755)
    return script, log


async def test_bt_stop_timeout_runs_stop_hook_not_error_hook(tmp_path: Path) -> None:
    """aria2's executeStopHook: a download stopped by --bt-stop-timeout has result
    IN_PROGRESS, so --on-download-stop runs and --on-download-error does not (aria2c 1.36
    calls stop.sh for the same command line)."""
    seed = tmp_path / "seed"
    seed.mkdir()
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(make_torrent(seed, [("a.bin", b"a" * 70_000)], name="a.bin"))
    err, log = _hook(tmp_path, "error")
    stop, _ = _hook(tmp_path, "stop")
    with trio.fail_after(30):
        res = await run_cli(
            "--no-conf", f"--on-download-error={err}", f"--on-download-stop={stop}",
            f"--gid={GID}", "--enable-dht=false", "--bt-stop-timeout=1",
            "-d", tmp_path / "d", torrent, home=tmp_path / "h",
        )  # fmt: skip
    assert res.returncode == 7, res
    assert wait_for(lambda: log.exists() and log.read_text().strip() != "", 10)
    lines = log.read_text().splitlines()
    assert [x.split()[0] for x in lines] == ["stop"], lines


# --- a file name the console cannot encode --------------------------------


async def test_unencodable_name_does_not_blackhole_stdout(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A server-chosen name ('€.bin' via Content-Disposition) on a console whose encoding
    cannot show it (a Latin-1 locale): the name is shown escaped and the console goes on,
    the results table included (it is not taken for a reader that went away)."""
    value = b"attachment; filename*=UTF-8''%E2%82%AC.bin"
    url = fault_server.url("/cd/data.bin?v=" + urllib.parse.quote_from_bytes(value, safe=""))
    with trio.fail_after(30):
        res = await run_process(
            [sys.executable, "-m", "trioaria", "--no-conf", "-d", str(tmp_path / "d"), url],
            home=tmp_path / "h",
            env={"PYTHONIOENCODING": "latin-1"},
        )
    assert res.returncode == 0, res
    assert (tmp_path / "d" / "€.bin").exists()
    assert "Download Results:" in res.stdout, res


# --- changeOption max-upload-limit is applied ----------------------------


async def test_change_option_max_upload_limit_is_applied(tmp_path: Path) -> None:
    """aria2 changeOption() calls group->setMaxUploadSpeedLimit(): the torrent's upload
    bucket takes the new rate at once."""
    seed = tmp_path / "seed"
    seed.mkdir()
    torrent = make_torrent(seed, [("t.bin", b"t" * 70_000)], name="t.bin")
    async with running_daemon(tmp_path / "dl") as d:
        gid = await d.result(
            "aria2.addTorrent", base64.b64encode(torrent).decode(), [], {"pause": "true"}
        )
        assert await d.result("aria2.changeOption", gid, {"max-upload-limit": "10K"}) == "OK"
        assert (await d.result("aria2.getOption", gid))["max-upload-limit"] == "10240"
        group = d.engine.find(gid)
        assert group.upload_limit.rate == 10240


# --- --save-not-found=false and --max-file-not-found --------------------


def test_save_not_found_covers_max_file_not_found() -> None:
    """aria2 SessionSerializer: RESOURCE_NOT_FOUND *and* MAX_FILE_NOT_FOUND (exit 4) are
    dropped with --save-not-found=false."""
    from trioaria.base.errors import ExitCode, TrioariaError
    from trioaria.base.stats import DownloadStatus
    from trioaria.cli.options import Options
    from trioaria.rpc.session_file import session_file_text

    opts = Options.defaults().with_overrides({"save-not-found": "false"})
    group = SimpleNamespace(
        uris=["http://example.org/x.bin"],
        gid=GID,
        state=DownloadStatus.ERROR,
        options=opts,
        error=TrioariaError("not found", exit_code=ExitCode.MAX_FILE_NOT_FOUND),
    )
    engine = SimpleNamespace(active=[], waiting=[], stopped=[group])
    assert GID not in session_file_text(engine)


# --- changeGlobalOption save-session ------------


async def test_change_global_option_save_session_is_honoured_at_exit(tmp_path: Path) -> None:
    """aria2 writes the session at exit to the *current* --save-session (changeGlobalOption
    merges into the same Option MultiUrlRequestInfo::getResult reads); the manual lists
    save-session as changeable: a daemon told over RPC where to save its session keeps its
    queued downloads at shutdown."""
    from tests.rpc.test_session import _daemon

    session = tmp_path / "late-session.txt"
    child, c = _daemon(tmp_path, "late")
    try:
        with trio.fail_after(30):
            await c.ready()
            gid = await c.result("aria2.addUri", ["http://127.0.0.1:9/x.bin"], {"pause": "true"})
            assert (
                await c.result("aria2.changeGlobalOption", {"save-session": str(session)}) == "OK"
            )
            assert (await c.result("aria2.getGlobalOption"))["save-session"] == str(session)
            await c.result("aria2.shutdown")
            assert child.wait(20) is not None
    finally:
        child.kill()
    assert session.exists(), child.describe()
    assert f" gid={gid}" in session.read_text()


async def test_change_global_option_max_overall_upload_limit_is_applied(tmp_path: Path) -> None:
    from trioaria.engine import torrent

    async with running_daemon(tmp_path / "dl") as d:
        try:
            opts = {"max-overall-upload-limit": "20K"}
            assert await d.result("aria2.changeGlobalOption", opts) == "OK"
            assert torrent._overall_upload_limit(0).rate == 20 * 1024
        finally:
            torrent.set_overall_upload_rate(0)
    assert torrent._overall_upload_limit(0).rate == 0
