"""The CLI daemon (``trioaria --enable-rpc``) next to ``aria2c --enable-rpc``: same calls, same shapes.

Both programs run as child processes on loopback ports from the OS, with the same secret; each
exchange is sent to both and the answers are compared: HTTP status, the keys of every struct and
the type of every value (aria2's numbers are strings), and the error messages.  Downloads come
from the session's nginx.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import trio

from tests.e2e_util import ChildRun, start_aria2c, start_trioaria
from tests.rpc.rpc_util import http_request
from tests.servers.nginx import NginxServer, free_port

SECRET = "s3cret"


def _shape(value: Any) -> Any:
    """Keys and value types, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


async def _post(port: int, body: Any) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    code, _, data = await http_request(port, "POST", "/jsonrpc", raw)
    return code, json.loads(data)


def _req(method: str, *params: Any, token: str = SECRET) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": "c", "method": method, "params": [f"token:{token}", *params]}


async def _ready(port: int, child: ChildRun) -> None:
    for _ in range(300):
        try:
            code, _ = await _post(port, _req("aria2.getGlobalStat"))
            if code == 200:
                return
        except (ConnectionError, OSError):
            pass
        assert child.process.poll() is None, child.describe()
        await trio.sleep(0.05)
    raise AssertionError(child.describe())


async def _complete(port: int, gid: str) -> dict[str, Any]:
    for _ in range(600):
        _, answer = await _post(port, _req("aria2.tellStatus", gid))
        if answer["result"]["status"] in ("complete", "error"):
            return dict(answer["result"])
        await trio.sleep(0.05)
    raise AssertionError(f"{gid} did not finish")


async def test_same_answers_as_aria2c(nginx: NginxServer, tmp_path: Path) -> None:
    ports = {"aria2c": free_port(), "trioaria": free_port()}
    common = [
        "--enable-rpc",
        f"--rpc-secret={SECRET}",
        "--summary-interval=0",
        "--max-concurrent-downloads=1",
    ]
    children = {
        "aria2c": start_aria2c(
            [*common, f"--rpc-listen-port={ports['aria2c']}", f"--dir={tmp_path / 'a'}"],
            tmp_path / "a",
            "aria2c",
        ),
        "trioaria": start_trioaria(
            [
                *common,
                "--no-conf",
                f"--rpc-listen-port={ports['trioaria']}",
                f"--dir={tmp_path / 't'}",
            ],
            tmp_path / "t",
            "trioaria",
        ),
    }
    try:
        for name, child in children.items():
            await _ready(ports[name], child)
        got: dict[str, dict[str, Any]] = {name: {} for name in ports}
        for name, port in ports.items():
            out = got[name]
            _, answer = await _post(
                port, _req("aria2.addUri", [nginx.url("/file1m.bin")], {"out": "one.bin"})
            )
            gid = answer["result"]
            out["complete"] = await _complete(port, gid)
            _, answer = await _post(
                port, _req("aria2.tellStatus", gid, ["gid", "status", "totalLength"])
            )
            out["keys"] = answer
            _, answer = await _post(
                port, _req("aria2.addUri", [nginx.url("/missing-file.bin")], {"max-tries": "1"})
            )
            out["error"] = await _complete(port, answer["result"])
            _, answer = await _post(
                port, _req("aria2.addUri", [nginx.url("/slow/file5m.bin")], {"out": "s.bin"})
            )
            slow = answer["result"]
            _, answer = await _post(
                port, _req("aria2.addUri", [nginx.url("/slow/file5m.bin")], {"out": "w.bin"})
            )
            queued = answer["result"]
            _, out["waiting"] = await _post(port, _req("aria2.tellWaiting", 0, 10))
            _, out["position"] = await _post(
                port, _req("aria2.changePosition", queued, 0, "POS_SET")
            )
            _, out["pause"] = await _post(port, _req("aria2.pause", queued))
            _, out["paused"] = await _post(port, _req("aria2.tellStatus", queued, ["status"]))
            _, out["unpause"] = await _post(port, _req("aria2.unpause", queued))
            _, out["stat"] = await _post(port, _req("aria2.getGlobalStat"))
            _, out["stopped"] = await _post(
                port, _req("aria2.tellStopped", -1, 1, ["status", "errorCode"])
            )
            _, out["uris"] = await _post(port, _req("aria2.getUris", queued))
            _, out["change"] = await _post(
                port, _req("aria2.changeOption", slow, {"max-download-limit": "20K"})
            )
            _, out["option"] = await _post(port, _req("aria2.getOption", slow))
            _, out["version"] = await _post(port, _req("aria2.getVersion"))
            _, out["session"] = await _post(port, _req("aria2.getSessionInfo"))
            _, out["notifications"] = await _post(
                port, {"jsonrpc": "2.0", "id": 1, "method": "system.listNotifications"}
            )
            _, out["methods"] = await _post(
                port, {"jsonrpc": "2.0", "id": 1, "method": "system.listMethods"}
            )
            out["bad_token"] = await _post(port, _req("aria2.getVersion", token="wrong"))
            out["unknown_gid"] = await _post(port, _req("aria2.tellStatus", "0123456789abcdef"))
            out["bad_param"] = await _post(port, _req("aria2.tellStatus", 5))
            out["no_method"] = await _post(port, _req("aria2.noSuchMethod"))
            out["parse"] = await _post(port, b"{bad json")
            out["invalid"] = await _post(port, b"[1, 2]")
            out["batch"] = await _post(
                port, [_req("aria2.getGlobalStat"), _req("aria2.tellActive", ["gid"])]
            )
            out["multicall"] = await _post(
                port,
                {
                    "jsonrpc": "2.0",
                    "id": "m",
                    "method": "system.multicall",
                    "params": [
                        [
                            {"methodName": "aria2.getGlobalStat", "params": [f"token:{SECRET}"]},
                            {"methodName": "aria2.getVersion", "params": ["token:wrong"]},
                        ]
                    ],
                },
            )
            params = base64.b64encode(json.dumps([f"token:{SECRET}"]).encode()).decode()
            code, headers, body = await http_request(
                port,
                "GET",
                f"/jsonrpc?method=aria2.getGlobalStat&id=g&params={params}&jsoncallback=cb",
            )
            out["jsonp"] = (code, headers["content-type"], body[:3], body[-2:])
            _, out["remove"] = await _post(port, _req("aria2.forceRemove", slow))
            _, out["shutdown"] = await _post(port, _req("aria2.shutdown"))
        a, t = got["aria2c"], got["trioaria"]
        for key in (
            "complete",
            "keys",
            "error",
            "waiting",
            "stat",
            "stopped",
            "uris",
            "change",
            "session",
            "batch",
            "multicall",
            "jsonp",
        ):
            assert _shape(t[key]) == _shape(a[key]), key
        for key in (
            "position",
            "paused",
            "notifications",
            "bad_token",
            "unknown_gid",
            "bad_param",
            "no_method",
            "parse",
            "invalid",
        ):
            assert t[key] == a[key], key
        for key in ("pause", "unpause"):  # the GID differs, the form does not
            assert _shape(t[key]) == _shape(a[key]) and len(t[key]["result"]) == 16, key
        assert set(a["methods"]["result"]) <= set(t["methods"]["result"])
        assert (
            a["option"]["result"]["max-download-limit"]
            == t["option"]["result"]["max-download-limit"]
            == "20480"
        )
        assert _shape(a["version"]) == _shape(t["version"])
        assert (a["error"]["errorCode"], t["error"]["errorCode"]) == ("3", "3")
        assert a["complete"]["files"][0]["uris"][0] == t["complete"]["files"][0]["uris"][0]
        # aria2.shutdown ends both; the exit status is the last error's (3: not found)
        codes = [child.wait(30) for child in children.values()]
        assert codes == [3, 3], [c.describe() for c in children.values()]
    finally:
        for child in children.values():
            child.kill()


async def test_torrent_metalink_and_change_uri_like_aria2c(
    nginx: NginxServer, tmp_path: Path
) -> None:
    from tests.bt.swarm_helpers import make_torrent

    seed = tmp_path / "seed"
    seed.mkdir()
    torrent = make_torrent(
        seed,
        [("d/a.bin", b"a" * 40000), ("d/b.bin", b"b" * 30000)],
        name="multi",
        announce="http://127.0.0.1:9/announce",
    )
    metalink = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink">'
        f'<file name="m1.bin"><url>{nginx.url("/file1m.bin")}</url></file>'
        f'<file name="m2.bin"><url>{nginx.url("/text.txt")}</url></file></metalink>'
    ).encode()
    ports = {"aria2c": free_port(), "trioaria": free_port()}
    common = ["--enable-rpc", f"--rpc-secret={SECRET}", "--summary-interval=0"]
    children = {
        "aria2c": start_aria2c(
            [
                *common,
                f"--rpc-listen-port={ports['aria2c']}",
                f"--dir={tmp_path / 'a'}",
                f"--listen-port={free_port()}",
            ],
            tmp_path / "a",
            "aria2c",
        ),
        "trioaria": start_trioaria(
            [
                *common,
                "--no-conf",
                f"--rpc-listen-port={ports['trioaria']}",
                f"--dir={tmp_path / 't'}",
                f"--listen-port={free_port()}",
            ],
            tmp_path / "t",
            "trioaria",
        ),
    }
    b64 = base64.b64encode
    paused = {"pause": "true"}
    try:
        got: dict[str, dict[str, Any]] = {name: {} for name in ports}
        for name, port in ports.items():
            await _ready(port, children[name])
            out = got[name]
            _, answer = await _post(
                port, _req("aria2.addTorrent", b64(torrent).decode(), [], paused)
            )
            gid = answer["result"]
            _, out["status"] = await _post(port, _req("aria2.tellStatus", gid))
            _, out["files"] = await _post(port, _req("aria2.getFiles", gid))
            _, out["peers"] = await _post(port, _req("aria2.getPeers", gid))
            _, out["metalink"] = await _post(
                port, _req("aria2.addMetalink", b64(metalink).decode(), paused)
            )
            first = out["metalink"]["result"][0]
            _, out["ml_status"] = await _post(port, _req("aria2.tellStatus", first, ["status"]))
            _, out["change"] = await _post(
                port,
                _req("aria2.changeUri", first, 1, [nginx.url("/file1m.bin")], ["http://x/y", "z"]),
            )
            _, out["uris"] = await _post(port, _req("aria2.getUris", first))
            _, out["bad_index"] = await _post(port, _req("aria2.changeUri", first, 5, [], []))
            _, out["bad_torrent"] = await _post(
                port, _req("aria2.addTorrent", b64(b"d4:infoi3ee").decode())
            )
            _, out["shutdown"] = await _post(port, _req("aria2.forceShutdown"))
        a, t = got["aria2c"], got["trioaria"]
        for key in ("status", "files", "peers", "metalink", "ml_status", "change", "uris"):
            if _shape(t[key]) != _shape(a[key]):
                print("DIFF", key, json.dumps(a[key]), "\nTRIO", json.dumps(t[key]))
            assert _shape(t[key]) == _shape(a[key]), key
        bt_a, bt_t = a["status"]["result"], t["status"]["result"]
        for key in ("infoHash", "numSeeders", "seeder", "bittorrent", "totalLength", "numPieces"):
            assert bt_t[key] == bt_a[key], key
        assert t["change"] == a["change"] and t["uris"] == a["uris"]
        assert [f["path"].rpartition("/multi/")[2] for f in t["files"]["result"]] == [
            f["path"].rpartition("/multi/")[2] for f in a["files"]["result"]
        ]
        assert "error" in t["bad_index"] and "error" in a["bad_index"]
        assert "error" in t["bad_torrent"] and "error" in a["bad_torrent"]
        for child in children.values():
            child.wait(30)
    finally:
        for child in children.values():
            child.kill()


async def test_websocket_notifications_like_aria2c(nginx: NginxServer, tmp_path: Path) -> None:
    from tests.rpc.rpc_util import WsClient

    ports = {"aria2c": free_port(), "trioaria": free_port()}
    common = ["--enable-rpc", f"--rpc-secret={SECRET}", "--summary-interval=0"]
    children = {
        "aria2c": start_aria2c(
            [*common, f"--rpc-listen-port={ports['aria2c']}", f"--dir={tmp_path / 'a'}"],
            tmp_path / "a",
            "aria2c",
        ),
        "trioaria": start_trioaria(
            [
                *common,
                "--no-conf",
                f"--rpc-listen-port={ports['trioaria']}",
                f"--dir={tmp_path / 't'}",
            ],
            tmp_path / "t",
            "trioaria",
        ),
    }
    try:
        seen: dict[str, list[Any]] = {}
        for name, port in ports.items():
            await _ready(port, children[name])
            async with WsClient.connect(port) as ws:
                answer = await ws.call("aria2.addUri", [nginx.url("/text.txt")], {"pause": "true"})
                gid = answer["result"]
                await ws.call("aria2.unpause", gid, request_id="u")
                await ws.notification("aria2.onDownloadComplete", gid)
                removed = await ws.call("aria2.addUri", [nginx.url("/slow/file5m.bin")])
                await ws.notification("aria2.onDownloadStart", removed["result"])
                await ws.call("aria2.forceRemove", removed["result"], request_id="r")
                await ws.notification("aria2.onDownloadStop", removed["result"])
                bad = await ws.call("aria2.tellStatus", "0123456789abcdef", request_id="b")
                ids = {gid: "G", removed["result"]: "R"}
                seen[name] = [
                    (m["method"], [{"gid": ids[p["gid"]]} for p in m["params"]], m["jsonrpc"])
                    for m in ws.messages
                    if "method" in m
                ]
                seen[name].append(("answer", _shape(answer), _shape(bad), bad["error"]))
            await _post(port, _req("aria2.forceShutdown"))
        assert seen["trioaria"] == seen["aria2c"]
    finally:
        for child in children.values():
            child.kill()
