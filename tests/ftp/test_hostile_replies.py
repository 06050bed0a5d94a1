"""What a lying or hostile FTP server says never passes for truth: a transfer the server
reports aborted is not a complete file, clear text slipped in after ``AUTH TLS`` is refused,
a malformed ``SIZE`` is a protocol error, and a reply's control characters never reach the
console raw (in-process scripted servers on 127.0.0.1, port 0)."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.cli_util import run_cli
from tests.servers.nginx import make_test_pki
from trioaria.base.errors import FtpProtocolError, NetworkError, NotFoundError
from trioaria.cli.option_table import OPTIONS
from trioaria.ftp.proto import Reply
from trioaria.ftp.source import FtpSource

DATA = bytes(range(256)) * 4096  # 1 MiB


class Opts:
    def __init__(self, **over: Any) -> None:
        self._v = {n: s.default for n, s in OPTIONS.items()}
        self._v.update({"timeout": 5, "connect-timeout": 5, "ftp-pasv": True,
                        "ftp-reuse-connection": False, "no-netrc": True, "ftp-type": "binary"})  # fmt: skip
        self._v.update(over)

    def get(self, name: str) -> Any:
        return self._v.get(name)


@dataclass
class Script:
    size_reply: bytes = b"502 no SIZE\r\n"
    cut_after: int | None = None  # data bytes sent before the server aborts the transfer
    cuts: int = 1_000  # how many transfers are cut that way (later ones are whole)
    replies: dict[str, bytes] = field(default_factory=dict)


async def _lines(stream: Any) -> AsyncIterator[str]:
    buf = b""
    while True:
        while b"\r\n" not in buf:
            try:
                chunk = await stream.receive_some(4096)
            except trio.BrokenResourceError:
                return
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        yield line.decode()


async def _serve(sc: Script, stream: trio.SocketStream) -> None:
    await stream.send_all(b"220 fake\r\n")
    listener: trio.SocketListener | None = None
    simple = {"USER": b"331 pass\r\n", "PASS": b"230 in\r\n", "CWD": b"250 ok\r\n",
              "PWD": b'257 "/" here\r\n', "MDTM": b"213 20200101000000\r\n"}  # fmt: skip
    async for cmd in _lines(stream):
        verb = cmd.partition(" ")[0]
        reply = sc.replies.get(verb) or simple.get(verb, b"200 ok\r\n")
        if verb == "SIZE" and verb not in sc.replies:
            reply = sc.size_reply
        elif verb == "EPSV" and verb not in sc.replies:
            listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
            reply = f"229 ok (|||{listener.socket.getsockname()[1]}|)\r\n".encode()
        elif verb == "RETR" and verb not in sc.replies:
            assert listener is not None
            data = await listener.accept()
            await listener.aclose()
            await stream.send_all(b"150 here it comes\r\n")
            cut = sc.cut_after is not None and sc.cuts > 0
            sc.cuts -= cut
            await data.send_all(DATA[: sc.cut_after] if cut else DATA)
            await data.aclose()
            reply = b"426 transfer aborted\r\n" if cut else b"226 done\r\n"
        elif verb == "QUIT":
            reply = b"221 bye\r\n"
        try:
            await stream.send_all(reply)
        except trio.BrokenResourceError:
            return


async def _start(nursery: trio.Nursery, sc: Script) -> int:
    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, functools.partial(_serve, sc), 0, host="127.0.0.1")
    )
    return int(listeners[0].socket.getsockname()[1])


async def _read_all(src: FtpSource) -> bytes:
    probe = await src.probe()
    assert probe.total_length is None and probe.stream is not None
    buf = memoryview(bytearray(65536))
    got = bytearray()
    while n := await probe.stream.read_into(buf):
        got += buf[:n]
    await probe.stream.finish(drained=True)
    return bytes(got)


async def test_a_whole_transfer_of_unknown_length_ends_with_226(nursery: trio.Nursery) -> None:
    port = await _start(nursery, Script())
    with trio.fail_after(5):
        assert await _read_all(FtpSource(f"ftp://127.0.0.1:{port}/f.bin", Opts())) == DATA


async def test_a_transfer_the_server_reports_aborted_is_not_complete(
    nursery: trio.Nursery,
) -> None:
    """No SIZE: only the final reply (426 instead of 226) tells that the data was cut."""
    port = await _start(nursery, Script(cut_after=5000))
    with trio.fail_after(5), pytest.raises(NetworkError, match="426"):
        await _read_all(FtpSource(f"ftp://127.0.0.1:{port}/f.bin", Opts()))


async def test_the_cli_does_not_report_an_aborted_transfer_as_done(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    port = await _start(nursery, Script(cut_after=5000))
    res = await run_cli(
        "--max-tries=1", "-d", tmp_path / "out", f"ftp://127.0.0.1:{port}/f.bin",
        home=tmp_path, timeout=20,
    )  # fmt: skip
    assert res.returncode != 0, res.stdout[-500:]


async def test_an_aborted_transfer_is_tried_again_from_byte_0(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """No length known: a cut transfer starts over from byte 0 within --max-tries, as aria2
    tries the URI again."""
    from trioaria.base.stats import DownloadStatus
    from trioaria.cli.options import Options
    from trioaria.engine.group import RequestGroup

    port = await _start(nursery, Script(cut_after=5000, cuts=1))
    opts = Options.defaults().with_overrides(
        {"dir": str(tmp_path), "max-tries": "3", "retry-wait": "0"}
    )
    group = RequestGroup([f"ftp://127.0.0.1:{port}/f.bin"], opts)
    with trio.fail_after(10):
        await group.run()
    assert group.state is DownloadStatus.COMPLETE, group.error
    assert (tmp_path / "f.bin").read_bytes() == DATA


async def test_a_size_reply_with_a_non_ascii_digit_is_a_protocol_error(
    nursery: trio.Nursery,
) -> None:
    """'²'.isdigit() is true, int('²') fails: still a malformed reply (exit 21), not a crash."""
    port = await _start(nursery, Script(size_reply="213 1²\r\n".encode()))
    with trio.fail_after(5), pytest.raises(FtpProtocolError, match="SIZE"):
        await FtpSource(f"ftp://127.0.0.1:{port}/f.bin", Opts()).probe()


async def test_a_replys_terminal_escapes_are_shown_escaped(nursery: trio.Nursery) -> None:
    evil = b"550 \x1b]0;pwned\x07\x1b[2J\x1b[1;32mNOTICE\x1b[0m Download complete\r\n"
    port = await _start(nursery, Script(replies={"RETR": evil}))
    with trio.fail_after(5), pytest.raises(NotFoundError) as info:
        await FtpSource(f"ftp://127.0.0.1:{port}/f.bin", Opts()).probe()
    text = str(info.value)
    assert "\\x1b]0;pwned" in text
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text), repr(text)


def test_a_long_reply_line_is_shown_capped() -> None:
    assert len(str(Reply(550, ("x" * 5000,)))) < 300


async def test_clear_text_after_the_auth_tls_reply_is_refused(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """A man in the middle appends a reply of its own after the 234: it would be read as
    the TLS-protected answer to USER (STARTTLS reply injection); the session is refused."""
    pki = make_test_pki(tmp_path / "pki")
    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sctx.load_cert_chain(pki["server_cert"], pki["server_key"])
    seen: list[str] = []

    async def handler(tcp: trio.SocketStream) -> None:
        await tcp.send_all(b"220 hi\r\n")
        async for cmd in _lines(tcp):
            if cmd == "AUTH TLS":
                await tcp.send_all(b"234 go ahead\r\n331 injected in clear text\r\n")
                break
        tls = trio.SSLStream(tcp, sctx, server_side=True)
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError:
            return
        async for cmd in _lines(tls):
            seen.append(cmd)
            if not cmd.startswith("USER"):  # USER's answer was the injected 331
                await tls.send_all(b"230 in\r\n" if cmd.startswith("PASS") else b"200 ok\r\n")

    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1")
    )  # fmt: skip
    port = listeners[0].socket.getsockname()[1]
    src = FtpSource(f"ftpes://127.0.0.1:{port}/f.bin", Opts(**{"ca-certificate": str(pki["ca"])}))
    with trio.fail_after(5), pytest.raises(FtpProtocolError, match="AUTH TLS"):
        await src.probe()
    assert not any(s.startswith("PASS") for s in seen), seen
