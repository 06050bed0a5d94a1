"""aria2p (the PyPI client for aria2) drives the trioaria daemon unchanged (issue 12, tests).

The daemon is ``trioaria --enable-rpc`` as a child process; aria2p talks to it exactly as it
talks to aria2c: JSON-RPC over HTTP for the calls, its WebSocket listener for notifications.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aria2p
import pytest

from tests.bt.swarm_helpers import make_torrent
from tests.e2e_util import ChildRun, start_trioaria
from tests.servers.nginx import NginxServer, free_port

SECRET = "s3cret"


def _wait(predicate: object, what: str, child: ChildRun, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():  # type: ignore[operator]
        assert child.poll() is None, child.describe()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{child.describe()}")
        time.sleep(0.05)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[aria2p.API, ChildRun, Path]]:
    port = free_port()
    dl = tmp_path / "dl"
    child = start_trioaria(
        [
            "--no-conf", "--enable-rpc", f"--rpc-secret={SECRET}", f"--rpc-listen-port={port}",
            "--summary-interval=0", f"--dir={dl}", "--max-concurrent-downloads=3",
        ],
        tmp_path,
        "daemon",
    )  # fmt: skip
    api = aria2p.API(aria2p.Client(host="http://127.0.0.1", port=port, secret=SECRET))

    def up() -> bool:
        try:
            api.get_stats()
        except Exception:  # not listening yet
            return False
        return True

    try:
        _wait(up, "the daemon", child)
        yield api, child, dl
    finally:
        child.kill()


def test_aria2p_drives_trioaria(
    daemon: tuple[aria2p.API, ChildRun, Path], nginx: NginxServer, tmp_path: Path
) -> None:
    api, child, dl = daemon
    seen: dict[str, set[str]] = {"start": set(), "pause": set(), "complete": set(), "stop": set()}
    lock = threading.Lock()

    def record(kind: str) -> Callable[[aria2p.API, str], None]:
        def callback(_api: aria2p.API, gid: str) -> None:
            with lock:
                seen[kind].add(gid)

        return callback

    api.listen_to_notifications(
        threaded=True,
        on_download_start=record("start"),
        on_download_pause=record("pause"),
        on_download_complete=record("complete"),
        on_download_stop=record("stop"),
        handle_signals=False,
        timeout=1,  # stop_listening waits up to this long for the listener thread
    )
    try:
        # add URIs, pause, unpause, change options, status
        slow = api.add_uris([nginx.url("/slow/file5m.bin")], options={"out": "slow.bin"})
        _wait(lambda: api.get_download(slow.gid).status == "active", "active", child)
        api.pause([slow])
        _wait(lambda: api.get_download(slow.gid).is_paused, "paused", child)
        assert api.set_options({"max-download-limit": "50K"}, [slow]) == [True]
        assert api.get_download(slow.gid).options.max_download_limit == 51200
        api.resume([slow])
        _wait(lambda: api.get_download(slow.gid).is_active, "resumed", child)
        fast = api.add_uris([nginx.url("/file1m.bin")])
        _wait(lambda: api.get_download(fast.gid).is_complete, "complete", child)
        done = api.get_download(fast.gid)
        assert done.total_length == 1 << 20 and done.name == "file1m.bin"
        assert done.files[0].path == dl / "file1m.bin"
        # a metalink: one download per file
        data = os.urandom(77_777)
        nginx.add_file("aria2p-ml.bin", data)
        doc = tmp_path / "x.meta4"
        doc.write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="ml.bin">'
            f"<size>{len(data)}</size>"
            f'<hash type="sha-256">{hashlib.sha256(data).hexdigest()}</hash>'
            f"<url>{nginx.url('/aria2p-ml.bin')}</url></file></metalink>"
        )
        (meta,) = api.add_metalink(doc)
        _wait(lambda: api.get_download(meta.gid).is_complete, "metalink", child)
        assert (dl / "ml.bin").read_bytes() == data
        # a torrent (kept paused: no peers here); aria2p reads its BitTorrent fields
        seed = tmp_path / "seed"
        seed.mkdir()
        torrent = tmp_path / "t.torrent"
        torrent.write_bytes(make_torrent(seed, [("t.bin", b"t" * 50_000)], name="t.bin"))
        tor = api.add_torrent(torrent, options={"pause": "true"})
        tor = api.get_download(tor.gid)
        assert tor.is_torrent and tor.is_paused and tor.name == "t.bin"
        assert len(tor.info_hash) == 40 and tor.bittorrent is not None
        assert tor.bittorrent.mode == "single"
        # remove
        api.remove([slow, tor])
        _wait(lambda: api.get_download(slow.gid).is_removed, "removed", child)
        stats = api.get_stats()
        assert stats.num_active == 0
        # notifications arrived over the WebSocket
        _wait(lambda: meta.gid in seen["complete"] and slow.gid in seen["stop"], "events", child)
        assert {slow.gid, fast.gid, meta.gid} <= seen["start"]
        assert slow.gid in seen["pause"] and fast.gid in seen["complete"]
    finally:
        api.stop_listening()
