"""RPC for BitTorrent and Metalink: addTorrent, magnets through addUri, getPeers, the
``bittorrent`` fields of tellStatus, addMetalink and changeUri (issue 12, part 2).

aria2c seeds on 127.0.0.1 (through the loopback tracker of tests/bt); nginx serves the
Metalink mirrors.  The daemon is the in-process engine with the real RPC server.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.bt.swarm_helpers import make_torrent, start_aria2c, stop_process
from tests.bt.tracker_server import Tracker
from tests.rpc.rpc_util import Daemon, WsClient, running_daemon
from tests.servers.nginx import NginxServer, free_port
from trioaria.bt.metainfo import parse_torrent


@pytest.fixture
def tracker() -> Any:
    with Tracker(interval=1) as t:
        yield t


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def _wait_seeding_peer(d: Daemon, gid: str) -> list[dict[str, str]]:
    """getPeers (bounded) until a peer is listed as a seeder while the download runs.

    A peer is listed from its handshake on, and is a seeder only once its bitfield has
    arrived: waiting for the first listing alone raced with that message.  aria2c is
    listed once even when each side dialled the other (one connection is closed)."""
    peers: list[dict[str, str]] = []
    for _ in range(400):
        peers = list(await d.result("aria2.getPeers", gid))
        if any(p["seeder"] == "true" for p in peers):
            assert len(peers) == 1, peers
            return peers
        await trio.sleep(0.05)
    raise AssertionError(f"no seeding peer listed: {peers}")


async def test_add_torrent_peers_and_bittorrent_status(tmp_path: Path, tracker: Tracker) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(1024 * 1024 + 99)
    data = make_torrent(
        seed, [("a.bin", payload)], name="a.bin", piece_length=65536, announce=tracker.url
    )
    meta = parse_torrent(data)
    aria2c, _ = start_aria2c_file(tmp_path, data, seed)
    try:
        async with running_daemon(dl) as d, WsClient.connect(d.port) as ws:
            opts = {
                "listen-port": str(free_port()),
                "seed-time": "0",
                "max-download-limit": "256K",  # slow enough to see the peer while it runs
            }
            gid = await d.result("aria2.addTorrent", _b64(data), [], opts)
            # aria2 saves the upload as <dir>/<sha1 of the torrent>.torrent
            saved = dl / (hashlib.sha1(data).hexdigest() + ".torrent")
            assert saved.read_bytes() == data
            status = await d.result("aria2.tellStatus", gid)
            assert status["infoHash"] == meta.info_hash_hex
            assert status["bittorrent"]["announceList"] == [[tracker.url]]
            assert status["bittorrent"]["info"] == {"name": "a.bin"}
            assert status["bittorrent"]["mode"] == "single"
            assert status["seeder"] == "false"
            await d.wait_status(gid, "active")
            peers = await _wait_seeding_peer(d, gid)
            assert peers[0]["ip"] == "127.0.0.1" and peers[0]["seeder"] == "true"
            assert peers[0]["peerId"].startswith("A2-")  # aria2c's peer id, percent-encoded
            assert set(peers[0]) == {
                "peerId",
                "ip",
                "port",
                "bitfield",
                "amChoking",
                "peerChoking",
                "downloadSpeed",
                "uploadSpeed",
                "seeder",
            }
            assert (await d.result("aria2.tellStatus", gid, ["numSeeders"]))["numSeeders"] in (
                "0",
                "1",
            )
            await d.result("aria2.changeOption", gid, {"max-download-limit": "0"})
            done = await d.wait_status(gid, "complete", "error", limit=1200)
            assert done["status"] == "complete", done
            assert done["seeder"] == "true" and done["infoHash"] == meta.info_hash_hex
            await ws.notification("aria2.onBtDownloadComplete", gid)
            await ws.notification("aria2.onDownloadComplete", gid)
            methods = [m.get("method") for m in ws.messages]
            bt_first = methods.index("aria2.onBtDownloadComplete")
            assert bt_first < methods.index("aria2.onDownloadComplete")
            assert (dl / "a.bin").read_bytes() == payload
            files = await d.result("aria2.getFiles", gid)
            assert files[0]["path"] == str(dl / "a.bin")
            assert files[0]["length"] == str(len(payload))
            bad = await d.call("aria2.addTorrent", _b64(b"d4:infoi3ee"))
            assert bad["error"]["code"] == 1
    finally:
        stop_process(aria2c)


def start_aria2c_file(tmp_path: Path, data: bytes, seed: Path) -> Any:
    torrent = tmp_path / "seed.torrent"
    torrent.write_bytes(data)
    return start_aria2c(torrent, seed)


async def test_magnet_through_add_uri(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(300 * 1024 + 5)
    data = make_torrent(seed, [("m.bin", payload)], name="m.bin", piece_length=32768)
    meta = parse_torrent(data)
    aria2c, port = start_aria2c_file(tmp_path, data, seed)
    magnet = (
        f"magnet:?xt=urn:btih:{meta.info_hash_hex}&dn=m.bin"
        f"&tr=http%3A%2F%2F127.0.0.1%3A9%2Fannounce&x.pe=127.0.0.1:{port}"
    )
    try:
        async with running_daemon(dl) as d, WsClient.connect(d.port) as ws:
            opts = {"listen-port": str(free_port()), "seed-time": "10", "pause": "true"}
            opts["pause-metadata"] = "true"
            gid = await d.result("aria2.addUri", [magnet], opts)
            status = await d.result("aria2.tellStatus", gid)
            assert status["status"] == "paused"
            assert status["infoHash"] == meta.info_hash_hex
            assert status["bittorrent"] == {"announceList": [["http://127.0.0.1:9/announce"]]}
            assert await d.result("aria2.getUris", gid) == []  # a torrent has no mirrors
            await d.result("aria2.unpause", gid)
            # --pause-metadata: paused again once the metadata is there, nothing written yet
            for _ in range(1200):
                status = await d.result("aria2.tellStatus", gid)
                if status["status"] == "paused" and "info" in status["bittorrent"]:
                    break
                assert status["status"] in ("active", "paused"), status
                await trio.sleep(0.05)
            assert status["bittorrent"]["info"] == {"name": "m.bin"}, status
            assert not (dl / "m.bin").exists()
            await d.result("aria2.unpause", gid)
            # seeding (--seed-time=10 minutes): onBtDownloadComplete while still active
            await ws.notification("aria2.onBtDownloadComplete", gid)
            seeding = await d.result("aria2.tellStatus", gid, ["status", "seeder"])
            assert seeding == {"status": "active", "seeder": "true"}
            assert (dl / "m.bin").read_bytes() == payload
            await d.result("aria2.remove", gid)
            done = await d.wait_status(gid, "complete", "removed", "error", limit=1200)
            assert done["bittorrent"]["info"] == {"name": "m.bin"}
    finally:
        stop_process(aria2c)


def _meta4(files: list[tuple[str, bytes, str]]) -> bytes:
    body = "".join(
        f'<file name="{name}"><size>{len(data)}</size>'
        f'<hash type="sha-256">{hashlib.sha256(data).hexdigest()}</hash>'
        f'<url priority="1">{url}</url></file>'
        for name, data, url in files
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<metalink xmlns="urn:ietf:params:xml:ns:metalink">{body}</metalink>\n'
    ).encode()


async def test_add_metalink_one_download_per_file(nginx: NginxServer, tmp_path: Path) -> None:
    one, two = os.urandom(200_000), os.urandom(300_001)
    nginx.add_file("rpc-ml-1.bin", one)
    nginx.add_file("rpc-ml-2.bin", two)
    doc = _meta4(
        [
            ("one.bin", one, nginx.url("/rpc-ml-1.bin")),
            ("two.bin", two, nginx.url("/rpc-ml-2.bin")),
        ]
    )
    async with running_daemon(tmp_path) as d:
        gids = await d.result("aria2.addMetalink", _b64(doc), {"split": "2"})
        assert len(gids) == 2 and len(set(gids)) == 2
        assert (tmp_path / (hashlib.sha1(doc).hexdigest() + ".meta4")).read_bytes() == doc
        for gid in gids:
            done = await d.wait_status(gid, "complete", "error")
            assert done["status"] == "complete", done
            assert "bittorrent" not in done
        assert (tmp_path / "one.bin").read_bytes() == one
        assert (tmp_path / "two.bin").read_bytes() == two
        assert (await d.result("aria2.getOption", gids[0]))["split"] == "2"
        bad = await d.call("aria2.addMetalink", _b64(b"<not-metalink/>"))
        assert bad["error"]["code"] == 1


async def test_change_uri_on_a_paused_download(nginx: NginxServer, tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        broken = nginx.url("/missing-for-change-uri.bin")
        gid = await d.result("aria2.addUri", [broken, broken], {"pause": "true"})
        good = nginx.url("/file1m.bin")
        assert await d.result("aria2.changeUri", gid, 1, [broken, broken, "x"], [good]) == [2, 1]
        assert await d.result("aria2.getUris", gid) == [{"uri": good, "status": "waiting"}]
        # position puts the new URI first; invalid URIs are not added
        assert await d.result("aria2.changeUri", gid, 1, [], [broken, "nope"], 0) == [0, 1]
        assert [u["uri"] for u in await d.result("aria2.getUris", gid)] == [broken, good]
        assert (await d.call("aria2.changeUri", gid, 2, [], [good]))["error"]["code"] == 1
        assert (await d.call("aria2.changeUri", gid, 1, [], []))["result"] == [0, 0]
        await d.result("aria2.changeUri", gid, 1, [broken], [])
        await d.result("aria2.unpause", gid)
        done = await d.wait_status(gid, "complete", "error")
        assert done["status"] == "complete", done


async def test_upload_kept_in_memory_and_xmlrpc_base64(tmp_path: Path) -> None:
    import xmlrpc.client

    seed = tmp_path / "seed"
    seed.mkdir()
    data = make_torrent(seed, [("u.bin", b"u" * 40_000)], name="u.bin")
    session = tmp_path / "session.txt"
    async with running_daemon(tmp_path / "dl", **{"save-session": str(session)}) as d:
        opts = {"pause": "true", "rpc-save-upload-metadata": "false"}
        gid = await d.result("aria2.addTorrent", _b64(data), [], opts)
        assert not list((tmp_path / "dl").glob("*.torrent"))  # nothing written
        status = await d.result("aria2.tellStatus", gid, ["bittorrent", "infoHash"])
        assert status["bittorrent"]["info"] == {"name": "u.bin"}
        # XML-RPC carries the torrent as <base64>
        proxy = f"http://127.0.0.1:{d.port}/rpc"

        def add_over_xmlrpc() -> str:
            client = xmlrpc.client.ServerProxy(proxy)
            torrent = xmlrpc.client.Binary(data)
            return str(client.aria2.addTorrent("token:s3cret", torrent, [], {"pause": "true"}))

        other = await trio.to_thread.run_sync(add_over_xmlrpc)
        status = await d.result("aria2.tellStatus", other, ["infoHash", "status"])
        assert status == {"infoHash": parse_torrent(data).info_hash_hex, "status": "paused"}
        assert await d.result("aria2.saveSession") == "OK"
        text = session.read_text()
        assert other in text and gid not in text  # aria2: in-memory uploads are not saved


async def test_change_uri_on_a_running_download(nginx: NginxServer, tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d, WsClient.connect(d.port) as ws:
        slow = nginx.url("/slow/file5m.bin")
        gid = await d.result("aria2.addUri", [slow], {"out": "run.bin", "split": "1"})
        await ws.notification("aria2.onDownloadStart", gid)
        fast = nginx.url("/file5m.bin")
        assert await d.result("aria2.changeUri", gid, 1, [slow], [fast]) == [1, 1]
        # the download restarts with the new mirror (progress kept) and finishes from it
        done = await d.wait_status(gid, "complete", "error")
        assert done["status"] == "complete", done
        assert (tmp_path / "run.bin").read_bytes() == (nginx.root / "file5m.bin").read_bytes()
        assert [u["uri"] for u in done["files"][0]["uris"]] == [fast]


@pytest.mark.parametrize("save_upload", ["true", "false"])
async def test_add_torrent_uris_are_web_seeds(
    nginx: NginxServer, tmp_path: Path, save_upload: str
) -> None:
    # no tracker and no peer: the only source is the web seed given as addTorrent's uris
    name = f"ws-{os.urandom(4).hex()}.bin"
    payload = os.urandom(300 * 1024 + 11)
    seed = tmp_path / "seed"
    seed.mkdir()
    data = make_torrent(seed, [(name, payload)], name=name, piece_length=32768)
    nginx.add_file(name, payload)
    async with running_daemon(tmp_path / "dl") as d:
        opts = {
            "seed-time": "0",
            "listen-port": str(free_port()),
            "enable-dht": "false",
            "rpc-save-upload-metadata": save_upload,
        }
        gid = await d.result("aria2.addTorrent", _b64(data), [nginx.url("/")], opts)
        done = await d.wait_status(gid, "complete", "error", limit=1200)
        assert done["status"] == "complete", done
    assert (tmp_path / "dl" / name).read_bytes() == payload
    assert f"GET /{name} " in nginx.access_log.read_text()
