"""Local Service Discovery (BEP 14): BT-SEARCH messages and the announce schedule (pure).

Theory of operation
-------------------
BEP 14 "Protocol": "LSD uses the following multicast groups: A) 239.192.152.143:6771
(org-local) and B) [ff15::efc0:988f]:6771 (site-local)".  An announce is an HTTP-like datagram::

    BT-SEARCH * HTTP/1.1\\r\\n
    Host: <host>\\r\\n
    Port: <port>\\r\\n
    Infohash: <ihash>\\r\\n
    cookie: <cookie (optional)>\\r\\n
    \\r\\n
    \\r\\n

``Host`` names the group the datagram went to, ``Port`` is the sender's BitTorrent listen port,
each ``Infohash`` header is 40 hex digits ("An announce may contain multiple, consecutive
Infohash headers"), and the optional ``cookie`` lets a client "filter out its own announces"
when multicast loopback hands them back.  The peer is the datagram's source address with the
announced port.

:func:`build_announce` and :func:`parse_announce` are the codec; parsing is lenient in what
the BEP leaves open (header names are case-insensitive, LF-only line ends, a missing final
blank line) and strict about the rest (the request line, a decimal port in 1..65535, hex info
hashes); anything else raises :class:`LpdError`.  Datagrams over :data:`MAX_DATAGRAM` bytes are
refused.

:class:`LpdService` is the datagram core (aioquic shape, time passed in): torrents are added and
removed; :meth:`LpdService.datagrams_to_send` yields the announces due, batching up to
:data:`MAX_HASHES_PER_MESSAGE` hashes per datagram, each torrent every ``interval`` seconds
(default 5 minutes, as libtorrent) and never more than once per ``min_interval`` (1 minute) even
when re-added; :meth:`LpdService.receive_datagram` returns the :class:`LpdPeer` events for
torrents we have, drops our own cookie, and answers at most :data:`MAX_PEERS_PER_SOURCE`
announces per source address per minute, so a flooding neighbour costs bounded work.
Private torrents must never be added (the caller's rule, BEP 27).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ..base.errors import RemoteProtocolError

__all__ = [
    "DEFAULT_INTERVAL",
    "LPD_GROUP4",
    "LPD_GROUP6",
    "LPD_PORT",
    "MAX_DATAGRAM",
    "MAX_HASHES_PER_MESSAGE",
    "MAX_PEERS_PER_SOURCE",
    "MIN_INTERVAL",
    "LpdAnnounce",
    "LpdError",
    "LpdPeer",
    "LpdService",
    "build_announce",
    "parse_announce",
]

LPD_PORT = 6771
LPD_GROUP4 = "239.192.152.143"
"""BEP 14 group A (org-local IPv4)."""
LPD_GROUP6 = "ff15::efc0:988f"
"""BEP 14 group B (site-local IPv6)."""

MAX_DATAGRAM = 1400
"""Largest announce built or accepted (fits one Ethernet frame)."""

MAX_HASHES_PER_MESSAGE = 20
"""Info hashes per announce (20 x 52 bytes of headers stays under :data:`MAX_DATAGRAM`)."""

DEFAULT_INTERVAL = 5 * 60.0
MIN_INTERVAL = 60.0
MAX_PEERS_PER_SOURCE = 20
_MAX_SOURCES = 1024
_REQUEST_LINE = b"BT-SEARCH * HTTP/1.1"


class LpdError(RemoteProtocolError):
    """A datagram on the LPD group is not a valid BT-SEARCH announce."""


@dataclass(frozen=True, slots=True)
class LpdAnnounce:
    """A decoded announce.

    Attributes:
        host: the ``Host`` header (the group, e.g. ``239.192.152.143:6771``).
        port: the sender's BitTorrent listen port.
        info_hashes: the announced torrents (20-byte hashes), in message order.
        cookie: the ``cookie`` header, if any.
    """

    host: str
    port: int
    info_hashes: tuple[bytes, ...]
    cookie: str | None = None


@dataclass(frozen=True, slots=True)
class LpdPeer:
    """A neighbour announced a torrent we have: connect to ``address``."""

    info_hash: bytes
    address: tuple[str, int]


def _host_header(group: str) -> str:
    return f"[{group}]:{LPD_PORT}" if ":" in group else f"{group}:{LPD_PORT}"


def build_announce(
    info_hashes: list[bytes] | tuple[bytes, ...],
    port: int,
    *,
    cookie: str | None = None,
    group: str = LPD_GROUP4,
) -> bytes:
    """One BT-SEARCH datagram.

    Raises:
        ValueError: no hash, a hash that is not 20 bytes, a port outside 1..65535, a cookie with
            a line break, or a message over :data:`MAX_DATAGRAM`.
    """
    if not info_hashes:
        raise ValueError("an announce needs at least one info hash")
    if not 0 < port <= 0xFFFF:
        raise ValueError(f"port {port} out of range")
    lines = [_REQUEST_LINE, f"Host: {_host_header(group)}".encode(), f"Port: {port}".encode()]
    for ih in info_hashes:
        if len(ih) != 20:
            raise ValueError("an info hash has 20 bytes")
        lines.append(b"Infohash: " + ih.hex().encode())
    if cookie is not None:
        if "\r" in cookie or "\n" in cookie:
            raise ValueError("cookie must be one line")
        lines.append(f"cookie: {cookie}".encode())
    message = b"\r\n".join(lines) + b"\r\n\r\n\r\n"
    if len(message) > MAX_DATAGRAM:
        raise ValueError(f"announce of {len(message)} bytes exceeds {MAX_DATAGRAM}")
    return message


def parse_announce(data: bytes | bytearray | memoryview) -> LpdAnnounce:
    """Decode one BT-SEARCH datagram.

    Raises:
        LpdError: not a BT-SEARCH request, a missing or bad ``Port``/``Infohash``/``Host``.
    """
    if len(data) > MAX_DATAGRAM:
        raise LpdError(f"LPD datagram of {len(data)} bytes is too large")
    raw = bytes(data)
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    if lines[0].strip() != _REQUEST_LINE:
        raise LpdError("not a BT-SEARCH announce")
    host: str | None = None
    port: int | None = None
    cookie: str | None = None
    hashes: list[bytes] = []
    for line in lines[1:]:
        if not line:
            break
        name, sep, value = line.partition(b":")
        if not sep:
            raise LpdError(f"malformed header line {line[:40]!r}")
        key = name.strip().lower()
        text = value.strip()
        if key == b"host":
            host = text.decode("ascii", "replace")
        elif key == b"port":
            if not text.isdigit() or len(text) > 5 or not 0 < int(text) <= 0xFFFF:
                raise LpdError(f"bad Port {text[:10]!r}")
            port = int(text)
        elif key == b"infohash":
            if len(text) != 40:
                raise LpdError(f"bad Infohash {text[:48]!r}")
            try:
                hashes.append(bytes.fromhex(text.decode("ascii")))
            except (ValueError, UnicodeDecodeError):
                raise LpdError(f"bad Infohash {text[:48]!r}") from None
        elif key == b"cookie":
            cookie = text.decode("utf-8", "replace")
    if host is None or port is None or not hashes:
        raise LpdError("announce lacks Host, Port or Infohash")
    return LpdAnnounce(host, port, tuple(hashes), cookie)


@dataclass(slots=True)
class _Limit:
    count: int
    since: float


class LpdService:
    """The LPD announce schedule and receive filter for one group.

    Args:
        port: our BitTorrent listen port (the ``Port`` header).
        cookie: our cookie (random per process in drivers); announces carrying it are ours.
        group: :data:`LPD_GROUP4` or :data:`LPD_GROUP6`.
        interval: seconds between announces of one torrent.
        min_interval: the least time between two announces of one torrent.
    """

    def __init__(
        self,
        port: int,
        cookie: str,
        *,
        group: str = LPD_GROUP4,
        interval: float = DEFAULT_INTERVAL,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self.port = port
        self.cookie = cookie
        self.group = group
        self.interval = max(interval, min_interval)
        self.min_interval = min_interval
        self._next: dict[bytes, float] = {}  # info hash -> when it is due
        self._last: dict[bytes, float] = {}
        self._sources: OrderedDict[str, _Limit] = OrderedDict()

    def add_torrent(self, info_hash: bytes, now: float) -> None:
        """Announce ``info_hash`` from now on (at once, unless it went out < min_interval ago)."""
        last = self._last.get(info_hash)
        self._next[info_hash] = now if last is None else max(now, last + self.min_interval)

    def remove_torrent(self, info_hash: bytes) -> None:
        """Stop announcing and accepting ``info_hash``."""
        self._next.pop(info_hash, None)

    def get_timer(self) -> float | None:
        """When the next announce is due (None: nothing to announce)."""
        return min(self._next.values(), default=None)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """The announces due at ``now`` (to send to the group's port 6771)."""
        due = sorted(ih for ih, t in self._next.items() if t <= now)
        out: list[bytes] = []
        for i in range(0, len(due), MAX_HASHES_PER_MESSAGE):
            batch = due[i : i + MAX_HASHES_PER_MESSAGE]
            out.append(build_announce(batch, self.port, cookie=self.cookie, group=self.group))
        for ih in due:
            self._last[ih] = now
            self._next[ih] = now + self.interval
        return out

    def receive_datagram(self, data: bytes, address: tuple[str, int], now: float) -> list[LpdPeer]:
        """Peers announced by ``address`` for torrents we have (ours and floods filtered).

        Malformed datagrams yield nothing (they are not an error of ours).
        """
        try:
            announce = parse_announce(data)
        except LpdError:
            return []
        if announce.cookie is not None and announce.cookie == self.cookie:
            return []
        ip = address[0]
        limit = self._sources.get(ip)
        if limit is None or now - limit.since >= MIN_INTERVAL:
            limit = self._sources[ip] = _Limit(0, now)
        self._sources.move_to_end(ip)
        while len(self._sources) > _MAX_SOURCES:
            self._sources.popitem(last=False)
        peers: list[LpdPeer] = []
        for ih in announce.info_hashes:
            if ih in self._next and limit.count < MAX_PEERS_PER_SOURCE:
                limit.count += 1
                peers.append(LpdPeer(ih, (ip, announce.port)))
        return peers
