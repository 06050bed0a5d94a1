"""The RPC server end to end, in process: real engine, real downloads (nginx), real clients.

Clients: http.client for JSON-RPC over POST/GET (in a worker thread), Python's xmlrpc.client for
XML-RPC, and a wsproto WebSocket client for JSON-RPC over WebSocket and notifications.
"""

from __future__ import annotations

import base64
import json
import random
import xmlrpc.client
from pathlib import Path

import trio

from tests.rpc.rpc_util import SECRET, WsClient, http_request, running_daemon
from tests.servers.nginx import NginxServer


async def test_websocket_add_notifications_and_status(nginx: NginxServer, tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d, WsClient.connect(d.port) as ws:
        answer = await ws.call("aria2.addUri", [nginx.url("/file1m.bin")], {"out": "ws.bin"})
        gid = answer["result"]
        assert len(gid) == 16 and int(gid, 16) >= 0
        await ws.notification("aria2.onDownloadStart", gid)
        await ws.notification("aria2.onDownloadComplete", gid)
        assert (tmp_path / "ws.bin").stat().st_size == 1 << 20
        status = await d.result("aria2.tellStatus", gid)
        assert status["status"] == "complete"
        assert (status["completedLength"], status["totalLength"]) == ("1048576", "1048576")
        assert status["errorCode"] == "0" and status["dir"] == str(tmp_path)
        assert status["bitfield"] == "80" and status["numPieces"] == "1"
        assert status["files"][0]["path"] == str(tmp_path / "ws.bin")
        assert status["files"][0]["uris"] == [{"uri": nginx.url("/file1m.bin"), "status": "used"}]
        assert await d.result("aria2.tellStatus", gid[:6], ["gid", "status"]) == {
            "gid": gid,
            "status": "complete",
        }
        assert [s["gid"] for s in await d.result("aria2.tellStopped", 0, 10)] == [gid]
        assert await d.result("aria2.getGlobalStat") == {
            "downloadSpeed": "0",
            "uploadSpeed": "0",
            "numActive": "0",
            "numWaiting": "0",
            "numStopped": "1",
            "numStoppedTotal": "1",
        }
        # a batch over the WebSocket too
        await ws.send_text(
            json.dumps(
                [
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "aria2.getVersion",
                        "params": [f"token:{SECRET}"],
                    },
                    {"jsonrpc": "2.0", "id": 2, "method": "system.listNotifications"},
                ]
            )
        )
        with trio.fail_after(30):
            while not any(isinstance(m, list) for m in ws.messages):
                await ws._pump()
        batch = next(m for m in ws.messages if isinstance(m, list))
        assert [r["id"] for r in batch] == [1, 2] and "aria2.onDownloadError" in batch[1]["result"]
        assert await d.result("aria2.removeDownloadResult", gid) == "OK"
        gone = await d.call("aria2.tellStatus", gid)
        assert gone["error"] == {"code": 1, "message": f"GID {gid} is not found"}


async def test_failed_download_is_an_error_with_notification(
    nginx: NginxServer, tmp_path: Path
) -> None:
    async with running_daemon(tmp_path) as d, WsClient.connect(d.port) as ws:
        gid = (await ws.call("aria2.addUri", [nginx.url("/missing-file.bin")], {"max-tries": "1"}))[
            "result"
        ]
        await ws.notification("aria2.onDownloadError", gid)
        status = await d.result("aria2.tellStatus", gid, ["status", "errorCode", "errorMessage"])
        assert status["status"] == "error" and status["errorCode"] == "3" and status["errorMessage"]


async def test_xmlrpc_with_python_client(nginx: NginxServer, tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        url = f"http://127.0.0.1:{d.port}/rpc"

        def client() -> tuple[str, dict[str, str], list[object], str]:
            s = xmlrpc.client.ServerProxy(url)
            opts = {"out": "x.bin", "header": ["X-A: 1", "X-B: 2"]}
            gid = s.aria2.addUri(f"token:{SECRET}", [nginx.url("/file1m.bin")], opts, 0)
            for _ in range(600):
                status = s.aria2.tellStatus(f"token:{SECRET}", gid, ["status", "totalLength"])
                if status["status"] == "complete":
                    break
                trio.from_thread.run(trio.sleep, 0.05)
            multi = xmlrpc.client.MultiCall(s)
            multi.aria2.getOption(f"token:{SECRET}", gid)
            multi.aria2.getVersion("token:wrong")
            try:
                results: list[object] = list(multi())
            except xmlrpc.client.Fault as fault:  # MultiCall raises on the first fault
                results = [fault.faultString]
            try:
                s.aria2.tellStatus(f"token:{SECRET}", "0123456789abcdef")
                fault_text = ""
            except xmlrpc.client.Fault as fault:
                fault_text = f"{fault.faultCode} {fault.faultString}"
            return gid, status, results, fault_text

        gid, status, results, fault_text = await trio.to_thread.run_sync(client)
        assert status == {"status": "complete", "totalLength": "1048576"}
        assert (tmp_path / "x.bin").exists()
        assert results == ["Unauthorized"]
        assert fault_text == "1 GID 0123456789abcdef is not found"
        options = await d.result("aria2.getOption", gid)
        assert options["out"] == "x.bin" and options["header"] == "X-A: 1\nX-B: 2"
        # malformed XML and entity tricks: HTTP 400, no body (aria2)
        for body in (
            b"<methodCall>",
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><methodCall><methodName>&a;</methodName></methodCall>',
        ):
            status_code, _, data = await http_request(d.port, "POST", "/rpc", body)
            assert (status_code, data) == (400, b"")


async def test_http_transport_details(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, **{"rpc-max-request-size": "4K"}) as d:
        params = base64.b64encode(json.dumps([f"token:{SECRET}"]).encode()).decode()
        code, headers, body = await http_request(
            d.port, "GET", f"/jsonrpc?method=aria2.getVersion&id=g1&params={params}&jsoncallback=cb"
        )
        assert code == 200 and headers["content-type"] == "text/javascript"
        assert body.startswith(b'cb({"id":"g1","jsonrpc":"2.0","result":{') and body.endswith(b"})")
        batch = json.dumps(
            [
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "aria2.getGlobalStat",
                    "params": [f"token:{SECRET}"],
                },
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "aria2.tellActive",
                    "params": [f"token:{SECRET}", ["gid"]],
                },
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "aria2.nosuch",
                    "params": [f"token:{SECRET}"],
                },
            ]
        )
        code, headers, body = await http_request(d.port, "POST", "/jsonrpc", batch.encode())
        answers = json.loads(body)
        assert code == 200 and headers["content-type"] == "application/json-rpc"
        assert [a["id"] for a in answers] == [1, 2, 3] and answers[1]["result"] == []
        assert answers[2]["error"] == {"code": 1, "message": "No such method: aria2.nosuch"}
        code, headers, body = await http_request(d.port, "POST", "/jsonrpc", b"{bad json")
        assert (code, headers["connection"]) == (500, "close")
        assert json.loads(body) == {
            "id": None,
            "jsonrpc": "2.0",
            "error": {"code": -32700, "message": "Parse error."},
        }
        bad = json.dumps(
            {"jsonrpc": "2.0", "id": "q4", "method": "aria2.getVersion", "params": ["token:wrong"]}
        )
        code, _, body = await http_request(d.port, "POST", "/jsonrpc", bad.encode())
        assert code == 400 and json.loads(body)["error"] == {"code": 1, "message": "Unauthorized"}
        assert (await http_request(d.port, "GET", "/nothing"))[0] == 404
        code, _, body = await http_request(d.port, "POST", "/jsonrpc", b"[" + b" " * 5000 + b"]")
        assert code == 413 and "rpc-max-request-size" in json.loads(body)["error"]["message"]
        # a CORS preflight without --rpc-allow-origin-all gets no CORS headers
        code, headers, _ = await http_request(
            d.port,
            "OPTIONS",
            "/jsonrpc",
            headers={"Origin": "http://x", "Access-Control-Request-Method": "POST"},
        )
        assert code == 200 and "access-control-allow-origin" not in headers
    async with running_daemon(tmp_path, **{"rpc-allow-origin-all": "true"}) as d:
        code, headers, _ = await http_request(
            d.port,
            "OPTIONS",
            "/jsonrpc",
            headers={
                "Origin": "http://x",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert code == 200 and headers["access-control-allow-origin"] == "*"
        assert headers["access-control-allow-methods"] == "POST, GET, OPTIONS"
        assert headers["access-control-allow-headers"] == "content-type"


async def test_queue_control(nginx: NginxServer, tmp_path: Path) -> None:
    slow = nginx.url("/slow/file5m.bin")  # 100 KiB/s: stays active for the whole test
    async with running_daemon(tmp_path) as d, WsClient.connect(d.port) as ws:
        assert (
            await d.result(
                "aria2.changeGlobalOption",
                {"max-concurrent-downloads": "1", "max-overall-download-limit": "10M"},
            )
            == "OK"
        )
        assert d.engine.download_limit.rate == 10 << 20
        first = await d.result("aria2.addUri", [slow], {"out": "a.bin"})
        await d.wait_status(first, "active")
        b, c, e = [await d.result("aria2.addUri", [slow], {"out": f"{n}.bin"}) for n in "bce"]
        front = await d.result("aria2.addUri", [slow], {"out": "f.bin"}, 0)
        waiting = [s["gid"] for s in await d.result("aria2.tellWaiting", 0, 10, ["gid"])]
        assert waiting == [front, b, c, e]
        assert [s["gid"] for s in await d.result("aria2.tellWaiting", -1, 2, ["gid"])] == [e, c]
        assert [s["gid"] for s in await d.result("aria2.tellWaiting", 1, 2, ["gid"])] == [b, c]
        assert await d.result("aria2.changePosition", e, 0, "POS_SET") == 0
        assert await d.result("aria2.changePosition", e, 2, "POS_CUR") == 2
        assert await d.result("aria2.changePosition", e, -10, "POS_END") == 0
        assert await d.result("aria2.changePosition", e, 0, "POS_END") == 3
        not_queued = await d.call("aria2.changePosition", first, 0, "POS_SET")
        assert not_queued["error"]["message"] == f"GID#{first} not found in the waiting queue."
        # options: max-download-limit applies live to the active download
        assert await d.result("aria2.changeOption", first, {"max-download-limit": "50K"}) == "OK"
        group = d.engine.find(first)
        assert group is not None and group.speed_limit.rate == 50 * 1024
        assert (await d.result("aria2.getOption", first))["max-download-limit"] == "51200"
        assert "rpc-secret" not in await d.result("aria2.getGlobalOption")
        assert (await d.result("aria2.getGlobalOption"))["max-concurrent-downloads"] == "1"
        servers = await d.result("aria2.getServers", first)
        assert servers[0]["index"] == "1" and servers[0]["servers"][0]["uri"] == slow
        assert await d.result("aria2.getPeers", first) == []
        assert await d.result("aria2.getUris", b) == [{"uri": slow, "status": "waiting"}]
        # pause the active one: it goes to the front of the queue, paused
        assert await d.result("aria2.pause", first) == first
        await ws.notification("aria2.onDownloadPause", first)
        paused = await d.wait_status(first, "paused")
        assert paused["files"][0]["path"] == str(tmp_path / "a.bin")
        assert (await d.result("aria2.tellWaiting", 0, 1, ["gid", "status"])) == [
            {"gid": first, "status": "paused"}
        ]
        again = await d.call("aria2.pause", first)
        assert again["error"]["message"] == f"GID#{first} cannot be paused now"
        # the next queued download starts meanwhile; pauseAll / unpauseAll
        assert await d.result("aria2.pauseAll") == "OK"
        for _ in range(400):
            statuses = {s["status"] for s in await d.result("aria2.tellWaiting", 0, 10, ["status"])}
            if statuses == {"paused"} and not await d.result("aria2.tellActive"):
                break
            await trio.sleep(0.05)
        assert statuses == {"paused"}
        assert await d.result("aria2.unpauseAll") == "OK"
        for _ in range(400):
            running = [a["gid"] for a in await d.result("aria2.tellActive", ["gid"])]
            if running:
                break
            await trio.sleep(0.05)
        (active,) = running  # -j 1: the paused download at the queue's front runs again
        queued = [s["gid"] for s in await d.result("aria2.tellWaiting", 0, 10, ["gid"])]
        assert sorted([active, *queued]) == sorted([first, front, b, c, e])
        assert (await d.call("aria2.unpause", b))["error"][
            "message"
        ] == f"GID#{b} cannot be unpaused now"
        # remove a queued one: gone (aria2); forceRemove the active one: removed, notified
        assert await d.result("aria2.remove", c) == c
        assert (await d.call("aria2.tellStatus", c))["error"]["message"] == f"GID {c} is not found"
        assert await d.result("aria2.forceRemove", active) == active
        await ws.notification("aria2.onDownloadStop", active)
        removed = await d.wait_status(active, "removed")
        assert removed["errorCode"] == "31"
        stat = await d.result("aria2.getGlobalStat")
        assert stat["numStopped"] == "1" and stat["numWaiting"] in ("2", "3")
        assert await d.result("aria2.purgeDownloadResult") == "OK"
        assert await d.result("aria2.tellStopped", 0, 10) == []
        assert (await d.call("aria2.removeDownloadResult", b))["error"][
            "message"
        ] == f"Could not remove download result of GID#{b}"


async def test_save_session_and_shutdown(nginx: NginxServer, tmp_path: Path) -> None:
    session = tmp_path / "session.txt"
    async with running_daemon(tmp_path, **{"save-session": str(session)}) as d:
        gid = await d.result(
            "aria2.addUri", [nginx.url("/slow/file5m.bin")], {"pause": "true", "split": "2"}
        )
        assert (await d.result("aria2.tellStatus", gid, ["status"])) == {"status": "paused"}
        assert await d.result("aria2.saveSession") == "OK"
        assert (
            session.read_text()
            == f"{nginx.url('/slow/file5m.bin')}\n gid={gid}\n pause=true\n dir={tmp_path}\n split=2\n"
        )
        assert await d.result("aria2.shutdown") == "OK"
        with trio.fail_after(30):
            while not d.engine.is_shutting_down:
                await trio.sleep(0.01)
    async with running_daemon(tmp_path) as d:
        assert (await d.call("aria2.saveSession"))["error"]["message"] == "Filename is not given."


async def test_garbage_never_breaks_the_server(tmp_path: Path) -> None:
    """Random bytes on every endpoint: an aria2 error answer each time, and the server lives on."""
    rng = random.Random(12)
    bodies = [rng.randbytes(rng.randrange(0, 300)) for _ in range(40)]
    bodies += [
        b"[" * 5000,
        b'{"id":1,"method":"aria2.tellStatus","params":[{"a":[]}]}',
        b"\xff" * 50,
    ]
    async with running_daemon(tmp_path) as d:
        for body in bodies:
            code, _, data = await http_request(d.port, "POST", "/jsonrpc", body)
            answer = json.loads(data)
            assert code in (200, 400, 500) and (
                answer == [] or "error" in answer or isinstance(answer, list)
            )
            code, _, data = await http_request(d.port, "POST", "/rpc", body)
            assert code == 400 and data == b""
        assert (await d.result("aria2.getGlobalStat"))["numActive"] == "0"


async def test_remove_with_files(nginx: NginxServer, tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        assert (
            "trioaria.removeWithFiles" in (await d.call("system.listMethods", token=None))["result"]
        )
        gid = await d.result("aria2.addUri", [nginx.url("/slow/file5m.bin")], {"out": "gone.bin"})
        for _ in range(600):  # bounded: until bytes are on disk and the control file exists
            status = await d.result("aria2.tellStatus", gid, ["completedLength"])
            if int(status["completedLength"]) > 0 and (tmp_path / "gone.bin.aria2").exists():
                break
            await trio.sleep(0.05)
        assert (tmp_path / "gone.bin").exists()
        assert await d.result("trioaria.removeWithFiles", gid) == gid
        await d.wait_status(gid, "removed")
        assert not (tmp_path / "gone.bin").exists()
        assert not (tmp_path / "gone.bin.aria2").exists()
        # a queued download is dropped at once (nothing on disk to delete)
        queued = await d.result("aria2.addUri", [nginx.url("/file1m.bin")], {"pause": "true"})
        assert await d.result("trioaria.removeWithFiles", queued[:6]) == queued
        missing = await d.call("trioaria.removeWithFiles", "0123456789abcdef")
        assert missing["error"]["message"] == "GID 0123456789abcdef is not found"


async def test_answers_are_gzipped_when_the_client_accepts_it(tmp_path: Path) -> None:
    import gzip

    async with running_daemon(tmp_path) as d:
        body = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "aria2.getVersion", "params": [f"token:{SECRET}"]}
        ).encode()
        for accept in ("gzip, deflate", "br;q=1, gzip;q=0.5"):
            code, headers, data = await http_request(
                d.port, "POST", "/jsonrpc", body, {"Accept-Encoding": accept}
            )
            assert code == 200 and headers["content-encoding"] == "gzip"
            assert "version" in json.loads(gzip.decompress(data))["result"]
        for accept in ("identity", "gzip;q=0"):
            code, headers, data = await http_request(
                d.port, "POST", "/jsonrpc", body, {"Accept-Encoding": accept}
            )
            assert "content-encoding" not in headers and json.loads(data)["id"] == 1


async def test_max_download_result_keeps_unfinished_ones(
    nginx: NginxServer, tmp_path: Path
) -> None:
    for keep, expected in (("true", ["e1", "e2"]), ("false", ["o2"])):
        extra = {"max-download-result": "1", "keep-unfinished-download-result": keep}
        async with running_daemon(tmp_path / keep, **extra) as d:
            names: dict[str, str] = {}
            for name, path in (
                ("e1", "/nope1"),
                ("o1", "/text.txt"),
                ("e2", "/nope2"),
                ("o2", "/text.txt"),
            ):
                gid = await d.result("aria2.addUri", [nginx.url(path)], {"out": name})
                names[gid] = name
                for _ in range(600):  # bounded: until it left the queue (its result may go)
                    if not any(g.gid == gid for g in (*d.engine.active, *d.engine.waiting)):
                        break
                    await trio.sleep(0.02)
            stopped = await d.result("aria2.tellStopped", 0, 10, ["gid"])
            assert [names[s["gid"]] for s in stopped] == expected, keep
