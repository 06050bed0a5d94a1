"""A torrent's all-time upload survives in the control file (aria2 saves it and loads it
back: share ratio, tellStatus ``uploadLength``); it is never written back as 0."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import trio

from trioaria.storage import control_file as cf
from trioaria.storage.session import PieceHashes, StorageSession

PIECE = 64 * 1024


def _session(tmp_path: Path, data: bytes, info_hash: bytes, control: Path) -> StorageSession:
    digests = tuple(hashlib.sha1(data[i : i + PIECE]).digest() for i in range(0, len(data), PIECE))
    return StorageSession(
        str(tmp_path / "d"), [("t.bin", len(data))], piece_length=PIECE,
        control_path=str(control), hashes=PieceHashes("sha-1", PIECE, digests),
        info_hash=info_hash,
    )  # fmt: skip


async def test_the_saved_upload_is_kept_and_grows_with_this_runs_upload(tmp_path: Path) -> None:
    data = os.urandom(4 * PIECE)
    info_hash = bytes(range(20))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "t.bin").write_bytes(data[:PIECE] + bytes(3 * PIECE))
    control = tmp_path / "t.bin.aria2"
    control.write_bytes(
        cf.serialize(
            cf.ControlFile(
                piece_length=PIECE, total_length=len(data), bitfield=b"\x80",
                upload_length=123_456, info_hash=info_hash, bittorrent=True,
            )
        )
    )  # fmt: skip
    session = _session(tmp_path, data, info_hash, control)
    with trio.fail_after(5):
        assert await session.open("resume")
        assert session.upload_base == 123_456
        await session.save(force=True)
        assert cf.parse(control.read_bytes()).upload_length == 123_456
        session.uploaded_now = lambda: 1000  # this run's swarm
        await session.save(force=True)
        await session.close()
    assert cf.parse(control.read_bytes()).upload_length == 124_456


async def test_a_new_download_starts_from_no_upload(tmp_path: Path) -> None:
    data = os.urandom(2 * PIECE)
    (tmp_path / "d").mkdir()
    control = tmp_path / "t.bin.aria2"
    session = _session(tmp_path, data, bytes(20), control)
    with trio.fail_after(5):
        assert not await session.open("new")
        session.uploaded_now = lambda: 77
        await session.save(force=True)
        await session.close()
    assert session.upload_base == 0
    assert cf.parse(control.read_bytes()).upload_length == 77
