"""aria2's notices for an existing file (issue 15 part 7), through the real CLI."""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli_util import run_cli
from tests.servers.fault import FaultServer
from trioaria.storage import control_file as cf


async def test_existing_file_is_renamed_with_a_notice(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    data = os.urandom(100_000)
    fault_server.add_file("n.bin", data)
    url = fault_server.url("/ok/n.bin")
    first = await run_cli("--summary-interval=0", "-d", tmp_path / "o", url, home=tmp_path)
    assert first.returncode == 0, first
    second = await run_cli("--summary-interval=0", "-d", tmp_path / "o", url, home=tmp_path)
    assert second.returncode == 0, second
    renamed = tmp_path / "o" / "n.1.bin"
    assert f"File already exists. Renamed to {renamed}." in second.stdout, second
    assert renamed.read_bytes() == data


async def test_complete_control_file_says_already_completed(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    """A control file whose pieces are all done (e.g. killed between the last write and the
    removal): ``-c`` fetches nothing, says so as aria2 does, and removes the control file."""
    data = os.urandom(3 << 20)
    fault_server.add_file("c.bin", data)
    out = tmp_path / "o"
    out.mkdir()
    (out / "c.bin").write_bytes(data)
    control = cf.ControlFile(
        piece_length=1 << 20, total_length=len(data), bitfield=b"\xe0", in_flight=()
    )
    (out / "c.bin.aria2").write_bytes(cf.serialize(control))
    before = len(fault_server.requests)
    result = await run_cli(
        "-c", "--summary-interval=0", "-d", out, fault_server.url("/ok/c.bin"), home=tmp_path
    )
    assert result.returncode == 0, result
    assert "Download has already completed" in result.stdout, result
    assert not (out / "c.bin.aria2").exists()
    assert (out / "c.bin").read_bytes() == data
    # only the probe: no range was fetched
    assert len(fault_server.requests) - before == 1, fault_server.requests
