"""DiskAdaptor: the trio driver that puts payload bytes into the files of a :class:`FileLayout`.

Theory of operation
-------------------
One adaptor serves one download, filled by many sources at once at arbitrary offsets (HTTP/FTP/
SFTP segments, BitTorrent blocks, Metalink files).  Following docs/decisions.md "Disk, durability and
resume" and docs/performance.md:

* payload is written **inline** with ``os.pwrite`` into the page cache (a thread hop per write
  measured +50% CPU); reads for hashing use ``os.preadv`` into one buffer;
* only ``fdatasync``, ``fallocate``/``ftruncate``, the zero-writing allocation loop and the
  control-file save run in worker threads (``trio.to_thread.run_sync``); a thread always works on
  a ``dup()`` of the descriptor so closing or evicting the original cannot race it;
* ``--file-allocation`` follows aria2's iterators (``src/*FileAllocationIterator.cc``):
  ``trunc`` = ``ftruncate`` to the length (sparse), ``falloc`` = ``posix_fallocate`` from the
  current size, ``prealloc`` = aria2's *adaptive* allocator: ``fallocate`` when the file system
  supports it, else zeros written in 256 KiB chunks.  A file already at least as long as its
  entry is never touched (no shrinking).  aria2 skips allocation when the *total* length is below
  ``--no-file-allocation-limit`` (``RequestGroup::needsFileAllocation``); ``min_size`` does that;
* errors map to aria2's exit codes: ENOSPC/EDQUOT 9, directory creation 18, creating a file 16,
  opening an existing one 15, any other I/O 17 (``src/AbstractDiskWriter.cc``);
* the control file is the commit point: :func:`save_control_file` writes ``<name>.aria2__temp``,
  fsyncs it, renames it over ``<name>.aria2`` and fsyncs the directory (aria2
  ``DefaultBtProgressInfoFile::save`` does the temp + rename).  Callers ``await sync()`` first.

Descriptors stay open between writes; ``max_open_files`` (aria2 ``--bt-max-open-files``) bounds
them with an LRU.  Unselected files are opened (and created) lazily, only when a piece that
straddles a selected file writes into them, as aria2 does.  Reading a region that was never written
(or a file that does not exist) yields zeros, like reading a sparse file.
"""

from __future__ import annotations

import errno
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import trio

from trioaria.base.errors import ExitCode, StorageError
from trioaria.storage.layout import FileLayout

__all__ = [
    "ALLOCATION_MODES",
    "DiskAdaptor",
    "DiskStatistics",
    "load_control_file",
    "remove_control_file",
    "save_control_file",
    "write_file_atomic",
]

ALLOCATION_MODES: Final = frozenset({"none", "prealloc", "trunc", "falloc"})
_ZERO_CHUNK: Final = 256 * 1024  # aria2 SingleFileAllocationIterator BUFSIZE
_ZEROS: Final = bytes(_ZERO_CHUNK)
_ALLOC_STEP: Final = 16 * 1024 * 1024  # bytes per thread hop: progress + cancellation granularity
_FALLOC_STEP: Final = 256 * 1024 * 1024
_DISK_FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
_NO_FALLOCATE: Final = frozenset({errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})
_OPEN_FLAGS: Final = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
_TEMP_SUFFIX: Final = "__temp"


def _error(exc: OSError, action: str, path: str, code: ExitCode) -> StorageError:
    if exc.errno in _DISK_FULL:
        code = ExitCode.NOT_ENOUGH_DISK_SPACE
    reason = exc.strerror or str(exc)
    return StorageError(f"Failed to {action} {path}: {reason}", exit_code=code)


@dataclass(frozen=True, slots=True)
class DiskStatistics:
    """Snapshot of a :class:`DiskAdaptor` (docs/design.md ``statistics()``)."""

    open_files: int
    dirty_files: int
    bytes_written: int


class DiskAdaptor:
    """Inline-``pwrite`` file storage for one download.

    Args:
        base_dir: directory the layout's relative paths are joined to (``--dir``, or the parent
            of a single file's final path).
        layout: the files; their paths must be relative and free of ``..``.
        max_open_files: at most this many descriptors stay open (LRU); 0 means unbounded.

    Raises:
        StorageError: a layout path is absolute or contains ``..`` (exit 17).
    """

    def __init__(self, base_dir: str, layout: FileLayout, *, max_open_files: int = 0) -> None:
        if max_open_files < 0:
            raise ValueError("max_open_files must be >= 0")
        self._base = os.path.abspath(base_dir)
        self._layout = layout
        self._paths = [self._join(entry.path) for entry in layout.files]
        self._limit = max_open_files
        self._fds: OrderedDict[int, int] = OrderedDict()
        self._dirty: set[int] = set()
        self._bytes_written = 0
        self._state = "init"  # init -> open -> closed

    def _join(self, rel: str) -> str:
        parts = rel.split("/")
        if rel.startswith("/") or ".." in parts:
            raise StorageError(f"Refusing path outside the download directory: {rel!r}")
        return os.path.join(self._base, *[p for p in parts if p and p != "."])

    @property
    def layout(self) -> FileLayout:
        """The :class:`FileLayout` this adaptor writes."""
        return self._layout

    @property
    def paths(self) -> list[str]:
        """Absolute paths of every file of the layout, in layout order."""
        return list(self._paths)

    def statistics(self) -> DiskStatistics:
        """A frozen snapshot of open descriptors, unsynced files and bytes written."""
        return DiskStatistics(len(self._fds), len(self._dirty), self._bytes_written)

    # --- descriptors --------------------------------------------------------------------

    def _remember(self, index: int, fd: int) -> None:
        self._fds[index] = fd
        while self._limit and len(self._fds) > self._limit:
            _, old = self._fds.popitem(last=False)
            os.close(old)

    def _fd(self, index: int, *, create: bool = True) -> int | None:
        if self._state != "open":
            raise RuntimeError(f"DiskAdaptor is {self._state}, not open")
        fd = self._fds.get(index)
        if fd is not None:
            self._fds.move_to_end(index)
            return fd
        path = self._paths[index]
        if create:
            # Rare (LRU reopen, unselected neighbour file): inline is cheaper than a thread hop.
            _make_parent(path)
        try:
            fd = os.open(path, _OPEN_FLAGS | (os.O_CREAT if create else 0), 0o644)
        except FileNotFoundError:
            if not create:
                return None
            raise _error_missing(path) from None
        except OSError as exc:
            raise _error(exc, "open", path, ExitCode.FILE_OPEN_ERROR) from exc
        self._remember(index, fd)
        return fd

    async def open(self, *, truncate: bool) -> None:
        """Create the directories and open (creating) every selected file, zero-length ones too.

        Args:
            truncate: True for a fresh download (files are truncated to 0, as aria2's
                ``initAndOpenFile``); False to resume (``openExistingFile``).

        Raises:
            StorageError: a directory cannot be created (exit 18), a file cannot be created
                (exit 16) or opened (exit 15); a full disk gives exit 9.
        """
        if self._state != "init":
            raise RuntimeError(f"DiskAdaptor is {self._state}; open() is called once")
        wanted = [i for i, entry in enumerate(self._layout.files) if entry.selected]
        opened = await trio.to_thread.run_sync(
            _open_all, [self._paths[i] for i in wanted], truncate, self._limit
        )
        self._state = "open"
        for index, fd in zip(wanted, opened, strict=True):
            if fd is not None:
                self._remember(index, fd)

    async def aclose(self) -> None:
        """Close every descriptor (no sync: call :meth:`sync` first for durability).  Idempotent."""
        self._state = "closed"
        fds = list(self._fds.values())
        self._fds.clear()
        for fd in fds:
            os.close(fd)
        await trio.lowlevel.checkpoint()

    # --- payload ------------------------------------------------------------------------

    def write(self, offset: int, data: memoryview | bytes | bytearray) -> None:
        """Write ``data`` at global ``offset`` with inline ``os.pwrite``, across file boundaries.

        Short writes are continued.  The bytes are in the page cache when this returns; they are
        durable after :meth:`sync`.

        Raises:
            StorageError: ENOSPC/EDQUOT (exit 9) or any other I/O error (exit 17).
            ValueError: the range is outside the layout.
        """
        view = _byte_view(data)
        for index, file_offset, buf_offset, n in self._layout.locate(offset, len(view)):
            self._pwrite(index, file_offset, view[buf_offset : buf_offset + n])

    def writev(self, offset: int, chunks: Sequence[bytes | memoryview]) -> None:
        """Write contiguous ``chunks`` at global ``offset``: one ``os.pwritev`` when they fall in
        one file (the disk cache's flush), else one :meth:`write` per chunk.

        Raises:
            StorageError: as :meth:`write`.
        """
        total = sum(map(len, chunks))
        spans = self._layout.locate(offset, total)
        if len(spans) != 1:
            pos = offset
            for chunk in chunks:
                self.write(pos, chunk)
                pos += len(chunk)
            return
        index, file_offset, _, n = spans[0]
        fd = self._fd(index)
        assert fd is not None
        self._dirty.add(index)
        try:
            written = os.pwritev(fd, chunks, file_offset)
        except OSError as exc:
            raise _error(exc, "write", self._paths[index], ExitCode.FILE_IO_ERROR) from exc
        self._bytes_written += max(written, 0)
        if written < n:  # a short vectored write: finish the rest with plain pwrite
            rest = memoryview(b"".join(chunks))[max(written, 0) :]
            self._pwrite(index, file_offset + max(written, 0), rest)

    def write_file(
        self, index: int, file_offset: int, data: memoryview | bytes | bytearray
    ) -> None:
        """Write into file ``index`` at a file-relative offset, *not* bounded by its length.

        For downloads whose length is unknown until the end (HTTP chunked / no
        Content-Length): build the layout with length 0 and stream with this; afterwards a new
        adaptor with the real length can verify or hash the file.

        Raises:
            StorageError: as :meth:`write`.
        """
        if file_offset < 0:
            raise ValueError("negative file offset")
        self._pwrite(index, file_offset, _byte_view(data))

    def _pwrite(self, index: int, file_offset: int, chunk: memoryview) -> None:
        fd = self._fd(index)
        assert fd is not None
        n = len(chunk)
        done = 0
        self._dirty.add(index)
        while done < n:
            try:
                written = os.pwrite(fd, chunk[done:], file_offset + done)
            except OSError as exc:
                raise _error(exc, "write", self._paths[index], ExitCode.FILE_IO_ERROR) from exc
            if written <= 0:
                raise StorageError(
                    f"Failed to write {self._paths[index]}: no progress",
                    exit_code=ExitCode.FILE_IO_ERROR,
                )
            done += written
            self._bytes_written += written

    def readinto(self, offset: int, buffer: memoryview | bytearray) -> None:
        """Fill ``buffer`` from global ``offset`` (``os.preadv``); unwritten bytes read as zeros.

        Raises:
            StorageError: an I/O error (exit 17).
            ValueError: the range is outside the layout.
        """
        view = _byte_view(buffer)
        for index, file_offset, buf_offset, n in self._layout.locate(offset, len(view)):
            target = view[buf_offset : buf_offset + n]
            fd = self._fd(index, create=False)
            done = 0
            while fd is not None and done < n:
                try:
                    got = os.preadv(fd, [target[done:]], file_offset + done)
                except OSError as exc:
                    raise _error(exc, "read", self._paths[index], ExitCode.FILE_IO_ERROR) from exc
                if got == 0:
                    break  # end of file: the rest was never written
                done += got
            if done < n:
                target[done:] = bytes(n - done)

    def readv_into(self, offset: int, views: list[memoryview]) -> None:
        """Fill ``views`` in order from the contiguous global range at ``offset``.

        One ``os.preadv`` for the whole run when it lies in one file and the file holds it
        all (the upload path: a peer's requests for adjacent blocks, each view the slot after
        its message header; docs/performance.md §9); otherwise view by view as
        :meth:`readinto`.

        Raises:
            StorageError: an I/O error (exit 17).
            ValueError: the range is outside the layout.
        """
        total = sum(len(v) for v in views)
        spans = self._layout.locate(offset, total)
        if len(spans) == 1 and len(views) > 1:
            index, file_offset, _, _ = spans[0]
            fd = self._fd(index, create=False)
            if fd is not None:
                try:
                    got = os.preadv(fd, views, file_offset)
                except OSError as exc:
                    raise _error(exc, "read", self._paths[index], ExitCode.FILE_IO_ERROR) from exc
                if got == total:
                    return
        for view in views:  # a short read, several files or one view: the careful path
            self.readinto(offset, view)
            offset += len(view)

    def read(self, offset: int, length: int) -> bytes:
        """Return ``length`` bytes from global ``offset`` (for hashing and verification).

        Like every method here it is meant for the trio thread.  Calling it from a hashing
        worker thread is safe only while nothing else uses the adaptor and every file it
        touches is already open (the descriptor LRU is not locked).
        """
        buffer = bytearray(length)
        self.readinto(offset, buffer)
        return bytes(buffer)

    async def sync(self) -> None:
        """``fdatasync`` every file written since the last sync, in a worker thread.

        Files evicted from the descriptor LRU are reopened for the sync.  On failure the files
        stay marked dirty.

        Raises:
            StorageError: fdatasync failed (exit 17; ENOSPC exit 9).
        """
        if not self._dirty:
            await trio.lowlevel.checkpoint()
            return
        dirty, self._dirty = self._dirty, set()
        jobs: list[tuple[str, int | None]] = []
        for index in sorted(dirty):
            fd = self._fds.get(index)
            jobs.append((self._paths[index], None if fd is None else os.dup(fd)))
        try:
            # Shielded: the thread owns the dup()ed descriptors and must run to close them.
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_sync_all, jobs)
        except BaseException:
            self._dirty |= dirty
            raise

    # --- allocation ---------------------------------------------------------------------

    async def allocate(
        self,
        mode: str,
        progress: Callable[[int, int], None] | None = None,
        *,
        min_size: int = 0,
    ) -> None:
        """Allocate the selected files of a new download (``--file-allocation``).

        Args:
            mode: ``none`` | ``prealloc`` | ``trunc`` | ``falloc``.
            progress: called in the trio thread as ``progress(done, total)`` after each step;
                ``total`` is the number of bytes this call allocates (sum over files of
                ``length - current size``).
            min_size: ``--no-file-allocation-limit``: nothing is allocated when the download's
                total length is smaller (aria2 ``RequestGroup::needsFileAllocation``).

        Raises:
            StorageError: ENOSPC (exit 9) or another I/O error (exit 17).
            ValueError: unknown ``mode``.
        """
        if mode not in ALLOCATION_MODES:
            raise ValueError(f"unknown file allocation mode {mode!r}")
        if mode == "none" or self._layout.total_length < min_size:
            await trio.lowlevel.checkpoint()
            return
        plan: list[tuple[int, int, int]] = []
        for index, entry in enumerate(self._layout.files):
            if not entry.selected or entry.length == 0:
                continue
            fd = self._fd(index)
            assert fd is not None
            size = os.fstat(fd).st_size
            if size < entry.length:
                plan.append((index, size, entry.length))
        total = sum(length - size for _, size, length in plan)
        done = 0

        def report(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        for index, start, length in plan:
            fd = self._fd(index)
            assert fd is not None
            dup = os.dup(fd)
            path = self._paths[index]
            self._dirty.add(index)
            try:
                if mode == "trunc":
                    await trio.to_thread.run_sync(_truncate, dup, length, path)
                    report(length - start)
                    continue
                pos = start
                while pos < length:  # falloc, and prealloc's fallocate attempt
                    n = min(_FALLOC_STEP, length - pos)
                    if not await trio.to_thread.run_sync(_fallocate, dup, pos, n, path):
                        break  # no fallocate here
                    pos += n
                    report(n)
                while pos < length:  # zeros, aria2's SingleFileAllocationIterator
                    n = min(_ALLOC_STEP, length - pos)
                    await trio.to_thread.run_sync(_write_zeros, dup, pos, n, path)
                    pos += n
                    report(n)
            finally:
                os.close(dup)

    # --- resume helpers -----------------------------------------------------------------

    def existing_length(self) -> int:
        """Bytes present on disk from offset 0: the file size for a single file (capped at its
        length); for several files, the contiguous prefix of full files plus the first short one.

        Used for ``-c`` without a control file.
        """
        total = 0
        for path, entry in zip(self._paths, self._layout.files, strict=True):
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                size = 0
            except OSError as exc:
                raise _error(exc, "stat", path, ExitCode.FILE_IO_ERROR) from exc
            total += min(size, entry.length)
            if size < entry.length:
                break
        return total

    def has_holes(self) -> bool:
        """True when a selected file has a hole before its end: sparse (``trunc``) or
        ``fallocate``d-but-unwritten space (reported as holes by ext4, xfs and tmpfs), so
        resuming ``-c`` from the file length would keep zeros.  Uses ``SEEK_HOLE``, falling back
        to ``st_blocks`` on file systems without it.
        """
        for index, entry in enumerate(self._layout.files):
            if not entry.selected or entry.length == 0:
                continue
            fd = self._fd(index, create=False)
            if fd is None:
                continue
            st = os.fstat(fd)
            if st.st_size == 0:
                continue
            try:
                if os.lseek(fd, 0, os.SEEK_HOLE) < st.st_size:
                    return True
            except (OSError, AttributeError):
                if st.st_blocks * 512 < st.st_size:
                    return True
        return False


# --- thread-side helpers (plain blocking functions) -------------------------------------


def _byte_view(data: memoryview | bytes | bytearray) -> memoryview:
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _make_parent(path: str) -> None:
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise _error(exc, "create directory", parent, ExitCode.DIR_CREATE_ERROR) from exc


def _error_missing(path: str) -> StorageError:
    return StorageError(
        f"Failed to create {path}: No such file or directory", exit_code=ExitCode.FILE_CREATE_ERROR
    )


def _open_all(paths: list[str], truncate: bool, keep: int) -> list[int | None]:
    """Create/open every path; descriptors beyond ``keep`` (0 = all) are closed again at once
    so a many-file torrent never holds more than the LRU allows."""
    fds: list[int | None] = []
    try:
        for path in paths:
            _make_parent(path)
            existed = os.path.lexists(path)
            flags = _OPEN_FLAGS | os.O_CREAT | (os.O_TRUNC if truncate else 0)
            try:
                fd = os.open(path, flags, 0o644)
            except OSError as exc:
                code = (
                    ExitCode.FILE_OPEN_ERROR
                    if existed and not truncate
                    else ExitCode.FILE_CREATE_ERROR
                )
                raise _error(exc, "open" if existed else "create", path, code) from exc
            if keep and len(fds) >= keep:
                os.close(fd)
                fds.append(None)
            else:
                fds.append(fd)
    except BaseException:
        for kept in fds:
            if kept is not None:
                os.close(kept)
        raise
    return fds


def _sync_all(jobs: list[tuple[str, int | None]]) -> None:
    failure: StorageError | None = None
    for path, fd in jobs:
        try:
            if fd is None:
                fd = os.open(path, _OPEN_FLAGS)
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                continue  # not syncable (a device or pipe): nothing to make durable
            if failure is None:
                failure = _error(exc, "sync", path, ExitCode.FILE_IO_ERROR)
    if failure is not None:
        raise failure


def _truncate(fd: int, length: int, path: str) -> None:
    try:
        os.ftruncate(fd, length)
    except OSError as exc:
        raise _error(exc, "truncate", path, ExitCode.FILE_IO_ERROR) from exc


def _fallocate(fd: int, offset: int, length: int, path: str) -> bool:
    """posix_fallocate; False when the file system cannot (aria2 falls back to zeros)."""
    try:
        os.posix_fallocate(fd, offset, length)
    except OSError as exc:
        if exc.errno in _NO_FALLOCATE:
            return False
        raise _error(exc, "allocate", path, ExitCode.FILE_IO_ERROR) from exc
    return True


def _write_zeros(fd: int, offset: int, length: int, path: str) -> None:
    end = offset + length
    zeros = memoryview(_ZEROS)
    try:
        while offset < end:
            written = os.pwrite(fd, zeros[: min(_ZERO_CHUNK, end - offset)], offset)
            if written <= 0:
                raise OSError(errno.EIO, "no progress")
            offset += written
    except OSError as exc:
        raise _error(exc, "allocate", path, ExitCode.FILE_IO_ERROR) from exc


# --- small files written whole ---------------------------------------------------------


def write_file_atomic(path: str, data: bytes) -> None:
    """Write a small file whole or not at all (a session file, a fetched ``.torrent``, saved
    metadata): a temporary name beside it, ``fsync``, then a rename over ``path``; a crash
    never leaves a truncated file behind.

    Raises:
        OSError: it cannot be written (the temporary file is removed).
    """
    tmp = path + _TEMP_SUFFIX
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --- control file (.aria2) I/O ----------------------------------------------------------


def _save_sync(path: str, data: bytes) -> None:
    temp = path + _TEMP_SUFFIX
    try:
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644
        )
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise _error(exc, "write the control file", path, ExitCode.FILE_IO_ERROR) from exc
    # Make the rename itself durable.  Best effort: some file systems refuse fsync on dirs.
    try:
        dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


async def save_control_file(path: str, data: bytes) -> None:
    """Atomically replace the control file ``path`` with ``data``, in a worker thread.

    Writes ``path + "__temp"`` (aria2's ``<name>.aria2__temp``), fsyncs it, renames it over
    ``path`` and fsyncs the directory.  A crash leaves either the old or the new file.

    Raises:
        StorageError: exit 9 on a full disk, else exit 17.
    """
    await trio.to_thread.run_sync(_save_sync, path, bytes(data))


def load_control_file(path: str) -> bytes | None:
    """The control file's bytes, or None when it does not exist.

    Raises:
        StorageError: it exists but cannot be read (exit 15).
    """
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _error(exc, "read the control file", path, ExitCode.FILE_OPEN_ERROR) from exc


def remove_control_file(path: str) -> None:
    """Delete the control file (download complete) and any leftover ``__temp``; missing is fine.

    Raises:
        StorageError: it exists but cannot be removed (exit 17).
    """
    for victim in (path, path + _TEMP_SUFFIX):
        try:
            os.unlink(victim)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _error(exc, "remove", victim, ExitCode.FILE_IO_ERROR) from exc
