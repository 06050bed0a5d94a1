"""HTTP cookies (pure): the RFC 6265 ``Set-Cookie`` parser, the cookie jar and Netscape text.

Theory of operation
-------------------
A :class:`CookieJar` is aria2's ``CookieStorage``: one per run, fed by every response
(:meth:`CookieJar.receive`, RFC 6265 §5.2 parsing and §5.3 storage model) and asked for the
``Cookie`` header of every request (:meth:`CookieJar.header_for`, §5.4).  Time is a
parameter (``now``, seconds since the epoch): the jar never reads a clock.

The rules implemented, each from RFC 6265:

* §5.2: the name-value pair runs to the first ``;``; a pair without ``=`` or with an empty
  name is ignored.  ``Max-Age`` wins over ``Expires``; ``Max-Age`` <= 0 means "expired now".
  A ``Domain`` attribute loses one leading dot and is lower-cased; an empty one is ignored.
  A ``Path`` that is empty or does not start with ``/`` gives the default path.
* §5.1.1: ``Expires`` is parsed with the cookie-date algorithm (tokens in any order, two-digit
  years 70-99 → 19xx and 00-69 → 20xx); an unparsable date is ignored.
* §5.3 step 6: a ``Domain`` that does not domain-match the request host rejects the cookie;
  without one the cookie is *host-only*.  Like aria2 (and in place of the public-suffix
  list) a ``Domain`` without an inner dot is accepted only when it equals the host.
* §5.3 step 11: a new cookie replaces the one with the same name, domain and path, keeping
  its creation time; an expired one only deletes.
* §5.1.3 domain-match (never by suffix for an IP address), §5.1.4 path-match, ``Secure``
  cookies only over ``https``, and the order of §5.4 step 2 (longer paths first, then older).

The Netscape/Mozilla text format (:func:`parse_netscape`, :func:`serialize_netscape`) is the
one aria2 reads and writes: seven TAB-separated fields ``domain, include-subdomains, path,
secure, expiry, name, value``; ``#HttpOnly_`` before the domain marks an HttpOnly cookie;
expiry 0 is a session cookie.
"""

from __future__ import annotations

import ipaddress
import re
from collections import OrderedDict
from dataclasses import dataclass, replace

__all__ = [
    "MAX_EXPIRY",
    "Cookie",
    "CookieJar",
    "default_path",
    "domain_match",
    "parse_cookie_date",
    "parse_netscape",
    "parse_set_cookie",
    "path_match",
    "serialize_netscape",
]

#: "the latest representable date" (RFC 6265 §5.3 step 3) for session cookies.
MAX_EXPIRY = 2**63 - 1
#: Cookies kept for one domain, and domains kept (aria2 ``CookieStorage``'s limits).
MAX_PER_DOMAIN = 50
MAX_DOMAINS = 2000
#: Bytes of a cookie's name and value kept (RFC 6265 §6.1: at least 4096 must be).
MAX_COOKIE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Cookie:
    """One stored cookie (RFC 6265 §5.3's fields).

    Attributes:
        name, value: the pair.
        domain: lower-case, without a leading dot.
        path: the cookie path.
        expiry: seconds since the epoch; :data:`MAX_EXPIRY` when not persistent.
        persistent: from ``Max-Age``/``Expires`` (else a session cookie).
        host_only: sent only to *domain* itself, not to its sub-domains.
        secure: sent only over ``https``.
        http_only: the ``HttpOnly`` attribute (kept for the Netscape file).
        creation: creation time, for the §5.4 order.
    """

    name: str
    value: str
    domain: str
    path: str = "/"
    expiry: float = MAX_EXPIRY
    persistent: bool = False
    host_only: bool = True
    secure: bool = False
    http_only: bool = False
    creation: float = 0.0

    def expired(self, now: float) -> bool:
        return self.persistent and self.expiry <= now

    def matches(self, host: str, path: str, secure: bool) -> bool:
        """Whether this cookie goes with a request to *host* and *path* (§5.4 step 1)."""
        host = host.lower()
        if self.host_only:
            if host != self.domain:
                return False
        elif not domain_match(host, self.domain):
            return False
        return path_match(path, self.path) and (secure or not self.secure)


# ---------------------------------------------------------------------------------------
# §5.1: dates, domains and paths

_DELIMITER = re.compile(r"[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
_TIME = re.compile(r"^(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\D.*)?$")
_DAY = re.compile(r"^(\d{1,2})(?:\D.*)?$")
_YEAR = re.compile(r"^(\d{2,4})(?:\D.*)?$")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def parse_cookie_date(text: str) -> float | None:
    """The cookie-date algorithm of RFC 6265 §5.1.1; ``None`` when it "fails"."""
    hms: tuple[int, int, int] | None = None
    day = month = year = None
    for token in _DELIMITER.split(text):
        if not token:
            continue
        if hms is None and (m := _TIME.match(token)):
            hms = (int(m[1]), int(m[2]), int(m[3]))
        elif day is None and (m := _DAY.match(token)):
            day = int(m[1])
        elif month is None and token[:3].lower() in _MONTHS:
            month = _MONTHS.index(token[:3].lower()) + 1
        elif year is None and (m := _YEAR.match(token)):
            year = int(m[1])
    if hms is None or day is None or month is None or year is None:
        return None
    if 70 <= year <= 99:
        year += 1900
    elif 0 <= year <= 69:
        year += 2000
    hour, minute, second = hms
    if not 1 <= day <= 31 or year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None
    import calendar  # only for an Expires attribute (start-up time, issue 15)

    if day > calendar.monthrange(year, month)[1]:
        return None  # "30 Feb" fails (§5.1.1 step 5)
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def domain_match(host: str, domain: str) -> bool:
    """RFC 6265 §5.1.3: *host* equals *domain*, or ends with ``.domain`` and is a name."""
    host, domain = host.lower(), domain.lower()
    if host == domain:
        return True
    return host.endswith("." + domain) and not _is_ip(host)


def default_path(request_path: str) -> str:
    """RFC 6265 §5.1.4: the directory of the request path (``/`` when there is none)."""
    if not request_path.startswith("/"):
        return "/"
    cut = request_path.rfind("/")
    return "/" if cut == 0 else request_path[:cut]


def path_match(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 §5.1.4 path-match."""
    if request_path == cookie_path:
        return True
    if not request_path.startswith(cookie_path):
        return False
    return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"


# ---------------------------------------------------------------------------------------
# §5.2 and §5.3: Set-Cookie


def parse_set_cookie(header: str, host: str, request_path: str, now: float) -> Cookie | None:
    """One ``Set-Cookie`` value, received from *host* for *request_path* at *now*.

    Returns:
        The cookie to store (possibly already expired: storing it deletes the old one), or
        ``None`` when §5.2/§5.3 say to ignore it.
    """
    pair, _, attributes = header.partition(";")
    if "=" not in pair:
        return None  # §5.2 step 2: "ignore the set-cookie-string entirely"
    name, _, value = pair.partition("=")
    name, value = name.strip(" \t"), value.strip(" \t")
    if not name:
        return None
    host = host.lower().strip("[]")
    max_age: float | None = None
    expires: float | None = None
    domain = ""
    path = ""
    secure = http_only = False
    for av in attributes.split(";"):
        key, _, val = av.partition("=")
        key, val = key.strip(" \t").lower(), val.strip(" \t")
        if key == "expires":
            expires = parse_cookie_date(val)
        elif key == "max-age":
            # §5.2.2: a value that is not an optional "-" and digits is ignored; delta <= 0
            # means "the earliest representable date and time"
            if re.fullmatch(r"-?\d+", val):
                # a huge delta is the latest time representable (aria2 clamps it too)
                seconds = int(val) if len(val) <= 18 else (-1 if val.startswith("-") else 1 << 60)
                max_age = min(now + seconds, MAX_EXPIRY) if seconds > 0 else 0.0
        elif key == "domain":
            if val:
                domain = val.removeprefix(".").lower()
        elif key == "path":
            path = val if val.startswith("/") else ""
        elif key == "secure":
            secure = True
        elif key == "httponly":
            http_only = True
    persistent = max_age is not None or expires is not None
    expiry = max_age if max_age is not None else expires if expires is not None else MAX_EXPIRY
    if domain:
        if not domain_match(host, domain):
            return None  # §5.3 step 6
        if "." not in domain and domain != host:
            return None  # a top-level "domain": aria2 refuses it too
        host_only = False
    else:
        host_only, domain = True, host
    return Cookie(
        name=name,
        value=value,
        domain=domain,
        path=path or default_path(request_path),
        expiry=expiry,
        persistent=persistent,
        host_only=host_only,
        secure=secure,
        http_only=http_only,
        creation=now,
    )


class CookieJar:
    """aria2's ``CookieStorage``: cookies keyed by (domain, path, name), at most
    :data:`MAX_PER_DOMAIN` a domain and :data:`MAX_DOMAINS` domains (the least recently
    stored go first)."""

    def __init__(self, cookies: list[Cookie] | tuple[Cookie, ...] = ()) -> None:
        self._cookies: dict[tuple[str, str, str], Cookie] = {}
        # per domain, its cookies' keys, least recently stored first; domains likewise
        self._domains: OrderedDict[str, OrderedDict[tuple[str, str, str], None]] = OrderedDict()
        self._clock = 0.0  # a creation-order tie breaker for cookies made at the same time
        for cookie in cookies:
            self.store(cookie)

    def __len__(self) -> int:
        return len(self._cookies)

    def cookies(self) -> list[Cookie]:
        """Every stored cookie, in storage order."""
        return list(self._cookies.values())

    def store(self, cookie: Cookie, now: float | None = None) -> None:
        """§5.3 step 11: replace the same (name, domain, path), keeping its creation time;
        an expired cookie only removes (with *now*; without it nothing counts as expired).
        A cookie over :data:`MAX_COOKIE_SIZE` is ignored (the one it would replace stays)."""
        if len(cookie.name) + len(cookie.value) > MAX_COOKIE_SIZE:
            return  # RFC 6265 §6.1's minimum is 4096 bytes a cookie; more is not kept
        key = (cookie.domain, cookie.path, cookie.name)
        old = self._remove(key)
        if now is not None and cookie.expired(now):
            return
        if old is not None:
            cookie = replace(cookie, creation=old.creation)
        self._cookies[key] = cookie
        keys = self._domains.setdefault(cookie.domain, OrderedDict())
        keys[key] = None
        self._domains.move_to_end(cookie.domain)
        while len(keys) > MAX_PER_DOMAIN:
            self._remove(next(iter(keys)))
        while len(self._domains) > MAX_DOMAINS:
            _, gone = self._domains.popitem(last=False)
            for k in gone:
                self._cookies.pop(k, None)

    def _remove(self, key: tuple[str, str, str]) -> Cookie | None:
        cookie = self._cookies.pop(key, None)
        keys = self._domains.get(key[0])
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._domains[key[0]]
        return cookie

    def receive(self, set_cookie: str, url_host: str, url_path: str, now: float) -> bool:
        """Store the cookie of one ``Set-Cookie`` header; whether it was accepted."""
        cookie = parse_set_cookie(set_cookie, url_host, url_path.partition("?")[0], now)
        if cookie is None:
            return False
        self.store(cookie, now)
        return True

    def matching(self, host: str, path: str, *, secure: bool, now: float) -> list[Cookie]:
        """The cookies for a request, in RFC 6265 §5.4 step 2 order."""
        path = path.partition("?")[0] or "/"
        host = host.strip("[]")
        found = [
            c
            for c in self._cookies.values()
            if not c.expired(now) and c.matches(host, path, secure)
        ]
        found.sort(key=lambda c: (-len(c.path), c.creation))
        return found

    def header_for(self, host: str, path: str, *, secure: bool, now: float) -> str | None:
        """The ``Cookie`` header value for a request (§5.4 step 4), or ``None``."""
        found = self.matching(host, path, secure=secure, now=now)
        if not found:
            return None
        return "; ".join(f"{c.name}={c.value}" for c in found)

    def purge(self, now: float) -> None:
        """Forget the expired cookies."""
        for key in [k for k, c in self._cookies.items() if c.expired(now)]:
            self._remove(key)


# ---------------------------------------------------------------------------------------
# The Netscape/Mozilla cookie file


def parse_netscape(text: str, now: float) -> list[Cookie]:
    """Cookies from a Netscape/Mozilla ``cookies.txt`` (aria2 ``NsCookieParser``).

    Malformed lines (fewer than 6 fields, a bad expiry) are skipped; so are expired cookies.
    """
    out: list[Cookie] = []
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        http_only = False
        if line.startswith("#HttpOnly_"):
            line, http_only = line[len("#HttpOnly_") :], True
        elif line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 6:
            continue
        domain, subdomains, path, secure, expiry_text, name = fields[:6]
        value = fields[6] if len(fields) > 6 else ""
        try:
            expiry = int(expiry_text)
        except ValueError:
            continue
        domain = domain.strip().lower()
        dotted = domain.startswith(".")
        domain = domain.removeprefix(".")
        if not domain or not name:
            continue
        persistent = expiry != 0
        if persistent and expiry <= now:
            continue
        out.append(
            Cookie(
                name=name,
                value=value,
                domain=domain,
                path=path or "/",
                expiry=expiry if persistent else MAX_EXPIRY,
                persistent=persistent,
                host_only=not (subdomains.upper() == "TRUE" or dotted) or _is_ip(domain),
                secure=secure.upper() == "TRUE",
                http_only=http_only,
                creation=now,
            )
        )
    return out


def serialize_netscape(cookies: list[Cookie]) -> str:
    """The Netscape text of *cookies* (aria2 ``Cookie::toNsCookieFormat``): a domain cookie's
    domain gets its leading dot back; a session cookie is written with expiry 0."""
    lines = ["# Netscape HTTP Cookie File", ""]
    for c in cookies:
        domain = c.domain if c.host_only else "." + c.domain
        if c.http_only:
            domain = "#HttpOnly_" + domain
        expiry = int(c.expiry) if c.persistent else 0
        fields = (
            domain,
            "FALSE" if c.host_only else "TRUE",
            c.path,
            "TRUE" if c.secure else "FALSE",
            str(expiry),
            c.name,
            c.value,
        )
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"
