"""FtpSource against a scripted, misbehaving FTP server (in-process trio, 127.0.0.1, port 0).

Covers what real servers do not do on request: garbage replies, a PASV reply naming another
host (ignored: the data connection goes to the control peer; the conftest audit hook would
fail the test on any connect outside loopback), a data connection cut short, a file whose size
changes between connections, and an aborted transfer followed by reuse of the control channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from trioaria.base.errors import CannotResumeError, ExitCode, FtpProtocolError, NetworkError
from trioaria.cli.option_table import OPTIONS
from trioaria.ftp.source import FtpSource

DATA = bytes(range(256)) * 4096  # 1 MiB


class Opts:
    def __init__(self, **over: Any) -> None:
        self._v = {n: s.default for n, s in OPTIONS.items()}
        self._v.update({"timeout": 5, "connect-timeout": 5, "ftp-pasv": True,
                        "ftp-reuse-connection": True, "no-netrc": True, "ftp-type": "binary"})  # fmt: skip
        self._v.update({k.replace("_", "-"): v for k, v in over.items()})

    def get(self, name: str) -> Any:
        return self._v.get(name)


@dataclass
class Script:
    greeting: bytes = b"220 fake\r\n"
    epsv: bool = True
    pasv_host: str = "10,9,8,7"
    cut_after: int | None = None  # data bytes before the data connection is cut
    size: int = len(DATA)
    #: after each RETR: "two" sends a second final reply at once, "late" sends it just
    #: before the answer to the next command (the client closed the data early)
    stray: str = ""
    log: list[str] = field(default_factory=list)
    sessions: int = 0


async def _serve_control(stream: trio.SocketStream, sc: Script) -> None:
    sc.sessions += 1
    await stream.send_all(sc.greeting)
    buf = b""
    listener: trio.SocketListener | None = None
    rest = 0
    late = b""
    async with trio.open_nursery() as nursery:
        while True:
            while b"\r\n" not in buf:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    nursery.cancel_scope.cancel()
                    return
                buf += chunk
            line, buf = buf.split(b"\r\n", 1)
            cmd = line.decode()
            sc.log.append(cmd)
            verb, _, arg = cmd.partition(" ")
            reply = b"200 ok\r\n"
            if verb == "USER":
                reply = b"331 pass\r\n"
            elif verb == "PASS":
                reply = b"230 in\r\n"
            elif verb == "PWD":
                reply = b'257 "/" here\r\n'
            elif verb == "SIZE":
                reply = f"213 {sc.size}\r\n".encode()
            elif verb == "MDTM":
                reply = b"213 20200101000000\r\n"
            elif verb in ("EPSV", "PASV"):
                if verb == "EPSV" and not sc.epsv:
                    reply = b"502 no EPSV\r\n"
                else:
                    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
                    port = listener.socket.getsockname()[1]
                    reply = (
                        f"229 ok (|||{port}|)\r\n"
                        if verb == "EPSV"
                        else f"227 ok ({sc.pasv_host},{port >> 8},{port & 255})\r\n"
                    ).encode()
            elif verb == "REST":
                rest = int(arg)
                reply = b"350 ok\r\n"
            elif verb == "RETR":
                assert listener is not None
                data_stream = await listener.accept()
                await listener.aclose()
                await stream.send_all(b"150 here it comes\r\n")
                payload = DATA[rest:]
                if sc.cut_after is not None:
                    payload = payload[: sc.cut_after]
                try:
                    await data_stream.send_all(payload)
                    ok = sc.cut_after is None
                except trio.BrokenResourceError:
                    ok = False
                await data_stream.aclose()
                reply = b"226 done\r\n" if ok else b"426 cut\r\n"
                if sc.stray == "two":
                    reply += b"226 stray\r\n"
                elif sc.stray == "late":
                    late = b"226 late stray\r\n"
            elif verb == "QUIT":
                await stream.send_all(b"221 bye\r\n")
                return
            if verb != "RETR":
                reply, late = late + reply, b""
            await stream.send_all(reply)


@pytest.fixture
async def fake_ftp(nursery: trio.Nursery) -> tuple[Script, int]:
    sc = Script()
    listeners = await nursery.start(trio.serve_tcp, lambda s: _serve_control(s, sc), 0)
    port = listeners[0].socket.getsockname()[1]
    return sc, port


async def _read(stream: Any, limit: int) -> bytes:
    out = bytearray()
    buf = bytearray(65536)
    while len(out) < limit:
        n = await stream.read_into(memoryview(buf)[: limit - len(out)])
        if n == 0:
            break
        out += buf[:n]
    return bytes(out)


async def test_garbage_greeting_is_exit_21(fake_ftp: tuple[Script, int]) -> None:
    sc, port = fake_ftp
    sc.greeting = b"SSH-2.0-OpenSSH\r\n"
    src = FtpSource(f"ftp://127.0.0.1:{port}/f.bin", Opts())
    with pytest.raises(FtpProtocolError) as info:
        await src.probe()
    assert info.value.exit_code == ExitCode.FTP_PROTOCOL_ERROR


async def test_pasv_address_is_ignored(fake_ftp: tuple[Script, int]) -> None:
    sc, port = fake_ftp
    sc.epsv = False
    src = FtpSource(f"ftp://127.0.0.1:{port}/f.bin", Opts())
    probe = await src.probe()
    assert probe.total_length == len(DATA) and probe.supports_ranges
    assert probe.last_modified == 1577836800.0
    assert probe.stream is not None
    assert await _read(probe.stream, len(DATA)) == DATA
    await probe.stream.finish(drained=True)
    assert "EPSV" in sc.log and "PASV" in sc.log
    # EPSV refused once is not asked again on this connection
    stream = await src.open_range(1000, 2000)
    assert await _read(stream, 1000) == DATA[1000:2000]
    await stream.finish(drained=True)
    assert sc.log.count("EPSV") == 1 and sc.sessions == 1


async def test_segment_end_then_reuse(fake_ftp: tuple[Script, int]) -> None:
    sc, port = fake_ftp
    src = FtpSource(f"ftp://127.0.0.1:{port}/f.bin", Opts())
    probe = await src.probe()
    assert probe.stream is not None
    await probe.stream.finish(drained=False)  # lazy: no RETR was sent for it
    src.expect_length(len(DATA))
    for start in (0, 300_000, 700_000):
        stream = await src.open_range(start, start + 65536)
        assert await _read(stream, 1 << 20) == DATA[start : start + 65536]
        await stream.finish(drained=True)
    assert sc.sessions == 1
    assert [c for c in sc.log if c.startswith("REST")] == ["REST 0", "REST 300000", "REST 700000"]
    # each cut-short transfer ended with its 426: in step without a NOOP round trip
    assert "NOOP" not in sc.log


async def test_two_replies_after_a_cut_transfer_are_drained_by_noop(
    fake_ftp: tuple[Script, int],
) -> None:
    sc, port = fake_ftp
    sc.stray = "two"
    src = FtpSource(f"ftp://127.0.0.1:{port}/f.bin", Opts())
    src.expect_length(len(DATA))
    for start in (0, 300_000, 700_000):
        stream = await src.open_range(start, start + 65536)
        assert await _read(stream, 1 << 20) == DATA[start : start + 65536]
        await stream.finish(drained=True)
    assert sc.sessions == 1
    assert sc.log.count("NOOP") == 3  # the buffered stray was seen: NOOP each time


async def test_late_stray_reply_is_retryable_then_noop_sync(
    fake_ftp: tuple[Script, int],
) -> None:
    sc, port = fake_ftp
    sc.stray = "late"
    src = FtpSource(f"ftp://127.0.0.1:{port}/f.bin", Opts())
    src.expect_length(len(DATA))
    stream = await src.open_range(0, 65536)
    assert await _read(stream, 1 << 20) == DATA[:65536]
    await stream.finish(drained=True)
    assert "NOOP" not in sc.log
    # the stray 226 arrives as the answer to EPSV: the connection is dropped, retryably
    with pytest.raises(FtpProtocolError) as info:
        await src.open_range(300_000, 400_000)
    assert info.value.retryable
    for start in (300_000, 700_000):  # a new connection; this server now gets NOOP syncs
        stream = await src.open_range(start, start + 65536)
        assert await _read(stream, 1 << 20) == DATA[start : start + 65536]
        await stream.finish(drained=True)
    assert sc.sessions == 2
    assert sc.log.count("NOOP") == 2


async def test_truncated_data_connection(fake_ftp: tuple[Script, int]) -> None:
    sc, port = fake_ftp
    sc.cut_after = 5000
    src = FtpSource(f"ftp://127.0.0.1:{port}/f.bin", Opts())
    src.expect_length(len(DATA))
    stream = await src.open_range(0, 100_000)
    with pytest.raises(NetworkError) as info:
        await _read(stream, 100_000)
    assert info.value.retryable
    await stream.finish(drained=False)


async def test_size_changed_on_a_new_connection(fake_ftp: tuple[Script, int]) -> None:
    sc, port = fake_ftp
    sc.size = len(DATA) + 1
    src = FtpSource(f"ftp://127.0.0.1:{port}/f.bin", Opts())
    src.expect_length(len(DATA))
    with pytest.raises(CannotResumeError) as info:
        await src.open_range(0, 10)
    assert info.value.exit_code == ExitCode.CANNOT_RESUME
