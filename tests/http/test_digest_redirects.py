"""Digest behind a same-origin redirect: the nonce answered for /a is answered again for /b
(one realm, one long-lived nonce, as Apache and nginx)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.cli_util import run_cli
from tests.http.test_hostile_details import CHALLENGE, _digest_valid, _reply, _serve

pytestmark = pytest.mark.trio


async def test_digest_protected_redirect_to_digest_protected_target(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """/a and /b are both behind one Digest realm with one (long-lived) nonce, as Apache's
    and nginx's nonces live for a while; an authorised /a redirects to /b.  The answer sent
    to /a is dropped on the hop (right: it names /a); /b answers 401 with the same nonce, and
    _answer_challenge says "this nonce was answered and refused: wrong credentials" although
    nothing was ever answered for /b: exit 24 instead of the file."""
    seen: list = []

    def handler(method: str, target: str, headers: dict[str, str]) -> bytes:
        auth = headers.get("authorization", "")
        if target == "/a" and _digest_valid(auth, method, target):
            return _reply("302 Found", [("Location", "/b")])
        if target == "/b" and _digest_valid(auth, method, target):
            return _reply("200 OK", [], b"secret")
        return _reply("401 Unauthorized", [("WWW-Authenticate", CHALLENGE)])

    port = await _serve(nursery, handler, seen)
    with trio.fail_after(25):
        res = await run_cli(
            "--http-user=user", "--http-passwd=pass", "-d", tmp_path / "d", "-o", "f",
            f"http://127.0.0.1:{port}/a", home=tmp_path, timeout=20,
        )  # fmt: skip
    assert res.returncode == 0, (res, [(t, h.get("authorization", "")[:20]) for _, t, h in seen])
    assert (tmp_path / "d" / "f").read_bytes() == b"secret"
