"""The daemon at scale (issue 12, tests): 1,000 queued downloads, 100 WebSocket clients.

Timing against aria2c is measured by ``bench/rpc_queue.py`` (never a timed assert here); these
tests check that the answers stay right and complete at that size.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from pathlib import Path

import trio

from tests.rpc.rpc_util import SECRET, WsClient, http_request, running_daemon
from tests.servers.nginx import NginxServer

QUEUE = 1000
CLIENTS = 100


async def test_thousand_queued_downloads(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        calls = [
            {
                "methodName": "aria2.addUri",
                "params": [f"token:{SECRET}", [f"http://127.0.0.1:9/f{i}"], {"pause": "true"}],
            }
            for i in range(QUEUE)
        ]
        added = (await d.call("system.multicall", calls, token=None))["result"]
        gids = [r[0] for r in added]
        assert len(set(gids)) == QUEUE
        waiting = await d.result("aria2.tellWaiting", 0, QUEUE)
        assert [w["gid"] for w in waiting] == gids
        assert {w["status"] for w in waiting} == {"paused"}
        assert waiting[5]["files"][0]["uris"] == [
            {"uri": "http://127.0.0.1:9/f5", "status": "waiting"}
        ]
        tail = await d.result("aria2.tellWaiting", -1, 3, ["gid"])
        assert [t["gid"] for t in tail] == gids[::-1][:3]
        window = await d.result("aria2.tellWaiting", 990, 100, ["gid"])
        assert [w["gid"] for w in window] == gids[990:]
        stat = await d.result("aria2.getGlobalStat")
        assert stat["numWaiting"] == str(QUEUE) and stat["numActive"] == "0"
        # the queue can be reordered and emptied at that size too
        assert await d.result("aria2.changePosition", gids[-1], 0, "POS_SET") == 0
        assert (await d.result("aria2.tellWaiting", 0, 1, ["gid"]))[0]["gid"] == gids[-1]
        await d.result("aria2.forcePauseAll")
        removals = [{"methodName": "aria2.remove", "params": [f"token:{SECRET}", g]} for g in gids]
        removed = (await d.call("system.multicall", removals, token=None))["result"]
        assert [r[0] for r in removed] == gids
        assert await d.result("aria2.tellWaiting", 0, QUEUE) == []


async def test_hundred_websocket_clients_get_every_notification(
    nginx: NginxServer, tmp_path: Path
) -> None:
    async with running_daemon(tmp_path) as d, AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(WsClient.connect(d.port)) for _ in range(CLIENTS)
        ]
        gids = [
            await d.result("aria2.addUri", [nginx.url("/text.txt")], {"out": f"n{i}.txt"})
            for i in range(3)
        ]
        for gid in gids:
            await d.wait_status(gid, "complete")

        async def collect(client: WsClient) -> None:
            for gid in gids:
                await client.notification("aria2.onDownloadStart", gid)
                await client.notification("aria2.onDownloadComplete", gid)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for client in clients:
                    nursery.start_soon(collect, client)
        for client in clients:
            methods = [m["method"] for m in client.messages if "method" in m]
            assert methods.count("aria2.onDownloadComplete") == 3, client.messages


async def test_request_over_the_size_limit_gets_a_clear_error(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, **{"rpc-max-request-size": "1K"}) as d:
        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "aria2.addUri",
                "params": [["http://x/" + "a" * 2000]],
            }
        ).encode()
        code, _, data = await http_request(d.port, "POST", "/jsonrpc", body)
        assert code == 413
        message = json.loads(data)["error"]["message"]
        assert "1024 bytes" in message and "--rpc-max-request-size" in message
        async with WsClient.connect(d.port) as ws:
            await ws.send_text(body.decode())
            with trio.fail_after(30):
                while not hasattr(ws, "closed"):
                    await ws._pump()
            assert ws.closed.code == 1009
