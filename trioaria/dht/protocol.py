"""One DHT node's protocol as a sans-IO datagram machine (pure).

Theory of operation
-------------------
:class:`DhtProtocol` is the whole BEP 5 node minus the socket, in aioquic's datagram shape:
``receive_datagram(data, addr, now)`` takes what the socket read, ``datagrams_to_send()`` returns
``(bytes, addr)`` pairs to write, ``next_event()`` reports outcomes, and ``get_timer()`` /
``handle_timer(now)`` carry every deadline (query timeouts, bucket refresh, token rotation, peer
expiry).  It never reads a clock: ``now`` is always passed in.

Incoming queries are answered at once (BEP 5 "DHT Queries"): ``ping`` with our id;
``find_node`` with the 8 closest good nodes ("nodes", and "nodes6" when BEP 32 ``want`` asks
and a sibling IPv6 table is attached); ``get_peers`` with a token and either "values" (peers
announced to us) or "nodes"; ``announce_peer`` checks the token ("the queried node must verify
that the token was previously sent to the same IP address as the querying node") and stores the
peer, using the UDP source port when ``implied_port`` is set.  An unknown method gets error 204,
a malformed query error 203, anything else malformed is dropped.  Queries are rate-limited per
source IP (a token bucket, :data:`QUERY_RATE` per second with a burst of :data:`QUERY_BURST`);
over the limit they are dropped, and the limiter itself keeps at most :data:`MAX_LIMITED_IPS`
addresses, so a flood costs bounded memory.

Outgoing queries (``ping``, ``find_node``, ``get_peers``, ``announce_peer``) get a 2-byte
transaction id; an answer counts only if it comes from the address the query went to.  A query
not answered within ``query_timeout`` seconds (aria2's ``--dht-message-timeout``, 10 s) fails.
Every answer and every query from a node updates the routing table; a full bucket's
questionable node is pinged and, when it fails, replaced (:mod:`trioaria.dht.routing`).

Lookups (:mod:`trioaria.dht.lookup`) run inside: :meth:`DhtProtocol.start_lookup` seeds one
from the table and keeps ``alpha`` queries in flight until it is done, then reports
:class:`LookupDone`; with ``announce_port`` it then sends ``announce_peer`` to the closest nodes
that gave a token.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from .krpc import (
    ErrorCode,
    ErrorMessage,
    KrpcDecodeError,
    Message,
    Method,
    Query,
    Response,
    decode_message,
    encode_message,
)
from .lookup import Lookup, LookupKind
from .node_id import Address, NodeId, NodeInfo
from .routing import RoutingTable
from .tokens import PeerStore, TokenManager

__all__ = [
    "DEFAULT_QUERY_TIMEOUT",
    "MAX_LIMITED_IPS",
    "QUERY_BURST",
    "QUERY_RATE",
    "VERSION",
    "DhtEvent",
    "DhtProtocol",
    "LookupDone",
    "PeerAnnounced",
    "QueryAnswered",
    "QueryFailed",
]

VERSION = b"TA\x01\x00"
"""Our ``v``: two letters for the client, two bytes of version (BEP 20 style)."""

DEFAULT_QUERY_TIMEOUT = 10.0
"""aria2's ``--dht-message-timeout`` default."""

QUERY_RATE = 50.0
"""Queries per second answered for one source IP, sustained."""

QUERY_BURST = 100.0
"""Queries answered for one source IP in a burst."""

MAX_LIMITED_IPS = 4096
"""Source IPs the rate limiter remembers (least recently seen forgotten first)."""

_MAX_TRANSACTIONS = 4096


@dataclass(frozen=True, slots=True)
class DhtEvent:
    """Base of the events :meth:`DhtProtocol.next_event` returns."""


@dataclass(frozen=True, slots=True)
class QueryAnswered(DhtEvent):
    """A query sent with :meth:`DhtProtocol.query` was answered."""

    request: int
    response: Response


@dataclass(frozen=True, slots=True)
class QueryFailed(DhtEvent):
    """A query sent with :meth:`DhtProtocol.query` timed out or got an error message."""

    request: int
    error: ErrorMessage | None


@dataclass(frozen=True, slots=True)
class LookupDone(DhtEvent):
    """A lookup finished.

    Attributes:
        lookup: its id from :meth:`DhtProtocol.start_lookup`.
        nodes: the closest nodes that answered.
        peers: peers found (get_peers).
        rounds: the deepest hop among ``nodes``.
    """

    lookup: int
    nodes: tuple[NodeInfo, ...]
    peers: tuple[Address, ...]
    rounds: int


@dataclass(frozen=True, slots=True)
class PeerAnnounced(DhtEvent):
    """Another node announced a peer to us (stored in the peer store)."""

    info_hash: bytes
    peer: Address


@dataclass(slots=True)
class _Transaction:
    address: Address
    method: str
    deadline: float
    request: int | None
    lookup: int | None
    node: NodeId | None


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


@dataclass(slots=True)
class _LookupState:
    lookup: Lookup
    announce_port: int | None
    implied_port: bool


class DhtProtocol:
    """A DHT node for one address family (4 or 6), sans-IO.

    Args:
        own_id: our node id.
        now: the creation time.
        random_bytes: the source of transaction ids, token secrets and refresh targets.
        family: 4 (``nodes``) or 6 (``nodes6``, BEP 32).
        query_timeout: seconds before an unanswered query fails.
        version: our ``v`` value.
        refresh: whether stale buckets start refresh lookups by themselves.
    """

    def __init__(
        self,
        own_id: NodeId,
        now: float,
        random_bytes: Callable[[int], bytes],
        *,
        family: int = 4,
        query_timeout: float = DEFAULT_QUERY_TIMEOUT,
        version: bytes = VERSION,
        refresh: bool = True,
    ) -> None:
        self.own_id = own_id
        self.family = family
        self.table = RoutingTable(own_id, now)
        self.tokens = TokenManager(random_bytes, now)
        self.peers = PeerStore()
        self.sibling: DhtProtocol | None = None
        self.query_timeout = query_timeout
        self.version = version
        self.refresh = refresh
        self.dropped = 0
        self._random = random_bytes
        self._out: deque[tuple[bytes, Address]] = deque()
        self._events: deque[DhtEvent] = deque()
        self._tx: dict[bytes, _Transaction] = {}
        self._pinging: set[Address] = set()  # addresses with a ping of ours under way
        self._next_tid = int.from_bytes(random_bytes(2), "big")
        self._next_request = 0
        self._lookups: dict[int, _LookupState] = {}
        self._limits: OrderedDict[str, _Bucket] = OrderedDict()

    # --- the datagram interface ----------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Everything to write now, in order."""
        out = list(self._out)
        self._out.clear()
        return out

    def next_event(self) -> DhtEvent | None:
        """The next outcome, or ``None``."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float:
        """The earliest deadline: a query timeout, a bucket refresh or a token rotation."""
        deadlines = [t.deadline for t in self._tx.values()]
        deadlines.append(self.tokens.get_timer())
        if self.refresh:
            deadlines.append(self.table.get_timer())
        return min(deadlines)

    def handle_timer(self, now: float) -> None:
        """Fail expired queries, rotate secrets, refresh stale buckets, expire peers."""
        for tid, tx in list(self._tx.items()):
            if tx.deadline <= now:
                self._forget(tid)
                self._failed(tx, None, now)
        self.tokens.rotate_if_due(now)
        if self.refresh and self.table.get_timer() <= now:
            for target in self.table.buckets_to_refresh(now, self._random):
                self.start_lookup(target, LookupKind.FIND_NODE, now)
            self.peers.expire(now)

    def receive_datagram(self, data: bytes, address: Address, now: float) -> None:
        """Handle one datagram from ``address``."""
        try:
            message = decode_message(data)
        except KrpcDecodeError as exc:
            if exc.is_query and exc.transaction is not None and self._allow(address[0], now):
                self._send(ErrorMessage(exc.transaction, ErrorCode.PROTOCOL, exc.reason), address)
            else:
                self.dropped += 1
            return
        if isinstance(message, Query):
            if not self._allow(address[0], now):
                self.dropped += 1
                return
            self._answer(message, address, now)
        else:
            self._reply(message, address, now)

    # --- outgoing ---------------------------------------------------------------------------

    def _send(self, message: Message, address: Address) -> None:
        self._out.append((encode_message(message, version=self.version), address))

    def _want(self) -> tuple[bytes, ...]:
        return (b"n4", b"n6") if self.sibling is not None else ()

    def _query(
        self,
        address: Address,
        method: str,
        now: float,
        *,
        target: NodeId | None = None,
        info_hash: NodeId | None = None,
        port: int | None = None,
        token: bytes | None = None,
        implied_port: bool = False,
        request: int | None = None,
        lookup: int | None = None,
        node: NodeId | None = None,
    ) -> None:
        if len(self._tx) >= _MAX_TRANSACTIONS:
            # a full table (a flood of work): the query is not sent, so no node is charged
            # with a failure, and a lookup learns of it without being pumped again from here
            # (this may be inside its own _pump)
            if request is not None:
                self._events.append(QueryFailed(request, None))
            if lookup is not None and lookup in self._lookups:
                self._lookups[lookup].lookup.on_failure(address)
            return
        while True:
            self._next_tid = (self._next_tid + 1) & 0xFFFF
            tid = self._next_tid.to_bytes(2, "big")
            if tid not in self._tx:
                break
        want = self._want() if method in (Method.FIND_NODE, Method.GET_PEERS) else ()
        query = Query(tid, method, self.own_id, target, info_hash, port, token, implied_port, want)
        if method == Method.PING:
            self._pinging.add(address)
        self._tx[tid] = _Transaction(
            address, method, now + self.query_timeout, request, lookup, node
        )
        self._send(query, address)

    def query(
        self,
        address: Address,
        method: Method,
        now: float,
        *,
        target: NodeId | None = None,
        info_hash: NodeId | None = None,
        port: int | None = None,
        token: bytes | None = None,
        implied_port: bool = False,
    ) -> int:
        """Send one query to ``address``; its outcome is a :class:`QueryAnswered` or
        :class:`QueryFailed` event carrying the returned request id."""
        self._next_request += 1
        request = self._next_request
        self._query(
            address,
            method,
            now,
            target=target,
            info_hash=info_hash,
            port=port,
            token=token,
            implied_port=implied_port,
            request=request,
        )
        return request

    def start_lookup(
        self,
        target: NodeId,
        kind: LookupKind,
        now: float,
        *,
        seeds: list[NodeInfo] | None = None,
        announce_port: int | None = None,
        implied_port: bool = False,
    ) -> int:
        """Start an iterative lookup; its end is a :class:`LookupDone` event.

        Args:
            target: node id (find_node) or info hash (get_peers).
            kind: what to ask.
            now: the time.
            seeds: starting nodes (default: the table's closest, plenty of them).
            announce_port: after a get_peers lookup, announce this TCP port to the closest nodes.
            implied_port: ask them to use our UDP source port instead (BEP 5 ``implied_port``).
        """
        self._next_request += 1
        lookup_id = self._next_request
        start = seeds if seeds is not None else self.table.closest(target, 3 * self.table.k, now)
        lookup = Lookup(target, kind, start, own_id=self.own_id, k=self.table.k)
        if kind is LookupKind.GET_PEERS:  # peers announced to us count too
            for peer in self.peers.get(target, now):
                lookup.peers[peer] = None
        self._lookups[lookup_id] = _LookupState(lookup, announce_port, implied_port)
        self._pump(lookup_id, now)
        return lookup_id

    def _send_lookup_queries(
        self, lookup_id: int, target: NodeId, method: str, nodes: list[NodeInfo], now: float
    ) -> None:
        for node in nodes:
            if method == Method.FIND_NODE:
                self._query(
                    node.address, method, now, target=target, lookup=lookup_id, node=node.id
                )
            else:
                self._query(
                    node.address, method, now, info_hash=target, lookup=lookup_id, node=node.id
                )

    def _pump(self, lookup_id: int, now: float) -> None:
        state = self._lookups[lookup_id]
        lookup = state.lookup
        method = Method.FIND_NODE if lookup.kind is LookupKind.FIND_NODE else Method.GET_PEERS
        # (a query that cannot be sent, the transaction table being full, fails at once and
        # frees its slot: the next round takes the next candidates; each is queried once)
        while queries := lookup.next_queries():
            self._send_lookup_queries(lookup_id, lookup.target, method, queries, now)
        if lookup.done and lookup.in_flight == 0 and lookup_id in self._lookups:
            del self._lookups[lookup_id]
            closest = lookup.closest_responded()
            if state.announce_port is not None and lookup.kind is LookupKind.GET_PEERS:
                for c in closest:
                    if c.token is not None:
                        self._query(
                            c.info.address,
                            Method.ANNOUNCE_PEER,
                            now,
                            info_hash=lookup.target,
                            port=state.announce_port,
                            token=c.token,
                            implied_port=state.implied_port,
                            node=c.info.id,
                        )
            self._events.append(
                LookupDone(
                    lookup_id, tuple(c.info for c in closest), tuple(lookup.peers), lookup.rounds
                )
            )

    # --- incoming answers -----------------------------------------------------------------

    def _reply(self, message: Response | ErrorMessage, address: Address, now: float) -> None:
        tx = self._tx.get(message.t)
        if tx is None or tx.address != address:
            self.dropped += 1
            return
        self._forget(message.t)
        if isinstance(message, ErrorMessage):
            self._failed(tx, message, now)
            return
        if message.id == self.own_id:
            self._failed(tx, None, now)
            return
        for info in self.table.heard_from(NodeInfo(message.id, *address), now, response=True):
            self._ping_questionable(info, now)
        if tx.request is not None:
            self._events.append(QueryAnswered(tx.request, message))
        if tx.lookup is not None and tx.lookup in self._lookups:
            lookup = self._lookups[tx.lookup].lookup
            nodes = message.nodes if self.family == 4 else message.nodes6
            lookup.on_response(
                address, message.id, nodes, values=message.values, token=message.token
            )
            self._pump(tx.lookup, now)

    def _forget(self, tid: bytes) -> None:
        tx = self._tx.pop(tid)
        if tx.method == Method.PING:
            self._pinging.discard(tx.address)

    def _ping_questionable(self, info: NodeInfo, now: float) -> None:
        """Ping the table's candidate for eviction (BEP 5: the least recently seen questionable
        node of a full bucket) once: while a ping to it is under way, another is not sent,
        so a flood of newcomers cannot turn into a flood of pings."""
        if info.address not in self._pinging:
            self._query(info.address, Method.PING, now, node=info.id)

    def _failed(self, tx: _Transaction, error: ErrorMessage | None, now: float) -> None:
        if tx.node is not None:
            self.table.failed(tx.node, now)
        else:
            entry = self.table.find_address(tx.address)
            if entry is not None:
                self.table.failed(entry.info.id, now)
        if tx.request is not None:
            self._events.append(QueryFailed(tx.request, error))
        if tx.lookup is not None and tx.lookup in self._lookups:
            self._lookups[tx.lookup].lookup.on_failure(tx.address)
            self._pump(tx.lookup, now)

    # --- incoming queries -------------------------------------------------------------------

    def _allow(self, ip: str, now: float) -> bool:
        bucket = self._limits.get(ip)
        if bucket is None:
            bucket = self._limits[ip] = _Bucket(QUERY_BURST, now)
            while len(self._limits) > MAX_LIMITED_IPS:
                self._limits.popitem(last=False)
        else:
            self._limits.move_to_end(ip)
            bucket.tokens = min(QUERY_BURST, bucket.tokens + (now - bucket.stamp) * QUERY_RATE)
            bucket.stamp = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def _nodes_for(
        self, target: bytes, want: tuple[bytes, ...], now: float
    ) -> dict[str, tuple[NodeInfo, ...]]:
        families = {b"n4": 4, b"n6": 6}
        wanted = {families[w] for w in want if w in families} or {self.family}
        out: dict[str, tuple[NodeInfo, ...]] = {}
        for proto in (self, self.sibling):
            if proto is not None and proto.family in wanted:
                out["nodes" if proto.family == 4 else "nodes6"] = tuple(
                    proto.table.closest(target, now=now)
                )
        return out

    def _answer(self, query: Query, address: Address, now: float) -> None:
        if query.id == self.own_id:
            return
        try:
            ipaddress.ip_address(address[0])
        except ValueError:
            return
        for info in self.table.heard_from(NodeInfo(query.id, *address), now, response=False):
            self._ping_questionable(info, now)
        t = query.t
        if query.method == Method.PING:
            self._send(Response(t, self.own_id), address)
        elif query.method == Method.FIND_NODE and query.target is not None:
            found = self._nodes_for(query.target, query.want, now)
            self._send(
                Response(
                    t, self.own_id, found.get("nodes", ()), found.get("nodes6", ()), has_nodes=True
                ),
                address,
            )
        elif query.method == Method.GET_PEERS and query.info_hash is not None:
            token = self.tokens.token_for(address[0], now)
            values = tuple(
                p
                for p in self.peers.get(query.info_hash, now)
                if (":" in p[0]) == (self.family == 6)
            )
            if values:
                self._send(Response(t, self.own_id, values=values, token=token), address)
            else:
                found = self._nodes_for(query.info_hash, query.want, now)
                self._send(
                    Response(
                        t,
                        self.own_id,
                        found.get("nodes", ()),
                        found.get("nodes6", ()),
                        token=token,
                        has_nodes=True,
                    ),
                    address,
                )
        elif query.method == Method.ANNOUNCE_PEER and query.info_hash is not None:
            if query.token is None or not self.tokens.check(query.token, address[0], now):
                self._send(ErrorMessage(t, ErrorCode.PROTOCOL, "Invalid token"), address)
                return
            port = address[1] if query.implied_port else query.port
            if port is None or not 0 < port <= 0xFFFF:
                self._send(ErrorMessage(t, ErrorCode.PROTOCOL, "Invalid port"), address)
                return
            self.peers.add(query.info_hash, (address[0], port), now)
            self._events.append(PeerAnnounced(query.info_hash, (address[0], port)))
            self._send(Response(t, self.own_id), address)
        else:
            self._send(ErrorMessage(t, ErrorCode.METHOD_UNKNOWN, "Method Unknown"), address)
