"""Cookie files on disk: ``--load-cookies`` and ``--save-cookies`` (driver).

``--load-cookies=FILE`` reads, like aria2 (``CookieStorage::load``), whatever FILE is:

* a file starting with ``SQLite format 3``: Firefox's ``cookies.sqlite`` (table
  ``moz_cookies``; a ``host`` with a leading dot is a domain cookie) or Chromium's ``Cookies``
  (table ``cookies``; ``expires_utc`` counts microseconds from 1601-01-01, 0 = session);
* anything else: Netscape/Mozilla text (:func:`trioaria.http.cookies.parse_netscape`).

Chromium stores most values encrypted in ``encrypted_value``.  On Linux without a keyring the
prefix ``v10`` means AES-128-CBC with the key PBKDF2-HMAC-SHA1(``peanuts``, salt
``saltysalt``, 1 iteration, 16 bytes) and an IV of 16 spaces (Chromium's
``os_crypt_linux.cc``).  Since Chromium's cookie database version 24 the plaintext starts
with SHA-256 of the cookie's host, which is checked and removed.  ``v11`` values use a key
from the desktop keyring that we cannot read: such cookies are skipped with one warning.

``--save-cookies=FILE`` writes Netscape text at the end of the run (temp file + rename).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import trio

from ..base.errors import OptionError
from .cookies import MAX_EXPIRY, Cookie, CookieJar, parse_netscape, serialize_netscape

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "chromium_decrypt",
    "chromium_encrypt",
    "jar_from_options",
    "load_cookies",
    "run_jar",
    "save_cookies",
    "save_run_cookies",
]

log = logging.getLogger("trioaria.http.cookies")

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: Seconds between 1601-01-01 (Chromium/Windows epoch) and 1970-01-01.
_CHROMIUM_EPOCH = 11644473600
_V10_KEY = hashlib.pbkdf2_hmac("sha1", b"peanuts", b"saltysalt", 1, 16)
_IV = b" " * 16


def chromium_decrypt(blob: bytes) -> bytes | None:
    """Decrypt a Linux ``v10`` ``encrypted_value``; ``None`` for any other scheme."""
    from Crypto.Cipher import AES

    if not blob.startswith(b"v10"):
        return None
    data = AES.new(_V10_KEY, AES.MODE_CBC, _IV).decrypt(blob[3:])
    pad = data[-1] if data else 0
    if not 1 <= pad <= 16 or data[-pad:] != bytes([pad]) * pad:
        raise ValueError("bad padding")
    return data[:-pad]


def chromium_encrypt(plain: bytes) -> bytes:
    """The ``v10`` ciphertext of *plain* (for test fixtures; the inverse of decryption)."""
    from Crypto.Cipher import AES

    pad = 16 - len(plain) % 16
    return b"v10" + AES.new(_V10_KEY, AES.MODE_CBC, _IV).encrypt(plain + bytes([pad]) * pad)


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in db.execute(f"PRAGMA table_info({table})")}


def _browser_cookie(
    host: str, path: object, secure: object, expiry: int, name: str, value: str, now: float
) -> Cookie:
    """One row of a browser's cookie table (``host`` lower case; a leading dot: any subdomain;
    ``expiry`` 0: a session cookie)."""
    return Cookie(
        name=name,
        value=value,
        domain=host.removeprefix("."),
        path=str(path or "/"),
        expiry=expiry or MAX_EXPIRY,
        persistent=bool(expiry),
        host_only=not host.startswith("."),
        secure=bool(secure),
        creation=now,
    )


def _firefox(db: sqlite3.Connection, now: float) -> list[Cookie]:
    out: list[Cookie] = []
    rows = db.execute("SELECT host, path, isSecure, expiry, name, value FROM moz_cookies")
    for host, path, secure, expiry, name, value in rows:
        host = str(host or "").lower()
        if not host or not name:
            continue
        try:  # an sqlite column holds any type: a row that is not a cookie is skipped
            expiry = int(expiry or 0)
        except (TypeError, ValueError):
            continue
        if expiry > 10**11:  # newer Firefox stores milliseconds
            expiry //= 1000
        if expiry and expiry <= now:
            continue
        out.append(_browser_cookie(host, path, secure, expiry, str(name), str(value or ""), now))
    return out


def _chromium(db: sqlite3.Connection, now: float) -> list[Cookie]:
    import sqlite3  # see _load_sqlite

    cols = _columns(db, "cookies")
    secure_col = "is_secure" if "is_secure" in cols else "secure"
    encrypted = "encrypted_value" if "encrypted_value" in cols else "''"
    version = 0
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        version = int(row[0]) if row else 0
    except (sqlite3.Error, ValueError):
        pass
    out: list[Cookie] = []
    keyring_only = 0
    rows = db.execute(
        f"SELECT host_key, path, {secure_col}, expires_utc, name, value, {encrypted} FROM cookies"
    )
    for host, path, secure, expires, name, value, blob in rows:
        host = str(host or "").lower()
        if not host or not name:
            continue
        text = str(value or "")
        if not text and blob:
            blob = bytes(blob)
            try:
                plain = chromium_decrypt(blob)
            except ValueError:
                log.warning("cannot decrypt the Chromium cookie %s for %s", name, host)
                continue
            if plain is None:
                keyring_only += 1
                continue
            if version >= 24:
                digest = hashlib.sha256(str(host).encode()).digest()
                if plain[:32] == digest:
                    plain = plain[32:]
            text = plain.decode("utf-8", "replace")
        try:
            expiry = int(expires or 0) // 1_000_000 - _CHROMIUM_EPOCH if expires else 0
        except (TypeError, ValueError):
            continue
        if expiry and expiry <= now:
            continue
        out.append(_browser_cookie(host, path, secure, expiry, str(name), text, now))
    if keyring_only:
        log.warning(
            "%d Chromium cookie(s) skipped: their values are encrypted with a key from the"
            " desktop keyring (v11), which trioaria cannot read",
            keyring_only,
        )
    return out


def _load_sqlite(path: str, now: float) -> list[Cookie]:
    import sqlite3  # browser cookie databases only: sqlite3 costs ~1.5 ms at start-up

    try:
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            tables = {
                str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "moz_cookies" in tables:
                return _firefox(db, now)
            if "cookies" in tables:
                return _chromium(db, now)
            raise OptionError(f"--load-cookies: {path}: no moz_cookies or cookies table")
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise OptionError(f"--load-cookies: cannot read {path}: {exc}") from None


def load_cookies(path: str, now: float) -> list[Cookie]:
    """The unexpired cookies of *path* (Netscape text, Firefox or Chromium sqlite).

    Raises:
        OptionError: the file cannot be read or is a database of another kind.
    """
    path = os.path.expanduser(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data.startswith(_SQLITE_MAGIC):
            return _load_sqlite(path, now)
    except OSError as exc:
        raise OptionError(f"--load-cookies: cannot read {path}: {exc}") from None
    return parse_netscape(data.decode("utf-8", "replace"), now)


def save_cookies(jar: CookieJar, path: str, now: float) -> None:
    """Write the jar's unexpired cookies as Netscape text (temp file, then rename)."""
    jar.purge(now)
    path = os.path.expanduser(path)
    tmp = f"{path}.__temp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(serialize_netscape(jar.cookies()))
    os.replace(tmp, path)


def jar_from_options(options: Any, now: float) -> CookieJar:
    """A new jar holding ``--load-cookies`` (a file that cannot be read is a warning, as
    aria2 logs "Failed to load cookies" and carries on)."""
    jar = CookieJar()
    path = options.get("load-cookies")
    if path:
        try:
            for cookie in load_cookies(str(path), now):
                jar.store(cookie)
        except OptionError as exc:
            log.warning("%s", exc)
        else:
            log.info("loaded %d cookie(s) from %s", len(jar), path)
    return jar


# One jar per run (aria2 has one CookieStorage per session): every download and every
# connection of the run shares it, so a cookie set by one response goes with the next request
# anywhere in the run, across redirects and connections.
_JAR: trio.lowlevel.RunVar[CookieJar | None] = trio.lowlevel.RunVar(
    "trioaria_cookies", default=None
)


def run_jar(options: Any) -> CookieJar:
    """This run's jar, created (with ``--load-cookies``) on first use."""
    jar = _JAR.get()
    if jar is None:
        jar = jar_from_options(options, time.time())
        _JAR.set(jar)
    return jar


def save_run_cookies(options: Any) -> None:
    """``--save-cookies``: write this run's jar (called once, when the run ends)."""
    path = options.get("save-cookies")
    if not path:
        return
    try:
        save_cookies(run_jar(options), str(path), time.time())
    except OSError as exc:
        log.error("cannot save cookies to %s: %s", path, exc)
