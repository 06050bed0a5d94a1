"""The DHT routing table: k-buckets, splitting, node liveness and bucket refresh (pure).

Theory of operation
-------------------
BEP 5 "Routing Table": the table covers the whole 160-bit id space with buckets; "each bucket
can only hold K nodes, currently eight, before becoming 'full.'"  "When a bucket is full of
known good nodes, no more nodes may be added unless our own node ID falls within the range of
the bucket.  In that case, the bucket is replaced by two new buckets each with half the range
of the old bucket."  Buckets here are kept as a list ordered by prefix: bucket ``i`` (for
``i < len - 1``) holds the nodes sharing exactly ``i`` leading bits with our id, and the last
bucket holds everything closer; only that last one ever splits.

Liveness (BEP 5): "A good node is a node has responded to one of our queries within the last
15 minutes.  A node is also good if it has ever responded to one of our queries and has sent us
a query within the last 15 minutes.  After 15 minutes of inactivity, a node becomes
questionable.  Nodes become bad when they fail to respond to multiple queries in a row."  Here a
node that failed :data:`MAX_FAILURES` queries in a row is bad.  "When the bucket is full of good
nodes, the new node is simply discarded.  If any nodes in the bucket are known to have become
bad, then one is replaced by the new node.  If there are any questionable nodes in the bucket
have not been seen in the last 15 minutes, the least recently seen node is pinged."  The table
never sends anything: :meth:`RoutingTable.heard_from` *returns* the nodes to ping, and the
newcomer waits in the bucket's replacement cache (aria2's ``cachedNodes``), from which a
bad node's place is filled.

Refresh: "Buckets that have not been changed in 15 minutes should be 'refreshed.'  This is done
by picking a random ID in the range of the bucket and performing a find_nodes search on it."
:meth:`RoutingTable.buckets_to_refresh` returns those ids; :meth:`get_timer` says when the next
is due.  Time is always a parameter.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from .node_id import (
    ID_LENGTH,
    Address,
    NodeId,
    NodeInfo,
    bucket_index,
    distance,
    random_id_in_bucket,
)

__all__ = [
    "GOOD_FOR",
    "MAX_FAILURES",
    "REFRESH_INTERVAL",
    "K",
    "Liveness",
    "RoutingTable",
    "TableNode",
]

K = 8
"""BEP 5: nodes per bucket."""

GOOD_FOR = 15 * 60.0
"""Seconds a node stays good after it last answered (or queried us, having answered once)."""

REFRESH_INTERVAL = 15 * 60.0
"""A bucket untouched this long is refreshed."""

MAX_FAILURES = 2
"""Queries a node may fail in a row before it is bad."""

_MAX_BUCKETS = ID_LENGTH * 8


class Liveness(enum.Enum):
    """BEP 5 node states."""

    GOOD = "good"
    QUESTIONABLE = "questionable"
    BAD = "bad"


@dataclass(slots=True)
class TableNode:
    """A node in the table and what we know of its liveness."""

    info: NodeInfo
    last_response: float | None = None
    last_query: float | None = None
    failures: int = 0
    added: float = 0.0

    def liveness(self, now: float) -> Liveness:
        """The BEP 5 state at ``now``."""
        if self.failures >= MAX_FAILURES:
            return Liveness.BAD
        if self.last_response is not None:
            if now - self.last_response < GOOD_FOR:
                return Liveness.GOOD
            if self.last_query is not None and now - self.last_query < GOOD_FOR:
                return Liveness.GOOD
        return Liveness.QUESTIONABLE

    def last_seen(self) -> float:
        """The latest moment we heard from the node (or when it was added)."""
        return max(self.last_response or self.added, self.last_query or self.added)


@dataclass(slots=True)
class _Bucket:
    nodes: list[TableNode]
    cache: list[NodeInfo]
    changed: float


class RoutingTable:
    """A BEP 5 routing table for one address family.

    Args:
        own_id: our node id.
        now: the creation time (buckets count as changed then).
        k: bucket size.
    """

    def __init__(self, own_id: NodeId, now: float, *, k: int = K) -> None:
        self.own_id = own_id
        self.k = k
        self._buckets: list[_Bucket] = [_Bucket([], [], now)]

    # --- lookup ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(len(b.nodes) for b in self._buckets)

    @property
    def bucket_count(self) -> int:
        """How many buckets the table has (1 + the number of splits)."""
        return len(self._buckets)

    def _index(self, node: bytes) -> int:
        return min(bucket_index(self.own_id, node), len(self._buckets) - 1)

    def _find(self, node: NodeInfo | NodeId) -> tuple[_Bucket, TableNode | None]:
        nid = node.id if isinstance(node, NodeInfo) else node
        bucket = self._buckets[self._index(nid)]
        for entry in bucket.nodes:
            if entry.info.id == nid:
                return bucket, entry
        return bucket, None

    def get(self, nid: NodeId) -> TableNode | None:
        """The entry for ``nid``, if it is in the table."""
        return self._find(nid)[1]

    def nodes(self) -> list[TableNode]:
        """Every entry, nearest bucket last."""
        return [n for b in self._buckets for n in b.nodes]

    def closest(
        self, target: bytes, count: int | None = None, now: float | None = None
    ) -> list[NodeInfo]:
        """The ``count`` (default k) known nodes nearest ``target``, bad ones left out."""
        count = self.k if count is None else count
        entries = [
            n
            for b in self._buckets
            for n in b.nodes
            if now is None or n.liveness(now) is not Liveness.BAD
        ]
        entries.sort(key=lambda n: distance(n.info.id, target))
        return [n.info for n in entries[:count]]

    # --- updates -----------------------------------------------------------------------------

    def heard_from(self, node: NodeInfo, now: float, *, response: bool) -> list[NodeInfo]:
        """Record a message from ``node`` (a ``response`` to our query, or a query to us).

        Returns:
            The questionable nodes the caller should ping (the bucket is full); their answers or
            failures decide whether ``node`` (kept in the replacement cache) gets in.
        """
        if node.id == self.own_id or node.port == 0:
            return []
        bucket, entry = self._find(node)
        if entry is not None:
            if entry.info.address != node.address:
                # Same id from another address: keep the one we know (BEP 42 spirit); ignore.
                return []
            if response:
                entry.last_response = now
                entry.failures = 0
            else:
                entry.last_query = now
            bucket.changed = now
            return []
        for b in self._buckets:  # one address, one node: drop a stale id for this address
            for other in b.nodes:
                if other.info.address == node.address:
                    return []
        return self._insert(node, now, response)

    def _insert(self, node: NodeInfo, now: float, response: bool) -> list[NodeInfo]:
        while True:
            index = self._index(node.id)
            bucket = self._buckets[index]
            fresh = TableNode(node, now if response else None, None if response else now, 0, now)
            if len(bucket.nodes) < self.k:
                bucket.nodes.append(fresh)
                bucket.changed = now
                return []
            for i, old in enumerate(bucket.nodes):
                if old.liveness(now) is Liveness.BAD:
                    bucket.nodes[i] = fresh
                    bucket.changed = now
                    return []
            if index == len(self._buckets) - 1 and len(self._buckets) < _MAX_BUCKETS:
                self._split()
                continue
            if node not in bucket.cache:
                bucket.cache.append(node)
                del bucket.cache[: -self.k]
            stale = [n for n in bucket.nodes if n.liveness(now) is Liveness.QUESTIONABLE]
            stale.sort(key=TableNode.last_seen)
            return [n.info for n in stale[:1]]

    def _split(self) -> None:
        last = self._buckets.pop()
        depth = len(self._buckets)
        far = _Bucket([], [], last.changed)
        near = _Bucket([], [], last.changed)
        for entry in last.nodes:
            (far if bucket_index(self.own_id, entry.info.id) == depth else near).nodes.append(entry)
        for info in last.cache:
            (far if bucket_index(self.own_id, info.id) == depth else near).cache.append(info)
        self._buckets.extend([far, near])

    def failed(self, nid: NodeId, now: float) -> None:
        """A query to ``nid`` timed out (or was answered with an error)."""
        bucket, entry = self._find(nid)
        if entry is None:
            return
        entry.failures += 1
        if entry.liveness(now) is Liveness.BAD and bucket.cache:
            bucket.nodes.remove(entry)
            bucket.nodes.append(TableNode(bucket.cache.pop(), None, None, 0, now))
            bucket.changed = now

    def remove(self, nid: NodeId) -> None:
        """Forget ``nid``."""
        bucket, entry = self._find(nid)
        if entry is not None:
            bucket.nodes.remove(entry)

    def find_address(self, address: Address) -> TableNode | None:
        """The entry with this UDP address, if any."""
        for b in self._buckets:
            for n in b.nodes:
                if n.info.address == address:
                    return n
        return None

    # --- refresh -------------------------------------------------------------------------

    def buckets_to_refresh(self, now: float, random_bytes: Callable[[int], bytes]) -> list[NodeId]:
        """Random target ids for every bucket unchanged for :data:`REFRESH_INTERVAL`.

        The buckets count as changed now (the caller starts a find_node lookup for each id).
        """
        targets: list[NodeId] = []
        for depth, bucket in enumerate(self._buckets):
            if now - bucket.changed >= REFRESH_INTERVAL:
                prefix, bits = self.own_id, depth
                if depth < len(self._buckets) - 1:
                    # bucket `depth` shares exactly `depth` bits: the next bit differs from ours
                    flipped = int.from_bytes(self.own_id, "big") ^ (
                        1 << (ID_LENGTH * 8 - 1 - depth)
                    )
                    prefix, bits = NodeId(flipped.to_bytes(ID_LENGTH, "big")), depth + 1
                target = random_id_in_bucket(prefix, bits, random_bytes(ID_LENGTH))
                targets.append(target)
                bucket.changed = now
        return targets

    def get_timer(self) -> float:
        """When the next bucket becomes due for a refresh."""
        return min(b.changed for b in self._buckets) + REFRESH_INTERVAL
