"""RequestGroup: one download, one nursery (STYLE.md §2.4).

Theory of operation
-------------------
``RequestGroup.run`` owns one nursery for the whole download.  Inside it:

* **probe** — the first source that answers tells the total length, whether ranges work, the
  file name and the validators (ETag / Last-Modified).  Its open body becomes the first
  connection's first segment, so a one-connection download costs one request.
* **resume** — ``<file>.aria2`` (aria2's control-file layout, ``storage.control_file``) is
  loaded if present, validated against the remote (length → exit 8, piece length → exit 10,
  a ``Last-Modified`` newer than our last save → exit 8), and loaded into ``PieceStorage``.
  ``-c`` without a control file continues from the existing file's length only when the file
  has no preallocated holes.
* **workers** — ``min(--split, Σ per-host -x)`` connection tasks.  Each asks the shared
  :class:`~trioaria.storage.picker.RangePicker` for a segment, reads it with ``recv_into`` into
  its own reused 1 MiB buffer and writes inline with ``os.pwrite`` (``DiskAdaptor.write``),
  marking blocks done only after the write.  Which source a connection uses is asked of
  ``--uri-selector`` (:mod:`trioaria.uri_selector`) when it starts and after every segment,
  with speeds measured in this run or loaded by ``--server-stat-if``.  A failing source is
  retried ``--max-tries``
  times (``--retry-wait`` apart), then dropped while the others finish.
* **saver** — every ``--auto-save-interval`` (1 s) while data flows: snapshot the state,
  ``fdatasync`` the data in a thread, then write the control file to a temp name and rename it
  (DECISIONS.md: the control file is the commit point).  Unchanged state is not rewritten.
* **finish** — ``--checksum`` is verified in a thread (exit 32 on mismatch), the control file
  is removed.  On cancellation (Ctrl-C, pause, remove) the control file is saved in a shielded
  ``finally`` so a later ``-c`` fetches only what is missing.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import time
from typing import Any

import trio

from . import errors
from .lifecycle import transition
from .mirrors import Mirrors, SourceFactory, SourceState
from .policy import SpeedLimit
from .prefetch import Prefetcher
from .server_stat import ServerStatTable
from .sources import ProbeResult, RangeStream
from .speed import SpeedMeter
from .stats import DownloadStats, DownloadStatus, FileStats, SourceStats
from .storage.picker import RangePicker, Segment
from .storage.pieces import BLOCK_LENGTH, PieceStorage
from .uri_selector import Context

__all__ = ["RequestGroup", "new_gid"]

log = logging.getLogger("trioaria.group")

BUFFER_SIZE = 1 << 20
# The endgame does not race a segment that will end within this many seconds anyway.
ENDGAME_MIN_ETA = 1.0
# A connection that delivered nothing for this long counts as stalled (the endgame races it).
STALL_SECONDS = 2.0
# Idle connections look for work again at least this often (a stall produces no event).
IDLE_RECHECK = 0.5
NOTICE = logging.INFO + 5  # aria2's NOTICE level sits between INFO and WARNING


def new_gid() -> str:
    """A random 64-bit GID as 16 lowercase hex digits (aria2's GID form)."""
    return secrets.token_hex(8)


class RequestGroup:
    """One download of one file from one or more mirror URIs."""

    def __init__(
        self,
        uris: list[str],
        options: Any,
        *,
        gid: str | None = None,
        source_factory: SourceFactory | None = None,
        server_stats: ServerStatTable | None = None,
    ) -> None:
        self.gid = gid or new_gid()
        # --server-stat-if/-of records shared by the run's downloads (cli.py passes them)
        self.server_stats = server_stats if server_stats is not None else ServerStatTable()
        self.uris = list(uris)
        self.options = options
        self.state = DownloadStatus.WAITING
        self.error: errors.TrioariaError | None = None
        self.path = ""
        self.total_length: int | None = None
        self.storage: PieceStorage | None = None
        self.picker: RangePicker | None = None
        self.disk: Any = None
        self.phase = ""
        self.phase_done = 0
        self.phase_total = 0
        self._source_factory = source_factory
        self.mirrors: Mirrors | None = None  # built when the download starts
        self._cancel_scope: trio.CancelScope | None = None
        self._stop_event = "stop"
        self._dirty = False
        self._changed = trio.Event()
        self._meter: SpeedMeter | None = None
        self._streamed = 0  # bytes written when the length is unknown
        self._control_path = ""
        self._finished_at: float | None = None
        self._started_at: float | None = None
        self.bytes_fetched = 0  # every payload byte received this run (resume accounting)
        self._seg_meters: dict[int, SpeedMeter] = {}
        self._last_failure: errors.TrioariaError | None = None
        self._unused_stream: RangeStream | None = None  # the probe's body until a worker takes it
        self._not_found = 0  # "not found" answers across all sources (--max-file-not-found)
        self._remote_mtime: float | None = None  # -R/--remote-time: applied at completion
        self._budget = 1
        # --max-download-limit (this download) and the engine's --max-overall-download-limit
        # (DownloadEngine sets it); both are mutable for RPC changeOption/changeGlobalOption.
        self.speed_limit = SpeedLimit(int(options.get("max-download-limit") or 0))
        self.overall_limit: SpeedLimit | None = None

    # --- public -----------------------------------------------------------------------

    def opt(self, name: str) -> Any:
        return self.options.get(name)

    async def run(self) -> None:
        """Run the download to its end; errors are recorded in ``self.error``, not raised."""
        self.state = transition(self.state, "start")
        now = trio.current_time()
        self._started_at = now
        self._meter = SpeedMeter(now)
        try:
            with trio.CancelScope() as scope:
                self._cancel_scope = scope
                await self._download()
                self._apply_remote_time()
                self.state = transition(self.state, "complete")
                log.log(NOTICE, "Download complete: %s", self.path)
            if scope.cancelled_caught and self.state is DownloadStatus.ACTIVE:
                self.state = transition(self.state, self._stop_event)
        except errors.TrioariaError as exc:
            self.error = exc
            self.state = transition(self.state, "fail")
            log.error("Download aborted: GID#%s %s", self.gid, exc)
        except Exception as exc:  # a bug or an unmapped OS error: one clear line, never a crash
            log.debug("unexpected error in GID#%s", self.gid, exc_info=True)
            self.error = errors.TrioariaError(f"{type(exc).__name__}: {exc}")
            self.state = transition(self.state, "fail")
            log.error("Download aborted: GID#%s %s", self.gid, self.error)
        finally:
            self._finished_at = trio.current_time()
            if self.mirrors is not None:
                try:
                    self.mirrors.report(self.gid, single_connection=self._budget <= 1)
                except Exception:  # bookkeeping must never hide the download's own outcome
                    log.debug("source report failed", exc_info=True)
                await self.mirrors.aclose()

    def _apply_remote_time(self) -> None:
        """-R/--remote-time: the file's mtime becomes the server's (HTTP Last-Modified, FTP
        MDTM: ``ProbeResult.last_modified``); atime is now, as aria2's ``File::utime``."""
        if self._remote_mtime is None or not self.path:
            return
        try:
            os.utime(self.path, (time.time(), self._remote_mtime))
        except OSError as exc:
            log.warning("cannot set the modification time of %s: %s", self.path, exc)

    def cancel(self, event: str = "stop") -> None:
        """Stop the download (``stop``: shutdown, ``pause``, ``remove``); progress is saved."""
        self._stop_event = event
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()
        elif self.state is DownloadStatus.WAITING and event in ("remove", "pause"):
            self.state = transition(self.state, event)

    def statistics(self) -> DownloadStats:
        now = trio.current_time()
        st = self.storage
        total = self.total_length
        completed = st.completed_length if st is not None else self._streamed
        speed = self._meter.rate(now) if self._meter and self.state is DownloadStatus.ACTIVE else 0
        files: tuple[FileStats, ...] = ()
        if self.path:
            files = (FileStats(1, self.path, total or 0, completed),)
        return DownloadStats(
            gid=self.gid,
            status=self.state,
            total_length=total,
            completed_length=completed,
            download_speed=speed,
            connections=sum(s.connections for s in self._sources),
            path=self.path,
            files=files,
            sources=tuple(
                SourceStats(
                    uri=s.source.uri,
                    bytes_downloaded=s.meter.total,
                    download_speed=s.meter.rate(now),
                    connections=s.connections,
                    failures=s.failures,
                    dropped=s.dropped,
                    last_error=s.last_error,
                )
                for s in self._sources
            ),
            piece_length=st.piece_length if st else 0,
            num_pieces=st.num_pieces if st else 0,
            bitfield=st.pieces.to_bytes() if st else b"",
            error_code=int(self.error.exit_code) if self.error else 0,
            error_message=str(self.error) if self.error else "",
            phase=self.phase,
            phase_done=self.phase_done,
            phase_total=self.phase_total,
        )

    def average_speed(self) -> int:
        if self._meter is None:
            return 0
        end = self._finished_at if self._finished_at is not None else trio.current_time()
        return self._meter.average(end)

    # --- the download -----------------------------------------------------------------

    def _make_sources(self) -> None:
        factory = self._source_factory
        if factory is None:
            from .source_factory import make_source

            factory = make_source
        self.mirrors = Mirrors(
            self.uris, self.options, factory=factory, server_stats=self.server_stats
        )

    @property
    def _sources(self) -> list[SourceState]:
        return self.mirrors.sources if self.mirrors is not None else []

    async def _probe(self) -> tuple[SourceState, ProbeResult]:
        """Ask sources in order until one answers (each retried up to --max-tries)."""
        last: errors.TrioariaError | None = None
        assert self.mirrors is not None
        for st in self.mirrors.probe_order():
            while not st.dropped:
                try:
                    with errors_from_timeout(self.opt("connect-timeout") + self.opt("timeout")):
                        result = await st.source.probe()
                    log.debug(
                        "GID#%s probe %s: length=%s ranges=%s name=%s etag=%s",
                        self.gid, st.source.uri, result.total_length, result.supports_ranges,
                        result.filename, result.etag,
                    )  # fmt: skip
                    return st, result
                except errors.TrioariaError as exc:
                    last = exc
                    await self._note_failure(st, exc)
        assert last is not None
        raise last

    async def _note_failure(self, st: SourceState, exc: errors.TrioariaError) -> None:
        self._last_failure = exc
        st.failures += 1
        st.last_error = str(exc)
        st.last_exc = exc
        max_tries = self.opt("max-tries")
        retryable = exc.retryable
        if isinstance(exc, errors.NotFoundError) and self.opt("max-file-not-found"):
            # aria2 RequestGroup::increaseAndValidateFileNotFoundCount: with the option set, a
            # "not found" is retried (within --max-tries) and N of them without a single
            # byte received fail the download with exit 4.
            self._not_found += 1
            limit = self.opt("max-file-not-found")
            if self._not_found >= limit and self.bytes_fetched == 0:
                raise errors.NotFoundError(
                    f"Reached max-file-not-found count={limit}",
                    exit_code=errors.ExitCode.MAX_FILE_NOT_FOUND,
                )
            retryable = True
        if not retryable or (max_tries and st.failures >= max_tries):
            st.dropped = True
            log.info("dropping source %s: %s", st.source.uri, exc)
            self._wake()
            return
        wait = self.opt("retry-wait")
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            wait = max(wait, min(retry_after, 600))
        if wait:
            await trio.sleep(wait)

    async def _download(self) -> None:
        self._make_sources()
        first, probe = await self._probe()
        self._unused_stream = probe.stream
        try:
            await self._download_probed(first, probe)
        finally:
            stream, self._unused_stream = self._unused_stream, None
            if stream is not None:
                with trio.CancelScope(shield=True):
                    await stream.finish(drained=False)

    async def _download_probed(self, first: SourceState, probe: ProbeResult) -> None:
        from .storage import control_file as cf
        from .storage.disk import DiskAdaptor, load_control_file
        from .storage.layout import FileLayout
        from .storage.naming import control_file_path, decide_output, name_from_url

        self.total_length = probe.total_length
        name = self.opt("out") or probe.filename or name_from_url(first.source.uri)
        directory = os.path.abspath(os.path.expanduser(self.opt("dir") or "."))
        if probe.not_modified:  # --conditional-get: 304, the local file is up to date
            self.path = os.path.join(directory, probe.filename or name)
            self._streamed = probe.total_length or 0
            log.info("%s is up to date (304 Not Modified); nothing to download", self.path)
            return
        if self.opt("remote-time"):
            self._remote_mtime = probe.last_modified
        decision = decide_output(
            directory,
            name,
            exists=os.path.exists,
            allow_overwrite=bool(self.opt("allow-overwrite")),
            auto_file_renaming=bool(self.opt("auto-file-renaming")),
            # -V with a checksum verifies an existing file in place (aria2), never renames it
            continue_=bool(self.opt("continue"))
            or bool(self.opt("check-integrity") and self.opt("checksum")),
            control_file_exists=lambda p: os.path.exists(control_file_path(p)),
            file_size=os.path.getsize,
            total_length=probe.total_length,
        )
        self.path = decision.path
        self._control_path = control_file_path(self.path)
        if self.opt("dry-run"):  # aria2: the remote file exists; nothing is written
            log.info("dry run: %s is available (%s bytes)", first.source.uri, probe.total_length)
            return
        if decision.stale_control_file:
            from .storage.disk import remove_control_file

            remove_control_file(self._control_path)  # aria2 drops a control file without data
        if probe.total_length is None:
            await self._download_unknown_length(first, probe)
            return

        total = probe.total_length
        for st in self._sources:
            st.source.expect_length(total)  # every mirror must serve the same length
        piece_length = self.opt("piece-length")
        storage = PieceStorage(total, piece_length)
        resumed = False
        restart = False  # a stale control file under --allow-overwrite
        raw = load_control_file(self._control_path) if decision.action == "resume" else None
        if raw is not None and os.path.exists(self.path):
            control = cf.parse(raw)
            cf.validate_against(control, total_length=total, piece_length=piece_length)
            saved_at = os.stat(self._control_path).st_mtime
            if probe.last_modified is not None and probe.last_modified > saved_at:
                if not self.opt("allow-overwrite"):
                    raise errors.CannotResumeError(
                        f"remote file {first.source.uri} was modified after the control file"
                        " was saved; use --allow-overwrite=true to restart from zero"
                    )
                # DECISIONS.md: --allow-overwrite restarts from zero (the saved pieces are stale)
                log.warning("remote file %s changed; restarting from zero", first.source.uri)
                restart = True
            else:
                if control.piece_length != piece_length:
                    control = cf.convert_piece_length(control, piece_length)
                storage.load(
                    control.bitfield,
                    [(p.index, p.length, p.bitfield) for p in control.in_flight],
                )
                resumed = True
        self.storage = storage
        layout = FileLayout([(os.path.basename(self.path), total)])
        disk = DiskAdaptor(os.path.dirname(self.path), layout)
        self.disk = disk
        fresh = not resumed and (decision.action != "resume" or restart)
        await disk.open(truncate=fresh)
        try:
            if not resumed and decision.action == "resume" and not restart:
                # -c without a control file: continue from the file's length if that is safe.
                length = disk.existing_length()
                if 0 < length <= total and not disk.has_holes():
                    storage.mark_bytes(0, length)
                    log.info("continuing %s from byte %d", self.path, length)
                elif length:
                    log.warning(
                        "%s has preallocated holes; -c cannot trust its length, starting over",
                        self.path,
                    )
            if await self._verify_existing(disk, total):
                return
            if fresh:
                # The control file exists before a single zero is allocated: a kill during
                # allocation must never let a later -c trust preallocated zeros as data.
                await self._save_control(force=True)
                self.phase = "FileAlloc"
                self.phase_total = total

                def progress(done: int, _total: int) -> None:
                    self.phase_done = done

                await disk.allocate(
                    self.opt("file-allocation"),
                    progress,
                    min_size=self.opt("no-file-allocation-limit"),
                )
                self.phase = ""
            self.picker = RangePicker(
                storage,
                min_split_size=self.opt("min-split-size"),
                selector=self.opt("stream-piece-selector"),
                allow_split=probe.supports_ranges,
            )
            if not storage.is_complete():
                await self._save_control(force=True)
                await self._run_workers(first, probe)
            if not storage.is_complete():
                raise self._final_error()
            await self._verify_checksum(disk, total)
            await disk.sync()
            from .storage.disk import remove_control_file

            remove_control_file(self._control_path)
        except BaseException:
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                if self.storage is not None and not self.storage.is_complete():
                    await self._save_control(force=True)
            raise
        finally:
            with trio.CancelScope(shield=True):
                await disk.aclose()

    def _final_error(self) -> errors.TrioariaError:
        """aria2 reports the last error that happened."""
        if self._last_failure is not None:
            return self._last_failure
        return errors.NetworkError("download stopped before it was complete")

    async def _verify_existing(self, disk: Any, total: int) -> bool:
        """-V with --checksum: an existing file that matches needs no download."""
        checksum = self.opt("checksum")
        if not (self.opt("check-integrity") and checksum):
            return False
        if disk.existing_length() != total:
            return False
        if await self._file_matches(disk, total, checksum):
            assert self.storage is not None
            self.storage.mark_bytes(0, total)
            from .storage.disk import remove_control_file

            remove_control_file(self._control_path)
            return True
        assert self.storage is not None
        self.storage.reset()
        return False

    async def _file_matches(self, disk: Any, total: int, checksum: Any) -> bool:
        from .checksum import hash_file_ranges, parse_checksum_option

        if isinstance(checksum, str):
            checksum = parse_checksum_option(checksum)
        elif isinstance(checksum, tuple):  # the option parser's (type, hex) form
            checksum = parse_checksum_option("=".join(checksum))
        self.phase, self.phase_done, self.phase_total = "Checksum", 0, total

        def _hash() -> bytes:
            return hash_file_ranges(disk.read, total, checksum.algorithm)

        digest = await trio.to_thread.run_sync(_hash)
        self.phase = ""
        return bool(digest == checksum.digest)

    async def _verify_checksum(self, disk: Any, total: int) -> None:
        checksum = self.opt("checksum")
        if not checksum:
            return
        if not await self._file_matches(disk, total, checksum):
            raise errors.ChecksumError(f"checksum mismatch for {self.path}")

    # --- workers ----------------------------------------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _run_workers(self, first: SourceState, probe: ProbeResult) -> None:
        assert self.picker is not None
        try:
            await self._run_workers_nursery(first, probe)
        except BaseExceptionGroup as group:
            _raise_single(group)

    async def _run_workers_nursery(self, first: SourceState, probe: ProbeResult) -> None:
        assert self.picker is not None
        assert self.mirrors is not None
        budget = self._budget = self.mirrors.connection_budget(probe.supports_ranges)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._saver)
            done = trio.Event()
            workers_left = [budget]

            async def worker(
                src: SourceState | None, stream: RangeStream | None, seg: Segment | None
            ) -> None:
                try:
                    await self._worker(src, stream, seg)
                finally:
                    workers_left[0] -= 1
                    if workers_left[0] == 0:
                        done.set()

            first_seg = None
            first_stream, self._unused_stream = self._unused_stream, None
            if first_stream is not None:
                if not self.picker.storage.is_block_done(0):
                    first_seg = self.picker.next_segment(first)
                    if first_seg is not None and first_seg.start != 0:
                        self.picker.release(first_seg)
                        first_seg = None
                if first_seg is None:
                    await first_stream.finish(drained=False)
                    first_stream = None
            first.connections += 1
            nursery.start_soon(worker, first, first_stream, first_seg)
            for _ in range(budget - 1):
                nursery.start_soon(worker, None, None, None)
            await done.wait()
            nursery.cancel_scope.cancel()

    def _eta_of(self, seg: Segment) -> float:
        """Seconds the connection reading ``seg`` still needs at its own recent speed.

        A connection that has just started has no speed yet: it counts as finishing soon
        (0), so the endgame does not race it; one that sent nothing for ``STALL_SECONDS``
        counts as never finishing.
        """
        meter = self._seg_meters.get(seg.id)
        if meter is None:
            return 0.0
        now = trio.current_time()
        rate = meter.rate(now)
        if rate > 0:
            return seg.remaining / rate
        return float("inf") if now - meter.started > STALL_SECONDS else 0.0

    async def _worker(
        self, src: SourceState | None, stream: RangeStream | None, seg: Segment | None
    ) -> None:
        picker = self.picker
        mirrors = self.mirrors
        assert picker is not None
        assert mirrors is not None
        buf = bytearray(BUFFER_SIZE)
        mv = memoryview(buf)
        # --uri-selector is asked when the connection starts, after each segment and when its
        # source was dropped; a new connection of the initial set is "supplementary".
        ask: Context | None = "supplementary" if src is None else None
        token = 0
        # --enable-http-pipelining (trioaria.prefetch): the current stream's wrapper, and the
        # end of the pipelined request that `stream` answers when it came from there
        prefetch: Prefetcher | None = None
        ahead_end: int | None = None
        try:
            while not picker.is_complete():
                if (src is None or src.dropped or ask is not None) and seg is None:
                    nxt = mirrors.pick(src, ask or "replacement")
                    if nxt is None or nxt is not src:
                        if src is not None:
                            src.connections -= 1
                            src = None
                        if nxt is None:
                            if all(s.dropped for s in self._sources):
                                return
                            changed = self._changed
                            await changed.wait()
                            continue
                        nxt.connections += 1
                        src = nxt
                    ask = None
                assert src is not None
                if seg is None:
                    changed = self._changed
                    seg = picker.next_segment(
                        src.source, eta_of=self._eta_of, race_min_eta=ENDGAME_MIN_ETA
                    )
                    if seg is None:
                        if picker.is_complete():
                            return
                        with trio.move_on_after(IDLE_RECHECK):
                            await changed.wait()
                        continue
                req_end = seg.end
                token = mirrors.read_started(src, seg)
                try:
                    if stream is None:
                        log.debug(
                            "GID#%s range %s-%s from %s", self.gid, seg.pos, seg.end, src.source.uri
                        )
                        with errors_from_timeout(self.opt("connect-timeout")):
                            stream = await src.source.open_range(seg.pos, seg.end)
                    elif ahead_end is not None:
                        req_end = ahead_end  # pipelined: the range as requested back then
                    else:
                        req_end = picker.storage.total_length
                    ahead_end = None
                    pumped = stream
                    if getattr(src.source, "pipelining", False):
                        pumped = prefetch = Prefetcher(
                            stream,
                            seg,
                            req_end,
                            pick=functools.partial(picker.next_segment, src.source, endgame=False),
                            release=picker.release,
                            threshold=BUFFER_SIZE,
                        )
                    drained = await self._pump(pumped, seg, mv, src, req_end)
                    mirrors.read_ended(token)
                    done_stream, stream = stream, None
                    await done_stream.finish(drained=drained)
                except errors.StorageError:
                    raise  # a local disk problem ends the download; no source is to blame
                except errors.TrioariaError as exc:
                    mirrors.read_ended(token)
                    if stream is not None:
                        s, stream = stream, None
                        with trio.CancelScope(shield=True):
                            await s.finish(drained=False)
                    if not self._ranges_ok() and picker.storage.completed_length:
                        picker.storage.reset()  # no Range support: start over on the next try
                    picker.release(seg)
                    seg = None
                    if prefetch is not None:
                        await prefetch.drop_ahead()
                        prefetch = None
                    self._wake()
                    await self._note_failure(src, exc)
                    ask = "replacement"
                    continue
                picker.release(seg)
                seg = None
                if prefetch is not None:
                    # the next segment is already this connection's (and, when the body was
                    # read to its end, already requested on it): no source choice in between
                    seg, stream, ahead_end = await prefetch.take_ahead(drained=drained)
                    prefetch = None
                    if stream is None:
                        ahead_end = None  # opened afresh: [seg.pos, seg.end)
                if seg is None:
                    ask = "replacement"
                self._wake()
        finally:
            mirrors.read_ended(token)
            if prefetch is not None:
                await prefetch.drop_ahead()
            if stream is not None:
                with trio.CancelScope(shield=True):
                    await stream.finish(drained=False)
            if seg is not None:
                picker.release(seg)
                self._wake()
            if src is not None and src.connections > 0:
                src.connections -= 1

    def _ranges_ok(self) -> bool:
        return self.picker is not None and self.picker.allow_split

    async def _pump(
        self,
        stream: RangeStream,
        seg: Segment,
        mv: memoryview,
        src: SourceState,
        req_end: int,
    ) -> bool:
        assert self.picker is not None
        assert self._meter is not None
        timeout = self.opt("timeout")
        meter = self._meter
        seg_meter = self._seg_meters[seg.id] = SpeedMeter(trio.current_time())
        try:
            return await self._pump_loop(stream, seg, mv, src, req_end, timeout, meter, seg_meter)
        finally:
            del self._seg_meters[seg.id]

    async def _pump_loop(
        self,
        stream: RangeStream,
        seg: Segment,
        mv: memoryview,
        src: SourceState,
        req_end: int,
        timeout: float,
        meter: SpeedMeter,
        seg_meter: SpeedMeter,
    ) -> bool:
        picker = self.picker
        disk = self.disk
        assert picker is not None
        start = seg.pos
        # --lowest-speed-limit (aria2 DownloadCommand::checkLowestDownloadSpeed): once this
        # request has run --startup-idle-time seconds, a speed at or below the limit closes it
        # and fails its source (exit 5 if no other source completes the file).
        lowest = int(self.opt("lowest-speed-limit") or 0)
        idle = float(self.opt("startup-idle-time") or 10)
        # One cancel scope per segment, its deadline pushed forward as data arrives (a scope
        # per read costs more than the read on a fast link).
        armed = trio.current_time()
        with trio.CancelScope(deadline=armed + timeout) as cs:
            while not seg.finished:
                want = min(len(mv), seg.end - seg.pos)
                limits = self._limits()
                if limits:
                    n = await self._read_limited(stream, mv[:want], limits, cs)
                else:
                    n = await stream.read_into(mv[:want])
                if n == 0:
                    if seg.finished:
                        break
                    raise errors.NetworkError(
                        f"{src.source.uri}: connection closed at byte {seg.pos} before {seg.end}"
                    )
                if seg.finished:  # a twin finished these bytes while we waited
                    break
                if seg.pos - start >= BLOCK_LENGTH:
                    # a whole block landed on this connection: earlier failures were transient
                    # (a server that sends a few bytes then stalls still uses up --max-tries)
                    src.failures = 0
                n = min(n, seg.end - seg.pos)  # a split may have moved seg.end while we waited
                disk.write(seg.pos, mv[:n])
                picker.advance(seg, n)
                now = trio.current_time()
                src.meter.add(n, now)
                seg_meter.add(n, now)
                meter.add(n, now)
                self.bytes_fetched += n
                self._dirty = True
                if picker.is_complete():
                    self._wake()
                if now - armed > 0.25:
                    cs.deadline = now + timeout
                    armed = now
                    if lowest and now - seg_meter.started >= idle:
                        speed = seg_meter.rate(now)
                        if speed <= lowest:
                            raise errors.TooSlowError(
                                f"Too slow Downloading speed: {speed} <= {lowest}(B/s),"
                                f" host:{src.source.host_key}",
                                retryable=False,
                            )
        if cs.cancelled_caught:
            raise errors.ReadTimeoutError(f"no data from {src.source.uri} for {timeout}s")
        return seg.pos == req_end

    # --- rate limits (trioaria.policy) ---------------------------------------------------

    def _limits(self) -> tuple[SpeedLimit, ...]:
        """The rate limits in force now (RPC may change either at any time)."""
        own, overall = self.speed_limit, self.overall_limit
        if overall is None or overall.rate <= 0:
            return (own,) if own.rate > 0 else ()
        return (own, overall) if own.rate > 0 else (overall,)

    @staticmethod
    async def _read_limited(
        stream: RangeStream,
        buf: memoryview,
        limits: tuple[SpeedLimit, ...],
        cs: trio.CancelScope,
    ) -> int:
        """One read under ``limits``: reserve, sleep until due, read at most the reservation.

        The read is capped to what every bucket allows (never below ``policy.min_read``), so
        it cannot overshoot; what the socket did not deliver is refunded.  The sleep does not
        count against ``--timeout``: ``cs``'s deadline moves by the delay.
        """
        now = trio.current_time()
        size = len(buf)
        for lim in limits:
            size = lim.read_size(size, now)
        delay = max(lim.delay_for(size, now) for lim in limits)
        for lim in limits:
            lim.consume(size, now)
        n = 0
        try:
            if delay > 0:
                cs.deadline += delay
                await trio.sleep(delay)
            n = await stream.read_into(buf[:size])
        finally:
            if n < size:
                now = trio.current_time()
                for lim in limits:
                    lim.refund(size - n, now)
        return n

    async def _download_unknown_length(self, first: SourceState, probe: ProbeResult) -> None:
        """No length known (chunked, no Content-Length): one connection, no control file."""
        from .storage.disk import DiskAdaptor
        from .storage.layout import FileLayout

        stream, self._unused_stream = self._unused_stream, None
        assert stream is not None
        assert self._meter is not None
        disk = DiskAdaptor(
            os.path.dirname(self.path), FileLayout([(os.path.basename(self.path), 0)])
        )
        await disk.open(truncate=True)
        buf = bytearray(BUFFER_SIZE)
        mv = memoryview(buf)
        first.connections = 1
        try:
            while True:
                with trio.move_on_after(self.opt("timeout")) as cs:
                    limits = self._limits()
                    if limits:
                        n = await self._read_limited(stream, mv, limits, cs)
                    else:
                        n = await stream.read_into(mv)
                if cs.cancelled_caught:
                    raise errors.ReadTimeoutError(f"no data from {first.source.uri}")
                if n == 0:
                    break
                disk.write_file(0, self._streamed, mv[:n])
                self._streamed += n
                now = trio.current_time()
                first.meter.add(n, now)
                self._meter.add(n, now)
            await stream.finish(drained=True)
            self.total_length = self._streamed
            if self.opt("checksum"):
                self.storage = PieceStorage(self._streamed, self.opt("piece-length"))
                self.storage.mark_bytes(0, self._streamed)
                reader = DiskAdaptor(
                    os.path.dirname(self.path),
                    FileLayout([(os.path.basename(self.path), self._streamed)]),
                )
                await reader.open(truncate=False)
                try:
                    await self._verify_checksum(reader, self._streamed)
                finally:
                    await reader.aclose()
        finally:
            first.connections = 0
            await disk.aclose()

    # --- control file -----------------------------------------------------------------

    async def _saver(self) -> None:
        interval = self.opt("auto-save-interval")
        if not interval:
            await trio.sleep_forever()
        while True:
            await trio.sleep(interval)
            await self._save_control()

    async def _save_control(self, *, force: bool = False) -> None:
        """Snapshot, fdatasync the data, then atomically replace the control file."""
        from .storage import control_file as cf
        from .storage.disk import save_control_file

        st = self.storage
        if st is None or self.disk is None or not self._control_path:
            return
        if not (self._dirty or force):
            return
        self._dirty = False
        bitfield, in_flight = st.snapshot()
        data = cf.serialize(
            cf.ControlFile(
                piece_length=st.piece_length,
                total_length=st.total_length,
                bitfield=bitfield,
                in_flight=tuple(cf.InFlightPiece(i, n, b) for i, n, b in in_flight),
            )
        )
        await self.disk.sync()
        await save_control_file(self._control_path, data)


def _raise_single(group: BaseExceptionGroup[BaseException]) -> None:
    """Re-raise a nursery's lone TrioariaError as itself (trio wraps child errors in groups)."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    mine = [e for e in leaves if isinstance(e, errors.TrioariaError)]
    if mine and len(mine) == len(leaves):
        raise mine[0] from None
    raise group


class errors_from_timeout:
    """``with errors_from_timeout(s):`` — trio.fail_after that raises our TimeoutError_ (exit 2)."""

    def __init__(self, seconds: float) -> None:
        self._scope = trio.move_on_after(seconds)
        self._seconds = seconds

    def __enter__(self) -> None:
        self._scope.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._scope.__exit__(*exc)  # type: ignore[arg-type]
        if self._scope.cancelled_caught:
            raise errors.TimeoutError_(f"timed out after {self._seconds:g}s")
