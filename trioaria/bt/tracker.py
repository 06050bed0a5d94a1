"""HTTP tracker announce and scrape (BEP 3, 7, 23, 24, 48) and the types trackers share (pure).

Theory of operation
-------------------
HTTP trackers (BEP 3 "trackers") take a GET with the query parameters ``info_hash``, ``peer_id``,
``port``, ``uploaded``, ``downloaded``, ``left``, ``event`` (``started``/``completed``/
``stopped``, absent for a regular announce), ``compact=1`` (BEP 23) and the widely used ``key``,
``numwant``, ``no_peer_id``, ``trackerid`` and ``supportcrypto``/``requirecrypto``.
:func:`build_announce_url` writes them in aria2's order (``DefaultBtAnnounce::getAnnounceUrl``),
percent-encoding the binary ``info_hash`` and ``peer_id`` byte by byte.  The answer is a
bencoded dictionary: ``failure reason`` alone, or ``interval``, ``min interval``, ``tracker id``,
``complete``/``incomplete`` and ``peers``, either compact (BEP 23: 6 bytes per IPv4 peer) or a
list of ``{ip, port, peer id}`` dictionaries, plus ``peers6`` (BEP 7: 18 bytes per IPv6 peer).
:func:`parse_announce_response` turns it into an :class:`AnnounceResponse` or raises
:class:`~trioaria.bt.errors.TrackerFailure` (the tracker's reason) or
:class:`~trioaria.bt.errors.TrackerError` (a malformed body).

:class:`AnnounceRequest`, :class:`AnnounceEvent` (valued as BEP 15 numbers them),
:class:`PeerAddress` and the compact peer codecs are shared with the UDP tracker
(:mod:`trioaria.bt.udp_tracker`), PEX and DHT.  Building the GET and reading the body is all
this module does; the HTTP request itself is the driver's.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from .bencode import BValue, decode
from .errors import BencodeError, TrackerError, TrackerFailure

__all__ = [
    "AnnounceEvent",
    "AnnounceRequest",
    "AnnounceResponse",
    "PeerAddress",
    "ScrapeStats",
    "build_announce_url",
    "decode_compact_peers",
    "encode_compact_peers",
    "parse_announce_response",
    "parse_scrape_response",
    "scrape_url",
    "split_tracker_url",
]


class AnnounceEvent(enum.IntEnum):
    """The announce ``event``, valued as in BEP 15 (the HTTP names are BEP 3's)."""

    NONE = 0
    COMPLETED = 1
    STARTED = 2
    STOPPED = 3

    @property
    def http_name(self) -> str:
        """``""`` (a regular announce sends no ``event``), ``completed``, ``started``, ``stopped``."""
        return "" if self is AnnounceEvent.NONE else self.name.lower()


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """A peer from a tracker (or PEX/DHT): an IP literal or host name, a port, maybe an id."""

    host: str
    port: int
    peer_id: bytes | None = None


@dataclass(frozen=True, slots=True)
class AnnounceRequest:
    """What we tell a tracker (BEP 3 announce parameters; BEP 15 uses the same values).

    Attributes:
        info_hash: the torrent's 20-byte info hash.
        peer_id: our 20-byte peer id.
        port: our TCP listen port.
        uploaded: payload bytes sent since the ``started`` event.
        downloaded: payload bytes received (verified) since the ``started`` event.
        left: bytes still missing ("not the total, what is left to download").
        event: started, completed, stopped or none.
        numwant: peers wanted (``None``: leave it to the tracker; BEP 15's -1).
        key: a 32-bit value that lets the tracker recognise us across IP changes.
        compact: ask for BEP 23 compact peers.
        no_peer_id: ask the tracker to omit peer ids from dict peers.
        tracker_id: the ``tracker id`` a previous response gave.
        require_crypto: send ``requirecrypto=1`` instead of ``supportcrypto=1``.
        ip: an explicit address to announce (``--bt-external-ip``).
    """

    info_hash: bytes
    peer_id: bytes
    port: int
    uploaded: int = 0
    downloaded: int = 0
    left: int = 0
    event: AnnounceEvent = AnnounceEvent.NONE
    numwant: int | None = 50
    key: int | None = None
    compact: bool = True
    no_peer_id: bool = True
    tracker_id: bytes | None = None
    require_crypto: bool = False
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class AnnounceResponse:
    """A successful HTTP announce (BEP 3, 7, 23, 24).

    Attributes:
        interval: seconds until the next regular announce.
        min_interval: the tracker's lower bound on re-announcing, if given.
        peers: IPv4 (``peers``) then IPv6 (``peers6``) peers, in the tracker's order.
        complete: seeders, if given.
        incomplete: leechers, if given.
        tracker_id: ``tracker id`` to send back on the next announce.
        warning: ``warning message``.
        external_ip: BEP 24 ``external ip`` (4 or 16 bytes).
    """

    interval: int | None
    min_interval: int | None = None
    peers: tuple[PeerAddress, ...] = ()
    complete: int | None = None
    incomplete: int | None = None
    tracker_id: bytes | None = None
    warning: str | None = None
    external_ip: bytes | None = None


@dataclass(frozen=True, slots=True)
class ScrapeStats:
    """Per-torrent scrape numbers (BEP 48 for HTTP, BEP 15 for UDP)."""

    complete: int
    downloaded: int
    incomplete: int


# --- HTTP ---------------------------------------------------------------------------------------


def _pct(raw: bytes) -> str:
    return quote(raw, safe="")


_DEFAULT_PORTS = {"http": 80, "https": 443}
# a request target keeps every printable ASCII character; spaces, controls and the rest are
# percent-encoded (as a browser does), so no URL can make the request line invalid
_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


def split_tracker_url(url: str, *, what: str = "tracker URL") -> tuple[str, str, int, str]:
    """Check an announce URL (from a torrent, a magnet's ``tr``, ``--bt-tracker``: untrusted)
    and split it into ``(scheme, host, port, target)``: the host without IPv6 brackets, the
    request target (path and query) for HTTP(S).  A URL that cannot be used is one failed
    tracker, as in aria2, never a crash.

    Raises:
        TrackerError: not http/https/udp, no host, a port that is not a number in 1-65535 (a
            UDP tracker must name one, BEP 15), an unclosed IPv6 bracket, or a host name that
            IDNA cannot encode (an empty or over-long label); the message names the URL as
            ``what`` (a ``.torrent`` URL is checked the same way).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a port out of range or not a number, "[::1" ...
        raise TrackerError(f"bad {what} {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "udp"):
        raise TrackerError(f"bad {what} {url!r}: not http, https or udp")
    host = parts.hostname or ""
    try:
        host.encode("idna")
    except UnicodeError:
        host = ""
    if not host:
        raise TrackerError(f"bad {what} {url!r}: no usable host name")
    if port is None:
        port = _DEFAULT_PORTS.get(scheme, 0)
    if not port:
        raise TrackerError(f"bad {what} {url!r}: no port")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return scheme, host, port, quote(target, safe=_TARGET_SAFE)


def build_announce_url(announce: str, request: AnnounceRequest) -> str:
    """The GET URL of an HTTP announce (BEP 3), parameters in aria2's order.

    Args:
        announce: the tracker's announce URL (may already carry a query).
        request: what to announce.

    Returns:
        ``announce`` plus ``?`` (or ``&``) and the query.

    Raises:
        ValueError: a negative counter, a port out of range, or ids not 20 bytes long.
    """
    if len(request.info_hash) != 20 or len(request.peer_id) != 20:
        raise ValueError("info_hash and peer_id must be 20 bytes")
    if min(request.uploaded, request.downloaded, request.left) < 0:
        raise ValueError("uploaded, downloaded and left must not be negative")
    if not 0 <= request.port <= 65535:
        raise ValueError(f"port {request.port} out of range")
    base = announce.partition("#")[0]
    params = [
        f"info_hash={_pct(request.info_hash)}",
        f"peer_id={_pct(request.peer_id)}",
        f"uploaded={request.uploaded}",
        f"downloaded={request.downloaded}",
        f"left={request.left}",
    ]
    if request.compact:
        params.append("compact=1")
    if request.key is not None:
        params.append(f"key={request.key & 0xFFFFFFFF:08X}")
    if request.numwant is not None:
        params.append(f"numwant={request.numwant}")
    if request.no_peer_id:
        params.append("no_peer_id=1")
    if request.port:
        params.append(f"port={request.port}")
    if request.event is not AnnounceEvent.NONE:
        params.append(f"event={request.event.http_name}")
    if request.tracker_id is not None:
        params.append(f"trackerid={_pct(request.tracker_id)}")
    params.append("requirecrypto=1" if request.require_crypto else "supportcrypto=1")
    if request.ip:
        params.append(f"ip={quote(request.ip, safe='')}")
    sep = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        sep = ""
    return base + sep + "&".join(params)


def decode_compact_peers(data: bytes, *, ipv6: bool = False) -> list[PeerAddress]:
    """Decode BEP 23 compact IPv4 (6 bytes each) or BEP 7 IPv6 (18 bytes each) peers.

    Entries with port 0 are dropped (nobody listens there).

    Raises:
        TrackerError: the length is not a multiple of the entry size.
    """
    size = 18 if ipv6 else 6
    if len(data) % size:
        raise TrackerError(f"compact peers of {len(data)} bytes, not a multiple of {size}")
    out: list[PeerAddress] = []
    for i in range(0, len(data), size):
        port = int.from_bytes(data[i + size - 2 : i + size], "big")
        if port == 0:
            continue
        raw = data[i : i + size - 2]
        ip = ipaddress.IPv6Address(raw) if ipv6 else ipaddress.IPv4Address(raw)
        out.append(PeerAddress(str(ip), port))
    return out


def encode_compact_peers(peers: Iterable[tuple[str, int] | PeerAddress]) -> tuple[bytes, bytes]:
    """Encode peers compactly; returns ``(ipv4_bytes, ipv6_bytes)`` (BEP 23, BEP 7).

    Raises:
        ValueError: a host is not an IP literal or a port is out of range.
    """
    v4 = bytearray()
    v6 = bytearray()
    for peer in peers:
        host, port = (peer.host, peer.port) if isinstance(peer, PeerAddress) else peer
        if not 0 < port < 65536:
            raise ValueError(f"port {port} out of range")
        ip = ipaddress.ip_address(host)
        (v4 if ip.version == 4 else v6).extend(ip.packed + port.to_bytes(2, "big"))
    return bytes(v4), bytes(v6)


def _dict_peers(items: list[BValue]) -> list[PeerAddress]:
    out: list[PeerAddress] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        ip, port, peer_id = item.get(b"ip"), item.get(b"port"), item.get(b"peer id")
        if not isinstance(ip, bytes) or not isinstance(port, int) or not 0 < port < 65536:
            continue
        try:
            host = ip.decode("ascii")
        except UnicodeDecodeError:
            continue
        if not host:
            continue
        pid = peer_id if isinstance(peer_id, bytes) and len(peer_id) == 20 else None
        out.append(PeerAddress(host, port, pid))
    return out


def _optional_int(d: dict[bytes, BValue], key: bytes) -> int | None:
    value = d.get(key)
    return value if isinstance(value, int) and value >= 0 else None


def _tracker_dict(body: bytes) -> dict[bytes, BValue]:
    try:
        d = decode(body, max_size=16 * 1024 * 1024)
    except BencodeError as exc:
        raise TrackerError(f"bad tracker response: {exc.reason}") from None
    if not isinstance(d, dict):
        raise TrackerError("tracker response is not a dictionary")
    failure = d.get(b"failure reason")
    if isinstance(failure, bytes):
        raise TrackerFailure(failure.decode("utf-8", "replace"))
    return d


def parse_announce_response(body: bytes) -> AnnounceResponse:
    """Parse an HTTP tracker's announce answer (BEP 3, BEP 7 ``peers6``, BEP 23 compact).

    Raises:
        TrackerFailure: the tracker sent ``failure reason``.
        TrackerError: the body is not a valid bencoded dictionary, or its peers are malformed.
    """
    d = _tracker_dict(body)
    peers: list[PeerAddress] = []
    # a compact list of a length that is not a multiple of its entry size is skipped, the rest
    # of the answer used (aria2 does the same)
    raw_peers = d.get(b"peers")
    if isinstance(raw_peers, bytes) and len(raw_peers) % 6 == 0:
        peers.extend(decode_compact_peers(raw_peers))
    elif isinstance(raw_peers, list):
        peers.extend(_dict_peers(raw_peers))
    raw6 = d.get(b"peers6")
    if isinstance(raw6, bytes) and len(raw6) % 18 == 0:
        peers.extend(decode_compact_peers(raw6, ipv6=True))
    warning = d.get(b"warning message")
    tracker_id = d.get(b"tracker id")
    external = d.get(b"external ip")
    return AnnounceResponse(
        interval=_optional_int(d, b"interval"),
        min_interval=_optional_int(d, b"min interval"),
        peers=tuple(peers),
        complete=_optional_int(d, b"complete"),
        incomplete=_optional_int(d, b"incomplete"),
        tracker_id=tracker_id if isinstance(tracker_id, bytes) and tracker_id else None,
        warning=warning.decode("utf-8", "replace") if isinstance(warning, bytes) else None,
        external_ip=external if isinstance(external, bytes) and len(external) in (4, 16) else None,
    )


def scrape_url(announce: str) -> str | None:
    """The scrape URL by the BEP 48 convention: the last path component must begin with
    ``announce``, which becomes ``scrape``; ``None`` when the tracker has no scrape URL."""
    base, sep, query = announce.partition("?")
    head, slash, last = base.rpartition("/")
    if not slash or not last.startswith("announce"):
        return None
    return head + "/scrape" + last[len("announce") :] + sep + query


def parse_scrape_response(body: bytes, info_hash: bytes) -> ScrapeStats | None:
    """Read one torrent's numbers from an HTTP scrape answer (BEP 48); ``None`` if absent.

    Raises:
        TrackerFailure: the tracker sent ``failure reason``.
        TrackerError: the body is not a valid bencoded dictionary.
    """
    files = _tracker_dict(body).get(b"files")
    entry = files.get(info_hash) if isinstance(files, dict) else None
    if not isinstance(entry, dict):
        return None
    numbers = [_optional_int(entry, k) for k in (b"complete", b"downloaded", b"incomplete")]
    return ScrapeStats(*(n or 0 for n in numbers))
