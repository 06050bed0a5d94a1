"""Which mirror the next connection uses: ``--uri-selector=inorder|feedback|adaptive``.

Pure policy (no I/O, no clock: ``now`` is a parameter, randomness an injected ``random.Random``).
The download group (:mod:`trioaria.engine.group`) asks :meth:`UriSelector.select` whenever a
connection needs a source: when it starts, after every finished segment and when its source
was dropped.  It passes only *free* candidates (not dropped, their host below ``-x``) as
:class:`Candidate` records; the connection asking is not counted in ``connections``.  HTTP,
FTP and SFTP mirrors of one file are candidates alike: they share one picker and disk layer.

The three policies follow aria2 (``src/InorderURISelector.cc``, ``src/FeedbackURISelector.cc``,
``src/AdaptiveURISelector.cc`` and the manual's ``-s``/``--uri-selector`` text) in our own terms:

``inorder``
    The manual's ``-s N`` rule: the first N URIs are used, each as often as the others
    (fewest connections first, then list order); later URIs are backups, used when an earlier
    one is dropped or its host is full.
``feedback``
    aria2's FeedbackURISelector: a host not in use yet comes first, the fastest known one
    (over 20 KiB/s) before untested or slow ones in list order; hosts with an error record are
    avoided.  When every host is in use, trioaria goes further than aria2's "least used
    host": the source with the best *per-connection* speed measured so far gets the
    connection, so connections drift to the fast mirrors as segments end, and a mirror whose
    bandwidth is shared loses its lead as connections pile on.
``adaptive``
    aria2's AdaptiveURISelector: while fewer than three candidates are tested, an untested
    one is tried first.  The first connection and every later replacement take one of the best
    mirrors (a random one among those within 25 % of the fastest).  The supplementary
    connections of the initial set (at most ``--split`` - 1) evaluate: an untested mirror,
    else one whose record is older than ``2**counter`` days, else the best.

"Tested" means a speed is known, measured in this run or loaded with ``--server-stat-if``
(:mod:`trioaria.engine.server_stat`); a candidate that already has a connection is being tested and
is not offered as "untested" again.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "SELECTORS",
    "AdaptiveSelector",
    "Candidate",
    "Context",
    "FeedbackSelector",
    "InorderSelector",
    "UriSelector",
    "make_selector",
]

SELECTORS = ("inorder", "feedback", "adaptive")

#: Why a connection asks: the download's first connection, one of the rest of the initial
#: ``--split`` set, or a connection that finished a segment / lost its source.
Context = Literal["first", "supplementary", "replacement"]

#: aria2 FeedbackURISelector: servers at or below this speed are not preferred.
FAST_THRESHOLD = 20 * 1024
#: aria2 AdaptiveURISelector: at least this many mirrors are tested before choosing the best.
MIN_TESTED = 3
#: Mirrors within this fraction below the fastest count as "best" (chosen at random).
BEST_BAND = 0.25
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """One free source as the selector sees it."""

    index: int  # position in the download's URI list
    host: str
    connections: int = 0  # open on this source, the asking connection excluded
    host_connections: int = 0  # open on every source of this host, the asker excluded
    speed: int | None = None  # per-connection bytes/s; None: untested
    error: bool = False  # the server-stat record says ERROR
    last_updated: float | None = None  # epoch seconds of the speed record
    counter: int = 0  # how many downloads measured it (aria2 ServerStat counter)


class UriSelector:
    """Base: ``select`` returns one of ``candidates`` or ``None`` when the list is empty."""

    name = ""

    def select(
        self, candidates: Sequence[Candidate], *, context: Context, now: float = 0.0
    ) -> Candidate | None:
        raise NotImplementedError

    def order(self, candidates: Sequence[Candidate], *, now: float = 0.0) -> list[Candidate]:
        """The order to probe in: repeated first-connection choices without replacement."""
        left = list(candidates)
        out: list[Candidate] = []
        while left:
            pick = self.select(left, context="first", now=now)
            assert pick is not None
            out.append(pick)
            left.remove(pick)
        return out


def _rr_key(c: Candidate) -> tuple[int, int]:
    return (c.connections, c.index)


class InorderSelector(UriSelector):
    """The first ``--split`` URIs in turn, the rest as backups."""

    name = "inorder"

    def select(
        self, candidates: Sequence[Candidate], *, context: Context, now: float = 0.0
    ) -> Candidate | None:
        if not candidates:
            return None
        return min(candidates, key=_rr_key)


def _usable(candidates: Sequence[Candidate]) -> list[Candidate]:
    good = [c for c in candidates if not c.error]
    return good or list(candidates)


class FeedbackSelector(UriSelector):
    """Fastest known unused host first, untested ones tried; then the best per connection."""

    name = "feedback"

    def select(
        self, candidates: Sequence[Candidate], *, context: Context, now: float = 0.0
    ) -> Candidate | None:
        if not candidates:
            return None
        usable = _usable(candidates)
        unused = sorted((c for c in usable if c.host_connections == 0), key=lambda c: c.index)
        if unused:
            fast = [c for c in unused if c.speed is not None and c.speed > FAST_THRESHOLD]
            if fast:
                return max(fast, key=lambda c: (c.speed or 0, -c.index))
            return unused[0]
        untested = [c for c in usable if c.speed is None and c.connections == 0]
        if untested:
            return min(untested, key=lambda c: c.index)
        known = [c for c in usable if c.speed is not None]
        if known:
            return max(known, key=lambda c: (c.speed or 0, -c.connections, -c.index))
        return min(usable, key=_rr_key)


class AdaptiveSelector(UriSelector):
    """aria2's adaptive policy; ``split`` sizes the evaluation budget."""

    name = "adaptive"

    def __init__(self, split: int, rng: random.Random | None = None) -> None:
        self._to_evaluate = max(0, split - 1)
        self._rng = rng or random.Random()

    def select(
        self, candidates: Sequence[Candidate], *, context: Context, now: float = 0.0
    ) -> Candidate | None:
        if not candidates:
            return None
        ordered = sorted(candidates, key=lambda c: c.index)
        tested = sum(1 for c in ordered if c.speed is not None)
        if tested < MIN_TESTED:
            fresh = self._first_untested(ordered)
            if fresh is not None:
                if context == "supplementary" and self._to_evaluate:
                    self._to_evaluate -= 1
                return fresh
        if context == "supplementary" and self._to_evaluate > 0:
            self._to_evaluate -= 1
            pick = self._first_untested(ordered) or self._first_to_retest(ordered, now)
            if pick is not None:
                return pick
        return self._best(ordered)

    @staticmethod
    def _first_untested(ordered: Sequence[Candidate]) -> Candidate | None:
        for c in ordered:
            if c.speed is None and c.connections == 0:
                return c
        return None

    @staticmethod
    def _first_to_retest(ordered: Sequence[Candidate], now: float) -> Candidate | None:
        for c in ordered:
            if c.speed is None or c.last_updated is None or c.counter > 8:
                continue
            if now - c.last_updated > (2**c.counter) * DAY:
                return c
        return None

    def _best(self, ordered: Sequence[Candidate]) -> Candidate:
        known = [c for c in ordered if c.speed is not None]
        if not known:
            return min(ordered, key=_rr_key)
        top = max(c.speed or 0 for c in known)
        floor = top - int(top * BEST_BAND)
        bests = [c for c in known if (c.speed or 0) > floor]
        if len(bests) < 2:
            return max(known, key=lambda c: (c.speed or 0, -c.index))
        return bests[self._rng.randrange(len(bests))]


def make_selector(name: str, *, split: int = 1, rng: random.Random | None = None) -> UriSelector:
    """The selector for ``--uri-selector`` (unknown names are an error, as in the option table)."""
    if name == "inorder":
        return InorderSelector()
    if name == "feedback":
        return FeedbackSelector()
    if name == "adaptive":
        return AdaptiveSelector(split, rng)
    raise ValueError(f"unknown --uri-selector {name!r}; expected one of {', '.join(SELECTORS)}")
