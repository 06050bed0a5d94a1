"""The Python API (``trioaria.Session``, ``trioaria.download``) and the README's example
(issue 12, part 5)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import trio

import trioaria
from tests.servers.nginx import NginxServer
from trioaria.base.errors import TrioariaError
from trioaria.base.stats import DownloadStatus

REPO = Path(__file__).resolve().parents[2]


def _readme_example() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.S)
    assert match, "the README's Python API example is missing"
    return match.group(1)


def test_readme_example_runs(nginx: NginxServer, tmp_path: Path) -> None:
    code = _readme_example()
    assert "https://example.org/file.iso" in code and '"downloads"' in code
    code = code.replace("https://example.org/file.iso", nginx.url("/file1m.bin"))
    code = code.replace('"downloads"', repr(str(tmp_path / "downloads")))
    script = tmp_path / "example.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("aria2.onDownloadStart ")
    assert lines[1].startswith("aria2.onDownloadComplete ")
    path = tmp_path / "downloads" / "file1m.bin"
    assert lines[2] == f"complete 1048576 {path}"
    assert path.read_bytes() == (nginx.root / "file1m.bin").read_bytes()


async def test_session_queue_control_and_events(nginx: NginxServer, tmp_path: Path) -> None:
    async with trioaria.Session({"dir": tmp_path, "max-concurrent-downloads": 1}) as s:
        slow = s.add_uri(nginx.url("/slow/file5m.bin"), {"out": "slow.bin"})
        queued = s.add_uri([nginx.url("/text.txt")], {"out": "t.txt"})
        paused = s.add_uri([nginx.url("/file1m.bin")], {"pause": True})
        assert s.status(paused).status is DownloadStatus.PAUSED
        assert s.tell_status(queued, ["status"]) == {"status": "waiting"}
        events = []
        async for event in s.events():
            events.append((event.kind, event.gid))
            if event == trioaria.DownloadEvent("start", slow):
                break
        s.remove(slow)
        assert (await s.wait(slow)).status is DownloadStatus.REMOVED
        done = await s.wait(queued)
        assert done.status is DownloadStatus.COMPLETE and done.completed_length > 0
        s.unpause(paused[:8])  # a unique prefix is enough, as over RPC
        assert (await s.wait(paused)).status is DownloadStatus.COMPLETE
        with pytest.raises(trioaria.ApiError, match="is not found"):
            s.status("0123456789abcdef")
        with pytest.raises(trioaria.ApiError):
            s.pause(queued)  # finished downloads cannot be paused
        assert {d.gid for d in s.downloads()} == {slow, queued, paused}
        assert s.global_stat().num_stopped == 3
        kinds = [e.kind for e in s.events_nowait()]
        assert "stop" in kinds and kinds.count("complete") == 2
    assert (tmp_path / "t.txt").exists()


async def test_session_add_metalink_and_torrent_bytes(nginx: NginxServer, tmp_path: Path) -> None:
    data = os.urandom(123_457)
    nginx.add_file("api-ml.bin", data)
    doc = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="ml.bin">'
        f"<size>{len(data)}</size>"
        f'<hash type="sha-256">{hashlib.sha256(data).hexdigest()}</hash>'
        f"<url>{nginx.url('/api-ml.bin')}</url></file></metalink>"
    ).encode()
    path = tmp_path / "doc.meta4"
    path.write_bytes(doc)
    async with trioaria.Session({"dir": tmp_path / "out"}) as s:
        (gid,) = s.add_metalink(path)
        assert (await s.wait(gid)).status is DownloadStatus.COMPLETE
        assert (tmp_path / "out" / "ml.bin").read_bytes() == data
        with pytest.raises(TrioariaError):
            s.add_torrent(b"not a torrent")
        # a torrent without peers stays queued/active; its status has the torrent's fields
        from tests.bt.swarm_helpers import make_torrent

        seed = tmp_path / "seed"
        seed.mkdir()
        torrent = make_torrent(seed, [("z.bin", b"z" * 40000)], name="z.bin")
        tgid = s.add_torrent(torrent, options={"pause": "true"})
        fields = s.tell_status(tgid, ["infoHash", "bittorrent", "status"])
        assert fields["status"] == "paused" and fields["bittorrent"]["info"] == {"name": "z.bin"}
        s.remove(tgid)


async def test_download_helper(nginx: NginxServer, tmp_path: Path) -> None:
    results = await trio.to_thread.run_sync(
        lambda: trioaria.download(
            [nginx.url("/text.txt"), nginx.url("/nothing-here.bin")], dir=str(tmp_path), max_tries=1
        )
    )
    assert [r.status for r in results] == [DownloadStatus.COMPLETE, DownloadStatus.ERROR]
    assert results[1].error_code == 3  # aria2's "resource not found"
