"""Golden tests of the console readout: in a real terminal (tmux) and through a pipe.

Each scenario downloads a rate-limited nginx file (``/rate/200k/``, about 3.5 s) with trioaria
*and* with aria2c 1.36, normalises both outputs and compares each with the golden file in
``tests/data/readout/``.  The golden files were recorded from aria2c, so a pass means trioaria's
console is aria2c's, byte for byte, up to the parts that vary between runs.

Normalisation (:func:`normalise`) replaces the GID, sizes, percentages, speeds, dates and the
download's directory and file name by placeholders, drops ``ETA:`` (shown only while at least
one second remains) and collapses repeats of the per-second tick (how many ticks a run gets
depends on timing).  Colours are kept: the terminal captures use ``tmux capture-pane -e``.

Set ``TRIOARIA_UPDATE_GOLDEN=1`` to rewrite the golden files from aria2c's output.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from tests.cli_util import ARIA2C, child_env, gather, unique_name
from tests.e2e_util import wait_for
from tests.servers.nginx import NginxServer

GOLDEN = Path(__file__).resolve().parent / "data" / "readout"
TMUX = shutil.which("tmux") or "/usr/bin/tmux"
SIZE = 700_000  # 683KiB at 200 KiB/s: three or four readout ticks
UPDATE = os.environ.get("TRIOARIA_UPDATE_GOLDEN") == "1"

_ESC = r"(?:\x1b\[[0-9;]*m)*"
_RULES: list[tuple[str, str]] = [
    (r"\d\d/\d\d \d\d:\d\d:\d\d", "MM/DD hh:mm:ss"),
    (r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}", "<DATE>"),
    (r"GID#[0-9a-f]{16}", "GID#<GID>"),
    (r"#[0-9a-f]{6}\b", "#<GID>"),
    (r"(?m)^[0-9a-f]{6}\|", "<GID>|"),
    (r" ETA:" + _ESC + r"\w+", ""),
    (r"\x1b\[39m(?=\x1b\[35m\])", ""),  # the colour reset that preceded " ETA:"
    (r"\d+(?:\.\d+)?(?:B|KiB|MiB|GiB)\b", "<SZ>"),
    (r"\d+/<SZ>", "<SZ>/<SZ>"),  # --human-readable=false: "1234/700000B"
    (r"\((\x1b\[[0-9;]*m)*\d+%", r"(\1<P>%"),
    (r"\|\s*(?:<SZ>/s|n/a)\|", "|<SPEED>|"),
    (r"\|\s*\d+%\|", "|<P>%|"),  # --download-result=full
    (r"(?m)^\[#<GID> [^\]\n]*$", "[#<GID> <CUT>"),  # cut to the terminal: the cut point moves
]


def normalise(text: str, *, directory: Path, name: str) -> str:
    """Replace what varies between runs by placeholders (see the module docstring)."""
    text = text.replace(str(directory), "<DIR>").replace(name, "<NAME>")
    for pattern, repl in _RULES:
        text = re.sub(pattern, repl, text)
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(_collapse_repeats(lines)).strip("\n") + "\n"


def _collapse_repeats(lines: list[str], max_period: int = 12) -> list[str]:
    """Drop immediate repetitions of any block of up to ``max_period`` lines."""
    out = list(lines)
    i = 0
    while i < len(out):
        for period in range(1, max_period + 1):
            while (
                out[i : i + period] == out[i + period : i + 2 * period]
                and len(out[i : i + period]) == period
            ):
                del out[i + period : i + 2 * period]
        i += 1
    return out


def check_golden(name: str, ours: str, theirs: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(theirs)
    expected = path.read_text()
    assert theirs == expected, f"aria2c no longer matches {name}:\n{theirs}"
    assert ours == expected, f"trioaria differs from {name} (aria2c's):\n{ours}"


def _commands(url: str, args: list[str]) -> dict[str, list[str]]:
    return {
        "ours": [sys.executable, "-m", "trioaria", *args, url],
        "theirs": [ARIA2C, "--no-conf", "--enable-dht=false", *args, url],
    }


# --- through a pipe ------------------------------------------------------------------------

PIPE_SCENARIOS: dict[str, list[str]] = {
    "pipe_default.txt": ["--summary-interval=0"],
    "pipe_summary_raw_full.txt": [
        "--summary-interval=1", "--human-readable=false", "--download-result=full",
    ],
    "pipe_notices_only.txt": [
        "--show-console-readout=false", "--download-result=hide", "--summary-interval=0",
    ],
    "pipe_results_only.txt": [
        "--show-console-readout=false", "--console-log-level=warn", "--enable-color=false",
        "--summary-interval=0",
    ],
}  # fmt: skip


async def _pipe_run(argv: list[str], home: Path) -> tuple[int, str]:
    home.mkdir(parents=True, exist_ok=True)
    with trio.fail_after(60):
        proc = await trio.run_process(
            argv,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=str(home),
            env=child_env(home),
            stdin=b"",
        )
    return proc.returncode, proc.stdout.decode(errors="replace") + proc.stderr.decode(
        errors="replace"
    )


async def test_pipe_readout_matches_aria2c(nginx: NginxServer, tmp_path: Path) -> None:
    name = unique_name("readout")
    nginx.add_file(name, os.urandom(SIZE))
    url = nginx.url(f"/rate/200k/{name}")
    calls = []
    keys = []
    for scenario, args in PIPE_SCENARIOS.items():
        for who, argv in _commands(url, args).items():
            home = tmp_path / f"{scenario}-{who}"
            keys.append((scenario, who, home))
            calls.append(lambda argv=argv, home=home: _pipe_run(argv, home))
    results = await gather(*calls)
    outputs: dict[tuple[str, str], str] = {}
    for (scenario, who, home), (code, text) in zip(keys, results, strict=True):
        assert code == 0, f"{scenario} {who}: exit {code}\n{text}"
        assert (home / name).stat().st_size == SIZE
        outputs[scenario, who] = normalise(text, directory=home, name=name)
    for scenario in PIPE_SCENARIOS:
        check_golden(scenario, outputs[scenario, "ours"], outputs[scenario, "theirs"])


# --- in a terminal (tmux) --------------------------------------------------------------------


class Tmux:
    """One private tmux server (``-L``) running one command in a fixed-size window."""

    def __init__(self, argv: list[str], *, cwd: Path, width: int, height: int = 24) -> None:
        self.socket = f"trioaria-test-{os.getpid()}-{os.urandom(4).hex()}"
        env = child_env(cwd)
        shell = " ".join(_quote(a) for a in argv) + "; echo EXIT=$?; sleep 300"
        cmd = [TMUX, "-L", self.socket, "-f", "/dev/null", "new-session", "-d"]
        cmd += ["-x", str(width), "-y", str(height), "-c", str(cwd)]
        for key in ("HOME", "PYTHONPATH", "PATH"):
            cmd += ["-e", f"{key}={env[key]}"]
        subprocess.run([*cmd, shell], check=True, timeout=20, env=env)

    def capture(self) -> str:
        out = subprocess.run(
            [TMUX, "-L", self.socket, "capture-pane", "-p", "-e", "-J"],
            check=True,
            capture_output=True,
            timeout=20,
        )
        return out.stdout.decode(errors="replace")

    def kill(self) -> None:
        """Stop the server (and the command in it) and remove its socket file."""
        subprocess.run(
            [TMUX, "-L", self.socket, "kill-server"], capture_output=True, check=False, timeout=20
        )
        base = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (base / self.socket).unlink(missing_ok=True)


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def _live_line(screen: str) -> str | None:
    """The readout line on the screen once it shows a transfer in progress."""
    lines = [line for line in screen.split("\n") if line.strip()]
    if lines and "CN:1" in lines[-1] and "DL:" in lines[-1] and "#" in lines[-1]:
        return lines[-1]
    return None


def _run_tty(argv: list[str], cwd: Path, width: int) -> tuple[str, str]:
    """Run in tmux; return (the live readout line, the final screen without the EXIT line)."""
    cwd.mkdir(parents=True, exist_ok=True)
    tmux = Tmux(argv, cwd=cwd, width=width)
    try:
        live: list[str] = []

        def got_live() -> bool:
            line = _live_line(tmux.capture())
            if line is not None:
                live.append(line)
            return bool(live)

        assert wait_for(got_live, 30, interval=0.1), tmux.capture()
        final: list[str] = []

        def exited() -> bool:
            screen = tmux.capture()
            final[:] = [screen]
            return "EXIT=" in screen

        assert wait_for(exited, 60, interval=0.2), final
    finally:
        tmux.kill()
    screen = final[0]
    assert "EXIT=0" in screen, screen
    return live[0] + "\n", screen.split("EXIT=")[0]


TTY_SCENARIOS: dict[str, tuple[int, list[str]]] = {
    "tty_color": (90, []),
    "tty_narrow_nocolor": (40, ["--enable-color=false"]),
}


@pytest.mark.parametrize("scenario", sorted(TTY_SCENARIOS))
def test_tty_readout_matches_aria2c(nginx: NginxServer, tmp_path: Path, scenario: str) -> None:
    width, args = TTY_SCENARIOS[scenario]
    name = unique_name("tty")
    nginx.add_file(name, os.urandom(SIZE))
    url = nginx.url(f"/rate/200k/{name}")
    results: dict[str, tuple[str, str]] = {}
    raw_live: dict[str, str] = {}
    start = time.monotonic()
    for who, argv in _commands(url, args).items():
        home = tmp_path / who
        live, final = _run_tty(argv, home, width)
        raw_live[who] = live
        assert (home / name).stat().st_size == SIZE
        results[who] = (
            normalise(live, directory=home, name=name),
            normalise(final, directory=home, name=name),
        )
    assert time.monotonic() - start < 60
    check_golden(f"{scenario}_final.txt", results["ours"][1], results["theirs"][1])
    if width >= 80:
        check_golden(f"{scenario}_live.txt", results["ours"][0], results["theirs"][0])
    else:
        # cut to columns - 1, wherever that falls (the cut point moves with the numbers)
        for who in ("ours", "theirs"):
            line = results[who][0].strip()
            assert line.startswith("[#<GID> ") and "\x1b[" not in line, (who, line)
    if "--enable-color=false" in args:
        assert "\x1b[" not in results["ours"][1]
    else:
        assert "\x1b[" in results["ours"][1]
    # the live line fits the terminal: aria2 cuts it to columns - 1
    for who in ("ours", "theirs"):
        visible = re.sub(r"\x1b\[[0-9;]*m", "", raw_live[who].strip())
        assert len(visible) == (width - 1 if width < 80 else len(visible)) <= width - 1, visible
