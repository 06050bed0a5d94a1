"""A complete piece is settled: bytes written into it again (an endgame twin segment that is
behind, a late duplicate block from a peer, with or without the disk cache) are not stored, so
what was hash-checked is what stays on disk, and a verified piece cannot turn corrupt."""

from __future__ import annotations

import hashlib
import itertools
import random
from pathlib import Path

import pytest
import trio
import trio.testing

from trioaria.storage.session import PieceHashes, StorageSession

K = 1024


def _session(tmp_path: Path, data: bytes, piece: int, **kw: object) -> StorageSession:
    digests = tuple(hashlib.sha1(data[i : i + piece]).digest() for i in range(0, len(data), piece))
    return StorageSession(
        str(tmp_path / "d"),
        [("f.bin", len(data))],
        piece_length=piece,
        control_path=str(tmp_path / "d.aria2"),
        hashes=PieceHashes("sha-1", piece, digests),
        file_allocation="none",
        **kw,  # type: ignore[arg-type]
    )


def _bad_pieces(tmp_path: Path, data: bytes, piece: int) -> list[int]:
    on_disk = (tmp_path / "d" / "f.bin").read_bytes()
    return [
        p
        for p in range(len(data) // piece)
        if on_disk[p * piece : (p + 1) * piece] != data[p * piece : (p + 1) * piece]
    ]


async def _complete(s: StorageSession, nursery: trio.Nursery) -> None:
    with trio.fail_after(5):
        await s.wait_complete()
    nursery.cancel_scope.cancel()


async def _closed_and_intact(s: StorageSession, tmp_path: Path, data: bytes, piece: int) -> None:
    await s.finish()
    await s.close()
    assert s.hash_failures == 0
    assert _bad_pieces(tmp_path, data, piece) == []


async def test_a_twin_behind_does_not_rewrite_a_verified_piece(tmp_path: Path) -> None:
    piece = 64 * K
    data = random.Random(7).randbytes(3 * piece)
    corrupt = bytes(b ^ 1 for b in data)  # the second mirror serves other bytes
    s = _session(tmp_path, data, piece, min_split_size=piece)
    await s.open("new")
    async with trio.open_nursery() as nursery:
        await nursery.start(s.run)
        good = s.picker.next_segment("good")
        s.write_segment(good, memoryview(data[0 : 96 * K]))
        tail = s.picker.next_segment("tail")  # halves good's rest
        twin = s.picker.next_segment("bad")  # races good over [96K, 144K): pieces 1 and 2
        assert tail is not None and twin is not None and twin.twin is good
        assert (twin.start, twin.end) == (96 * K, 144 * K)
        s.write_segment(good, memoryview(data[96 * K : 128 * K]))  # piece 1 complete
        await trio.testing.wait_all_tasks_blocked()
        assert s.storage.verified[1]
        s.write_segment(twin, memoryview(corrupt[96 * K : 112 * K]))  # late, into piece 1
        s.write_segment(good, memoryview(data[128 * K : 144 * K]))
        s.write_segment(tail, memoryview(data[144 * K :]))
        await _complete(s, nursery)
    await _closed_and_intact(s, tmp_path, data, piece)


@pytest.mark.parametrize("disk_cache", [0, 256 * K])
@pytest.mark.parametrize("piece", [16 * K, 32 * K])
async def test_a_late_duplicate_block_is_not_stored(
    tmp_path: Path, disk_cache: int, piece: int
) -> None:
    """A peer's block for a complete piece (verified, or waiting for its check) is dropped, even
    inside a run of blocks that are stored: those land at their own offsets."""
    data = random.Random(3).randbytes(4 * piece)
    corrupt = bytes(b ^ 1 for b in data)
    s = _session(tmp_path, data, piece, disk_cache=disk_cache)
    await s.open("new")
    bl = s.storage.block_length
    blocks = [memoryview(data[i : i + bl]) for i in range(0, len(data), bl)]
    bad = [memoryview(corrupt[i : i + bl]) for i in range(0, len(data), bl)]
    per = piece // bl
    a, b = object(), object()
    s.picker.add_source(a, None)
    s.picker.add_source(b, None)
    async with trio.open_nursery() as nursery:
        await nursery.start(s.run)
        s.write_blocks(a, per, blocks[per : 2 * per])  # piece 1, verified on arrival
        await trio.testing.wait_all_tasks_blocked()
        assert s.storage.verified[1]
        s.write_block(b, per, bad[per])  # a late duplicate with other bytes
        # one read: piece 0, piece 1 again (other bytes), piece 2
        s.write_blocks(b, 0, [*blocks[:per], *bad[per : 2 * per], *blocks[2 * per : 3 * per]])
        s.write_blocks(a, 3 * per, blocks[3 * per :])
        await _complete(s, nursery)
    await _closed_and_intact(s, tmp_path, data, piece)


async def test_a_write_while_the_piece_is_checked_is_not_stored(tmp_path: Path) -> None:
    """Blocks that land out of order are hashed whole once the piece is complete (a worker
    thread reads the disk); a repeat written meanwhile must not change what is checked."""
    piece = 64 * K
    data = random.Random(5).randbytes(2 * piece)
    corrupt = bytes(b ^ 1 for b in data)
    s = _session(tmp_path, data, piece)
    await s.open("new")
    bl = s.storage.block_length
    blocks = [memoryview(data[i : i + bl]) for i in range(0, len(data), bl)]
    a = object()
    s.picker.add_source(a, None)
    async with trio.open_nursery() as nursery:
        await nursery.start(s.run)
        for i in (3, 2, 1, 0):  # backwards: no hash on arrival
            s.write_block(a, i, blocks[i])
        assert s.storage.pieces[0] and not s.storage.verified[0]  # queued for its check
        s.write_block(a, 1, memoryview(corrupt[bl : 2 * bl]))  # before the hasher runs
        s.write_blocks(a, 4, blocks[4:])
        await _complete(s, nursery)
    await _closed_and_intact(s, tmp_path, data, piece)


def test_spans_in_units_against_a_byte_model() -> None:
    """``spans_in_units`` keeps exactly the positions whose unit is kept, merged into runs."""
    from hypothesis import given
    from hypothesis import strategies as st

    from trioaria.storage.pieces import spans_in_units

    @given(
        st.lists(st.tuples(st.integers(0, 200), st.integers(0, 30)), max_size=6),
        st.integers(1, 17),
        st.sets(st.integers(0, 20)),
    )
    def check(raw: list[tuple[int, int]], unit: int, kept: set[int]) -> None:
        spans, end = [], 0
        for start, size in sorted(raw):
            start = max(start, end)
            spans.append((start, start + size))
            end = start + size
        got = spans_in_units(spans, unit, kept.__contains__)
        positions = {x for a, b in spans for x in range(a, b) if x // unit in kept}
        assert {x for a, b in got for x in range(a, b)} == positions
        assert all(a < b for a, b in got)
        assert all(b1 < a2 for (_, b1), (a2, _) in itertools.pairwise(got))

    check()
