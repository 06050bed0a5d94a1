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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from ..base import errors
from ..base.policy import SpeedLimit
from ..base.sources import ProbeResult, RangeStream
from ..base.speed import SpeedMeter
from ..base.stats import DownloadStats, DownloadStatus, FileStats, SourceStats
from ..net.connect import connect_deadline
from .lifecycle import transition
from .mirrors import Mirrors, SourceFactory, SourceState
from .paths_in_use import PathsInUse
from .server_stat import ServerStatTable
from .transfer import TransferContext, Transfers, raise_single

if TYPE_CHECKING:
    from ..storage.session import OpenMode, PieceHashes, StorageSession

__all__ = ["RequestGroup", "new_gid"]

log = logging.getLogger("trioaria.engine.group")

# Bytes of --checksum hashing per worker-thread call (a stop waits for one call at most).
CHECKSUM_STEP = 16 << 20
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
        piece_hashes: PieceHashes | None = None,
        expected_length: int | None = None,
    ) -> None:
        self.gid = gid or new_gid()
        # the length the download must have (a Metalink file's <size>): a mirror answering
        # another length is dropped, as aria2's RequestGroup::validateTotalLength
        self.expected_length = expected_length
        # --server-stat-if/-of records shared by the run's downloads (cli.py passes them)
        self.server_stats = server_stats if server_stats is not None else ServerStatTable()
        self.uris = list(uris)
        self.options = options
        self.state = DownloadStatus.WAITING
        self.error: errors.TrioariaError | None = None
        self.path = ""
        self.total_length: int | None = None
        self.session: StorageSession | None = None  # built once the length is known
        self._piece_hashes: PieceHashes | None = piece_hashes
        self.phase = ""
        self.phase_done = 0
        self.phase_total = 0
        self._source_factory = source_factory
        # files written by the run's downloads (the engine shares its own; alone: just ours)
        self.paths_in_use = PathsInUse()
        self.mirrors: Mirrors | None = None  # built when the download starts
        self._cancel_scope: trio.CancelScope | None = None
        self._stop_event = "stop"
        self._meter: SpeedMeter | None = None
        self._streamed = 0  # bytes written when the length is unknown
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
        # events only the engine's hooks hear (``bt-complete``); DownloadEngine sets it
        self.notify: Callable[[str], None] = lambda event: None

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
                try:
                    await self._download()
                except BaseExceptionGroup as group:  # a nursery's lone error, as itself
                    raise_single(group)
                self._apply_remote_time()
                self.state = transition(self.state, "complete")
                log.log(NOTICE, "Download complete: %s", self.path)
            if scope.cancelled_caught and self.state is DownloadStatus.ACTIVE:
                self.state = transition(self.state, self._stop_event)
        except errors.TrioariaError as exc:
            self.error = exc
            self.state = transition(self.state, "fail")
            if exc.exit_code == errors.ExitCode.IN_PROGRESS:  # stopped unfinished, not failed
                log.log(NOTICE, "%s", exc)  # (--bt-stop-timeout: aria2's NOTICE line)
            else:
                log.error("Download aborted: GID#%s %s", self.gid, exc)
        except Exception as exc:  # a bug or an unmapped OS error: one clear line, never a crash
            log.debug("unexpected error in GID#%s", self.gid, exc_info=True)
            self.error = errors.TrioariaError(f"{type(exc).__name__}: {exc}")
            self.state = transition(self.state, "fail")
            log.error("Download aborted: GID#%s %s", self.gid, self.error)
        finally:
            self.paths_in_use.release(self.gid)
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
        session = self.session
        st = session.storage if session is not None else None
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
            phase=self.phase or (session.phase if session else ""),
            phase_done=self.phase_done if self.phase else (session.phase_done if session else 0),
            phase_total=self.phase_total if self.phase else (session.phase_total if session else 0),
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
        self.expect_digest()

    def expect_digest(self) -> None:
        """``--checksum`` known: a source whose RFC 3230 ``Digest`` header disagrees fails
        and is dropped (RFC 6249 §6; docs/decisions.md: the mirror, not only the end check)."""
        checksum = self.opt("checksum")
        if not checksum or self.mirrors is None:
            return
        from ..storage.checksum import parse_checksum_option

        if isinstance(checksum, tuple):  # the option parser's (type, hex) form
            checksum = "=".join(checksum)
        if isinstance(checksum, str):
            checksum = parse_checksum_option(checksum)
        for st in self.mirrors.sources:
            st.source.expect_digest(checksum.algorithm, checksum.digest)

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
                    await self._check_expected_length(st, result)
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

    async def _check_expected_length(self, st: SourceState, result: ProbeResult) -> None:
        """A mirror whose length is not the expected one is not this file (not retried)."""
        expected, actual = self.expected_length, result.total_length
        if expected is None or actual is None or actual == expected:
            return
        if result.stream is not None:
            with trio.CancelScope(shield=True):
                await result.stream.finish(drained=False)
        raise errors.TrioariaError(
            f"Size mismatch Expected:{expected} Actual:{actual} ({st.source.uri})",
            retryable=False,
        )

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
        from ..storage.naming import apply_dir, control_file_path, decide_output, name_from_url
        from ..storage.session import StorageSession, check_capacity

        self.total_length = probe.total_length
        name = self.opt("out") or probe.filename or name_from_url(first.source.uri)
        directory = os.path.abspath(os.path.expanduser(self.opt("dir") or "."))
        if probe.not_modified:  # --conditional-get: 304, the local file is up to date
            self.path = apply_dir(directory, probe.filename or name)
            self._streamed = probe.total_length or 0
            log.info("%s is up to date (304 Not Modified); nothing to download", self.path)
            return
        if self.opt("out") == "-" and not self.opt("dry-run"):
            await self._download_to_stdout(first, probe, directory)
            return
        if self.opt("remote-time"):
            self._remote_mtime = probe.last_modified
        wanted = apply_dir(directory, name)
        if (
            self.opt("remove-control-file")
            and not self.opt("dry-run")
            and not self.paths_in_use.taken(wanted, self.gid)  # never a running download's
        ):
            from ..storage.disk import remove_control_file

            # aria2: removed before the download starts; the file left behind is then one
            # without a control file (renamed, refused, or overwritten with --allow-overwrite)
            remove_control_file(control_file_path(wanted))
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
            in_use=lambda p: self.paths_in_use.taken(p, self.gid),
        )
        self.path = decision.path
        self.paths_in_use.claim([self.path], self.gid)
        if decision.renamed_from is not None and not self.opt("dry-run"):
            log.log(NOTICE, "File already exists. Renamed to %s.", self.path)
        control_path = control_file_path(self.path)
        if self.opt("dry-run"):  # aria2: the remote file exists; nothing is written
            log.info("dry run: %s is available (%s bytes)", first.source.uri, probe.total_length)
            return
        if decision.stale_control_file:
            from ..storage.disk import remove_control_file

            remove_control_file(control_path)  # aria2 drops a control file without data
        if probe.total_length is None:
            await self._download_unknown_length(first)
            return

        total = probe.total_length
        for st in self._sources:
            st.source.expect_length(total)  # every mirror must serve the same length
        # A length the file system cannot hold is refused before any state is built (issue 15).
        check_capacity(os.path.dirname(self.path), total, allocate=str(self.opt("file-allocation")))
        session = StorageSession(
            os.path.dirname(self.path),
            [(os.path.basename(self.path), total)],
            piece_length=self.opt("piece-length"),
            control_path=control_path,
            min_split_size=self.opt("min-split-size"),
            selector=self.opt("stream-piece-selector"),
            allow_split=probe.supports_ranges,
            hashes=self._piece_hashes,
            file_allocation=str(self.opt("file-allocation")),
            no_file_allocation_limit=int(self.opt("no-file-allocation-limit") or 0),
            allow_piece_length_change=bool(self.opt("allow-piece-length-change")),
            auto_save_interval=float(self.opt("auto-save-interval") or 0),
            disk_cache=int(self.opt("disk-cache") or 0),
            on_piece_failed=self._piece_failed,
        )
        self.session = session
        mode: OpenMode = "resume" if decision.action == "resume" else "new"
        try:
            resumed = await session.open(
                mode,
                remote_modified=probe.last_modified,
                allow_overwrite=bool(self.opt("allow-overwrite")),
                what=first.source.uri,
            )
            fresh = not resumed and mode == "new"
            if await self._verify_existing(total) or (resumed and session.is_complete()):
                log.log(NOTICE, "GID#%s - Download has already completed: %s", self.gid, self.path)
                if resumed:
                    await session.finish(keep_control=bool(self.opt("force-save")))
                return
            if fresh or (mode == "resume" and not resumed and not session.completed_length):
                await session.allocate()
            async with trio.open_nursery() as nursery:
                await nursery.start(session.run)
                if not session.is_complete():
                    await session.save(force=True)
                    await self._run_transfers(first, probe)
                nursery.cancel_scope.cancel()
            if not session.is_complete():
                raise self._final_error()
            await self._verify_checksum(total)
            await session.finish(keep_control=bool(self.opt("force-save")))
        finally:
            await session.close()

    async def _download_to_stdout(
        self, first: SourceState, probe: ProbeResult, directory: str
    ) -> None:
        """``-o -``: the file goes to standard output in order (:mod:`trioaria.storage.stdout`);
        a scratch file under ``--dir`` holds at most a window of it, no control file."""
        import shutil
        import tempfile

        from ..storage.session import StorageSession
        from ..storage.stdout import (
            DEFAULT_WINDOW,
            StdoutPump,
            close_stdout,
            copy_stream,
            open_stdout,
        )

        self.path = "-"
        out = open_stdout()
        try:
            if probe.total_length is None:
                stream, self._unused_stream = self._unused_stream, None
                assert stream is not None
                first.connections = 1
                try:
                    self._streamed = await copy_stream(
                        stream, out, self._note_streamed,
                        timeout=float(self.opt("timeout") or 60), what=first.source.uri,
                    )  # fmt: skip
                finally:
                    first.connections = 0
                self.total_length = self._streamed
                return
            total = probe.total_length
            for st in self._sources:
                st.source.expect_length(total)
            os.makedirs(directory, exist_ok=True)
            scratch = tempfile.mkdtemp(prefix=".trioaria-stdout-", dir=directory)
            try:
                session = StorageSession(
                    scratch,
                    [("stream", total)],
                    piece_length=self.opt("piece-length"),
                    control_path="",
                    min_split_size=self.opt("min-split-size"),
                    selector="inorder",
                    allow_split=probe.supports_ranges,
                    hashes=self._piece_hashes,
                    file_allocation="none",
                    auto_save_interval=0,
                    on_piece_failed=self._piece_failed,
                )
                self.session = session
                try:
                    await session.open("new")
                    await session.allocate()  # file-allocation none: creates the file
                    keep = bool(self.opt("checksum"))  # hashed whole at the end
                    release = None if keep else os.path.join(scratch, "stream")
                    # a server without ranges is read in one go: no window to fence it in
                    # (the scratch file holds what the reader has not taken yet)
                    window = DEFAULT_WINDOW if probe.supports_ranges else total
                    pump = StdoutPump(session, out, release=release, window=window)
                    async with trio.open_nursery() as nursery:
                        await nursery.start(session.run)
                        nursery.start_soon(pump.run)
                        await self._run_transfers(first, probe)
                        if not session.is_complete():
                            raise self._final_error()
                        await pump.wait_delivered()
                        nursery.cancel_scope.cancel()
                    await self._verify_checksum(total)
                finally:
                    await session.close()
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        finally:
            with trio.CancelScope(shield=True):
                await close_stdout(out)

    async def _run_transfers(self, first: SourceState, probe: ProbeResult) -> None:
        assert self.session is not None and self.mirrors is not None and self._meter is not None
        first_stream, self._unused_stream = self._unused_stream, None
        self._budget = self.mirrors.connection_budget(probe.supports_ranges)
        await Transfers(self.transfer_context(), self.session).run(
            first, first_stream, self._budget
        )

    def transfer_context(self) -> TransferContext:
        """What the transfer loop needs of this download (its mirrors, meter, limits and
        failure accounting); web seeds of a torrent run under it too."""
        assert self.mirrors is not None and self._meter is not None
        return TransferContext(
            gid=self.gid,
            opt=self.opt,
            mirrors=self.mirrors,
            meter=self._meter,
            limits=self._limits,
            note_failure=self._note_failure,
            on_bytes=self._count_bytes,
        )

    def _count_bytes(self, n: int) -> None:
        self.bytes_fetched += n

    def _limits(self) -> tuple[SpeedLimit, ...]:
        """The rate limits in force now (RPC may change either at any time)."""
        own, overall = self.speed_limit, self.overall_limit
        if overall is None or overall.rate <= 0:
            return (own,) if own.rate > 0 else ()
        return (own, overall) if own.rate > 0 else (overall,)

    def _piece_failed(self, piece: int, blamed: frozenset[object]) -> None:
        """A piece failed its hash: each source that wrote it takes the blame (a failure)."""
        for st in self._sources:
            if st.source in blamed:
                st.failures += 1
                st.last_error = f"piece {piece} failed its hash check"
                max_tries = self.opt("max-tries")
                if len(blamed) == 1 and max_tries and st.failures >= max_tries:
                    st.dropped = True
                    log.info("dropping source %s: it keeps sending bad data", st.source.uri)

    async def _download_unknown_length(self, first: SourceState) -> None:
        """No length known (chunked, no Content-Length): one connection, no control file."""
        stream, self._unused_stream = self._unused_stream, None
        assert stream is not None
        first.connections = 1
        try:
            current: RangeStream | None = stream
            while True:  # each try starts over from byte 0 (nothing tells where to resume)
                try:
                    if current is None:  # asked again as at first (a content coding too)
                        first.source.unconditional()  # the half-written file is ours
                        timeout = self.opt("connect-timeout") + self.opt("timeout")
                        with connect_deadline(timeout, f"probing {first.source.uri}"):
                            again = await first.source.probe()
                        if again.stream is None:
                            raise errors.NetworkError(f"{first.source.uri} sent no body")
                        current = again.stream
                    self._streamed = await Transfers.stream_to_file(
                        self.transfer_context(), first, current, self.path, self._note_streamed
                    )
                    break
                except errors.StorageError:
                    raise
                except errors.TrioariaError as exc:
                    if current is not None:
                        with trio.CancelScope(shield=True):
                            await current.finish(drained=False)
                        current = None
                    await self._note_failure(first, exc)  # --max-tries, --retry-wait
                    if first.dropped:
                        raise
                    log.info("GID#%s retrying %s from byte 0: %s", self.gid, first.source.uri, exc)
        finally:
            first.connections = 0
        self.total_length = self._streamed
        if self.opt("checksum"):
            from ..storage.session import StorageSession

            session = StorageSession(
                os.path.dirname(self.path),
                [(os.path.basename(self.path), self._streamed)],
                piece_length=self.opt("piece-length"),
                control_path="",
            )
            await session.open("resume")
            try:
                session.mark_all_present()
                self.session = session
                await self._verify_checksum(self._streamed)
            finally:
                await session.close()

    def _note_streamed(self, n: int) -> None:
        self._streamed = n

    def _final_error(self) -> errors.TrioariaError:
        """aria2 reports the last error that happened."""
        if self._last_failure is not None:
            return self._last_failure
        return errors.NetworkError("download stopped before it was complete")

    async def _verify_existing(self, total: int) -> bool:
        """-V with --checksum: an existing file that matches needs no download."""
        checksum = self.opt("checksum")
        session = self.session
        assert session is not None
        if not (self.opt("check-integrity") and checksum):
            return False
        if session.existing_length() != total:
            return False
        if await self._file_matches(total, checksum):
            session.mark_all_present()
            session.remove_control_file()
            return True
        session.restart_from_zero()
        return False

    async def _file_matches(self, total: int, checksum: Any) -> bool:
        """Whether the file's digest is the ``--checksum``: hashed in steps of
        ``CHECKSUM_STEP`` bytes, one worker-thread call each, so that a stop (Ctrl-C, RPC
        remove) takes effect between steps and the readout shows the progress."""
        from ..storage.checksum import feed_hasher, new_hasher, parse_checksum_option

        session = self.session
        assert session is not None
        if isinstance(checksum, str):
            checksum = parse_checksum_option(checksum)
        elif isinstance(checksum, tuple):  # the option parser's (type, hex) form
            checksum = parse_checksum_option("=".join(checksum))
        session.flush_cache()
        self.phase, self.phase_done, self.phase_total = "Checksum", 0, total

        hasher = new_hasher(checksum.algorithm)
        done = 0
        while done < total:
            end = min(total, done + CHECKSUM_STEP)
            await trio.to_thread.run_sync(feed_hasher, hasher, session.read, done, end)
            done = self.phase_done = end
        digest = hasher.digest()
        self.phase = ""
        return bool(digest == checksum.digest)

    async def _verify_checksum(self, total: int) -> None:
        checksum = self.opt("checksum")
        if not checksum:
            return
        if not await self._file_matches(total, checksum):
            raise errors.ChecksumError(f"checksum mismatch for {self.path}")

    def _wake(self) -> None:
        if self.session is not None:
            self.session.wake()
