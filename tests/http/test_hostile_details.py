"""HTTP details a hostile or unusual server tests: a huge cookie Max-Age, thousands of cookies,
a Location in raw UTF-8, a Digest challenge behind a redirect (same origin: answered for the
right target; another origin: never sent there), a bad row in a browser's cookie database."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path

import trio

from tests.cli_util import run_cli
from tests.servers.canned import serve_canned
from tests.servers.fault import FaultServer
from trioaria.http.cookies import CookieJar
from trioaria.http.proto import resolve_redirect

NONCE = "abcdef0123456789"
CHALLENGE = f'Digest realm="r", qop="auth", algorithm=MD5, nonce="{NONCE}"'


def _digest_valid(auth: str, method: str, target: str) -> bool:
    """A strict RFC 7616 check, as Apache/nginx do: the ``uri`` must be the request target."""
    if not auth.startswith("Digest "):
        return False
    p = {m[0].lower(): m[1] or m[2] for m in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', auth)}
    if p.get("uri") != target:
        return False

    def h(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    ha1, ha2 = h("user:r:pass"), h(f"{method}:{target}")
    want = h(f"{ha1}:{NONCE}:{p.get('nc')}:{p.get('cnonce')}:auth:{ha2}")
    return p.get("response") == want


async def _serve(
    nursery: trio.Nursery, handler: Callable[[str, str, dict[str, str]], bytes], seen: list
) -> int:
    """One request per connection: ``handler(method, target, headers)`` gives the reply."""

    def answer(head: bytes) -> bytes:
        lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        seen.append((method, target, headers))
        return handler(method, target, headers)

    return await serve_canned(nursery, answer)


def _reply(status: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode("latin-1") + body


# --- 1. Set-Cookie Max-Age overflow kills the download ---------------------------------


def test_max_age_huge_is_capped_not_a_crash() -> None:
    """aria2 (cookie_helper.cc) clamps a Max-Age past time_t to the latest time."""
    jar = CookieJar()
    now = time.time()
    assert jar.receive("a=b; Max-Age=" + "9" * 400, "h.example", "/", now)  # OverflowError
    assert jar.receive("c=d; Max-Age=" + "9" * 5000, "h.example", "/", now)  # ValueError
    assert jar.header_for("h.example", "/", secure=False, now=now) == "a=b; c=d"


async def test_cli_set_cookie_huge_max_age(nursery: trio.Nursery, tmp_path: Path) -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=b; Max-Age="
        + b"9" * 400
        + b"\r\nConnection: close\r\n\r\nhello"
    )
    port = await serve_canned(nursery, reply)
    res = await run_cli(
        "-d", tmp_path / "d", f"http://127.0.0.1:{port}/f.bin", home=tmp_path, timeout=20
    )
    assert res.returncode == 0, res
    assert (tmp_path / "d" / "f.bin").read_bytes() == b"hello"


# --- 2. the cookie jar is unbounded ------------------------------------------------------


def test_cookie_jar_bounded_per_domain() -> None:
    """aria2 keeps at most 50 cookies per domain (CookieStorage::MAX_COOKIE_PER_DOMAIN),
    evicting the least recently used; a hostile server's thousands of names are not kept."""
    jar = CookieJar()
    now = time.time()
    for i in range(5000):
        jar.receive(f"n{i}=v", "evil.example", "/", now)
    assert len(jar) <= 50


# --- 3. a Location with raw UTF-8 bytes is double encoded ----------------------------------


def test_location_raw_utf8_encoded_once() -> None:
    """h11 hands the header as bytes; parse_response decodes Latin-1.  aria2
    (HttpResponse::processRedirect) percent-encodes the raw bytes: /caf%C3%A9.iso."""
    location = "/café.iso".encode().decode("latin-1")  # what ResponseInfo.location holds
    assert resolve_redirect("http://h/a", location) == "http://h/caf%C3%A9.iso"


async def test_cli_redirect_to_raw_utf8_location(nursery: trio.Nursery, tmp_path: Path) -> None:
    seen: list = []

    def handler(method: str, target: str, headers: dict[str, str]) -> bytes:
        if target == "/start":
            return (
                b"HTTP/1.1 302 Found\r\nLocation: /caf\xc3\xa9.iso\r\n"
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
        if target == "/caf%C3%A9.iso":
            return _reply("200 OK", [], b"hello")
        return _reply("404 Not Found", [])

    port = await _serve(nursery, handler, seen)
    res = await run_cli(
        "-d", tmp_path / "d", f"http://127.0.0.1:{port}/start", home=tmp_path, timeout=20
    )
    assert [t for _, t, _ in seen][1] == "/caf%C3%A9.iso", seen
    assert res.returncode == 0, res


# --- 4. Digest credentials follow a redirect to another origin -----------------------------


async def test_digest_answer_not_sent_to_another_origin(
    nursery: trio.Nursery, fault_server: FaultServer, tmp_path: Path
) -> None:
    """Origin A asks for Digest, then redirects to origin B (a mirror/CDN).  Like --http-user
    (source.py: "not sent once a redirect has left it"), the Digest answer for A must not
    go to B on the later range requests of -x2."""
    big = bytes(range(256)) * (8 << 10)  # 2 MiB
    fault_server.add_file("big.bin", big)
    seen: list = []

    def handler(method: str, target: str, headers: dict[str, str]) -> bytes:
        if _digest_valid(headers.get("authorization", ""), method, target):
            return _reply("302 Found", [("Location", fault_server.url("/ok/big.bin"))])
        return _reply("401 Unauthorized", [("WWW-Authenticate", CHALLENGE)])

    port = await _serve(nursery, handler, seen)
    res = await run_cli(
        "--http-user=user", "--http-passwd=pass", "-x2", "-s2", "-k1M",
        "-d", tmp_path / "d", "-o", "big.bin", f"http://127.0.0.1:{port}/start",
        home=tmp_path, timeout=30,
    )  # fmt: skip
    assert res.returncode == 0, res
    assert (tmp_path / "d" / "big.bin").read_bytes() == big
    leaked = [r for r in fault_server.requests if "authorization" in r.headers]
    assert not leaked, [(r.target, r.headers["authorization"]) for r in leaked]


# --- 5. Digest after a same-origin redirect answers with the wrong uri ----------------------


async def test_digest_behind_same_origin_redirect(nursery: trio.Nursery, tmp_path: Path) -> None:
    """/start (open) redirects to /prot (Digest).  The answer's ``uri`` must be the target
    of the request it is sent with (RFC 7616 §3.4: "request-uri"), here /prot."""
    seen: list = []

    def handler(method: str, target: str, headers: dict[str, str]) -> bytes:
        if target == "/start":
            return _reply("302 Found", [("Location", "/prot")])
        if _digest_valid(headers.get("authorization", ""), method, target):
            return _reply("200 OK", [], b"secret")
        return _reply("401 Unauthorized", [("WWW-Authenticate", CHALLENGE)])

    port = await _serve(nursery, handler, seen)
    res = await run_cli(
        "--http-user=user", "--http-passwd=pass", "-d", tmp_path / "d", "-o", "f",
        f"http://127.0.0.1:{port}/start", home=tmp_path, timeout=30,
    )  # fmt: skip
    assert res.returncode == 0, (res, [(t, h.get("authorization")) for _, t, h in seen])
    assert (tmp_path / "d" / "f").read_bytes() == b"secret"


# --- 6. a malformed row of a Firefox cookies.sqlite crashes --load-cookies -------------------


def test_firefox_row_with_text_expiry_is_skipped(tmp_path: Path) -> None:
    """sqlite columns are dynamically typed; aria2 (Sqlite3CookieParser) reads expiry with
    sqlite3_column_int64 and never aborts: a row that is not a cookie is skipped."""
    import sqlite3

    from trioaria.http.cookie_files import jar_from_options

    path = tmp_path / "cookies.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE moz_cookies (host, path, isSecure, expiry, name, value)")
    db.execute("INSERT INTO moz_cookies VALUES ('h.example', '/', 0, 'never', 'a', 'b')")
    db.execute("INSERT INTO moz_cookies VALUES ('h.example', '/', 0, 0, 'ok', '1')")
    db.commit()
    db.close()
    jar = jar_from_options({"load-cookies": str(path)}, time.time())
    assert jar.header_for("h.example", "/", secure=False, now=time.time()) is not None
