"""StorageSession: one download's layout, pieces, disk, picker, hashes and control file.

Driven directly (no network): segments come from the session's own picker, bytes are written
with ``write_segment`` as a range-source connection does, and the files and control files on
disk are checked byte for byte.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import trio

from trioaria.base.errors import ResumeFileError
from trioaria.storage import control_file as cf
from trioaria.storage.layout import FileEntry
from trioaria.storage.session import PieceHashes, StorageSession

PIECE = 64 * 1024


def _data(n: int, seed: int = 0) -> bytes:
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}/{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def _session(tmp_path: Path, files, **kw) -> StorageSession:
    kw.setdefault("piece_length", PIECE)
    kw.setdefault("min_split_size", PIECE)
    return StorageSession(str(tmp_path / "d"), files, control_path=str(tmp_path / "d.aria2"), **kw)


def _fill(session: StorageSession, data: bytes, source: object = "mirror", *, limit: int = 10**9):
    """Write every segment the picker hands out with ``data``'s bytes (what a mirror sends)."""
    written = 0
    for _ in range(1000):
        seg = session.picker.next_segment(source, endgame=False)
        if seg is None:
            return
        while not seg.finished and written < limit:
            n = min(seg.end - seg.pos, 20_000)
            session.write_segment(seg, memoryview(data[seg.pos : seg.pos + n]))
            written += n
        session.picker.release(seg)
        if written >= limit:
            return
    raise AssertionError("the picker never ran out of segments")


async def _peer_session(
    tmp_path: Path, name: str, data: bytes, *, disk_cache: int = 0
) -> tuple[StorageSession, object]:
    """An opened session over ``data`` with its SHA-1 piece hashes, and one registered peer."""
    digests = tuple(hashlib.sha1(data[i : i + PIECE]).digest() for i in range(0, len(data), PIECE))
    session = _session(
        tmp_path,
        [(name, len(data))],
        hashes=PieceHashes("sha-1", PIECE, digests),
        disk_cache=disk_cache,
    )
    await session.open("new")
    peer = object()
    session.picker.add_source(peer, None)
    return session, peer


def _forbid_thread_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the worker-thread hashers fail: every piece must be hashed on arrival."""
    from trioaria.storage import session as session_mod

    def no_thread_hash(*_args: object) -> bytes:
        raise AssertionError("a piece hashed on arrival was hashed again")

    monkeypatch.setattr(session_mod, "_hash_on_own_fds", no_thread_hash)
    monkeypatch.setattr(session_mod, "_digest", no_thread_hash)


async def test_multi_file_layout_writes_every_file(tmp_path: Path) -> None:
    data = _data(300_000)
    files = [("a/one.bin", 100_000), ("b/two.bin", 0), ("three.bin", 200_000)]
    session = _session(tmp_path, files)
    await session.open("new")
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        _fill(session, data)
        assert session.is_complete()
        nursery.cancel_scope.cancel()
    await session.finish()
    await session.close()
    d = tmp_path / "d"
    assert (d / "a/one.bin").read_bytes() == data[:100_000]
    assert (d / "b/two.bin").read_bytes() == b""
    assert (d / "three.bin").read_bytes() == data[100_000:]
    assert not (tmp_path / "d.aria2").exists()


async def test_unselected_files_are_never_created_and_their_pieces_not_wanted(
    tmp_path: Path,
) -> None:
    files = [
        FileEntry("x.bin", 4 * PIECE, 0, selected=False),
        FileEntry("y.bin", 2 * PIECE, 0, selected=True),
    ]
    session = _session(tmp_path, files)
    assert list(session.wanted.iter_set()) == [4, 5]
    await session.open("new")
    await session.allocate()
    assert not (tmp_path / "d" / "x.bin").exists()
    assert (tmp_path / "d" / "y.bin").exists()
    await session.close()


async def test_control_file_carries_the_bittorrent_bit_and_info_hash(tmp_path: Path) -> None:
    info_hash = bytes(range(20))
    data = _data(5 * PIECE)
    session = _session(tmp_path, [("t.bin", len(data))], info_hash=info_hash)
    await session.open("new")
    _fill(session, data, limit=2 * PIECE)
    await session.close()  # unfinished: the final save
    control = cf.parse((tmp_path / "d.aria2").read_bytes())
    assert control.bittorrent and control.info_hash == info_hash
    assert cf.completed_length(control) == 2 * PIECE

    # the same torrent resumes; another info hash is refused (aria2's check)
    again = _session(tmp_path, [("t.bin", len(data))], info_hash=info_hash)
    assert await again.open("resume")
    assert again.completed_length == 2 * PIECE
    await again.close()
    other = _session(tmp_path, [("t.bin", len(data))], info_hash=bytes(20))
    with pytest.raises(ResumeFileError, match="info hash mismatch"):
        await other.open("resume")


async def test_piece_hashes_verify_blame_and_refetch(tmp_path: Path) -> None:
    data = _data(4 * PIECE + 1000)
    digests = tuple(hashlib.sha1(data[i : i + PIECE]).digest() for i in range(0, len(data), PIECE))
    failed: list[tuple[int, frozenset[object]]] = []
    session = _session(
        tmp_path,
        [("h.bin", len(data))],
        hashes=PieceHashes("sha-1", PIECE, digests),
        on_piece_failed=lambda piece, blamed: failed.append((piece, blamed)),
    )
    await session.open("new")
    bad = bytearray(data)
    bad[2 * PIECE + 5] ^= 0xFF  # the liar corrupts piece 2
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        _fill(session, bytes(bad), source="liar")
        # written is not complete: completion waits for the hashes
        with trio.fail_after(10):
            while not failed:
                await trio.sleep(0.01)
        assert failed == [(2, frozenset({"liar"}))]
        assert not session.is_complete()
        assert session.storage.piece_state(2) == "missing"
        assert session.storage.piece_state(1) == "verified"
        _fill(session, data, source="honest")  # only piece 2 is handed out again
        with trio.fail_after(10):
            await session.wait_complete()
        nursery.cancel_scope.cancel()
    await session.finish()
    await session.close()
    assert (tmp_path / "d" / "h.bin").read_bytes() == data
    assert session.hash_failures == 1


async def test_unverified_pieces_are_not_saved_as_done_and_are_hashed_on_resume(
    tmp_path: Path,
) -> None:
    data = _data(3 * PIECE)
    digests = tuple(hashlib.sha1(data[i : i + PIECE]).digest() for i in range(0, len(data), PIECE))
    hashes = PieceHashes("sha-1", PIECE, digests)
    session = _session(tmp_path, [("r.bin", len(data))], hashes=hashes)
    await session.open("new")
    # written, never hashed: no hasher runs, and hash on arrival is off (it would verify them)
    session._feed = lambda offset, data: False  # type: ignore[method-assign]
    _fill(session, data, limit=2 * PIECE)
    await session.close()
    control = cf.parse((tmp_path / "d.aria2").read_bytes())
    assert not any(control.piece_done(i) for i in range(3))
    assert sorted(p.index for p in control.in_flight) == [0, 1]

    again = _session(tmp_path, [("r.bin", len(data))], hashes=hashes)
    await again.open("resume")
    async with trio.open_nursery() as nursery:
        await nursery.start(again.run)
        with trio.fail_after(10):
            while again.storage.verified.count() < 2:
                await trio.sleep(0.01)
        _fill(again, data)
        with trio.fail_after(10):
            await again.wait_complete()
        nursery.cancel_scope.cancel()
    await again.finish()
    await again.close()
    assert (tmp_path / "d" / "r.bin").read_bytes() == data


async def test_auto_save_writes_the_control_file_while_data_flows(tmp_path: Path) -> None:
    data = _data(4 * PIECE)
    session = _session(tmp_path, [("s.bin", len(data))], auto_save_interval=0.05)
    await session.open("new")
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        _fill(session, data, limit=PIECE)
        path = tmp_path / "d.aria2"
        with trio.fail_after(10):
            while not path.exists() or cf.completed_length(cf.parse(path.read_bytes())) < PIECE:
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    await session.close()
    assert os.path.getsize(tmp_path / "d" / "s.bin") >= PIECE


async def test_disk_cache_holds_peer_blocks_and_the_control_file_never_claims_them(
    tmp_path: Path,
) -> None:
    """--disk-cache: a peer's blocks that cannot be hashed on arrival (here: each piece's
    blocks arrive last first) stay in memory until the cache is full or a save; a complete
    piece is hashed from the cache; a save flushes first, so what the control file marks done
    is always on disk."""
    data = _data(8 * PIECE)
    digests = tuple(hashlib.sha1(data[i : i + PIECE]).digest() for i in range(0, len(data), PIECE))
    session = _session(
        tmp_path,
        [("c.bin", len(data))],
        hashes=PieceHashes("sha-1", PIECE, digests),
        disk_cache=3 * PIECE,
    )
    await session.open("new")
    path = tmp_path / "d" / "c.bin"
    peer = object()
    session.picker.add_source(peer, None)
    bl = session.storage.block_length
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        blocks = session.picker.claim_blocks(peer, 2 * PIECE // bl)
        assert len(blocks) == 2 * PIECE // bl
        for block in sorted(blocks, reverse=True):
            session.write_block(peer, block, data[block * bl : (block + 1) * bl])
        assert os.path.getsize(path) == 0  # everything still in the cache
        with trio.fail_after(10):  # hashed from the cache
            while session.storage.verified.count() < 2:
                await trio.sleep(0.01)
        await session.save(force=True)
        on_disk = path.read_bytes()
        for block in blocks:  # flushed before the save
            assert on_disk[block * bl : (block + 1) * bl] == data[block * bl : (block + 1) * bl]
        control = cf.parse((tmp_path / "d.aria2").read_bytes())
        assert cf.completed_length(control) == 2 * PIECE
        assert all(control.piece_done(b * bl // PIECE) for b in blocks)
        # past the cache size the blocks go to disk in offset order
        for _ in range(100):
            blocks = session.picker.claim_blocks(peer, 16)
            if not blocks:
                break
            for block in sorted(blocks, reverse=True):
                session.write_block(peer, block, data[block * bl : (block + 1) * bl])
        with trio.fail_after(10):
            await session.wait_complete()
        nursery.cancel_scope.cancel()
    await session.finish()
    await session.close()
    assert path.read_bytes() == data


@pytest.mark.parametrize("disk_cache", [0, 3 * PIECE])
async def test_blocks_in_order_are_hashed_on_arrival(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, disk_cache: int
) -> None:
    """Blocks that arrive in order are hashed as they are stored: the piece is verified with
    no read-back and no hasher thread, and (with a disk cache) written at once."""
    _forbid_thread_hashing(monkeypatch)
    data = _data(4 * PIECE + 5000)  # a short last piece
    session, peer = await _peer_session(tmp_path, "o.bin", data, disk_cache=disk_cache)
    bl = session.storage.block_length
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        blocks = session.picker.claim_blocks(peer, 1000)
        assert sorted(blocks) == list(range(session.storage.num_blocks))
        blocks.sort()
        # in runs of three, as a peer's reads hand them over
        for i in range(0, len(blocks), 3):
            run = blocks[i : i + 3]
            session.write_blocks(
                peer, run[0], [memoryview(data[b * bl : (b + 1) * bl]) for b in run]
            )
        assert (tmp_path / "d" / "o.bin").read_bytes() == data  # written through, no cache
        with trio.fail_after(10):
            await session.wait_complete()
        nursery.cancel_scope.cancel()
    assert session.storage.verified.count() == session.storage.num_pieces
    await session.finish()
    await session.close()


@pytest.mark.parametrize("disk_cache", [0, 3 * PIECE])
async def test_blocks_a_little_out_of_order_are_still_hashed_on_arrival(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, disk_cache: int
) -> None:
    """A peer answers its pipeline a little out of order (libtorrent's disk threads do): a
    block ahead of the running hash is kept until the ones before it land."""
    _forbid_thread_hashing(monkeypatch)
    data = _data(3 * PIECE + 3000)
    session, peer = await _peer_session(tmp_path, "r.bin", data, disk_cache=disk_cache)
    st = session.storage
    bl = st.block_length
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        session.picker.claim_blocks(peer, 1000)
        for piece in range(st.num_pieces):
            rng = list(st.piece_blocks(piece))
            # the second block first, the piece's last block before the one ahead of it
            order = [rng[0], *rng[2:], rng[1]] if len(rng) > 2 else rng[::-1]
            for b in order:
                session.write_block(peer, b, data[b * bl : (b + 1) * bl])
        with trio.fail_after(10):
            await session.wait_complete()
        nursery.cancel_scope.cancel()
    assert session._ahead_bytes == 0  # every copy kept ahead was used and dropped
    await session.finish()
    await session.close()
    assert (tmp_path / "d" / "r.bin").read_bytes() == data


async def test_a_block_stored_out_of_order_is_hashed_as_stored(tmp_path: Path) -> None:
    """A running hash never vouches for bytes it did not see: a block written again after the
    hash went past it (a lying duplicate) makes the piece hashed from disk, and it fails; a
    piece that arrives out of order is hashed whole and passes."""
    data = _data(3 * PIECE)
    session, peer = await _peer_session(tmp_path, "x.bin", data)
    failed: list[int] = []
    session._on_piece_failed = lambda piece, blamed: failed.append(piece)
    st = session.storage
    bl = st.block_length
    per = PIECE // bl
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        session.picker.claim_blocks(peer, 1000)
        # piece 0: in order, but its first block is written again with other bytes before the
        # last block lands: the disk holds the bad copy, so the piece must fail
        for b in range(per - 1):
            session.write_block(peer, b, data[b * bl : (b + 1) * bl])
        session.disk.write(0, b"\0" * bl)  # what a second writer stored ...
        session._feed(0, memoryview(b"\0" * bl))  # ... through the session's write path
        session.write_block(peer, per - 1, data[(per - 1) * bl : per * bl])
        # piece 1: last block first, then the rest: no running hash, hashed from disk
        order = [2 * per - 1, *range(per, 2 * per - 1)]
        for b in order:
            session.write_block(peer, b, data[b * bl : (b + 1) * bl])
        with trio.fail_after(10):
            while not (failed and st.verified[1]):
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert failed == [0]
    assert not st.verified[0] and st.verified[1]
    await session.close()


async def test_read_sees_blocks_still_in_the_disk_cache(tmp_path: Path) -> None:
    """A peer uploading a piece that is verified but not flushed reads the cached bytes."""
    data = _data(4 * PIECE)
    session = _session(tmp_path, [("u.bin", len(data))], disk_cache=8 * PIECE)
    await session.open("new")
    peer = object()
    session.picker.add_source(peer, None)
    bl = session.storage.block_length
    blocks = session.picker.claim_blocks(peer, 4)
    for block in blocks:
        session.write_block(peer, block, data[block * bl : (block + 1) * bl])
    assert os.path.getsize(tmp_path / "d" / "u.bin") == 0  # nothing flushed yet
    first = min(blocks)
    got = session.read(first * bl + 100, 2 * bl)
    want = bytearray(data[first * bl + 100 : first * bl + 100 + 2 * bl])
    for i in range(len(want)):  # blocks not written read as zeros
        if (first * bl + 100 + i) // bl not in blocks:
            want[i] = 0
    assert got == bytes(want)
    await session.close()


async def test_verified_pieces_are_reported_and_can_be_marked_after_a_recheck(
    tmp_path: Path,
) -> None:
    data = _data(3 * PIECE)
    digests = tuple(hashlib.sha1(data[i : i + PIECE]).digest() for i in range(0, len(data), PIECE))
    seen: list[int] = []
    session = _session(
        tmp_path,
        [("v.bin", len(data))],
        hashes=PieceHashes("sha-1", PIECE, digests),
        on_piece_verified=seen.append,
    )
    await session.open("new")
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        _fill(session, data, limit=PIECE)
        with trio.fail_after(10):
            while not seen:
                await trio.sleep(0.01)
        assert seen == [0]
        # a -V style recheck found the other two pieces already good on disk
        session.mark_verified_pieces([1, 2])
        assert session.is_complete()
        with trio.fail_after(1):
            await session.wait_complete()
        nursery.cancel_scope.cancel()
    assert sorted(seen) == [0, 1, 2]
    await session.close()


@pytest.mark.parametrize("disk_cache", [0, 3 * PIECE])
async def test_write_blocks_runs_land_like_single_blocks(tmp_path: Path, disk_cache: int) -> None:
    """A peer's runs of consecutive blocks (one ``pwritev``, or copies into the cache, then one
    picker call) write, mark and verify exactly what block-by-block writes do."""
    data = _data(4 * PIECE + 5000)  # a short last block
    session, peer = await _peer_session(tmp_path, "r.bin", data, disk_cache=disk_cache)
    bl = session.storage.block_length
    view = memoryview(data)
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        blocks = sorted(session.picker.claim_blocks(peer, 100))
        assert blocks == list(range(session.storage.num_blocks))
        # runs of 1, 3, 7, ... blocks, crossing piece boundaries, the last one short
        pos, size, pieces = 0, 1, []
        while pos < len(blocks):
            run = blocks[pos : pos + size]
            chunks = [view[b * bl : (b + 1) * bl] for b in run]
            outcome = session.write_blocks(peer, run[0], chunks)
            assert not outcome.duplicate and not outcome.cancels
            pieces += outcome.pieces
            pos, size = pos + size, size * 2 + 1
        assert pieces == list(range(session.storage.num_pieces))
        assert session.write_blocks(peer, 0, [view[:bl]]).duplicate
        with trio.fail_after(10):
            await session.wait_complete()
        nursery.cancel_scope.cancel()
    assert session.hash_failures == 0
    await session.finish()
    await session.close()
    assert (tmp_path / "d" / "r.bin").read_bytes() == data
