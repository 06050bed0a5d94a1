"""Headless Debian ``chromium`` driven over the Chrome DevTools Protocol, for the web page tests.

No browser-automation package and no browser download (docs/decisions.md: the system binary):
chromium starts with ``--remote-debugging-port=0`` and writes its port to ``DevToolsActivePort``
in its profile directory; the page's DevTools WebSocket is spoken with wsproto over trio.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from tests.rpc.rpc_util import http_request

__all__ = ["Page", "open_page"]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed (apt-get install chromium)")  # .ci/run installs it
    return path


class Page:
    """One browser tab: ``navigate`` and ``evaluate`` (JavaScript, value returned as JSON)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._id = 0
        self._answers: dict[int, dict[str, Any]] = {}
        self._parts: list[str] = []

    async def _pump(self) -> list[Any]:
        data = await self.stream.receive_some(1 << 16)
        if not data:
            raise EOFError("chromium closed the DevTools connection")
        self.ws.receive_data(data)
        events = list(self.ws.events())
        for event in events:
            if isinstance(event, TextMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    message = json.loads("".join(self._parts))
                    self._parts = []
                    if "id" in message:
                        self._answers[int(message["id"])] = message
        return events

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        ident = self._id
        text = json.dumps({"id": ident, "method": method, "params": params})
        await self.stream.send_all(self.ws.send(TextMessage(data=text)))
        with trio.fail_after(30):
            while ident not in self._answers:
                await self._pump()
        answer = self._answers.pop(ident)
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        return dict(answer["result"])

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, *, limit: int = 400) -> None:
        """Evaluate ``expression`` (bounded, every 50 ms) until it is truthy in JavaScript."""
        value = None
        for _ in range(limit):
            try:
                value = await self.evaluate(f"!!({expression})")
            except AssertionError:  # the page is still loading
                value = None
            if value:
                return
            await trio.sleep(0.05)
        raise AssertionError(f"never true: {expression} (last {value!r})")


@asynccontextmanager
async def open_page(profile: Path) -> AsyncIterator[Page]:
    """Start headless chromium with a fresh profile and connect to its first tab."""
    profile.mkdir(parents=True, exist_ok=True)
    args = [
        chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--no-default-browser-check", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-extensions",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
        f"--user-data-dir={profile}", "about:blank",
    ]  # fmt: skip
    process = await trio.lowlevel.open_process(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        active = profile / "DevToolsActivePort"
        with trio.fail_after(60):
            while not active.exists() or len(active.read_text().splitlines()) < 2:
                assert process.poll() is None, "chromium exited"
                await trio.sleep(0.05)
        port = int(active.read_text().splitlines()[0])
        targets: list[dict[str, Any]] = []
        with trio.fail_after(30):
            while not any(t.get("type") == "page" for t in targets):
                _, _, body = await http_request(port, "GET", "/json/list")
                targets = json.loads(body)
                await trio.sleep(0.05)
        target = next(t for t in targets if t.get("type") == "page")
        path = target["webSocketDebuggerUrl"].split(f":{port}", 1)[1]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        page = Page(stream)
        await stream.send_all(page.ws.send(Request(host=f"127.0.0.1:{port}", target=path)))
        with trio.fail_after(30):
            while not any(isinstance(e, AcceptConnection) for e in await page._pump()):
                pass
        try:
            yield page
        finally:
            await stream.aclose()
    finally:
        process.kill()
        with trio.move_on_after(10) as scope:
            scope.shield = True
            await process.wait()
