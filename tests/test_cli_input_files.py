"""Input files and local files named on the command line, as aria2 reads them: an ``-i``
entry's option replaces the global value (lists too), ``${HOME}`` is expanded in its paths,
gzip works with ``--deferred-input`` too and a broken one is a one-line error, ``-P`` cannot
exhaust memory, and ``-T``/``-M`` must name existing files (exit 28)."""

from __future__ import annotations

import gzip
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.cli_util import child_env, run_cli
from trioaria.cli import app

DEAD = "http://127.0.0.1:1/f"  # connection refused at once


def _entries(monkeypatch: pytest.MonkeyPatch, home: Path, args: list[str]) -> Any:
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    opts, input_opts, uris = app._load_options(args)
    return app._download_entries(opts, input_opts, uris)


def test_an_entrys_header_replaces_the_global_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """aria2 createRequestGroupFromUriListParser: the entry's value is put over the global."""
    lst = tmp_path / "in.txt"
    lst.write_text(f"{DEAD}\n header=X-A: 2\n header=X-B: 3\n")
    entries = _entries(monkeypatch, tmp_path, ["--no-conf", "--header=X-A: 1", "-i", str(lst)])
    assert entries[0][1].get("header") == ("X-A: 2", "X-B: 3")


async def test_a_saved_session_does_not_grow_a_header_on_each_run(tmp_path: Path) -> None:
    session = tmp_path / "s.txt"
    session.write_text(f"{DEAD}\n header=X-A: 1\n")
    for _ in range(2):
        with trio.fail_after(20):
            await run_cli(
                "--no-conf", "-q", "--max-tries=1", "--header=X-A: 1",
                "-i", session, f"--save-session={session}", home=tmp_path,
            )  # fmt: skip
    assert session.read_text().count("header=X-A: 1") == 1, session.read_text()


def test_home_is_expanded_in_an_entrys_paths(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lst = tmp_path / "in.txt"
    lst.write_text(f"{DEAD}\n dir=${{HOME}}/dl\n")
    entries = _entries(monkeypatch, tmp_path, ["--no-conf", "-i", str(lst)])
    assert entries[0][1].get("dir") == f"{tmp_path}/dl"


async def test_deferred_input_reads_a_gzip_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lst = tmp_path / "in.txt.gz"
    lst.write_bytes(gzip.compress(f"{DEAD}\n out=x.bin\n dir=${{HOME}}/d\n".encode()))
    monkeypatch.setenv("HOME", str(tmp_path))
    _, input_opts, _ = app._load_options(["--no-conf", "--deferred-input", "-i", str(lst)])
    deferred = app._DeferredInput(str(lst), input_opts)
    try:
        with trio.fail_after(5):
            item = await deferred.next_group()
    finally:
        deferred.close()
    assert item is not None and item[0] == [DEAD]
    assert item[1].get("out") == "x.bin" and item[1].get("dir") == f"{tmp_path}/d"


@pytest.mark.parametrize("deferred", [False, True])
@pytest.mark.parametrize("kind", ["truncated", "bad-block"])
async def test_a_broken_gzip_input_file_is_a_one_line_error(
    tmp_path: Path, kind: str, deferred: bool
) -> None:
    good = gzip.compress(f"{DEAD}\n".encode() * 50)
    data = bytearray(good[:15] if kind == "truncated" else good)
    if kind == "bad-block":
        data[10] = 0xFF  # the first deflate byte: BTYPE=11 (invalid)
    lst = tmp_path / "in.gz"
    lst.write_bytes(bytes(data))
    flags = ["--deferred-input"] if deferred else []
    with trio.fail_after(20):
        res = await run_cli("--no-conf", "--dry-run", *flags, "-i", lst, home=tmp_path)
    assert "Traceback" not in res.stderr + res.stdout, res
    assert res.returncode == 1, res


def test_parameterized_uris_are_bounded(tmp_path: Path) -> None:
    """[0-65535][0-65535] stands for 4.3e9 URIs: a clear error, not memory exhausted."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    res = subprocess.run(
        [sys.executable, "-m", "trioaria", "--no-conf", "--dry-run", "-P",
         "http://127.0.0.1:1/[0-65535][0-65535]"],
        capture_output=True, text=True, timeout=20, cwd=tmp_path,
        env=child_env(tmp_path), preexec_fn=limit, check=False,
    )  # fmt: skip
    assert "Traceback" not in res.stderr and "MemoryError" not in res.stderr, res.stderr[-500:]
    assert res.returncode == 1 and "Too many URIs" in res.stdout + res.stderr


@pytest.mark.parametrize("flag", ["-T", "-M"])
async def test_a_missing_torrent_or_metalink_file_is_exit_28(tmp_path: Path, flag: str) -> None:
    with trio.fail_after(20):
        res = await run_cli("--no-conf", flag, tmp_path / "missing", home=tmp_path)
    assert res.returncode == 28, res
    assert "does not exist" in res.stdout + res.stderr


def test_deferred_input_from_a_pipe_keeps_its_first_bytes(tmp_path: Path) -> None:
    """-i <(generator) --deferred-input: the file is opened once (a pipe cannot be opened
    again), so the gzip check loses nothing of the first entry."""
    import os

    from trioaria.cli.options import Options

    r, w = os.pipe()
    try:
        os.write(w, b"http://127.0.0.1:9/a.bin\n")
        os.close(w)
        w = -1
        deferred = app._DeferredInput(f"/dev/fd/{r}", Options.defaults())
        try:

            async def first() -> Any:
                with trio.fail_after(5):
                    return await deferred.next_group()

            got = trio.run(first)
        finally:
            deferred.close()
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    assert got is not None and got[0] == ["http://127.0.0.1:9/a.bin"]
