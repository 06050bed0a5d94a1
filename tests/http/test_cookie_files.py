"""``--load-cookies`` files (trioaria.http.cookie_files): Netscape text, Firefox
``cookies.sqlite`` and Chromium ``Cookies``, built here with the browsers' real schemas."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path

import pytest

from trioaria.base.errors import OptionError
from trioaria.http.cookie_files import (
    chromium_decrypt,
    chromium_encrypt,
    load_cookies,
    save_cookies,
)
from trioaria.http.cookies import MAX_EXPIRY, CookieJar

NOW = 1_700_000_000.0
FUTURE = 2_000_000_000

# Firefox's moz_cookies as created by netwerk/cookie/CookiePersistentStorage.cpp (schema 12+)
FIREFOX_SCHEMA = """
CREATE TABLE moz_cookies (
  id INTEGER PRIMARY KEY, originAttributes TEXT NOT NULL DEFAULT '', name TEXT, value TEXT,
  host TEXT, path TEXT, expiry INTEGER, lastAccessed INTEGER, creationTime INTEGER,
  isSecure INTEGER, isHttpOnly INTEGER, inBrowserElement INTEGER DEFAULT 0,
  sameSite INTEGER DEFAULT 0, rawSameSite INTEGER DEFAULT 0, schemeMap INTEGER DEFAULT 0,
  CONSTRAINT moz_uniqueid UNIQUE (name, host, path, originAttributes))
"""

# Chromium's cookies table (net/extras/sqlite/sqlite_persistent_cookie_store.cc, version 24)
CHROMIUM_SCHEMA = """
CREATE TABLE meta(key LONGVARCHAR NOT NULL UNIQUE PRIMARY KEY, value LONGVARCHAR);
CREATE TABLE cookies(
  creation_utc INTEGER NOT NULL, host_key TEXT NOT NULL, top_frame_site_key TEXT NOT NULL,
  name TEXT NOT NULL, value TEXT NOT NULL, encrypted_value BLOB NOT NULL, path TEXT NOT NULL,
  expires_utc INTEGER NOT NULL, is_secure INTEGER NOT NULL, is_httponly INTEGER NOT NULL,
  last_access_utc INTEGER NOT NULL, has_expires INTEGER NOT NULL,
  is_persistent INTEGER NOT NULL, priority INTEGER NOT NULL, samesite INTEGER NOT NULL,
  source_scheme INTEGER NOT NULL, source_port INTEGER NOT NULL,
  last_update_utc INTEGER NOT NULL, source_type INTEGER NOT NULL,
  has_cross_site_ancestor INTEGER NOT NULL);
CREATE UNIQUE INDEX cookies_unique_index ON cookies(
  host_key, top_frame_site_key, has_cross_site_ancestor, name, path, source_scheme,
  source_port);
"""


def make_firefox(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(FIREFOX_SCHEMA)
    rows = [
        ("session", "ok", "127.0.0.1", "/", FUTURE, 0, 0),
        ("dom", "D", ".example.org", "/", FUTURE, 1, 0),
        ("sess", "S", "example.org", "/p", 0, 0, 1),
        ("old", "O", "example.org", "/", 1000, 0, 0),
        ("ms", "M", "example.org", "/", FUTURE * 1000, 0, 0),
    ]
    db.executemany(
        "INSERT INTO moz_cookies (name, value, host, path, expiry, isSecure, isHttpOnly,"
        " lastAccessed, creationTime) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0)",
        rows,
    )
    db.commit()
    db.close()


def _chromium_time(epoch: int) -> int:
    return (epoch + 11644473600) * 1_000_000


def make_chromium(path: Path, *, version: int = 24) -> None:
    db = sqlite3.connect(path)
    db.executescript(CHROMIUM_SCHEMA)
    db.execute("INSERT INTO meta VALUES ('version', ?)", (str(version),))

    def enc(host: str, value: str) -> bytes:
        prefix = hashlib.sha256(host.encode()).digest() if version >= 24 else b""
        return chromium_encrypt(prefix + value.encode())

    rows = [
        ("127.0.0.1", "session", "", enc("127.0.0.1", "ok"), "/", _chromium_time(FUTURE), 0),
        (".example.org", "plain", "P", b"", "/", 0, 1),
        ("example.org", "keyring", "", b"v11" + b"x" * 32, "/", 0, 0),
        ("example.org", "expired", "E", b"", "/", _chromium_time(1000), 0),
    ]
    db.executemany(
        "INSERT INTO cookies VALUES (0, ?, '', ?, ?, ?, ?, ?, ?, 0, 0, 1, 1, 1, 0, 2, 443, 0, 0, 0)",
        rows,
    )
    db.commit()
    db.close()


def test_firefox(tmp_path: Path) -> None:
    path = tmp_path / "cookies.sqlite"
    make_firefox(path)
    cookies = {c.name: c for c in load_cookies(str(path), NOW)}
    assert set(cookies) == {"session", "dom", "sess", "ms"}
    assert cookies["session"].host_only and cookies["session"].domain == "127.0.0.1"
    dom = cookies["dom"]
    assert (dom.domain, dom.host_only, dom.secure, dom.expiry) == (
        "example.org",
        False,
        True,
        FUTURE,
    )
    assert not cookies["sess"].persistent and cookies["sess"].expiry == MAX_EXPIRY
    assert cookies["ms"].expiry == FUTURE  # milliseconds in newer Firefox
    jar = CookieJar(list(cookies.values()))
    assert jar.header_for("www.example.org", "/", secure=True, now=NOW) == "dom=D"


@pytest.mark.parametrize("version", [24, 18])
def test_chromium(tmp_path: Path, version: int, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "Cookies"
    make_chromium(path, version=version)
    with caplog.at_level(logging.WARNING, "trioaria.http.cookies"):
        cookies = {c.name: c for c in load_cookies(str(path), NOW)}
    assert set(cookies) == {"session", "plain"}
    assert cookies["session"].value == "ok"  # v10, decrypted
    assert cookies["session"].expiry == FUTURE
    assert not cookies["plain"].host_only and not cookies["plain"].persistent
    assert "1 Chromium cookie(s) skipped" in caplog.text  # v11: the keyring's key


def test_chromium_v10_known_vector() -> None:
    # encrypted by the scheme of Chromium's os_crypt_linux.cc, computed independently with
    # OpenSSL: printf hello | openssl enc -aes-128-cbc -K <pbkdf2 key> -iv 20202020...
    key = hashlib.pbkdf2_hmac("sha1", b"peanuts", b"saltysalt", 1, 16)
    assert key.hex() == "fd621fe5a2b402539dfa147ca9272778"
    blob = b"v10" + bytes.fromhex("ce9b849d984a1cedb8ba4eea782c2680")
    assert chromium_decrypt(blob) == b"hello"
    assert chromium_encrypt(b"hello") == blob
    assert chromium_decrypt(b"v11abc") is None


def test_netscape_and_save(tmp_path: Path) -> None:
    src = tmp_path / "cookies.txt"
    src.write_text("127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tok\n")
    cookies = load_cookies(str(src), NOW)
    assert [(c.name, c.value) for c in cookies] == [("session", "ok")]
    out = tmp_path / "saved.txt"
    save_cookies(CookieJar(cookies), str(out), NOW)
    assert out.read_text().splitlines()[-1] == "127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tok"


def test_other_database_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (a)")
    db.commit()
    db.close()
    with pytest.raises(OptionError):
        load_cookies(str(path), NOW)
    with pytest.raises(OptionError):
        load_cookies(str(tmp_path / "missing"), NOW)
