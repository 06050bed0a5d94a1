"""Metalink v4 (RFC 5854) and Metalink 3.0 parsing, sans-IO.

:func:`parse_metalink` turns the bytes of a document into a frozen :class:`Metalink`.  The XML is
read by ``defusedxml`` with every dangerous feature refused: a document type declaration (so no
internal entity can be declared: billion laughs), entity declarations, external references.  On
top of that the document has a size limit (:data:`MAX_DOCUMENT_SIZE`) and a nesting limit
(:data:`MAX_DEPTH`).  Whatever goes wrong -- malformed XML, a hostile construct, an unsafe file
name, a digest that is not hex of the right length -- raises
:class:`~trioaria.base.errors.MetalinkError`, aria2's exit 20 (``METALINK_PARSE_ERROR``), and
nothing else.

Version 4 (namespace ``urn:ietf:params:xml:ns:metalink``) is read as RFC 5854 §4 describes it:

* ``metalink:metalink`` (§4.1.1) holds ``metalink:file`` elements (§4.1.2) and the document
  metadata ``generator`` (§4.2.3), ``origin`` with its ``dynamic`` attribute (§4.2.9),
  ``published`` (§4.2.12) and ``updated`` (§4.2.16);
* a file has a ``name`` attribute (§4.1.2.1) -- a relative path; ``..``, ``.`` or an absolute
  name is refused as aria2 refuses it ("directory traversal") -- and the metadata ``size``
  (§4.2.15), ``hash`` (§4.2.4), ``pieces`` (§4.2.11), ``url`` with ``priority`` and
  ``location`` (§4.2.17), ``metaurl`` with ``mediatype``, ``priority`` and ``name`` (§4.2.8),
  ``signature`` (§4.2.14), ``language`` (§4.2.6), ``os`` (§4.2.10), ``version`` (§4.2.18),
  ``publisher`` (§4.2.13), ``identity`` (§4.2.5), ``description`` (§4.2.2),
  ``copyright`` (§4.2.1) and ``logo`` (§4.2.7).

Version 3 (namespace ``http://www.metalinker.org/``) has ``files/file`` with ``size``,
``version``, ``language``, ``os``, ``verification`` (``hash``, ``pieces`` with numbered
``hash piece="N"`` children, ``signature``) and ``resources`` (``url`` with ``type``,
``location``, ``preference`` 0-100 and ``maxconnections``).  As aria2 does, a preference ``p``
becomes the version 4 priority ``101 - p`` (1 is the best), and a ``type="bittorrent"`` url is a
metaurl of media type ``torrent``.

Where aria2 silently ignores something unusable the parser does too: hash types it does not
support, empty urls, elements of foreign namespaces.  It is stricter than aria2 in one place: a
supported hash whose text is not hex of the algorithm's length is an error, not a dropped hash.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin

import defusedxml
import defusedxml.ElementTree as DET

from ..base.errors import MetalinkError, StorageError
from ..storage.checksum import ALGORITHMS, Checksum, canonical_algorithm, is_stronger
from ..storage.layout import safe_relative_path

__all__ = [
    "HIGHEST_PRIORITY",
    "LOWEST_PRIORITY",
    "MAX_DEPTH",
    "MAX_DOCUMENT_SIZE",
    "MAX_PIECE_LENGTH",
    "METALINK3_NS",
    "METALINK4_NS",
    "ChunkHashes",
    "FileHash",
    "MetaUrl",
    "Metalink",
    "MetalinkFile",
    "MetalinkUrl",
    "Publisher",
    "Signature",
    "parse_metalink",
]

METALINK4_NS = "urn:ietf:params:xml:ns:metalink"
"""RFC 5854 §3 namespace of Metalink 4."""
METALINK3_NS = "http://www.metalinker.org/"
"""Namespace of Metalink 3.0."""

MAX_DOCUMENT_SIZE = 64 * 1024 * 1024
"""Largest document accepted, in bytes (10^5 urls take about 8 MiB)."""
MAX_DEPTH = 32
"""Deepest element nesting accepted; real documents nest 4 (v4) or 5 (v3) levels."""

HIGHEST_PRIORITY = 1
"""RFC 5854 §4.2.17.1: priority 1 is the most preferred."""
LOWEST_PRIORITY = 999999
"""RFC 5854 §4.2.17.1: the largest priority; aria2 gives it to urls without one."""

MAX_PIECE_LENGTH = (1 << 31) - 1
"""Largest ``pieces@length`` accepted (aria2 reads it as a 31-bit unsigned value, and the
``.aria2`` control file keeps the piece length in 32 bits)."""

_MAX_INTEGER = (1 << 63) - 1  # aria2 keeps sizes and lengths in int64_t
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)
_HEX = re.compile(r"[0-9a-fA-F]+", re.ASCII)


# --- the parsed document ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileHash:
    """A whole-file digest (RFC 5854 §4.2.4; v3 ``verification/hash``).

    Attributes:
        algorithm: canonical name (:func:`~trioaria.storage.checksum.canonical_algorithm`).
        digest: the raw digest bytes.
    """

    algorithm: str
    digest: bytes

    @property
    def hexdigest(self) -> str:
        return self.digest.hex()


@dataclass(frozen=True, slots=True)
class ChunkHashes:
    """Piece hashes (RFC 5854 §4.2.11 ``metalink:pieces``; v3 ``verification/pieces``).

    The fields are those of :class:`trioaria.storage.session.PieceHashes` (which lives in a
    driver module, so this pure one cannot build it; :func:`trioaria.metalink.plan.piece_hashes`
    converts).

    Attributes:
        algorithm: canonical hash name.
        piece_length: bytes per piece (the ``length`` attribute).
        digests: one digest per piece, in piece order.
    """

    algorithm: str
    piece_length: int
    digests: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class MetalinkUrl:
    """A mirror of the file (RFC 5854 §4.2.17; v3 ``resources/url``).

    Attributes:
        url: the URI, made absolute against the document's base URI when one is given.
        priority: 1 (best) .. 999999 (§4.2.17.1); v3 ``preference`` p becomes ``101 - p``.
        location: ISO 3166-1 alpha-2 country code, lower case (§4.2.17.2), or None.
        max_connections: v3 ``maxconnections`` of this url, or None.
    """

    url: str
    priority: int = LOWEST_PRIORITY
    location: str | None = None
    max_connections: int | None = None


@dataclass(frozen=True, slots=True)
class MetaUrl:
    """A metadata file describing the file, e.g. a torrent (RFC 5854 §4.2.8).

    Attributes:
        url: the URI.
        mediatype: ``torrent`` or a MIME type (§4.2.8.2).
        priority: as for urls (§4.2.8.1).
        name: the file's name inside a multi-file torrent (§4.2.8.3), or None.
    """

    url: str
    mediatype: str
    priority: int = LOWEST_PRIORITY
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Signature:
    """An OpenPGP (or other) signature of the file (RFC 5854 §4.2.14).

    Attributes:
        mediatype: e.g. ``application/pgp-signature`` (v3: its ``type``, e.g. ``pgp``).
        body: the signature text, surrounding whitespace removed.
    """

    mediatype: str
    body: str


@dataclass(frozen=True, slots=True)
class Publisher:
    """RFC 5854 §4.2.13 ``metalink:publisher`` (``name`` and ``url`` attributes)."""

    name: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class MetalinkFile:
    """One ``metalink:file`` (RFC 5854 §4.1.2).

    Attributes:
        name: safe relative POSIX path (§4.1.2.1); traversal or absolute names are refused.
        size: length in bytes (§4.2.15), or None when not given.
        hashes: whole-file digests of supported types, first occurrence of each type.
        pieces: piece-hash lists of supported types (§4.2.11).
        urls: mirrors sorted by priority (stable: document order among equals).
        metaurls: metadata urls (torrents) sorted by priority.
        languages: RFC 5646 tags (§4.2.6).
        oses: operating systems (§4.2.10).
        version: §4.2.18, or None.
        description, copyright, identity, logo: the §4.2.2 / §4.2.1 / §4.2.5 / §4.2.7 texts.
        publisher: §4.2.13, or None.
        signature: §4.2.14, or None.
        max_connections: v3 ``resources maxconnections``, or None.
    """

    name: str
    size: int | None = None
    hashes: tuple[FileHash, ...] = ()
    pieces: tuple[ChunkHashes, ...] = ()
    urls: tuple[MetalinkUrl, ...] = ()
    metaurls: tuple[MetaUrl, ...] = ()
    languages: tuple[str, ...] = ()
    oses: tuple[str, ...] = ()
    version: str | None = None
    description: str | None = None
    copyright: str | None = None
    identity: str | None = None
    logo: str | None = None
    publisher: Publisher | None = None
    signature: Signature | None = None
    max_connections: int | None = None

    def best_hash(self) -> Checksum | None:
        """The strongest whole-file digest (aria2 ``MessageDigest::isStronger``), or None."""
        best: FileHash | None = None
        for h in self.hashes:
            if best is None or is_stronger(h.algorithm, best.algorithm):
                best = h
        return None if best is None else Checksum(best.algorithm, best.digest)

    def best_pieces(self) -> ChunkHashes | None:
        """The piece-hash list of the strongest algorithm, or None."""
        best: ChunkHashes | None = None
        for p in self.pieces:
            if best is None or is_stronger(p.algorithm, best.algorithm):
                best = p
        return best


@dataclass(frozen=True, slots=True)
class Metalink:
    """A parsed document (RFC 5854 §4.1.1 ``metalink:metalink``).

    Attributes:
        version: 4 (RFC 5854) or 3 (Metalink 3.0).
        files: the files in document order (at least one).
        generator: §4.2.3, or None.
        origin: §4.2.9, the document's own URI, or None.
        dynamic: §4.2.9.1 ``dynamic="true"`` on the origin (v3: ``type="dynamic"``).
        published, updated: §4.2.12 / §4.2.16 dates as written, or None.
    """

    version: int
    files: tuple[MetalinkFile, ...] = field(default=())
    generator: str | None = None
    origin: str | None = None
    dynamic: bool = False
    published: str | None = None
    updated: str | None = None


# --- XML reading --------------------------------------------------------------------------


class _DepthLimitedBuilder:
    """An ElementTree target that refuses nesting deeper than ``max_depth``."""

    def __init__(self, max_depth: int) -> None:
        self._builder = ET.TreeBuilder()
        self._depth = 0
        self._max_depth = max_depth

    def start(self, tag: str, attrib: dict[str, str]) -> ET.Element:
        self._depth += 1
        if self._depth > self._max_depth:
            raise MetalinkError(f"Metalink document nests deeper than {self._max_depth} elements")
        return self._builder.start(tag, attrib)

    def end(self, tag: str) -> ET.Element:
        self._depth -= 1
        return self._builder.end(tag)

    def data(self, data: str) -> None:
        self._builder.data(data)

    def close(self) -> ET.Element:
        return self._builder.close()


def _read_xml(data: bytes, *, max_size: int, max_depth: int) -> ET.Element:
    if len(data) > max_size:
        raise MetalinkError(f"Metalink document is larger than {max_size} bytes ({len(data)})")
    parser = DET.DefusedXMLParser(
        target=_DepthLimitedBuilder(max_depth),
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    try:
        parser.feed(data)
        root = parser.close()
    except MetalinkError:
        raise
    except defusedxml.DTDForbidden:
        raise MetalinkError("Metalink document has a document type declaration (refused)") from None
    except defusedxml.EntitiesForbidden:
        raise MetalinkError("Metalink document declares entities (refused)") from None
    except defusedxml.ExternalReferenceForbidden:
        raise MetalinkError("Metalink document references external entities (refused)") from None
    except ET.ParseError as exc:
        raise MetalinkError(f"Metalink document is not well-formed XML: {exc}") from None
    except (ValueError, LookupError, UnicodeError, RecursionError) as exc:
        # unknown or multi-byte declared encodings, decoder failures
        raise MetalinkError(f"Metalink document cannot be read: {exc}") from None
    if not isinstance(root, ET.Element):
        raise MetalinkError("Metalink document has no root element")
    return root


# --- small value parsers ------------------------------------------------------------------


def _text(element: ET.Element) -> str:
    return (element.text or "").strip()


def _optional_text(element: ET.Element | None) -> str | None:
    if element is None:
        return None
    return _text(element) or None


def _integer(text: str | None, what: str, *, minimum: int = 0, maximum: int = _MAX_INTEGER) -> int:
    value = (text or "").strip()
    if not _DIGITS.fullmatch(value) or not minimum <= int(value) <= maximum:
        raise MetalinkError(
            f"Metalink {what} must be an integer in [{minimum}, {maximum}]: {text!r}"
        )
    return int(value)


def _lenient_integer(text: str | None) -> int | None:
    value = (text or "").strip()
    if not _DIGITS.fullmatch(value):
        return None
    return int(value)


def _algorithm(name: str | None) -> str | None:
    """The canonical name of a supported hash type, None for one aria2 would ignore."""
    if not name:
        return None
    try:
        return canonical_algorithm(name)
    except ValueError:
        return None


def _digest(algorithm: str, text: str, what: str) -> bytes:
    value = text.strip()
    if not _HEX.fullmatch(value) or len(value) != 2 * ALGORITHMS[algorithm]:
        raise MetalinkError(
            f"Metalink {what} of type {algorithm} must be {2 * ALGORITHMS[algorithm]}"
            f" hex digits: {value[:160]!r}"
        )
    return bytes.fromhex(value)


def _safe_name(name: str | None) -> str:
    """RFC 5854 §4.1.2.1: the name is a relative path without traversal (aria2: exit 20).

    As aria2, a name naming a directory (a trailing ``/``) or holding a control character is
    refused rather than mended."""
    if name is None or not name.strip():
        raise MetalinkError("Metalink file has no name attribute")
    if name.endswith("/") or _CONTROL.search(name):
        raise MetalinkError(f"Metalink file name is unsafe: {name[:200]!r}")
    try:
        return safe_relative_path([name])
    except StorageError as exc:
        raise MetalinkError(f"Metalink file name is unsafe: {exc}") from None


def _resolve(url: str, base_uri: str | None) -> str:
    return urljoin(base_uri, url) if base_uri else url


class _Children:
    """The children of one element that are in the document's namespace, by local name."""

    def __init__(self, element: ET.Element, ns: str) -> None:
        self._prefix = "{" + ns + "}"
        self._element = element

    def all(self, local: str) -> Iterator[ET.Element]:
        tag = self._prefix + local
        return (child for child in self._element if child.tag == tag)

    def first(self, local: str) -> ET.Element | None:
        return next(self.all(local), None)

    def text(self, local: str) -> str | None:
        return _optional_text(self.first(local))

    def texts(self, local: str) -> tuple[str, ...]:
        return tuple(t for t in (_text(e) for e in self.all(local)) if t)


def _attr(element: ET.Element, name: str) -> str | None:
    # RFC 5854 attributes are unqualified; v3 ones too.
    return element.attrib.get(name)


def _add_hash(found: dict[str, bytes], algorithm: str, digest: bytes, name: str) -> None:
    previous = found.setdefault(algorithm, digest)
    if previous != digest:
        raise MetalinkError(f"Metalink file {name!r} gives two different {algorithm} hashes")


def _check_piece_count(name: str, size: int | None, chunks: ChunkHashes) -> None:
    if size is None:
        return
    expected = -(-size // chunks.piece_length)
    if len(chunks.digests) != expected:
        raise MetalinkError(
            f"Metalink file {name!r}: {len(chunks.digests)} piece hashes of {chunks.piece_length}"
            f" bytes do not cover {size} bytes ({expected} expected)"
        )


def _sorted_urls(urls: list[MetalinkUrl]) -> tuple[MetalinkUrl, ...]:
    return tuple(sorted(urls, key=lambda u: u.priority))


def _sorted_metaurls(urls: list[MetaUrl]) -> tuple[MetaUrl, ...]:
    return tuple(sorted(urls, key=lambda u: u.priority))


# --- Metalink 4 (RFC 5854) ----------------------------------------------------------------


def _v4_priority(element: ET.Element, what: str) -> int:
    raw = _attr(element, "priority")
    if raw is None:
        return LOWEST_PRIORITY
    return _integer(raw, f"{what} priority", minimum=HIGHEST_PRIORITY, maximum=LOWEST_PRIORITY)


def _v4_pieces(element: ET.Element) -> ChunkHashes | None:
    """RFC 5854 §4.2.11: ``<pieces length="N" type="T">`` with one ``hash`` per piece."""
    algorithm = _algorithm(_attr(element, "type"))
    if algorithm is None:
        return None
    length = _integer(
        _attr(element, "length"), "pieces length", minimum=1, maximum=MAX_PIECE_LENGTH
    )
    digests = tuple(
        _digest(algorithm, _text(h), "piece hash")
        for h in _Children(element, METALINK4_NS).all("hash")
    )
    return ChunkHashes(algorithm, length, digests)


def _v4_file(element: ET.Element, base_uri: str | None) -> MetalinkFile:
    """RFC 5854 §4.1.2 ``metalink:file``."""
    name = _safe_name(_attr(element, "name"))
    kids = _Children(element, METALINK4_NS)
    size_el = kids.first("size")
    size = None if size_el is None else _integer(_text(size_el), "size")
    hashes: dict[str, bytes] = {}
    for h in kids.all("hash"):
        algorithm = _algorithm(_attr(h, "type"))
        if algorithm is not None:
            _add_hash(hashes, algorithm, _digest(algorithm, _text(h), "hash"), name)
    pieces: list[ChunkHashes] = []
    for p in kids.all("pieces"):
        chunks = _v4_pieces(p)
        if chunks is not None and (chunks.digests or size != 0):
            _check_piece_count(name, size, chunks)
            pieces.append(chunks)
    urls: list[MetalinkUrl] = []
    for u in kids.all("url"):
        priority = _v4_priority(u, "url")
        text = _text(u)
        if text:
            location = (_attr(u, "location") or "").strip().lower() or None
            urls.append(MetalinkUrl(_resolve(text, base_uri), priority, location))
    metaurls: list[MetaUrl] = []
    for m in kids.all("metaurl"):
        priority = _v4_priority(m, "metaurl")
        mediatype = (_attr(m, "mediatype") or "").strip()
        if not mediatype:
            raise MetalinkError(f"Metalink file {name!r}: metaurl without a mediatype")
        text = _text(m)
        if text:
            metaurls.append(
                MetaUrl(_resolve(text, base_uri), mediatype, priority, _attr(m, "name"))
            )
    publisher_el = kids.first("publisher")
    publisher = (
        None
        if publisher_el is None
        else Publisher(_attr(publisher_el, "name"), _attr(publisher_el, "url"))
    )
    sig_el = kids.first("signature")
    signature = (
        None
        if sig_el is None or not _text(sig_el)
        else Signature((_attr(sig_el, "mediatype") or "").strip(), _text(sig_el))
    )
    return MetalinkFile(
        name=name,
        size=size,
        hashes=tuple(FileHash(a, d) for a, d in hashes.items()),
        pieces=tuple(pieces),
        urls=_sorted_urls(urls),
        metaurls=_sorted_metaurls(metaurls),
        languages=kids.texts("language"),
        oses=kids.texts("os"),
        version=kids.text("version"),
        description=kids.text("description"),
        copyright=kids.text("copyright"),
        identity=kids.text("identity"),
        logo=kids.text("logo"),
        publisher=publisher,
        signature=signature,
    )


def _v4_document(root: ET.Element, base_uri: str | None) -> Metalink:
    """RFC 5854 §4.1.1 ``metalink:metalink``."""
    kids = _Children(root, METALINK4_NS)
    files = tuple(_v4_file(f, base_uri) for f in kids.all("file"))
    origin_el = kids.first("origin")
    dynamic = origin_el is not None and (_attr(origin_el, "dynamic") or "").strip() == "true"
    return Metalink(
        version=4,
        files=files,
        generator=kids.text("generator"),
        origin=_optional_text(origin_el),
        dynamic=dynamic,
        published=kids.text("published"),
        updated=kids.text("updated"),
    )


# --- Metalink 3.0 -------------------------------------------------------------------------


def _v3_pieces(element: ET.Element) -> ChunkHashes | None:
    """``<pieces type="sha1" length="N"><hash piece="0">..`` (aria2 orders by ``piece``)."""
    algorithm = _algorithm(_attr(element, "type"))
    if algorithm is None:
        return None
    length = _integer(
        _attr(element, "length"), "pieces length", minimum=1, maximum=MAX_PIECE_LENGTH
    )
    numbered: dict[int, bytes] = {}
    for index, h in enumerate(_Children(element, METALINK3_NS).all("hash")):
        raw = _attr(h, "piece")
        piece = index if raw is None else _integer(raw, "piece index")
        if piece in numbered:
            raise MetalinkError(f"Metalink piece {piece} has two hashes")
        numbered[piece] = _digest(algorithm, _text(h), "piece hash")
    if sorted(numbered) != list(range(len(numbered))):
        raise MetalinkError("Metalink piece hashes are not numbered 0, 1, 2, ...")
    return ChunkHashes(algorithm, length, tuple(numbered[i] for i in range(len(numbered))))


def _v3_file(element: ET.Element, base_uri: str | None) -> MetalinkFile:
    name = _safe_name(_attr(element, "name"))
    kids = _Children(element, METALINK3_NS)
    size_el = kids.first("size")
    size = None if size_el is None else _integer(_text(size_el), "size")
    hashes: dict[str, bytes] = {}
    pieces: list[ChunkHashes] = []
    signature: Signature | None = None
    for verification in kids.all("verification"):
        vkids = _Children(verification, METALINK3_NS)
        for h in vkids.all("hash"):
            algorithm = _algorithm(_attr(h, "type"))
            if algorithm is not None:
                _add_hash(hashes, algorithm, _digest(algorithm, _text(h), "hash"), name)
        for p in vkids.all("pieces"):
            chunks = _v3_pieces(p)
            if chunks is not None and (chunks.digests or size != 0):
                _check_piece_count(name, size, chunks)
                pieces.append(chunks)
        sig_el = vkids.first("signature")
        if signature is None and sig_el is not None and _text(sig_el):
            signature = Signature((_attr(sig_el, "type") or "").strip(), _text(sig_el))
    urls: list[MetalinkUrl] = []
    metaurls: list[MetaUrl] = []
    max_connections: int | None = None
    for resources in kids.all("resources"):
        if max_connections is None:
            max_connections = _lenient_integer(_attr(resources, "maxconnections")) or None
        for u in _Children(resources, METALINK3_NS).all("url"):
            text = _text(u)
            if not text:
                continue
            preference = _lenient_integer(_attr(u, "preference"))
            priority = (
                LOWEST_PRIORITY
                if preference is None
                else min(max(101 - preference, HIGHEST_PRIORITY), LOWEST_PRIORITY)
            )
            kind = (_attr(u, "type") or "").strip().lower()
            if kind == "bittorrent":
                metaurls.append(MetaUrl(_resolve(text, base_uri), "torrent", priority))
                continue
            location = (_attr(u, "location") or "").strip().lower() or None
            conns = _lenient_integer(_attr(u, "maxconnections")) or None
            urls.append(MetalinkUrl(_resolve(text, base_uri), priority, location, conns))
    return MetalinkFile(
        name=name,
        size=size,
        hashes=tuple(FileHash(a, d) for a, d in hashes.items()),
        pieces=tuple(pieces),
        urls=_sorted_urls(urls),
        metaurls=_sorted_metaurls(metaurls),
        languages=kids.texts("language"),
        oses=kids.texts("os"),
        version=kids.text("version"),
        description=kids.text("description"),
        copyright=kids.text("copyright"),
        identity=kids.text("identity"),
        logo=kids.text("logo"),
        signature=signature,
        max_connections=max_connections,
    )


def _v3_document(root: ET.Element, base_uri: str | None) -> Metalink:
    kids = _Children(root, METALINK3_NS)
    files = tuple(
        _v3_file(f, base_uri)
        for group in kids.all("files")
        for f in _Children(group, METALINK3_NS).all("file")
    )
    return Metalink(
        version=3,
        files=files,
        generator=_attr(root, "generator"),
        origin=_attr(root, "origin"),
        dynamic=(_attr(root, "type") or "").strip() == "dynamic",
        published=_attr(root, "pubdate"),
        updated=_attr(root, "refreshdate"),
    )


# --- entry point --------------------------------------------------------------------------


def parse_metalink(
    data: bytes,
    *,
    base_uri: str | None = None,
    max_size: int = MAX_DOCUMENT_SIZE,
    max_depth: int = MAX_DEPTH,
) -> Metalink:
    """Parse a Metalink 4 (RFC 5854) or Metalink 3.0 document.

    Args:
        data: the document's bytes (its XML declaration names the encoding; UTF-8 by default).
        base_uri: relative urls and metaurls are resolved against it (the document's own URI or
            ``--metalink-base-uri``); without it they are kept as written.
        max_size: larger documents are refused before parsing.
        max_depth: deeper element nesting is refused while parsing.

    Returns:
        The document, with at least one file.

    Raises:
        MetalinkError: exit 20, for anything malformed, hostile or unsafe.
    """
    root = _read_xml(bytes(data), max_size=max_size, max_depth=max_depth)
    if root.tag == "{" + METALINK4_NS + "}metalink":
        document = _v4_document(root, base_uri)
    elif root.tag == "{" + METALINK3_NS + "}metalink":
        document = _v3_document(root, base_uri)
    else:
        raise MetalinkError(f"not a Metalink document (root element {root.tag[:200]!r})")
    if not document.files:
        raise MetalinkError("No file entry found in the Metalink document")
    return document
