"""End-to-end tests of what the CLI reads: aria2.conf lookup, ``-i`` files, ``-P``, ``--dry-run``,
``--deferred-input``, ``--stop-with-process``, ``-l`` log files, ``-h`` and ``-v``.

Every test runs the real CLI in a subprocess with its own temporary ``HOME`` against the
session's nginx (``tests/servers/nginx.py``).  Where aria2c's behaviour is the reference (which
URIs become downloads, exit statuses of configuration errors), aria2c 1.36 runs the same
command in the same way and the results are compared.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli_util import (
    ARIA2C,
    CliResult,
    child_env,
    gather,
    log_lines,
    run_cli,
    run_process,
    serve_copy,
    unique_name,
)
from tests.e2e_util import wait_for
from tests.servers.nginx import NginxServer
from trioaria.base.errors import ExitCode
from trioaria.cli.app import enabled_features
from trioaria.cli.option_table import IMPLEMENTED, OPTIONS

TROIARIA = [sys.executable, "-m", "trioaria"]


async def _run(
    argv: list[str],
    *,
    home: Path,
    env: dict[str, str] | None = None,
    stdin: bytes = b"",
    timeout: float = 60,
) -> CliResult:
    """Run ``argv`` in ``home`` with ``HOME=home`` plus ``env`` (conf files are *not* disabled)."""
    return await run_process(argv, home=home, env=env, stdin=stdin, timeout=timeout)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".txt")
    }


# --- aria2.conf ---------------------------------------------------------------------------


async def test_conf_file_lookup_home_xdg_conf_path_no_conf(
    nginx: NginxServer, tmp_path: Path
) -> None:
    name = unique_name("conf")
    data = serve_copy(nginx, name, 100_000)
    url = nginx.url(f"/{name}")

    def conf(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    both, xdg, dotconfig, explicit, no_conf, argv_wins = (
        tmp_path / n for n in ("both", "xdg", "dotconfig", "explicit", "noconf", "argv")
    )
    # $HOME/.aria2/aria2.conf wins over $XDG_CONFIG_HOME/aria2/aria2.conf; ${HOME} is expanded.
    conf(both / ".aria2" / "aria2.conf", "# comment\n out = home.bin \ndir=${HOME}/dl\n")
    conf(both / "x" / "aria2" / "aria2.conf", "out=xdg.bin\n")
    conf(xdg / "x" / "aria2" / "aria2.conf", "out=xdg.bin\ndir=${HOME}/dl\n")
    conf(dotconfig / ".config" / "aria2" / "aria2.conf", "out=dotconfig.bin\ndir=${HOME}/dl\n")
    conf(explicit / ".aria2" / "aria2.conf", "out=home.bin\n")
    conf(explicit / "my.conf", "out=explicit.bin\ndir=${HOME}/dl\n")
    conf(no_conf / ".aria2" / "aria2.conf", "out=home.bin\n")
    conf(argv_wins / ".aria2" / "aria2.conf", "out=home.bin\ndir=${HOME}/dl\n")
    results = await gather(
        lambda: _run([*TROIARIA, url], home=both, env={"XDG_CONFIG_HOME": str(both / "x")}),
        lambda: _run([*TROIARIA, url], home=xdg, env={"XDG_CONFIG_HOME": str(xdg / "x")}),
        lambda: _run([*TROIARIA, url], home=dotconfig),
        lambda: _run([*TROIARIA, "--conf-path=${HOME}/my.conf", url], home=explicit),
        lambda: _run([*TROIARIA, "--no-conf", "-d", "dl", url], home=no_conf),
        lambda: _run([*TROIARIA, "-o", "argv.bin", url], home=argv_wins),
    )
    for res in results:
        assert res.returncode == 0, res
    assert _files(both / "dl") == {"home.bin": data}
    assert _files(xdg / "dl") == {"xdg.bin": data}
    assert _files(dotconfig / "dl") == {"dotconfig.bin": data}
    assert _files(explicit / "dl") == {"explicit.bin": data}
    assert _files(no_conf / "dl") == {name: data}
    assert _files(argv_wins / "dl") == {"argv.bin": data}


async def test_conf_errors_exit_like_aria2c(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("split=0\n")
    url = "http://127.0.0.1:9/never.bin"
    ours_missing, theirs_missing, ours_bad, theirs_bad, ours_ignored = await gather(
        lambda: _run([*TROIARIA, "--conf-path=/nonexistent/a.conf", url], home=tmp_path / "h1"),
        lambda: _run([ARIA2C, "--conf-path=/nonexistent/a.conf", url], home=tmp_path / "h2"),
        lambda: _run([*TROIARIA, f"--conf-path={bad}", url], home=tmp_path / "h3"),
        lambda: _run([ARIA2C, f"--conf-path={bad}", url], home=tmp_path / "h4"),
        # --no-conf wins over --conf-path, as in aria2c: the download is attempted (refused: 1)
        lambda: _run([*TROIARIA, "--no-conf", f"--conf-path={bad}", url], home=tmp_path / "h5"),
    )
    assert ours_missing.returncode == theirs_missing.returncode == 1, (ours_missing, theirs_missing)
    assert "Configuration file /nonexistent/a.conf is not found." in ours_missing.stderr
    assert ours_bad.returncode == theirs_bad.returncode == 28, (ours_bad, theirs_bad)
    assert f"Parse error in {bad}" in ours_bad.stderr and "--split" in ours_bad.stderr, ours_bad
    assert ours_ignored.returncode == ExitCode.UNKNOWN_ERROR, ours_ignored
    assert "Parse error" not in ours_ignored.stderr, ours_ignored


# --- -i input files -------------------------------------------------------------------------


async def test_input_file_entries_match_aria2c(nginx: NginxServer, tmp_path: Path) -> None:
    """TAB mirrors, per-entry dir=/out=, comments; command-line URIs and -o are not used."""
    a, b, c = unique_name("in-a"), unique_name("in-b"), unique_name("in-c")
    data_a, data_b, data_c = (serve_copy(nginx, n, 150_000) for n in (a, b, c))
    nginx.add_file(f"mirror-{a}", data_a)
    text = (
        "# downloads\n"
        f"{nginx.url(f'/{a}')}\t{nginx.url6(f'/mirror-{a}')}\n"
        "  dir=sub\n"
        "\n"
        "  # still entry one\n"
        "\tout=renamed-a.bin\n"
        f"{nginx.url(f'/{b}')}\n"
        "  split=2\n"
    )
    for home in ("ours", "theirs"):
        (tmp_path / home).mkdir()
        (tmp_path / home / "list.txt").write_text(text)
    extra = ["-o", "global-out.bin", nginx.url(f"/{c}")]
    ours, theirs = await gather(
        lambda: _run([*TROIARIA, "-i", "list.txt", *extra], home=tmp_path / "ours"),
        lambda: _run(
            [ARIA2C, "--no-conf", "--enable-dht=false", "-i", "list.txt", *extra],
            home=tmp_path / "theirs",
        ),
    )
    assert ours.returncode == theirs.returncode == 0, (ours, theirs)
    expected = {"sub/renamed-a.bin": data_a, b: data_b}
    assert _files(tmp_path / "ours") == expected
    assert _files(tmp_path / "theirs") == expected
    assert not log_lines(nginx, f"/{c}")  # neither program touched the command-line URI
    assert data_c  # served, never fetched


async def test_input_file_from_stdin_with_force_sequential(
    nginx: NginxServer, tmp_path: Path
) -> None:
    a, b = unique_name("stdin-a"), unique_name("stdin-b")
    data_a, data_b = serve_copy(nginx, a, 80_000), serve_copy(nginx, b, 90_000)
    # with -Z the two TAB-separated URIs of one line are two downloads
    line = f"{nginx.url(f'/{a}')}\t{nginx.url(f'/{b}')}\n  dir=got\n"
    res = await _run([*TROIARIA, "-Z", "-i", "-"], home=tmp_path / "h", stdin=line.encode())
    assert res.returncode == 0, res
    assert _files(tmp_path / "h" / "got") == {a: data_a, b: data_b}


async def test_input_file_bad_option_is_exit_28(tmp_path: Path) -> None:
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "l.txt").write_text("http://127.0.0.1:9/x\n  split=0\n")
    res = await _run([*TROIARIA, "-i", "l.txt"], home=tmp_path / "h")
    assert res.returncode == ExitCode.OPTION_ERROR, res
    assert "line 2" in res.stderr and "split" in res.stderr, res


def test_deferred_input_reads_entries_as_needed(nginx: NginxServer, tmp_path: Path) -> None:
    """The first entry is downloaded while stdin is still open; the rest arrives later.

    Without ``--deferred-input`` the whole of stdin is read first, so the first file could
    not appear before the test closes stdin: this test fails for an eager reader.
    """
    a, b = unique_name("def-a"), unique_name("def-b")
    data_a, data_b = serve_copy(nginx, a, 60_000), serve_copy(nginx, b, 70_000)
    home = tmp_path / "h"
    home.mkdir()
    with open(home / "out.log", "wb") as out:
        proc = subprocess.Popen(
            [*TROIARIA, "--deferred-input", "-j1", "-i", "-", "-d", "dl"],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=home,
            env=child_env(home),
        )
    try:
        assert proc.stdin is not None
        # entry one is complete once the next URI line arrives
        proc.stdin.write(f"{nginx.url(f'/{a}')}\n  out=first.bin\n{nginx.url(f'/{b}')}\n".encode())
        proc.stdin.flush()
        first = home / "dl" / "first.bin"
        assert wait_for(
            lambda: first.exists() and not (home / "dl" / "first.bin.aria2").exists(), 20
        ), (home / "out.log").read_text()
        assert proc.poll() is None  # still waiting for the rest of the input
        proc.stdin.write(b"  out=second.bin\nhttp://127.0.0.1:9/x\n  split=0\n")
        proc.stdin.close()
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    log = (home / "out.log").read_text()
    # the bad third entry is reported and gives exit 28 after the others finished
    assert code == ExitCode.OPTION_ERROR, log
    assert _files(home / "dl") == {"first.bin": data_a, "second.bin": data_b}, log
    assert "split" in log


# --- -P, --dry-run -------------------------------------------------------------------------------


async def test_parameterized_uri(nginx: NginxServer, tmp_path: Path) -> None:
    tag = os.urandom(4).hex()
    parts = {n: serve_copy(nginx, f"p-{tag}-{n:02d}.bin", 40_000) for n in (1, 3, 5)}
    same = os.urandom(3_000_000)
    nginx.add_file(f"q-{tag}-a.bin", same)
    nginx.add_file(f"q-{tag}-b.bin", same)
    seq, mirrors, literal, bad_ours, bad_theirs = await gather(
        lambda: run_cli(
            "-P", "-Z", "-d", "seq", nginx.url(f"/p-{tag}-[01-05:2].bin"), home=tmp_path / "h1"
        ),
        lambda: run_cli(
            "-P", "-x2", "-s2", "-k1M", "-o", "m.bin", nginx.url(f"/q-{tag}-{{a,b}}.bin"),
            home=tmp_path / "h2",
        ),
        lambda: run_cli(nginx.url(f"/q-{tag}-{{a,b}}.bin"), home=tmp_path / "h3"),
        lambda: run_cli("-P", nginx.url("/x[1-"), home=tmp_path / "h4"),
        lambda: _run([ARIA2C, "--no-conf", "-P", nginx.url("/x[1-")], home=tmp_path / "h5"),
    )  # fmt: skip
    assert seq.returncode == 0, seq
    assert _files(tmp_path / "h1" / "seq") == {
        f"p-{tag}-{n:02d}.bin": data for n, data in parts.items()
    }
    assert mirrors.returncode == 0, mirrors
    assert (tmp_path / "h2" / "m.bin").read_bytes() == same
    assert log_lines(nginx, f"/q-{tag}-a.bin") and log_lines(nginx, f"/q-{tag}-b.bin")
    # without -P the braces are sent as they are (nginx answers 404: exit 3)
    assert literal.returncode == ExitCode.RESOURCE_NOT_FOUND, literal
    assert bad_ours.returncode == bad_theirs.returncode == 1, (bad_ours, bad_theirs)
    assert "Missing ']' in the parameterized string." in bad_ours.stderr, bad_ours


async def test_dry_run_checks_and_writes_nothing(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("dry")
    serve_copy(nginx, name, 300_000)
    ok, missing, theirs_missing = await gather(
        lambda: run_cli("--dry-run", "-d", "dl", nginx.url(f"/{name}"), home=tmp_path / "h1"),
        lambda: run_cli("--dry-run", nginx.url("/no-such.bin"), home=tmp_path / "h2"),
        lambda: _run(
            [ARIA2C, "--no-conf", "--dry-run", nginx.url("/no-such.bin")], home=tmp_path / "h3"
        ),
    )
    assert ok.returncode == 0, ok
    assert "OK" in ok.stdout and name in ok.stdout, ok
    assert not (tmp_path / "h1" / "dl").exists() or not any((tmp_path / "h1" / "dl").iterdir())
    assert missing.returncode == theirs_missing.returncode == ExitCode.RESOURCE_NOT_FOUND
    assert not (tmp_path / "h2" / "no-such.bin").exists()
    # one request: the probe; no further ranges were fetched
    assert len(log_lines(nginx, f"/{name}")) == 1


# --- --stop-with-process -------------------------------------------------------------------------


def test_stop_with_process(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("watch")
    serve_copy(nginx, name, 2_000_000)
    home = tmp_path / "h"
    home.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        with open(home / "out.log", "wb") as out:
            proc = subprocess.Popen(
                [*TROIARIA, f"--stop-with-process={sleeper.pid}", "-d", "dl",
                 nginx.url(f"/rate/100k/{name}")],
                stdout=out, stderr=subprocess.STDOUT, cwd=home, env=child_env(home),
            )  # fmt: skip
        try:
            control = home / "dl" / f"{name}.aria2"
            assert wait_for(control.exists, 20), (home / "out.log").read_text()
            assert proc.poll() is None
            sleeper.send_signal(signal.SIGKILL)
            sleeper.wait(timeout=10)
            killed_at = time.monotonic()
            code = proc.wait(timeout=15)
            took = time.monotonic() - killed_at
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait(timeout=10)
    log = (home / "out.log").read_text()
    assert code == ExitCode.IN_PROGRESS, log  # graceful shutdown: unfinished, resumable
    assert took < 10, took  # checked every second, then a graceful stop
    assert control.exists(), log
    assert "INPR" in log, log


# --- -l / --log-level -------------------------------------------------------------------------------

_LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} \[(DEBUG|INFO|NOTICE|WARN|ERROR)\] \[\w+\.py:\d+\] "
)


async def test_log_file_levels_and_stdout(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("log")
    serve_copy(nginx, name, 50_000)
    url = nginx.url(f"/{name}")
    debug, notice, to_stdout = await gather(
        lambda: run_cli("-l", "debug.log", "--log-level=debug", "-d", "a", url, home=tmp_path / "a"),
        lambda: run_cli("-l", "notice.log", "--log-level=notice", "-d", "b", url, home=tmp_path / "b"),
        lambda: run_cli("-q", "-l", "-", "--log-level=info", "-d", "c", url, home=tmp_path / "c"),
    )  # fmt: skip
    for res in (debug, notice, to_stdout):
        assert res.returncode == 0, res
    debug_lines = (tmp_path / "a" / "debug.log").read_text().splitlines()
    assert debug_lines and all(_LOG_LINE.match(line) for line in debug_lines), debug_lines
    levels = {_LOG_LINE.match(line).group(1) for line in debug_lines}  # type: ignore[union-attr]
    assert {"DEBUG", "INFO", "NOTICE"} <= levels, debug_lines
    assert any("probe" in line and url in line for line in debug_lines), debug_lines
    assert any("Download complete" in line for line in debug_lines), debug_lines
    notice_lines = (tmp_path / "b" / "notice.log").read_text().splitlines()
    assert notice_lines and all(_LOG_LINE.match(line) for line in notice_lines), notice_lines
    assert not any("[DEBUG]" in line or "[INFO]" in line for line in notice_lines), notice_lines
    # -q silences the console, not the log: '-l -' writes the log lines to stdout
    out_lines = to_stdout.stdout.splitlines()
    assert out_lines and all(_LOG_LINE.match(line) for line in out_lines), to_stdout
    assert any("Download complete" in line for line in out_lines), to_stdout


# --- -h / -v ------------------------------------------------------------------------------------------


async def test_help_tags_keywords_and_unsupported(tmp_path: Path) -> None:
    http, keyword, unsupported, everything, nomatch = await gather(
        lambda: run_cli("-h#http", home=tmp_path / "h1"),
        lambda: run_cli("--help=timeout", home=tmp_path / "h2"),
        lambda: run_cli("--help=#unsupported", home=tmp_path / "h3"),
        lambda: run_cli("-h#all", home=tmp_path / "h4"),
        lambda: run_cli("-h", "zzzz-nothing", home=tmp_path / "h5"),
    )
    for res in (http, keyword, unsupported, everything, nomatch):
        assert res.returncode == 0, res

    def names(text: str) -> set[str]:
        return set(re.findall(r"^ (?:-\w, )?--([a-z0-9-]+)", text, re.MULTILINE))

    assert "Printing options tagged with '#http'." in http.stdout
    assert names(http.stdout) == {
        n for n, s in OPTIONS.items() if "#http" in s.tags and not s.hidden
    }
    assert names(keyword.stdout) == {n for n in OPTIONS if "timeout" in n and not OPTIONS[n].hidden}
    assert names(unsupported.stdout) == set(OPTIONS) - IMPLEMENTED
    assert not names(unsupported.stdout) & {"parameterized-uri", "deferred-input", "dry-run"}
    assert names(everything.stdout) == {n for n, s in OPTIONS.items() if not s.hidden}
    # a bare -h takes the next word (aria2c would make it a URI and show #basic)
    assert "No option matching with 'zzzz-nothing'." in nomatch.stdout, nomatch


async def test_version_lists_enabled_features(tmp_path: Path) -> None:
    res = await run_cli("-v", home=tmp_path)
    assert res.returncode == 0, res
    line = next(x for x in res.stdout.splitlines() if x.startswith("Enabled Features: "))
    shown = line.removeprefix("Enabled Features: ").split(", ")
    assert shown == enabled_features()
    assert {"HTTPS", "Message Digest"} <= set(shown)
    # both work end to end now (tests/bt, tests/metalink); RPC features are not named by aria2c -v
    assert {"BitTorrent", "Metalink"} <= set(shown)
