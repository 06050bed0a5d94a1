"""A download of unknown length that broke off is tried again in full, also with
--conditional-get (the half-written file is this run's own)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.cli_util import run_cli
from tests.servers.canned import serve_canned

pytestmark = pytest.mark.trio

BODY = b"x" * 50_000


async def test_retry_of_unknown_length_with_conditional_get(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """A chunked body (no length) breaks off once; the retry fetches it again in full: it
    carries no If-Modified-Since (the half-written file's mtime would get a 304 and no body)."""
    seen: list[bytes] = []

    def reply(head: bytes) -> bytes:
        lm = b"Last-Modified: Mon, 01 Jan 2001 00:00:00 GMT\r\n"
        if b"if-modified-since" in head.lower():
            return b"HTTP/1.1 304 Not Modified\r\n" + lm + b"Connection: close\r\n\r\n"
        chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + lm
        chunked += b"Connection: close\r\n\r\n"
        if len(seen) == 1:  # the first answer breaks off after 4 KiB
            return chunked + b"1000\r\n" + BODY[:4096] + b"\r\n"
        return chunked + f"{len(BODY):x}\r\n".encode() + BODY + b"\r\n0\r\n\r\n"

    port = await serve_canned(nursery, reply, seen=seen)
    with trio.fail_after(25):
        res = await run_cli(
            "--conditional-get", "--max-tries=3", "--retry-wait=0", "-d", tmp_path / "d",
            f"http://127.0.0.1:{port}/f.bin", home=tmp_path, timeout=20,
        )  # fmt: skip
    assert res.returncode == 0, (res, [h.split(b"\r\n")[-3:] for h in seen])
    assert (tmp_path / "d" / "f.bin").read_bytes() == BODY
