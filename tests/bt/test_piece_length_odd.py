"""Piece lengths that are not a multiple of 16 KiB (issue 10): aria2 and libtorrent accept them.

A 40000-byte piece is cut into four 10000-byte blocks (``storage.pieces.block_length_for``);
the control file keeps aria2's one bit per 16 KiB block of a piece, translated both ways.
End to end: trioaria leeches such a torrent from aria2c and from libtorrent (a magnet, so the
metadata comes over BEP 9 too) and seeds it to both.
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
from trioaria.storage.pieces import BLOCK_LENGTH, PieceStorage, block_length_for

PIECE = 40000


@pytest.mark.parametrize(
    ("piece_length", "block"),
    [
        (16384, 16384),
        (8192, 8192),
        (1 << 20, 16384),
        (40000, 10000),
        (50000, 12500),
        (49152, 16384),
    ],
)
def test_block_length_divides_the_piece(piece_length: int, block: int) -> None:
    assert block_length_for(piece_length) == block
    assert piece_length % block == 0 or piece_length < BLOCK_LENGTH


def test_piece_length_without_a_usable_divisor_is_refused() -> None:
    with pytest.raises(ValueError, match="no block length"):
        block_length_for(2 * 16411)  # 16411 is prime: the divisors are 1, 2, 16411, 32822


def test_blocks_never_straddle_pieces() -> None:
    st = PieceStorage(3 * PIECE + 12345, PIECE)
    assert st.block_length == 10000 and st.blocks_per_piece == 4
    for block in range(st.num_blocks):
        start, end = st.block_span(block)
        assert start // PIECE == (end - 1) // PIECE
    assert st.block_span(st.num_blocks - 1) == (3 * PIECE + 10000, 3 * PIECE + 12345)


def test_control_file_bits_are_aria2s_16k_blocks() -> None:
    st = PieceStorage(2 * PIECE, PIECE)
    # piece 0: our blocks 0..2 ([0, 30000)) cover aria2's block 0 ([0, 16384)) only
    st.mark_blocks(0, 3)
    _, in_flight = st.snapshot()
    assert in_flight == [(0, PIECE, bytes([0b1000_0000]))]
    # piece 1: ours 1..3 ([10000, 40000)) cover aria2's blocks 1 and 2 ([16384, 40000))
    st.mark_blocks(5, 8)
    _, in_flight = st.snapshot()
    assert in_flight[1] == (1, PIECE, bytes([0b0110_0000]))
    # and back: a block of ours is written when every 16 KiB block it overlaps is
    back = PieceStorage(2 * PIECE, PIECE)
    back.load(bytes(1), in_flight)
    assert [back.is_block_done(b) for b in range(8)] == [
        *(True, False, False, False),  # [0, 10000) lies in aria2's block 0
        *(False, False, True, True),  # [10000, 20000) also needs aria2's block 0
    ]
    # a 16 KiB block that only partly covers ours is fetched again after a restart
    assert back.snapshot()[1] == [(0, PIECE, bytes(1)), (1, PIECE, bytes([0b0010_0000]))]


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    with Tracker(interval=1) as t:
        yield t


def test_leech_40000_byte_pieces_from_aria2c(tmp_path: Path, tracker: Tracker) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(37 * PIECE + 4321)
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


def test_seed_40000_byte_pieces_to_aria2c(tmp_path: Path, tracker: Tracker) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(23 * PIECE + 99)
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


def test_magnet_with_40000_byte_pieces_from_libtorrent(tmp_path: Path) -> None:
    """libtorrent seeds; the metadata (BEP 9) and then the pieces come from it."""
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(29 * PIECE + 17)
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


def test_seed_40000_byte_pieces_to_libtorrent(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(31 * PIECE + 5)
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
    """Killed mid-way, trioaria's ``.aria2`` for 40000-byte pieces (aria2's 16 KiB in-flight
    bits) is loaded by aria2c, which finishes the file."""
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(40 * PIECE + 1234)
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
    """And the other way: aria2c killed mid-way, trioaria loads its ``.aria2`` (16 KiB bits
    translated into 10000-byte blocks) and finishes the file without starting over."""
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(40 * PIECE + 4321)
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
        done = sum(bin(b).count("1") for b in saved.bitfield) * PIECE
        res = run_trioaria(f"--dir={dl}", "--seed-time=0", str(torrent))
    finally:
        stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "c.bin").read_bytes() == payload
    ours = [a for a in tracker.state.announces if a.peer_id.startswith(b"-TA0100-")]
    assert ours[0].event == "started" and ours[0].left <= len(payload) - done
