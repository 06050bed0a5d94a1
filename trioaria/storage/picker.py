"""The one piece picker of a download: which source fetches which blocks next.

Theory of operation
-------------------
Every source of a download asks this picker for work, whatever protocol it speaks
(docs/design.md: one picker, one disk layer).  Range sources (HTTP, FTP, SFTP connections, web
seeds) read *segments*: byte ranges ``[start, end)`` read sequentially, ``pos`` being the next
byte they write.  Peers (BitTorrent) claim 16 KiB *blocks*, the unit of
:class:`~trioaria.storage.pieces.PieceStorage` and of BEP 3 requests.  Both kinds of work live
in one claim map, so a mirror's run and a swarm fill the same file at the same time and never
fetch a byte twice outside the endgame.  The picker decides synchronously and returns what to do
(docs/design.md, "decide synchronously, then do I/O"); it never does I/O, reads no clock and
takes its randomness from an injected ``random.Random``.

State.  A download fed by range sources alone keeps only its segments: free runs are the
storage's missing runs minus the segments' unwritten ranges (and minus unwanted pieces), so the
state grows with the work in flight, not with a server's claimed length, as PieceStorage's block
map does.  The first peer (a registered bitfield, or a call to :meth:`Picker.claim_blocks`)
switches to *block mode*: one byte per block says whether the block is *free* (wanted, missing,
claimed by nobody); a parallel list says who holds it (a peer's number, or a segment's,
negated), built from the storage, the segments and the claims (:meth:`Picker.resync`).  Per
piece the picker counts free blocks and sorts the piece into one of three places: *untouched*
pieces sit in availability buckets, *started* pieces (some blocks claimed or written, some
free) in an ordered set, pieces without free blocks nowhere.  Availability is the number of
registered peer bitfields holding a piece (BEP 3 ``bitfield``/``have``); sources that have
everything (a mirror registered with ``have=None``) do not count, and full bitfields (seeds) are
one shared offset, so a seed joining or leaving costs O(1).  Buckets are lazy: a ``have`` only
bumps the count, and a search that meets a piece in too low a bucket moves it up (bucket index
<= availability always holds, so the first match of an ascending scan is a rarest piece).

Peers: :meth:`Picker.claim_blocks`.  A peer first continues its current piece, then takes free
blocks of *started* pieces (libtorrent's and aria2's rule: finish pieces, so they can be
verified and announced), then a fresh piece chosen by priority (:meth:`Picker.set_piece_priority`,
aria2's ``--bt-prioritize-piece=head,tail``) and the stream selector: ``default`` is *rarest
first* (BEP 3: "clients generally download pieces in random order ... rarest first", ties broken
at random), ``inorder``/``geom`` stream from the front, ``random`` picks at random.  A peer whose
search fails is remembered with the current *epoch* (a counter bumped whenever blocks become
free, or a peer gains a piece), so idle peers polling for work cost O(1).  When no free block
fits, a peer may cut the tail off a range segment (halves of at least ``-k``, as aria2 splits
for a new connection), so a mirror keeps long runs.  *Endgame* (BEP 3: "When
a download is almost complete, there's a tendency for the last few pieces to all be downloaded
off a single hosed modem line ... send requests for all of its missing blocks to all of its
peers"): once every wanted missing block is claimed, a peer may claim blocks others hold, at most
``max_duplicates`` claimers per block, never one it holds already; a segment below ``-k`` is
helped from its last piece backwards (its end shrinks as peers write its tail).
:meth:`Picker.block_written` returns the CANCELs for the other claimers and the segments this
write finished; CANCELs owed because a segment wrote a peer's block come from
:meth:`Picker.take_cancels`.

Range sources: :meth:`Picker.next_segment`, as aria2's SegmentMan:

1. **Gaps first.**  A gap is a run of free blocks (inside the pieces the source has).  Pieces
   with a priority (``--bt-prioritize-piece``) go first, one prioritised run at a time;
   otherwise which gap follows ``--stream-piece-selector``: ``default`` takes the largest, ``inorder`` the lowest,
   ``random`` a random one, ``geom`` the lowest with geometrically decreasing probability of
   skipping ahead (aria2's GeomStreamPieceSelector idea: stream the head, spread the rest).
2. **Split.**  With no gap, the segment with the most bytes left is cut at a piece boundary and
   the new connection takes the second half (``inorder``/``geom`` cut just ahead of the reader).
   Both halves keep at least ``--min-split-size`` (``-k``) bytes.
3. **Endgame.**  When nothing can be split at ``-k``, an idle connection helps the segment that
   will finish last (most bytes left, or the slowest by ``eta_of``).  While it has more than one
   piece left its tail is halved at a block boundary (no byte fetched twice); with one piece or
   less left the idle connection *races* it with a twin segment over the same bytes (unless
   ``eta_of`` says it ends within ``race_min_eta``).  Splits and halvings also spare a segment
   that ``eta_of`` says ends within ``steal_min_eta``: taking its tail would save little and
   costs its connection the exact range it asked for.  The first writer marks blocks done; the one
   behind sees :attr:`Segment.finished` and stops.  With no segment to help, it races the
   lowest run of blocks peers hold (within one piece, as one more claimer).

Blame.  The picker remembers which sources wrote blocks of each piece not yet verified.  A hash
mismatch (:meth:`Picker.piece_failed`) clears the piece, returns its writers (the caller
penalises a mirror or bans a peer) and keeps them off that piece while another source can take
it.

Storage is shared: changes made to :class:`PieceStorage` behind the picker's back (a reset when a
server ignores ranges, a control file loaded late) are noticed through ``completed_length`` and
the claim map is rebuilt (:meth:`Picker.resync`).
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .bitfield import Bitfield
from .pieces import PieceStorage, spans_in_units

__all__ = [
    "STREAM_PIECE_SELECTORS",
    "BlockOutcome",
    "Picker",
    "PickerStatistics",
    "RangePicker",
    "Segment",
    "head_tail_pieces",
    "parse_prioritize_piece",
]

STREAM_PIECE_SELECTORS = ("default", "inorder", "random", "geom")

# _EXPAND[byte] is the byte's 8 bits in BEP 3 order, one byte each (a bitfield -> bytearray).
_EXPAND = tuple(bytes((value >> (7 - i)) & 1 for i in range(8)) for value in range(256))
_NO_SIDS: frozenset[int] = frozenset()


def _unpack(bits: Bitfield) -> bytearray:
    out = bytearray(b"".join(map(_EXPAND.__getitem__, bits.to_bytes())))
    del out[bits.length :]
    return out


@dataclass(eq=False, slots=True)
class Segment:
    """One range connection's current assignment.  Mutated only by :class:`Picker`."""

    id: int
    start: int
    end: int
    pos: int
    source: object = None
    twin: Segment | None = field(default=None, repr=False)
    released: bool = False
    _marked_block: int = 0
    _owns: bool = True  # holds its blocks in the claim map (a twin does not)
    _sid: int = 0
    _wpiece: int = -1  # last piece this segment's source was recorded as a writer of

    @property
    def remaining(self) -> int:
        return max(0, self.end - self.pos)

    @property
    def finished(self) -> bool:
        """True once every byte of the segment is written (by this connection or another)."""
        return self.pos >= self.end or self.released


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    """What :meth:`Picker.block_written` asks the caller to do.

    Attributes:
        pieces: pieces this write completed (every block written); hash them.
        cancels: ``(source, block)`` endgame duplicates other sources still hold: send CANCEL.
        stopped: range segments this write finished; their connections may stop at once.
        duplicate: the block had been written already (by a faster claimer).
    """

    pieces: list[int]
    cancels: list[tuple[object, int]]
    stopped: list[Segment]
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class PickerStatistics:
    """A snapshot of the picker (:meth:`Picker.statistics`)."""

    sources: int
    segments: int
    claimed_blocks: int  # peer claims, endgame duplicates included
    duplicate_claims: int
    free_blocks: int | None  # None while no peer takes part (range mode)
    missing_pieces: int  # wanted pieces not yet written
    in_endgame: bool


class _Source:
    """Per-source state (internal)."""

    __slots__ = ("claims", "counted", "cur", "fail_epoch", "have", "obj", "seed", "sid", "wpiece")

    def __init__(self, sid: int, obj: object) -> None:
        self.sid = sid
        self.obj = obj
        self.have: bytearray | None = None  # one byte per piece; None = every piece
        self.counted = False  # its have bits are in the availability counts
        self.seed = False  # a full bitfield: counted in Picker._seeds
        self.claims: set[int] = set()
        self.cur = -1  # the piece it claimed from last
        self.fail_epoch = -1  # Picker._epoch when a search last found nothing for it
        self.wpiece = -1  # last piece it was recorded as a writer of


def _ends_within(
    eta_of: Callable[[Segment], float | None] | None, limit: float
) -> Callable[[Segment], bool]:
    """A test for "this segment is expected to end within ``limit`` seconds" (never, without
    an estimate)."""
    if eta_of is None or limit <= 0:
        return lambda seg: False

    def ends_soon(seg: Segment) -> bool:
        eta = eta_of(seg)
        return eta is not None and eta < limit

    return ends_soon


class Picker:
    """Hands out segments to range sources and blocks to peers; see the module docstring.

    Args:
        storage: the download's block state (shared with the disk layer and control file).
        min_split_size: ``-k``: a split keeps both halves at least this long (bytes).
        selector: ``--stream-piece-selector``.
        rng: the only source of randomness (tests pass a seeded one).
        allow_split: False when the server ignores ranges: one segment, never split.
        wanted: pieces wanted (``--select-file``); None = every piece.
        max_duplicates: endgame: at most this many sources claim one block.
    """

    def __init__(
        self,
        storage: PieceStorage,
        *,
        min_split_size: int,
        selector: str = "default",
        rng: random.Random | None = None,
        allow_split: bool = True,
        wanted: Bitfield | None = None,
        max_duplicates: int = 2,
    ) -> None:
        if selector not in STREAM_PIECE_SELECTORS:
            raise ValueError(f"unknown stream piece selector {selector!r}")
        self.storage = storage
        self.min_split_size = max(min_split_size, storage.block_length)
        self.selector = selector
        self.rng = rng or random.Random()
        self.allow_split = allow_split
        self.max_duplicates = max(1, max_duplicates)
        self.active: list[Segment] = []
        self._next_id = 1
        st = storage
        self._bpp = st.blocks_per_piece
        self._npieces = st.num_pieces
        # Per-block and per-piece claim state exists only once a peer takes part (block
        # mode); a download fed by range sources alone keeps state in proportion to its
        # segments, as PieceStorage keeps it in proportion to what was written.
        self._blocks_on = False
        self._nblk: list[int] = []
        self._avail: list[int] = []
        self._busy = bytearray()
        self._owner: list[int] = []
        self._dups: dict[int, list[int]] = {}
        self._free: list[int] = []
        self._total_free = 0
        self._started: dict[int, None] = {}
        self._bk: list[list[int]] = [[]]
        self._bk_of: list[int] = []
        self._bk_pos: list[int] = []
        # one byte per piece, materialised only for a mask or in block mode
        self._wanted_all = wanted is None
        self._wanted = bytearray() if wanted is None else self._wanted_bytes(wanted)
        self._seeds = 0
        self._sources: dict[int, _Source] = {}  # id(source) -> state
        self._by_sid: dict[int, _Source] = {}
        self._next_sid = 1
        self._segs: dict[int, Segment] = {}
        self._prio: dict[int, int] = {}
        self._prio_list: list[int] = []
        self._writers: dict[int, dict[int, object]] = {}
        self._blamed: dict[int, set[int]] = {}
        self._pending_cancels: list[tuple[object, int]] = []
        self._shadows: list[Segment] = []  # range segments racing peers' claims
        self._epoch = 0
        self._pool: list[int] = []
        self._pool_epoch = -1
        self._rebuild()

    # --- construction of the claim map ---------------------------------------------------

    def _wanted_bytes(self, wanted: Bitfield) -> bytearray:
        if len(wanted) != self._npieces:
            raise ValueError(f"wanted has {len(wanted)} bits for {self._npieces} pieces")
        return _unpack(wanted)

    def resync(self) -> None:
        """Rebuild the claim map from the storage (after it changed behind the picker's back)."""
        self._rebuild()

    def _enable_blocks(self) -> None:
        """Enter block mode: build the per-block claim map (a peer takes part)."""
        if self._blocks_on:
            return
        st = self.storage
        self._blocks_on = True
        if self._wanted_all:
            self._wanted = bytearray(b"\x01") * st.num_pieces
        self._nblk = [len(st.piece_blocks(p)) for p in range(st.num_pieces)]
        self._avail = [0] * st.num_pieces
        self._rebuild()

    def _rebuild(self) -> None:
        st = self.storage
        nb = st.num_blocks
        self._last_block = nb - 1
        self._last_len = st.block_size(nb - 1) if nb else 0
        self._seen_len = st.completed_length
        self._epoch += 1
        wanted = self._wanted
        if not self._wanted_all:
            pieces = st.pieces
            self._missing_wanted = sum(
                1 for p in range(self._npieces) if wanted[p] and not pieces[p]
            )
        else:
            self._missing_wanted = self._npieces - st.pieces.count()
        if self._blocks_on:
            self._rebuild_blocks()

    def _rebuild_blocks(self) -> None:
        st = self.storage
        nb = st.num_blocks
        bpp = self._bpp
        busy = bytearray(b"\x01") * nb
        for a, b in st.missing_runs():
            busy[a:b] = bytes(b - a)
        wanted = self._wanted
        if wanted.count(0):
            for p in range(self._npieces):
                if not wanted[p]:
                    first = p * bpp
                    busy[first : first + self._nblk[p]] = b"\x01" * self._nblk[p]
        owner = [0] * nb
        for seg in self.active:
            if seg.released or not seg._owns:
                continue
            for b in range(st.block_of(seg.pos), st.block_ceil(seg.end)):
                if not st.is_block_done(b):
                    owner[b] = -seg.id
                    busy[b] = 1
            seg._marked_block = min(seg._marked_block, st.block_of(seg.pos))
        dups: dict[int, list[int]] = {}
        for info in self._sources.values():
            keep = set()
            for b in info.claims:
                if st.is_block_done(b):
                    continue
                keep.add(b)
                if owner[b] == 0:
                    owner[b] = info.sid
                    busy[b] = 1
                else:
                    dups.setdefault(b, []).append(info.sid)
            info.claims = keep
            info.fail_epoch = -1
        self._busy = busy
        self._owner = owner
        self._dups = dups
        self._free = [busy.count(0, p * bpp, p * bpp + self._nblk[p]) for p in range(self._npieces)]
        self._total_free = sum(self._free)
        self._started = {}
        self._bk = [[]]
        self._bk_of = [-1] * self._npieces
        self._bk_pos = [0] * self._npieces
        self._bk_lo = 0
        self._lo = 0
        for p in range(self._npieces):
            self._reclass(p)

    def _check_sync(self) -> None:
        if self.storage.completed_length != self._seen_len:
            self._rebuild()

    # --- piece classes: availability buckets (untouched), started, none --------------------

    def _reclass(self, p: int) -> None:
        f = self._free[p]
        if f and f == self._nblk[p]:
            self._started.pop(p, None)
            if self._bk_of[p] < 0:
                self._bk_add(p)
        elif f:
            if self._bk_of[p] >= 0:
                self._bk_remove(p)
            self._started[p] = None
        else:
            if self._bk_of[p] >= 0:
                self._bk_remove(p)
            self._started.pop(p, None)
        if f and p < self._lo:
            self._lo = p

    def _bk_add(self, p: int) -> None:
        a = self._avail[p]
        bk = self._bk
        while len(bk) <= a:
            bk.append([])
        lst = bk[a]
        k = len(lst)
        lst.append(p)
        j = int(self.rng.random() * (k + 1))  # random position: ties break at random
        if j < k:
            q = lst[j]
            lst[j] = p
            lst[k] = q
            self._bk_pos[q] = k
        self._bk_pos[p] = j if j < k else k
        self._bk_of[p] = a
        if a < self._bk_lo:
            self._bk_lo = a

    def _bk_remove(self, p: int) -> None:
        lst = self._bk[self._bk_of[p]]
        i = self._bk_pos[p]
        last = lst.pop()
        if last != p:
            lst[i] = last
            self._bk_pos[last] = i
        self._bk_of[p] = -1

    # --- sources and availability ------------------------------------------------------

    def _register(self, source: object, have: Bitfield | None) -> _Source:
        info = _Source(self._next_sid, source)
        self._next_sid += 1
        self._sources[id(source)] = info
        self._by_sid[info.sid] = info
        self._set_have(info, have)
        return info

    def _set_have(self, info: _Source, have: Bitfield | None) -> None:
        if have is None:
            return
        if len(have) != self._npieces:
            raise ValueError(f"bitfield has {len(have)} bits for {self._npieces} pieces")
        if have.all():
            info.seed = True
            self._seeds += 1
            return
        self._enable_blocks()
        bits = info.have = _unpack(have)
        info.counted = True
        avail = self._avail
        p = bits.find(1)
        while p >= 0:
            avail[p] += 1  # lazy: the piece's bucket is fixed by the next search
            p = bits.find(1, p + 1)

    def _withdraw(self, info: _Source) -> None:
        """Take ``info``'s pieces out of the availability counts."""
        if info.seed:
            self._seeds -= 1
        elif info.counted and info.have is not None:
            avail = self._avail
            bk_of = self._bk_of
            bits = info.have
            p = bits.find(1)
            while p >= 0:
                avail[p] -= 1
                if bk_of[p] > avail[p]:  # keep bucket index <= availability
                    self._bk_remove(p)
                    self._bk_add(p)
                p = bits.find(1, p + 1)
        info.seed = info.counted = False
        info.have = None
        self._epoch += 1

    def _info(self, source: object) -> _Source:
        info = self._sources.get(id(source))
        return info if info is not None else self._register(source, None)

    def add_source(self, source: object, have: Bitfield | None) -> None:
        """Register ``source`` with the pieces it has (None: all, and not counted for rarity).

        A peer registers its BEP 3 ``bitfield`` (an empty one if it sent none); registering
        again replaces the bitfield and keeps the claims.
        """
        info = self._sources.get(id(source))
        if info is None:
            self._register(source, have)
            return
        self._withdraw(info)
        self._set_have(info, have)
        info.fail_epoch = -1

    def source_has(self, source: object, piece: int) -> None:
        """BEP 3 ``have``: ``source`` now has ``piece``."""
        info = self._info(source)
        bits = info.have
        if bits is None or bits[piece]:
            return
        bits[piece] = 1
        self._avail[piece] += 1
        info.fail_epoch = -1

    def remove_source(self, source: object) -> None:
        """``source`` left: its availability is withdrawn and all its work released."""
        info = self._sources.get(id(source))
        if info is None:
            return
        self.release(source)
        self._forget(info)

    def _forget(self, info: _Source) -> None:
        self._withdraw(info)
        del self._sources[id(info.obj)]
        del self._by_sid[info.sid]

    def availability(self, piece: int) -> int:
        """How many registered peers have ``piece`` (sources registered with None excluded)."""
        return (self._avail[piece] if self._blocks_on else 0) + self._seeds

    def source_count(self) -> int:
        return len(self._sources)

    def claims_of(self, source: object) -> frozenset[int]:
        """Blocks ``source`` holds claims on (endgame duplicates included)."""
        info = self._sources.get(id(source))
        return frozenset(info.claims) if info is not None else frozenset()

    # --- wanted pieces and priorities ----------------------------------------------------

    def set_wanted(self, wanted: Bitfield | None) -> None:
        """Change the wanted pieces (None: all).  Work already handed out is kept."""
        if wanted is not None:
            new = self._wanted_bytes(wanted)
        elif self._blocks_on:
            new = bytearray(b"\x01") * self._npieces
        else:
            new = bytearray()
        self._check_sync()
        old = self._wanted
        self._wanted = new
        self._wanted_all = wanted is None
        if self._blocks_on:
            self._rewant(old, new)
        else:
            self._rebuild()  # recounts the missing wanted pieces
        if wanted is not None:  # a running segment stops before the first unwanted piece
            pl = self.storage.piece_length
            for seg in self.active:
                if seg.finished:
                    continue
                for p in range(seg.pos // pl + 1, (seg.end - 1) // pl + 1):
                    if not new[p]:
                        self._set_end(seg, p * pl)
                        break
        self._epoch += 1

    def _rewant(self, old: bytearray, new: bytearray) -> None:
        st = self.storage
        busy = self._busy
        owner = self._owner
        bpp = self._bpp
        for p in range(self._npieces):
            if old[p] == new[p]:
                continue
            first = p * bpp
            stop = first + self._nblk[p]
            for b in range(first, stop):
                if owner[b] == 0 and not st.is_block_done(b):
                    busy[b] = 0 if new[p] else 1
            f = busy.count(0, first, stop)
            self._total_free += f - self._free[p]
            self._free[p] = f
            self._reclass(p)
            if not st.pieces[p]:
                self._missing_wanted += 1 if new[p] else -1

    def prioritize_head_tail(
        self, files: Iterable[tuple[int, int]], head: int | None, tail: int | None
    ) -> None:
        """aria2's ``--bt-prioritize-piece=head[=SIZE],tail[=SIZE]`` over ``(offset, length)``
        files: their first ``head`` and last ``tail`` bytes go first."""
        pieces = head_tail_pieces(files, self.storage.piece_length, head, tail)
        self.set_piece_priority(pieces, 1)

    def statistics(self) -> PickerStatistics:
        claimed = sum(len(i.claims) for i in self._sources.values())
        dups = sum(len(lst) for lst in self._dups.values())
        return PickerStatistics(
            sources=len(self._sources),
            segments=sum(1 for s in self.active if not s.finished),
            claimed_blocks=claimed,
            duplicate_claims=dups,
            free_blocks=self._total_free if self._blocks_on else None,
            missing_pieces=self._missing(),
            in_endgame=self.in_endgame,
        )

    def is_wanted(self, piece: int) -> bool:
        return self._wanted_all or bool(self._wanted[piece])

    def set_piece_priority(self, pieces: Iterable[int], priority: int) -> None:
        """Give ``pieces`` a priority: higher goes first, 0 = normal (rarest first)."""
        for p in pieces:
            if priority:
                self._prio[p] = priority
            else:
                self._prio.pop(p, None)
        self._prio_list = sorted(self._prio, key=lambda p: (-self._prio[p], p))

    # --- queries ---------------------------------------------------------------------------

    def is_complete(self) -> bool:
        """Every wanted piece is written."""
        return self._missing() == 0

    def _missing(self) -> int:
        """Wanted pieces not yet written."""
        if self._wanted_all and not self._blocks_on:
            # range mode, everything wanted: the storage knows (no count to keep per read)
            return self.storage.num_pieces - self.storage.pieces.count()
        self._check_sync()
        return self._missing_wanted

    @property
    def in_endgame(self) -> bool:
        """Every wanted missing block is claimed (duplicate claims are allowed)."""
        return self._total_free == 0 and self._missing_wanted > 0

    def gaps(self) -> list[tuple[int, int]]:
        """Runs of free blocks (wanted, missing, claimed by nobody), in block units."""
        self._check_sync()
        return self._free_runs()

    def _free_runs(self) -> list[tuple[int, int]]:
        if self._blocks_on:
            return self._runs(0, len(self._busy))
        # range mode: missing runs minus the segments' unwritten ranges minus unwanted pieces
        st = self.storage
        claims = sorted(
            (st.block_of(s.pos), st.block_ceil(s.end)) for s in self.active if not s.finished
        )
        runs: list[tuple[int, int]] = []
        for a, b in st.missing_runs():
            cur = a
            for ca, cb in claims:
                if cb <= cur or ca >= b:
                    continue
                if ca > cur:
                    runs.append((cur, ca))
                cur = max(cur, cb)
                if cur >= b:
                    break
            if cur < b:
                runs.append((cur, b))
        if self._wanted_all:
            return runs
        wanted = self._wanted
        return spans_in_units(runs, self._bpp, lambda piece: wanted[piece])

    def _runs(self, first: int, stop: int) -> list[tuple[int, int]]:
        busy = self._busy
        out: list[tuple[int, int]] = []
        i = first
        while i < stop:
            a = busy.find(0, i, stop)
            if a < 0:
                break
            b = busy.find(1, a, stop)
            if b < 0:
                b = stop
            out.append((a, b))
            i = b
        return out

    # --- peers: block claims ------------------------------------------------------------

    def claim_blocks(self, source: object, max_blocks: int) -> list[int]:
        """Claim up to ``max_blocks`` blocks for a peer (its registered bitfield applies).

        Returns block indices (``storage.block_span`` gives their bytes), in few pieces: the
        peer's current piece, started pieces, then fresh ones by priority / selector / rarity.
        In endgame the list may hold blocks other sources claimed as well.  An empty list means
        there is nothing this source can usefully fetch now.
        """
        if not self._blocks_on:
            self._enable_blocks()
        if self.storage.completed_length != self._seen_len:
            self._rebuild()
        info = self._sources.get(id(source))
        if info is None:
            info = self._register(source, None)
        if max_blocks <= 0 or info.fail_epoch == self._epoch or not self._missing_wanted:
            return []
        out: list[int] = []
        k = max_blocks
        p = info.cur
        if p >= 0 and self._free[p]:
            k -= self._take(info, p, k, out)
        cut = False
        while k > 0:
            p = self._find_piece(info)
            if p >= 0:
                k -= self._take(info, p, k, out)
                continue
            if cut or not self.active or not self._cut_for(info):
                break
            cut = True
        if k > 0 and self._total_free == 0:
            self._dup(info, k, out)
        if not out:
            info.fail_epoch = self._epoch
        return out

    def _take(self, info: _Source, p: int, k: int, out: list[int]) -> int:
        start = p * self._bpp
        end = start + self._nblk[p]
        busy = self._busy
        owner = self._owner
        claims = info.claims
        sid = info.sid
        n = 0
        while n < k:
            b = busy.find(0, start, end)
            if b < 0:
                break
            busy[b] = 1
            owner[b] = sid
            claims.add(b)
            out.append(b)
            n += 1
            start = b + 1
        if n:
            f = self._free[p]
            nf = f - n
            self._free[p] = nf
            if f == self._nblk[p]:
                if self._bk_of[p] >= 0:
                    self._bk_remove(p)
                if nf:
                    self._started[p] = None
            elif not nf:
                self._started.pop(p, None)
            self._total_free -= n
            if not self._total_free:
                self._epoch += 1  # endgame starts: duplicates become possible
            info.cur = p
        return n

    def _find_piece(self, info: _Source) -> int:
        have = info.have
        sid = info.sid
        blamed = self._blamed
        fallback = -1
        for p in self._started:
            if have is None or have[p]:
                if blamed and sid in blamed.get(p, _NO_SIDS):
                    if fallback < 0:
                        fallback = p
                    continue
                return p
        if self._prio_list:
            free = self._free
            for p in self._prio_list:
                if free[p] and (have is None or have[p]):
                    if blamed and sid in blamed.get(p, _NO_SIDS):
                        if fallback < 0:
                            fallback = p
                        continue
                    return p
        if self.selector == "default":
            p, fb = self._rarest(have, sid)
        else:
            p, fb = self._ordered(have, sid)
        if p >= 0:
            return p
        if fallback < 0:
            fallback = fb
        if fallback >= 0 and not self._someone_else(fallback, sid):
            return fallback
        return -1

    def _rarest(self, have: bytearray | None, sid: int) -> tuple[int, int]:
        bk = self._bk
        avail = self._avail
        blamed = self._blamed
        a = self._bk_lo
        nbk = len(bk)
        while a < nbk and not bk[a]:
            a += 1
        self._bk_lo = a
        fallback = -1
        while a < len(bk):
            lst = bk[a]
            i = 0
            while i < len(lst):
                p = lst[i]
                if avail[p] != a:  # its availability rose since it was filed: move it up
                    self._bk_remove(p)
                    self._bk_add(p)
                    continue
                if have is None or have[p]:
                    if blamed and sid in blamed.get(p, _NO_SIDS):
                        if fallback < 0:
                            fallback = p
                    else:
                        return p, fallback
                i += 1
            a += 1
        return -1, fallback

    def _ordered(self, have: bytearray | None, sid: int) -> tuple[int, int]:
        """``inorder``/``geom``: the lowest untouched piece; ``random``: a random one."""
        free = self._free
        nblk = self._nblk
        n = self._npieces
        lo = self._lo
        while lo < n and not free[lo]:
            lo += 1
        self._lo = lo
        blamed = self._blamed
        fallback = -1
        if self.selector == "random":
            start = lo + int(self.rng.random() * (n - lo)) if n > lo else lo
            order: Iterable[int] = itertools.chain(range(start, n), range(lo, start))
        else:
            order = range(lo, n)
        skip = self.selector == "geom"
        for p in order:
            f = free[p]
            if f and f == nblk[p] and (have is None or have[p]):
                if blamed and sid in blamed.get(p, _NO_SIDS):
                    if fallback < 0:
                        fallback = p
                    continue
                if skip and self.rng.random() < 1 / 3:
                    skip = self.rng.random() < 0.5  # skip ahead at most a couple of times
                    continue
                return p, fallback
        return -1, fallback

    def _someone_else(self, piece: int, sid: int) -> bool:
        """Can a source other than ``sid``, not blamed for ``piece``, fetch it?"""
        blamed = self._blamed.get(piece, _NO_SIDS)
        for other in self._sources.values():
            if other.sid == sid or other.sid in blamed:
                continue
            if other.have is None or other.have[piece]:
                return True
        return False

    def _cut_for(self, info: _Source) -> bool:
        """Free the tail of a range segment for a peer that found nothing else to do."""
        st = self.storage
        pl = st.piece_length
        need = self.min_split_size
        have = info.have
        cands = [s for s in self.active if s._owns and s.twin is None and not s.finished]
        cands.sort(key=lambda s: -s.remaining)
        for seg in cands:
            rem = seg.remaining
            if rem >= 2 * need:
                cut = -(-(seg.pos + rem // 2) // pl) * pl
                if cut - seg.pos < need or seg.end - cut < need:
                    cut = (seg.pos + rem // 2) // pl * pl
                    if cut - seg.pos < need or seg.end - cut < need:
                        continue
            else:
                continue  # below -k peers duplicate the segment's last piece instead
            a = st.block_of(cut)
            e = st.block_ceil(seg.end)
            if have is not None and not any(
                have[p] for p in range(a // self._bpp, (e - 1) // self._bpp + 1)
            ):
                continue
            seg.end = cut
            self._unown(seg, a, e)
            return True
        return False

    def _dup(self, info: _Source, k: int, out: list[int]) -> int:
        if self.max_duplicates < 2:
            return 0
        if self._pool_epoch != self._epoch:
            self._build_pool()
        have = info.have
        sid = info.sid
        claims = info.claims
        owner = self._owner
        dups = self._dups
        bpp = self._bpp
        maxd = self.max_duplicates
        keep: list[int] = []
        n = 0
        # Blocks leave the pool once written (owner cleared) or fully claimed; a claim given
        # back bumps the epoch, which rebuilds the pool.
        wanted = self._wanted
        for b in self._pool:
            if not owner[b] or not wanted[b // bpp]:
                continue
            lst = dups.get(b)
            if lst is not None and len(lst) + 1 >= maxd:
                continue
            o = owner[b]
            if (
                n >= k
                or b in claims
                or (have is not None and not have[b // bpp])
                or (o < 0 and self._seg_sid(o) == sid)  # its own segment's block
            ):
                keep.append(b)
                continue
            if lst is None:
                dups[b] = lst = [sid]
            else:
                lst.append(sid)
            if len(lst) + 1 < maxd:
                keep.append(b)
            claims.add(b)
            out.append(b)
            n += 1
        self._pool = keep
        return n

    def _seg_sid(self, owner: int) -> int:
        seg = self._segs.get(-owner)
        return seg._sid if seg is not None else 0

    def _build_pool(self) -> None:
        st = self.storage
        blocks: set[int] = set()
        for info in self._sources.values():
            blocks.update(info.claims)
        pool = sorted(b for b in blocks if not st.is_block_done(b))
        owner = self._owner
        for seg in self.active:  # a segment's last piece, from its end backwards
            if seg._owns and not seg.finished:
                e = st.block_ceil(seg.end)
                lo = max(st.block_of(seg.pos), e - self._bpp)
                pool.extend(b for b in range(e - 1, lo - 1, -1) if owner[b] == -seg.id)
        self._pool = pool
        self._pool_epoch = self._epoch

    def block_written(self, source: object, block: int) -> BlockOutcome:
        """``source`` wrote ``block`` (its bytes were handed to the disk layer).

        Returns the pieces completed, the CANCELs owed to other claimers of the block and the
        range segments this write finished.
        """
        st = self.storage
        if not self._blocks_on:
            self._enable_blocks()
        info = self._sources.get(id(source))
        if info is None:
            info = self._register(source, None)
        sid = info.sid
        info.claims.discard(block)
        dups = self._dups
        owner = self._owner
        o = owner[block]
        p = block // self._bpp
        # held by nobody and not free: written (or unwanted, which storage tells apart)
        if not o and self._busy[block] and (self._wanted[p] or st.is_block_done(block)):
            if dups:
                lst = dups.get(block)
                if lst is not None and sid in lst:
                    lst.remove(sid)
                    if not lst:
                        del dups[block]
            return BlockOutcome([], [], [], duplicate=True)
        cancels: list[tuple[object, int]] = []
        stopped: list[Segment] = []
        seg: Segment | None = None
        if o:
            owner[block] = 0
            if o < 0:
                seg = self._segs.get(-o)
            elif o != sid:
                other = self._by_sid[o]
                other.claims.discard(block)
                cancels.append((other.obj, block))
        elif not self._busy[block]:  # unsolicited: it was free
            self._busy[block] = 1
            self._free[p] -= 1
            self._total_free -= 1
            self._reclass(p)
        if dups:
            lst = dups.pop(block, None)
            if lst is not None:
                for s in lst:
                    if s != sid:
                        other = self._by_sid[s]
                        other.claims.discard(block)
                        cancels.append((other.obj, block))
        done = st.mark_blocks(block, block + 1)
        # counted, not re-read: a change behind our back stays visible to _check_sync
        self._seen_len += (
            self._last_len
            if block == self._last_block
            else st.block_length
            if st.uniform
            else st.block_size(block)
        )
        if info.wpiece != p:
            info.wpiece = p
            w = self._writers.get(p)
            if w is None:
                self._writers[p] = {sid: source}
            else:
                w[sid] = source
        if done and self._wanted[p]:
            self._missing_wanted -= 1
        if seg is not None:
            self._after_foreign_write(seg, stopped)
        if self._shadows:
            for shadow in self._shadows:
                if not shadow.finished:
                    self._check_done(shadow)
                    if shadow.finished:
                        stopped.append(shadow)
        return BlockOutcome(done, cancels, stopped)

    def blocks_written(self, source: object, first: int, end: int) -> BlockOutcome:
        """``source`` wrote blocks ``[first, end)``: :meth:`block_written` for each, merged.

        The common case of a fast peer (every block claimed by ``source`` alone, no endgame
        duplicates, no range segment watching) is one slice compare, one slice store and one
        :meth:`PieceStorage.mark_blocks` for the run; anything else takes the per-block path.
        """
        n = end - first
        info = self._sources.get(id(source))
        owner = self._owner
        if (
            n > 1
            and info is not None
            and self._blocks_on
            and not self._dups
            and not self._shadows
            and owner[first:end].count(info.sid) == n
        ):
            st = self.storage
            owner[first:end] = [0] * n
            info.claims.difference_update(range(first, end))
            done = st.mark_blocks(first, end)
            self._seen_len += st.span_length(first, end)
            bpp = self._bpp
            for p in range(first // bpp, (end - 1) // bpp + 1):
                if info.wpiece != p:
                    info.wpiece = p
                    w = self._writers.get(p)
                    if w is None:
                        self._writers[p] = {info.sid: source}
                    else:
                        w[info.sid] = source
            wanted = self._wanted
            for p in done:
                if wanted[p]:
                    self._missing_wanted -= 1
            return BlockOutcome(done, [], [])
        pieces: list[int] = []
        cancels: list[tuple[object, int]] = []
        stopped: list[Segment] = []
        duplicate = True
        for b in range(first, end):
            outcome = self.block_written(source, b)
            pieces += outcome.pieces
            cancels += outcome.cancels
            stopped += outcome.stopped
            duplicate = duplicate and outcome.duplicate
        return BlockOutcome(pieces, cancels, stopped, duplicate=duplicate and n > 0)

    def _after_foreign_write(self, seg: Segment, stopped: list[Segment]) -> None:
        """Another source wrote blocks inside ``seg``: shrink its tail, stop it when done."""
        st = self.storage
        first = st.block_of(seg.pos)
        e = st.block_ceil(seg.end)
        while e > first and st.is_block_done(e - 1):
            e -= 1
        new_end = max(seg.pos, st.block_start(e))
        if new_end < seg.end:
            seg.end = new_end
            self._epoch += 1  # the endgame pool offers the segment's new last piece
        for s in (seg, seg.twin):
            if s is not None and not s.finished:
                self._check_done(s)
            if s is not None and s.finished and s not in stopped:
                stopped.append(s)

    def unclaim(self, source: object, block: int) -> None:
        """``source`` will not fetch ``block`` after all (choked, rejected, timed out)."""
        info = self._sources.get(id(source))
        if info is None or block not in info.claims:
            return
        info.claims.discard(block)
        self._drop_claim(info.sid, block)
        self._epoch += 1

    def _drop_claim(self, sid: int, block: int) -> None:
        owner = self._owner
        if owner[block] == sid:
            lst = self._dups.get(block)
            if lst:
                owner[block] = lst.pop(0)
                if not lst:
                    del self._dups[block]
            else:
                owner[block] = 0
                self._free_block(block)
        else:
            lst = self._dups.get(block)
            if lst is not None and sid in lst:
                lst.remove(sid)
                if not lst:
                    del self._dups[block]

    def _free_block(self, b: int) -> None:
        """``b`` is held by nobody any more: free it if it is wanted and missing."""
        p = b // self._bpp
        if self._busy[b] and self._wanted[p] and not self.storage.is_block_done(b):
            if self._shadows:
                shadow = self._shadow_over(b)
                if shadow is not None:  # a range source racing it now holds it alone
                    self._owner[b] = -shadow.id
                    shadow._owns = True
                    return
            self._busy[b] = 0
            self._free[p] += 1
            self._total_free += 1
            self._reclass(p)

    def _shadow_over(self, b: int) -> Segment | None:
        st = self.storage
        for s in self._shadows:
            if not s.finished and st.block_of(s.pos) <= b < st.block_ceil(s.end):
                return s
        return None

    # --- blame and verification -------------------------------------------------------------

    def piece_failed(self, piece: int) -> frozenset[object]:
        """``piece`` failed its hash: clear it in storage, return the sources that wrote it.

        Those sources get this piece again only when no other source can fetch it.
        """
        self._check_sync()
        writers = self._writers.pop(piece, {})
        st = self.storage
        was_complete = st.pieces[piece]
        st.clear_piece(piece)
        if was_complete and self.is_wanted(piece):
            self._missing_wanted += 1
        if self._blocks_on:
            self._reopen_piece(piece)
        self._seen_len = st.completed_length
        if writers:
            self._blamed.setdefault(piece, set()).update(writers)
        for sid in writers:
            other = self._by_sid.get(sid)
            if other is not None:
                if other.cur == piece:
                    other.cur = -1
                other.wpiece = -1
        for seg in self.active:
            seg._wpiece = -1
        self._epoch += 1
        return frozenset(writers.values())

    def _reopen_piece(self, piece: int) -> None:
        """Block mode: the blocks of a cleared piece become free (or their segment's) again."""
        st = self.storage
        first = piece * self._bpp
        stop = first + self._nblk[piece]
        busy = self._busy
        owner = self._owner
        if self._wanted[piece]:
            for b in range(first, stop):
                if owner[b] == 0:
                    busy[b] = 0
            # blocks a peer wrote ahead inside a running segment go back to that segment
            for seg in self.active:
                if (seg._owns or seg in self._shadows) and not seg.finished:
                    lo = max(first, seg._marked_block)
                    hi = min(stop, st.block_ceil(seg.end))
                    for b in range(lo, hi):
                        if owner[b] == 0:
                            owner[b] = -seg.id
                            busy[b] = 1
                            seg._owns = True
        f = busy.count(0, first, stop)
        self._total_free += f - self._free[piece]
        self._free[piece] = f
        self._reclass(piece)

    def piece_verified(self, piece: int) -> None:
        """``piece`` passed its hash: forget who wrote it."""
        self._writers.pop(piece, None)
        self._blamed.pop(piece, None)

    def writers_of(self, piece: int) -> frozenset[object]:
        """Sources that wrote blocks of ``piece`` since it was last verified or failed."""
        return frozenset(self._writers.get(piece, {}).values())

    # --- range sources: segments ------------------------------------------------------------

    def next_segment(
        self,
        source: object = None,
        *,
        endgame: bool = True,
        eta_of: Callable[[Segment], float | None] | None = None,
        race_min_eta: float = 0.0,
        steal_min_eta: float = 0.0,
        have: Bitfield | None = None,
    ) -> Segment | None:
        """Return the next segment for a free connection of ``source``, or None.

        Args:
            source: the range source (registered on first use with ``have=None``).
            endgame: allow halving another segment's tail and racing it.
            eta_of: seconds a segment still needs (the endgame races the slowest); None when
                not known yet (a connection that has just started).
            race_min_eta: do not race a segment expected to end sooner than this.
            steal_min_eta: do not split or halve a segment expected to end sooner than this.
            have: pieces this source has (None: its registered bitfield, else all); runs
                stay inside them.

        None means there is nothing useful to do: the download is complete, or every remaining
        byte is already being fetched (and ``endgame`` is off or already raced).
        """
        self._prune()
        self._check_sync()
        info = self._info(source)
        if not self._missing():
            return None
        bits = info.have if have is None else _unpack(have)
        gaps = self._gaps_for(bits, info.sid)
        st = self.storage
        if gaps:
            a, b = self._prio_gap(gaps) or self._choose_gap(gaps)
            return self._new(st.block_start(a), st.block_start(b), info)
        ends_soon = _ends_within(eta_of, steal_min_eta)
        if self.allow_split:
            seg = self._split(info, bits, ends_soon)
            if seg is not None:
                return seg
        if endgame:
            return self._race(info, bits, eta_of, race_min_eta, ends_soon)
        return None

    def _gaps_for(self, bits: bytearray | None, sid: int) -> list[tuple[int, int]]:
        runs = self._free_runs()
        blamed = {p for p, sids in self._blamed.items() if sid in sids}
        if bits is None and not blamed:
            return runs
        bpp = self._bpp
        ok: list[tuple[int, int]] = []
        held: list[tuple[int, int]] = []  # runs over pieces this source was blamed for
        for a, b in runs:
            cur = a
            while cur < b:
                p = cur // bpp
                stop = min(b, (p + 1) * bpp)
                if bits is None or bits[p]:
                    dest = held if p in blamed else ok
                    if dest and dest[-1][1] == cur:
                        dest[-1] = (dest[-1][0], stop)
                    else:
                        dest.append((cur, stop))
                cur = stop
        if ok:
            return ok
        return [g for g in held if not self._someone_else(g[0] // bpp, sid)]

    def _prio_gap(self, gaps: list[tuple[int, int]]) -> tuple[int, int] | None:
        """The free run of the highest-priority piece that has one, cut to the run of
        prioritised pieces it starts (``--bt-prioritize-piece`` for range sources: a web seed
        fetches each file's head and tail first, as peers do), or None without priorities."""
        if not self._prio_list:
            return None
        bpp = self._bpp
        starts = [a for a, _ in gaps]
        for p in self._prio_list:
            lo, hi = p * bpp, (p + 1) * bpp
            i = bisect.bisect_right(starts, hi - 1) - 1
            if i < 0 or gaps[i][1] <= lo:
                continue
            a, b = gaps[i]
            start = max(a, lo)
            end = min(b, hi)
            while end < b and (end // bpp) in self._prio:
                end = min(b, end + bpp)
            return start, end
        return None

    def _choose_gap(self, gaps: list[tuple[int, int]]) -> tuple[int, int]:
        if self.selector == "inorder" or len(gaps) == 1:
            return gaps[0]
        if self.selector == "random":
            return self.rng.choice(gaps)
        if self.selector == "geom":
            # Skip ahead to the next gap with probability 1/3 each time: the head is most
            # likely, yet the tail still gets connections (aria2's geom selector, base 1.5).
            for gap in gaps[:-1]:
                if self.rng.random() < 2 / 3:
                    return gap
            return gaps[-1]
        return max(gaps, key=lambda g: (g[1] - g[0], -g[0]))

    def _covers(self, bits: bytearray | None, start: int, end: int) -> bool:
        if bits is None:
            return True
        pl = self.storage.piece_length
        return all(bits[p] for p in range(start // pl, (end - 1) // pl + 1))

    def _split(
        self, info: _Source, bits: bytearray | None, ends_soon: Callable[[Segment], bool]
    ) -> Segment | None:
        candidates = [
            s
            for s in self.active
            if s.twin is None and not s.finished and s._owns and not ends_soon(s)
        ]
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
            if not self._covers(bits, cut, seg.end):
                continue
            return self._cut(seg, cut, info)
        return None

    def _race(
        self,
        info: _Source,
        bits: bytearray | None,
        eta_of: Callable[[Segment], float | None] | None,
        min_eta: float,
        ends_soon: Callable[[Segment], bool],
    ) -> Segment | None:
        candidates = [
            s
            for s in self.active
            if s.twin is None and not s.finished and s._owns and self._covers(bits, s.pos, s.end)
        ]
        if not candidates:
            if self._blocks_on and self._total_free == 0:
                return self._help_peers(info, bits)
            return None

        def key(s: Segment) -> float:
            if eta_of is None:
                return float(s.remaining)
            return eta_of(s) or 0.0  # not known yet (just started): not raced

        slow = max(candidates, key=key)
        st = self.storage
        if slow.remaining > st.piece_length and not ends_soon(slow):
            # Below -k: halve the tail instead of duplicating it (no byte fetched twice).
            cut = st.block_start(st.block_of(slow.pos + slow.remaining // 2))
            if slow.pos < cut < slow.end:
                return self._cut(slow, cut, info)
        if eta_of is not None and key(slow) < min_eta:
            return None  # it will be done soon anyway; racing would only fetch bytes twice
        start = st.block_start(st.block_of(slow.pos))
        twin = self._new(start, slow.end, info, own=False)
        twin.twin, slow.twin = slow, twin
        return twin

    def _help_peers(self, info: _Source, bits: bytearray | None) -> Segment | None:
        """Endgame for a range source when peers hold every missing block: race the lowest
        run of them inside one piece (a web seed finishing a swarm's last blocks)."""
        st = self.storage
        owner = self._owner
        dups = self._dups
        maxd = self.max_duplicates
        raced = set(info.claims)  # never a block it holds already
        for s in self._shadows:
            if not s.finished:
                raced.update(range(st.block_of(s.pos), st.block_ceil(s.end)))

        def open_(b: int) -> bool:
            lst = dups.get(b)
            claimers = 1 + (len(lst) if lst is not None else 0)
            return owner[b] > 0 and b not in raced and claimers < maxd

        claimed = sorted({b for i in self._sources.values() for b in i.claims if owner[b] > 0})
        for b in claimed:
            p = b // self._bpp
            if (bits is not None and not bits[p]) or not open_(b):
                continue
            e = b + 1
            stop = p * self._bpp + self._nblk[p]
            while e < stop and open_(e):
                e += 1
            seg = self._new(st.block_start(b), st.block_start(e), info, own=False)
            self._shadows.append(seg)
            return seg
        return None

    def _new(self, start: int, end: int, info: _Source, *, own: bool = True) -> Segment:
        st = self.storage
        seg = Segment(self._next_id, start, end, start, info.obj, _owns=own, _sid=info.sid)
        seg._marked_block = st.block_of(start)
        self._next_id += 1
        self.active.append(seg)
        self._segs[seg.id] = seg
        if own and self._blocks_on:
            a = st.block_of(start)
            b = st.block_ceil(end)
            owner = self._owner
            busy = self._busy
            mark = -seg.id
            for blk in range(a, b):  # a gap: every block is free
                if not busy[blk]:
                    busy[blk] = 1
                    owner[blk] = mark
            self._recount(a, b)
        return seg

    def _cut(self, seg: Segment, cut: int, info: _Source) -> Segment:
        """Move ``[cut, seg.end)`` of ``seg`` to a new segment of ``info``."""
        st = self.storage
        new = Segment(self._next_id, cut, seg.end, cut, info.obj, _sid=info.sid)
        new._marked_block = st.block_of(cut)
        self._next_id += 1
        self.active.append(new)
        self._segs[new.id] = new
        if self._blocks_on:
            a = st.block_of(cut)
            b = st.block_ceil(seg.end)
            old_mark = -seg.id
            mark = -new.id
            owner = self._owner
            owner[a:b] = [mark if v == old_mark else v for v in owner[a:b]]
        seg.end = cut
        return new

    def _set_end(self, seg: Segment, end: int) -> None:
        """Shorten ``seg`` to end at ``end``; the blocks beyond become free again."""
        st = self.storage
        end = max(end, seg.pos)
        if end >= seg.end:
            return
        a = st.block_ceil(end)
        b = st.block_ceil(seg.end)
        seg.end = end
        if seg._owns and self._blocks_on:
            self._unown(seg, a, b)

    def _unown(self, seg: Segment, a: int, b: int) -> None:
        owner = self._owner
        busy = self._busy
        wanted = self._wanted
        bpp = self._bpp
        done = self.storage.is_block_done
        dups = self._dups
        mark = -seg.id
        for blk in range(a, b):
            if owner[blk] == mark:
                lst = dups.get(blk)
                if lst:  # a peer's endgame claim on it becomes the claim
                    owner[blk] = lst.pop(0)
                    if not lst:
                        del dups[blk]
                    continue
                owner[blk] = 0
                if wanted[blk // bpp] and not done(blk):
                    busy[blk] = 0
        self._recount(a, b)
        self._epoch += 1

    def _recount(self, a: int, b: int) -> None:
        """Recount free blocks of the pieces covering blocks ``[a, b)``."""
        if a >= b:
            return
        bpp = self._bpp
        busy = self._busy
        free = self._free
        for p in range(a // bpp, (b - 1) // bpp + 1):
            first = p * bpp
            f = busy.count(0, first, first + self._nblk[p])
            if f != free[p]:
                self._total_free += f - free[p]
                free[p] = f
                self._reclass(p)

    def extend(self, seg: Segment, limit: int) -> bool:
        """Let a connection whose response runs on past ``seg.end`` keep reading it.

        A response may cover more than its segment (the first request, made before the length
        was known, asks for the whole file; a split then shortened its segment).  When ``seg``
        is fully written and the free run of missing wanted blocks starts exactly at its end,
        ``seg`` grows over that run, up to ``limit`` (the end of what the response carries), so
        the connection goes on reading the same body instead of a new request.  aria2 does the
        same with a segment's next free neighbour.  True if ``seg`` grew.
        """
        self._prune()
        self._check_sync()
        st = self.storage
        limit = min(limit, st.total_length)
        if (
            seg.released
            or seg.twin is not None
            or seg.id not in self._segs
            or seg.pos < seg.end
            or seg.end >= limit
            or not st.is_block_boundary(seg.end)
        ):
            return False
        info = self._info(seg.source)
        start = st.block_of(seg.end)
        for a, b in self._gaps_for(info.have, info.sid):
            if a > start:
                break
            if a != start:
                continue
            end = min(st.block_start(b), limit)
            if end <= seg.end:
                return False
            if seg._owns and self._blocks_on:
                last = st.block_ceil(end)
                owner = self._owner
                busy = self._busy
                mark = -seg.id
                for blk in range(start, last):
                    if not busy[blk]:
                        busy[blk] = 1
                        owner[blk] = mark
                self._recount(start, last)
            seg.end = end
            self._epoch += 1
            return True
        return False

    def neighbour_pending(self, seg: Segment) -> bool:
        """Whether the segment right after ``seg`` has not received a byte yet (its connection
        is still asking); :meth:`extend` may succeed once that request fails and frees it."""
        return any(
            other is not seg and other.start == other.pos == seg.end and not other.finished
            for other in self.active
        )

    # --- range sources: progress ------------------------------------------------------------

    def advance(self, seg: Segment, nbytes: int) -> list[int]:
        """Record that ``nbytes`` more bytes of ``seg`` were written at ``seg.pos``.

        Returns the pieces this completed.  The caller must never write past ``seg.end``
        (which a split may have moved closer), so ``nbytes <= seg.remaining``.  CANCELs owed to
        peers whose endgame claims this write overtook are collected for :meth:`take_cancels`.
        """
        if nbytes > seg.remaining:
            raise ValueError("write past the segment end")
        seg.pos += nbytes
        st = self.storage
        upto = st.num_blocks if seg.pos >= st.total_length else st.block_of(seg.pos)
        done: list[int] = []
        a = seg._marked_block
        if upto > a:
            seg._marked_block = upto
            if self._blocks_on:
                done = self._write_run(seg, a, upto)
            else:  # range mode, inline: this runs once per read of every HTTP/FTP connection
                counted = not self._wanted_all
                if counted and st.completed_length != self._seen_len:
                    self._rebuild()
                done = st.mark_blocks(a, upto)
                if counted:
                    self._seen_len = st.completed_length
                if done or seg._wpiece != (upto - 1) // self._bpp:
                    self._written(seg, a, upto, done)
        if seg.twin is not None:  # only a twin can finish our bytes for us
            self._check_done(seg)
            self._check_done(seg.twin)
        elif not seg._owns:
            self._check_done(seg)
        return done

    def _write_run(self, seg: Segment, a: int, b: int) -> list[int]:
        st = self.storage
        if st.completed_length != self._seen_len:
            self._rebuild()
        if not self._blocks_on:
            done = st.mark_blocks(a, b)
            self._seen_len = st.completed_length
            return self._written(seg, a, b, done)
        owner = self._owner
        mark = -seg.id
        n = b - a
        # the common case: every block is this segment's (so none was written before)
        if owner[a] == mark if n == 1 else owner[a:b].count(mark) == n:
            if n == 1:
                owner[a] = 0
            else:
                owner[a:b] = [0] * n
            if self._dups:
                self._cancel_dups(a, b)
            done = st.mark_blocks(a, b)
            self._seen_len += st.span_length(a, b)
        else:
            self._write_foreign(seg, a, b)
            if self._dups:
                self._cancel_dups(a, b)
            done = st.mark_blocks(a, b)
            self._seen_len = st.completed_length
        return self._written(seg, a, b, done)

    def _written(self, seg: Segment, a: int, b: int, done: list[int]) -> list[int]:
        """Record ``seg``'s source as a writer of blocks ``[a, b)``; count completed pieces."""
        bpp = self._bpp
        last = (b - 1) // bpp
        if seg._wpiece != last:
            writers = self._writers
            for p in range(a // bpp, last + 1):
                if p == seg._wpiece:
                    continue
                w = writers.get(p)
                if w is None:
                    writers[p] = {seg._sid: seg.source}
                else:
                    w[seg._sid] = seg.source
            seg._wpiece = last
        if done:
            if self._wanted_all:
                self._missing_wanted -= len(done)
            else:
                wanted = self._wanted
                for p in done:
                    if wanted[p]:
                        self._missing_wanted -= 1
        return done

    def _write_foreign(self, seg: Segment, a: int, b: int) -> None:
        """A write over blocks not all held by ``seg`` (a twin, or peers' endgame claims)."""
        owner = self._owner
        busy = self._busy
        done = self.storage.is_block_done
        changed = False
        for blk in range(a, b):
            o = owner[blk]
            if o > 0:
                other = self._by_sid[o]
                other.claims.discard(blk)
                self._pending_cancels.append((other.obj, blk))
                owner[blk] = 0
            elif o < 0:
                owner[blk] = 0
            elif not busy[blk] and not done(blk):
                busy[blk] = 1
                changed = True
        if changed:
            self._recount(a, b)

    def _cancel_dups(self, a: int, b: int) -> None:
        dups = self._dups
        for blk in range(a, b):
            lst = dups.pop(blk, None)
            if lst is not None:
                for s in lst:
                    other = self._by_sid[s]
                    other.claims.discard(blk)
                    self._pending_cancels.append((other.obj, blk))

    def take_cancels(self) -> list[tuple[object, int]]:
        """CANCELs owed to peers because a range segment wrote their claimed blocks first."""
        out, self._pending_cancels = self._pending_cancels, []
        return out

    def _check_done(self, seg: Segment) -> None:
        if seg.finished:
            return
        st = self.storage
        first = st.block_of(seg.pos)
        end = st.block_ceil(seg.end)
        if first < end and st.blocks_done_in(first, end) == end - first:
            seg.released = True  # every remaining block was written by someone else

    def release(self, x: Segment | object) -> None:
        """Give work back: a finished/failed/cancelled segment, or everything a source holds."""
        if isinstance(x, Segment):
            self._release_seg(x)
            return
        info = self._sources.get(id(x))
        if info is not None:
            for b in list(info.claims):
                self._drop_claim(info.sid, b)
            info.claims.clear()
            info.cur = -1
        for seg in [s for s in self.active if s.source is x]:
            self._release_seg(seg)
        self._epoch += 1

    def _release_seg(self, seg: Segment) -> None:
        twin = seg.twin
        if not self._blocks_on:
            if twin is not None and not twin.finished:
                twin._owns = True
        elif seg._owns and seg.id in self._segs:
            st = self.storage
            a = seg._marked_block
            b = st.block_ceil(seg.end)
            if twin is not None and not twin.finished:
                mark = -twin.id
                old = -seg.id
                owner = self._owner
                owner[a:b] = [mark if v == old else v for v in owner[a:b]]
                twin._owns = True
            else:
                self._unown(seg, a, b)
        seg.released = True
        self._segs.pop(seg.id, None)
        if seg in self._shadows:
            self._shadows.remove(seg)
        if twin is not None:
            twin.twin = None
            seg.twin = None
        if seg in self.active:
            self.active.remove(seg)

    def _prune(self) -> None:
        for seg in self.active:
            if seg.released and seg.id in self._segs:
                self._release_seg(seg)
        self.active = [s for s in self.active if not s.released]


RangePicker = Picker

# --- --bt-prioritize-piece ----------------------------------------------------------------

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_prioritize_piece(value: str) -> tuple[int | None, int | None]:
    """Parse aria2's ``--bt-prioritize-piece=head[=SIZE],tail[=SIZE]`` (SIZE default 1M).

    Returns ``(head_bytes, tail_bytes)``, None where not given.
    """
    head: int | None = None
    tail: int | None = None
    for item in filter(None, (s.strip() for s in value.split(","))):
        name, _, size = item.partition("=")
        size = size.strip().upper()
        if size:
            unit = size[-1] if size[-1] in "KMG" else ""
            number = size[:-1] if unit else size
            if not number.isdigit():
                raise ValueError(f"bad size in --bt-prioritize-piece: {item!r}")
            nbytes = int(number) * _UNITS[unit]
        else:
            nbytes = 1 << 20
        if name == "head":
            head = nbytes
        elif name == "tail":
            tail = nbytes
        else:
            raise ValueError(f"--bt-prioritize-piece takes head and tail, not {name!r}")
    return head, tail


def head_tail_pieces(
    files: Iterable[tuple[int, int]], piece_length: int, head: int | None, tail: int | None
) -> set[int]:
    """Pieces holding the first ``head`` and last ``tail`` bytes of each ``(offset, length)``
    file (aria2 prioritises them so a player can open a file before it is complete)."""
    out: set[int] = set()
    for offset, length in files:
        if length <= 0:
            continue
        end = offset + length
        if head:
            out.update(
                range(offset // piece_length, (min(end, offset + head) - 1) // piece_length + 1)
            )
        if tail:
            start = max(offset, end - tail)
            out.update(range(start // piece_length, (end - 1) // piece_length + 1))
    return out
