"""The mirrors of one download: per-source state, which mirror a connection uses next, stats.

A download (``trioaria.engine.group.RequestGroup``) has one :class:`Mirrors`: the sources built from its
URIs (any protocol), their failure counts and speeds, the ``--uri-selector`` policy
(``trioaria.engine.uri_selector``, pure) and the ``--server-stat-if/-of`` records
(``trioaria.engine.server_stat``).  The group asks it which source a free connection should use
(:meth:`Mirrors.pick`), in which order to probe (:meth:`Mirrors.probe_order`), how many
connections the download may open (:meth:`Mirrors.connection_budget`), and at the end reports
the bytes each mirror served and updates the server-stat records (:meth:`Mirrors.report`).
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from ..base import errors
from ..base.sources import RangeSource
from ..base.speed import SpeedMeter
from ..storage.picker import Segment
from .server_stat import ServerStatTable
from .uri_selector import AdaptiveSelector, Candidate, Context, UriSelector, make_selector

__all__ = ["Mirrors", "SourceFactory", "SourceState"]

log = logging.getLogger("trioaria.engine.group")

SourceFactory = Callable[[str, Any], RangeSource]


@dataclass(eq=False)
class SourceState:
    """One mirror of a download and what this run learned about it."""

    source: RangeSource
    meter: SpeedMeter
    failures: int = 0
    connections: int = 0
    dropped: bool = False
    last_error: str = ""
    last_exc: errors.TrioariaError | None = None
    # per-connection speed bookkeeping for --uri-selector and --server-stat-of
    busy_bytes: int = 0  # bytes read by finished segment reads of this source
    busy_time: float = 0.0  # connection-seconds those reads took
    stat_host: str = ""  # (host, protocol) key of the server-stat record
    stat_protocol: str = ""

    def measured_speed(self) -> int | None:
        """Average bytes/s of one connection to this source over its finished reads."""
        if self.busy_time <= 0 or self.busy_bytes <= 0:
            return None
        return int(self.busy_bytes / max(self.busy_time, 0.001))


class Mirrors:
    """The sources of one download and the policy that spreads connections over them."""

    def __init__(
        self,
        uris: list[str],
        options: Any,
        *,
        factory: SourceFactory,
        server_stats: ServerStatTable,
        allow_empty: bool = False,
    ) -> None:
        """``allow_empty``: no usable URI is no error (a torrent's web seeds are optional)."""
        now = trio.current_time()
        self.options = options
        self.server_stats = server_stats
        self._factory = factory
        self.sources: list[SourceState] = []
        last: errors.TrioariaError | None = None
        for uri in uris:
            try:
                source = factory(uri, options)
            except errors.TrioariaError as exc:
                # aria2: "foo is not supported yet" for that URI alone; the others go on
                log.error("%s: %s", uri, exc)
                last = exc
                continue
            self.sources.append(SourceState(source, SpeedMeter(now)))
        if not self.sources and last is not None and not allow_empty:
            raise last
        for st in self.sources:
            parts = urllib.parse.urlsplit(st.source.uri)
            st.stat_host = parts.hostname or ""
            st.stat_protocol = parts.scheme.lower()
        self.selector: UriSelector = make_selector(
            str(options.get("uri-selector") or "feedback"), split=int(options.get("split") or 1)
        )
        # reads in flight: token -> (source, segment, start time, start position)
        # reads in flight: token -> [source, segment, start time, bytes this read delivered]
        # (bytes counted by the reader, not from seg.pos: a racing twin or a peer may write
        # inside the segment, and those bytes are not this source's)
        self._live: dict[int, list[Any]] = {}

    def add(self, uri: str) -> SourceState | None:
        """Add a mirror to the running download (RFC 6249 ``Link: rel=duplicate``).

        Workers see it at their next :meth:`pick`.  Returns the new state, or None when the
        URI is already a source or no protocol serves it.
        """
        if any(st.source.uri == uri for st in self.sources):
            return None
        try:
            source = self._factory(uri, self.options)
        except errors.TrioariaError as exc:
            log.info("mirror %s not added: %s", uri, exc)
            return None
        st = SourceState(source, SpeedMeter(trio.current_time()))
        parts = urllib.parse.urlsplit(uri)
        st.stat_host = parts.hostname or ""
        st.stat_protocol = parts.scheme.lower()
        self.sources.append(st)
        return st

    def __iter__(self) -> Any:
        return iter(self.sources)

    def all_dropped(self) -> bool:
        return all(s.dropped for s in self.sources)

    def connection_budget(self, supports_ranges: bool) -> int:
        """``min(--split, Σ per-host -x)``; one connection when ranges do not work."""
        if not supports_ranges:
            return 1
        per_host = int(self.options.get("max-connection-per-server"))
        hosts = {st.source.host_key for st in self.sources}
        return max(1, min(int(self.options.get("split")), per_host * max(1, len(hosts))))

    # --- choosing (--uri-selector, --server-stat-if) -------------------------------------

    def _known_speed(self, st: SourceState, now: float) -> tuple[int | None, Any]:
        """Per-connection bytes/s of ``st`` (reads in flight, then finished reads, then the
        server-stat record) and that record (or None)."""
        record = self.server_stats.find(st.stat_host, st.stat_protocol)
        rates = [
            n / (now - t0) for s, _seg, t0, n in self._live.values() if s is st and now - t0 >= 0.5
        ]
        if rates:
            return int(sum(rates) / len(rates)), record
        measured = st.measured_speed()
        if measured is not None:
            return measured, record
        if record is None:
            return None, None
        best = record.best_speed if isinstance(self.selector, AdaptiveSelector) else 0
        return (best or record.dl_speed), record

    def _candidates(self, current: SourceState | None) -> list[Candidate]:
        """Live sources whose host is below ``-x`` (``current``'s own slot counts as free)."""
        per_host = int(self.options.get("max-connection-per-server"))
        used: dict[str, int] = {}
        for st in self.sources:
            used[st.source.host_key] = used.get(st.source.host_key, 0) + st.connections
        if current is not None:
            used[current.source.host_key] -= 1
        now = trio.current_time()
        out = []
        for i, st in enumerate(self.sources):
            host_used = used.get(st.source.host_key, 0)
            if st.dropped or host_used >= per_host:
                continue
            speed, record = self._known_speed(st, now)
            measured = st.meter.total > 0  # this run's data beats an old error record
            out.append(
                Candidate(
                    index=i,
                    host=st.source.host_key,
                    connections=st.connections - (1 if st is current else 0),
                    host_connections=host_used,
                    speed=speed,
                    error=record is not None and record.is_error and not measured,
                    last_updated=float(record.last_updated) if record is not None else None,
                    counter=record.counter if record is not None else 0,
                )
            )
        return out

    def pick(
        self, current: SourceState | None, context: Context = "replacement"
    ) -> SourceState | None:
        """The source a connection uses next (``current``: the one it holds, if any, even
        dropped: its connection slot counts as free)."""
        choice = self.selector.select(self._candidates(current), context=context, now=time.time())
        return None if choice is None else self.sources[choice.index]

    def probe_order(self) -> list[SourceState]:
        """Sources in the order the selector would give them to a first connection."""
        order = self.selector.order(self._candidates(None), now=time.time())
        ranked = [self.sources[c.index] for c in order]
        return ranked + [s for s in self.sources if s not in ranked]

    # --- measuring ----------------------------------------------------------------------

    def read_started(self, src: SourceState, seg: Segment) -> int:
        token = id(seg)
        self._live[token] = [src, seg, trio.current_time(), 0]
        return token

    def read_bytes(self, token: int, n: int) -> None:
        """The read ``token`` delivered ``n`` more bytes of its own."""
        entry = self._live.get(token)
        if entry is not None:
            entry[3] += n

    def read_ended(self, token: int) -> None:
        entry = self._live.pop(token, None)
        if entry is None:
            return
        src, _seg, t0, n = entry
        if n > 0:
            src.busy_bytes += n
            src.busy_time += trio.current_time() - t0

    def report(self, gid: str, *, single_connection: bool) -> None:
        """End of the download: one log line per source, server-stat records updated.

        Reads still in flight count up to now: a slow mirror's long reads are its speed, and
        leaving them out would rate it by the short bursts it finished (a rate-limited server
        sends the first second's worth of every response at once)."""
        for token in list(self._live):
            self.read_ended(token)
        total = sum(st.meter.total for st in self.sources)
        for st in self.sources:
            share = 100 * st.meter.total / total if total else 0.0
            log.info(
                "GID#%s source %s served %d bytes (%.1f%%)",
                gid, st.source.uri, st.meter.total, share,
            )  # fmt: skip
        now = int(time.time())
        best: dict[tuple[str, str], int] = {}
        for st in self.sources:
            if not st.stat_host or not st.stat_protocol:
                continue
            key = (st.stat_host, st.stat_protocol)
            speed = st.measured_speed() or 0
            if speed > best.get(key, 0):
                best[key] = speed
            elif st.dropped and st.failures and key not in best:
                best.setdefault(key, 0)
        for (host, protocol), speed in best.items():
            record = self.server_stats.get_or_create(host, protocol)
            if speed > 0:
                record.record_speed(speed, single_connection=single_connection, now=now)
            else:
                record.record_error(now)

    async def aclose(self) -> None:
        for st in self.sources:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await st.source.aclose()
