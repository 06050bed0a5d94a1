"""The built-in web page (``--rpc-web-ui``) in Debian's headless chromium (issue 12, part 6):
it lists downloads with their progress, adds a URI, pauses, resumes and removes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.rpc.cdp import open_page
from tests.rpc.rpc_util import SECRET, http_request, running_daemon
from tests.servers.nginx import NginxServer

NASTY = "<img src=x onerror=document.title=1>.bin"  # a legal file name, and markup


def _row(gid: str) -> str:
    return f"document.querySelector('tr[data-gid=\"{gid}\"]')"


async def test_page_is_off_by_default(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as d:
        code, _, _ = await http_request(d.port, "GET", "/")
        assert code == 404


async def test_web_page_in_chromium(nginx: NginxServer, tmp_path: Path) -> None:
    async with (
        running_daemon(tmp_path / "dl", **{"rpc-web-ui": "true"}) as d,
        open_page(tmp_path / "profile") as page,
    ):
        code, headers, body = await http_request(d.port, "GET", "/")
        assert code == 200 and headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in headers["content-security-policy"]
        assert b"/webui.js" in body
        await page.navigate(f"http://127.0.0.1:{d.port}/#token={SECRET}")
        await page.wait_for("document.getElementById('stat').textContent === '0 download(s)'")
        # add a URI through the form
        url = nginx.url("/file1m.bin")
        await page.evaluate(
            f"document.getElementById('uri').value = {json.dumps(url)};"
            " document.getElementById('add-button').click(); true"
        )
        stopped: list[dict[str, str]] = []
        for _ in range(400):
            stopped = await d.result("aria2.tellStopped", 0, 10, ["gid", "status"])
            if stopped:
                break
        gid = stopped[0]["gid"] if stopped else (await d.result("aria2.tellActive"))[0]["gid"]
        await d.wait_status(gid, "complete")
        await page.wait_for(f"{_row(gid)} && {_row(gid)}.dataset.status === 'complete'")
        cells = await page.evaluate(f"[...{_row(gid)}.children].map(c => c.textContent)")
        assert cells[0] == "file1m.bin" and cells[1] == "complete"
        assert await page.evaluate(f"{_row(gid)}.querySelector('progress').value") == 1 << 20
        # pause, resume and remove a slow download with the row's buttons
        slow = await d.result("aria2.addUri", [nginx.url("/slow/file5m.bin")], {"out": NASTY})
        await d.wait_status(slow, "active")
        await page.wait_for(f"{_row(slow)} && {_row(slow)}.querySelector('button.pause')")
        await page.evaluate(f"{_row(slow)}.querySelector('button.pause').click(); true")
        await d.wait_status(slow, "paused")
        await page.wait_for(f"{_row(slow)} && {_row(slow)}.querySelector('button.unpause')")
        await page.evaluate(f"{_row(slow)}.querySelector('button.unpause').click(); true")
        await d.wait_status(slow, "active", "waiting")
        await page.wait_for(f"{_row(slow)} && {_row(slow)}.querySelector('button.remove')")
        # a file name from the user or a server is text, never markup
        assert await page.evaluate(f"{_row(slow)}.children[0].textContent") == NASTY
        assert await page.evaluate("document.querySelectorAll('#downloads img').length") == 0
        await page.evaluate(f"{_row(slow)}.querySelector('button.remove').click(); true")
        await d.wait_status(slow, "removed")
        await page.wait_for(f"{_row(slow)} && {_row(slow)}.dataset.status === 'removed'")
        # a wrong token shows aria2's error on the page
        await page.evaluate(
            "const t = document.getElementById('token'); t.value = 'wrong';"
            " t.dispatchEvent(new Event('change')); true"
        )
        await page.wait_for("document.getElementById('error').textContent === 'Unauthorized'")
