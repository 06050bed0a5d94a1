"""Golden Metalink 4 (RFC 5854) and Metalink 3.0 documents through the pure parser."""

from __future__ import annotations

import hashlib

import pytest

from trioaria.base.errors import ExitCode, MetalinkError
from trioaria.metalink.parse import (
    LOWEST_PRIORITY,
    ChunkHashes,
    FileHash,
    MetalinkUrl,
    MetaUrl,
    Publisher,
    Signature,
    parse_metalink,
)
from trioaria.metalink.plan import mirror_urls, piece_hashes
from trioaria.storage.checksum import Checksum
from trioaria.storage.session import PieceHashes

SHA256 = hashlib.sha256(b"whole").hexdigest()
SHA1 = hashlib.sha1(b"whole").hexdigest()
MD5 = hashlib.md5(b"whole").hexdigest()
P0 = hashlib.sha1(b"piece0").hexdigest()
P1 = hashlib.sha1(b"piece1").hexdigest()

# RFC 5854 §1.1's example, extended with every §4.2 element the parser reads.
V4 = f"""<?xml version="1.0" encoding="UTF-8"?>
<metalink xmlns="urn:ietf:params:xml:ns:metalink">
  <generator>MirrorBrain/2.9.2</generator>
  <origin dynamic="true">http://example.com/example.ext.meta4</origin>
  <published>2009-05-15T12:23:23Z</published>
  <updated>2010-05-01T12:00:00Z</updated>
  <file name="example.ext">
    <size>14471447</size>
    <identity>Example</identity>
    <version>1.0</version>
    <language>en</language>
    <language>de</language>
    <os>Linux-x86</os>
    <description>A description of the example file for download.</description>
    <copyright>2009 Example</copyright>
    <logo>http://example.com/logo.png</logo>
    <publisher name="Company" url="http://www.example.com"/>
    <hash type="md5">{MD5}</hash>
    <hash type="sha-256">{SHA256.upper()}</hash>
    <hash type="sha-1">{SHA1}</hash>
    <hash type="ed2k">not-supported-so-ignored</hash>
    <pieces length="7235724" type="sha-1">
      <hash>{P0}</hash>
      <hash>{P1}</hash>
    </pieces>
    <signature mediatype="application/pgp-signature">
-----BEGIN PGP SIGNATURE-----
abc
-----END PGP SIGNATURE-----
    </signature>
    <url location="de" priority="3">ftp://ftp.example.com/example.ext</url>
    <url location="US" priority="1">  http://example.com/example.ext  </url>
    <url>http://nopriority.example.org/example.ext</url>
    <url priority="1">mirror/example.ext</url>
    <url priority="2"></url>
    <metaurl mediatype="torrent" priority="2" name="inner/example.ext">example.ext.torrent</metaurl>
    <x:extra xmlns:x="urn:example:ext"><url>http://ignored.example/</url></x:extra>
  </file>
  <file name="dir/second.bin">
    <url>http://example.com/second.bin</url>
  </file>
</metalink>
""".encode()

V3 = f"""<?xml version="1.0" encoding="utf-8"?>
<metalink version="3.0" xmlns="http://www.metalinker.org/" type="dynamic"
          generator="gen/1" origin="http://example.com/x.metalink" pubdate="Mon, 01 Jan 2024">
  <files>
    <file name="aria2-0.5.2.tar.bz2">
      <size>12</size>
      <version>0.5.2</version>
      <language>en-US</language>
      <os>Linux-x86</os>
      <verification>
        <hash type="md5">{MD5}</hash>
        <hash type="sha1">{SHA1}</hash>
        <hash type="sha256">{SHA256}</hash>
        <pieces length="8" type="sha1">
          <hash piece="1">{P1}</hash>
          <hash piece="0">{P0}</hash>
        </pieces>
        <signature type="pgp" file="aria2-0.5.2.tar.bz2.sig">SIG</signature>
      </verification>
      <resources maxconnections="3">
        <url type="ftp" location="jp" preference="90" maxconnections="1">ftp://ftphost/aria2-0.5.2.tar.bz2</url>
        <url type="http" location="us" preference="100">http://httphost/aria2-0.5.2.tar.bz2</url>
        <url type="http">http://nopref/aria2-0.5.2.tar.bz2</url>
        <url type="http" preference="bogus">http://bogus/aria2-0.5.2.tar.bz2</url>
        <url type="bittorrent" preference="95">http://tracker/aria2-0.5.2.tar.bz2.torrent</url>
      </resources>
    </file>
    <file name="two.bin">
      <resources><url type="http">two.bin</url></resources>
    </file>
  </files>
</metalink>
""".encode()


def test_v4_document_metadata() -> None:
    doc = parse_metalink(V4, base_uri="http://base.example/dir/doc.meta4")
    assert doc.version == 4
    assert doc.generator == "MirrorBrain/2.9.2"
    assert doc.origin == "http://example.com/example.ext.meta4"
    assert doc.dynamic is True
    assert doc.published == "2009-05-15T12:23:23Z"
    assert doc.updated == "2010-05-01T12:00:00Z"
    assert [f.name for f in doc.files] == ["example.ext", "dir/second.bin"]


def test_v4_file_every_element() -> None:
    f = parse_metalink(V4, base_uri="http://base.example/dir/doc.meta4").files[0]
    assert f.size == 14471447
    assert f.identity == "Example"
    assert f.version == "1.0"
    assert f.languages == ("en", "de")
    assert f.oses == ("Linux-x86",)
    assert f.description == "A description of the example file for download."
    assert f.copyright == "2009 Example"
    assert f.logo == "http://example.com/logo.png"
    assert f.publisher == Publisher("Company", "http://www.example.com")
    assert f.hashes == (
        FileHash("md5", bytes.fromhex(MD5)),
        FileHash("sha-256", bytes.fromhex(SHA256)),
        FileHash("sha-1", bytes.fromhex(SHA1)),
    )
    assert f.best_hash() == Checksum("sha-256", bytes.fromhex(SHA256))
    assert f.pieces == (ChunkHashes("sha-1", 7235724, (bytes.fromhex(P0), bytes.fromhex(P1))),)
    assert f.signature == Signature(
        "application/pgp-signature",
        "-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----",
    )
    # priority order, stable among equals; relative urls resolved; empty url dropped;
    # foreign-namespace elements ignored.
    assert f.urls == (
        MetalinkUrl("http://example.com/example.ext", 1, "us"),
        MetalinkUrl("http://base.example/dir/mirror/example.ext", 1, None),
        MetalinkUrl("ftp://ftp.example.com/example.ext", 3, "de"),
        MetalinkUrl("http://nopriority.example.org/example.ext", LOWEST_PRIORITY, None),
    )
    assert f.metaurls == (
        MetaUrl("http://base.example/dir/example.ext.torrent", "torrent", 2, "inner/example.ext"),
    )


def test_v4_relative_urls_kept_without_base() -> None:
    f = parse_metalink(V4).files[0]
    assert "mirror/example.ext" in [u.url for u in f.urls]


def test_v3_document() -> None:
    doc = parse_metalink(V3, base_uri="http://base.example/x.metalink")
    assert doc.version == 3
    assert doc.dynamic is True
    assert doc.generator == "gen/1"
    assert doc.origin == "http://example.com/x.metalink"
    f, g = doc.files
    assert f.name == "aria2-0.5.2.tar.bz2"
    assert f.size == 12
    assert f.version == "0.5.2"
    assert f.languages == ("en-US",)
    assert f.oses == ("Linux-x86",)
    assert {h.algorithm for h in f.hashes} == {"md5", "sha-1", "sha-256"}
    assert f.best_hash() == Checksum("sha-256", bytes.fromhex(SHA256))
    # numbered piece hashes are put in piece order
    assert f.best_pieces() == ChunkHashes("sha-1", 8, (bytes.fromhex(P0), bytes.fromhex(P1)))
    assert f.signature == Signature("pgp", "SIG")
    assert f.max_connections == 3
    # preference p -> priority 101 - p (aria2); none or junk -> lowest
    assert f.urls == (
        MetalinkUrl("http://httphost/aria2-0.5.2.tar.bz2", 1, "us"),
        MetalinkUrl("ftp://ftphost/aria2-0.5.2.tar.bz2", 11, "jp", 1),
        MetalinkUrl("http://nopref/aria2-0.5.2.tar.bz2", LOWEST_PRIORITY),
        MetalinkUrl("http://bogus/aria2-0.5.2.tar.bz2", LOWEST_PRIORITY),
    )
    assert f.metaurls == (MetaUrl("http://tracker/aria2-0.5.2.tar.bz2.torrent", "torrent", 6),)
    assert g.name == "two.bin"
    assert g.urls == (MetalinkUrl("http://base.example/two.bin"),)


def test_v3_preference_above_100_clamps_to_best() -> None:
    doc = V3.replace(b'preference="100"', b'preference="250"')
    assert parse_metalink(doc).files[0].urls[0].priority == 1


def test_strongest_pieces_chosen() -> None:
    sha256_pieces = "".join(f"<hash>{'11' * 32}</hash>" for _ in range(2))
    doc = V4.replace(
        b"<signature",
        f'<pieces length="7235724" type="sha-256">{sha256_pieces}</pieces><signature'.encode(),
    )
    f = parse_metalink(doc).files[0]
    best = f.best_pieces()
    assert best is not None and best.algorithm == "sha-256"
    assert len(f.pieces) == 2


def test_plan_conversions() -> None:
    f = parse_metalink(V4).files[0]
    ph = piece_hashes(f.best_pieces())
    assert ph == PieceHashes("sha-1", 7235724, (bytes.fromhex(P0), bytes.fromhex(P1)))
    assert piece_hashes(None) is None
    assert mirror_urls(f)[0] == "http://example.com/example.ext"


def test_no_hashes_no_pieces_no_size() -> None:
    f = parse_metalink(V4).files[1]
    assert f.size is None and f.hashes == () and f.pieces == () and f.best_hash() is None
    assert f.best_pieces() is None


def test_safe_names_with_directories() -> None:
    doc = b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a//b/cd.bin"/></metalink>'
    assert parse_metalink(doc).files[0].name == "a/b/cd.bin"


@pytest.mark.parametrize("name", ["dir/", "a/b/", "a&#9;b", "a&#127;b", "x/&#10;y"])
def test_names_of_directories_or_with_control_characters_are_refused(name: str) -> None:
    """As aria2: a name ending in '/' or holding a control character is a bad file name."""
    doc = f'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="{name}"><url>http://h/x</url></file></metalink>'
    with pytest.raises(MetalinkError, match="unsafe"):
        parse_metalink(doc.encode())


@pytest.mark.parametrize("version", ["v4", "v3"])
def test_a_piece_length_beyond_31_bits_is_refused(version: str) -> None:
    """aria2 reads pieces@length as a 31-bit value; the control file keeps it in 32 bits."""
    digest = "0" * 40
    if version == "v4":
        doc = (
            '<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="f"><size>5</size>'
            f'<pieces length="{1 << 31}" type="sha-1"><hash>{digest}</hash></pieces>'
            "<url>http://h/x</url></file></metalink>"
        )
    else:
        doc = (
            '<metalink version="3.0" xmlns="http://www.metalinker.org/"><files><file name="f">'
            f'<size>5</size><verification><pieces length="{1 << 31}" type="sha1">'
            f'<hash piece="0">{digest}</hash></pieces></verification>'
            '<resources><url type="http">http://h/x</url></resources></file></files></metalink>'
        )
    with pytest.raises(MetalinkError, match="pieces length"):
        parse_metalink(doc.encode())


def test_empty_file_with_empty_pieces_is_fine() -> None:
    doc = b"""<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="e"><size>0</size>
      <pieces length="1024" type="sha-1"></pieces></file></metalink>"""
    f = parse_metalink(doc).files[0]
    assert f.size == 0 and f.pieces == ()


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (b"<metalink/>", "not a Metalink document"),
        (b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"/>', "No file entry"),
        (b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file/></metalink>', "no name"),
        (
            b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a"><size>-1</size></file></metalink>',
            "size",
        ),
        (
            b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a"><url priority="0">http://x/</url></file></metalink>',
            "priority",
        ),
        (
            b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a"><url priority="1000000">http://x/</url></file></metalink>',
            "priority",
        ),
        (
            b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a"><metaurl>http://x/t</metaurl></file></metalink>',
            "mediatype",
        ),
        (
            b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a"><pieces type="sha-1" length="0"/></file></metalink>',
            "pieces length",
        ),
        (
            b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a"><size>10</size><pieces type="sha-1" length="4"><hash>'
            + b"00" * 20
            + b"</hash></pieces></file></metalink>",
            "3 expected",
        ),
        (
            b'<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="a"><hash type="md5">'
            + b"00" * 16
            + b'</hash><hash type="md5">'
            + b"11" * 16
            + b"</hash></file></metalink>",
            "two different md5",
        ),
        (
            b'<metalink xmlns="http://www.metalinker.org/"><files><file name="a"><verification><pieces type="sha1" length="4"><hash piece="1">'
            + b"00" * 20
            + b"</hash></pieces></verification></file></files></metalink>",
            "numbered",
        ),
    ],
)
def test_invalid_documents(document: bytes, words: str) -> None:
    with pytest.raises(MetalinkError) as info:
        parse_metalink(document)
    assert words in str(info.value)
    assert info.value.exit_code == ExitCode.METALINK_PARSE_ERROR == 20
