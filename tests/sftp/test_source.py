"""SftpSource against the asyncssh SFTP server, in process: ranges, the connection pool, host
keys, credentials, cancellation, and the errors mapped at the asyncssh seam."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.servers.sftp import SftpServer, SshKeys
from trioaria.base import errors
from trioaria.cli.options import build_options
from trioaria.sftp import bridge as bridge_mod
from trioaria.sftp.source import SftpSource, map_error, parse_sftp_url

MiB = 1 << 20


def _opts(**values: str) -> object:
    return build_options(
        {k.replace("_", "-"): v for k, v in values.items()}, {}, base={"no-netrc": "true"}
    )


def _name(prefix: str) -> str:
    return f"{prefix}-{os.urandom(4).hex()}.bin"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user known_hosts, keys or agent: every test states what it trusts."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return tmp_path


@pytest.fixture(autouse=True)
def _bridge_released() -> Iterator[None]:
    yield
    assert bridge_mod._shared is None, "an SftpSource left the asyncio thread running"


async def _read(src: SftpSource, start: int, end: int | None) -> bytes:
    stream = await src.open_range(start, end)
    out = bytearray()
    buf = bytearray(300_000)  # not a multiple of the 1 MiB chunks
    mv = memoryview(buf)
    while True:
        n = await stream.read_into(mv)
        if n == 0:
            break
        out += mv[:n]
    await stream.finish(drained=True)
    return bytes(out)


def test_parse_sftp_url() -> None:
    t = parse_sftp_url("sftp://u%40x:p%3Aw@[::1]:2222/dir/a%20b.bin")
    assert (t.host, t.port, t.path, t.user, t.password) == (
        "::1",
        2222,
        "/dir/a b.bin",
        "u@x",
        "p:w",
    )
    assert t.host_key == "::1:2222"
    t = parse_sftp_url("sftp://host/~/rel/f")
    assert (t.port, t.path, t.user, t.password) == (22, "rel/f", None, None)
    for bad in ("sftp://host/", "sftp:///f", "http://host/f"):
        with pytest.raises(errors.OptionError):
            parse_sftp_url(bad)


async def test_probe_ranges_and_pooled_connections(sftp_server: SftpServer) -> None:
    name = _name("range")
    data = os.urandom(3 * MiB + 12345)
    path = sftp_server.add_file(name, data)
    src = SftpSource(sftp_server.url(name), _opts())
    try:
        probe = await src.probe()
        assert probe.total_length == len(data)
        assert probe.supports_ranges
        assert probe.last_modified == int(path.stat().st_mtime)
        assert probe.stream is None
        assert await _read(src, 1000, 2 * MiB + 7) == data[1000 : 2 * MiB + 7]
        assert await _read(src, 3 * MiB, None) == data[3 * MiB :]
        # three concurrent streams: three SSH connections (aria2's one session per connection)
        parts: dict[int, bytes] = {}

        async def part(i: int) -> None:
            parts[i] = await _read(src, i * MiB, (i + 1) * MiB)

        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(part, i)
        assert b"".join(parts[i] for i in range(3)) == data[: 3 * MiB]
    finally:
        await src.aclose()
    opens = [
        line for line in sftp_server.log_lines() if line[0] == "open" and line[2].endswith(name)
    ]
    assert len(opens) == 3, opens  # the probe's connection was reused, then two more


async def test_pinned_host_key(sftp_server: SftpServer, ssh_keys: SshKeys) -> None:
    name = _name("pin")
    sftp_server.add_file(name, b"x" * 1000)
    good = hashlib.sha256(ssh_keys.host_key_blob).hexdigest()
    src = SftpSource(sftp_server.url(name), _opts(ssh_host_key_md=f"sha-256={good}"))
    try:
        assert (await src.probe()).total_length == 1000
    finally:
        await src.aclose()
    src = SftpSource(sftp_server.url(name), _opts(ssh_host_key_md="md5=" + "0" * 32))
    try:
        with pytest.raises(errors.TrioariaError) as info:
            await src.probe()
    finally:
        await src.aclose()
    actual = hashlib.md5(ssh_keys.host_key_blob).hexdigest()
    assert f"unexpected SSH host key: expected md5={'0' * 32}, actual md5={actual}" in str(
        info.value
    )
    assert info.value.exit_code == errors.ExitCode.UNKNOWN_ERROR
    assert not info.value.retryable


async def test_known_hosts_verified_and_changed(
    sftp_server: SftpServer, ssh_keys: SshKeys, home: Path
) -> None:
    name = _name("kh")
    sftp_server.add_file(name, b"y" * 10)
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir()
    known = ssh_dir / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sftp_server.port} {ssh_keys.host_key_line}\n")
    src = SftpSource(sftp_server.url(name), _opts())
    try:
        assert (await src.probe()).total_length == 10
    finally:
        await src.aclose()
    other = (ssh_keys.other_key.parent / (ssh_keys.other_key.name + ".pub")).read_text().split()
    known.write_text(f"[127.0.0.1]:{sftp_server.port} {other[0]} {other[1]}\n")
    src = SftpSource(sftp_server.url(name), _opts())
    try:
        with pytest.raises(errors.TrioariaError, match="does not match known_hosts"):
            await src.probe()
    finally:
        await src.aclose()


async def test_key_login(sftp_server: SftpServer, ssh_keys: SshKeys, home: Path) -> None:
    name = _name("key")
    sftp_server.add_file(name, b"k" * 100)
    url = sftp_server.url(name, credentials=False).replace("sftp://", "sftp://test@")
    src = SftpSource(url, _opts(ssh_private_key=str(ssh_keys.client_key)))
    try:
        assert await _read(src, 0, 100) == b"k" * 100
    finally:
        await src.aclose()
    # the default key file is tried without an option
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_bytes(ssh_keys.client_key.read_bytes())
    src = SftpSource(url, _opts())
    try:
        assert (await src.probe()).total_length == 100
    finally:
        await src.aclose()
    src = SftpSource(url, _opts(ssh_private_key=str(ssh_keys.other_key)))
    try:
        with pytest.raises(errors.AuthError):
            await src.probe()
    finally:
        await src.aclose()


@pytest.mark.parametrize(
    ("url_of", "opts", "error", "retryable"),
    [
        (lambda s, n: s.url(n).replace(":secret@", ":wrong@"), {}, errors.AuthError, False),
        (lambda s, n: s.url("missing-" + n), {}, errors.NotFoundError, False),
        (  # credentials from --ftp-user / --ftp-passwd, as aria2
            lambda s, n: s.url(n, credentials=False),
            {"ftp_user": "test", "ftp_passwd": "nope"},
            errors.AuthError,
            False,
        ),
    ],
)
async def test_errors_have_aria2c_exit_codes(
    sftp_server: SftpServer, url_of, opts, error, retryable
) -> None:
    name = _name("err")
    sftp_server.add_file(name, b"z")
    src = SftpSource(url_of(sftp_server, name), _opts(**opts))
    try:
        with pytest.raises(error) as info:
            await src.probe()
    finally:
        await src.aclose()
    assert info.value.exit_code == errors.ExitCode.UNKNOWN_ERROR  # aria2c: errorCode=1
    assert info.value.retryable is retryable


async def test_credentials_from_options(sftp_server: SftpServer) -> None:
    name = _name("opt")
    sftp_server.add_file(name, b"o" * 5)
    src = SftpSource(
        sftp_server.url(name, credentials=False), _opts(ftp_user="test", ftp_passwd="secret")
    )
    try:
        assert await _read(src, 1, 5) == b"oooo"
    finally:
        await src.aclose()


async def test_connection_refused_is_connect_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connect is refused
        src = SftpSource(f"sftp://u:p@127.0.0.1:{port}/f", _opts())
        try:
            with pytest.raises(errors.ConnectError):
                await src.probe()
        finally:
            await src.aclose()


async def test_cancel_mid_read_then_close_promptly(sftp_server: SftpServer) -> None:
    name = "slow/" + _name("cancel")
    data = os.urandom(4 * MiB)
    sftp_server.add_file(name, data)
    src = SftpSource(sftp_server.url(name), _opts())
    try:
        await src.probe()
        stream = await src.open_range(0, len(data))
        buf = memoryview(bytearray(MiB))
        start = trio.current_time()
        with trio.move_on_after(0.3) as scope:
            while await stream.read_into(buf):
                pass
        assert scope.cancelled_caught  # 2 MiB/s: 4 MiB cannot be done in 0.3 s
        assert trio.current_time() - start < 1.5
        await stream.finish(drained=False)
    finally:
        with trio.fail_after(5):
            await src.aclose()


async def test_file_replaced_during_download_is_exit_8(sftp_server: SftpServer) -> None:
    name = _name("changed")
    sftp_server.add_file(name, b"a" * 1000)
    src = SftpSource(sftp_server.url(name), _opts())
    try:
        await src.probe()
        first = await src.open_range(0, 500)  # holds the probe's connection
        sftp_server.add_file(name, b"b" * 2000)
        with pytest.raises(errors.CannotResumeError):
            await src.open_range(500, 1000)  # a new connection stats the new file
        await first.finish(drained=False)
    finally:
        await src.aclose()


def test_map_error_defaults() -> None:
    assert isinstance(map_error(ConnectionResetError("x"), "u"), errors.NetworkError)
    assert isinstance(map_error(TimeoutError(), "u"), errors.TimeoutError_)
    import socket

    assert map_error(socket.gaierror(-2, "no"), "u").exit_code == errors.ExitCode.NAME_RESOLVE_ERROR


async def test_a_read_answer_longer_than_asked_is_refused(sftp_server: SftpServer) -> None:
    """A server whose READ answers carry extra bytes would shift every later byte of the file:
    the stream refuses it (a protocol error) instead of delivering misplaced bytes."""
    data = os.urandom(3 * MiB + 1000)
    name = "overlong/" + _name("long")
    sftp_server.add_file(name, data)
    src = SftpSource(sftp_server.url(name), _opts())
    try:
        with trio.fail_after(10):
            probe = await src.probe()
            assert probe.total_length == len(data)
            if probe.stream is not None:
                await probe.stream.finish(drained=False)
            stream = await src.open_range(0, len(data))
            buf = memoryview(bytearray(MiB))
            got = bytearray()

            async def read_all() -> None:
                while len(got) < len(data):
                    n = await stream.read_into(buf)
                    assert n, "ended early"
                    got.extend(buf[:n])
                    assert bytes(got) == data[: len(got)], "misplaced bytes delivered"

            try:
                with pytest.raises(errors.RemoteProtocolError, match="bytes for a"):
                    await read_all()
            finally:
                await stream.finish(drained=False)
    finally:
        await src.aclose()
