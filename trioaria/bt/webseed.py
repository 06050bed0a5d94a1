"""BEP 19 web seeds: one HTTP/FTP mirror of a whole torrent as one range source.

Theory of operation
-------------------
A torrent's pieces are slices of its files laid end to end (BEP 3); a web seed serves the same
files as plain URLs (BEP 19, "GetRight style").  :class:`WebSeedSource` turns one web seed base
URL into a :class:`~trioaria.base.sources.RangeSource` over the torrent's *global* byte space, so
the engine's ordinary transfer loop (the one every HTTP/FTP download uses) reads segments of it
into the torrent's one :class:`~trioaria.storage.session.StorageSession` and picker, side by
side with the peers (docs/design.md, "One picker, one disk layer").

* **URLs** (BEP 19, as aria2 builds them: :meth:`~trioaria.bt.metainfo.Metainfo.web_seed_url`):
  a single-file torrent is the base URL itself, or the base plus the name when it ends in
  ``/``; a multi-file torrent's file is ``base/name/path`` with each part percent-encoded.
* **A range spans files.**  :meth:`WebSeedSource.open_range` asks the file holding the first
  byte for ``[start, min(end, file end))``; when that body ends the stream opens the next file
  at its byte 0, and so on, so one segment may cover many pieces and many files.  Each file has
  its own driver source (built by the ``factory``, i.e. ``HttpSource``/``FtpSource``), told
  the file's length (``expect_length``): a server that serves another length fails with exit 8
  like any mirror.
* **Padding files** (BEP 47) are not on the server: their bytes are zeros made here.
* Zero-length files own no bytes and are skipped.

This module is a driver (it awaits the file sources) but holds no sockets of its own.
"""

from __future__ import annotations

import bisect
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import trio

from ..base.sources import ProbeResult, RangeSource, RangeStream

__all__ = ["MAX_IDLE_FILES", "WebSeedFile", "WebSeedSource", "web_seed_files"]

MAX_IDLE_FILES = 8
"""Files of a web seed whose (idle) connections stay open while no stream reads them."""


@dataclass(frozen=True, slots=True)
class WebSeedFile:
    """One non-empty file of a torrent as a web seed serves it.

    Attributes:
        offset: the file's first byte in the torrent's byte space.
        length: its size (> 0).
        url: its URL on the web seed; ``""`` for a BEP 47 padding file (zeros, not fetched).
    """

    offset: int
    length: int
    url: str

    @property
    def end(self) -> int:
        return self.offset + self.length


def web_seed_files(meta: object, base: str) -> list[WebSeedFile]:
    """The non-empty files of ``meta`` (a :class:`~trioaria.bt.metainfo.Metainfo`) on ``base``."""
    from .metainfo import Metainfo

    assert isinstance(meta, Metainfo)
    out = []
    for index, f in enumerate(meta.files):
        if f.length <= 0:
            continue
        url = "" if f.padding else meta.web_seed_url(base, index)
        out.append(WebSeedFile(f.offset, f.length, url))
    return out


class WebSeedSource(RangeSource):
    """One web seed base URL over the torrent's byte space; see the module docstring.

    Args:
        base: the web seed URL as the torrent (``url-list``) or the command line gave it.
        files: the torrent's non-empty files on this seed (:func:`web_seed_files`).
        factory: builds the driver source of one file URL (HTTP, FTP, SFTP).
    """

    def __init__(
        self,
        base: str,
        files: Sequence[WebSeedFile],
        factory: Callable[[str], RangeSource],
    ) -> None:
        if not files:
            raise ValueError("a web seed needs at least one non-empty file")
        self.uri = base
        self._files = list(files)
        self._starts = [f.offset for f in self._files]
        self._factory = factory
        self._sources: dict[int, RangeSource] = {}
        # streams reading each file now, and the files no stream reads, oldest first: those
        # beyond MAX_IDLE_FILES are closed (each file's source keeps its own connections)
        self._users: dict[int, int] = {}
        self._idle: OrderedDict[int, None] = OrderedDict()
        self.total_length = self._files[-1].end
        first = next((i for i, f in enumerate(self._files) if f.url), None)
        if first is not None:
            self.host_key = self.source_of(first).host_key
        else:
            self.host_key = urllib.parse.urlsplit(base).netloc

    def source_of(self, index: int) -> RangeSource:
        """The driver source of file ``index`` (built on first use)."""
        source = self._sources.get(index)
        if source is None:
            f = self._files[index]
            source = self._sources[index] = self._factory(f.url)
            source.expect_length(f.length)
        return source

    def acquire(self, index: int) -> RangeSource:
        """:meth:`source_of` for a stream that is about to read file ``index``."""
        self._users[index] = self._users.get(index, 0) + 1
        self._idle.pop(index, None)
        return self.source_of(index)

    async def release(self, index: int) -> None:
        """A stream is done with file ``index``: past :data:`MAX_IDLE_FILES` files that no
        stream reads, the oldest one's source (its idle connections) is closed."""
        users = self._users.get(index, 0) - 1
        if users > 0:
            self._users[index] = users
            return
        self._users.pop(index, None)
        self._idle[index] = None
        while len(self._idle) > MAX_IDLE_FILES:
            oldest, _ = self._idle.popitem(last=False)
            source = self._sources.pop(oldest, None)
            if source is not None:
                with trio.CancelScope(shield=True):
                    await source.aclose()

    def file_at(self, offset: int) -> int:
        """Index of the file holding global byte ``offset``."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0 or offset >= self._files[i].end:
            raise ValueError(f"byte {offset} is outside the web seed's files")
        return i

    def file(self, index: int) -> WebSeedFile:
        return self._files[index]

    async def probe(self) -> ProbeResult:
        stream = await self.open_range(0, self.total_length)
        return ProbeResult(self.total_length, True, stream=stream)

    async def open_range(self, start: int, end: int | None) -> RangeStream:
        stop = self.total_length if end is None else min(end, self.total_length)
        stream = _WebSeedStream(self, start, stop)
        await stream.open_next()
        return stream

    async def aclose(self) -> None:
        sources, self._sources = list(self._sources.values()), {}
        for source in sources:
            await source.aclose()


class _WebSeedStream(RangeStream):
    """``[start, end)`` of the byte space, read file by file."""

    def __init__(self, owner: WebSeedSource, start: int, end: int) -> None:
        self._owner = owner
        self._pos = start
        self._end = end
        self._current: RangeStream | None = None
        self._index: int | None = None  # the file ``_current`` reads (acquired from the owner)
        self._padding = False
        self._cur_end = start  # global end of the current file's request

    async def open_next(self) -> None:
        """Open the file holding the next byte (no-op at the end)."""
        if self._pos >= self._end:
            return
        owner = self._owner
        index = owner.file_at(self._pos)
        f = owner.file(index)
        self._cur_end = min(self._end, f.end)
        if not f.url:
            self._padding = True
            return
        self._padding = False
        source = owner.acquire(index)
        self._index = index
        try:
            self._current = await source.open_range(self._pos - f.offset, self._cur_end - f.offset)
        except BaseException:
            await self._release()
            raise

    async def read_into(self, buf: memoryview) -> int:
        while self._pos < self._end:
            if self._current is None and not self._padding:
                await self.open_next()
            want = min(len(buf), self._cur_end - self._pos)
            if self._padding:
                buf[:want] = bytes(want)
                n = want
            else:
                assert self._current is not None
                n = await self._current.read_into(buf[:want])
                if n == 0:
                    return 0  # the file's body ended early: the caller reports the short read
            self._pos += n
            if self._pos >= self._cur_end:
                await self._next_file()
            if n:
                return n
        return 0

    async def _next_file(self) -> None:
        current, self._current = self._current, None
        self._padding = False
        try:
            if current is not None:
                await current.finish(drained=True)
        finally:
            await self._release()

    async def finish(self, *, drained: bool) -> None:
        current, self._current = self._current, None
        try:
            if current is not None:
                await current.finish(drained=drained and self._pos >= self._cur_end)
        finally:
            await self._release()

    async def _release(self) -> None:
        index, self._index = self._index, None
        if index is not None:
            await self._owner.release(index)
