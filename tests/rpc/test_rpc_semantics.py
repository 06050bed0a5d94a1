"""RPC methods as aria2 answers them: addUri adds one download (its GID the one returned),
and removing or pausing a download that never ran runs no hook."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.rpc.rpc_util import running_daemon

MAGNET_A = "magnet:?xt=urn:btih:" + "a" * 40
MAGNET_B = "magnet:?xt=urn:btih:" + "b" * 40


async def test_add_uri_registers_exactly_one_download_for_two_magnets(tmp_path: Path) -> None:
    # aria2 AddUriRpcMethod: addRequestGroup(result.front()) -- one download, its GID returned.
    with trio.fail_after(10):
        async with running_daemon(tmp_path) as d:
            gid = await d.result("aria2.addUri", [MAGNET_A, MAGNET_B], {"pause": "true"})
            waiting = [s["gid"] for s in await d.result("aria2.tellWaiting", 0, 10, ["gid"])]
            assert waiting == [gid]
            assert (await d.result("aria2.getGlobalStat"))["numWaiting"] == "1"


async def test_add_uri_two_mirrors_of_one_torrent_url_is_one_download(tmp_path: Path) -> None:
    # "uris is an array of HTTP/FTP/SFTP/BitTorrent URIs pointing to the same resource":
    # two mirrors of one .torrent are one download (aria2c: one GID in the queue).
    with trio.fail_after(10):
        async with running_daemon(tmp_path) as d:
            uris = ["http://127.0.0.1:9/a/x.torrent", "http://127.0.0.1:9/b/x.torrent"]
            gid = await d.result("aria2.addUri", uris, {"pause": "true"})
            waiting = [s["gid"] for s in await d.result("aria2.tellWaiting", 0, 10, ["gid"])]
            assert waiting == [gid]


async def test_add_uri_with_position_does_not_scatter_extra_downloads(tmp_path: Path) -> None:
    # a magnet next to an HTTP URI: aria2 registers one download (the HTTP one, stream URIs
    # first); here two are queued at position 0 and 1, the second with a GID never returned.
    with trio.fail_after(10):
        async with running_daemon(tmp_path) as d:
            first = await d.result("aria2.addUri", ["http://127.0.0.1:9/f"], {"pause": "true"})
            gid = await d.result(
                "aria2.addUri", [MAGNET_A, "http://127.0.0.1:9/g"], {"pause": "true"}, 0
            )
            waiting = [s["gid"] for s in await d.result("aria2.tellWaiting", 0, 10, ["gid"])]
            assert waiting == [gid, first]


async def test_removing_a_queued_download_runs_no_stop_hook(tmp_path: Path) -> None:
    # aria2 removeDownload: a waiting/paused download is dropped with removeReservedGroup --
    # no onDownloadStop notification and no --on-download-stop hook (aria2c runs none).  A
    # common hook deletes "$3" on stop; here it is called with the path of a file the
    # download never wrote.
    log = tmp_path / "hook.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$1 $3" >> {log}\n')
    hook.chmod(0o755)
    with trio.fail_after(10):
        async with running_daemon(tmp_path, **{"on-download-stop": str(hook)}) as d:
            gid = await d.result("aria2.addUri", ["http://127.0.0.1:9/f.bin"], {"pause": "true"})
            assert await d.result("aria2.remove", gid) == gid
            await trio.sleep(1.0)
    assert not log.exists(), log.read_text()
