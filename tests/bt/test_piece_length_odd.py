"""Piece lengths that are not a multiple of 16 KiB (issue 10): aria2 and libtorrent accept any.

Every piece is cut into 16 KiB blocks from its own start, its last block shorter: with pieces of
3 x 16 KiB + 1 bytes (49153) a piece is four blocks, the fourth one byte long, and the file's
length is a prime number of bytes, so its last block is shorter still.  These are exactly aria2's
blocks, so the control file's in-flight bits map one to one.  End to end: trioaria leeches such a
torrent from aria2c and from libtorrent (a magnet, so the metadata comes over BEP 9 too), seeds
it to both, and continues aria2c's control file as aria2c continues ours.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bt.swarm_helpers import (
    free_port,
    loopback_lt_session,
    make_torrent,
    run_trioaria,
    start_aria2c,
    start_trioaria,
    stop_process,
    wait_listening,
    wait_until,
)
from tests.bt.tracker_server import Tracker
from trioaria.bt.metainfo import parse_torrent
from trioaria.storage import control_file as cf
from trioaria.storage.pieces import BLOCK_LENGTH, PieceStorage

PIECE = 3 * BLOCK_LENGTH + 1


def prime_at_least(n: int) -> int:
    """The smallest prime >= ``n`` (trial division: the sizes here are a few MiB)."""

    def is_prime(k: int) -> bool:
        return k > 1 and all(k % d for d in range(2, int(k**0.5) + 1))

    while not is_prime(n):
        n += 1
    return n


def test_prime_sizes_are_prime() -> None:
    assert [prime_at_least(n) for n in (0, 14, 49153)] == [2, 17, 49157]


def test_blocks_of_an_odd_piece_are_16k_then_short() -> None:
    total = prime_at_least(3 * PIECE + 12345)
    st = PieceStorage(total, PIECE)
    assert st.block_length == BLOCK_LENGTH and st.blocks_per_piece == 4
    assert [st.block_span(b) for b in st.piece_blocks(1)] == [
        (PIECE, PIECE + BLOCK_LENGTH),
        (PIECE + BLOCK_LENGTH, PIECE + 2 * BLOCK_LENGTH),
        (PIECE + 2 * BLOCK_LENGTH, PIECE + 3 * BLOCK_LENGTH),
        (PIECE + 3 * BLOCK_LENGTH, 2 * PIECE),  # one byte
    ]
    last = st.num_blocks - 1
    assert st.block_span(last) == (3 * PIECE, total)
    assert st.block_of(2 * PIECE - 1) == 7 and st.block_of(2 * PIECE) == 8


def test_a_piece_length_with_no_divisor_near_16k_works() -> None:
    """2 x 16411 (16411 is prime) was refused before: blocks needed not divide the piece."""
    st = PieceStorage(5 * 32822, 32822)
    assert [st.block_size(b) for b in st.piece_blocks(0)] == [16384, 16384, 54]
    st.mark_blocks(0, st.num_blocks)
    assert st.is_complete() and st.completed_length == 5 * 32822


def test_control_file_bits_are_aria2s_16k_blocks() -> None:
    st = PieceStorage(2 * PIECE, PIECE)
    st.mark_blocks(0, 3)  # piece 0: the three full blocks
    st.mark_blocks(7, 8)  # piece 1: the one-byte block only
    _, in_flight = st.snapshot()
    assert in_flight == [(0, PIECE, bytes([0b1110_0000])), (1, PIECE, bytes([0b0001_0000]))]
    back = PieceStorage(2 * PIECE, PIECE)
    back.load(bytes(1), in_flight)
    assert [back.is_block_done(b) for b in range(8)] == [True] * 3 + [False] * 4 + [True]
    assert back.completed_length == 3 * BLOCK_LENGTH + 1


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    with Tracker(interval=1) as t:
        yield t


def test_leech_odd_pieces_from_aria2c(tmp_path: Path, tracker: Tracker) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(prime_at_least(37 * PIECE + 4321))
    torrent = tmp_path / "o.torrent"
    torrent.write_bytes(
        make_torrent(
            seed, [("o.bin", payload)], name="o.bin", piece_length=PIECE, announce=tracker.url
        )
    )
    aria2c, _ = start_aria2c(torrent, seed)
    try:
        res = run_trioaria(f"--dir={dl}", "--seed-time=0", str(torrent))
    finally:
        stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "o.bin").read_bytes() == payload


def test_seed_odd_pieces_to_aria2c(tmp_path: Path, tracker: Tracker) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(prime_at_least(23 * PIECE + 99))
    torrent = tmp_path / "q.torrent"
    torrent.write_bytes(
        make_torrent(
            seed, [("q.bin", payload)], name="q.bin", piece_length=PIECE, announce=tracker.url
        )
    )
    ours = start_trioaria(f"--dir={seed}", "-V", str(torrent))
    try:
        leech, _ = start_aria2c(torrent, dl, seed=False)
        try:
            assert leech.wait(timeout=90) == 0
        finally:
            stop_process(leech)
        out, _ = ours.communicate(timeout=60)
    finally:
        stop_process(ours)
    assert ours.returncode == 0, out.decode()
    assert (dl / "q.bin").read_bytes() == payload


def _lt_session() -> Any:
    import libtorrent as lt  # loopback_lt_session fails the test first when it is missing

    ses = loopback_lt_session()
    return lt, ses


_wait = wait_until


def test_magnet_with_odd_pieces_from_libtorrent(tmp_path: Path) -> None:
    """libtorrent seeds; the metadata (BEP 9) and then the pieces come from it."""
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(prime_at_least(29 * PIECE + 17))
    raw = make_torrent(seed, [("lt.bin", payload)], name="lt.bin", piece_length=PIECE)
    meta = parse_torrent(raw)
    lt, ses = _lt_session()
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(raw))
    params.save_path = str(seed)
    params.flags |= lt.torrent_flags.seed_mode
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    handle = ses.add_torrent(params)
    _wait(lambda: handle.status().is_seeding, "libtorrent to seed")
    magnet = (
        f"magnet:?xt=urn:btih:{meta.info_hash_hex}&dn=lt.bin&x.pe=127.0.0.1:{ses.listen_port()}"
    )
    res = run_trioaria(f"--dir={dl}", "--seed-time=0", magnet)
    del ses
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "lt.bin").read_bytes() == payload


def test_seed_odd_pieces_to_libtorrent(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(prime_at_least(31 * PIECE + 5))
    raw = make_torrent(seed, [("up.bin", payload)], name="up.bin", piece_length=PIECE)
    torrent = tmp_path / "up.torrent"
    torrent.write_bytes(raw)
    port = free_port()
    ours = start_trioaria(f"--dir={seed}", "-V", f"--listen-port={port}", str(torrent))
    try:
        wait_listening(port, ours, "trioaria")
        lt, ses = _lt_session()
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(raw))
        params.save_path = str(dl)
        handle = ses.add_torrent(params)
        handle.connect_peer(("127.0.0.1", port))
        _wait(lambda: handle.status().is_seeding, "libtorrent to finish", timeout=90)
        out, _ = ours.communicate(timeout=60)  # --seed-ratio=1.0: it ends by itself
        del ses
    finally:
        stop_process(ours)
    assert ours.returncode == 0, out.decode()
    assert (dl / "up.bin").read_bytes() == payload


def test_aria2c_continues_our_control_file(tmp_path: Path, tracker: Tracker) -> None:
    """Killed mid-way, trioaria's ``.aria2`` for 49153-byte pieces (one in-flight bit per
    block, the last of a piece one byte) is loaded by aria2c, which finishes the file."""
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(prime_at_least(40 * PIECE + 1234))
    torrent = tmp_path / "r.torrent"
    torrent.write_bytes(
        make_torrent(
            seed, [("r.bin", payload)], name="r.bin", piece_length=PIECE, announce=tracker.url
        )
    )
    control = dl / "r.bin.aria2"
    aria2c, _ = start_aria2c(torrent, seed, extra=("--max-upload-limit=200K",))
    try:
        first = start_trioaria(f"--dir={dl}", "--seed-time=0", str(torrent))
        try:
            deadline = time.monotonic() + 60
            while True:  # until the control file holds at least two verified pieces
                assert time.monotonic() < deadline, "no progress saved"
                assert first.poll() is None, "finished before it could be killed"
                saved = None
                if control.exists():
                    try:
                        saved = cf.parse(control.read_bytes())
                    except Exception:  # caught mid-rename: read it again
                        saved = None
                if saved is not None and sum(bin(b).count("1") for b in saved.bitfield) >= 2:
                    break
                time.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            stop_process(first)
    finally:
        stop_process(aria2c)
    assert saved.piece_length == PIECE
    aria2c, _ = start_aria2c(torrent, seed)  # now unthrottled
    log = tmp_path / "leech.log"
    try:
        leech, _ = start_aria2c(torrent, dl, seed=False, extra=(f"--log={log}", "--log-level=info"))
        try:
            assert leech.wait(timeout=90) == 0
        finally:
            stop_process(leech)
    finally:
        stop_process(aria2c)
    assert "The segment file was loaded successfully." in log.read_text()
    assert (dl / "r.bin").read_bytes() == payload


def test_we_continue_aria2cs_control_file(tmp_path: Path, tracker: Tracker) -> None:
    """And the other way: aria2c killed mid-way, trioaria loads its ``.aria2`` (its blocks are
    ours) and finishes the file without starting over."""
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(prime_at_least(40 * PIECE + 4321))
    torrent = tmp_path / "c.torrent"
    torrent.write_bytes(
        make_torrent(
            seed, [("c.bin", payload)], name="c.bin", piece_length=PIECE, announce=tracker.url
        )
    )
    control = dl / "c.bin.aria2"
    aria2c, _ = start_aria2c(torrent, seed)
    try:
        leech, _ = start_aria2c(
            torrent,
            dl,
            seed=False,
            extra=("--max-download-limit=200K", "--auto-save-interval=1"),
        )
        try:
            deadline = time.monotonic() + 60
            while True:  # until aria2c saved at least two pieces
                assert time.monotonic() < deadline, "aria2c saved no progress"
                assert leech.poll() is None, "aria2c finished before it could be killed"
                saved = None
                if control.exists():
                    try:
                        saved = cf.parse(control.read_bytes())
                    except Exception:  # caught mid-write: read it again
                        saved = None
                if saved is not None and sum(bin(b).count("1") for b in saved.bitfield) >= 2:
                    break
                time.sleep(0.05)
            leech.send_signal(signal.SIGKILL)
            leech.wait(timeout=10)
        finally:
            stop_process(leech)
        saved = cf.parse(control.read_bytes())
        pieces = [i for i in range(saved.num_pieces) if saved.bitfield[i // 8] & (0x80 >> i % 8)]
        done = sum(min(PIECE, len(payload) - i * PIECE) for i in pieces)  # the last is short
        res = run_trioaria(f"--dir={dl}", "--seed-time=0", str(torrent))
    finally:
        stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "c.bin").read_bytes() == payload
    ours = [a for a in tracker.state.announces if a.peer_id.startswith(b"-TA0100-")]
    assert ours[0].event == "started" and ours[0].left <= len(payload) - done
