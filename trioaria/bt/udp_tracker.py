"""UDP tracker protocol (BEP 15): packet codecs and a sans-IO client (pure).

Theory of operation
-------------------
UDP trackers exchange fixed binary datagrams, integers big-endian: ``connect`` (magic protocol
id ``0x41727101980``) returns a connection id valid for one minute, then ``announce`` and
``scrape`` carry it.  Every request has a random 32-bit transaction id that the response must
echo.  Both directions are encoded and decoded here (the request decoders serve test trackers
and tracing).  Announce responses carry compact peers, 6 bytes each, or 18 when the tracker was
reached over IPv6.

:class:`UdpTrackerClient` is the client for one tracker address: ``announce``/``scrape`` queue an
operation, ``datagrams_to_send(now)`` yields what to send, ``receive_datagram(data, now)`` takes
answers (datagrams with an unknown transaction id are dropped), ``next_event()`` returns results,
and ``get_timer``/``handle_timer`` drive the retransmissions ("If a response is not received after
15 * 2 ^ n seconds, the client should retransmit the request, where n starts at 0 and is increased
up to 8").  It never reads a clock or draws random numbers: ``now`` and the transaction id source
are parameters.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import TrackerError
from .tracker import (
    AnnounceEvent,
    AnnounceRequest,
    PeerAddress,
    ScrapeStats,
    decode_compact_peers,
    encode_compact_peers,
)

__all__ = [
    "UDP_PROTOCOL_ID",
    "UdpAction",
    "UdpAnnounceRequest",
    "UdpAnnounceResponse",
    "UdpConnectRequest",
    "UdpConnectResponse",
    "UdpError",
    "UdpScrapeRequest",
    "UdpScrapeResponse",
    "UdpTimeout",
    "UdpTrackerClient",
    "decode_udp_request",
    "decode_udp_response",
    "encode_udp",
]

UDP_PROTOCOL_ID = 0x41727101980
"""BEP 15: "protocol_id ... magic constant" of the connect request."""


class UdpAction(enum.IntEnum):
    """BEP 15 ``action`` field."""

    CONNECT = 0
    ANNOUNCE = 1
    SCRAPE = 2
    ERROR = 3


@dataclass(frozen=True, slots=True)
class UdpConnectRequest:
    """``connect`` request: 16 bytes."""

    transaction_id: int


@dataclass(frozen=True, slots=True)
class UdpConnectResponse:
    """``connect`` response: the connection id for the next minute."""

    transaction_id: int
    connection_id: int


@dataclass(frozen=True, slots=True)
class UdpAnnounceRequest:
    """``announce`` request: 98 bytes (``ip`` 0 means the sender's address)."""

    connection_id: int
    transaction_id: int
    request: AnnounceRequest
    ip: int = 0


@dataclass(frozen=True, slots=True)
class UdpAnnounceResponse:
    """``announce`` response: interval, leechers, seeders and compact peers."""

    transaction_id: int
    interval: int
    leechers: int
    seeders: int
    peers: tuple[PeerAddress, ...] = ()


@dataclass(frozen=True, slots=True)
class UdpScrapeRequest:
    """``scrape`` request for up to about 74 info hashes."""

    connection_id: int
    transaction_id: int
    info_hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class UdpScrapeResponse:
    """``scrape`` response: one :class:`ScrapeStats` per requested hash, in order."""

    transaction_id: int
    stats: tuple[ScrapeStats, ...]


@dataclass(frozen=True, slots=True)
class UdpError:
    """``error`` response carrying a message."""

    transaction_id: int
    message: str


@dataclass(frozen=True, slots=True)
class UdpTimeout:
    """No answer after every retransmission (:class:`UdpTrackerClient` event)."""

    transaction_id: int
    attempts: int


UdpPacket = (
    UdpConnectRequest
    | UdpConnectResponse
    | UdpAnnounceRequest
    | UdpAnnounceResponse
    | UdpScrapeRequest
    | UdpScrapeResponse
    | UdpError
)


def _be(value: int, size: int, signed: bool = False) -> bytes:
    try:
        return value.to_bytes(size, "big", signed=signed)
    except OverflowError:
        raise ValueError(f"{value} does not fit in {size} bytes") from None


def encode_udp(packet: UdpPacket, *, ipv6: bool = False) -> bytes:
    """Encode a BEP 15 datagram (request or response).

    Args:
        packet: the packet.
        ipv6: for an announce response, write 18-byte IPv6 peers (the tracker's socket family).

    Raises:
        ValueError: a field does not fit its width, or a peer is of the other family.
    """
    match packet:
        case UdpConnectRequest(transaction_id=tid):
            return _be(UDP_PROTOCOL_ID, 8) + _be(UdpAction.CONNECT, 4) + _be(tid, 4)
        case UdpConnectResponse(transaction_id=tid, connection_id=cid):
            return _be(UdpAction.CONNECT, 4) + _be(tid, 4) + _be(cid, 8)
        case UdpAnnounceRequest(connection_id=cid, transaction_id=tid, request=r, ip=ip):
            if len(r.info_hash) != 20 or len(r.peer_id) != 20:
                raise ValueError("info_hash and peer_id must be 20 bytes")
            return b"".join(
                (
                    _be(cid, 8),
                    _be(UdpAction.ANNOUNCE, 4),
                    _be(tid, 4),
                    r.info_hash,
                    r.peer_id,
                    _be(r.downloaded, 8),
                    _be(r.left, 8),
                    _be(r.uploaded, 8),
                    _be(int(r.event), 4),
                    _be(ip, 4),
                    _be((r.key or 0) & 0xFFFFFFFF, 4),
                    _be(-1 if r.numwant is None else r.numwant, 4, signed=True),
                    _be(r.port, 2),
                )
            )
        case UdpAnnounceResponse(
            transaction_id=tid, interval=interval, leechers=leechers, seeders=seeders, peers=peers
        ):
            v4, v6 = encode_compact_peers(peers)
            if (v6 and not ipv6) or (v4 and ipv6):
                raise ValueError("peers of the other address family in a UDP announce response")
            head = _be(UdpAction.ANNOUNCE, 4) + _be(tid, 4) + _be(interval, 4)
            return head + _be(leechers, 4) + _be(seeders, 4) + (v6 if ipv6 else v4)
        case UdpScrapeRequest(connection_id=cid, transaction_id=tid, info_hashes=hashes):
            return _be(cid, 8) + _be(UdpAction.SCRAPE, 4) + _be(tid, 4) + b"".join(hashes)
        case UdpScrapeResponse(transaction_id=tid, stats=stats):
            body = b"".join(
                _be(s.complete, 4) + _be(s.downloaded, 4) + _be(s.incomplete, 4) for s in stats
            )
            return _be(UdpAction.SCRAPE, 4) + _be(tid, 4) + body
        case UdpError(transaction_id=tid, message=message):
            return _be(UdpAction.ERROR, 4) + _be(tid, 4) + message.encode()
    raise TypeError(f"not a UDP tracker packet: {packet!r}")


def _u(data: bytes, start: int, size: int) -> int:
    return int.from_bytes(data[start : start + size], "big")


def decode_udp_response(
    data: bytes, *, ipv6: bool = False
) -> UdpConnectResponse | UdpAnnounceResponse | UdpScrapeResponse | UdpError:
    """Decode a datagram from a UDP tracker (BEP 15).

    Args:
        data: the datagram.
        ipv6: the tracker was reached over IPv6, so announce peers are 18 bytes each.

    Raises:
        TrackerError: too short, an unknown action, or a malformed peer list.
    """
    if len(data) < 8:
        raise TrackerError(f"UDP tracker datagram of {len(data)} bytes")
    action, tid = _u(data, 0, 4), _u(data, 4, 4)
    if action == UdpAction.CONNECT:
        if len(data) < 16:
            raise TrackerError("short UDP connect response")
        return UdpConnectResponse(tid, _u(data, 8, 8))
    if action == UdpAction.ANNOUNCE:
        if len(data) < 20:
            raise TrackerError("short UDP announce response")
        peers = decode_compact_peers(data[20:], ipv6=ipv6)
        return UdpAnnounceResponse(
            tid, _u(data, 8, 4), _u(data, 12, 4), _u(data, 16, 4), tuple(peers)
        )
    if action == UdpAction.SCRAPE:
        if (len(data) - 8) % 12:
            raise TrackerError("UDP scrape response is not 8 + 12n bytes")
        stats = tuple(
            ScrapeStats(_u(data, i, 4), _u(data, i + 4, 4), _u(data, i + 8, 4))
            for i in range(8, len(data), 12)
        )
        return UdpScrapeResponse(tid, stats)
    if action == UdpAction.ERROR:
        return UdpError(tid, data[8:].decode("utf-8", "replace"))
    raise TrackerError(f"unknown UDP tracker action {action}")


def decode_udp_request(data: bytes) -> UdpConnectRequest | UdpAnnounceRequest | UdpScrapeRequest:
    """Decode a datagram sent *to* a UDP tracker (for test trackers and tracing).

    Raises:
        TrackerError: a wrong magic, length or action.
    """
    if len(data) < 16:
        raise TrackerError(f"UDP tracker request of {len(data)} bytes")
    cid, action, tid = _u(data, 0, 8), _u(data, 8, 4), _u(data, 12, 4)
    if action == UdpAction.CONNECT:
        if cid != UDP_PROTOCOL_ID:
            raise TrackerError("UDP connect request without the protocol id")
        return UdpConnectRequest(tid)
    if action == UdpAction.ANNOUNCE:
        if len(data) < 98:
            raise TrackerError("short UDP announce request")
        try:
            event = AnnounceEvent(_u(data, 80, 4))
        except ValueError:
            raise TrackerError("unknown announce event") from None
        numwant = int.from_bytes(data[92:96], "big", signed=True)
        request = AnnounceRequest(
            info_hash=data[16:36],
            peer_id=data[36:56],
            downloaded=_u(data, 56, 8),
            left=_u(data, 64, 8),
            uploaded=_u(data, 72, 8),
            event=event,
            key=_u(data, 88, 4),
            numwant=None if numwant == -1 else numwant,
            port=_u(data, 96, 2),
        )
        return UdpAnnounceRequest(cid, tid, request, _u(data, 84, 4))
    if action == UdpAction.SCRAPE:
        if (len(data) - 16) % 20:
            raise TrackerError("UDP scrape request is not 16 + 20n bytes")
        hashes = tuple(data[i : i + 20] for i in range(16, len(data), 20))
        return UdpScrapeRequest(cid, tid, hashes)
    raise TrackerError(f"unknown UDP tracker action {action}")


# --- the UDP client state machine ---------------------------------------------------------------


@dataclass(slots=True)
class _Operation:
    kind: UdpAction  # ANNOUNCE or SCRAPE
    announce: AnnounceRequest | None
    info_hashes: tuple[bytes, ...]
    transaction_id: int = 0
    attempts: int = 0
    deadline: float | None = None
    phase: UdpAction = UdpAction.CONNECT  # the packet in flight: CONNECT, then kind
    sent_phase: UdpAction | None = None
    sends: int = 0  # datagrams sent for it in all (a reconnect does not reset this)


UdpEvent = UdpAnnounceResponse | UdpScrapeResponse | UdpError | UdpTimeout


class UdpTrackerClient:
    """BEP 15 client for one tracker address: connect, announce/scrape, retransmit (sans-IO).

    Args:
        new_transaction_id: returns a fresh random 32-bit transaction id (the driver passes
            ``lambda: secrets.randbits(32)``; tests pass a counter).
        ipv6: the tracker's address is IPv6 (announce peers are 18 bytes).
        timeout_base: BEP 15's 15 seconds; the n-th retransmission waits ``base * 2**n``.
        max_retransmissions: BEP 15's 8; after that the operation ends with :class:`UdpTimeout`.

    Operations run one at a time, in order.  The connection id is reused until one minute after
    it arrived ("A client can use a connection ID until one minute after it has received it").
    """

    CONNECTION_ID_LIFETIME = 60.0

    def __init__(
        self,
        new_transaction_id: Callable[[], int],
        *,
        ipv6: bool = False,
        timeout_base: float = 15.0,
        max_retransmissions: int = 8,
    ) -> None:
        self._new_tid = new_transaction_id
        self.ipv6 = ipv6
        self.timeout_base = timeout_base
        self.max_retransmissions = max_retransmissions
        self._queue: deque[_Operation] = deque()
        self._events: deque[UdpEvent] = deque()
        self._outgoing: list[bytes] = []
        self._connection_id: int | None = None
        self._connection_expiry = 0.0

    def announce(self, request: AnnounceRequest, now: float) -> None:
        """Queue an announce; its datagram appears in :meth:`datagrams_to_send`."""
        self._queue.append(_Operation(UdpAction.ANNOUNCE, request, ()))
        self._pump(now)

    def scrape(self, info_hashes: Sequence[bytes], now: float) -> None:
        """Queue a scrape of up to 74 info hashes (one datagram)."""
        if not 0 < len(info_hashes) <= 74 or any(len(h) != 20 for h in info_hashes):
            raise ValueError("scrape takes 1 to 74 info hashes of 20 bytes")
        self._queue.append(_Operation(UdpAction.SCRAPE, None, tuple(info_hashes)))
        self._pump(now)

    @property
    def busy(self) -> bool:
        """An operation is queued or waiting for its answer."""
        return bool(self._queue)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Datagrams to send to the tracker now (each at most once)."""
        self._pump(now)
        out, self._outgoing = self._outgoing, []
        return out

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must run next (a retransmission or a give-up), if ever."""
        return self._queue[0].deadline if self._queue else None

    def handle_timer(self, now: float) -> None:
        """Retransmit or give up on the operation in flight once its deadline has passed."""
        if not self._queue:
            return
        op = self._queue[0]
        if op.deadline is None or now < op.deadline:
            return
        # BEP 15's ladder per request; across reconnects (a tracker that answers connects
        # only) twice that many datagrams in all, so every operation ends
        if op.attempts > self.max_retransmissions or op.sends > 2 * (self.max_retransmissions + 1):
            self._queue.popleft()
            self._events.append(UdpTimeout(op.transaction_id, op.attempts))
            # The tracker may have forgotten us: connect afresh next time (BEP 15 advice).
            self._connection_id = None
            self._pump(now)
            return
        self._send(op, now)

    def receive_datagram(self, data: bytes, now: float) -> None:
        """Take a datagram from the tracker's address; stray or malformed ones are ignored."""
        if not self._queue:
            return
        op = self._queue[0]
        try:
            packet = decode_udp_response(data, ipv6=self.ipv6)
        except TrackerError:
            return
        if packet.transaction_id != op.transaction_id:
            return  # BEP 15: "the client MUST ... check the transaction ID"
        if isinstance(packet, UdpError):
            self._queue.popleft()
            self._events.append(packet)
        elif op.phase is UdpAction.CONNECT:
            if not isinstance(packet, UdpConnectResponse):
                return
            self._connection_id = packet.connection_id
            self._connection_expiry = now + self.CONNECTION_ID_LIFETIME
            op.phase = op.kind
            op.attempts = 0
            self._send(op, now)
            return
        elif isinstance(packet, UdpAnnounceResponse | UdpScrapeResponse):
            expected = UdpAnnounceResponse if op.kind is UdpAction.ANNOUNCE else UdpScrapeResponse
            if not isinstance(packet, expected):
                return
            self._queue.popleft()
            self._events.append(packet)
        else:
            return
        self._pump(now)

    def next_event(self) -> UdpEvent | None:
        """The next finished operation: a response, a tracker error, or a timeout."""
        return self._events.popleft() if self._events else None

    def _pump(self, now: float) -> None:
        if self._queue and self._queue[0].deadline is None:
            self._send(self._queue[0], now)

    def _send(self, op: _Operation, now: float) -> None:
        if op.phase is not UdpAction.CONNECT and (
            self._connection_id is None or now >= self._connection_expiry
        ):
            op.phase = UdpAction.CONNECT
            op.attempts = 0
        connected = self._connection_id is not None and now < self._connection_expiry
        if op.phase is UdpAction.CONNECT and connected:
            op.phase = op.kind
        if op.attempts == 0 or op.sent_phase is not op.phase:
            # A retransmission keeps its transaction id, so a late answer to it still counts.
            op.transaction_id = self._new_tid() & 0xFFFFFFFF
            op.sent_phase = op.phase
        packet: UdpPacket
        if op.phase is UdpAction.CONNECT:
            packet = UdpConnectRequest(op.transaction_id)
        elif op.kind is UdpAction.ANNOUNCE:
            assert op.announce is not None
            assert self._connection_id is not None
            packet = UdpAnnounceRequest(self._connection_id, op.transaction_id, op.announce)
        else:
            assert self._connection_id is not None
            packet = UdpScrapeRequest(self._connection_id, op.transaction_id, op.info_hashes)
        self._outgoing.append(encode_udp(packet))
        op.deadline = now + self.timeout_base * 2 ** min(op.attempts, self.max_retransmissions)
        op.attempts += 1
        op.sends += 1
