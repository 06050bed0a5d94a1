"""One TCP connect for every driver (issue 9) and refused connections named by their OS cause
(issue 15).

* :func:`trioaria.net.connect.interleave` orders addresses as RFC 8305 §4 says (table).
* A name that resolves to a dead ``::1`` address first (a listener whose accept queue is full:
  SYNs are dropped, the connect hangs) and to a live 127.0.0.1 second (an injected trio
  resolver): HTTP, FTP (control and data connections) and SFTP all download through it, and
  the fallback comes after the Happy Eyeballs delay, not after the connect timeout.
* A refused port gives a one-line ``ConnectError`` naming ``Connection refused
  (ECONNREFUSED)`` for HTTP, FTP and SFTP; a name with two addresses names both.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.resolver_util import StaticResolver
from tests.servers.ftp import FtpServer
from tests.servers.sftp import SftpServer
from trioaria.base.errors import ConnectError, ExitCode
from trioaria.base.sources import RangeSource, RangeStream
from trioaria.cli.options import build_options
from trioaria.engine.source_factory import make_source
from trioaria.net.connect import HAPPY_EYEBALLS_DELAY, Target, interleave, open_tcp

V4, V6 = socket.AF_INET, socket.AF_INET6
DATA = bytes(range(256)) * 3000  # 768,000 bytes


def _v6(port: int) -> tuple[Any, ...]:
    return (V6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0))


def _v4(port: int) -> tuple[Any, ...]:
    return (V4, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))  # no known_hosts, keys or .netrc of the user
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return tmp_path


@pytest.fixture
def black_hole_v6() -> Iterator[int]:
    """A ``::1`` port where connects hang (a listener with a full accept queue)."""
    listener = socket.socket(V6, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    try:
        listener.bind(("::1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        for _ in range(3):
            s = socket.socket(V6, socket.SOCK_STREAM)
            s.setblocking(False)
            fillers.append(s)
            try:
                s.connect(("::1", port))
            except BlockingIOError:
                pass
        probe = socket.socket(V6, socket.SOCK_STREAM)
        fillers.append(probe)
        probe.settimeout(0.5)
        with pytest.raises(TimeoutError):  # the trap holds
            probe.connect(("::1", port))
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


def _closed_port(family: int = V4, host: str = "127.0.0.1") -> int:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])  # closed again: connecting is refused


def _options(**values: str) -> Any:
    base = {"no-netrc": "true", "connect-timeout": "20", "timeout": "20"}
    return build_options({k.replace("_", "-"): v for k, v in values.items()}, {}, base=base)


async def _fetch(source: RangeSource) -> bytes:
    """Probe, then read the whole file as two ranges (a second connection) and close."""
    try:
        probe = await source.probe()
        if probe.stream is not None:
            await probe.stream.finish(drained=False)
        total = probe.total_length
        assert total is not None
        out = bytearray()
        for start, end in ((0, total // 2), (total // 2, total)):
            out += await _read(await source.open_range(start, end))
        return bytes(out)
    finally:
        await source.aclose()


async def _read(stream: RangeStream) -> bytes:
    buf = memoryview(bytearray(1 << 16))
    got = bytearray()
    for _ in range(100_000):  # bounded
        n = await stream.read_into(buf)
        if not n:
            break
        got += buf[:n]
    await stream.finish(drained=True)
    return bytes(got)


# --- ordering ------------------------------------------------------------------------------

A4, B4 = Target(V4, ("192.0.2.1", 80)), Target(V4, ("192.0.2.2", 80))
A6, B6 = Target(V6, ("2001:db8::1", 80, 0, 0)), Target(V6, ("2001:db8::2", 80, 0, 0))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], []),
        ([A4], [A4]),
        ([A6, B6, A4, B4], [A6, A4, B6, B4]),
        ([A4, B4, A6], [A4, A6, B4]),
        ([A6, A4, B4], [A6, A4, B4]),
        ([A4, B4], [A4, B4]),
    ],
)
def test_interleave_alternates_families_from_the_first(
    given: list[Target], expected: list[Target]
) -> None:
    assert interleave(given) == expected


def test_target_label() -> None:
    assert (A4.label, A6.label) == ("192.0.2.1:80", "[2001:db8::1]:80")


# --- a dead first address -----------------------------------------------------------------


async def test_open_tcp_falls_back_after_the_delay(black_hole_v6: int) -> None:
    with socket.socket(V4, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = int(server.getsockname()[1])
        resolver = StaticResolver({"dual.test": [_v6(black_hole_v6), _v4(port)]})
        trio.socket.set_custom_hostname_resolver(resolver)
        start = trio.current_time()
        with trio.fail_after(10):
            stream = await open_tcp("dual.test", port)
        elapsed = trio.current_time() - start
        try:
            assert stream.socket.getpeername()[:2] == ("127.0.0.1", port)
        finally:
            await stream.aclose()
    assert HAPPY_EYEBALLS_DELAY * 0.8 <= elapsed < 5, elapsed
    assert resolver.asked == ["dual.test"]


async def test_ftp_falls_back_for_control_and_data(
    ftp_server: FtpServer, black_hole_v6: int, home: Path
) -> None:
    ftp_server.add_file("he.bin", DATA)
    resolver = StaticResolver({"dual.test": [_v6(black_hole_v6), _v4(ftp_server.port)]})
    trio.socket.set_custom_hostname_resolver(resolver)
    url = f"ftp://test:secret@dual.test:{ftp_server.port}/he.bin"
    start = trio.current_time()
    with trio.fail_after(15):
        got = await _fetch(make_source(url, _options()))
    assert got == DATA
    assert trio.current_time() - start < 10  # not a connect timeout per attempt
    assert "dual.test" in resolver.asked
    assert len(ftp_server.commands("RETR")) >= 2  # both ranges over data connections


async def test_sftp_falls_back(sftp_server: SftpServer, black_hole_v6: int, home: Path) -> None:
    sftp_server.add_file("he-sftp.bin", DATA)
    resolver = StaticResolver({"dual.test": [_v6(black_hole_v6), _v4(sftp_server.port)]})
    trio.socket.set_custom_hostname_resolver(resolver)
    url = sftp_server.url("he-sftp.bin", host="dual.test")
    with trio.fail_after(30):
        got = await _fetch(make_source(url, _options()))
    assert got == DATA
    # asyncssh on its own would resolve with asyncio (blind to trio's resolver: "dual.test"
    # would not resolve at all); the socket it got came from our connect
    assert "dual.test" in resolver.asked


# --- refused connections name the OS cause -------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "ftp", "sftp"])
async def test_refused_names_the_os_cause(scheme: str, home: Path) -> None:
    port = _closed_port()
    source = make_source(f"{scheme}://127.0.0.1:{port}/f.bin", _options())
    try:
        with pytest.raises(ConnectError) as info:
            await source.probe()
    finally:
        await source.aclose()
    message = str(info.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port}" in message
    assert "Connection refused (ECONNREFUSED)" in message, message
    assert info.value.exit_code == ExitCode.UNKNOWN_ERROR  # aria2: errorCode=1


async def test_refused_on_every_address_names_each() -> None:
    port4 = _closed_port()
    port6 = _closed_port(V6, "::1")
    trio.socket.set_custom_hostname_resolver(
        StaticResolver({"both.test": [_v6(port6), _v4(port4)]})
    )
    with pytest.raises(ConnectError) as info:
        await open_tcp("both.test", port4)
    message = str(info.value)
    assert message.startswith(f"failed to establish connection to both.test:{port4}: "), message
    assert f"[::1]:{port6}: Connection refused (ECONNREFUSED)" in message
    assert f"127.0.0.1:{port4}: Connection refused (ECONNREFUSED)" in message
    assert isinstance(info.value.__cause__, ExceptionGroup)
