"""DhtNode: the trio driver of one DHT node (one UDP socket, IPv4 or IPv6).

Theory of operation
-------------------
All protocol decisions live in :class:`~trioaria.dht.protocol.DhtProtocol`; this module only
moves datagrams and time (docs/design.md: drivers are thin).  :meth:`DhtNode.run` binds the socket,
reports the port through ``task_status.started`` (so callers write
``port = await nursery.start(node.run)``) and then loops: wait for a datagram until the core's
next deadline, hand it to the core (or call ``handle_timer``), write what the core wants sent,
and wake the tasks waiting for the events the core reported.  The deadline is one cancel scope
whose ``deadline`` is moved whenever a new query or lookup changes ``get_timer()``.

The awaitable API (:meth:`ping`, :meth:`find_node`, :meth:`get_peers_from`, :meth:`lookup`,
:meth:`get_peers`, :meth:`announce`, :meth:`bootstrap`) starts work in the core and waits on a
``trio.Event`` for its outcome.  A query that the core reports failed raises
:class:`DhtQueryError`.  Timeouts are the core's ``query_timeout`` (``--dht-message-timeout``);
callers wanting a shorter bound use a cancel scope.

UDP trackers can share the socket, as in aria2: :meth:`DhtNode.send_foreign` sends their
requests and :attr:`DhtNode.foreign` receives every datagram that is not a bencoded dictionary
(BEP 15 packets start with a 32-bit action, never with ``d``).

BEP 32: a node bound to an IPv6 address speaks ``nodes6``; two nodes (one per family, the same
id and port) can be linked with :meth:`DhtNode.link` so each answers ``want`` for both.
:meth:`save_state` / :meth:`load_state` convert the table to and from
:class:`~trioaria.dht.persist.DhtState` (aria2's ``dht.dat``).
"""

from __future__ import annotations

import collections
import math
import secrets
import socket
from collections.abc import Callable, Iterable

import trio

from ..base.errors import NetworkError
from .krpc import ErrorMessage, Method, Response
from .lookup import LookupKind
from .node_id import Address, NodeId, NodeInfo
from .persist import DhtState
from .protocol import (
    DEFAULT_QUERY_TIMEOUT,
    DhtEvent,
    DhtProtocol,
    LookupDone,
    PeerAnnounced,
    QueryAnswered,
    QueryFailed,
)
from .routing import Liveness

__all__ = ["DhtNode", "DhtQueryError"]

_RECV_SIZE = 65536
MAX_ANNOUNCED = 1024  # announces to us remembered (for tests and diagnostics)


class DhtQueryError(NetworkError):
    """A DHT query timed out or was answered with a KRPC error.

    Attributes:
        error: the KRPC error message, or None for a timeout.
    """

    def __init__(self, address: Address, method: str, error: ErrorMessage | None) -> None:
        what = f"error {error.code} {error.message!r}" if error is not None else "no answer"
        super().__init__(f"DHT {method} to {address[0]}:{address[1]}: {what}")
        self.error = error


class _Waiter:
    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.result: DhtEvent | None = None


class DhtNode:
    """One DHT node on one UDP socket.

    Args:
        host: the address to bind (``"127.0.0.1"``, ``"::1"``, ``"0.0.0.0"``, ``"::"``).
        port: the UDP port (0: the OS picks).
        node_id: our id (default: random, or the state's).
        state: a loaded ``dht.dat``: its id and nodes seed the table.
        query_timeout: seconds before an unanswered query fails.
    """

    def __init__(
        self,
        host: str = "0.0.0.0",
        port: int = 0,
        *,
        node_id: NodeId | None = None,
        state: DhtState | None = None,
        query_timeout: float = DEFAULT_QUERY_TIMEOUT,
    ) -> None:
        self.host = host
        self.family = 6 if ":" in host else 4
        own = node_id or (state.local_id if state is not None else NodeId(secrets.token_bytes(20)))
        self.protocol = DhtProtocol(
            own,
            trio.current_time(),
            secrets.token_bytes,
            family=self.family,
            query_timeout=query_timeout,
        )
        self._requested_port = port
        self._saved = list(state.nodes) if state is not None else []
        self._sock: trio.socket.SocketType | None = None
        self._waiters: dict[int, _Waiter] = {}
        self._scope: trio.CancelScope | None = None
        #: the last announces other nodes made to us (the peer store keeps the peers)
        self.announced: collections.deque[PeerAnnounced] = collections.deque(maxlen=MAX_ANNOUNCED)
        self.port = 0
        #: receives datagrams that are not KRPC (not a bencoded dictionary): UDP tracker
        #: answers when trackers share this socket (BEP 15 packets start with an action int)
        self.foreign: Callable[[bytes, Address], None] | None = None

    @property
    def node_id(self) -> NodeId:
        """Our id."""
        return self.protocol.own_id

    def link(self, other: DhtNode) -> None:
        """Pair an IPv4 node with an IPv6 one (BEP 32 ``want``)."""
        self.protocol.sibling = other.protocol
        other.protocol.sibling = self.protocol

    # --- the loop ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; ``task_status.started(port)`` once the socket is bound."""
        family = socket.AF_INET6 if self.family == 6 else socket.AF_INET
        sock = trio.socket.socket(family, socket.SOCK_DGRAM)
        with sock:
            if self.family == 6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            await sock.bind((self.host, self._requested_port))
            self._sock = sock
            self.port = sock.getsockname()[1]
            task_status.started(self.port)
            if self._saved:
                now = trio.current_time()
                for info in self._saved:  # as aria2: ping what the file remembers
                    if info.family == self.family:
                        self.protocol.query(info.address, Method.PING, now)
                await self._flush()
            try:
                await self._loop(sock)
            finally:
                self._sock = None
                for waiter in self._waiters.values():
                    waiter.event.set()

    async def _loop(self, sock: trio.socket.SocketType) -> None:
        while True:
            with trio.CancelScope(deadline=self._deadline()) as scope:
                self._scope = scope
                try:
                    data, address = await sock.recvfrom(_RECV_SIZE)
                except OSError:  # ICMP port unreachable surfaces here on Linux: ignore
                    continue
                if self.foreign is not None and data[:1] != b"d":
                    self.foreign(data, (address[0], address[1]))
                    continue
                self.protocol.receive_datagram(data, (address[0], address[1]), trio.current_time())
            self._scope = None
            if scope.cancelled_caught:
                self.protocol.handle_timer(trio.current_time())
            await self._flush()

    def _deadline(self) -> float:
        timer = self.protocol.get_timer()
        return timer if math.isfinite(timer) else math.inf

    def _kick(self) -> None:
        if self._scope is not None:
            self._scope.deadline = self._deadline()

    async def _flush(self) -> None:
        for data, address in self.protocol.datagrams_to_send():
            if self._sock is None:
                break
            try:
                await self._sock.sendto(data, address)
            except OSError:
                pass  # unreachable nodes time out like silent ones
        while (event := self.protocol.next_event()) is not None:
            if isinstance(event, PeerAnnounced):
                self.announced.append(event)
                continue
            request = event.request if isinstance(event, QueryAnswered | QueryFailed) else None
            if isinstance(event, LookupDone):
                request = event.lookup
            waiter = self._waiters.pop(request, None) if request is not None else None
            if waiter is not None:
                waiter.result = event
                waiter.event.set()
        self._kick()

    async def send_foreign(self, data: bytes, address: Address) -> None:
        """Send a datagram that is not KRPC (a UDP tracker request) from this node's socket.

        Raises:
            OSError: the send failed (no route, the node is not running).
        """
        if self._sock is None:
            raise OSError("the DHT socket is closed")
        await self._sock.sendto(data, address)

    async def _wait(self, request: int) -> DhtEvent:
        if self._sock is None:
            raise RuntimeError("DhtNode.run is not running")
        waiter = self._waiters[request] = _Waiter()
        await self._flush()
        try:
            await waiter.event.wait()
        finally:
            self._waiters.pop(request, None)
        if waiter.result is None:
            raise RuntimeError("DhtNode stopped")
        return waiter.result

    # --- the API ------------------------------------------------------------------------------

    async def _query(self, address: Address, method: Method, **kw: object) -> Response:
        request = self.protocol.query(address, method, trio.current_time(), **kw)  # type: ignore[arg-type]
        event = await self._wait(request)
        if isinstance(event, QueryAnswered):
            return event.response
        assert isinstance(event, QueryFailed)
        raise DhtQueryError(address, method, event.error)

    async def ping(self, address: Address) -> NodeId:
        """Ping ``address``; returns its node id."""
        return (await self._query(address, Method.PING)).id

    async def find_node(self, address: Address, target: NodeId) -> Response:
        """One find_node query."""
        return await self._query(address, Method.FIND_NODE, target=target)

    async def get_peers_from(self, address: Address, info_hash: NodeId) -> Response:
        """One get_peers query."""
        return await self._query(address, Method.GET_PEERS, info_hash=info_hash)

    async def announce_to(
        self, address: Address, info_hash: NodeId, port: int, token: bytes
    ) -> Response:
        """One announce_peer query."""
        return await self._query(
            address, Method.ANNOUNCE_PEER, info_hash=info_hash, port=port, token=token
        )

    async def _lookup(
        self,
        target: NodeId,
        kind: LookupKind,
        seeds: list[NodeInfo] | None,
        announce_port: int | None,
    ) -> LookupDone:
        lookup = self.protocol.start_lookup(
            target, kind, trio.current_time(), seeds=seeds, announce_port=announce_port
        )
        event = await self._wait(lookup)
        assert isinstance(event, LookupDone)
        return event

    async def lookup(self, target: NodeId, seeds: list[NodeInfo] | None = None) -> list[NodeInfo]:
        """Iterative find_node; returns the closest nodes that answered."""
        return list((await self._lookup(target, LookupKind.FIND_NODE, seeds, None)).nodes)

    async def get_peers(self, info_hash: NodeId) -> list[Address]:
        """Iterative get_peers; returns the peers found."""
        return list((await self._lookup(info_hash, LookupKind.GET_PEERS, None, None)).peers)

    async def announce(self, info_hash: NodeId, port: int) -> list[Address]:
        """get_peers, then announce_peer ``port`` to the closest nodes; returns the peers found."""
        return list((await self._lookup(info_hash, LookupKind.GET_PEERS, None, port)).peers)

    async def bootstrap(self, entry_points: Iterable[Address]) -> int:
        """Ping the entry points, then look up our own id (BEP 5 bootstrap).

        Returns:
            How many nodes the table holds afterwards.
        """
        seeds: list[NodeInfo] = []
        for address in entry_points:
            try:
                seeds.append(NodeInfo(await self.ping(address), *address))
            except DhtQueryError:
                continue
        if seeds:
            await self.lookup(self.node_id, seeds)
        return len(self.protocol.table)

    def save_state(self, saved_at: int = 0) -> DhtState:
        """The table as a :class:`DhtState` (good and questionable nodes, not bad ones)."""
        now = trio.current_time()
        nodes = tuple(
            n.info for n in self.protocol.table.nodes() if n.liveness(now) is not Liveness.BAD
        )
        return DhtState(self.node_id, nodes, saved_at)
