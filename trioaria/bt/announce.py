"""Tracker announce loops: HTTP(S) (BEP 3/23) and UDP (BEP 15) over the pure codecs.

Theory of operation
-------------------
:class:`Announcer` keeps the torrent's tracker tiers (BEP 12: "the client tries the trackers of
the first tier in order ... a tracker that answered moves to the front of its tier") and runs one
loop: ``started`` first, then a regular announce every ``interval`` seconds (the tracker's, or
``--bt-tracker-interval``), ``completed`` once the download is complete (:meth:`completed`
wakes the loop), and ``stopped`` when the download ends (:meth:`stop`, bounded by a cancel
scope).  Counters are the swarm's: ``uploaded``, ``downloaded`` and ``left`` (the bytes of
selected pieces still missing).  Peers from every answer go to ``on_peers``.

HTTP announces are one GET over :func:`~trioaria.net.connect.open_stream` (TLS for ``https``)
parsed with h11; the body is read to its end (at most 4 MiB) and decoded by
:func:`~trioaria.bt.tracker.parse_announce_response`.  UDP announces drive
:class:`~trioaria.bt.udp_tracker.UdpTrackerClient` over one datagram socket; its retransmission
timer is honoured but the whole exchange is bounded by ``--bt-tracker-timeout``.  Trackers work
without DHT (docs/decisions.md: aria2 needs DHT on for UDP trackers, we do not).
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import h11
import trio

from ..base.errors import NetworkError, TrioariaError
from ..net.connect import TlsOptions, open_stream, read_deadline
from ..net.proxy import ProxySettings
from .errors import TrackerError
from .tracker import (
    AnnounceEvent,
    AnnounceRequest,
    PeerAddress,
    build_announce_url,
    parse_announce_response,
    split_tracker_url,
)

if TYPE_CHECKING:  # BEP 15 is imported with the first udp:// announce, --trace when asked
    from .trace import Tracer
    from .udp_tracker import UdpAnnounceResponse, UdpTrackerClient

__all__ = ["AnnounceCounters", "Announcer", "http_get", "udp_announce"]

log = logging.getLogger("trioaria.bt.tracker")

MAX_BODY = 4 << 20
MAX_REDIRECTS = 20  # as aria2's HTTP downloads
_REDIRECTS = (301, 302, 303, 307, 308)
DEFAULT_INTERVAL = 1800
MIN_INTERVAL = 1
RETRY_AFTER_FAILURE = 60


@dataclass(frozen=True, slots=True)
class AnnounceCounters:
    """The numbers an announce reports."""

    uploaded: int
    downloaded: int
    left: int


async def http_get(
    url: str,
    *,
    timeout: float,
    tls: TlsOptions | None = None,
    proxies: ProxySettings | None = None,
    what: str = "tracker URL",
) -> bytes:
    """GET ``url`` and return the body of a 200 answer (at most 4 MiB), following redirects
    (301, 302, 303, 307, 308) up to :data:`MAX_REDIRECTS` times, as aria2 follows them for
    trackers and ``.torrent`` URLs (RFC 9110 §15.4: ``Location`` resolved against the URL).

    With *proxies* the request goes through the proxy its scheme and host get (aria2 fetches
    trackers and ``.torrent`` URLs like any HTTP download): an absolute-form GET to a
    forwarding proxy, or a tunnel (``CONNECT``, SOCKS).

    Raises:
        TrackerError: a status other than 200, too many redirects, or a body too large.
        NetworkError, TimeoutError_: the connection failed.
    """
    for _ in range(MAX_REDIRECTS + 1):
        status, body, location = await _get_once(url, timeout, tls, proxies, what)
        if status in _REDIRECTS and location:
            url = urljoin(url, location)
            if urlsplit(url).scheme.lower() not in ("http", "https"):
                raise TrackerError(f"redirected to {url!r}, which is not http or https")
            continue
        if status != 200:
            raise TrackerError(f"{urlsplit(url).hostname} answered HTTP {status}")
        return body
    raise TrackerError(f"more than {MAX_REDIRECTS} redirects for {url}")


async def _get_once(
    url: str,
    timeout: float,
    tls: TlsOptions | None,
    proxies: ProxySettings | None,
    what: str,
) -> tuple[int, bytes, str | None]:
    """One GET: the status, the body and the ``Location`` header."""
    scheme, host, port, target = split_tracker_url(url, what=what)
    parts = urlsplit(url)
    secure = scheme == "https"
    route = proxies.route(parts.scheme, host) if proxies is not None else None
    extra: list[tuple[str, str]] = []
    doing = "announcing to" if what == "tracker URL" else "fetching a .torrent from"
    with read_deadline(timeout, f"{doing} {host}"):
        if route is not None and not route.tunnel:
            proxy = route.proxy
            try:
                stream = await open_stream(
                    proxy.host,
                    proxy.port,
                    tls=(tls or TlsOptions()) if proxy.tls else None,
                    connect_timeout=timeout,
                )
            except NetworkError as exc:
                exc.message = f"cannot reach the proxy {proxy.label}: {exc.message}"
                raise
            # absolute form, RFC 9112 §3.2.2
            target = f"{scheme}://{parts.netloc}{target}"
            authorization = proxy.authorization()
            if authorization is not None:
                extra.append(("Proxy-Authorization", authorization))
        else:
            stream = await open_stream(
                host,
                port,
                tls=(tls or TlsOptions()) if secure else None,
                connect_timeout=timeout,
                proxy=route.proxy if route is not None else None,
                proxy_tls=tls,
            )
        try:
            conn = h11.Connection(h11.CLIENT)
            host_header = host if ":" not in host else f"[{host}]"
            if parts.port:
                host_header += f":{parts.port}"
            request = h11.Request(
                method="GET",
                target=target,
                headers=[
                    ("Host", host_header),
                    ("User-Agent", "trioaria"),
                    ("Accept-Encoding", "identity"),
                    ("Connection", "close"),
                    *extra,
                ],
            )
            await stream.send_all(conn.send(request) + (conn.send(h11.EndOfMessage()) or b""))
            body = bytearray()
            status = 0
            location: str | None = None
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError as exc:
                    raise TrackerError(f"bad HTTP answer from {host}: {exc}") from None
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                    for name, value in event.headers:
                        if name == b"location":
                            location = value.decode("latin-1")
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_BODY:
                        raise TrackerError(f"the answer from {host} is too large")
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        finally:
            stream.close_nowait()
    return status, bytes(body), location


async def udp_announce(
    host: str,
    port: int,
    request: AnnounceRequest,
    *,
    timeout: float,
    shared: Callable[[int], Any] | None = None,
    tracer: Tracer | None = None,
) -> UdpAnnounceResponse:
    """One BEP 15 announce (connect + announce with retransmissions), bounded by ``timeout``.

    With ``shared`` (``family -> SharedUdp | None``) the datagrams go through the DHT's socket
    when it runs (``trioaria.bt.discovery``); otherwise through a socket of their own.

    Raises:
        TrackerError: the tracker answered with an error or never answered.
    """
    from .udp_tracker import UdpTrackerClient

    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_DGRAM)
    if not infos:
        raise TrackerError(f"cannot resolve {host}")
    family, _, _, _, sockaddr = infos[0]
    client = UdpTrackerClient(lambda: secrets.randbits(32), ipv6=family == trio.socket.AF_INET6)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # --trace's "peer"
    via = shared(6 if family == trio.socket.AF_INET6 else 4) if shared is not None else None
    if via is not None:
        address = (str(sockaddr[0]), int(sockaddr[1]))
        receive = via.open(address)
        try:
            return await _udp_exchange(
                client,
                request,
                lambda data: via.send(data, address),
                receive.receive,
                timeout=timeout,
                where=where,
                tracer=tracer,
            )
        finally:
            via.close(address, receive)
    with trio.socket.socket(family, trio.socket.SOCK_DGRAM) as sock:
        await sock.connect(sockaddr)
        return await _udp_exchange(
            client,
            request,
            sock.send,
            lambda: sock.recv(65536),
            timeout=timeout,
            where=where,
            tracer=tracer,
        )


async def _udp_exchange(
    client: UdpTrackerClient,
    request: AnnounceRequest,
    send: Callable[[bytes], Awaitable[Any]],
    recv: Callable[[], Awaitable[bytes]],
    *,
    timeout: float,
    where: str,
    tracer: Tracer | None,
) -> UdpAnnounceResponse:
    """Drive ``client`` (sans-IO, BEP 15) over one datagram transport until it answers."""
    from .udp_tracker import UdpAnnounceResponse, UdpError, UdpTimeout

    client.announce(request, trio.current_time())
    with trio.move_on_after(timeout):
        while True:
            now = trio.current_time()
            for datagram in client.datagrams_to_send(now):
                if tracer is not None:
                    _trace_datagram(tracer, "out", where, datagram, request)
                try:
                    await send(datagram)
                except OSError as exc:
                    raise TrackerError(f"UDP tracker {where}: {exc.strerror or exc}") from None
            event = client.next_event()
            if isinstance(event, UdpAnnounceResponse):
                return event
            if isinstance(event, UdpError):
                raise TrackerError(f"UDP tracker error: {event.message}")
            if isinstance(event, UdpTimeout):
                break
            deadline = client.get_timer()
            with trio.move_on_at(deadline if deadline is not None else now + 1):
                try:
                    data = await recv()
                except OSError:
                    continue  # ICMP port unreachable: wait for the retransmission
                if tracer is not None:
                    _trace_datagram(tracer, "in", where, data, request, ipv6=client.ipv6)
                client.receive_datagram(data, trio.current_time())
                continue
            client.handle_timer(trio.current_time())
    raise TrackerError(f"UDP tracker {where} did not answer")


class Announcer:
    """The announce loop of one torrent over its tracker tiers.

    Args:
        tiers: BEP 12 tiers of announce URLs.
        info_hash, peer_id: the torrent and us.
        port: our listen port.
        counters: returns the current uploaded/downloaded/left.
        on_peers: called with the peers of each answer.
        interval_override: ``--bt-tracker-interval`` (0: the tracker's).
        timeout: ``--bt-tracker-timeout`` seconds per announce.
        tls: TLS settings for ``https`` trackers.
        proxies: the proxies HTTP(S) announces go through (UDP announces never use one).
        udp_shared: ``family -> SharedUdp | None``: UDP trackers use the DHT's socket when it
            runs (``trioaria.bt.discovery``).
        tracer: ``--trace``: announces and answers are written there (bt/trace.py).
        rng: shuffles the URLs of each tier (BEP 12).
    """

    def __init__(
        self,
        tiers: Sequence[Sequence[str]],
        *,
        info_hash: bytes,
        peer_id: bytes,
        port: int,
        counters: Callable[[], AnnounceCounters],
        on_peers: Callable[[list[tuple[str, int]]], None],
        interval_override: int = 0,
        timeout: float = 60.0,
        tls: TlsOptions | None = None,
        numwant: int = 50,
        proxies: ProxySettings | None = None,
        udp_shared: Callable[[int], Any] | None = None,
        tracer: Tracer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        # BEP 12: the URLs of each tier are tried in an order shuffled once, at the start
        rng = rng if rng is not None else random.Random()
        self.tiers = [rng.sample(t, len(t)) for t in tiers if t]
        self.info_hash = info_hash
        self.peer_id = peer_id
        self.port = port
        self._counters = counters
        self._on_peers = on_peers
        self._interval_override = interval_override
        self.timeout = timeout
        self._tls = tls
        self._proxies = proxies
        self._numwant = numwant
        self._udp_shared = udp_shared
        self._tracer = tracer
        self._key = secrets.randbits(32)
        self._tracker_ids: dict[str, bytes] = {}
        self._wake = trio.Event()
        self._completed_pending = False
        self._started = False
        self.announces: list[tuple[str, str]] = []  # (url, event) of each successful announce
        self.last_error = ""

    def completed(self) -> None:
        """The download is complete: announce ``completed`` now."""
        self._completed_pending = True
        self._wake.set()

    async def run(self) -> None:
        """Announce until cancelled (``started``, regular, ``completed``)."""
        if not self.tiers:
            await trio.sleep_forever()
        while True:
            if not self._started:
                event = AnnounceEvent.STARTED
            elif self._completed_pending:
                event = AnnounceEvent.COMPLETED
            else:
                event = AnnounceEvent.NONE
            interval = await self._announce_tiers(event)
            if interval is None:
                interval = RETRY_AFTER_FAILURE
            else:
                if event is AnnounceEvent.STARTED:
                    self._started = True
                elif event is AnnounceEvent.COMPLETED:
                    self._completed_pending = False
            if self._interval_override:
                interval = self._interval_override
            with trio.move_on_after(max(MIN_INTERVAL, interval)):
                await self._wake.wait()
            self._wake = trio.Event()

    async def stop(self, timeout: float) -> None:
        """Announce ``stopped`` (only after a successful ``started``), bounded by ``timeout``."""
        if not self._started or not self.tiers:
            return
        with trio.move_on_after(timeout):
            # completed, then stopped at once (--seed-time=0)
            if (
                self._completed_pending
                and await self._announce_tiers(AnnounceEvent.COMPLETED) is not None
            ):
                self._completed_pending = False
            await self._announce_tiers(AnnounceEvent.STOPPED)

    async def _announce_tiers(self, event: AnnounceEvent) -> int | None:
        """Announce to the first tracker that answers (BEP 12); return its interval."""
        for tier in self.tiers:
            for url in list(tier):
                try:
                    interval, peers = await self._announce_one(url, event)
                except TrioariaError as exc:
                    self.last_error = f"{url}: {exc}"
                    log.info("announce to %s failed: %s", url, exc)
                    continue
                except (OSError, ValueError) as exc:  # ValueError: a host name the resolver
                    # refuses (UnicodeError) that split_tracker_url let through
                    self.last_error = f"{url}: {exc}"
                    log.info("announce to %s failed: %s", url, exc)
                    continue
                tier.remove(url)
                tier.insert(0, url)
                self.announces.append((url, event.http_name))
                if peers:
                    self._on_peers(peers)
                return interval
        return None

    def _request(self, event: AnnounceEvent) -> AnnounceRequest:
        counters = self._counters()
        return AnnounceRequest(
            info_hash=self.info_hash,
            peer_id=self.peer_id,
            port=self.port,
            uploaded=counters.uploaded,
            downloaded=counters.downloaded,
            left=counters.left,
            event=event,
            numwant=0 if event is AnnounceEvent.STOPPED else self._numwant,
            key=self._key,
        )

    async def _announce_one(
        self, url: str, event: AnnounceEvent
    ) -> tuple[int, list[tuple[str, int]]]:
        request = self._request(event)
        scheme, host, port, _ = split_tracker_url(url)  # TrackerError: one failed tracker
        if scheme in ("http", "https"):
            tracker_id = self._tracker_ids.get(url)
            if tracker_id is not None:
                from dataclasses import replace

                request = replace(request, tracker_id=tracker_id)
            tracer = self._tracer
            if tracer is not None:
                from .trace import message_fields

                tracer.record("out", "http-tracker", url, "announce", message_fields(request))
            try:
                body = await http_get(
                    build_announce_url(url, request),
                    timeout=self.timeout,
                    tls=self._tls,
                    proxies=self._proxies,
                )
                response = parse_announce_response(body)
            except TrioariaError as exc:
                if tracer is not None:
                    tracer.record("in", "http-tracker", url, "error", {"error": str(exc)})
                raise
            if tracer is not None:
                from .trace import message_fields

                tracer.record(
                    "in", "http-tracker", url, "announce_response", message_fields(response)
                )
            if response.tracker_id is not None:
                self._tracker_ids[url] = response.tracker_id
            if response.warning:
                log.warning("tracker %s: %s", url, response.warning)
            interval = response.interval or DEFAULT_INTERVAL
            if response.min_interval:
                interval = max(interval, response.min_interval)
            return interval, _addresses(response.peers)
        if scheme == "udp":
            answer = await udp_announce(
                host,
                port,
                request,
                timeout=self.timeout,
                shared=self._udp_shared,
                tracer=self._tracer,
            )
            return answer.interval or DEFAULT_INTERVAL, _addresses(answer.peers)
        raise NetworkError(f"unsupported tracker scheme in {url}", retryable=False)


_UDP_ACTIONS = {0: "connect", 1: "announce", 2: "scrape", 3: "error"}


def _trace_datagram(
    tracer: Tracer,
    direction: str,
    peer: str,
    data: bytes,
    request: AnnounceRequest,
    *,
    ipv6: bool = False,
) -> None:
    """One BEP 15 datagram: its action and transaction id, the announce's fields (out) or the
    answer's (in, decoded with the pure codec's layout: action, transaction, then the body)."""
    if direction == "out":  # connection_id (8), action (4), transaction_id (4)
        if len(data) < 16:
            return
        action = int.from_bytes(data[8:12], "big")
        fields: dict[str, object] = {"transaction_id": int.from_bytes(data[12:16], "big")}
        if action == 1:
            from .trace import message_fields

            fields.update(message_fields(request))
    else:  # action (4), transaction_id (4), ...
        if len(data) < 8:
            return
        action = int.from_bytes(data[0:4], "big")
        fields = {"transaction_id": int.from_bytes(data[4:8], "big")}
        if action == 1 and len(data) >= 20:
            fields["interval"] = int.from_bytes(data[8:12], "big")
            fields["leechers"] = int.from_bytes(data[12:16], "big")
            fields["seeders"] = int.from_bytes(data[16:20], "big")
            fields["peers"] = (len(data) - 20) // (18 if ipv6 else 6)  # BEP 15 IPv6: 18
        elif action == 3:
            fields["error"] = data[8:].decode("utf-8", "replace")
    tracer.record(direction, "udp-tracker", peer, _UDP_ACTIONS.get(action, str(action)), fields)


def _addresses(peers: Sequence[PeerAddress]) -> list[tuple[str, int]]:
    return [(p.host, p.port) for p in peers if 0 < p.port < 65536]
