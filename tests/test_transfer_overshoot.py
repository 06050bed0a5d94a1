"""A read that comes back past its segment's end (the endgame halved the segment while the read
was in flight) drops the bytes beyond the end; the stream is then ahead of the segment, so it
must never be extended over a run handed back later (the thief's request failed before its
first byte): its next bytes would land short of their offset, a wrong file reported complete.

Fault injection with a scripted range source through the real RequestGroup, transfers, picker
and storage session: the first stream's read waits until the tail has been halved and then
returns a whole buffer; the thief's request is refused (503) before any byte; later requests
are served, so the download completes, and every byte must be where it belongs.
"""

from __future__ import annotations

import os
from pathlib import Path

import trio

from trioaria.base import errors
from trioaria.base.sources import ProbeResult, RangeSource, RangeStream
from trioaria.base.stats import DownloadStatus
from trioaria.cli.options import Options
from trioaria.engine.group import RequestGroup

K, M = 1024, 1 << 20
TOTAL = 4 * M
DATA = os.urandom(TOTAL)


class _Stream(RangeStream):
    def __init__(self, src: _Source, start: int, end: int, kind: str) -> None:
        self.src, self.pos, self.end, self.kind = src, start, end, kind

    async def read_into(self, buf: memoryview) -> int:
        if self.pos >= self.end:
            await trio.lowlevel.checkpoint()
            return 0
        if self.kind == "first" and self.pos < 256 * K:
            await trio.sleep(0.05)  # a slow start: 16 KiB per 50 ms
            n = min(len(buf), 16 * K)
        elif self.kind == "first" and not self.src.burst.is_set():
            await self.src.burst.wait()  # a read in flight while the tail is halved...
            n = len(buf)  # ...comes back full (what the socket had buffered)
        else:
            if self.kind == "second":
                await trio.sleep(1.5)
            await trio.lowlevel.checkpoint()
            n = len(buf)
        n = min(n, self.end - self.pos)
        buf[:n] = DATA[self.pos : self.pos + n]
        self.pos += n
        return n

    async def finish(self, *, drained: bool) -> None:
        await trio.lowlevel.checkpoint()


class _Source(RangeSource):
    def __init__(self, uri: str) -> None:
        self.uri, self.host_key = uri, "h:1"
        self.burst = trio.Event()
        self.opens: list[tuple[int, int | None]] = []

    async def probe(self) -> ProbeResult:
        return ProbeResult(TOTAL, True, filename="f.bin", stream=_Stream(self, 0, TOTAL, "first"))

    async def open_range(self, start: int, end: int | None) -> RangeStream:
        self.opens.append((start, end))
        if len(self.opens) == 1:
            return _Stream(self, start, end or TOTAL, "second")
        if len(self.opens) == 2:
            self.burst.set()  # the thief of the halved tail: refused before any byte
            await trio.sleep(0.2)
            raise errors.ServiceUnavailableError("503 Service Unavailable")
        return _Stream(self, start, end or TOTAL, "later")  # the retries are served


async def test_a_stream_past_its_segment_is_not_extended(tmp_path: Path) -> None:
    opts = Options.defaults().with_overrides(
        {
            "dir": str(tmp_path),
            "split": "2",
            "max-connection-per-server": "2",
            "min-split-size": "1M",
            "retry-wait": "1",
            "max-tries": "5",
            "file-allocation": "none",
        }
    )
    made: list[_Source] = []

    def factory(uri: str, _options: object) -> _Source:
        made.append(_Source(uri))
        return made[-1]

    group = RequestGroup(["http://h:1/f.bin"], opts, source_factory=factory)  # type: ignore[arg-type]
    with trio.fail_after(60):
        await group.run()
    assert group.state is DownloadStatus.COMPLETE, group.error
    got = (tmp_path / "f.bin").read_bytes()
    bad = [i for i in range(0, TOTAL, 16 * K) if got[i : i + 16 * K] != DATA[i : i + 16 * K]]
    assert bad == [], f"{len(bad)} wrong 16 KiB blocks from byte {bad[0]}"
    assert made[0].burst.is_set()  # the race this test is about did happen
