"""HTTP/1.1 pipelining (RFC 9112 §9.3; aria2 ``--enable-http-pipelining``).

Four layers, each against real parts:

* ``HttpConnection`` against nginx: several requests sent before any answer is read, answers
  parsed in order from bytes that arrive glued together; the nginx access log
  (``$connection $connection_requests``) shows them on one connection.
* ``HttpSource`` against the fault server: a pipelined request the server never answers (it
  closes after the current response) is sent again on a fresh connection.
* ``trioaria.engine.prefetch.Prefetcher`` with a scripted stream and the real ``RangePicker``: exact
  ranges, nothing pipelined behind a body that will be abandoned, segments given back.
* The whole download: a resumed file with holes (so one connection reads several segments)
  through ``RequestGroup`` against a server that records *when* each request arrived — with
  pipelining every next request arrives while the previous answer is still being written,
  without it none does — and through the CLI against nginx (compared with aria2c) and against
  the fault server dropping every connection mid-body with a pipelined request outstanding.
"""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.e2e_util import ARIA2C
from tests.servers.fault import FaultServer, run_fault_server_in_thread
from tests.servers.nginx import NginxServer
from trioaria.base.errors import LocalProtocolError
from trioaria.base.sources import RangeStream
from trioaria.base.stats import DownloadStatus
from trioaria.cli.options import Options
from trioaria.engine.group import RequestGroup
from trioaria.engine.prefetch import Prefetcher
from trioaria.http.client import ConnectionPool, HttpConnection, open_response
from trioaria.http.proto import HttpRequest
from trioaria.http.source import HttpSource
from trioaria.net.connect import TlsOptions
from trioaria.storage import control_file as cf
from trioaria.storage.picker import RangePicker, Segment
from trioaria.storage.pieces import PieceStorage

NO_TLS = TlsOptions()
PIECE = 1 << 20
_LOG = re.compile(r'^(\d+) (\d+) "GET (\S+) HTTP/1.1" (\d+) (\d+) "([^"]*)" "([^"]*)"$')


def _options(**values: str) -> Options:
    return Options.defaults().with_overrides(values)


def _nginx_requests(server: NginxServer, agent: str) -> list[tuple[int, int, str, str]]:
    """``(connection, request number on it, path, Range)`` of ``agent``'s requests."""
    out = []
    for line in server.access_log.read_text(errors="replace").splitlines():
        m = _LOG.match(line)
        if m is not None and m[7] == agent:
            out.append((int(m[1]), int(m[2]), m[3], m[6]))
    return out


async def _wait_logged(server: NginxServer, agent: str, count: int) -> list[Any]:
    with trio.fail_after(10):  # nginx logs a request when it completes
        while len(lines := _nginx_requests(server, agent)) < count:
            await trio.sleep(0.02)
    return lines


async def _read_all(conn: HttpConnection) -> bytes:
    buf = memoryview(bytearray(1 << 16))
    out = bytearray()
    with trio.fail_after(10):
        while n := await conn.read_into(buf):
            out += buf[:n]
    return bytes(out)


def _get(url: str, first: int, last: int, agent: str) -> HttpRequest:
    return HttpRequest("GET", url, first, last, headers=(("User-Agent", agent),))


# --- HttpConnection -------------------------------------------------------------------------


async def test_three_requests_in_flight_on_one_nginx_connection(nginx: NginxServer) -> None:
    data = (nginx.root / "file1m.bin").read_bytes()
    url = nginx.url("/file1m.bin")
    agent = "pipe-conn-3"
    ranges = [(0, 9), (100, 109), (5000, 5999), (1 << 19, (1 << 20) - 1)]
    reqs = [_get(url, a, b, agent) for a, b in ranges]
    conn = await HttpConnection.connect(url, tls=NO_TLS, connect_timeout=10)
    try:
        with trio.fail_after(10):
            info = await conn.request(reqs[0])
            assert not conn.pipelined
            for req in reqs[1:]:  # small answers: they arrive glued to each other
                assert conn.can_pipeline
                await conn.pipeline(req)
            assert conn.pipelined == 3
            bodies = []
            for i, req in enumerate(reqs):
                if i:
                    assert not conn.reusable  # answers are still queued on it
                    info = await conn.request(req)
                assert info.status == 206
                assert info.content_range == (ranges[i][0], ranges[i][1], len(data))
                bodies.append(await _read_all(conn))
        assert bodies == [data[a : b + 1] for a, b in ranges]
        assert conn.reusable and conn.requests_sent == 4
    finally:
        await conn.aclose()
    lines = await _wait_logged(nginx, agent, 4)
    assert {c for c, *_ in lines} == {lines[0][0]}, lines  # one TCP connection
    assert [n for _, n, *_ in lines] == [1, 2, 3, 4]
    assert [r for *_, r in lines] == [f"bytes={a}-{b}" for a, b in ranges]


async def test_queued_request_must_be_read_in_order(nginx: NginxServer) -> None:
    url = nginx.url("/file1m.bin")
    conn = await HttpConnection.connect(url, tls=NO_TLS, connect_timeout=10)
    try:
        with trio.fail_after(10):
            await conn.request(_get(url, 0, 99, "pipe-order"))
            await conn.pipeline(_get(url, 100, 199, "pipe-order"))
            await _read_all(conn)
            with pytest.raises(LocalProtocolError):
                await conn.request(_get(url, 200, 299, "pipe-order"))  # not the queued one
            info = await conn.request(_get(url, 100, 199, "pipe-order"))
            assert info.content_range is not None and info.content_range[0] == 100
    finally:
        await conn.aclose()


async def test_nothing_is_pipelined_behind_a_chunked_body(nginx: NginxServer) -> None:
    url = nginx.url("/chunked/text.txt")
    conn = await HttpConnection.connect(url, tls=NO_TLS, connect_timeout=10)
    try:
        with trio.fail_after(10):
            info = await conn.request(HttpRequest("GET", url))
            assert info.chunked
            assert not conn.can_pipeline  # its end is only known once it is read
            with pytest.raises(LocalProtocolError):
                await conn.pipeline(HttpRequest("GET", url))
            await _read_all(conn)
            assert conn.can_pipeline
    finally:
        await conn.aclose()


async def test_unanswered_pipelined_request_is_sent_again(fault_server: FaultServer) -> None:
    """/drop/ with a huge ``after`` sends each answer whole, then closes the connection: the
    pipelined request is never answered and goes out again on a new connection."""
    data = fault_server.files["data.bin"]
    source = HttpSource(
        fault_server.url("/drop/data.bin?after=99999999"),
        _options(**{"enable-http-pipelining": "true"}),
    )
    assert source.pipelining
    try:
        with trio.fail_after(10):
            first = await source.open_range(0, 100_000)
            second = await first.pipeline(100_000, 300_000)
            assert second is not None
            assert await first.pipeline(300_000, 400_000) is None  # one request ahead at most
            got = await _read_stream(first, 100_000)
            await first.finish(drained=True)
            got += await _read_stream(second, 200_000)
            await second.finish(drained=True)
    finally:
        await source.aclose()
    assert got == data[:300_000]
    # the server closed without reading the pipelined copy; the second one it did read came
    # on a second connection
    ranges = [r.headers.get("range") for r in fault_server.requests]
    assert ranges == ["bytes=0-99999", "bytes=100000-299999"]
    assert fault_server.connections == 2


async def _read_stream(stream: RangeStream, size: int) -> bytes:
    buf = memoryview(bytearray(1 << 16))
    out = bytearray()
    while len(out) < size:
        n = await stream.read_into(buf[: size - len(out)])
        assert n, "body ended early"
        out += buf[:n]
    return bytes(out)


async def test_open_response_reads_the_pipelined_answer(nginx: NginxServer) -> None:
    url = nginx.url("/file1m.bin")
    pool = ConnectionPool()
    try:
        with trio.fail_after(10):
            conn, _, _ = await open_response(
                pool, _get(url, 0, 9, "pipe-or"), tls=NO_TLS, connect_timeout=10, read_timeout=10
            )
            second = _get(url, 10, 19, "pipe-or")
            await conn.pipeline(second)
            await _read_all(conn)
            again, info, _ = await open_response(
                pool, second, tls=NO_TLS, connect_timeout=10, read_timeout=10, pipelined=conn
            )
            assert again is conn and info.status == 206
            assert await _read_all(conn) == (nginx.root / "file1m.bin").read_bytes()[10:20]
            pool.release(conn)
            stats = pool.statistics()
            assert (stats.idle, stats.opened, stats.reused) == (1, 1, 0)  # one connection
    finally:
        await pool.aclose()


# --- Prefetcher ---------------------------------------------------------------------------


@dataclass
class _Scripted(RangeStream):
    """Hands out zeros; records pipeline() calls; ``accept`` decides their answer."""

    accept: bool = True
    pipelined: list[tuple[int, int]] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)

    async def read_into(self, buf: memoryview) -> int:
        await trio.lowlevel.checkpoint()
        return len(buf)

    async def finish(self, *, drained: bool) -> None:
        await trio.lowlevel.checkpoint()
        self.finished.append(drained)

    async def pipeline(self, start: int, end: int) -> RangeStream | None:
        await trio.lowlevel.checkpoint()
        self.pipelined.append((start, end))
        return _Scripted() if self.accept else None


def _picker(pieces: int, done: tuple[int, ...] = ()) -> RangePicker:
    storage = PieceStorage(pieces * PIECE, PIECE)
    for i in done:
        storage.mark_bytes(i * PIECE, (i + 1) * PIECE)
    return RangePicker(storage, min_split_size=PIECE)


def _prefetcher(picker: RangePicker, stream: _Scripted, seg: Segment, req_end: int) -> Prefetcher:
    return Prefetcher(
        stream,
        seg,
        req_end,
        pick=lambda: picker.next_segment("src", endgame=False),
        release=picker.release,
        threshold=PIECE // 2,
    )


async def _pump(picker: RangePicker, pf: Prefetcher, seg: Segment, step: int) -> None:
    buf = memoryview(bytearray(step))
    while not seg.finished:
        n = await pf.read_into(buf[: min(step, seg.end - seg.pos)])
        picker.advance(seg, n)


async def test_prefetcher_pipelines_the_next_gap_exactly_near_the_end() -> None:
    picker = _picker(4, done=(1,))
    seg = picker.next_segment("src")  # the larger gap first: pieces 2-3
    assert seg is not None and (seg.start, seg.end) == (2 * PIECE, 4 * PIECE)
    stream = _Scripted()
    pf = _prefetcher(picker, stream, seg, seg.end)
    await pf.read_into(memoryview(bytearray(100)))
    assert not stream.pipelined  # far from the end: nothing yet
    picker.advance(seg, 100)
    await _pump(picker, pf, seg, 65536)
    assert stream.pipelined == [(0, PIECE)]  # the other gap, as one exact range
    assert pf.ahead is not None
    nxt, ahead_stream, end = await pf.take_ahead(drained=True)
    assert nxt is not None and (nxt.pos, nxt.end, end) == (0, PIECE, PIECE)
    assert ahead_stream is not None and nxt in picker.active


async def test_prefetcher_pipelines_nothing_behind_a_body_that_will_be_abandoned() -> None:
    picker = _picker(4, done=(1,))
    seg = picker.next_segment("src")
    assert seg is not None
    stream = _Scripted()
    pf = _prefetcher(picker, stream, seg, 4 * PIECE + 1)  # the request reaches past seg.end
    await _pump(picker, pf, seg, 65536)
    assert not stream.pipelined and pf.ahead is None
    assert [(s.start, s.end) for s in picker.active] == [(2 * PIECE, 4 * PIECE)]


async def test_prefetcher_gives_the_segment_back_when_the_stream_cannot_pipeline() -> None:
    picker = _picker(4, done=(1,))
    seg = picker.next_segment("src")
    assert seg is not None
    stream = _Scripted(accept=False)
    pf = _prefetcher(picker, stream, seg, seg.end)
    await _pump(picker, pf, seg, 65536)
    assert stream.pipelined == [(0, PIECE)] and pf.ahead is None
    picker.release(seg)
    assert picker.next_segment("other") is not None  # piece 0 is free for anyone
    assert await pf.take_ahead(drained=True) == (None, None, 0)


async def test_abandoned_body_means_the_next_segment_is_opened_afresh() -> None:
    picker = _picker(4, done=(1,))
    seg = picker.next_segment("src")
    assert seg is not None
    pf = _prefetcher(picker, _Scripted(), seg, seg.end)
    await _pump(picker, pf, seg, 65536)
    assert pf.ahead is not None
    ahead_stream = pf.ahead[1]
    assert isinstance(ahead_stream, _Scripted)
    nxt, stream, end = await pf.take_ahead(drained=False)
    assert nxt is not None and stream is None and end == nxt.end == PIECE
    assert ahead_stream.finished == [False]  # its answer went with the closed connection


async def test_dropped_ahead_segment_goes_back_to_the_picker() -> None:
    picker = _picker(4, done=(1,))
    seg = picker.next_segment("src")
    assert seg is not None
    pf = _prefetcher(picker, _Scripted(), seg, seg.end)
    await _pump(picker, pf, seg, 65536)
    assert pf.ahead is not None
    nxt, ahead_stream, _ = pf.ahead
    await pf.drop_ahead()
    assert nxt.released and nxt not in picker.active
    assert isinstance(ahead_stream, _Scripted) and ahead_stream.finished == [False]


# --- the whole download -----------------------------------------------------------------


def _holey(directory: Path, name: str, data: bytes) -> None:
    """A resumable partial download: even pieces present, odd ones missing."""
    directory.mkdir(parents=True, exist_ok=True)
    part = bytearray(len(data))
    bits = bytearray((len(data) // PIECE + 7) // 8)
    for i in range(0, len(data) // PIECE, 2):
        part[i * PIECE : (i + 1) * PIECE] = data[i * PIECE : (i + 1) * PIECE]
        bits[i // 8] |= 0x80 >> (i % 8)
    (directory / name).write_bytes(part)
    control = cf.ControlFile(
        piece_length=PIECE, total_length=len(data), bitfield=bytes(bits), in_flight=()
    )
    (directory / f"{name}.aria2").write_bytes(cf.serialize(control))


@dataclass
class _Arrival:
    connection: int
    range: str
    mid_response: bool  # arrived while the previous answer was still being written


class _WitnessServer:
    """Range server that records whether each request arrived while the connection was still
    writing the previous answer (slowly: 32 KiB every 4 ms), i.e. was really pipelined."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.arrivals: list[_Arrival] = []
        self._connections = 0

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(int(listeners[0].socket.getsockname()[1]))
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        self._connections += 1
        number = self._connections
        writing = [False]
        send, receive = trio.open_memory_channel[str](16)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, stream, receive, writing, nursery.cancel_scope)
                buffer = b""
                while True:
                    try:
                        chunk = await stream.receive_some(65536)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        chunk = b""
                    if not chunk:
                        break
                    buffer += chunk
                    while b"\r\n\r\n" in buffer:
                        head, buffer = buffer.split(b"\r\n\r\n", 1)
                        m = re.search(rb"(?im)^range: *bytes=(\d+-\d*)", head)
                        spec = m[1].decode() if m else ""
                        self.arrivals.append(_Arrival(number, spec, writing[0]))
                        await send.send(spec)
                await send.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def _writer(
        self,
        stream: trio.SocketStream,
        receive: trio.MemoryReceiveChannel[str],
        writing: list[bool],
        scope: trio.CancelScope,
    ) -> None:
        try:
            async for spec in receive:
                first, _, last = spec.partition("-")
                total = len(self.data)
                end = min(int(last), total - 1) if last else total - 1
                body = memoryview(self.data)[int(first) : end + 1]
                head = (
                    f"HTTP/1.1 206 Partial Content\r\nContent-Length: {len(body)}\r\n"
                    f'Content-Range: bytes {first}-{end}/{total}\r\nETag: "w"\r\n\r\n'
                )
                writing[0] = True
                await stream.send_all(head.encode())
                for i in range(0, len(body), 32768):
                    if i:
                        await trio.sleep(0.004)
                    await stream.send_all(body[i : i + 32768])
                writing[0] = False  # no checkpoint since the last byte went out
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            scope.cancel()


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "sequential"])
async def test_next_request_arrives_while_the_answer_is_still_being_written(
    tmp_path: Path, nursery: trio.Nursery, pipelining: bool
) -> None:
    data = random.Random(16).randbytes(8 * PIECE)
    server = _WitnessServer(data)
    port = await nursery.start(server.serve)
    _holey(tmp_path, "w.bin", data)
    options = _options(
        dir=str(tmp_path),
        split="1",
        **{"continue": "true", "enable-http-pipelining": str(pipelining).lower()},
    )
    group = RequestGroup([f"http://127.0.0.1:{port}/w.bin"], options)
    with trio.fail_after(30):
        await group.run()
    assert group.state is DownloadStatus.COMPLETE, group.error
    assert (tmp_path / "w.bin").read_bytes() == data
    gaps = [f"{i * PIECE}-{(i + 1) * PIECE - 1}" for i in (1, 3, 5, 7)]
    # the probe asks for "0-" on its own connection, which is closed (piece 0 is there)
    worker = [a for a in server.arrivals if a.range != "0-"]
    assert [a.range for a in worker] == gaps, server.arrivals
    assert len({a.connection for a in worker}) == 1  # one keep-alive connection either way
    assert [a.mid_response for a in worker[1:]] == [pipelining] * 3, server.arrivals


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "trioaria", "--summary-interval=0", *args]


async def _run(argv: list[str], cwd: Path, timeout: float = 60) -> trio.CompletedProcess[bytes]:
    from tests.cli_util import child_env

    with trio.fail_after(timeout):
        return await trio.run_process(
            argv, cwd=str(cwd), env=child_env(cwd), check=False,
            capture_stdout=True, capture_stderr=True, stdin=b"",
        )  # fmt: skip


async def test_cli_pipelines_over_one_nginx_connection_like_aria2c(
    nginx: NginxServer, tmp_path: Path
) -> None:
    data = random.Random(17).randbytes(8 * PIECE)
    nginx.add_file("pipelined.bin", data)
    gaps = [f"bytes={i * PIECE}-{(i + 1) * PIECE - 1}" for i in (1, 3, 5, 7)]
    for program in ("trioaria", "aria2c"):
        out = tmp_path / program
        _holey(out, "pipelined.bin", data)
        agent = f"pipe-cli-{program}"
        args = ["-c", "-x1", "-s1", "--enable-http-pipelining=true", f"--user-agent={agent}"]
        args += ["-d", str(out), "-l", str(out / "log.txt"), "--log-level=debug"]
        args.append(nginx.url("/pipelined.bin"))
        argv = _cli(*args) if program == "trioaria" else [ARIA2C, "--no-conf", *args]
        proc = await _run(argv, out)
        assert proc.returncode == 0, (program, proc.stdout[-2000:], proc.stderr[-2000:])
        assert (out / "pipelined.bin").read_bytes() == data, program
        lines = await _wait_logged(nginx, agent, 5)
        worker = [line for line in lines if line[3] in gaps]
        assert [line[3] for line in worker] == gaps, (program, lines)
        assert len({line[0] for line in worker}) == 1, (program, lines)
        assert [line[1] for line in worker] == [1, 2, 3, 4], (program, lines)
        if program == "trioaria":
            log = (out / "log.txt").read_text()
            assert log.count("pipelined GET") == 3, log[-3000:]


def test_cli_completes_when_connections_drop_with_a_pipelined_request_outstanding(
    tmp_path: Path,
) -> None:
    from tests.cli_util import child_env

    data = random.Random(18).randbytes(4 * PIECE)
    server = FaultServer({"big.bin": data})
    port, stop = run_fault_server_in_thread(server)
    try:
        out = tmp_path / "out"
        _holey(out, "big.bin", data)
        url = f"http://127.0.0.1:{port}/drop/big.bin?after=400000"  # every answer cut short
        args = ["-c", "-x1", "-s1", "--enable-http-pipelining=true", "-o", "big.bin"]
        args += ["-d", str(out), "-l", str(out / "log.txt"), "--log-level=debug", url]
        proc = subprocess.run(
            _cli(*args), cwd=out, env=child_env(out), capture_output=True, timeout=60, check=False
        )
        assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    finally:
        stop()
    assert hashlib.sha256((out / "big.bin").read_bytes()).digest() == hashlib.sha256(data).digest()
    log = (out / "log.txt").read_text()
    assert log.count("pipelined GET") >= 2, log[-3000:]
    assert server.connections >= 4  # each cut answer took its connection (and what it carried)
