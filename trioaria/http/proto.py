"""HTTP/1.1 request building and response decisions for downloads (pure, sans-IO).

Theory of operation
-------------------
The trio driver (:mod:`trioaria.http.client`) lets h11 parse the response *head* only; the body
bypasses h11 (docs/performance.md, docs/design.md).  Everything the driver and the download engine must
*decide* about a response lives here, as plain functions over plain values:

* :func:`parse_url` splits ``http``/``https`` URLs (IPv6 literals included) into a
  :class:`ParsedUrl`; :func:`resolve_redirect` joins a ``Location`` against the request URL
  (RFC 9110 §10.2.2, RFC 3986 §5).
* :func:`to_h11_request` / :func:`build_request_head` turn an :class:`HttpRequest` into the
  request head, with ``Range: bytes=N-M`` (RFC 9110 §14.2) and ``If-Range`` (§13.1.5).
* :func:`parse_response` turns an ``h11.Response`` into a :class:`ResponseInfo`: lengths,
  ``Content-Range`` (RFC 9110 §14.4), validators, ``Retry-After`` (§10.2.3), keep-alive
  (RFC 9112 §9.3) and the ``Content-Disposition`` file name (RFC 6266).
* :func:`body_framing` says how the body is delimited (RFC 9112 §6.3).
* :func:`check_range_response` refuses a 206 whose ``Content-Range`` does not answer the
  request, as aria2's ``HttpResponse::validateResponse`` does (exit 8, CANNOT_RESUME).
* :func:`classify_status` maps error statuses to trioaria errors as aria2's
  ``HttpSkipResponseCommand::processResponse`` does (401 -> 24, 404 -> 3, 502/503/504 -> 29,
  others -> 22).

aria2 follows at most ``Request::MAX_REDIRECT`` = 20 redirects (src/Request.h:175; the check
``rnum >= MAX_REDIRECT`` is in src/HttpSkipResponseCommand.cc:196); :data:`MAX_REDIRECTS`
mirrors it.  Only h11 and the standard library's pure helpers are imported here.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from dataclasses import dataclass
from typing import Literal, NamedTuple

import h11

from .._version import __version__
from ..base.errors import (
    AuthError,
    ContentRangeMismatchError,
    ExitCode,
    HttpProtocolError,
    LocalProtocolError,
    NotFoundError,
    ServiceUnavailableError,
    TrioariaError,
)

__all__ = [
    "DEFAULT_USER_AGENT",
    "MAX_REDIRECTS",
    "REDIRECT_STATUSES",
    "WANT_DIGEST",
    "BodyFraming",
    "HttpRequest",
    "ParsedUrl",
    "ResponseInfo",
    "absolute_target",
    "basic_auth_header",
    "body_framing",
    "build_request_head",
    "check_range_response",
    "classify_status",
    "is_redirect",
    "parse_content_disposition",
    "parse_content_range",
    "parse_http_date",
    "parse_response",
    "parse_retry_after",
    "parse_url",
    "resolve_redirect",
    "to_h11_request",
]

#: aria2's fixed redirect limit (src/Request.h: ``static const int MAX_REDIRECT = 20``).
MAX_REDIRECTS = 20
#: Statuses aria2 treats as redirects (src/HttpResponse.cc ``isRedirect``).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_USER_AGENT = f"trioaria/{__version__}"
#: The ``Want-Digest`` request header value aria2 sends (``HttpRequest.cc``; RFC 3230 §4.3.1;
#: the ``Digest`` answer is read by :func:`trioaria.storage.checksum.parse_digest_header`).
WANT_DIGEST = "SHA-512;q=1, SHA-256;q=1, SHA;q=0.1"

# ftp only ever reaches this module as the absolute-form target of a request to a forwarding
# proxy (squid fetches ftp:// for an HTTP client); direct connections are http/https only.
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
# Characters left alone when percent-encoding a request target: the RFC 3986 reserved and
# unreserved sets plus '%', so an already-encoded URL is not encoded twice (aria2's
# util::percentEncodeMini only encodes bytes outside printable ASCII and spaces, too).
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~-._"


# ---------------------------------------------------------------------------------------
# URLs


class ParsedUrl(NamedTuple):
    """An ``http``/``https`` URL split for connecting and for the request line.

    ``host`` has no brackets (``::1`` for ``http://[::1]:8080/``) and is lower-cased;
    ``target`` is the percent-encoded origin-form request target (path and query, never
    empty); ``userinfo`` is the raw ``user:pass`` part or ``None``.
    """

    scheme: str
    host: str
    port: int
    target: str
    userinfo: str | None

    @property
    def origin(self) -> tuple[str, str, int]:
        """``(scheme, host, port)``: the connection-reuse key (RFC 6454)."""
        return (self.scheme, self.host, self.port)

    @property
    def host_header(self) -> str:
        """The ``Host`` header value (RFC 9110 §7.2): brackets for IPv6, port if not default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port != _DEFAULT_PORTS[self.scheme]:
            host = f"{host}:{self.port}"
        return host


def parse_url(url: str) -> ParsedUrl:
    """Split an absolute ``http``/``https`` URL.

    Args:
        url: an absolute URL such as ``https://[::1]:8443/a%20b?x=1#frag``.

    Returns:
        The :class:`ParsedUrl`; the fragment is dropped.

    Raises:
        HttpProtocolError: the scheme is not http/https (or ftp, which only a forwarding
            proxy is asked for), the host is missing, or the port
            is not a number in 1..65535.
    """
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise HttpProtocolError(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise HttpProtocolError(f"unsupported URL scheme in {url!r} (want http or https)")
    host = parts.hostname
    if not host:
        raise HttpProtocolError(f"URL has no host: {url!r}")
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    elif not 0 < port < 65536:
        raise HttpProtocolError(f"invalid port in URL {url!r}")
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None
    target = parts.path or "/"
    if not target.startswith("/"):
        target = "/" + target
    if parts.query:
        target = f"{target}?{parts.query}"
    target = urllib.parse.quote(target, safe=_TARGET_SAFE)
    return ParsedUrl(scheme, host, port, target, userinfo)


def resolve_redirect(base_url: str, location: str) -> str:
    """Resolve a ``Location`` value against the URL that was requested.

    Handles absolute URLs, network-path references (``//host/p``, RFC 3986 §4.2) and
    relative references (§5.2); the result has no fragment.  Spaces and non-ASCII are
    percent-encoded as aria2's ``util::percentEncodeMini`` does.

    Raises:
        HttpProtocolError: the ``Location`` is empty.
    """
    location = location.strip()
    if not location:
        raise HttpProtocolError("redirect with an empty Location header")
    try:  # the header's own bytes (decoded as Latin-1), percent-encoded once, as aria2
        raw = location.encode("latin-1")
    except UnicodeEncodeError:
        raw = location.encode("utf-8")
    location = urllib.parse.quote(raw, safe=_TARGET_SAFE)
    joined = urllib.parse.urljoin(base_url, location)
    return urllib.parse.urldefrag(joined).url


def basic_auth_header(user: str, password: str) -> tuple[str, str]:
    """``Authorization: Basic ...`` (RFC 7617) for ``--http-user``/``--http-passwd``."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return ("Authorization", f"Basic {token}")


# ---------------------------------------------------------------------------------------
# Requests


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """Everything needed to build one request head.

    Attributes:
        method: ``GET`` or ``HEAD`` (any token works; no request body is ever sent).
        url: the absolute URL.
        range_start: first byte wanted, or ``None`` for no ``Range`` header.
        range_end: last byte wanted (*inclusive*); ``None`` sends the open-ended ``bytes=N-``.
        headers: extra headers (``User-Agent``, ``--header``, ``Authorization``, ...); a
            ``User-Agent`` here replaces the default one.
        if_range: an ETag or HTTP-date for ``If-Range`` (RFC 9110 §13.1.5); only sent with
            a ``Range``.
        keep_alive: ``False`` sends ``Connection: close`` (``--enable-http-keep-alive=false``).
    """

    method: str
    url: str
    range_start: int | None = None
    range_end: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    if_range: str | None = None
    keep_alive: bool = True


def _request_headers(req: HttpRequest, url: ParsedUrl) -> list[tuple[str, str]]:
    names = {name.lower() for name, _ in req.headers}
    out: list[tuple[str, str]] = [("Host", url.host_header)]
    if "user-agent" not in names:
        out.append(("User-Agent", DEFAULT_USER_AGENT))
    if "accept" not in names:
        out.append(("Accept", "*/*"))
    if req.range_start is not None:
        if req.range_start < 0 or (req.range_end is not None and req.range_end < req.range_start):
            raise LocalProtocolError(f"invalid range {req.range_start}-{req.range_end}")
        end = "" if req.range_end is None else str(req.range_end)
        out.append(("Range", f"bytes={req.range_start}-{end}"))
        if req.if_range is not None:
            out.append(("If-Range", req.if_range))
    elif req.range_end is not None:
        raise LocalProtocolError("range_end given without range_start")
    if url.userinfo is not None and "authorization" not in names:
        user, _, password = url.userinfo.partition(":")
        out.append(basic_auth_header(urllib.parse.unquote(user), urllib.parse.unquote(password)))
    if not req.keep_alive:
        out.append(("Connection", "close"))
    cookies = [value for name, value in req.headers if name.lower() == "cookie"]
    out.extend((name, value) for name, value in req.headers if name.lower() != "cookie")
    if cookies:
        # RFC 6265 §5.4: "the user agent MUST NOT attach more than one Cookie header field"
        out.append(("Cookie", "; ".join(cookies)))
    return out


def absolute_target(url: ParsedUrl) -> str:
    """The absolute-form request target (RFC 9112 §3.2.2) a forwarding proxy needs:
    ``http://host:port/path?query``; no user info (RFC 9110 §4.2.4 deprecates it)."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}:{url.port}{url.target}"


def to_h11_request(
    req: HttpRequest, *, proxy_authorization: str | None = None, absolute_form: bool = False
) -> h11.Request:
    """The ``h11.Request`` event for *req* (send it with ``h11.Connection.send``).

    Args:
        req: the request.
        absolute_form: the request goes to a forwarding proxy: absolute-form target.
        proxy_authorization: a ``Proxy-Authorization`` value for that proxy.

    Raises:
        HttpProtocolError: the URL is not usable (see :func:`parse_url`).
        LocalProtocolError: a header is malformed or the range is inverted.
    """
    url = parse_url(req.url)
    headers = _request_headers(req, url)
    if proxy_authorization is not None:
        headers.append(("Proxy-Authorization", proxy_authorization))
    target = absolute_target(url) if absolute_form else url.target
    try:
        return h11.Request(method=req.method, target=target, headers=headers)
    except h11.LocalProtocolError as exc:
        raise LocalProtocolError(f"cannot build request for {req.url}: {exc}") from None


def build_request_head(req: HttpRequest) -> bytes:
    """The request head as bytes (request line, headers, blank line)."""
    conn = h11.Connection(h11.CLIENT)
    data = conn.send(to_h11_request(req))
    assert data is not None
    return data


# ---------------------------------------------------------------------------------------
# Responses


@dataclass(frozen=True, slots=True)
class ResponseInfo:
    """The decisions-relevant content of one response head.

    Attributes:
        status, reason: the status line.
        headers: ``(name, value)`` pairs, names lower-cased, values decoded as Latin-1.
        content_length: ``Content-Length`` (``None`` if absent or when chunked).
        chunked: ``Transfer-Encoding: chunked``.
        content_range: ``(start, end_inclusive, total_or_None)`` from a 206.
        total_length: the whole entity's length: ``Content-Range`` total on 206 and on 416
            (``bytes */N``), ``Content-Length`` on 200; else ``None``.
        accept_ranges: ``Accept-Ranges: bytes`` was sent, or the answer is a 206.
        etag, last_modified: validators, raw.
        location: raw ``Location``.
        retry_after: seconds to wait (``Retry-After`` delta-seconds, or an HTTP-date when
            ``now`` was given to :func:`parse_response`).
        keep_alive: the server allows reusing the connection (RFC 9112 §9.3).
        content_disposition_filename: sanitised ``Content-Disposition`` file name.
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    content_length: int | None
    chunked: bool
    content_range: tuple[int, int, int | None] | None
    total_length: int | None
    accept_ranges: bool
    etag: str | None
    last_modified: str | None
    location: str | None
    retry_after: float | None
    keep_alive: bool
    content_disposition_filename: str | None

    def header(self, name: str) -> str | None:
        """The first value of header *name* (case-insensitive), or ``None``."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_list(self, name: str) -> list[str]:
        """Every value of header *name* (case-insensitive), in order."""
        name = name.lower()
        return [value for key, value in self.headers if key == name]


_RANGE_RE = re.compile(r"([0-9]+)-([0-9]+)/([0-9]+|\*)")
_UNSATISFIED_RE = re.compile(r"\*/([0-9]+)")


def _range_spec(value: str) -> str:
    # aria2 (src/HttpHeader.cc getRange) accepts "bytes 1-2/3", "bytes=1-2/3" and "1-2/3".
    value = value.strip()
    unit, sep, rest = value.partition(" ")
    if not sep:
        unit, sep, rest = value.partition("=")
    if sep:
        if unit.lower() != "bytes":
            raise ContentRangeMismatchError(f"unsupported Content-Range unit: {value!r}")
        return rest.strip()
    return value


def parse_content_range(value: str) -> tuple[int, int, int | None]:
    """Parse ``Content-Range: bytes START-END/TOTAL`` (RFC 9110 §14.4); TOTAL may be ``*``.

    Returns:
        ``(start, end_inclusive, total)``, ``total`` ``None`` for ``*``.

    Raises:
        ContentRangeMismatchError: malformed, ``start > end``, or ``end >= total`` (a
            mirror that cannot be trusted with ranges; exit 8).
    """
    match = _RANGE_RE.fullmatch(_range_spec(value))
    if match is None:
        raise ContentRangeMismatchError(f"malformed Content-Range: {value!r}")
    start, end = int(match[1]), int(match[2])
    total = None if match[3] == "*" else int(match[3])
    if start > end or (total is not None and end >= total):
        raise ContentRangeMismatchError(f"invalid Content-Range: {value!r}")
    return (start, end, total)


_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (the era arithmetic of H. Hinnant's
    ``days_from_civil``)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_http_date(value: str) -> float | None:
    """An HTTP-date (RFC 9110 §5.6.7) as POSIX seconds, or None if it is not one.

    The preferred IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``, what servers send) is
    parsed here; the two obsolete forms (RFC 850, asctime) go to :mod:`email.utils`, which
    costs ~2 ms to import, so a download with a plain ``Last-Modified`` never loads it.
    """
    parts = value.split()
    if len(parts) == 6 and parts[5] == "GMT" and len(parts[0]) == 4 and parts[0][3] == ",":
        month = _MONTHS.get(parts[2])
        hms = parts[4].split(":")
        if (
            month is not None
            and len(hms) == 3
            and parts[1].isascii()
            and parts[1].isdigit()
            and parts[3].isascii()
            and parts[3].isdigit()
            and len(parts[3]) == 4
            and all(len(x) == 2 and x.isascii() and x.isdigit() for x in hms)
        ):
            day, year = int(parts[1]), int(parts[3])
            hour, minute, second = (int(x) for x in hms)
            ok = year >= 1 and 1 <= day <= _month_days(year, month)
            if ok and hour < 24 and minute < 60 and second < 60:
                days = _days_from_civil(year, month, day)
                return float(days * 86400 + hour * 3600 + minute * 60 + second)
            return None
    import email.utils  # an obsolete date form: rare
    from datetime import UTC

    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # asctime has no zone; every HTTP-date is in GMT
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def parse_retry_after(value: str, *, now: float | None = None) -> float | None:
    """``Retry-After`` (RFC 9110 §10.2.3) in seconds: delta-seconds, or an HTTP-date
    converted with *now* (POSIX seconds).  ``None`` if unusable."""
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value))
    if now is None:
        return None
    when = parse_http_date(value)
    return None if when is None else max(0.0, when - now)


_CD_PARAM_RE = re.compile(
    r';\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', re.DOTALL
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _sanitise_filename(name: str) -> str | None:
    # A control character makes the whole value unusable (aria2 rejects it too, and falls
    # back to the URL's name); a path keeps only its last component (RFC 6266 §4.3).
    if _CONTROL_RE.search(name):
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in ("", ".", ".."):
        return None
    return name


def parse_content_disposition(value: str, *, default_utf8: bool = False) -> str | None:
    """The file name from a ``Content-Disposition`` value (RFC 6266 §4.3), sanitised.

    ``filename*=`` (RFC 8187, UTF-8 or ISO-8859-1) wins over ``filename=``.  A plain
    ``filename=`` is taken as Latin-1, or as UTF-8 with *default_utf8*
    (``--content-disposition-default-utf8``).  Only the last path component is kept;
    ``.``/``..``/empty names and names with control characters give ``None``.
    """
    _, sep, params = value.partition(";")
    if not sep:
        return None
    plain: str | None = None
    extended: str | None = None
    for match in _CD_PARAM_RE.finditer(";" + params):
        name, raw = match[1].lower(), match[2].strip()
        if name == "filename*" and extended is None:
            charset, q1, rest = raw.partition("'")
            _lang, q2, encoded = rest.partition("'")
            if not (q1 and q2) or charset.lower() not in ("utf-8", "iso-8859-1"):
                continue
            try:
                extended = urllib.parse.unquote_to_bytes(encoded).decode(charset.lower())
            except UnicodeDecodeError:
                continue
        elif name == "filename" and plain is None:
            if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1], flags=re.DOTALL)
            if default_utf8:
                try:
                    raw = raw.encode("latin-1").decode("utf-8")
                except (UnicodeEncodeError, UnicodeDecodeError):
                    pass
            plain = raw
    chosen = extended if extended is not None else plain
    return None if chosen is None else _sanitise_filename(chosen)


def _tokens(values: list[str]) -> set[str]:
    return {tok.strip().lower() for value in values for tok in value.split(",") if tok.strip()}


def parse_response(
    response: h11.Response | h11.InformationalResponse,
    *,
    request_method: str = "GET",
    now: float | None = None,
) -> ResponseInfo:
    """Extract a :class:`ResponseInfo` from an h11 response head.

    Args:
        response: the event h11 returned.
        request_method: the request's method (a HEAD answer's ``Content-Length`` is the
            entity length, but it has no body).
        now: POSIX time, used only to turn a ``Retry-After`` HTTP-date into seconds.

    Raises:
        HttpProtocolError: a malformed ``Content-Length`` or a 206 ``Content-Range``.
    """
    del request_method  # the fields do not depend on it; body_framing() does
    headers = tuple(
        (name.decode("latin-1").lower(), value.decode("latin-1"))
        for name, value in response.headers
    )

    def first(name: str) -> str | None:
        for key, value in headers:
            if key == name:
                return value
        return None

    def all_of(name: str) -> list[str]:
        return [value for key, value in headers if key == name]

    status = response.status_code
    chunked = "chunked" in _tokens(all_of("transfer-encoding"))
    content_length: int | None = None
    raw_length = first("content-length")
    if raw_length is not None and not chunked:
        raw_length = raw_length.split(",")[0].strip()  # h11 already checked duplicates agree
        if not (raw_length.isascii() and raw_length.isdigit()):
            raise HttpProtocolError(f"malformed Content-Length: {raw_length!r}")
        content_length = int(raw_length)

    content_range: tuple[int, int, int | None] | None = None
    total_length: int | None = None
    raw_range = first("content-range")
    if status == 206:
        if raw_range is None:
            if "multipart/byteranges" in (first("content-type") or "").lower():
                raise HttpProtocolError("multipart/byteranges responses are not supported")
            raise HttpProtocolError("206 response without Content-Range")
        content_range = parse_content_range(raw_range)
        total_length = content_range[2]
    elif status == 416 and raw_range is not None:
        match = _UNSATISFIED_RE.fullmatch(_range_spec(raw_range))
        total_length = int(match[1]) if match else None
    elif status == 200 and not chunked:
        total_length = content_length

    connection = _tokens(all_of("connection"))
    if response.http_version == b"1.0":
        keep_alive = "keep-alive" in connection
    else:
        keep_alive = "close" not in connection

    retry_raw = first("retry-after")
    disposition = first("content-disposition")
    return ResponseInfo(
        status=status,
        reason=response.reason.decode("latin-1"),
        headers=headers,
        content_length=content_length,
        chunked=chunked,
        content_range=content_range,
        total_length=total_length,
        accept_ranges=status == 206 or "bytes" in _tokens(all_of("accept-ranges")),
        etag=first("etag"),
        last_modified=first("last-modified"),
        location=first("location"),
        retry_after=None if retry_raw is None else parse_retry_after(retry_raw, now=now),
        keep_alive=keep_alive,
        content_disposition_filename=(
            None if disposition is None else parse_content_disposition(disposition)
        ),
    )


class BodyFraming(NamedTuple):
    """How a response body ends (RFC 9112 §6.3).

    ``kind`` is ``"none"`` (HEAD, 1xx, 204, 304), ``"length"`` (``length`` bytes),
    ``"chunked"``, or ``"close"`` (read until the server closes; never reusable).
    """

    kind: Literal["none", "length", "chunked", "close"]
    length: int | None = None


def body_framing(info: ResponseInfo, request_method: str) -> BodyFraming:
    """Decide the body framing of *info*, the answer to a *request_method* request."""
    if request_method.upper() == "HEAD" or info.status < 200 or info.status in (204, 304):
        return BodyFraming("none")
    if info.chunked:
        return BodyFraming("chunked")
    if info.content_length is not None:
        return BodyFraming("length", info.content_length)
    return BodyFraming("close")


def is_redirect(info: ResponseInfo) -> bool:
    """A redirect aria2 follows (301/302/303/307/308)."""
    return info.status in REDIRECT_STATUSES


def _range_error(message: str) -> HttpProtocolError:
    # aria2 aborts with CANNOT_RESUME (exit 8) when the range does not match the request
    # (src/HttpResponse.cc validateResponse, EX_INVALID_RANGE_HEADER).  Typed, so that an
    # engine can retire this mirror and let the others finish.
    return ContentRangeMismatchError(message)


def _length_error(message: str) -> HttpProtocolError:
    # the file changed size: no mirror lies, the download cannot resume (exit 8)
    err = HttpProtocolError(message, exit_code=ExitCode.CANNOT_RESUME)
    err.retryable = False
    return err


def check_range_response(
    info: ResponseInfo,
    requested_start: int | None,
    requested_end: int | None,
    expected_total: int | None = None,
) -> None:
    """Refuse a response that does not answer the range request.

    For a 206: the ``Content-Range`` start must equal *requested_start*; the end must equal
    *requested_end* (or be the last byte when the request reached past the end of the
    entity); a ``Content-Length`` must match the range.  For 200 and 206: a known total
    length must equal *expected_total* when that is given (the file changed size).  A 200
    answer to a range request is not an error here: the caller decides (fall back to one
    connection from byte 0).

    Raises:
        ContentRangeMismatchError: the 206 does not answer the range (exit 8, as aria2).
        HttpProtocolError: the total length changed (exit 8).
    """
    if info.status == 206:
        assert info.content_range is not None  # parse_response guarantees it
        start, end, total = info.content_range
        if requested_start is None:
            requested_start = 0
        if start != requested_start:
            raise _range_error(
                f"Content-Range starts at {start}, but byte {requested_start} was requested"
            )
        if requested_end is not None and end != requested_end:
            clipped = total is not None and end == total - 1 and requested_end > end
            if not clipped:
                raise _range_error(
                    f"Content-Range ends at {end}, but byte {requested_end} was requested"
                )
        if requested_end is None and total is not None and end != total - 1:
            raise _range_error(f"Content-Range ends at {end} of {total} for an open range")
        if info.content_length is not None and info.content_length != end - start + 1:
            raise _range_error(
                f"Content-Length {info.content_length} does not match Content-Range {start}-{end}"
            )
    if (
        info.status in (200, 206)
        and expected_total is not None
        and info.total_length is not None
        and info.total_length != expected_total
    ):
        raise _length_error(
            f"the remote file's length changed: {info.total_length} (expected {expected_total})"
        )


def classify_status(info: ResponseInfo) -> None:
    """Raise the trioaria error for an error status; return for 1xx/2xx/3xx.

    As aria2 (src/HttpSkipResponseCommand.cc processResponse): 401 -> AuthError (24), 407
    (only a forwarding proxy sends it) -> HttpProtocolError (22, as aria2c 1.36 answers),
    404 -> NotFoundError (3), 502/503/504 -> ServiceUnavailableError (29, with a
    ``retry_after`` attribute), every other 4xx/5xx (410 included, as aria2c 1.36 answers)
    -> HttpProtocolError (22), not retried.  416 is an
    HttpProtocolError too: callers handle it (file already complete) before calling this.
    The raised error also has a ``status`` attribute.
    """
    status = info.status
    if status < 400:
        return
    text = f"HTTP {status} {info.reason}".rstrip()
    err: TrioariaError
    if status == 401:
        auth = AuthError(f"authorization failed: {text}")
        # RFC 7616 §3.3: HttpSource answers a Digest challenge (trioaria.http.digest_auth)
        auth.challenges = tuple(v for k, v in info.headers if k == "www-authenticate")
        err = auth
    elif status == 407:
        err = HttpProtocolError(
            f"proxy authentication failed: {text}; check the proxy user and password",
            retryable=False,
        )
    elif status == 404:
        err = NotFoundError(f"resource not found: {text}")
    elif status in (502, 503, 504):
        unavailable = ServiceUnavailableError(f"service unavailable: {text}")
        unavailable.retry_after = info.retry_after
        err = unavailable
    else:
        # aria2 gives up on these at once (one request, exit 22): retrying cannot help.
        err = HttpProtocolError(f"unexpected response: {text}", retryable=False)
    err.status = status
    raise err
