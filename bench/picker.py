"""Bench: the block-claim picker alone (issue 9: 10**6 claim/write calls in <= 5 s CPU).

A 4 GiB torrent with 256 KiB pieces (262,144 blocks of 16 KiB) and 200 peers: 20 seeds and 180
peers with random bitfields (density 5-95 %).  Each step picks a random peer; it writes the
oldest block it holds (``block_written``), now and then is choked (``unclaim`` of everything it
holds) or announces a piece (``source_has``), and refills its request pipeline
(``claim_blocks``).  When the download completes a new one starts, until 10**6 calls were made.
Prints CPU seconds of the calls alone (peer registration is reported apart).

    python3 bench/picker.py [--calls N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trioaria.storage.bitfield import Bitfield
from trioaria.storage.picker import Picker
from trioaria.storage.pieces import PieceStorage

TOTAL = 4 << 30
PIECE = 256 << 10
PEERS = 200
SEEDS = 20
PIPELINE = (4, 16)  # each peer keeps this many requests outstanding (random per peer)


def _bitfield(rng: random.Random, n: int, density: float) -> Bitfield:
    bits = bytearray((n + 7) // 8)
    for i in range(n):
        if rng.random() < density:
            bits[i >> 3] |= 0x80 >> (i & 7)
    return Bitfield.from_bytes(bytes(bits), n)


def run(calls: int, seed: int) -> None:
    rng = random.Random(seed)
    n = TOTAL // PIECE
    fields = [_bitfield(rng, n, rng.uniform(0.05, 0.95)) for _ in range(PEERS - SEEDS)]
    full = Bitfield.from_bytes(b"\xff" * (n // 8), n)
    peers = list(range(PEERS))
    depth = {p: rng.randint(*PIPELINE) for p in peers}
    made = downloads = blocks = empty = endgame_dups = 0
    setup = work = 0.0
    while made < calls:
        t0 = time.process_time()
        storage = PieceStorage(TOTAL, PIECE)
        picker = Picker(storage, min_split_size=1 << 20, rng=random.Random(seed + downloads))
        for p in peers:
            picker.add_source(p, full if p < SEEDS else fields[p - SEEDS])
        t1 = time.process_time()
        setup += t1 - t0
        held: dict[int, deque[int]] = {p: deque() for p in peers}
        done = False
        while made < calls and not done:
            # random draws in bulk: the harness should cost little next to the picker
            for p, r in zip(
                rng.choices(peers, k=4096), [rng.random() for _ in range(4096)], strict=True
            ):
                q = held[p]
                if q and r < 0.002:  # choked: everything it holds goes back
                    for b in q:
                        picker.unclaim(p, b)
                        made += 1
                    q.clear()
                elif q:
                    out = picker.block_written(p, q.popleft())
                    made += 1
                    blocks += 1
                    for other, b in out.cancels:
                        held[other].remove(b)  # type: ignore[index]
                    if out.pieces and picker.is_complete():
                        done = True
                        break
                if r > 0.999 and p >= SEEDS:
                    picker.source_has(p, int(r * 1e7) % n)
                    made += 1
                want = depth[p] - len(q)
                if want > 0:
                    got = picker.claim_blocks(p, want)
                    made += 1
                    if not got:
                        empty += 1
                    elif picker.in_endgame:
                        endgame_dups += len(got)
                    q.extend(got)
                if made >= calls:
                    break
        work += time.process_time() - t1
        downloads += picker.is_complete()
    print(
        f"picker bench: {made} calls ({blocks} blocks written, {empty} empty claims,"
        f" {endgame_dups} endgame claims), {downloads} downloads completed"
    )
    print(f"  CPU {work:.2f} s for the calls ({work / made * 1e6:.2f} us/call);")
    print(f"  CPU {setup:.2f} s registering {PEERS} peers x {downloads + 1} downloads")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10**6)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    run(args.calls, args.seed)


if __name__ == "__main__":
    main()
