"""A download's outcome is its own error, with its own exit code, whatever nursery it was
raised in; options that decide how a download starts or ends are honoured (aria2 manual)."""

from __future__ import annotations

import random
from pathlib import Path

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
