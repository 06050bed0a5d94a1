"""RequestGroup: one download, one nursery (docs/design.md).

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
* **workers** — ``min(--split, Σ per-host -x)`` connection tasks (:mod:`trioaria.engine.transfer`)
  over the shared :class:`~trioaria.storage.picker.RangePicker`; which mirror each uses is the
  business of :mod:`trioaria.engine.mirrors` (``--uri-selector``, ``--server-stat-if/-of``).
* **saver** — every ``--auto-save-interval`` (1 s) while data flows: snapshot the state,
  ``fdatasync`` the data in a thread, then write the control file to a temp name and rename it
  (docs/decisions.md: the control file is the commit point).  Unchanged state is not rewritten.
* **finish** — ``--checksum`` is verified in a thread (exit 32 on mismatch), the control file
  is removed.  On cancellation (Ctrl-C, pause, remove) the control file is saved in a shielded
  ``finally`` so a later ``-c`` fetches only what is missing.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from typing import Any

import trio

from ..base import errors
from ..base.policy import SpeedLimit
from ..base.sources import ProbeResult, RangeStream
from ..base.speed import SpeedMeter
from ..base.stats import DownloadStats, DownloadStatus, FileStats, SourceStats
from ..net.connect import connect_deadline
from ..storage.picker import RangePicker
from ..storage.pieces import PieceStorage
from .lifecycle import transition
from .mirrors import Mirrors, SourceFactory, SourceState
from .server_stat import ServerStatTable
from .transfer import Transfers

__all__ = ["RequestGroup", "new_gid"]

log = logging.getLogger("trioaria.engine.group")

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
                    timeout = self.opt("connect-timeout") + self.opt("timeout")
                    with connect_deadline(timeout, f"probing {st.source.uri}"):
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
        from ..storage import control_file as cf
        from ..storage.disk import DiskAdaptor, load_control_file
        from ..storage.layout import FileLayout
        from ..storage.naming import control_file_path, decide_output, name_from_url

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
            from ..storage.disk import remove_control_file

            remove_control_file(self._control_path)  # aria2 drops a control file without data
        if probe.total_length is None:
            await Transfers(self).download_unknown_length(first, probe)
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
                # docs/decisions.md: --allow-overwrite restarts from zero (the saved pieces are stale)
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
                await Transfers(self).run(first, probe)
            if not storage.is_complete():
                raise self._final_error()
            await self._verify_checksum(disk, total)
            await disk.sync()
            from ..storage.disk import remove_control_file

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
            from ..storage.disk import remove_control_file

            remove_control_file(self._control_path)
            return True
        assert self.storage is not None
        self.storage.reset()
        return False

    async def _file_matches(self, disk: Any, total: int, checksum: Any) -> bool:
        from ..storage.checksum import hash_file_ranges, parse_checksum_option

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
        from ..storage import control_file as cf
        from ..storage.disk import save_control_file

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
