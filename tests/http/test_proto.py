"""Tests for trioaria.http.proto: response heads fed whole / bytewise / with trailing data."""

from __future__ import annotations

import email.utils

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.errors import (
    AuthError,
    ExitCode,
    HttpProtocolError,
    LocalProtocolError,
    NotFoundError,
    ServiceUnavailableError,
)
from trioaria.http.proto import (
    DEFAULT_USER_AGENT,
    MAX_REDIRECTS,
    WANT_DIGEST,
    HttpRequest,
    ResponseInfo,
    body_framing,
    build_request_head,
    check_range_response,
    classify_status,
    parse_content_disposition,
    parse_content_range,
    parse_http_date,
    parse_response,
    parse_retry_after,
    parse_url,
    resolve_redirect,
)

# --- feeding helpers (h11's tr(): whole, one byte at a time, with trailing data) --------


def _client(method: str = "GET") -> h11.Connection:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    return conn


def _feed(pieces: list[bytes], method: str) -> tuple[h11.Response, bytes]:
    conn = _client(method)
    for piece in pieces:
        conn.receive_data(piece)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                break
            if isinstance(event, h11.Response):
                return event, conn.trailing_data[0]
    raise AssertionError("no response head")


def parse_three_ways(raw: bytes, method: str = "GET") -> ResponseInfo:
    whole, rest_whole = _feed([raw], method)
    bytewise, _ = _feed([raw[i : i + 1] for i in range(len(raw))], method)
    trailing, rest_trailing = _feed([raw + b"TRAILING"], method)
    assert rest_whole == b""
    assert rest_trailing == b"TRAILING"
    infos = {parse_response(e, request_method=method) for e in (whole, bytewise, trailing)}
    assert len(infos) == 1
    return infos.pop()


HEAD_CASES = [
    # (raw head, method, expected attributes, expected framing)
    (
        b"HTTP/1.1 206 Partial Content\r\nContent-Length: 100\r\n"
        b'Content-Range: bytes 100-199/1048576\r\nETag: "abc"\r\n'
        b"Last-Modified: Mon, 23 Nov 2026 02:08:06 GMT\r\n\r\n",
        "GET",
        {
            "status": 206,
            "content_length": 100,
            "content_range": (100, 199, 1048576),
            "total_length": 1048576,
            "accept_ranges": True,
            "etag": '"abc"',
            "last_modified": "Mon, 23 Nov 2026 02:08:06 GMT",
            "keep_alive": True,
            "chunked": False,
        },
        ("length", 100),
    ),
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nAccept-Ranges: bytes\r\n\r\n",
        "GET",
        {"status": 200, "total_length": 5000, "accept_ranges": True, "content_range": None},
        ("length", 5000),
    ),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
        "GET",
        {"chunked": True, "content_length": None, "total_length": None, "accept_ranges": False},
        ("chunked", None),
    ),
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: 77\r\nConnection: close\r\n\r\n",
        "GET",
        {"keep_alive": False, "total_length": 77},
        ("length", 77),
    ),
    (
        b"HTTP/1.0 200 OK\r\n\r\n",
        "GET",
        {"keep_alive": False, "content_length": None, "total_length": None},
        ("close", None),
    ),
    (
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n",
        "GET",
        {"keep_alive": True},
        ("length", 3),
    ),
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n",
        "HEAD",
        {"total_length": 1048576, "content_length": 1048576},
        ("none", None),
    ),
    (
        b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
        "GET",
        {"status": 302, "location": "/elsewhere", "total_length": None},
        ("length", 0),
    ),
    (
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 5\r\n\r\n",
        "GET",
        {"status": 503, "retry_after": 7.0},
        ("length", 5),
    ),
    (
        b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */4096\r\n"
        b"Content-Length: 0\r\n\r\n",
        "GET",
        {"status": 416, "total_length": 4096, "content_range": None},
        ("length", 0),
    ),
    (
        b"HTTP/1.1 204 No Content\r\n\r\n",
        "GET",
        {"status": 204},
        ("none", None),
    ),
    (
        b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n',
        "GET",
        {"status": 304, "etag": '"x"'},
        ("none", None),
    ),
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
        b'Content-Disposition: attachment; filename="../../etc/passwd"\r\n\r\n',
        "GET",
        {"content_disposition_filename": "passwd"},
        ("length", 1),
    ),
    (
        b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes=0-9/*\r\n\r\n",
        "GET",
        {"content_range": (0, 9, None), "total_length": None},
        ("length", 10),
    ),
]


@pytest.mark.parametrize(("raw", "method", "expected", "framing"), HEAD_CASES)
def test_response_heads(
    raw: bytes, method: str, expected: dict[str, object], framing: tuple[str, int | None]
) -> None:
    info = parse_three_ways(raw, method)
    for name, value in expected.items():
        assert getattr(info, name) == value, name
    assert tuple(body_framing(info, method)) == framing


def test_informational_then_final_and_header_access() -> None:
    raw = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Thing: a\r\nx-thing: b\r\n\r\nhi"
    )
    event, rest = _feed([raw], "GET")
    assert rest == b"hi"
    info = parse_response(event)
    assert info.status == 200
    assert info.header("X-THING") == "a"
    assert info.header_list("x-thing") == ["a", "b"]
    assert info.header("missing") is None


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\n\r\n",  # no Content-Range
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 9-0/100\r\n\r\n",
        b"HTTP/1.1 206 Partial Content\r\nContent-Type: multipart/byteranges; boundary=x\r\n\r\n",
    ],
)
def test_bad_206_heads(raw: bytes) -> None:
    event, _ = _feed([raw], "GET")
    with pytest.raises(HttpProtocolError):
        parse_response(event)


# --- Content-Range ------------------------------------------------------------------------


@given(
    start=st.integers(0, 2**62),
    length=st.integers(1, 2**40),
    extra=st.integers(0, 2**40),
    star=st.booleans(),
    form=st.sampled_from(["bytes {}", "bytes={}", "{}", "BYTES  {}"]),
)
def test_content_range_round_trip(
    start: int, length: int, extra: int, star: bool, form: str
) -> None:
    end = start + length - 1
    total = None if star else end + 1 + extra
    spec = f"{start}-{end}/{'*' if total is None else total}"
    assert parse_content_range(form.format(spec)) == (start, end, total)


@given(st.text(max_size=40))
def test_content_range_never_crashes(value: str) -> None:
    try:
        start, end, total = parse_content_range(value)
    except HttpProtocolError:
        return
    assert 0 <= start <= end
    assert total is None or end < total


@pytest.mark.parametrize(
    "value",
    [
        "bytes 5-4/10",
        "bytes 0-10/10",
        "bytes -1-4/10",
        "bytes 1-4/-10",
        "bytes 1 - 4/10",
        "items 1-4/10",
        "bytes */10",
        "bytes 0x1-4/10",
        "",
    ],
)
def test_content_range_rejects(value: str) -> None:
    with pytest.raises(HttpProtocolError):
        parse_content_range(value)


# --- range checks -------------------------------------------------------------------------


def _info(raw: bytes) -> ResponseInfo:
    return parse_three_ways(raw)


def _206(start: int, end: int, total: int | str, length: int | None = None) -> ResponseInfo:
    length = end - start + 1 if length is None else length
    return _info(
        f"HTTP/1.1 206 Partial Content\r\nContent-Length: {length}\r\n"
        f"Content-Range: bytes {start}-{end}/{total}\r\n\r\n".encode()
    )


@pytest.mark.parametrize(
    ("info", "start", "end", "total", "ok"),
    [
        (_206(100, 199, 1000), 100, 199, None, True),
        (_206(100, 999, 1000), 100, None, None, True),
        (_206(100, 999, 1000), 100, 5000, None, True),  # request past the end: clipped
        (_206(101, 199, 1000), 100, 199, None, False),  # lying start
        (_206(100, 150, 1000), 100, 199, None, False),  # short end
        (_206(100, 199, 1000), 100, 199, 2000, False),  # total changed
        (_206(100, 199, 1000, length=50), 100, 199, None, False),  # length mismatch
        (_206(100, 500, 1000), 100, None, None, False),  # open range answered short
        (_206(0, 9, "*"), 0, 9, 1000, True),
    ],
)
def test_check_range_response(
    info: ResponseInfo, start: int, end: int | None, total: int | None, ok: bool
) -> None:
    if ok:
        check_range_response(info, start, end, total)
    else:
        with pytest.raises(HttpProtocolError) as excinfo:
            check_range_response(info, start, end, total)
        assert excinfo.value.exit_code == ExitCode.CANNOT_RESUME


def test_check_range_response_200() -> None:
    info = _info(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    check_range_response(info, 500, None)  # ignoring Range is the caller's decision
    check_range_response(info, 0, None, 1000)
    with pytest.raises(HttpProtocolError):
        check_range_response(info, 0, None, 999)


# --- status classification -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (401, AuthError, ExitCode.HTTP_AUTH_FAILED),
        (407, HttpProtocolError, ExitCode.HTTP_PROTOCOL_ERROR),
        (404, NotFoundError, ExitCode.RESOURCE_NOT_FOUND),
        (410, HttpProtocolError, ExitCode.HTTP_PROTOCOL_ERROR),
        (503, ServiceUnavailableError, ExitCode.HTTP_SERVICE_UNAVAILABLE),
        (502, ServiceUnavailableError, ExitCode.HTTP_SERVICE_UNAVAILABLE),
        (500, HttpProtocolError, ExitCode.HTTP_PROTOCOL_ERROR),
        (416, HttpProtocolError, ExitCode.HTTP_PROTOCOL_ERROR),
        (400, HttpProtocolError, ExitCode.HTTP_PROTOCOL_ERROR),
    ],
)
def test_classify_status(status: int, error: type[Exception], code: ExitCode) -> None:
    info = _info(f"HTTP/1.1 {status} X\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n".encode())
    with pytest.raises(error) as excinfo:
        classify_status(info)
    assert excinfo.value.exit_code == code  # type: ignore[attr-defined]
    assert excinfo.value.status == status  # type: ignore[attr-defined]
    # only 503-style answers are worth another try (aria2 gives up on the rest at once)
    assert excinfo.value.retryable == (status in (502, 503, 504))  # type: ignore[attr-defined]
    if error is ServiceUnavailableError:
        assert excinfo.value.retry_after == 3.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [200, 204, 301, 304])
def test_classify_status_ok(status: int) -> None:
    classify_status(_info(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode()))
    classify_status(_206(0, 0, 1))


def test_retry_after_http_date() -> None:
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    assert parse_retry_after(date) is None
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(" 12 ") == 12.0


# --- Content-Disposition -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('attachment; filename="renamed.bin"', "renamed.bin"),
        ("attachment; filename=plain.txt", "plain.txt"),
        ('attachment; filename="a \\"q\\".txt"', 'a "q".txt'),
        ("attachment; filename*=UTF-8''%E2%82%AC%20rates.txt", "\u20ac rates.txt"),
        ("attachment; filename=\"fallback.txt\"; filename*=utf-8''real.txt", "real.txt"),
        ("attachment; filename*=iso-8859-1'en'%A3.txt", "\u00a3.txt"),
        ('attachment; filename="..\\\\..\\\\win.ini"', "win.ini"),
        ('attachment; filename="/etc/passwd"', "passwd"),
        ('attachment; filename=".."', None),
        ('attachment; filename=""', None),
        ("attachment", None),
        ("inline; name=x", None),
        ("attachment; filename*=bogus''x.txt", None),
        ('attachment; filename="a\x01b.txt"', None),  # rejected, as aria2 does
    ],
)
def test_content_disposition(value: str, expected: str | None) -> None:
    assert parse_content_disposition(value) == expected


def test_content_disposition_default_utf8() -> None:
    raw = 'attachment; filename="\u20ac.txt"'.encode().decode("latin-1")
    assert parse_content_disposition(raw, default_utf8=True) == "\u20ac.txt"
    assert parse_content_disposition(raw) == raw.split('"')[1]


@given(st.text(max_size=60))
def test_content_disposition_is_always_safe(name: str) -> None:
    result = parse_content_disposition(f'attachment; filename="{name}"')
    if result is not None:
        assert "/" not in result and "\\" not in result
        assert result not in ("", ".", "..")
        assert all(ord(c) >= 0x20 and ord(c) != 0x7F for c in result)


# --- URLs and requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected", "host_header"),
    [
        ("http://example.com", ("http", "example.com", 80, "/", None), "example.com"),
        (
            "HTTPS://Example.COM:8443/a/b?x=1#frag",
            ("https", "example.com", 8443, "/a/b?x=1", None),
            "example.com:8443",
        ),
        ("http://[::1]:8080/f.bin", ("http", "::1", 8080, "/f.bin", None), "[::1]:8080"),
        ("https://[::1]/f", ("https", "::1", 443, "/f", None), "[::1]"),
        ("http://u:p%40ss@h:81/a b", ("http", "h", 81, "/a%20b", "u:p%40ss"), "h:81"),
        ("http://h/%E2%82%AC", ("http", "h", 80, "/%E2%82%AC", None), "h"),
        ("http://h/\u20ac", ("http", "h", 80, "/%E2%82%AC", None), "h"),
    ],
)
def test_parse_url(url: str, expected: tuple[object, ...], host_header: str) -> None:
    parsed = parse_url(url)
    assert tuple(parsed) == expected
    assert parsed.host_header == host_header


@pytest.mark.parametrize(
    "url",
    ["gopher://h/x", "http://", "http://h:99999/", "http://h:abc/", "/relative", "mailto:x@y"],
)
def test_parse_url_rejects(url: str) -> None:
    with pytest.raises(HttpProtocolError):
        parse_url(url)


@pytest.mark.parametrize(
    ("base", "location", "expected"),
    [
        ("http://h:81/a/b", "/c", "http://h:81/c"),
        ("http://h/a/b", "c", "http://h/a/c"),
        ("http://h/a", "https://o/x#y", "https://o/x"),
        ("https://h/a", "//o:8/z", "https://o:8/z"),
        ("http://[::1]:9/a", "/b?q=1", "http://[::1]:9/b?q=1"),
        ("http://h/a", "/with space", "http://h/with%20space"),
    ],
)
def test_resolve_redirect(base: str, location: str, expected: str) -> None:
    assert resolve_redirect(base, location) == expected


def test_resolve_redirect_empty() -> None:
    with pytest.raises(HttpProtocolError):
        resolve_redirect("http://h/", "  ")


def _head_lines(req: HttpRequest) -> list[str]:
    return build_request_head(req).decode().split("\r\n")


def test_build_request_head_range_and_validators() -> None:
    lines = _head_lines(
        HttpRequest(
            "GET",
            "http://[::1]:8080/f.bin?x=1",
            range_start=100,
            range_end=199,
            if_range='"etag"',
            headers=(("X-Extra", "1"),),
        )
    )
    assert lines[0] == "GET /f.bin?x=1 HTTP/1.1"
    assert "host: [::1]:8080" in [line.lower() for line in lines]
    assert "Range: bytes=100-199" in lines
    assert 'If-Range: "etag"' in lines
    assert f"User-Agent: {DEFAULT_USER_AGENT}" in lines
    assert "X-Extra: 1" in lines
    assert lines[-2:] == ["", ""]


def test_build_request_head_variants() -> None:
    lines = _head_lines(HttpRequest("HEAD", "http://u:p%3Aw@h/", range_start=5))
    assert lines[0] == "HEAD / HTTP/1.1"
    assert "Range: bytes=5-" in lines
    assert "Authorization: Basic dTpwOnc=" in lines  # base64("u:p:w")
    lines = _head_lines(
        HttpRequest(
            "GET", "http://h/", if_range="x", keep_alive=False, headers=(("User-Agent", "me"),)
        )
    )
    assert not any(line.startswith(("Range", "If-Range")) for line in lines)
    assert "Connection: close" in lines
    assert "User-Agent: me" in lines
    assert not any(line.startswith("User-Agent: trioaria") for line in lines)


@pytest.mark.parametrize(
    "req",
    [
        HttpRequest("GET", "http://h/", range_start=10, range_end=5),
        HttpRequest("GET", "http://h/", range_end=5),
        HttpRequest("GET", "http://h/", headers=(("X", "a\r\nInjected: 1"),)),
    ],
)
def test_build_request_head_rejects(req: HttpRequest) -> None:
    with pytest.raises(LocalProtocolError):
        build_request_head(req)


def test_redirect_limit_matches_aria2() -> None:
    assert MAX_REDIRECTS == 20


def test_want_digest_is_aria2s() -> None:
    assert WANT_DIGEST == "SHA-512;q=1, SHA-256;q=1, SHA;q=0.1"


@given(st.integers(min_value=-2_000_000_000, max_value=253_402_300_799))
def test_http_date_fixdate_matches_email_utils(when: int) -> None:
    """RFC 9110 §5.6.7: the IMF-fixdate fast path agrees with the standard library."""
    date = email.utils.formatdate(when, usegmt=True)
    assert (
        parse_http_date(date) == float(when) == email.utils.parsedate_to_datetime(date).timestamp()
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784111777.0),  # IMF-fixdate
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784111777.0),  # RFC 850 (obsolete)
        ("Sun Nov  6 08:49:37 1994", 784111777.0),  # asctime (obsolete), in GMT
        ("Thu, 29 Feb 2024 23:59:59 GMT", 1709251199.0),
        ("Fri, 30 Feb 2024 23:59:59 GMT", None),
        ("Sun, 06 Nov 1994 24:00:00 GMT", None),
        ("Sun, 06 Nov 1994 08:49:60 GMT", None),
        # beyond the fixdate, the standard library's lenient reading applies (as before)
        ("Sun, 06 Nov 1994 08:49:37 XYZ", 784111777.0),
        ("Sun, 06 Nov 1994 08:49 GMT", 784111740.0),
        ("Sun, 06 Nov 1994 08:49:37 +0100", 784108177.0),
        ("", None),
        ("soon", None),
    ],
)
def test_http_date_forms(value: str, expected: float | None) -> None:
    assert parse_http_date(value) == expected


@given(st.text(max_size=40))
def test_http_date_never_raises(value: str) -> None:
    result = parse_http_date(value)
    assert result is None or isinstance(result, float)
