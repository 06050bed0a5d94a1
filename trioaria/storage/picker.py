"""The piece picker for range sources (HTTP, FTP, SFTP): who downloads which bytes next.

Theory of operation
-------------------
A *segment* is a byte range ``[start, end)`` that one connection reads sequentially; ``pos`` is
the next byte it will write.  All segments of a download live here, over one shared
:class:`~trioaria.storage.pieces.PieceStorage`, whatever protocol each connection speaks
(docs/decisions.md / docs/design.md: one picker, one disk layer).

When a connection asks for work (:meth:`RangePicker.next_segment`) the picker decides
synchronously and returns a segment (docs/design.md, "decide synchronously, then do I/O"):

1. **Gaps first.**  A gap is a run of missing blocks that no active segment covers (after a
   resume, or after a connection failed and released its segment).  Which gap is chosen
   follows ``--stream-piece-selector``: ``default`` takes the largest, ``inorder`` the lowest,
   ``random`` a random one, ``geom`` the lowest with geometrically decreasing probability of
   skipping ahead (aria2's GeomStreamPieceSelector idea: stream the head, spread the rest).
2. **Split.**  With no gap, the active segment with the most bytes left is cut in two at a
   piece boundary, as aria2 does when a connection frees up; the new connection takes the
   second half (for ``inorder``/``geom`` the cut is made just ahead of the reader, so bytes
   still arrive near the front).  A segment is only cut when both halves keep at least
   ``--min-split-size`` (``-k``) bytes.
3. **Endgame.**  When nothing can be split at ``-k``, an idle connection helps the segment that
   will finish last (most bytes left, or the slowest by ``eta_of``).  While that segment has
   more than one piece left, its tail is halved at a block boundary (below ``-k``, still no byte
   fetched twice).  With one piece or less left, the idle connection *races* it: it gets a twin
   segment over the same remaining bytes (unless ``eta_of`` says it ends within
   ``race_min_eta`` anyway).  Whichever connection writes a block first marks it done; the one
   still behind sees its segment finished (:attr:`Segment.finished`) and stops.  So one slow
   mirror never holds up the finish, and at most one piece per connection is fetched twice.

Segments start block-aligned; blocks are marked done in :meth:`advance` only for bytes already
written.  Pure: no I/O, no clock; randomness comes from an injected ``random.Random``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .pieces import PieceStorage

__all__ = ["STREAM_PIECE_SELECTORS", "RangePicker", "Segment"]

STREAM_PIECE_SELECTORS = ("default", "inorder", "random", "geom")


@dataclass(eq=False, slots=True)
class Segment:
    """One connection's current assignment.  Mutated only by :class:`RangePicker`."""

    id: int
    start: int
    end: int
    pos: int
    source: object = None
    twin: Segment | None = field(default=None, repr=False)
    released: bool = False
    _marked_block: int = 0

    @property
    def remaining(self) -> int:
        return max(0, self.end - self.pos)

    @property
    def finished(self) -> bool:
        """True once every byte of the segment is written (by this connection or a twin)."""
        return self.pos >= self.end or self.released


class RangePicker:
    """Hands out segments to range-source connections; see the module docstring."""

    def __init__(
        self,
        storage: PieceStorage,
        *,
        min_split_size: int,
        selector: str = "default",
        rng: random.Random | None = None,
        allow_split: bool = True,
    ) -> None:
        if selector not in STREAM_PIECE_SELECTORS:
            raise ValueError(f"unknown stream piece selector {selector!r}")
        self.storage = storage
        self.min_split_size = max(min_split_size, storage.block_length)
        self.selector = selector
        self.rng = rng or random.Random()
        self.allow_split = allow_split
        self.active: list[Segment] = []
        self._next_id = 1

    # --- queries ----------------------------------------------------------------------

    def is_complete(self) -> bool:
        return self.storage.is_complete()

    def gaps(self) -> list[tuple[int, int]]:
        """Missing block runs not covered by any active segment, in block units."""
        st = self.storage
        claims = sorted(
            (st.block_of(s.pos), st.block_ceil(s.end)) for s in self.active if not s.finished
        )
        result: list[tuple[int, int]] = []
        for a, b in st.missing_runs():
            cur = a
            for ca, cb in claims:
                if cb <= cur or ca >= b:
                    continue
                if ca > cur:
                    result.extend(st.missing_runs(cur, ca))
                cur = max(cur, cb)
                if cur >= b:
                    break
            if cur < b:
                result.extend(st.missing_runs(cur, b))
        return result

    # --- decisions --------------------------------------------------------------------

    def next_segment(
        self,
        source: object = None,
        *,
        endgame: bool = True,
        eta_of: Callable[[Segment], float] | None = None,
        race_min_eta: float = 0.0,
    ) -> Segment | None:
        """Return the next segment for a free connection of ``source``, or None.

        None means there is nothing useful to do: the download is complete, or every
        remaining byte is already being read (and ``endgame`` is off or already raced).
        """
        self._prune()
        if self.storage.is_complete():
            return None
        gaps = self.gaps()
        if gaps:
            a, b = self._choose_gap(gaps)
            st = self.storage
            start = a * st.block_length
            end = min(b * st.block_length, st.total_length)
            return self._new(start, end, source)
        if self.allow_split:
            seg = self._split(source)
            if seg is not None:
                return seg
        if endgame:
            return self._race(source, eta_of, race_min_eta)
        return None

    def _choose_gap(self, gaps: list[tuple[int, int]]) -> tuple[int, int]:
        if self.selector == "inorder" or len(gaps) == 1:
            return gaps[0]
        if self.selector == "random":
            return self.rng.choice(gaps)
        if self.selector == "geom":
            # Skip ahead to the next gap with probability 1/2 each time: the head is most
            # likely, yet the tail still gets connections (aria2's geom selector, base 1.5).
            for gap in gaps[:-1]:
                if self.rng.random() < 2 / 3:
                    return gap
            return gaps[-1]
        return max(gaps, key=lambda g: (g[1] - g[0], -g[0]))

    def _split(self, source: object) -> Segment | None:
        candidates = [s for s in self.active if s.twin is None and not s.finished]
        if not candidates:
            return None
        pl = self.storage.piece_length
        need = self.min_split_size
        if self.selector in ("inorder", "geom"):
            candidates.sort(key=lambda s: s.pos)
        else:
            candidates.sort(key=lambda s: -s.remaining)
        for seg in candidates:
            if seg.remaining < 2 * need:
                continue
            if self.selector in ("inorder", "geom"):
                cut = seg.pos + need
            else:
                cut = seg.pos + seg.remaining // 2
            cut = -(-cut // pl) * pl  # round up to a piece boundary
            if cut - seg.pos < need or seg.end - cut < need:
                cut = (seg.pos + seg.remaining // 2) // pl * pl
                if cut - seg.pos < need or seg.end - cut < need:
                    continue
            new = self._new(cut, seg.end, source)
            seg.end = cut
            return new
        return None

    def _race(
        self, source: object, eta_of: Callable[[Segment], float] | None, min_eta: float
    ) -> Segment | None:
        candidates = [s for s in self.active if s.twin is None and not s.finished]
        if not candidates:
            return None
        key = eta_of if eta_of is not None else (lambda s: float(s.remaining))
        slow = max(candidates, key=key)
        st = self.storage
        bl = st.block_length
        if slow.remaining > st.piece_length:
            # Below -k: halve the tail instead of duplicating it (no byte fetched twice).
            cut = (slow.pos + slow.remaining // 2) // bl * bl
            if slow.pos < cut < slow.end:
                new = self._new(cut, slow.end, source)
                slow.end = cut
                return new
        if eta_of is not None and key(slow) < min_eta:
            return None  # it will be done soon anyway; racing would only fetch bytes twice
        start = st.block_of(slow.pos) * bl
        twin = self._new(start, slow.end, source)
        twin.twin, slow.twin = slow, twin
        return twin

    def _new(self, start: int, end: int, source: object) -> Segment:
        seg = Segment(self._next_id, start, end, start, source)
        seg._marked_block = self.storage.block_of(start)
        self._next_id += 1
        self.active.append(seg)
        return seg

    # --- progress ---------------------------------------------------------------------

    def advance(self, seg: Segment, nbytes: int) -> list[int]:
        """Record that ``nbytes`` more bytes of ``seg`` were written at ``seg.pos``.

        Returns the pieces this completed.  The caller must never write past ``seg.end``
        (which a split may have moved closer), so ``nbytes <= seg.remaining``.
        """
        if nbytes > seg.remaining:
            raise ValueError("write past the segment end")
        seg.pos += nbytes
        st = self.storage
        upto = st.num_blocks if seg.pos >= st.total_length else st.block_of(seg.pos)
        done: list[int] = []
        if upto > seg._marked_block:
            done = st.mark_blocks(seg._marked_block, upto)
            seg._marked_block = upto
        if seg.twin is not None:  # only a twin can finish our bytes for us
            self._check_done(seg)
            self._check_done(seg.twin)
        return done

    def _check_done(self, seg: Segment) -> None:
        if seg.finished:
            return
        st = self.storage
        first = st.block_of(seg.pos)
        end = st.block_ceil(seg.end)
        if first < end and st.blocks_done_in(first, end) == end - first:
            seg.released = True  # every remaining block was written by a twin

    def release(self, seg: Segment) -> None:
        """The connection is done with ``seg`` (finished, failed or cancelled)."""
        seg.released = True
        if seg.twin is not None:
            seg.twin.twin = None
            seg.twin = None
        if seg in self.active:
            self.active.remove(seg)

    def _prune(self) -> None:
        self.active = [s for s in self.active if not s.released]
