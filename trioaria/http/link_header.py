"""RFC 8288 ``Link`` header values and their RFC 6249 (Metalink/HTTP) meaning (pure).

A ``Link`` field value is a comma-separated list of ``<URI-Reference> *( ";" link-param )``
(RFC 8288 §3); a parameter's value is a token or a quoted-string (RFC 9110 §5.6.4, with
backslash escapes), and only the first ``rel`` of a link counts (§3.3).  A ``rel`` value may
name several relation types separated by spaces.  :func:`parse_link_header` never raises: a
part it cannot read is skipped up to the next top-level comma.

RFC 6249 uses two relations:

* ``rel=duplicate`` (§3.2): a mirror of the same file, with ``pri`` (1 is best, 999999 the
  default, §3.2.1), ``geo`` (ISO 3166-1 alpha-2, §3.2.2) and ``pref`` (§3.2.1: a preferred
  mirror).  :func:`mirror_links` orders them as aria2 does (``HttpResponse::
  getMetalinKHttpEntries``): preferred first, then by ``pri``, where a ``geo`` in
  ``--metalink-location`` subtracts 999999;
* ``rel=describedby`` with ``type="application/metalink4+xml"`` (§3.3 / §4): the full
  Metalink document of the file (:func:`metalink_links`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from urllib.parse import urljoin

__all__ = [
    "DEFAULT_PRIORITY",
    "Link",
    "MirrorLink",
    "metalink_links",
    "mirror_links",
    "parse_link_header",
]

DEFAULT_PRIORITY = 999999
"""RFC 6249 §3.2.1: a duplicate without ``pri`` has the lowest priority."""

_METALINK_TYPES = frozenset({"application/metalink4+xml", "application/metalink+xml"})
_WS = " \t"


@dataclass(frozen=True, slots=True)
class Link:
    """One link of a ``Link`` header (RFC 8288 §3).

    Attributes:
        uri: the target as written between ``<`` and ``>`` (stripped).
        params: parameter names (lower case) to values, the first occurrence of each;
            a parameter without ``=`` has the value ``""``.
    """

    uri: str
    params: tuple[tuple[str, str], ...]

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` (lower case), or None."""
        for key, value in self.params:
            if key == name:
                return value
        return None

    @property
    def rels(self) -> tuple[str, ...]:
        """The relation types of the first ``rel`` (lower case; RFC 8288 §3.3)."""
        return tuple((self.param("rel") or "").lower().split())


@dataclass(frozen=True, slots=True)
class MirrorLink:
    """An RFC 6249 §3.2 ``rel=duplicate`` mirror.

    Attributes:
        uri: absolute when a base was given.
        priority: ``pri`` in 1..999999 (other values are ignored: the default).
        geo: ``geo`` in lower case, or None.
        pref: the ``pref`` flag.
    """

    uri: str
    priority: int = DEFAULT_PRIORITY
    geo: str | None = None
    pref: bool = False


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _skip_to_comma(text: str, i: int) -> int:
    """Index after the next comma outside quotes and ``<...>`` (or the end)."""
    quoted = bracket = False
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif bracket:
            bracket = c != ">"
        elif c == '"':
            quoted = True
        elif c == "<":
            bracket = True
        elif c == ",":
            return i + 1
        i += 1
    return i


def _quoted(text: str, i: int) -> tuple[str, int]:
    """A quoted-string starting at ``text[i] == '"'``: (value, index after it)."""
    out: list[str] = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), i


def _params(text: str, i: int) -> tuple[list[tuple[str, str]], int]:
    params: list[tuple[str, str]] = []
    seen: set[str] = set()
    while True:
        i = _skip_ws(text, i)
        if i >= len(text):
            return params, i
        if text[i] == ",":
            return params, i + 1
        if text[i] != ";":
            return params, _skip_to_comma(text, i)
        i = _skip_ws(text, i + 1)
        start = i
        while i < len(text) and text[i] not in "=;," + _WS:
            i += 1
        name = text[start:i].lower()
        i = _skip_ws(text, i)
        value = ""
        if i < len(text) and text[i] == "=":
            i = _skip_ws(text, i + 1)
            if i < len(text) and text[i] == '"':
                value, i = _quoted(text, i)
            else:
                start = i
                while i < len(text) and text[i] not in ";,":
                    i += 1
                value = text[start:i].strip()
        if name and name not in seen:
            seen.add(name)
            params.append((name, value))


def parse_link_header(value: str) -> list[Link]:
    """Every readable link of one ``Link`` field value (RFC 8288 §3); never raises."""
    links: list[Link] = []
    i = 0
    while i < len(value):
        i = _skip_ws(value, i)
        if i >= len(value):
            break
        if value[i] == ",":
            i += 1
            continue
        if value[i] != "<":
            i = _skip_to_comma(value, i)
            continue
        end = value.find(">", i + 1)
        if end < 0:
            break
        uri = value[i + 1 : end].strip()
        params, i = _params(value, end + 1)
        if uri:
            links.append(Link(uri, tuple(params)))
    return links


def _all_links(values: Iterable[str], base: str | None) -> Iterable[Link]:
    for value in values:
        for link in parse_link_header(value):
            yield Link(urljoin(base, link.uri) if base else link.uri, link.params)


def _priority(raw: str | None) -> int:
    text = (raw or "").strip()
    if text.isascii() and text.isdigit() and len(text) <= 7 and 1 <= int(text) <= DEFAULT_PRIORITY:
        return int(text)
    return DEFAULT_PRIORITY


def mirror_links(
    values: Iterable[str], *, locations: Collection[str] = (), base: str | None = None
) -> list[MirrorLink]:
    """The ``rel=duplicate`` mirrors of ``Link`` values, best first (RFC 6249 §3.2).

    Args:
        values: the ``Link`` header values of one response.
        locations: ``--metalink-location`` country codes (lower case).
        base: relative URIs are resolved against it (the response's URL).
    """
    found: list[MirrorLink] = []
    for link in _all_links(values, base):
        if "duplicate" not in link.rels:
            continue
        geo = (link.param("geo") or "").strip().lower() or None
        found.append(
            MirrorLink(link.uri, _priority(link.param("pri")), geo, link.param("pref") is not None)
        )

    def rank(m: MirrorLink) -> tuple[bool, int]:
        boost = DEFAULT_PRIORITY if m.geo is not None and m.geo in locations else 0
        return not m.pref, m.priority - boost

    return sorted(found, key=rank)


def metalink_links(values: Iterable[str], *, base: str | None = None) -> list[str]:
    """The URIs of ``rel=describedby`` links to a Metalink document (RFC 6249 §3.3, §4)."""
    return [
        link.uri
        for link in _all_links(values, base)
        if "describedby" in link.rels
        and (link.param("type") or "").strip().lower() in _METALINK_TYPES
    ]
