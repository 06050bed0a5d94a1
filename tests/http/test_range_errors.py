"""A mirror that lies about ranges raises a typed error the engine can tell apart (issue 15).

* a 206 whose ``Content-Range`` is not the range asked for: ``ContentRangeMismatchError``
  (exit 8, as aria2's "Invalid range header");
* ``200`` and the whole body to a request for a later range, although ``Accept-Ranges: bytes``
  was advertised: ``RangesIgnoredError`` (exit 22);
* both are ``UnreliableSourceError`` (retire the mirror, keep the download) — but a ``200``
  to ``If-Range`` because the file really changed is ``CannotResumeError``, not a lying mirror.

Servers: the fault-injecting trio server (``/liecr/``, ``/fullbody/``) and nginx (a file
replaced between the probe and the range request).
"""

from __future__ import annotations

import pytest

from tests.servers.fault import FaultServer
from tests.servers.nginx import NginxServer
from trioaria.base.errors import (
    CannotResumeError,
    ContentRangeMismatchError,
    ExitCode,
    RangesIgnoredError,
    UnreliableSourceError,
)
from trioaria.cli.options import Options
from trioaria.http.source import HttpSource


def _options() -> Options:
    return Options.defaults().with_overrides({"connect-timeout": "10", "timeout": "10"})


async def _read_all(stream: object) -> bytes:
    from trioaria.base.sources import RangeStream

    assert isinstance(stream, RangeStream)
    buf = memoryview(bytearray(1 << 16))
    got = bytearray()
    for _ in range(10_000):  # bounded: the body is well under 640 MiB
        n = await stream.read_into(buf)
        if not n:
            break
        got += buf[:n]
    await stream.finish(drained=True)
    return bytes(got)


async def test_wrong_content_range_is_a_typed_mismatch(fault_server: FaultServer) -> None:
    source = HttpSource(fault_server.url("/liecr/data.bin"), _options())
    try:
        with pytest.raises(ContentRangeMismatchError) as info:
            await source.probe()
    finally:
        await source.aclose()
    err = info.value
    assert isinstance(err, UnreliableSourceError)
    assert err.exit_code == ExitCode.CANNOT_RESUME and not err.retryable
    assert "invalid Content-Range: 'bytes 1-1048576/1048576'" in str(err)
    # a later range whose Content-Range is well-formed but not the one asked for
    source = HttpSource(fault_server.url("/liecr/data.bin"), _options())
    try:
        source.expect_length(len(fault_server.files["data.bin"]))
        with pytest.raises(ContentRangeMismatchError, match="starts at 1001, but byte 1000"):
            await source.open_range(1000, 2000)
    finally:
        await source.aclose()


async def test_whole_body_for_a_later_range_is_ranges_ignored(fault_server: FaultServer) -> None:
    data = fault_server.files["data.bin"]
    source = HttpSource(fault_server.url("/fullbody/data.bin"), _options())
    try:
        probe = await source.probe()
        assert probe.supports_ranges and probe.total_length == len(data)
        assert probe.stream is not None
        await probe.stream.finish(drained=False)
        with pytest.raises(RangesIgnoredError) as info:
            await source.open_range(1000, 2000)
    finally:
        await source.aclose()
    err = info.value
    assert isinstance(err, UnreliableSourceError)
    assert err.exit_code == ExitCode.HTTP_PROTOCOL_ERROR and not err.retryable
    assert "ignored the Range header" in str(err)
    assert fault_server.requests[-1].headers["range"] == "bytes=1000-1999"


async def test_a_changed_file_is_cannot_resume_not_a_lying_mirror(
    nginx: NginxServer,
) -> None:
    nginx.add_file("changing.bin", b"a" * 100_000)
    source = HttpSource(nginx.url("/changing.bin"), _options())
    try:
        probe = await source.probe()
        assert probe.supports_ranges and probe.etag
        assert await _read_all(probe.stream) == b"a" * 100_000
        nginx.add_file("changing.bin", b"b" * 100_000)  # same length, new ETag
        with pytest.raises(CannotResumeError) as info:
            await source.open_range(50_000, 60_000)
    finally:
        await source.aclose()
    assert not isinstance(info.value, UnreliableSourceError)
    assert info.value.exit_code == ExitCode.CANNOT_RESUME
    assert "changed" in str(info.value)
    # and the honest server still serves ranges of the same file
    source = HttpSource(nginx.url("/changing.bin"), _options())
    try:
        await (await source.probe()).stream.finish(drained=False)  # type: ignore[union-attr]
        assert await _read_all(await source.open_range(50_000, 60_000)) == b"b" * 10_000
    finally:
        await source.aclose()
