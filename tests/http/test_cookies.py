"""The RFC 6265 cookie jar (trioaria.http.cookies): a table of Set-Cookie/Cookie cases, the
cookie-date parser, Netscape text and a hypothesis fuzz of the Set-Cookie parser."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.http.cookies import (
    MAX_EXPIRY,
    Cookie,
    CookieJar,
    default_path,
    domain_match,
    parse_cookie_date,
    parse_netscape,
    parse_set_cookie,
    path_match,
    serialize_netscape,
)

NOW = 1_700_000_000.0  # 2023-11-14

# (Set-Cookie values, the URL that set them, the URL of the next request, expected Cookie)
CASES: list[tuple[list[str], str, str, str | None]] = [
    # §5.2 name-value pair
    (["a=1"], "http://example.org/", "http://example.org/", "a=1"),
    (["a=1; b=2"], "http://example.org/", "http://example.org/", "a=1"),
    (["  a  =  1  "], "http://example.org/", "http://example.org/", "a=1"),
    (["a="], "http://example.org/", "http://example.org/", "a="),
    (["novalue"], "http://example.org/", "http://example.org/", None),
    (["=1"], "http://example.org/", "http://example.org/", None),
    (['q="quoted value"'], "http://example.org/", "http://example.org/", 'q="quoted value"'),
    # host-only vs Domain (§5.3 step 6)
    (["a=1"], "http://example.org/", "http://www.example.org/", None),
    (["a=1; Domain=example.org"], "http://example.org/", "http://www.example.org/", "a=1"),
    (["a=1; Domain=.example.org"], "http://www.example.org/", "http://example.org/", "a=1"),
    (["a=1; Domain=EXAMPLE.org"], "http://www.example.org/", "http://a.b.example.org/", "a=1"),
    (["a=1; Domain=other.org"], "http://example.org/", "http://other.org/", None),
    (["a=1; Domain=www.example.org"], "http://example.org/", "http://www.example.org/", None),
    (["a=1; Domain=org"], "http://example.org/", "http://example.org/", None),
    (["a=1; Domain="], "http://example.org/", "http://example.org/", "a=1"),
    (["a=1; Domain=ample.org"], "http://example.org/", "http://example.org/", None),
    (["a=1"], "http://example.org/", "http://notexample.org/", None),
    (["a=1; Domain=0.0.1"], "http://127.0.0.1/", "http://127.0.0.1/", None),
    (["a=1"], "http://127.0.0.1:8080/", "http://127.0.0.1:9090/", "a=1"),  # ports do not count
    (["a=1; Domain=127.0.0.1"], "http://127.0.0.1/", "http://127.0.0.1/", "a=1"),
    # Path (§5.1.4, §5.2.4)
    (["a=1"], "http://example.org/dir/file", "http://example.org/dir/other", "a=1"),
    (["a=1"], "http://example.org/dir/file", "http://example.org/", None),
    (["a=1"], "http://example.org/dir/file", "http://example.org/dirx", None),
    (["a=1; Path=/"], "http://example.org/dir/file", "http://example.org/x", "a=1"),
    (["a=1; Path=/dir"], "http://example.org/", "http://example.org/dir/sub", "a=1"),
    (["a=1; Path=/dir"], "http://example.org/", "http://example.org/directory", None),
    (["a=1; Path=/dir/"], "http://example.org/", "http://example.org/dir/", "a=1"),
    (["a=1; Path=relative"], "http://example.org/x/y", "http://example.org/x/z", "a=1"),
    (["a=1; Path=relative"], "http://example.org/x/y", "http://example.org/", None),
    (["a=1; Path=/dir"], "http://example.org/", "http://example.org/dir?q=1", "a=1"),
    # Secure (§5.4 step 1)
    (["a=1; Secure"], "https://example.org/", "http://example.org/", None),
    (["a=1; Secure"], "https://example.org/", "https://example.org/", "a=1"),
    (["a=1; secure; HttpOnly"], "https://example.org/", "https://example.org/", "a=1"),
    # Expiry: Max-Age wins over Expires; <= 0 deletes (§5.2.1, §5.2.2, §5.3 step 3)
    (["a=1; Max-Age=60"], "http://example.org/", "http://example.org/", "a=1"),
    (["a=1; Max-Age=0"], "http://example.org/", "http://example.org/", None),
    (["a=1; Max-Age=-5"], "http://example.org/", "http://example.org/", None),
    (["a=1; Max-Age=abc"], "http://example.org/", "http://example.org/", "a=1"),
    (["a=1; Expires=Wed, 09 Jun 2100 10:18:14 GMT"], "http://e.org/", "http://e.org/", "a=1"),
    (["a=1; Expires=Wed, 09 Jun 2021 10:18:14 GMT"], "http://e.org/", "http://e.org/", None),
    (
        ["a=1; Expires=Wed, 09 Jun 2021 10:18:14 GMT; Max-Age=60"],
        "http://e.org/",
        "http://e.org/",
        "a=1",
    ),
    (
        ["a=1; Max-Age=60; Expires=Wed, 09 Jun 2021 10:18:14 GMT"],
        "http://e.org/",
        "http://e.org/",
        "a=1",
    ),
    (["a=1; Expires=garbage"], "http://e.org/", "http://e.org/", "a=1"),
    # replacement and deletion (§5.3 step 11)
    (["a=1", "a=2"], "http://example.org/", "http://example.org/", "a=2"),
    (["a=1", "a=2; Max-Age=0"], "http://example.org/", "http://example.org/", None),
    (["a=1", "a=2; Path=/x"], "http://example.org/", "http://example.org/x", "a=2; a=1"),
    # the host-only flag is not part of the key: a domain cookie replaces it
    (["a=1", "a=2; Domain=example.org"], "http://example.org/", "http://www.example.org/", "a=2"),
    # order (§5.4 step 2): longer paths first, then older
    (
        ["a=1; Path=/", "b=2; Path=/x/y", "c=3; Path=/x"],
        "http://e.org/",
        "http://e.org/x/y/z",
        "b=2; c=3; a=1",
    ),
    (["z=1", "y=2", "x=3"], "http://e.org/", "http://e.org/", "z=1; y=2; x=3"),
]


def _run(headers: list[str], set_url: str, get_url: str) -> str | None:
    jar = CookieJar()
    for i, header in enumerate(headers):
        u = urllib.parse.urlsplit(set_url)
        jar.receive(header, u.hostname or "", u.path or "/", NOW + i)
    g = urllib.parse.urlsplit(get_url)
    path = g.path + ("?" + g.query if g.query else "")
    return jar.header_for(g.hostname or "", path or "/", secure=g.scheme == "https", now=NOW + 10)


def test_table_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize(("headers", "set_url", "get_url", "expected"), CASES)
def test_set_cookie_then_cookie(headers, set_url, get_url, expected):
    assert _run(headers, set_url, get_url) == expected


def test_max_age_expires_later():
    jar = CookieJar()
    jar.receive("a=1; Max-Age=60", "e.org", "/", NOW)
    assert jar.header_for("e.org", "/", secure=False, now=NOW + 59) == "a=1"
    assert jar.header_for("e.org", "/", secure=False, now=NOW + 60) is None


def test_replacement_keeps_creation_time():
    jar = CookieJar()
    jar.receive("a=1", "e.org", "/", NOW)
    jar.receive("b=1", "e.org", "/", NOW + 1)
    jar.receive("a=2", "e.org", "/", NOW + 2)  # still older than b
    assert jar.header_for("e.org", "/", secure=False, now=NOW + 3) == "a=2; b=1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Wed, 09 Jun 2021 10:18:14 GMT", "2021-06-09 10:18:14"),
        ("Wednesday, 09-Jun-21 10:18:14 GMT", "2021-06-09 10:18:14"),
        ("Wed Jun  9 10:18:14 2021", "2021-06-09 10:18:14"),
        ("09 Jun 1999 00:00:00", "1999-06-09 00:00:00"),
        ("9 jun 70 1:2:3", "1970-06-09 01:02:03"),
        ("9 jun 69 1:2:3", "2069-06-09 01:02:03"),
        ("30 Feb 2021 10:00:00", None),
        ("09 Jun 2021", None),
        ("09 Foo 2021 10:00:00", None),
        ("09 Jun 1600 10:00:00", None),
        ("09 Jun 2021 24:00:00", None),
        ("", None),
    ],
)
def test_cookie_date(text, expected):
    import datetime

    got = parse_cookie_date(text)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        when = datetime.datetime.fromtimestamp(got, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        assert when == expected


def test_domain_and_path_helpers():
    assert domain_match("www.example.org", "example.org")
    assert not domain_match("1.2.3.4", "2.3.4")
    assert not domain_match("badexample.org", "example.org")
    assert default_path("/a/b/c") == "/a/b"
    assert default_path("/a") == "/"
    assert default_path("x") == "/"
    assert path_match("/a/b", "/a")
    assert path_match("/a/", "/a/")
    assert not path_match("/ab", "/a")


NETSCAPE = (
    "# Netscape HTTP Cookie File\n"
    "\n"
    ".example.org\tTRUE\t/\tFALSE\t2000000000\tdomain\tD\n"
    "host.example.org\tFALSE\t/p\tTRUE\t0\tsession\tS\n"
    "#HttpOnly_example.org\tFALSE\t/\tFALSE\t2000000000\thttponly\tH\n"
    "old.example.org\tFALSE\t/\tFALSE\t1000\texpired\tE\n"
    "broken line\n"
    "bad.example.org\tFALSE\t/\tFALSE\tnotanumber\tx\ty\n"
    "novalue.example.org\tFALSE\t/\tFALSE\t0\tempty\n"
)


def test_parse_netscape():
    cookies = {c.name: c for c in parse_netscape(NETSCAPE, NOW)}
    assert set(cookies) == {"domain", "session", "httponly", "empty"}
    d = cookies["domain"]
    assert (d.domain, d.host_only, d.persistent, d.expiry) == ("example.org", False, True, 2e9)
    s = cookies["session"]
    assert (s.domain, s.host_only, s.persistent, s.secure, s.path) == (
        "host.example.org",
        True,
        False,
        True,
        "/p",
    )
    assert s.expiry == MAX_EXPIRY
    assert cookies["httponly"].http_only and cookies["httponly"].host_only
    assert cookies["empty"].value == ""


def test_netscape_round_trip():
    cookies = parse_netscape(NETSCAPE, NOW)
    again = parse_netscape(serialize_netscape(cookies), NOW)
    assert again == cookies


def test_serialize_matches_aria2_layout():
    text = serialize_netscape(
        [
            Cookie("n", "v", "example.org", "/", 2e9, True, False, False),
            Cookie("s", "w", "h.example.org", "/p", MAX_EXPIRY, False, True, True),
        ]
    )
    lines = text.splitlines()
    assert lines[2] == ".example.org\tTRUE\t/\tFALSE\t2000000000\tn\tv"
    assert lines[3] == "h.example.org\tFALSE\t/p\tTRUE\t0\ts\tw"


_text = st.text(st.characters(codec="latin-1", exclude_characters="\r\n\x00"), max_size=80)
_attr = st.sampled_from(
    ["Domain", "Path", "Expires", "Max-Age", "Secure", "HttpOnly", "domain", "x", ""]
)


@given(
    name=_text,
    value=_text,
    attrs=st.lists(st.tuples(_attr, _text), max_size=6),
    host=st.sampled_from(["example.org", "www.example.org", "127.0.0.1", "::1"]),
    path=st.sampled_from(["/", "/a/b", "/a/", ""]),
)
def test_set_cookie_parser_never_crashes(name, value, attrs, host, path):
    header = f"{name}={value}" + "".join(f"; {k}={v}" for k, v in attrs)
    cookie = parse_set_cookie(header, host, path, NOW)
    if cookie is None:
        return
    assert cookie.name and "=" not in cookie.name and ";" not in cookie.name
    assert ";" not in cookie.value
    assert cookie.path.startswith("/")
    assert domain_match(host, cookie.domain)
    if cookie.host_only:
        assert cookie.domain == host.lower()
    jar = CookieJar()
    jar.store(cookie, NOW)
    header_out = jar.header_for(host, path or "/", secure=True, now=NOW)
    if header_out is not None:
        assert header_out.startswith(f"{cookie.name}=")
