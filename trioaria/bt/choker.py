"""Choking: which peers we upload to, decided every 10 seconds (pure, time and chance injected).

Theory of operation
-------------------
BEP 3 "choking": "unchoke the four peers which have the best upload rate and are interested";
"reciprocation and number of uploads capping is managed by unchoking ... once every ten seconds";
"at any one time there is a single peer which is unchoked regardless of its upload rate (if
interested, it counts as one of the four allowed downloaders). Which peer is optimistically
unchoked rotates every 30 seconds."  The slot numbers and tie-breaks follow aria2
(``BtLeecherStateChoke``, ``BtSeederStateChoke``), whose users expect them:

* **Leeching** (tit-for-tat): snubbed peers (no block for 60 s) are never unchoked.  Every third
  round (the first included) one choked, interested peer is drawn at random as the *optimistic*
  unchoke and keeps that slot for 30 s.  Every round, the three interested peers that sent us a
  block in the last 30 s with the best download rate (from them to us) are unchoked; if the
  optimistic peer made it into those three on merit, another optimistic peer is drawn.
* **Seeding** (we only upload): only interested peers count.  They are ranked by: an upload in
  progress first, then recently unchoked (in the last 20 s, newest first, so a peer gets time to
  ramp up), then upload rate.  Three regular slots, four in the third round; in the other two
  rounds one more peer is drawn at random from the rest as the optimistic unchoke.

:class:`Choker` only decides: :meth:`Choker.run` takes a snapshot of every peer
(:class:`ChokePeer`) and returns the set to be unchoked; the driver sends ``choke``/``unchoke``
for the differences.  ``now`` is a parameter and the random draw is the ``choose`` callable, so
tests are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

__all__ = ["ChokePeer", "ChokeResult", "Choker"]

ROUND_INTERVAL = 10.0
"""Seconds between choke rounds (BEP 3)."""

ROUNDS_PER_OPTIMISTIC = 3
"""The optimistic unchoke rotates every third round: 30 seconds."""

REGULAR_SLOTS = 3
SNUB_BLOCK_WINDOW = 30.0
"""A leecher's regular unchoke needs a block from the peer within this many seconds (aria2)."""

RECENT_UNCHOKE = 20.0
"""A seeder keeps favouring a peer it unchoked this recently (aria2's TIME_FRAME)."""


@dataclass(frozen=True, slots=True)
class ChokePeer:
    """One peer's numbers at the start of a round.

    Attributes:
        key: anything hashable that names the peer for the caller.
        interested: the peer is interested in our pieces.
        download_rate: bytes/s we receive from it.
        upload_rate: bytes/s we send to it.
        snubbed: it sent no block for 60 s while we had requests out.
        last_block: when it last sent us a block (``None``: never).
        last_unchoked: when we last unchoked it (``None``: never).
        uploading: we have requests of it queued or in flight.
        am_choking: we choke it now (a planned optimistic unchoke is drawn among these).
    """

    key: Hashable
    interested: bool
    download_rate: float = 0.0
    upload_rate: float = 0.0
    snubbed: bool = False
    last_block: float | None = None
    last_unchoked: float | None = None
    uploading: bool = False
    am_choking: bool = True


@dataclass(frozen=True, slots=True)
class ChokeResult:
    """The outcome of a round.

    Attributes:
        unchoked: keys of the peers to keep or make unchoked; every other peer is choked.
        optimistic: the optimistically unchoked peer's key, if any.
    """

    unchoked: frozenset[Hashable]
    optimistic: Hashable | None


class Choker:
    """The choke algorithm for one download (see the module documentation).

    Args:
        choose: picks one element of a non-empty sequence at random (``random.choice``).
        regular_slots: regular unchoke slots (aria2: 3).
    """

    def __init__(
        self,
        choose: Callable[[Sequence[ChokePeer]], ChokePeer],
        *,
        regular_slots: int = REGULAR_SLOTS,
    ) -> None:
        self._choose = choose
        self.regular_slots = regular_slots
        self._round = 0
        self._next: float | None = None
        self._optimistic: Hashable | None = None

    def get_timer(self) -> float | None:
        """When the next round is due (``None`` before the first :meth:`run`: run one now)."""
        return self._next

    def run(self, peers: Sequence[ChokePeer], now: float, *, seeding: bool) -> ChokeResult:
        """Run one choke round.

        Args:
            peers: every connected peer.
            now: the current time.
            seeding: we have every wanted piece (seeder rules), else leecher rules.

        Returns:
            Which peers are unchoked after this round.
        """
        result = self._seed(peers, now) if seeding else self._leech(peers, now)
        self._optimistic = result.optimistic
        self._round = (self._round + 1) % ROUNDS_PER_OPTIMISTIC
        self._next = now + ROUND_INTERVAL
        return result

    def _draw(self, candidates: list[ChokePeer]) -> Hashable | None:
        return self._choose(candidates).key if candidates else None

    def _leech(self, peers: Sequence[ChokePeer], now: float) -> ChokeResult:
        usable = [p for p in peers if not p.snubbed]
        keys = {p.key for p in usable}
        optimistic = self._optimistic if self._optimistic in keys else None
        if self._round == 0 or optimistic is None:
            optimistic = self._draw([p for p in usable if p.interested and p.am_choking])
        regular = [
            p
            for p in usable
            if p.interested and p.last_block is not None and now - p.last_block < SNUB_BLOCK_WINDOW
        ]
        regular.sort(key=lambda p: p.download_rate, reverse=True)
        chosen = {p.key for p in regular[: self.regular_slots]}
        if optimistic in chosen:
            # It earned a regular slot; give the optimistic slot to someone else.
            optimistic = self._draw(
                [p for p in usable if p.interested and p.am_choking and p.key not in chosen]
            )
        if optimistic is not None:
            chosen.add(optimistic)
        return ChokeResult(frozenset(chosen), optimistic)

    def _seed(self, peers: Sequence[ChokePeer], now: float) -> ChokeResult:
        interested = [p for p in peers if p.interested]

        def rank(p: ChokePeer) -> tuple[int, int, float, float]:
            recent = p.last_unchoked is not None and now - p.last_unchoked < RECENT_UNCHOKE
            return (
                0 if p.uploading else 1,
                0 if recent else 1,
                -(p.last_unchoked or 0.0) if recent else 0.0,
                -p.upload_rate,
            )

        interested.sort(key=rank)
        slots = self.regular_slots + (1 if self._round == ROUNDS_PER_OPTIMISTIC - 1 else 0)
        chosen = {p.key for p in interested[:slots]}
        optimistic = None
        if self._round < ROUNDS_PER_OPTIMISTIC - 1:
            optimistic = self._draw(interested[slots:])
            if optimistic is not None:
                chosen.add(optimistic)
        return ChokeResult(frozenset(chosen), optimistic)
