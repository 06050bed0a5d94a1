"""Helpers for the RPC tests: an in-process daemon and real clients (HTTP, WebSocket).

The daemon is the real :class:`~trioaria.engine.queue.DownloadEngine` with the real
:class:`~trioaria.rpc.server.RpcServer` on 127.0.0.1, port chosen by the OS.  Clients:
Python's :mod:`xmlrpc.client` and :mod:`http.client` (run in a worker thread, as a user's script
would run them) and a WebSocket client built on wsproto over a trio socket.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Request,
    TextMessage,
)

from trioaria.cli.options import Options
from trioaria.engine.queue import DownloadEngine
from trioaria.rpc.server import RpcConfig, RpcServer, open_rpc

__all__ = ["Daemon", "WsClient", "http_request", "running_daemon"]

SECRET = "s3cret"


@dataclass
class Daemon:
    """A running in-process daemon."""

    engine: DownloadEngine
    server: RpcServer
    port: int

    async def call(self, method: str, *params: Any, token: str | None = SECRET) -> Any:
        """One JSON-RPC POST; returns the decoded answer object."""
        full = [f"token:{token}", *params] if token is not None else list(params)
        body = json.dumps({"jsonrpc": "2.0", "id": "t", "method": method, "params": full})
        _, _, data = await http_request(self.port, "POST", "/jsonrpc", body.encode())
        return json.loads(data)

    async def result(self, method: str, *params: Any) -> Any:
        """The ``result`` of a call that must succeed."""
        answer = await self.call(method, *params)
        assert "result" in answer, answer
        return answer["result"]

    async def wait_status(self, gid: str, *states: str, limit: int = 600) -> dict[str, Any]:
        """Poll ``tellStatus`` (bounded) until the download is in one of ``states``."""
        for _ in range(limit):
            status = await self.result("aria2.tellStatus", gid)
            if status["status"] in states:
                return dict(status)
            await trio.sleep(0.05)
        raise AssertionError(f"{gid} never reached {states}: {status}")


@asynccontextmanager
async def running_daemon(
    directory: Path, *, secret: str | None = SECRET, **extra: str
) -> AsyncIterator[Daemon]:
    """Engine + RPC server on 127.0.0.1:0 in a nursery; shut down on exit."""
    raw = {"dir": str(directory), "max-concurrent-downloads": "2", **extra}
    if secret:
        raw["rpc-secret"] = secret
    opts = Options.defaults().with_overrides(raw)
    engine = DownloadEngine(opts)
    config = RpcConfig.from_options(opts)
    config = RpcConfig(
        port=0,
        allow_origin_all=config.allow_origin_all,
        max_request_size=config.max_request_size,
        unauthorized_delay=0.05,
        web_ui=config.web_ui,
    )
    server = open_rpc(engine, config=config, features=["HTTPS"])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: engine.run(keep_running=True))
        port = await nursery.start(server.serve)
        try:
            yield Daemon(engine, server, port)
        finally:
            engine.shutdown(force=True)
            nursery.cancel_scope.cancel()


async def http_request(
    port: int, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A request with :mod:`http.client` in a worker thread: (status, headers, body)."""

    def run() -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request(method, target, body=body or None, headers=headers or {})
            response = conn.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()

    return await trio.to_thread.run_sync(run)


class WsClient:
    """A JSON-RPC WebSocket client on wsproto; collects notifications as they arrive."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.messages: list[dict[str, Any]] = []
        self._parts: list[str] = []

    @classmethod
    @asynccontextmanager
    async def connect(cls, port: int) -> AsyncIterator[WsClient]:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = cls(stream)
        try:
            await stream.send_all(
                client.ws.send(Request(host=f"127.0.0.1:{port}", target="/jsonrpc"))
            )
            while not any(isinstance(e, AcceptConnection) for e in await client._pump()):
                pass
            yield client
        finally:
            await stream.aclose()

    async def _pump(self) -> list[Any]:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError("server closed the WebSocket")
        self.ws.receive_data(data)
        events = list(self.ws.events())
        for event in events:
            if isinstance(event, TextMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    self.messages.append(json.loads("".join(self._parts)))
                    self._parts = []
            elif isinstance(event, CloseConnection):
                self.closed = event
        return events

    async def send_text(self, text: str) -> None:
        await self.stream.send_all(self.ws.send(TextMessage(data=text)))

    async def call(self, method: str, *params: Any, request_id: str = "w") -> dict[str, Any]:
        """Send a request and wait (bounded) for the answer with that id."""
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        body["params"] = [f"token:{SECRET}", *params]
        await self.send_text(json.dumps(body))
        for _ in range(1000):
            for m in self.messages:
                if m.get("id") == request_id:
                    self.messages.remove(m)
                    return m
            await self._pump()
        raise AssertionError("no answer")

    async def notification(self, method: str, gid: str) -> None:
        """Wait (bounded) until notification ``method`` for ``gid`` has arrived."""
        with trio.fail_after(60):
            await self._wait(method, gid)

    async def _wait(self, method: str, gid: str) -> None:
        for _ in range(5000):
            if any(
                m.get("method") == method and m.get("params") == [{"gid": gid}]
                for m in self.messages
            ):
                return
            await self._pump()
        raise AssertionError(f"no {method} for {gid}: {self.messages}")
