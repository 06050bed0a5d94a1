"""Pipelining the next segment on a busy connection (aria2 ``--enable-http-pipelining``).

Theory of operation
-------------------
A connection that reads segment *A* asks for its next segment *B* only when *A* is done,
so every hand-over costs a round trip with the line idle.  With HTTP/1.1 pipelining (RFC
9112 §9.3) the request for *B* is sent while *A*'s last bytes are still arriving.
:class:`Prefetcher` wraps *A*'s stream for the group's read loop: on the first read with
at most ``threshold`` bytes of *A* left it asks the picker for *B* (gaps and splits only,
no endgame race: the race belongs to idle connections) and calls
:meth:`~trioaria.base.sources.RangeStream.pipeline` for exactly ``[B.pos, B.end)``.

Only worth it when *A*'s request ends exactly at *A*'s end (so its body is read to the end
and the connection stays in step); a request that reaches past a split point is abandoned
and its connection closed, so nothing is pipelined on it.  *B* is assigned to this
connection from the moment it is picked (no other connection reads it, splits aside); if the
pipelined request cannot be sent, *B* is released at once.  What happens after *A* (using
*B*'s stream, or opening *B* afresh when *A* was abandoned) is the group's hand-over.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from ..base.sources import RangeStream
from ..storage.picker import Segment

__all__ = ["Prefetcher"]


class Prefetcher(RangeStream):
    """Wraps the stream of ``seg``; pipelines the connection's next segment near its end.

    Args:
        inner: the stream reading ``seg`` (``req_end``: the end of its request).
        seg: the segment being read.
        req_end: where ``inner``'s request ends; pipelining needs ``seg.end == req_end``.
        pick: returns the next segment for this connection, or ``None``.
        release: gives a picked segment back to the picker.
        threshold: pipeline once ``seg`` has at most this many bytes left.

    Attributes:
        ahead: ``(segment, stream, requested end)`` once a request was pipelined.
    """

    def __init__(
        self,
        inner: RangeStream,
        seg: Segment,
        req_end: int,
        *,
        pick: Callable[[], Segment | None],
        release: Callable[[Segment], None],
        threshold: int,
    ) -> None:
        self._inner = inner
        self._seg = seg
        self._req_end = req_end
        self._pick = pick
        self._release = release
        self._threshold = threshold
        self._armed = True
        self.ahead: tuple[Segment, RangeStream, int] | None = None

    async def read_into(self, buf: memoryview) -> int:
        if self._armed and self._seg.end - self._seg.pos <= self._threshold:
            self._armed = False
            await self._prefetch()
        return await self._inner.read_into(buf)

    async def _prefetch(self) -> None:
        seg = self._seg
        if seg.finished or seg.end != self._req_end:
            return  # this body will be abandoned: its connection cannot carry another request
        nxt = self._pick()
        if nxt is None:
            return
        if nxt.finished or seg.end != self._req_end:  # the pick cut our own segment
            self._release(nxt)
            return
        try:
            stream = await self._inner.pipeline(nxt.pos, nxt.end)
        except BaseException:
            self._release(nxt)
            raise
        if stream is None:
            self._release(nxt)
            return
        self.ahead = (nxt, stream, nxt.end)

    async def take_ahead(self, *, drained: bool) -> tuple[Segment | None, RangeStream | None, int]:
        """The hand-over after the current segment: ``(next segment, its stream, end of its
        request)``.  The stream is ``None`` when the segment must be opened afresh (the
        current body was abandoned, so the pipelined answer went with its connection);
        the segment is ``None`` when nothing was pipelined or a twin already wrote it."""
        ahead, self.ahead = self.ahead, None
        if ahead is None:
            return None, None, 0
        seg, stream, end = ahead
        if drained and not seg.finished:
            return seg, stream, end
        with trio.CancelScope(shield=True):
            await stream.finish(drained=False)
        if seg.finished:
            self._release(seg)
            return None, None, 0
        return seg, None, seg.end

    async def drop_ahead(self) -> None:
        """The connection failed or is cancelled: give the pipelined segment back."""
        ahead, self.ahead = self.ahead, None
        if ahead is None:
            return
        seg, stream, _ = ahead
        self._release(seg)
        with trio.CancelScope(shield=True):
            await stream.finish(drained=False)

    async def pipeline(self, start: int, end: int) -> RangeStream | None:
        return await self._inner.pipeline(start, end)

    async def finish(self, *, drained: bool) -> None:
        await self._inner.finish(drained=drained)
