"""What the command line says (issue 15, parts 7 and 8), checked by running it, next to aria2c.

* An unknown or malformed option: the program name, the option, ``See 'trioaria -h'.``, exit 28;
  the first lines are aria2c's with the program name swapped.
* Ctrl-C: aria2's ``Download GID#<gid> not complete: <path>`` notice, as aria2c prints it.
* ``-i``: "Download complete" lines come as downloads finish; the results table is in input order.
* Every help example in the README's usage block works exactly as typed (run through bash).
* ``--help`` marks each option that is parsed but not honoured, and only those.
* ``--version`` lists only features that work.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_util import ARIA2C, REPO, child_env, gather, run_aria2c, run_cli
from trioaria.base.errors import ExitCode
from trioaria.cli.app import enabled_features
from trioaria.cli.help import render_help
from trioaria.cli.option_table import IMPLEMENTED, OPTIONS
from trioaria.demo import serve_bytes

__all__: list[str] = []

ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --- option errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "lines"),
    [
        (["--foo"], 3),  # unrecognized: aria2c's three lines, word for word
        (["--max-con"], 3),  # ambiguous
        (["--maxx-tries=3"], 1),  # aria2c quotes the whole word, we the name
        (["--split"], 1),  # requires an argument
        (["-y"], 1),  # invalid short option
    ],
)
async def test_bad_option_words_like_aria2c(args: list[str], lines: int, tmp_path: Path) -> None:
    ours, theirs = await gather(
        lambda: run_cli(*args, home=tmp_path / "h1"),
        lambda: run_aria2c(*args, home=tmp_path / "h2"),
    )
    assert ours.returncode == theirs.returncode == ExitCode.OPTION_ERROR, (ours, theirs)
    mine = ours.stderr.splitlines()
    # aria2c names itself by argv[0] (getopt), here its full path
    expected = theirs.stderr.replace(ARIA2C, "aria2c").replace("aria2c", "trioaria").splitlines()
    if args == ["--maxx-tries=3"]:
        expected[0] = expected[0].replace("--maxx-tries=3", "--maxx-tries")
    assert mine[:lines] == expected[:lines], ours
    assert mine[0].startswith("trioaria: ") and args[0].lstrip("-").partition("=")[0] in mine[0]
    assert "See 'trioaria -h'." in mine, ours
    assert ours.stdout == "", ours


async def test_malformed_value_shows_the_option_and_did_you_mean(tmp_path: Path) -> None:
    bad, typo = await gather(
        lambda: run_cli("--max-tries=abc", "http://127.0.0.1:9/x", home=tmp_path / "h1"),
        lambda: run_cli("--max-tires=3", home=tmp_path / "h2"),
    )
    assert bad.returncode == typo.returncode == ExitCode.OPTION_ERROR, (bad, typo)
    lines = bad.stderr.splitlines()
    assert lines[0] == "trioaria: option '--max-tries': bad number 'abc'", bad
    assert lines[1].startswith(" -m, --max-tries=N"), bad  # the option's help block, as aria2c
    assert lines[-1] == "See 'trioaria -h'.", bad
    assert "Did you mean:\n\t--max-tries\n" in typo.stderr, typo


# --- Ctrl-C ------------------------------------------------------------------------------------

NOT_COMPLETE = re.compile(
    r"^\d\d/\d\d \d\d:\d\d:\d\d \[NOTICE\] Download GID#([0-9a-f]{16}) not complete: (.+)$", re.M
)


def _interrupt(argv: list[str], home: Path, control: Path) -> tuple[int, str]:
    """Start ``argv``, SIGINT it once its control file exists, return (exit status, stdout)."""
    home.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(
        argv,
        cwd=home,
        env=child_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    ) as proc:
        try:
            deadline = time.monotonic() + 20
            while not control.exists() and time.monotonic() < deadline:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.05)
            assert control.exists(), f"{argv}: no control file within 20 s"
            time.sleep(0.3)  # some bytes flow
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=20)
        finally:
            proc.kill()
    return proc.returncode, ANSI.sub("", out.decode(errors="replace"))


def test_ctrl_c_prints_not_complete_like_aria2c(tmp_path: Path) -> None:
    port = serve_bytes(os.urandom(8 << 20), rate=128 * 1024)
    url = f"http://127.0.0.1:{port}/slow.bin"
    results = {}
    for who, argv in {
        "ours": [sys.executable, "-m", "trioaria", "-d", "dl", url],
        "theirs": [ARIA2C, "--no-conf", "-d", "dl", url],
    }.items():
        home = tmp_path / who
        results[who] = _interrupt(argv, home, home / "dl" / "slow.bin.aria2")
    for who, (code, out) in results.items():
        assert code == ExitCode.IN_PROGRESS, (who, out)
        found = NOT_COMPLETE.findall(out)
        assert len(found) == 1, (who, out)
        gid, path = found[0]
        # aria2c prints the path as -d gave it (relative here), trioaria an absolute one
        wanted = tmp_path / who / "dl" / "slow.bin"
        assert (tmp_path / who / path).resolve() == wanted.resolve(), (who, out)
        assert re.search(rf"^{gid[:6]}\|INPR\|", out, re.M), (who, out)
        # the notice comes after the shutdown notice and before the results table
        shutdown = out.index("[NOTICE] Shutdown sequence commencing...")
        assert shutdown < out.index("not complete:") < out.index("Download Results:"), (who, out)


# --- -i results follow the input order -----------------------------------------------------------


async def test_results_table_follows_input_order(tmp_path: Path) -> None:
    slow = serve_bytes(os.urandom(768 << 10), rate=256 * 1024)  # about 3 s
    fast = serve_bytes(os.urandom(64 << 10))
    home = tmp_path / "h"
    home.mkdir()
    (home / "list.txt").write_text(
        f"http://127.0.0.1:{slow}/a\n  out=first.bin\n"
        f"http://127.0.0.1:{fast}/b\n  out=second.bin\n"
        f"http://127.0.0.1:{fast}/c\n  out=third.bin\n"
    )
    res = await run_cli("-i", "list.txt", "-j3", "-d", "dl", home=home)
    assert res.returncode == 0, res
    out = ANSI.sub("", res.stdout)
    completed = re.findall(r"Download complete: .*/(\w+)\.bin", out)
    assert completed[-1] == "first", res  # the slow one finished last...
    rows = re.findall(r"^[0-9a-f]{6}\|OK  \|.*\|.*/(\w+)\.bin$", out, re.M)
    assert rows == ["first", "second", "third"], res  # ...and is still listed first


# --- help --------------------------------------------------------------------------------------


def _readme_help_examples() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", readme, re.S):
        for line in block.splitlines():
            command = line.split("  #", 1)[0].strip()
            words = shlex.split(command) if command else []
            if (
                words[:1] == ["trioaria"]
                and {"-h", "--help"} & {w.partition("=")[0] for w in words}
            ) or words[:1] == ["man"]:
                commands.append(command)
    return commands


def test_readme_has_help_examples() -> None:
    commands = _readme_help_examples()
    assert any("'#http'" in c for c in commands) and any(c.startswith("man") for c in commands)


@pytest.mark.parametrize("command", _readme_help_examples())
def test_readme_help_example_works_as_typed(command: str, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "trioaria"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m trioaria "$@"\n')
    wrapper.chmod(0o755)
    env = child_env(tmp_path)
    env.update(PATH=f"{bin_dir}:{env['PATH']}", MANPAGER="cat", MANWIDTH="100", LC_ALL="C.UTF-8")
    res = subprocess.run(
        ["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, (command, res.stdout[-2000:], res.stderr)
    assert res.stderr == "", (command, res.stderr)
    if command.startswith("man"):
        assert "TRIOARIA(1)" in res.stdout and "--max-connection-per-server" in res.stdout
        return
    word = shlex.split(command)[-1]
    if word == "#unsupported":
        header = "Printing options that are accepted but not implemented yet."
    elif word.startswith("#"):
        header = f"Printing options tagged with '{word}'."
    else:
        header = f"Printing options whose name includes '{word}'."
    assert res.stdout.splitlines()[1] == header, (command, res.stdout[:500])
    assert res.stdout.count("\n --") + res.stdout.count("\n -") > 1, res.stdout[:500]


def test_help_marks_exactly_the_options_not_honoured() -> None:
    text = render_help("#all")
    # a block is the head paragraph plus its details paragraph (Possible Values/Default/Tags)
    paragraphs = text.split("\n\n")
    marked, unmarked = set(), set()
    for head, details in itertools.pairwise(paragraphs):
        m = re.search(r"^ (?:-\w, )?--([a-z0-9-]+)", head, re.M)
        if m is None or "Tags:" not in details:
            continue
        (marked if "(not implemented)" in details else unmarked).add(m.group(1))
    visible = {n for n, s in OPTIONS.items() if not s.hidden}
    assert marked | unmarked == visible
    assert marked == visible - IMPLEMENTED
    refused = [n for n in marked if OPTIONS[n].refused]
    assert "interface" in refused and "enable-mmap" in marked and "split" in unmarked
    assert "all-proxy" in unmarked


async def test_help_marks_are_printed_by_the_cli(tmp_path: Path) -> None:
    res = await run_cli("-h", "interface", home=tmp_path)
    assert res.returncode == 0, res
    assert "(not implemented) Refused until it is" in res.stdout, res
    dht = await run_cli("--help=enable-mmap", home=tmp_path)
    assert "(not implemented) Accepted and ignored, with a" in dht.stdout, dht


# --- --version -----------------------------------------------------------------------------------


async def test_version_lists_only_working_features(tmp_path: Path) -> None:
    res = await run_cli("--version", home=tmp_path)
    assert res.returncode == 0, res
    line = next(x for x in res.stdout.splitlines() if x.startswith("Enabled Features: "))
    shown = set(line.removeprefix("Enabled Features: ").split(", "))
    assert shown == set(enabled_features())
    assert {"HTTPS", "FTP", "SFTP", "GZip", "Message Digest"} <= shown
    for feature, option in {
        "BitTorrent": "torrent-file",
        "Metalink": "metalink-file",
        "XML-RPC": "enable-rpc",
        "JSON-RPC": "enable-rpc",
        "Firefox3 Cookie": "load-cookies",
        "Proxy": "all-proxy",
    }.items():
        assert (feature in shown) == (option in IMPLEMENTED), feature


# --- the demo ----------------------------------------------------------------------------------


def test_demo_says_it_throttles_on_purpose(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "trioaria.demo", "--size", "2", "--rate", "2048"]
    res = subprocess.run(
        argv, cwd=tmp_path, env=child_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr)
    first = res.stdout.splitlines()[0]
    assert "throttles each connection to 2048 KiB/s on purpose" in first, res.stdout[:500]
    assert "matches the served file" in res.stdout
    unthrottled = subprocess.run(
        [*argv[:-1], "0"], cwd=tmp_path, env=child_env(tmp_path), capture_output=True, text=True
    )
    assert unthrottled.returncode == 0 and "throttles" not in unthrottled.stdout, unthrottled
