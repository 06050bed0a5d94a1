"""The storage session of one download: layout, pieces, disk, picker, hashes and control file.

Theory of operation
-------------------
Every protocol driver of a download (HTTP, FTP and SFTP range sources, BitTorrent peers) fills
the same pieces of the same files through one :class:`StorageSession` (docs/design.md, "One
picker, one disk layer").  The session owns:

* the **layout** (:class:`~trioaria.storage.layout.FileLayout`: one file or many, each
  selected or not) and the **wanted mask**: the pieces that overlap a selected file.  Pieces
  outside it are never handed out and unselected files are never created or allocated;
* the **piece storage** (:class:`~trioaria.storage.pieces.PieceStorage`): every piece moves
  missing -> partial -> written -> verified, or back to missing when its hash fails;
* the **disk adaptor** (inline ``os.pwrite``; allocation and ``fdatasync`` in threads);
* the **picker** (:class:`~trioaria.storage.picker.RangePicker`): range sources claim runs,
  peers claim blocks;
* the **piece hashes** (:class:`PieceHashes`: BEP 3 SHA-1 piece hashes, Metalink chunk
  checksums).  A piece whose bytes are stored in order from its start is hashed as they arrive
  (:meth:`StorageSession._feed`, "hash on arrival"); any other written piece is hashed in a
  worker thread, from the disk cache or through its own file descriptors.  A match marks it
  verified, a mismatch resets it and *blames* the sources that wrote it (``on_piece_failed``);
* the **disk cache** (``--disk-cache``): peers' blocks that cannot be hashed on arrival are kept
  in memory and written in offset order (``os.pwritev`` over contiguous runs) when the cache is
  full or before a save; such a piece, once complete, is hashed straight from the cache;
* the **control file** (aria2's ``<file>.aria2`` layout, :mod:`trioaria.storage.control_file`):
  loaded and validated by :meth:`open`, saved every ``--auto-save-interval`` by :meth:`run` while
  data flows (flush the cache, snapshot, ``fdatasync``, then write a temp file and rename it over:
  docs/decisions.md, "the control file is the commit point"), saved in :meth:`close` when the
  download stops unfinished, and removed by :meth:`finish`.  A BitTorrent download's file
  carries the extension bit and the info hash, as aria2's does.

The download is complete when every wanted piece is verified, or written when there are no
piece hashes.  Drivers use the public methods only (tests/test_layering.py checks that no driver
imports the engine's ``group`` or ``transfer``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import trio

from ..base.errors import ExitCode, StorageError
from . import control_file as cf
from .bitfield import Bitfield
from .disk import DiskAdaptor, load_control_file, remove_control_file, save_control_file
from .layout import FileEntry, FileLayout
from .picker import BlockOutcome, RangePicker, Segment
from .pieces import PieceStorage, spans_in_units

__all__ = [
    "MAX_LENGTH",
    "OpenMode",
    "PieceHashes",
    "StorageSession",
    "check_capacity",
]

log = logging.getLogger("trioaria.storage")

OpenMode = Literal["new", "resume", "restart"]

# Hash on arrival (StorageSession._feed): at most this many bytes of blocks that arrived ahead
# of their piece's running hash are kept, for all pieces together (a piece past it is hashed
# whole when it completes).
AHEAD_LIMIT = 4 << 20

# The largest download trioaria accepts: ext4's largest file.  Piece state grows with what is
# written (BlockMap), but per-piece bitfields still cover the whole length (16 TiB: 2 MiB).
MAX_LENGTH = 1 << 44


@dataclass(frozen=True, slots=True)
class PieceHashes:
    """Expected digests of every piece: BEP 3 ``pieces`` (SHA-1) or Metalink ``<pieces>``.

    Attributes:
        algorithm: hash name as :func:`~trioaria.storage.checksum.canonical_algorithm` knows it.
        piece_length: bytes per hashed piece; the session's pieces use this length.
        digests: one digest per piece, in order.
    """

    algorithm: str
    piece_length: int
    digests: tuple[bytes, ...]

    def __post_init__(self) -> None:
        # piece hashes only (BitTorrent, Metalink): a plain download never imports checksum
        from .checksum import canonical_algorithm

        object.__setattr__(self, "algorithm", canonical_algorithm(self.algorithm))
        if self.piece_length <= 0:
            raise ValueError("piece length must be positive")


def _slice_run(data: Sequence[memoryview], start: int, end: int) -> list[memoryview]:
    """The views of ``data`` (consecutive chunks) that cover bytes ``[start, end)`` of it."""
    out: list[memoryview] = []
    pos = 0
    for chunk in data:
        size = len(chunk)
        lo, hi = max(start, pos), min(end, pos + size)
        if lo < hi:
            out.append(chunk[lo - pos : hi - pos])
        pos += size
    return out


class _RunningHash:
    """The hash of a piece's first ``upto`` bytes, and whole blocks kept ahead of it."""

    __slots__ = ("ahead", "hasher", "size", "upto")

    def __init__(self, hasher: Any, size: int) -> None:
        self.hasher = hasher
        self.size = size  # the piece's length
        self.upto = 0
        self.ahead: dict[int, bytes] = {}  # offset in the piece -> a copy of the stored block


def check_capacity(directory: str, total_length: int, *, allocate: str) -> None:
    """Refuse at once a length the file system cannot hold, before any state is built.

    When ``--file-allocation`` writes the whole file up front (``prealloc``, ``falloc``) the free
    space (``statvfs``) must hold it; in every mode the file system's largest file size is probed
    with ``ftruncate`` on a scratch file (EFBIG or EINVAL: too large).  Both refusals are aria2's
    exit 9 (not enough disk space), with a message that names the size.

    Raises:
        StorageError: exit 9.
    """
    if total_length <= 0:
        return
    if total_length > MAX_LENGTH:
        raise StorageError(
            f"a file of {total_length} bytes is larger than trioaria supports"
            f" ({MAX_LENGTH} bytes, 16 TiB)",
            exit_code=ExitCode.NOT_ENOUGH_DISK_SPACE,
        )
    try:
        os.makedirs(directory, exist_ok=True)
        st = os.statvfs(directory)
    except OSError:
        return  # the real open reports the directory problem with its own exit code
    if allocate in ("prealloc", "falloc"):
        free = st.f_bavail * st.f_frsize
        if free < total_length:
            raise StorageError(
                f"Not enough disk space in {directory}: No space left on device"
                f" ({total_length} bytes needed, {free} available)",
                exit_code=ExitCode.NOT_ENOUGH_DISK_SPACE,
            )
    try:
        fd, probe = _scratch_file(directory)
    except OSError:
        return
    try:
        os.ftruncate(fd, total_length)
    except OSError as exc:
        raise StorageError(
            f"the file system of {directory} cannot hold a file of {total_length} bytes"
            f" ({exc.strerror})",
            exit_code=ExitCode.NOT_ENOUGH_DISK_SPACE,
        ) from None
    finally:
        os.close(fd)
        try:
            os.unlink(probe)
        except OSError:
            pass


def _scratch_file(directory: str) -> tuple[int, str]:
    for n in range(100):
        path = os.path.join(directory, f".trioaria-size-probe-{os.getpid()}-{n}")
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(directory)


class StorageSession:
    """Everything one download stores; see the module docstring.

    Args:
        directory: the download directory (``--dir``); layout paths are relative to it.
        files: the layout, or ``(relative path, length)`` pairs.
        piece_length: bytes per piece (``--piece-length``, a torrent's or Metalink's).
        control_path: where ``<file>.aria2`` lives.
        min_split_size, selector, allow_split: the range picker's ``-k``,
            ``--stream-piece-selector`` and whether sources accept ranges at all.
        hashes: expected piece digests, if any.
        info_hash: a torrent's info hash (the control file's BitTorrent bit).
        file_allocation, no_file_allocation_limit: ``--file-allocation`` and its size floor.
        allow_piece_length_change: ``--allow-piece-length-change``.
        auto_save_interval: ``--auto-save-interval`` seconds (0: only the final save).
        disk_cache: ``--disk-cache`` bytes for blocks from peers (0: write at once).
        max_open_files: ``--bt-max-open-files``: descriptors kept open at once (0: no bound).
        on_piece_failed: called as ``(piece, blamed sources)`` after a hash mismatch.
        on_piece_verified: called with each piece whose hash matched (BitTorrent sends HAVE).
    """

    def __init__(
        self,
        directory: str,
        files: FileLayout | Sequence[tuple[str, int]] | Sequence[FileEntry],
        *,
        piece_length: int,
        control_path: str,
        min_split_size: int = 20 << 20,
        selector: str = "default",
        allow_split: bool = True,
        hashes: PieceHashes | None = None,
        info_hash: bytes = b"",
        file_allocation: str = "prealloc",
        no_file_allocation_limit: int = 0,
        allow_piece_length_change: bool = False,
        auto_save_interval: float = 60,
        disk_cache: int = 0,
        max_open_files: int = 0,
        on_piece_failed: Callable[[int, frozenset[object]], None] | None = None,
        on_piece_verified: Callable[[int], None] | None = None,
    ) -> None:
        self.layout = files if isinstance(files, FileLayout) else FileLayout(files)
        self.directory = directory
        if hashes is not None:
            piece_length = hashes.piece_length
        self.storage = PieceStorage(self.layout.total_length, piece_length)
        if hashes is not None and len(hashes.digests) != self.storage.num_pieces:
            raise StorageError(
                f"{len(hashes.digests)} piece hashes for {self.storage.num_pieces} pieces"
            )
        self.hashes = hashes
        self.info_hash = info_hash
        self.control_path = control_path
        self.wanted = self._wanted_mask()
        self.picker = RangePicker(
            self.storage,
            min_split_size=min_split_size,
            selector=selector,
            allow_split=allow_split,
        )
        self.picker.set_wanted(None if self.wanted.all() else self.wanted)
        self.disk = DiskAdaptor(directory, self.layout, max_open_files=max_open_files)
        self._file_allocation = file_allocation
        self._no_allocation_limit = no_file_allocation_limit
        self._allow_piece_length_change = allow_piece_length_change
        self._auto_save_interval = auto_save_interval
        # BitTorrent's all-time upload (aria2 keeps it in the control file): what earlier runs
        # uploaded, plus what this run's swarm reports through ``uploaded_now``
        self.upload_base = 0
        self.uploaded_now: Callable[[], int] = lambda: 0
        # The disk cache assembles each piece in a buffer of its own (one copy per block, no
        # per-block object); a cache smaller than a piece writes through instead.
        self._cache_limit = max(0, disk_cache) if disk_cache >= self.storage.piece_length else 0
        self._cache: dict[int, memoryview] = {}  # block index -> its bytes, not yet on disk
        self._cache_bytes = 0
        self._piece_bufs: dict[int, memoryview] = {}  # piece -> its assembly buffer
        self._buf_pool: list[memoryview] = []  # spare buffers: no fresh pages for each piece
        self._max_bufs = self._cache_limit // self.storage.piece_length
        self._hashing: int | None = None  # the piece whose buffer a hasher thread reads
        # Hash on arrival (see _feed): each piece's running hash, and the digests of pieces
        # hashed whole that way, until their completion is handled (_pieces_written).
        self._streams: dict[int, _RunningHash] = {}
        self._streamed: dict[int, bytes] = {}
        self._ahead_bytes = 0  # copies of blocks kept ahead of their running hash
        self._on_piece_failed = on_piece_failed
        self.on_piece_verified = on_piece_verified
        # called with the (peer, block) claims a range segment overtook (BEP 19 web seeds next
        # to peers): the swarm sends CANCEL for them
        self.on_block_cancels: Callable[[list[tuple[object, int]]], None] | None = None
        self._dirty = False
        self._changed = trio.Event()
        self._complete = trio.Event()
        self._hash_send, self._hash_recv = trio.open_memory_channel[int](math.inf)
        self._opened = False
        self.hash_failures = 0
        self.phase = ""
        self.phase_done = 0
        self.phase_total = 0

    # --- geometry and state --------------------------------------------------------------

    @property
    def total_length(self) -> int:
        return self.storage.total_length

    @property
    def paths(self) -> list[str]:
        """Absolute paths of the layout's files, in layout order."""
        return self.disk.paths

    def _wanted_mask(self) -> Bitfield:
        st = self.storage
        mask = Bitfield(st.num_pieces)
        for entry in self.layout.files:
            if entry.selected and entry.length:
                first = entry.offset // st.piece_length
                last = (entry.end - 1) // st.piece_length
                for piece in range(first, last + 1):
                    mask.set(piece)
        if not any(e.selected for e in self.layout.files) or self.layout.total_length == 0:
            for piece in range(st.num_pieces):
                mask.set(piece)
        return mask

    @property
    def completed_length(self) -> int:
        """Bytes written (blocks on disk or in the cache)."""
        return self.storage.completed_length

    def is_complete(self) -> bool:
        """Every wanted piece verified (with hashes) or written (without)."""
        done = self.storage.verified if self.hashes is not None else self.storage.pieces
        if self.wanted.all():
            return done.all()
        return all(done[p] for p in self.wanted.iter_set())

    async def wait_complete(self) -> None:
        """Return once :meth:`is_complete` is true."""
        await self._complete.wait()

    def wake(self) -> None:
        """Tell the connections waiting in :meth:`wait_changed` that the state moved."""
        self._changed.set()
        self._changed = trio.Event()

    def changed_event(self) -> trio.Event:
        """An event set at the next state change (take it before deciding to wait)."""
        return self._changed

    def _check_complete(self) -> None:
        if not self._complete.is_set() and self.is_complete():
            self._complete.set()
            self.wake()

    # --- opening: resume, -c, allocation ---------------------------------------------------

    async def open(
        self,
        mode: OpenMode,
        *,
        remote_modified: float | None = None,
        allow_overwrite: bool = False,
        what: str = "",
    ) -> bool:
        """Load the control file (``mode="resume"``), open the files; True if progress was loaded.

        ``resume`` without a usable control file continues from the existing data's length (``-c``)
        when no preallocated hole could pass for data.  A remote file modified after the control file
        was saved is exit 8, or a restart from zero with ``allow_overwrite``.

        Raises:
            CannotResumeError, PieceLengthChangedError, ResumeFileError: see
                :func:`~trioaria.storage.control_file.validate_against`.
            StorageError: the files cannot be opened.
        """
        from ..base.errors import CannotResumeError

        resumed = False
        restart = mode == "restart"
        raw = load_control_file(self.control_path) if mode == "resume" else None
        if raw is not None and any(os.path.exists(p) for p in self.disk.paths):
            control = cf.parse(raw)
            cf.validate_against(
                control,
                total_length=self.total_length,
                piece_length=self.storage.piece_length,
                info_hash=self.info_hash,
                allow_piece_length_change=self._allow_piece_length_change,
            )
            saved_at = os.stat(self.control_path).st_mtime
            if remote_modified is not None and remote_modified > saved_at:
                if not allow_overwrite:
                    raise CannotResumeError(
                        f"remote file {what} was modified after the control file was saved;"
                        " use --allow-overwrite=true to restart from zero"
                    )
                # docs/decisions.md: --allow-overwrite restarts from zero (saved pieces are stale)
                log.warning("remote file %s changed; restarting from zero", what)
                restart = True
            else:
                if control.piece_length != self.storage.piece_length:
                    control = cf.convert_piece_length(control, self.storage.piece_length)
                self._load(control)
                resumed = True
        fresh = not resumed and (mode != "resume" or restart)
        await self.disk.open(truncate=fresh)
        self._opened = True
        if not resumed and mode == "resume" and not restart:
            length = self.disk.existing_length()
            if 0 < length <= self.total_length and not self.disk.has_holes():
                self.storage.mark_bytes(0, length)
                if self.hashes is not None:
                    self._queue_written_pieces()
                log.info("continuing %s from byte %d", self.paths[0], length)
            elif length:
                log.warning(
                    "%s has preallocated holes; -c cannot trust its length, starting over",
                    self.paths[0],
                )
        self._check_complete()
        return resumed

    def _load(self, control: cf.ControlFile) -> None:
        st = self.storage
        self.upload_base = control.upload_length
        st.load(control.bitfield, [(p.index, p.length, p.bitfield) for p in control.in_flight])
        if self.hashes is not None:
            # The saved bitfield holds only verified pieces (see snapshot); a piece that was
            # written but not yet hashed comes back through the in-flight list and is hashed now.
            saved = Bitfield.from_bytes(control.bitfield, st.num_pieces)
            for piece in saved.iter_set():
                st.mark_verified(piece)
            self._queue_written_pieces()

    def _queue_written_pieces(self) -> None:
        st = self.storage
        for piece in st.pieces.iter_set():
            if not st.verified[piece]:
                self._hash_send.send_nowait(piece)

    async def allocate(self, progress: Callable[[int, int], None] | None = None) -> None:
        """``--file-allocation`` for a fresh download: the control file is saved first, so a kill
        during allocation never lets a later ``-c`` trust preallocated zeros as data."""
        await self.save(force=True)
        self.phase, self.phase_done, self.phase_total = "FileAlloc", 0, self.total_length

        def report(done: int, total: int) -> None:
            self.phase_done = done
            if progress is not None:
                progress(done, total)

        await self.disk.allocate(self._file_allocation, report, min_size=self._no_allocation_limit)
        self.phase = ""

    def existing_length(self) -> int:
        """Bytes already on disk from offset 0 (``-c`` and ``-V`` decisions)."""
        return self.disk.existing_length()

    def mark_all_present(self) -> None:
        """The existing file matched a whole-file checksum (``-V``): everything is done."""
        st = self.storage
        st.mark_bytes(0, self.total_length)
        for piece in range(st.num_pieces):
            st.mark_verified(piece)
        self._check_complete()

    def mark_verified_pieces(self, pieces: Iterable[int]) -> None:
        """Pieces whose bytes on disk were checked against their hashes elsewhere (``-V`` on a
        torrent): written and verified, the picker resynchronised, completion re-evaluated."""
        st = self.storage
        for piece in pieces:
            rng = st.piece_blocks(piece)
            st.mark_blocks(rng.start, rng.stop)
            st.mark_verified(piece)
            if self.on_piece_verified is not None:
                self.on_piece_verified(piece)
        self.picker.resync()
        self._dirty = True
        self._check_complete()

    def _unsettled_spans(self, offset: int, length: int) -> list[tuple[int, int]]:
        """``[start, end)`` spans of ``[offset, offset + length)`` outside complete pieces.

        A complete piece (every block written: verified, or queued for or under its hash
        check, maybe in a worker thread reading the disk) is settled until a failed check
        clears it: what was checked is what stays stored, and a late duplicate (an endgame
        twin, a repeat from a peer) cannot change bytes under the hasher or after it.
        """
        st = self.storage
        pieces = st.pieces
        return spans_in_units([(offset, offset + length)], st.piece_length, lambda p: not pieces[p])

    def restart_from_zero(self) -> None:
        """Forget all progress (a source without Range support must start over)."""
        self.storage.reset()
        self._cache.clear()  # blocks cached before the restart must not be flushed over new ones
        self._cache_bytes = 0
        self._release_buffers()
        self._streams.clear()
        self._streamed.clear()
        self._ahead_bytes = 0
        self._dirty = True
        self._complete = trio.Event()

    # --- writing ----------------------------------------------------------------------------

    def write_segment(self, seg: Segment, data: memoryview) -> None:
        """A range source's bytes at ``seg.pos``: written inline, then marked (never before).

        Bytes for a piece already complete (verified, or waiting for its hash check) are not
        stored: a racing twin segment (endgame) may still be fetching them, and a second
        writer's bytes must not replace the ones checked (:meth:`_unsettled_spans`).
        """
        pos = seg.pos
        for start, end in self._unsettled_spans(pos, len(data)):
            part = data[start - pos : end - pos]
            self.disk.write(start, part)
            if self.hashes is not None:
                self._feed(start, part)
        pieces = self.picker.advance(seg, len(data))  # the picker records the writers (blame)
        self._dirty = True
        if self.on_block_cancels is not None:
            cancels = self.picker.take_cancels()
            if cancels:
                self.on_block_cancels(cancels)
        if pieces:
            self._pieces_written(pieces)

    def write_block(
        self, source: object, block: int, data: bytes | bytearray | memoryview
    ) -> BlockOutcome:
        """A peer's block: cached (``--disk-cache``) or written, then marked (a run of one for
        :meth:`write_blocks`).

        Returns the picker's outcome (completed pieces and the duplicate endgame claims to cancel).
        """
        return self.write_blocks(source, block, [memoryview(data)])

    def write_blocks(self, source: object, first: int, data: Sequence[memoryview]) -> BlockOutcome:
        """A peer's consecutive blocks ``first, first + 1, ...`` (one read's worth), then marked
        with one picker call (:meth:`Picker.blocks_written`).  The same as :meth:`write_block`
        for each, in order.

        A block that continues its piece's running hash (:meth:`_feed`) is written at once; runs
        of them with one ``pwritev``.  Any other block goes to the disk cache (``--disk-cache``)
        so that its piece can be hashed from memory, or is written at once without a cache.
        """
        st = self.storage
        start_offset = st.block_start(first)
        feed = self._feed if self.hashes is not None else None
        if not self._cache_limit:
            total = sum(map(len, data))
            for start, end in self._unsettled_spans(start_offset, total):
                # the usual case, no complete piece in the way: the run as it came, unsliced
                whole = start == start_offset and end == start_offset + total
                run = (
                    list(data)
                    if whole
                    else _slice_run(data, start - start_offset, end - start_offset)
                )
                self.disk.writev(start, run)
                if feed is not None:
                    for chunk in run:
                        feed(start, chunk)
                        start += len(chunk)
        else:
            pl = st.piece_length
            cache = self._cache
            bufs = self._piece_bufs
            streams = self._streams
            through: list[memoryview] = []  # a run of blocks to write at once
            through_at = offset = start_offset
            block = first
            for chunk in data:
                size = len(chunk)
                piece, start = divmod(offset, pl)
                stream = streams.get(piece)
                if (
                    stream is not None
                    and stream.upto == start
                    and start + size < stream.size
                    and not stream.ahead
                    and block not in cache
                ):  # the bulk of a download: the next block of a running hash (see _feed)
                    stream.hasher.update(chunk)
                    stream.upto += size
                    if not through:
                        through_at = offset
                    through.append(chunk)
                elif block in cache or st.pieces[piece]:
                    # a duplicate (of a cached block, or into a complete piece: see
                    # _unsettled_spans) is not stored; the run written through ends here
                    if through:
                        self.disk.writev(through_at, through)
                        through = []
                    if feed is not None and not st.pieces[piece]:
                        self._unstream(piece)  # the stream must not hash what is not stored
                elif feed is not None and feed(offset, chunk):
                    if not through:
                        through_at = offset
                    through.append(chunk)
                else:
                    if through:
                        self.disk.writev(through_at, through)
                        through = []
                    buf = bufs.get(piece)
                    if buf is None:
                        if len(bufs) >= self._max_bufs:
                            self.flush_cache()
                        buf = self._buf_pool.pop() if self._buf_pool else memoryview(bytearray(pl))
                        bufs[piece] = buf
                    end = start + size
                    buf[start:end] = chunk
                    cache[block] = buf[start:end]
                    self._cache_bytes += end - start
                # Blocks of a run are adjacent on disk: a piece's last block may be shorter,
                # and the next piece starts right behind it.
                offset += size
                block += 1
            if through:
                self.disk.writev(through_at, through)
        outcome = self.picker.blocks_written(source, first, first + len(data))
        self._dirty = True
        if outcome.pieces:
            self._pieces_written(list(outcome.pieces))
        if self._cache_bytes > self._cache_limit:
            self.flush_cache()
        return outcome

    def flush_cache(self) -> None:
        """Write every cached block in offset order, contiguous runs with one ``pwritev``; the
        piece buffers go back to the pool (except one a hasher thread is still reading)."""
        if not self._cache:
            self._release_buffers()
            return
        start_of = self.storage.block_start
        blocks = sorted(self._cache)
        run: list[memoryview] = []
        run_start = prev = -2
        for block in blocks:
            if block != prev + 1 and run:
                self.disk.writev(start_of(run_start), run)
                run = []
            if not run:
                run_start = block
            run.append(self._cache[block])
            prev = block
        if run:
            self.disk.writev(start_of(run_start), run)
        self._cache.clear()
        self._cache_bytes = 0
        self._release_buffers()

    def _release_buffers(self) -> None:
        for piece, buf in self._piece_bufs.items():
            if piece != self._hashing and len(self._buf_pool) < self._max_bufs:
                self._buf_pool.append(buf)
        self._piece_bufs.clear()

    def _feed(self, offset: int, data: memoryview) -> bool:
        """Hash on arrival: bytes just stored at global ``offset`` extend the running hash of
        their piece when they continue it; the first bytes of a piece start one.

        A hash starts only in a piece with no block stored yet (one that already has some is
        hashed whole: with a disk cache, from memory).  A whole block that lands ahead of the
        hash (peers answer a pipeline slightly out of order) is kept as a copy and hashed when
        the bytes before it arrive, up to :data:`AHEAD_LIMIT` bytes for all pieces.  A piece
        whose every byte was hashed this way, in order, as it was stored is verified in the write
        that completes it, with no read-back from disk and no thread hop (a mismatch goes to the
        hasher task, which reports it as usual).  Any other write into a piece (behind the hash, a repeat, an odd range
        ahead) drops its running hash, and the piece is hashed whole as before: what is hashed
        is always what was stored last.  docs/performance.md §9.

        Returns:
            True when every byte went into a running hash (or waits for it, kept ahead).
        """
        st = self.storage
        pl = st.piece_length
        streams = self._streams
        bl = st.block_length
        view = data if type(data) is memoryview else memoryview(data)
        hashed = True
        while view:
            piece = offset // pl
            start = offset - piece * pl
            take = min(len(view), pl - start)
            stream = streams.get(piece)
            if stream is None:
                blocks = st.piece_blocks(piece)
                if (
                    start == 0
                    and not st.verified[piece]
                    and not st.blocks_done_in(blocks.start, blocks.stop)
                ):
                    from .checksum import new_hasher  # imported already by PieceHashes

                    self._streamed.pop(piece, None)
                    assert self.hashes is not None
                    stream = _RunningHash(new_hasher(self.hashes.algorithm), st.piece_size(piece))
                    streams[piece] = stream
                    self._hash_ahead(stream, view[:take])
                else:
                    self._unstream(piece)
                    hashed = False
            elif stream.upto == start:
                self._hash_ahead(stream, view[:take])
            elif (
                start > stream.upto
                and start % bl == 0
                and (take == bl or start + take == stream.size)
                and start not in stream.ahead
                and self._ahead_bytes + take <= AHEAD_LIMIT
            ):
                stream.ahead[start] = bytes(view[:take])
                self._ahead_bytes += take
            else:
                self._unstream(piece)
                hashed = False
                stream = None
            if stream is not None and stream.upto == stream.size:
                self._unstream(piece)
                self._streamed[piece] = stream.hasher.digest()
            view = view[take:]
            offset += take
        return hashed

    def _hash_ahead(self, stream: _RunningHash, data: memoryview) -> None:
        """Extend ``stream`` by ``data`` and by the blocks kept ahead that now follow on."""
        stream.hasher.update(data)
        stream.upto += len(data)
        ahead = stream.ahead
        while ahead:
            chunk = ahead.pop(stream.upto, None)
            if chunk is None:
                break
            stream.hasher.update(chunk)
            stream.upto += len(chunk)
            self._ahead_bytes -= len(chunk)

    def _unstream(self, piece: int) -> None:
        """Forget the running hash (and a finished one not yet compared) of ``piece``."""
        stream = self._streams.pop(piece, None)
        if stream is not None:
            self._ahead_bytes -= sum(map(len, stream.ahead.values()))
        self._streamed.pop(piece, None)

    def _pieces_written(self, pieces: Iterable[int]) -> None:
        if self.hashes is None:
            for piece in pieces:
                self.picker.piece_verified(piece)  # nothing to check: forget who wrote it
            self._check_complete()
            return
        digests = self.hashes.digests
        streamed = self._streamed
        for piece in pieces:
            if streamed.get(piece, b"") == digests[piece]:  # hashed on arrival, and it matches
                del streamed[piece]
                self._piece_verified(piece)
            else:  # hashed in a thread, or a mismatch the hasher task reports as usual
                self._hash_send.send_nowait(piece)

    # --- hashing ----------------------------------------------------------------------------

    def _piece_verified(self, piece: int) -> None:
        self.storage.mark_verified(piece)
        self.picker.piece_verified(piece)
        self._dirty = True
        if self.on_piece_verified is not None:
            self.on_piece_verified(piece)
        self._check_complete()

    async def _hasher(self) -> None:
        assert self.hashes is not None
        hashes = self.hashes
        st = self.storage
        async for piece in self._hash_recv:
            if not st.pieces[piece] or st.verified[piece]:
                continue
            start = piece * st.piece_length
            length = st.piece_size(piece)
            streamed = self._streamed.pop(piece, None)
            cached = None if streamed is not None else self._cached_piece(piece)
            if streamed is not None:
                digest = streamed  # hashed on arrival (_feed)
            elif cached is not None:
                self._hashing = piece  # its buffer must not be reused while the thread reads
                try:
                    digest = await trio.to_thread.run_sync(_digest, hashes.algorithm, cached)
                finally:
                    self._hashing = None
            else:
                if any(b in self._cache for b in st.piece_blocks(piece)):
                    self.flush_cache()  # part cached, part on disk: the disk must have it all
                digest = await trio.to_thread.run_sync(
                    _hash_on_own_fds, self.layout, self.paths, hashes.algorithm, start, length
                )
            if not st.pieces[piece]:
                continue  # reset meanwhile (a restart from zero)
            if digest == hashes.digests[piece]:
                self._piece_verified(piece)
            else:
                self._piece_failed(piece)

    def _piece_failed(self, piece: int) -> None:
        self.hash_failures += 1
        self._unstream(piece)
        blamed = self.picker.piece_failed(piece)
        for block in self.storage.piece_blocks(piece):
            cached = self._cache.pop(block, None)
            if cached is not None:
                self._cache_bytes -= len(cached)
        log.warning(
            "piece %d failed its %s check; fetching it again",
            piece,
            self.hashes.algorithm if self.hashes else "",
        )
        self._dirty = True
        if self._on_piece_failed is not None:
            self._on_piece_failed(piece, blamed)
        self.wake()

    def _cached_piece(self, piece: int) -> memoryview | None:
        """The whole piece in its assembly buffer, when every block of it is cached."""
        cache = self._cache
        if not all(b in cache for b in self.storage.piece_blocks(piece)):
            return None
        return self._piece_bufs[piece][: self.storage.piece_size(piece)]

    # --- background work and the control file ---------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """The session's background tasks: the piece hasher and the auto-saver.

        Start it with ``nursery.start``; cancel its nursery to stop it.
        """
        async with trio.open_nursery() as nursery:
            if self.hashes is not None:
                nursery.start_soon(self._hasher)
            nursery.start_soon(self._saver)
            task_status.started()

    async def _saver(self) -> None:
        interval = self._auto_save_interval
        if not interval:
            await trio.sleep_forever()
        while True:
            await trio.sleep(interval)
            await self.save()

    def snapshot(self) -> cf.ControlFile:
        """The control-file form of the state now (after the cache was flushed)."""
        st = self.storage
        bitfield, in_flight = st.snapshot()
        flights = [cf.InFlightPiece(i, n, b) for i, n, b in in_flight]
        if self.hashes is not None:
            # Only verified pieces count as done; written-but-unhashed ones are saved in flight
            # with every block set, and hashed again on resume.
            bits = bytearray(st.verified.to_bytes())
            for piece in st.pieces.iter_set():
                if not st.verified[piece]:
                    nblocks = len(st.piece_blocks(piece))
                    full = Bitfield(nblocks)
                    for k in range(nblocks):
                        full.set(k)
                    flights.append(cf.InFlightPiece(piece, st.piece_size(piece), full.to_bytes()))
            bitfield = bytes(bits)
            flights.sort(key=lambda p: p.index)
        return cf.ControlFile(
            piece_length=st.piece_length,
            total_length=st.total_length,
            bitfield=bitfield,
            in_flight=tuple(flights),
            info_hash=self.info_hash,
            bittorrent=bool(self.info_hash),
            upload_length=self.upload_base + self.uploaded_now() if self.info_hash else 0,
        )

    async def save(self, *, force: bool = False) -> None:
        """Flush the cache, snapshot, ``fdatasync`` the data, then replace the control file."""
        if not self._opened or not self.control_path:
            return
        if not (self._dirty or force):
            return
        self._dirty = False
        self.flush_cache()
        data = cf.serialize(self.snapshot())
        await self.disk.sync()
        await save_control_file(self.control_path, data)

    def mark_dirty(self) -> None:
        """Progress happened outside the write methods (e.g. a restart): save it next time."""
        self._dirty = True

    async def finish(self, *, keep_control: bool = False) -> None:
        """The download is complete: flush, ``fdatasync`` and remove the control file, or
        with ``keep_control`` (``--force-save``, as aria2) save it, every piece marked done."""
        if keep_control and self.control_path:
            await self.save(force=True)
            return
        self.flush_cache()
        await self.disk.sync()
        remove_control_file(self.control_path)

    def remove_control_file(self) -> None:
        """Drop the control file (nothing to resume)."""
        remove_control_file(self.control_path)

    async def close(self) -> None:
        """Save an unfinished download's state (shielded, bounded) and close the files."""
        with trio.CancelScope(shield=True):
            try:
                if self._opened and not self.is_complete():
                    with trio.move_on_after(10):
                        await self.save(force=True)
            finally:
                self._hash_send.close()
                await self.disk.aclose()

    def readinto(self, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` from a global offset, as :meth:`read` but with no new object: the
        upload path reads each block straight after its header in one send buffer
        (docs/performance.md §9)."""
        self.disk.readinto(offset, buffer)
        if not self._cache:
            return
        st = self.storage
        end = offset + len(buffer)
        for block in range(st.block_of(offset), st.block_of(end - 1) + 1):
            cached = self._cache.get(block)
            if cached is None:
                continue
            start = st.block_start(block)
            lo, hi = max(start, offset), min(start + len(cached), end)
            buffer[lo - offset : hi - offset] = cached[lo - start : hi - start]

    def readv_into(self, offset: int, views: list[memoryview]) -> None:
        """Fill ``views`` in order from the contiguous range at ``offset``, as :meth:`readinto`
        but with one ``preadv`` for the run (adjacent blocks requested by a peer)."""
        if self._cache:
            for view in views:
                self.readinto(offset, view)
                offset += len(view)
            return
        self.disk.readv_into(offset, views)

    def read(self, offset: int, length: int) -> bytes:
        """Bytes at a global offset: the disk, with blocks still in the disk cache laid over
        (uploads to peers read pieces that may not be flushed yet)."""
        data = self.disk.read(offset, length)
        if not self._cache:
            return data
        st = self.storage
        out = bytearray(data)
        end = offset + length
        for block in range(st.block_of(offset), st.block_of(end - 1) + 1):
            cached = self._cache.get(block)
            if cached is None:
                continue
            start = st.block_start(block)
            lo, hi = max(start, offset), min(start + len(cached), end)
            out[lo - offset : hi - offset] = cached[lo - start : hi - start]
        return bytes(out)


# --- thread-side helpers ---------------------------------------------------------------------


def _digest(algorithm: str, data: bytes | memoryview) -> bytes:
    from .checksum import new_hasher  # imported already by PieceHashes

    hasher = new_hasher(algorithm)
    hasher.update(data)
    return hasher.digest()


def _hash_on_own_fds(
    layout: FileLayout, paths: list[str], algorithm: str, start: int, length: int
) -> bytes:
    """Hash ``[start, start+length)`` reading through descriptors of its own (worker thread)."""
    from .checksum import new_hasher  # imported already by PieceHashes

    hasher = new_hasher(algorithm)
    for index, file_offset, _global, size in layout.locate(start, length):
        fd = os.open(paths[index], os.O_RDONLY)
        try:
            pos = file_offset
            end = file_offset + size
            while pos < end:
                chunk = os.pread(fd, min(1 << 20, end - pos), pos)
                if not chunk:
                    hasher.update(bytes(end - pos))  # a short file reads as zeros: it will fail
                    break
                hasher.update(chunk)
                pos += len(chunk)
        finally:
            os.close(fd)
    return hasher.digest()
