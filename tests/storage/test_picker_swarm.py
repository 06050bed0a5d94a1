"""A simulated swarm on the pure picker: virtual time, no sockets, no sleeping.

50 peers with random partial bitfields and different speeds (a few very slow ones) plus one HTTP
mirror range source with ``-k 1M`` download a 32 MiB file through one :class:`Picker`.  A
discrete-event loop (a heap of ``(time, seq, actor)``) advances virtual time: a peer writes the
head of its request queue every ``1 / rate`` seconds and refills its pipeline; the mirror writes
64 KiB of its segment per tick and asks for the next segment when one ends.  Measured:

* rarest first: the pieces peers start early are rarer than the ones they start late;
* the mirror fills long contiguous runs (bytes in runs of at least ``-k``);
* no long tail: the download finishes shortly after the last block was first handed out, far
  sooner than without endgame duplicates (``max_duplicates=1``), where the slowest peer's queue
  holds up the finish.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field

from trioaria.storage.bitfield import Bitfield
from trioaria.storage.picker import Picker, Segment
from trioaria.storage.pieces import BLOCK_LENGTH, PieceStorage

MiB = 1 << 20
TOTAL = 32 * MiB
PIECE = 256 * 1024
K = MiB
PIPELINE = 4
MIRROR_RATE = 4 * MiB  # bytes per virtual second
MIRROR_CHUNK = 64 * 1024


@dataclass
class Peer:
    name: str
    have: Bitfield
    rate: float  # blocks per virtual second
    queue: deque[int] = field(default_factory=deque)


@dataclass
class Result:
    finish: float
    last_new_claim: float
    writes_after_last_new: int
    first_claims: list[tuple[int, int]]  # (piece, availability) in the order peers started them
    mirror_runs: list[int]  # bytes the mirror wrote per segment
    peer_bytes: int
    mirror_bytes: int
    events: int
    duplicates: int


def simulate(seed: int = 7, *, max_duplicates: int = 2, selector: str = "default") -> Result:
    rng = random.Random(seed)
    storage = PieceStorage(TOTAL, PIECE)
    n = storage.num_pieces
    picker = Picker(
        storage,
        min_split_size=K,
        selector=selector,
        rng=random.Random(seed),
        max_duplicates=max_duplicates,
    )
    peers: list[Peer] = []
    for i in range(50):
        density = rng.uniform(0.05, 0.6)
        bf = Bitfield(n)
        for p in range(n):
            if rng.random() < density:
                bf.set(p)
        rate = 0.5 if i % 10 == 0 else rng.uniform(4, 40)  # every tenth peer is very slow
        peers.append(Peer(f"peer{i}", bf, rate))
        picker.add_source(peers[-1].name, bf)
    by_name = {p.name: p for p in peers}
    mirror = "http-mirror"

    handed = bytearray(storage.num_blocks)  # blocks handed out at least once
    started = bytearray(n)
    first_claims: list[tuple[int, int]] = []
    mirror_runs: list[int] = []
    last_new = 0.0
    writes_after = 0
    peer_bytes = mirror_bytes = dups = 0
    seg: Segment | None = None
    seg_start_pos = 0

    heap: list[tuple[float, int, str]] = []
    seq = 0

    def push(t: float, who: str) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (t, seq, who))

    def hand_out(blocks: list[int] | range, now: float) -> None:
        nonlocal last_new, writes_after
        for b in blocks:
            if not handed[b]:
                handed[b] = 1
                last_new = now
                writes_after = 0

    def drop(cancels: list[tuple[object, int]]) -> None:
        for source, b in cancels:
            q = by_name[str(source)].queue
            if b in q:
                q.remove(b)

    def refill(peer: Peer, now: float) -> None:
        nonlocal dups
        want = PIPELINE - len(peer.queue)
        if want <= 0:
            return
        endgame = picker.in_endgame
        got = picker.claim_blocks(peer.name, want)
        if endgame or picker.in_endgame:
            dups += sum(1 for b in got if handed[b])
        for b in got:
            p = b // storage.blocks_per_piece
            if not started[p]:
                started[p] = 1
                first_claims.append((p, picker.availability(p)))
        hand_out(got, now)
        peer.queue.extend(got)

    for i, peer in enumerate(peers):
        push(0.001 * i, peer.name)
    push(0.0, mirror)
    events = 0
    now = 0.0
    while heap and not picker.is_complete():
        events += 1
        assert events < 500_000, "the simulation does not finish"
        now, _, who = heapq.heappop(heap)
        if who == mirror:
            if seg is not None and seg.finished:
                mirror_runs.append(seg.pos - seg_start_pos)
                picker.release(seg)
                seg = None
            if seg is None:
                seg = picker.next_segment(mirror)
                if seg is None:
                    push(now + 0.01, mirror)  # nothing to do now: look again later
                    continue
                seg_start_pos = seg.pos
            step = min(MIRROR_CHUNK, seg.remaining)
            # a segment reserves a run; its blocks count as taken up when the mirror reads them
            hand_out(range(seg.pos // BLOCK_LENGTH, -(-(seg.pos + step) // BLOCK_LENGTH)), now)
            picker.advance(seg, step)
            mirror_bytes += step
            writes_after += 1
            drop(picker.take_cancels())
            push(now + step / MIRROR_RATE, mirror)
            continue
        peer = by_name[who]
        if peer.queue:
            b = peer.queue.popleft()
            out = picker.block_written(peer.name, b)
            if not out.duplicate:
                peer_bytes += BLOCK_LENGTH
                writes_after += 1
            drop(out.cancels)
        refill(peer, now)
        push(now + (1 / peer.rate if peer.queue else 0.01), who)
    assert picker.is_complete()
    if seg is not None:
        mirror_runs.append(seg.pos - seg_start_pos)
    return Result(
        now,
        last_new,
        writes_after,
        first_claims,
        mirror_runs,
        peer_bytes,
        mirror_bytes,
        events,
        dups,
    )


def _mean(xs: list[int]) -> float:
    return sum(xs) / len(xs)


def _spearman(values: list[int]) -> float:
    """Rank correlation between position in the list and value."""
    m = len(values)
    order = sorted(range(m), key=lambda i: (values[i], i))
    rank = [0] * m
    for r, i in enumerate(order):
        rank[i] = r
    return 1 - 6 * sum((i - rank[i]) ** 2 for i in range(m)) / (m * (m * m - 1))


def test_swarm_fetches_rarest_pieces_first_from_peers() -> None:
    r = simulate()
    avail = [a for _, a in r.first_claims]
    assert len(avail) >= 40, "peers started too few pieces to measure"
    quarter = len(avail) // 4
    early, late = _mean(avail[:quarter]), _mean(avail[-quarter:])
    assert early < late * 0.85, (early, late)
    # the order peers start pieces in follows availability; a random order does not
    rarest = _spearman(avail)
    shuffled = _spearman([a for _, a in simulate(selector="random").first_claims])
    assert rarest > 0.3 and rarest > shuffled + 0.3, (rarest, shuffled)


def test_swarm_mirror_fills_long_contiguous_runs() -> None:
    r = simulate()
    assert r.mirror_bytes > TOTAL // 10, "the mirror took part"
    assert r.peer_bytes > TOTAL // 10, "the peers took part"
    long_bytes = sum(x for x in r.mirror_runs if x >= K)
    # the first run is long (peers cut it only into halves of at least -k); what follows are
    # the gaps the peers left, some shorter than -k
    assert long_bytes >= 0.7 * sum(r.mirror_runs), sorted(r.mirror_runs)
    assert sum(x * x for x in r.mirror_runs) / sum(r.mirror_runs) >= 2 * K


def test_swarm_finishes_without_a_long_tail() -> None:
    with_endgame = simulate()
    without = simulate(max_duplicates=1)
    tail = with_endgame.finish - with_endgame.last_new_claim
    slow_tail = without.finish - without.last_new_claim
    assert with_endgame.duplicates > 0
    # a very slow peer needs 2 s per block: without duplicates its queue holds up the finish
    assert slow_tail >= 2.0, slow_tail
    assert tail <= 1.0, tail
    # bounded in steps too: after the last new claim, at most the blocks then in flight
    # (50 peers x pipeline + the mirror's segment) are written
    assert with_endgame.writes_after_last_new <= 50 * PIPELINE + K // MIRROR_CHUNK


def test_swarm_is_deterministic() -> None:
    a, b = simulate(3), simulate(3)
    assert (a.finish, a.first_claims, a.mirror_runs) == (b.finish, b.first_claims, b.mirror_runs)
