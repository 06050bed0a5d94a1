"""The iterative lookup of BEP 5 as a state machine: find_node and get_peers (pure).

Theory of operation
-------------------
BEP 5 "Routing Table"/"get_peers": "To find peers for a torrent, the node ... queries the nodes
it knows about that are closest to the infohash.  If a queried node has peers ... they are
returned; otherwise the queried node returns the contact information for the nodes in its
routing table closest to the infohash.  The original node iteratively queries nodes that are
closer to the target infohash until it cannot find any closer nodes.  After the search is
exhausted, the client then inserts the peer contact information for itself onto the responding
nodes with IDs closest to the infohash."

A :class:`Lookup` keeps the candidates sorted by XOR distance to the target.  :meth:`Lookup.next_queries`
returns the nodes to query now, at most ``alpha`` (3, Kademlia's alpha) in flight, always the closest
not yet asked among the ``k`` closest live candidates.  The driver reports each answer
(:meth:`Lookup.on_response`) or failure (:meth:`Lookup.on_failure`).  The lookup is done when
the ``k`` closest candidates that did not fail have all answered (nothing closer is left to ask),
or when nothing is in flight and nothing is left to ask.  Then :meth:`Lookup.closest_responded`
gives the nodes to announce to, each with the token it handed us.

Each candidate remembers its *hop*: 1 for the seeds, one more than the node that told us about
it.  :attr:`Lookup.rounds` is the deepest hop among the final closest nodes, the measure the
simulation tests bound.  The number of candidates is capped so a hostile answer cannot grow it
without bound.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from .node_id import Address, NodeId, NodeInfo, distance

__all__ = ["ALPHA", "Candidate", "CandidateState", "Lookup", "LookupKind"]

ALPHA = 3
"""Queries in flight per lookup."""

_MAX_CANDIDATES = 256


class LookupKind(enum.Enum):
    """What the lookup asks: nodes, or peers (and tokens) for an info hash."""

    FIND_NODE = "find_node"
    GET_PEERS = "get_peers"


class CandidateState(enum.Enum):
    """Where a candidate node is in the lookup."""

    NEW = "new"
    IN_FLIGHT = "in flight"
    RESPONDED = "responded"
    FAILED = "failed"


@dataclass(slots=True)
class Candidate:
    """A node the lookup knows of."""

    info: NodeInfo
    distance: int
    hop: int
    state: CandidateState = CandidateState.NEW
    token: bytes | None = None


class Lookup:
    """One iterative lookup towards ``target``.

    Args:
        target: the node id or info hash sought.
        kind: find_node or get_peers.
        seeds: the starting nodes (from the routing table, or entry points).
        own_id: our id (never queried).
        k: how many closest nodes the lookup settles on.
        alpha: queries in flight.
    """

    def __init__(
        self,
        target: NodeId,
        kind: LookupKind,
        seeds: Iterable[NodeInfo],
        *,
        own_id: NodeId | None = None,
        k: int = 8,
        alpha: int = ALPHA,
    ) -> None:
        self.target = target
        self.kind = kind
        self.k = k
        self.alpha = alpha
        self.own_id = own_id
        self._candidates: dict[Address, Candidate] = {}
        self._ids: set[bytes] = set()
        self.peers: dict[Address, None] = {}
        self.queries_sent = 0
        for seed in seeds:
            self._add(seed, 1)

    def _add(self, info: NodeInfo, hop: int) -> None:
        if info.address in self._candidates or info.id in self._ids or info.id == self.own_id:
            return
        if len(self._candidates) >= _MAX_CANDIDATES:
            worst = max(self._candidates.values(), key=lambda c: c.distance)
            if worst.state is not CandidateState.NEW or worst.distance <= distance(
                info.id, self.target
            ):
                return
            del self._candidates[worst.info.address]
            self._ids.discard(worst.info.id)
        self._candidates[info.address] = Candidate(info, distance(info.id, self.target), hop)
        self._ids.add(info.id)

    def _ranked(self) -> list[Candidate]:
        live = [c for c in self._candidates.values() if c.state is not CandidateState.FAILED]
        live.sort(key=lambda c: c.distance)
        return live[: self.k]

    @property
    def in_flight(self) -> int:
        """Queries sent and not yet answered or failed."""
        return sum(1 for c in self._candidates.values() if c.state is CandidateState.IN_FLIGHT)

    @property
    def done(self) -> bool:
        """Nothing closer is left to ask."""
        ranked = self._ranked()
        if all(c.state is CandidateState.RESPONDED for c in ranked):
            return True
        return self.in_flight == 0 and not any(c.state is CandidateState.NEW for c in ranked)

    def next_queries(self) -> list[NodeInfo]:
        """Nodes to query now (marked in flight); empty when alpha are in flight or nothing is left."""
        if self.done:
            return []
        out: list[NodeInfo] = []
        budget = self.alpha - self.in_flight
        for c in self._ranked():
            if budget <= 0:
                break
            if c.state is CandidateState.NEW:
                c.state = CandidateState.IN_FLIGHT
                out.append(c.info)
                budget -= 1
        self.queries_sent += len(out)
        return out

    def on_response(
        self,
        address: Address,
        node: NodeId,
        nodes: Iterable[NodeInfo],
        *,
        values: Iterable[Address] = (),
        token: bytes | None = None,
    ) -> None:
        """``address`` answered: learn the nodes and peers it returned."""
        c = self._candidates.get(address)
        if c is None or c.state is not CandidateState.IN_FLIGHT:
            return
        if c.info.id != node:  # the seed's id was a guess (an entry point): keep the real one
            self._ids.discard(c.info.id)
            c.info = NodeInfo(node, c.info.ip, c.info.port)
            c.distance = distance(node, self.target)
            self._ids.add(node)
        c.state = CandidateState.RESPONDED
        c.token = token
        for peer in values:
            self.peers[peer] = None
        for info in nodes:
            self._add(info, c.hop + 1)

    def on_failure(self, address: Address) -> None:
        """``address`` timed out or answered with an error."""
        c = self._candidates.get(address)
        if c is not None and c.state is CandidateState.IN_FLIGHT:
            c.state = CandidateState.FAILED

    def closest_responded(self) -> list[Candidate]:
        """The ``k`` closest nodes that answered (with their tokens, for announce_peer)."""
        done = [c for c in self._candidates.values() if c.state is CandidateState.RESPONDED]
        done.sort(key=lambda c: c.distance)
        return done[: self.k]

    @property
    def rounds(self) -> int:
        """The deepest hop among the closest nodes that answered."""
        return max((c.hop for c in self.closest_responded()), default=0)
