"""The connections of one download: workers that read segments into the shared storage.

Theory of operation
-------------------
:class:`Transfers` runs inside a :class:`~trioaria.engine.group.RequestGroup`'s nursery (docs/design.md:
one task per connection).  ``min(--split, Σ per-host -x)`` workers each ask the shared
:class:`~trioaria.storage.picker.RangePicker` for a segment, open it on the source the mirrors'
``--uri-selector`` chose (:mod:`trioaria.engine.mirrors`), read it with ``recv_into`` into their own
reused 1 MiB buffer and write inline with ``os.pwrite`` (``DiskAdaptor.write``), marking blocks
done only after the write.  One cancel scope per segment enforces ``--timeout``; token buckets
(``trioaria.base.policy``) enforce ``--max-(overall-)download-limit``; a connection at or below
``--lowest-speed-limit`` after ``--startup-idle-time`` is closed.  A failing source is retried
``--max-tries`` times (``--retry-wait`` apart), then dropped while the others finish.  With
``--enable-http-pipelining`` the next segment's request is sent before the current body ends
(:mod:`trioaria.engine.prefetch`).  A body of unknown length (chunked, gzip) is one connection written
sequentially (:meth:`Transfers.download_unknown_length`).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from ..base import errors
from ..base.policy import SpeedLimit
from ..base.sources import RangeStream
from ..base.speed import SpeedMeter
from ..net.connect import connect_deadline
from ..storage.picker import Segment
from ..storage.pieces import BLOCK_LENGTH
from .mirrors import SourceState
from .prefetch import Prefetcher
from .uri_selector import Context

if TYPE_CHECKING:
    from ..storage.session import StorageSession
    from .mirrors import Mirrors

__all__ = ["BUFFER_SIZE", "TransferContext", "Transfers", "raise_single"]

log = logging.getLogger("trioaria.engine.group")
NOTICE = logging.INFO + 5  # aria2's NOTICE level

BUFFER_SIZE = 1 << 20
# The endgame does not race a segment that will end within this many seconds anyway...
ENDGAME_MIN_ETA = 1.0
# ...unless its response runs on past it and at most this much of it is left (see _eta_of).
SHORT_TAIL = 4 * BLOCK_LENGTH
# Nor is a segment expected to end within this many seconds split (it would save at most half
# of that, and its connection would lose the exact range it asked for).
STEAL_MIN_ETA = 0.25
# A connection that delivered nothing for this long counts as stalled (the endgame races it).
STALL_SECONDS = 2.0
# Idle connections look for work again at least this often (a stall produces no event).
IDLE_RECHECK = 0.5
# A body that runs on past its segment waits for the next segment's first byte this often.
PENDING_POLL = 0.02
# Closing a stream while cancelled is shielded, but never for longer than this.
CLOSE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class TransferContext:
    """What the connections of one download need from it, and nothing more.

    Attributes:
        gid: the download's GID (log lines).
        opt: the download's option getter.
        mirrors: its sources and which one a connection uses next.
        meter: the download's speed meter.
        limits: the rate limits in force now (``--max-(overall-)download-limit``).
        note_failure: records a source's failure (``--max-tries``, ``--retry-wait``).
        on_bytes: counts payload bytes received this run.
    """

    gid: str
    opt: Callable[[str], Any]
    mirrors: Mirrors
    meter: SpeedMeter
    limits: Callable[[], tuple[SpeedLimit, ...]]
    note_failure: Callable[[SourceState, errors.TrioariaError], Awaitable[None]]
    on_bytes: Callable[[int], None]


class Transfers:
    """The worker tasks of one download (see the module docstring)."""

    def __init__(self, ctx: TransferContext, session: StorageSession) -> None:
        self.ctx = ctx
        self.session = session
        self.picker = session.picker
        # per-segment speed meters of the reads in flight (the endgame's ETA estimates)
        self._seg_meters: dict[int, SpeedMeter] = {}
        # where the response of each of those reads ends (past the segment: first request, splits)
        self._seg_req_ends: dict[int, int] = {}
        # per-segment cancel scopes: a segment a twin finished is cancelled at once
        self._seg_scopes: dict[int, trio.CancelScope] = {}
        #: segments whose stream read past their end (bytes were dropped): never extended
        self._overshot: set[int] = set()
        # connects in flight (cancelled when the download completes)
        self._opening: set[trio.CancelScope] = set()
        # progress saved by an earlier run (control file, -c): aria2's --always-resume rules
        # apply to it when a server cannot serve ranges; sources that failed to resume it
        self._resumed = session.completed_length > 0
        self._resume_failures = 0

    async def run(self, first: SourceState, first_stream: RangeStream | None, budget: int) -> None:
        """Run ``budget`` connections until the session is complete or no source can go on."""
        try:
            await self._run_workers_nursery(first, first_stream, budget)
        except BaseExceptionGroup as group:
            raise_single(group)

    async def _run_workers_nursery(
        self, first: SourceState, first_stream: RangeStream | None, budget: int
    ) -> None:
        picker = self.picker
        async with trio.open_nursery() as nursery:
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

            async def until_complete() -> None:
                # The finishing connection ends every other one at once: a hung mirror must not
                # hold a complete download until its --timeout (issue 9).  Reads and connects in
                # flight are cancelled; a connection that just finished its body still returns to
                # its pool (bounded by CLOSE_TIMEOUT), then whatever is left is cancelled.
                await self.session.wait_complete()
                for scope in [*self._seg_scopes.values(), *self._opening]:
                    scope.cancel()
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await done.wait()
                done.set()

            first_seg = None
            if first_stream is not None:
                if not picker.storage.is_block_done(0):
                    first_seg = picker.next_segment(first.source)
                    if first_seg is not None and first_seg.start != 0:
                        picker.release(first_seg)
                        first_seg = None
                if first_seg is None:
                    with _bounded_shield():
                        await first_stream.finish(drained=False)
                    first_stream = None
            first.connections += 1
            nursery.start_soon(until_complete)
            nursery.start_soon(worker, first, first_stream, first_seg)
            for _ in range(budget - 1):
                nursery.start_soon(worker, None, None, None)
            await done.wait()
            nursery.cancel_scope.cancel()

    def _eta_of(self, seg: Segment) -> float | None:
        """Seconds the connection reading ``seg`` still needs at its own recent speed.

        A connection that has just started has no speed yet: its estimate is None (the endgame
        does not race it, a split may cut it); one that sent nothing for ``STALL_SECONDS``
        counts as never finishing.  Nor does a short tail (``SHORT_TAIL``) of a response that
        runs on past its segment (the first request, a split's victim) have a useful estimate:
        a server that paces its sending sends such a response in bursts, and the segment's
        last bytes wait for the next one (nginx ``limit_rate``: up to 100 ms), while a new
        request for exactly those bytes is answered at once.  It counts as never finishing,
        so an idle connection races it; the duplicate costs at most ``SHORT_TAIL`` bytes
        (docs/performance.md "Exact ranges").
        """
        meter = self._seg_meters.get(seg.id)
        if meter is None:
            return None
        if seg.remaining <= SHORT_TAIL and self._seg_req_ends.get(seg.id, 0) > seg.end:
            return float("inf")
        now = trio.current_time()
        rate = meter.rate(now)
        if rate > 0:
            return seg.remaining / rate
        return float("inf") if now - meter.started > STALL_SECONDS else None

    async def _worker(
        self, src: SourceState | None, stream: RangeStream | None, seg: Segment | None
    ) -> None:
        picker = self.picker
        mirrors = self.ctx.mirrors
        buf = bytearray(BUFFER_SIZE)
        mv = memoryview(buf)
        # --uri-selector is asked when the connection starts, after each segment and when its
        # source was dropped; a new connection of the initial set is "supplementary".
        ask: Context | None = "supplementary" if src is None else None
        token = 0
        # --enable-http-pipelining (trioaria.engine.prefetch): the current stream's wrapper, and the
        # end of the pipelined request that `stream` answers when it came from there
        prefetch: Prefetcher | None = None
        ahead_end: int | None = None
        try:
            while not self.session.is_complete():
                if (src is None or src.dropped or ask is not None) and seg is None:
                    nxt = mirrors.pick(src, ask or "replacement")
                    if nxt is None or nxt is not src:
                        if src is not None:
                            self._leave(src)
                            src = None
                        if nxt is None:
                            if all(s.dropped for s in mirrors.sources):
                                return
                            changed = self.session.changed_event()
                            with trio.move_on_after(IDLE_RECHECK):
                                await changed.wait()
                            continue
                        nxt.connections += 1
                        src = nxt
                    ask = None
                assert src is not None
                if seg is None:
                    changed = self.session.changed_event()
                    seg = picker.next_segment(
                        src.source,
                        eta_of=self._eta_of,
                        race_min_eta=ENDGAME_MIN_ETA,
                        steal_min_eta=STEAL_MIN_ETA,
                    )
                    if seg is None:
                        if self.session.is_complete():
                            return
                        with trio.move_on_after(IDLE_RECHECK):
                            await changed.wait()
                        continue
                req_end = seg.end
                seg_start = seg.pos
                token = mirrors.read_started(src, seg)
                try:
                    if stream is None:
                        # Connections that start together (the fan-out after the probe) all
                        # claim before any request goes out, so each asks for exactly the run
                        # it will read, not a larger run the next claims split (docs/performance.md
                        # "Exact ranges").
                        await trio.lowlevel.checkpoint()
                        if seg.finished:
                            raise _Superseded
                        log.debug(
                            "GID#%s range %s-%s from %s",
                            self.ctx.gid,
                            seg.pos,
                            seg.end,
                            src.source.uri,
                        )
                        with (
                            trio.CancelScope() as opening,
                            connect_deadline(
                                self.ctx.opt("connect-timeout"), f"opening {src.source.uri}"
                            ),
                        ):
                            self._opening.add(opening)
                            try:
                                stream = await src.source.open_range(seg.pos, seg.end)
                            finally:
                                self._opening.discard(opening)
                        if stream is None:  # the download completed while this one connected
                            raise _Superseded
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
                    # the response goes on past this segment and the run after it is free:
                    # keep reading the same body (a lying mirror's other connections were
                    # retired, and this one still streams the whole file: issue 15)
                    if prefetch is None:
                        drained = await self._continue_stream(
                            pumped, seg, mv, src, req_end, drained
                        )
                    elif seg.id in self._overshot:
                        self._overshot.discard(seg.id)
                        drained = False
                    mirrors.read_ended(token)
                    done_stream, stream = stream, None
                    await done_stream.finish(drained=drained)
                except errors.StorageError:
                    raise  # a local disk problem ends the download; no source is to blame
                except _Superseded:
                    mirrors.read_ended(token)
                    picker.release(seg)
                    seg = None
                    continue
                except errors.TrioariaError as exc:
                    mirrors.read_ended(token)
                    if stream is not None:
                        s, stream = stream, None
                        with _bounded_shield():
                            await s.finish(drained=False)
                    # --max-tries counts attempts without lasting progress (issue 15): bytes
                    # that stay written reset the count; a restart from zero does not.
                    lasting = seg.pos - seg_start >= BLOCK_LENGTH and self._ranges_ok()
                    if not self._ranges_ok() and picker.storage.completed_length:
                        exc, restart = self._cannot_resume(src, seg, exc)
                        if restart:
                            self.session.restart_from_zero()
                    if lasting:
                        src.failures = 0
                    picker.release(seg)
                    seg = None
                    if prefetch is not None:
                        await prefetch.drop_ahead()
                        prefetch = None
                    self.session.wake()
                    await self.ctx.note_failure(src, exc)
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
                self.session.wake()
        finally:
            mirrors.read_ended(token)
            if prefetch is not None:
                await prefetch.drop_ahead()
            if stream is not None:
                with _bounded_shield():
                    await stream.finish(drained=False)
            if seg is not None:
                picker.release(seg)
                self.session.wake()
            if src is not None and src.connections > 0:
                self._leave(src)

    def _leave(self, src: SourceState) -> None:
        """A connection stops using ``src``; the last one of a dropped mirror unregisters it
        from the picker (a blamed piece must not wait for a source that will never ask)."""
        src.connections -= 1
        if src.dropped and src.connections <= 0:
            self.picker.remove_source(src.source)

    async def _continue_stream(
        self,
        stream: RangeStream,
        seg: Segment,
        mv: memoryview,
        src: SourceState,
        req_end: int,
        drained: bool,
    ) -> bool:
        """Keep reading a response that runs on past its segment, while the run after it is free.

        The first request asks for the whole file; splits shorten its segment.  If the
        connections that took the rest fail, this body still carries their bytes, so it goes on
        (issue 15: a server that answers later ranges with 200 and the whole body, or with a
        wrong Content-Range, is retired, and the first connection finishes the file).  While the
        next segment's connection has not received a byte, wait for it to start or fail (bounded
        by ``--connect-timeout``).  A source retired for another reason (the file changed) is
        not read further.
        """
        picker = self.picker
        deadline = trio.current_time() + float(self.ctx.opt("connect-timeout") or 60)
        while not drained and not self.session.is_complete():
            if src.dropped and not isinstance(src.last_exc, errors.UnreliableSourceError):
                break
            if seg.id in self._overshot:
                break
            if picker.extend(seg, req_end):
                drained = await self._pump(stream, seg, mv, src, req_end)
                continue
            if not picker.neighbour_pending(seg) or trio.current_time() >= deadline:
                break
            await trio.sleep(PENDING_POLL)
        if seg.id in self._overshot:
            self._overshot.discard(seg.id)
            return False  # bytes were read and dropped: the connection is not reused
        return drained

    def _ranges_ok(self) -> bool:
        return bool(self.picker.allow_split)

    def _cannot_resume(
        self, src: SourceState, seg: Segment, exc: errors.TrioariaError
    ) -> tuple[errors.TrioariaError, bool]:
        """A source without Range support failed with progress on disk: the error to count
        against it, and whether the download starts over from byte 0.

        This run's own bytes are lost and the download starts over (retried within
        ``--max-tries``; exit 8 once they run out).  Progress saved by an earlier run is kept
        as aria2 keeps it (``AbstractCommand::onAbort``): with ``--always-resume`` (the
        default) the source is given up (exit 8 when no other can go on); without it the
        download starts over once ``--max-resume-failure-tries`` sources failed to resume (0:
        once no other source is left).
        """
        uri = src.source.uri
        if not self._resumed:
            return errors.CannotResumeError(
                f"{uri} does not support ranges and the transfer broke off at byte {seg.pos}"
                f" ({exc}); it cannot resume",
                retryable=True,
            ), True
        if self.ctx.opt("always-resume"):
            return errors.CannotResumeError(
                f"{uri} does not support ranges: the saved progress cannot be resumed"
                " (--always-resume=false would download the file again from scratch)",
                retryable=False,
            ), False
        self._resume_failures += 1
        limit = int(self.ctx.opt("max-resume-failure-tries") or 0)
        others = any(not s.dropped and s is not src for s in self.ctx.mirrors.sources)
        if (limit and self._resume_failures >= limit) or not others:
            log.log(
                NOTICE, "GID#%s - Failed to resume download. Download from scratch.", self.ctx.gid
            )
            self._resumed = False
            return errors.CannotResumeError(
                f"{uri} does not support ranges: the download starts over", retryable=True
            ), True
        return errors.CannotResumeError(
            f"{uri} does not support ranges: the saved progress cannot be resumed",
            retryable=False,
        ), False

    async def _pump(
        self,
        stream: RangeStream,
        seg: Segment,
        mv: memoryview,
        src: SourceState,
        req_end: int,
    ) -> bool:
        timeout = self.ctx.opt("timeout")
        meter = self.ctx.meter
        seg_meter = self._seg_meters[seg.id] = SpeedMeter(trio.current_time())
        self._seg_req_ends[seg.id] = req_end
        try:
            return await self._pump_loop(stream, seg, mv, src, req_end, timeout, meter, seg_meter)
        finally:
            del self._seg_meters[seg.id]
            del self._seg_req_ends[seg.id]
            self._seg_scopes.pop(seg.id, None)

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
        session = self.session
        # --lowest-speed-limit (aria2 DownloadCommand::checkLowestDownloadSpeed): once this
        # request has run --startup-idle-time seconds, a speed at or below the limit closes it
        # and fails its source (exit 5 if no other source completes the file).
        lowest = int(self.ctx.opt("lowest-speed-limit") or 0)
        idle = float(self.ctx.opt("startup-idle-time") or 10)
        # One cancel scope per segment, its deadline pushed forward as data arrives (a scope
        # per read costs more than the read on a fast link).
        armed = trio.current_time()
        twin_done = False
        with trio.CancelScope(deadline=armed + timeout) as cs:
            self._seg_scopes[seg.id] = cs
            while not seg.finished:
                want = min(len(mv), seg.end - seg.pos)
                limits = self._limits()
                if limits:
                    n = await self.read_limited(stream, mv[:want], limits, cs)
                else:
                    n = await stream.read_into(mv[:want])
                if n == 0:
                    if seg.finished:
                        break
                    raise errors.NetworkError(
                        f"{src.source.uri}: connection closed at byte {seg.pos} before {seg.end}"
                    )
                if seg.finished:  # a twin finished these bytes while we waited
                    self._overshot.add(seg.id)
                    break
                if n > seg.end - seg.pos:  # a split or a race moved seg.end while we waited:
                    # the stream is now past seg.end, so it must not go on into a run handed
                    # back to this segment (its bytes would land short of their offset)
                    n = seg.end - seg.pos
                    self._overshot.add(seg.id)
                session.write_segment(seg, mv[:n])
                self.ctx.mirrors.read_bytes(id(seg), n)
                twin = seg.twin
                if twin is not None and twin.finished:
                    # this connection finished the bytes its racing twin was still reading:
                    # end the twin's read now instead of at its --timeout
                    scope = self._seg_scopes.get(twin.id)
                    if scope is not None:
                        scope.cancel()
                now = trio.current_time()
                src.meter.add(n, now)
                seg_meter.add(n, now)
                meter.add(n, now)
                self.ctx.on_bytes(n)
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
            twin_done = seg.finished
        if cs.cancelled_caught and not (twin_done or seg.finished):
            raise errors.ReadTimeoutError(f"no data from {src.source.uri} for {timeout}s")
        return seg.pos == req_end

    # --- rate limits (trioaria.base.policy) ---------------------------------------------------

    def _limits(self) -> tuple[SpeedLimit, ...]:
        return self.ctx.limits()

    @staticmethod
    async def read_limited(
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

    @staticmethod
    async def stream_to_file(
        ctx: TransferContext,
        first: SourceState,
        stream: RangeStream,
        path: str,
        progress: Callable[[int], None],
    ) -> int:
        """No length known (chunked, no Content-Length): one connection written sequentially
        through the same disk layer; returns the length.  No control file (nothing to resume)."""
        from ..storage.disk import DiskAdaptor
        from ..storage.layout import FileLayout

        disk = DiskAdaptor(os.path.dirname(path), FileLayout([(os.path.basename(path), 0)]))
        await disk.open(truncate=True)
        buf = bytearray(BUFFER_SIZE)
        mv = memoryview(buf)
        written = 0
        try:
            while True:
                with trio.move_on_after(ctx.opt("timeout")) as cs:
                    limits = ctx.limits()
                    if limits:
                        n = await Transfers.read_limited(stream, mv, limits, cs)
                    else:
                        n = await stream.read_into(mv)
                if cs.cancelled_caught:
                    raise errors.ReadTimeoutError(f"no data from {first.source.uri}")
                if n == 0:
                    break
                disk.write_file(0, written, mv[:n])
                written += n
                progress(written)
                now = trio.current_time()
                first.meter.add(n, now)
                ctx.meter.add(n, now)
                ctx.on_bytes(n)
            await stream.finish(drained=True)
            await disk.sync()
        finally:
            await disk.aclose()
        return written


class _Superseded(Exception):
    """A connect was cancelled because the download completed meanwhile (not a failure)."""


def _bounded_shield() -> trio.CancelScope:
    """A shield for closing a stream during cancellation, bounded so a hung peer cannot hold it."""
    return trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_TIMEOUT)


def raise_single(group: BaseExceptionGroup[BaseException]) -> None:
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
