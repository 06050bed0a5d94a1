"""DiskAdaptor and control-file I/O against real files (trioaria/storage/disk.py)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from trioaria.base.errors import ExitCode, StorageError
from trioaria.storage import disk as disk_mod
from trioaria.storage.disk import (
    DiskAdaptor,
    load_control_file,
    remove_control_file,
    save_control_file,
)
from trioaria.storage.layout import FileEntry, FileLayout

MULTI = [("top/a.bin", 10), ("top/empty", 0), ("top/sub/b.bin", 7), ("top/c.bin", 13)]


def _pattern(n: int, seed: int = 0) -> bytes:
    return bytes((i * 31 + seed) & 0xFF for i in range(n))


async def _opened(
    base: Path, files: list[tuple[str, int]], *, truncate: bool = True
) -> DiskAdaptor:
    adaptor = DiskAdaptor(str(base), FileLayout(files))
    await adaptor.open(truncate=truncate)
    return adaptor


# --- round trips ------------------------------------------------------------------------


async def test_multi_file_round_trip(tmp_path: Path) -> None:
    adaptor = await _opened(tmp_path, MULTI)
    try:
        assert adaptor.paths == [str(tmp_path / p) for p, _ in MULTI]
        assert (tmp_path / "top/empty").is_file()  # zero-length files are created
        data = _pattern(30)
        adaptor.write(5, memoryview(data)[5:20])  # spans a, (empty), b, c
        adaptor.write(0, data[:5])
        adaptor.write(20, bytearray(data[20:]))
        assert adaptor.read(0, 30) == data
        assert adaptor.read(9, 3) == data[9:12]
        assert adaptor.statistics().bytes_written == 30
        await adaptor.sync()
        assert adaptor.statistics().dirty_files == 0
    finally:
        await adaptor.aclose()
    assert (tmp_path / "top/a.bin").read_bytes() == data[:10]
    assert (tmp_path / "top/sub/b.bin").read_bytes() == data[10:17]
    assert (tmp_path / "top/c.bin").read_bytes() == data[17:]
    assert adaptor.statistics().open_files == 0


async def test_readv_into_fills_views_across_files_and_holes(tmp_path: Path) -> None:
    """The upload path's vectored read: one preadv inside a file, the careful path across
    files or past what was written (unwritten bytes read as zeros)."""
    adaptor = await _opened(tmp_path, MULTI)
    try:
        data = _pattern(30)
        adaptor.write(0, data[:25])
        for offset, sizes in ((0, [3, 4, 2]), (8, [2, 3, 6]), (20, [4, 6]), (2, [1])):
            views = [memoryview(bytearray(n)) for n in sizes]
            adaptor.readv_into(offset, views)
            got = b"".join(bytes(v) for v in views)
            want = (data[:25] + bytes(5))[offset : offset + sum(sizes)]
            assert got == want, (offset, sizes)
    finally:
        await adaptor.aclose()


async def test_out_of_order_writes_and_unwritten_reads_as_zeros(tmp_path: Path) -> None:
    adaptor = await _opened(tmp_path, [("f", 100)])
    try:
        adaptor.write(90, b"z" * 10)
        adaptor.write(0, b"a" * 10)
        assert adaptor.read(0, 100) == b"a" * 10 + bytes(80) + b"z" * 10
        with pytest.raises(ValueError):
            adaptor.write(95, b"123456")
    finally:
        await adaptor.aclose()


async def test_resume_open_keeps_content(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello")
    adaptor = await _opened(tmp_path, [("f", 10)], truncate=False)
    try:
        assert adaptor.read(0, 5) == b"hello"
        assert adaptor.existing_length() == 5
    finally:
        await adaptor.aclose()
    adaptor = await _opened(tmp_path, [("f", 10)], truncate=True)
    try:
        assert adaptor.existing_length() == 0
    finally:
        await adaptor.aclose()


async def test_existing_length_multi_file_prefix(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 4)
    (tmp_path / "b").write_bytes(b"y" * 2)
    (tmp_path / "c").write_bytes(b"z" * 5)
    adaptor = await _opened(tmp_path, [("a", 4), ("b", 3), ("c", 5)], truncate=False)
    try:
        assert adaptor.existing_length() == 6  # a full, b short: stop there
    finally:
        await adaptor.aclose()


async def test_write_file_unknown_length(tmp_path: Path) -> None:
    adaptor = await _opened(tmp_path, [("stream", 0)])
    try:
        adaptor.write_file(0, 0, b"abc")
        adaptor.write_file(0, 3, memoryview(b"defg"))
        await adaptor.sync()
    finally:
        await adaptor.aclose()
    assert (tmp_path / "stream").read_bytes() == b"abcdefg"


async def test_unselected_files_are_created_lazily(tmp_path: Path) -> None:
    layout = FileLayout([FileEntry("a", 4, 0), FileEntry("b", 4, 0, False), FileEntry("c", 4, 0)])
    adaptor = DiskAdaptor(str(tmp_path), layout)
    await adaptor.open(truncate=True)
    try:
        assert not (tmp_path / "b").exists()
        assert adaptor.read(0, 12) == bytes(12)  # missing unselected file reads as zeros
        assert not (tmp_path / "b").exists()
        adaptor.write(2, b"123456")  # a piece straddling a, b, c
        assert (tmp_path / "b").read_bytes() == b"3456"
        assert adaptor.read(0, 12) == bytes(2) + b"123456" + bytes(4)
    finally:
        await adaptor.aclose()
    assert (tmp_path / "b").read_bytes() == b"3456"


async def test_lru_bounds_open_files_and_sync_reopens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [(f"f{i}", 8) for i in range(6)]
    adaptor = DiskAdaptor(str(tmp_path), FileLayout(files), max_open_files=2)
    await adaptor.open(truncate=True)
    synced: list[int] = []
    real = os.fdatasync

    def spy(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", spy)
    try:
        assert all((tmp_path / f"f{i}").exists() for i in range(6))
        assert adaptor.statistics().open_files == 2
        data = _pattern(48, 7)
        for start in (40, 0, 24, 8, 32, 16):
            adaptor.write(start, data[start : start + 8])
            assert adaptor.statistics().open_files <= 2
        assert adaptor.read(0, 48) == data
        assert adaptor.statistics().dirty_files == 6
        await adaptor.sync()
        assert len(synced) == 6
        assert adaptor.statistics().dirty_files == 0
        await adaptor.sync()  # nothing dirty: no new fdatasync
        assert len(synced) == 6
    finally:
        await adaptor.aclose()
    assert b"".join((tmp_path / f"f{i}").read_bytes() for i in range(6)) == data


def test_write_before_open_and_after_close(tmp_path: Path) -> None:
    adaptor = DiskAdaptor(str(tmp_path), FileLayout([("f", 4)]))
    with pytest.raises(RuntimeError):
        adaptor.write(0, b"x")

    async def cycle() -> None:
        await adaptor.open(truncate=True)
        await adaptor.aclose()
        await adaptor.aclose()  # idempotent

    trio.run(cycle)
    with pytest.raises(RuntimeError):
        adaptor.read(0, 1)


@pytest.mark.parametrize("bad", ["../escape", "/abs/path", "a/../../b"])
def test_layout_paths_must_stay_inside(tmp_path: Path, bad: str) -> None:
    with pytest.raises(StorageError):
        DiskAdaptor(str(tmp_path), FileLayout([(bad, 1)]))


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=6),
    writes=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 60)), max_size=12),
)
def test_random_writes_match_a_model(lengths: list[int], writes: list[tuple[int, int]]) -> None:
    with tempfile.TemporaryDirectory() as base:
        layout = FileLayout([(f"d/f{i}", n) for i, n in enumerate(lengths)])
        adaptor = DiskAdaptor(base, layout, max_open_files=3)
        model = bytearray(layout.total_length)
        trio.run(lambda: adaptor.open(truncate=True))
        try:
            for seed, (start, length) in enumerate(writes):
                start = min(start, layout.total_length)
                length = min(length, layout.total_length - start)
                chunk = _pattern(length, seed)
                adaptor.write(start, chunk)
                model[start : start + length] = chunk
            assert adaptor.read(0, layout.total_length) == bytes(model)
        finally:
            trio.run(adaptor.aclose)
        on_disk = b""
        for entry in layout.files:
            data = Path(base, entry.path).read_bytes()
            assert len(data) <= entry.length
            on_disk += data.ljust(entry.length, b"\0")
        assert on_disk == bytes(model)


# --- allocation -------------------------------------------------------------------------


SIZE = 3 * 1024 * 1024 + 123


@pytest.mark.parametrize("mode", ["prealloc", "trunc", "falloc"])
async def test_allocation_modes_reach_full_size(tmp_path: Path, mode: str) -> None:
    adaptor = await _opened(tmp_path, [("a", SIZE), ("empty", 0), ("b", 1000)])
    seen: list[tuple[int, int]] = []
    try:
        await adaptor.allocate(mode, lambda done, total: seen.append((done, total)))
        assert adaptor.has_holes() == (mode == "trunc" or _falloc_is_hole(tmp_path))
    finally:
        await adaptor.aclose()
    assert (tmp_path / "a").stat().st_size == SIZE
    assert (tmp_path / "b").stat().st_size == 1000
    assert (tmp_path / "empty").stat().st_size == 0
    blocks = (tmp_path / "a").stat().st_blocks * 512
    if mode == "trunc":
        assert blocks < SIZE  # sparse
    else:
        assert blocks >= SIZE  # space really allocated
    assert seen[-1] == (SIZE + 1000, SIZE + 1000)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def _falloc_is_hole(base: Path) -> bool:
    """Whether this file system reports fallocated-but-unwritten space as a hole."""
    probe = base / "probe"
    fd = os.open(probe, os.O_RDWR | os.O_CREAT)
    try:
        os.posix_fallocate(fd, 0, 65536)
        return os.lseek(fd, 0, os.SEEK_HOLE) < 65536
    finally:
        os.close(fd)
        probe.unlink()


async def test_allocation_none_leaves_short_file(tmp_path: Path) -> None:
    adaptor = await _opened(tmp_path, [("a", SIZE)])
    try:
        await adaptor.allocate("none")
        adaptor.write(0, b"abc")
    finally:
        await adaptor.aclose()
    assert (tmp_path / "a").stat().st_size == 3


async def test_allocation_below_limit_is_skipped(tmp_path: Path) -> None:
    adaptor = await _opened(tmp_path, [("a", 4096)])
    try:
        await adaptor.allocate("trunc", min_size=5 * 1024 * 1024)
        assert (tmp_path / "a").stat().st_size == 0
        await adaptor.allocate("trunc", min_size=4096)
        assert (tmp_path / "a").stat().st_size == 4096
        with pytest.raises(ValueError):
            await adaptor.allocate("bogus")
    finally:
        await adaptor.aclose()


@pytest.mark.parametrize("mode", ["prealloc", "trunc", "falloc"])
async def test_allocation_never_shrinks_or_clobbers(tmp_path: Path, mode: str) -> None:
    (tmp_path / "a").write_bytes(b"keep" * 1000)  # longer than the entry
    (tmp_path / "b").write_bytes(b"head")  # shorter: grown after its data
    adaptor = await _opened(tmp_path, [("a", 100), ("b", 70000)], truncate=False)
    try:
        await adaptor.allocate(mode)
        assert adaptor.read(100, 4) == b"head"
    finally:
        await adaptor.aclose()
    assert (tmp_path / "a").read_bytes() == b"keep" * 1000
    b = (tmp_path / "b").read_bytes()
    assert len(b) == 70000
    assert b[:4] == b"head"
    assert b[4:] == bytes(69996)


async def test_falloc_unsupported_falls_back_to_zeros(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    adaptor = await _opened(tmp_path, [("a", SIZE)])
    seen: list[int] = []
    try:
        await adaptor.allocate("falloc", lambda done, total: seen.append(done))
        assert not adaptor.has_holes()  # zeros were really written
    finally:
        await adaptor.aclose()
    assert (tmp_path / "a").stat().st_size == SIZE
    assert (tmp_path / "a").stat().st_blocks * 512 >= SIZE
    assert seen[-1] == SIZE


async def test_has_holes(tmp_path: Path) -> None:
    adaptor = await _opened(tmp_path, [("a", 1 << 20)])
    try:
        assert not adaptor.has_holes()  # empty file
        await adaptor.allocate("trunc")
        assert adaptor.has_holes()
    finally:
        await adaptor.aclose()
    adaptor = await _opened(tmp_path, [("a", 1 << 20)])
    try:
        for start in range(0, 1 << 20, 1 << 16):
            adaptor.write(start, bytes([7]) * (1 << 16))
        await adaptor.sync()
        assert not adaptor.has_holes()
    finally:
        await adaptor.aclose()


# --- errors -----------------------------------------------------------------------------


async def test_enospc_is_exit_9_via_dev_full(tmp_path: Path) -> None:
    (tmp_path / "full").symlink_to("/dev/full")
    adaptor = await _opened(tmp_path, [("full", 100)], truncate=False)
    try:
        with pytest.raises(StorageError) as info:
            adaptor.write(0, b"x" * 10)
        assert info.value.exit_code == ExitCode.NOT_ENOUGH_DISK_SPACE
        assert int(info.value.exit_code) == 9
    finally:
        await adaptor.aclose()


async def test_enospc_on_a_full_tmpfs(tmp_path: Path) -> None:
    # A missing prerequisite is a failure, not a skip (docs/decisions.md): CI runs as root.
    assert os.geteuid() == 0, "this test mounts a tmpfs and needs root (CI runs as root)"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    await trio.run_process(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)])
    try:
        adaptor = await _opened(mnt, [("big", 4 << 20)])
        try:
            with pytest.raises(StorageError) as info:
                await adaptor.allocate("falloc")
            assert info.value.exit_code == ExitCode.NOT_ENOUGH_DISK_SPACE
            await adaptor.allocate("trunc")  # sparse: fits

            def fill() -> None:
                for start in range(0, 4 << 20, 1 << 18):
                    adaptor.write(start, bytes(1 << 18))

            with pytest.raises(StorageError) as info:
                fill()
            assert info.value.exit_code == ExitCode.NOT_ENOUGH_DISK_SPACE
        finally:
            await adaptor.aclose()
        with pytest.raises(StorageError) as info:
            await save_control_file(str(mnt / "big.aria2"), b"x" * (2 << 20))
        assert info.value.exit_code == ExitCode.NOT_ENOUGH_DISK_SPACE
        assert not (mnt / "big.aria2__temp").exists()
    finally:
        await trio.run_process(["umount", str(mnt)])


async def test_other_write_error_is_exit_17(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adaptor = await _opened(tmp_path, [("f", 10)])

    def broken(fd: int, data: object, offset: int) -> int:
        raise OSError(errno.EIO, "Input/output error")

    try:
        monkeypatch.setattr(os, "pwrite", broken)
        with pytest.raises(StorageError) as info:
            adaptor.write(0, b"x")
        assert info.value.exit_code == ExitCode.FILE_IO_ERROR
        assert int(info.value.exit_code) == 17
        assert "Input/output error" in str(info.value)
    finally:
        await adaptor.aclose()


async def test_short_writes_are_continued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.pwrite
    calls: list[int] = []

    def short(fd: int, data: memoryview, offset: int) -> int:
        calls.append(len(data))
        return real(fd, data[:3], offset)

    adaptor = await _opened(tmp_path, [("f", 10)])
    try:
        monkeypatch.setattr(os, "pwrite", short)
        adaptor.write(0, b"0123456789")
        monkeypatch.setattr(os, "pwrite", real)
        assert adaptor.read(0, 10) == b"0123456789"
        assert calls == [10, 7, 4, 1]
    finally:
        await adaptor.aclose()


async def test_dir_create_error_is_exit_18(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_bytes(b"")
    adaptor = DiskAdaptor(str(tmp_path / "blocker"), FileLayout([("sub/f", 1)]))
    with pytest.raises(StorageError) as info:
        await adaptor.open(truncate=True)
    assert info.value.exit_code == ExitCode.DIR_CREATE_ERROR
    assert int(info.value.exit_code) == 18


async def test_file_create_and_open_errors(tmp_path: Path) -> None:
    (tmp_path / "isdir").mkdir()
    (tmp_path / "ok").write_bytes(b"")
    layout = FileLayout([("ok", 1), ("isdir", 1)])
    with pytest.raises(StorageError) as info:
        await DiskAdaptor(str(tmp_path), layout).open(truncate=True)
    assert info.value.exit_code == ExitCode.FILE_CREATE_ERROR
    assert int(info.value.exit_code) == 16
    with pytest.raises(StorageError) as info:
        await DiskAdaptor(str(tmp_path), layout).open(truncate=False)
    assert info.value.exit_code == ExitCode.FILE_OPEN_ERROR
    assert int(info.value.exit_code) == 15


async def test_sync_failure_keeps_files_dirty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adaptor = await _opened(tmp_path, [("f", 10)])
    try:
        adaptor.write(0, b"x")

        def failing(fd: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(os, "fdatasync", failing)
        with pytest.raises(StorageError) as info:
            await adaptor.sync()
        assert info.value.exit_code == ExitCode.FILE_IO_ERROR
        assert adaptor.statistics().dirty_files == 1
        monkeypatch.undo()
        await adaptor.sync()
        assert adaptor.statistics().dirty_files == 0
    finally:
        await adaptor.aclose()


# --- control file -----------------------------------------------------------------------


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_control_file_save_load_remove(tmp_path: Path) -> None:
    path = str(tmp_path / "f.bin.aria2")
    assert load_control_file(path) is None
    await save_control_file(path, b"first")
    assert load_control_file(path) == b"first"
    await save_control_file(path, b"second, longer")
    assert load_control_file(path) == b"second, longer"
    assert _names(tmp_path) == ["f.bin.aria2"]
    (tmp_path / "f.bin.aria2__temp").write_bytes(b"leftover")
    remove_control_file(path)
    remove_control_file(path)  # missing is fine
    assert _names(tmp_path) == []


async def test_control_file_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "f.aria2")
    await save_control_file(path, b"old")

    def crash(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(StorageError) as info:
        await save_control_file(path, b"new")
    assert info.value.exit_code == ExitCode.FILE_IO_ERROR
    monkeypatch.undo()
    assert load_control_file(path) == b"old"
    assert _names(tmp_path) == ["f.aria2"]


async def test_control_file_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        await save_control_file(str(tmp_path / "missing-dir" / "f.aria2"), b"x")
    (tmp_path / "d.aria2").mkdir()
    with pytest.raises(StorageError) as info:
        load_control_file(str(tmp_path / "d.aria2"))
    assert info.value.exit_code == ExitCode.FILE_OPEN_ERROR


def test_module_constants() -> None:
    assert {"none", "prealloc", "trunc", "falloc"} == disk_mod.ALLOCATION_MODES
