"""trioaria.http.link_header: RFC 8288 Link values and their RFC 6249 meaning (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.http.link_header import (
    DEFAULT_PRIORITY,
    Link,
    MirrorLink,
    metalink_links,
    mirror_links,
    parse_link_header,
)

CASES = [
    ("<http://a/x>; rel=duplicate", [Link("http://a/x", (("rel", "duplicate"),))]),
    (
        '<http://a/x>; rel="duplicate"; pri=2; geo=DE; pref',
        [Link("http://a/x", (("rel", "duplicate"), ("pri", "2"), ("geo", "DE"), ("pref", "")))],
    ),
    # several links in one value; commas inside <...> and quotes do not split
    (
        '<http://a/x,y>; rel=duplicate, <http://b/>; rel="describedby"; type="a,b"',
        [
            Link("http://a/x,y", (("rel", "duplicate"),)),
            Link("http://b/", (("rel", "describedby"), ("type", "a,b"))),
        ],
    ),
    # only the first rel counts (RFC 8288 §3.3); quoted-pair escapes
    (
        '< http://a/ >;REL=a;rel=b;title="x\\"y"',
        [Link("http://a/", (("rel", "a"), ("title", 'x"y')))],
    ),
    # unreadable parts are skipped up to the next comma
    ("garbage, <http://ok/>; rel=duplicate", [Link("http://ok/", (("rel", "duplicate"),))]),
    (
        "<http://a/>; rel=x garbage; more, <http://b/>",
        [
            Link("http://a/", (("rel", "x garbage"), ("more", ""))),
            Link("http://b/", ()),
        ],
    ),
    ("<>; rel=duplicate", []),
    ("<http://unterminated", []),
    ("", []),
]


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_parse_link_header(value: str, expected: list[Link]) -> None:
    assert parse_link_header(value) == expected
    # and with trailing junk after a comma, the same links come first
    assert parse_link_header(value + ", junk")[: len(expected)] == expected


def test_mirror_links_order_like_aria2() -> None:
    values = [
        "<http://jp/f>; rel=duplicate; pri=1; geo=jp",
        "<http://de/f>; rel=duplicate; pri=5; geo=de, <http://none/f>; rel=duplicate",
        "<http://pref/f>; rel=duplicate; pri=9; pref",
        "<http://bad-pri/f>; rel=duplicate; pri=0",
        "<http://doc/f.meta4>; rel=describedby; type=application/metalink4+xml",
        "<rel/f>; rel=duplicate; pri=3",
    ]
    got = mirror_links(values, base="http://origin/dir/f")
    assert [m.uri for m in got] == [
        "http://pref/f", "http://jp/f", "http://origin/dir/rel/f", "http://de/f",
        "http://none/f", "http://bad-pri/f",
    ]  # fmt: skip
    assert got[0] == MirrorLink("http://pref/f", 9, None, True)
    assert got[-1].priority == DEFAULT_PRIORITY  # pri=0 is out of range: ignored
    located = mirror_links(values, locations={"de"})
    assert [m.uri for m in located][:3] == ["http://pref/f", "http://de/f", "http://jp/f"]
    assert metalink_links(values) == ["http://doc/f.meta4"]
    assert metalink_links(['<x.meta4>; rel="describedby"; type="text/html"']) == []
    assert metalink_links(["<x.meta4>; rel=describedby; type=application/metalink+xml"],
                          base="http://h/a/b") == ["http://h/a/x.meta4"]  # fmt: skip


@given(st.text(max_size=300))
def test_never_raises(value: str) -> None:
    for link in parse_link_header(value):
        assert link.uri and ">" not in link.uri
    mirror_links([value], locations={"de"}, base="http://h/")
    metalink_links([value], base="http://h/")


_URI = st.from_regex(r"\Ahttps?://[a-z0-9.]{1,20}(/[A-Za-z0-9._~%,;=-]{0,20}){0,3}\Z")


@given(
    st.lists(
        st.tuples(
            _URI,
            st.integers(min_value=1, max_value=DEFAULT_PRIORITY),
            st.sampled_from(["de", "jp", "us", None]),
            st.booleans(),
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_round_trip(items: list[tuple[str, int, str | None, bool]], quoted: bool) -> None:
    q = '"' if quoted else ""
    parts = []
    for uri, pri, geo, pref in items:
        part = f"<{uri}>; rel={q}duplicate{q}; pri={pri}"
        part += f"; geo={q}{geo.upper()}{q}" if geo else ""
        part += "; pref" if pref else ""
        parts.append(part)
    got = mirror_links([", ".join(parts)])
    expected = [MirrorLink(u, p, g, f) for u, p, g, f in items]
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    # preferred first, then by priority
    assert got == sorted(got, key=lambda m: (not m.pref, m.priority))
