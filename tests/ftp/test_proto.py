"""Tests for the sans-IO FTP control core: replies fed whole / byte by byte / with trailing data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.errors import (
    ExitCode,
    FtpProtocolError,
    LocalProtocolError,
    NotFoundError,
)
from trioaria.ftp.proto import (
    Command,
    FtpControl,
    Reply,
    ReplyParser,
    State,
    check_reply,
    format_eprt,
    format_port,
    parse_epsv,
    parse_ftp_url,
    parse_mdtm,
    parse_pasv,
    parse_pwd,
    parse_size,
)

# (raw bytes, expected replies)
CASES: list[tuple[bytes, list[Reply]]] = [
    (b"220 Welcome\r\n", [Reply(220, ("Welcome",))]),
    (b"220 bare LF\n", [Reply(220, ("bare LF",))]),
    (b"200\r\n", [Reply(200, ("",))]),
    (
        b"211-Features:\r\n EPSV\r\n REST STREAM\r\n211 End\r\n",
        [Reply(211, ("Features:", " EPSV", " REST STREAM", "End"))],
    ),
    # a line inside a multi-line reply may begin with other digits (RFC 959 §4.2)
    (
        b"230-Hello\r\n123 not the end\r\n230-still\r\n230 done\r\n",
        [Reply(230, ("Hello", "123 not the end", "230-still", "done"))],
    ),
    (
        b"150 Opening\r\n226 Transfer complete.\r\n",
        [Reply(150, ("Opening",)), Reply(226, ("Transfer complete.",))],
    ),
    (b'257 "/a ""b"" c" is current\r\n', [Reply(257, ('"/a ""b"" c" is current',))]),
]


def _feed(chunks: list[bytes]) -> list[Reply]:
    parser = ReplyParser()
    out: list[Reply] = []
    for chunk in chunks:
        parser.receive_data(chunk)
        while (r := parser.next_event()) is not None:
            out.append(r)
    return out


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_replies_whole_bytewise_and_with_trailing_data(raw: bytes, expected: list[Reply]) -> None:
    assert _feed([raw]) == expected
    assert _feed([raw[i : i + 1] for i in range(len(raw))]) == expected
    parser = ReplyParser()
    parser.receive_data(raw + b"220-trail")
    got = []
    while (r := parser.next_event()) is not None:
        got.append(r)
    assert got == expected
    assert parser.buffered == len(b"220-trail")


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTP/1.1 200 OK\r\n",
        b"hello\r\n",
        b"22 short\r\n",
        b"2200 four digits\r\n",
        b"\r\n",
        b"620 x\r\n",
    ],
)
def test_garbage_is_ftp_protocol_error(garbage: bytes) -> None:
    with pytest.raises(FtpProtocolError) as info:
        _feed([garbage])
    assert info.value.exit_code == ExitCode.FTP_PROTOCOL_ERROR


def test_limits() -> None:
    with pytest.raises(FtpProtocolError):
        _feed([b"220 " + b"x" * 10000])
    with pytest.raises(FtpProtocolError):
        _feed([b"211-a\r\n" + b" line\r\n" * 1001])
    parser = ReplyParser()
    parser.receive_data(b"220 half")
    parser.receive_data(b"")
    with pytest.raises(FtpProtocolError):
        parser.next_event()


@given(
    code=st.integers(100, 599),
    lines=st.lists(
        st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40),
        min_size=1,
        max_size=6,
    ),
    cut=st.integers(1, 50),
)
def test_roundtrip_property(code: int, lines: list[str], cut: int) -> None:
    # a reply rendered the RFC 959 way parses back to its lines, however it is chunked
    body = [f"{code}-{t}" for t in lines[:-1]]
    # inner lines that would look like the end line are indented, as servers do
    body = [body[0], *(" " + b[4:] for b in body[1:])] if body else []
    raw = ("\r\n".join([*body, f"{code} {lines[-1]}"]) + "\r\n").encode()
    chunks = [raw[i : i + cut] for i in range(0, len(raw), cut)]
    (reply,) = _feed(chunks)
    assert reply.code == code
    assert reply.lines[-1] == lines[-1]
    assert len(reply.lines) == len(lines)


@given(st.binary(max_size=300))
def test_parser_never_crashes_on_noise(data: bytes) -> None:
    parser = ReplyParser()
    try:
        parser.receive_data(data)
        while parser.next_event() is not None:
            pass
    except FtpProtocolError:
        pass


def test_state_table_one_command_at_a_time() -> None:
    ctl = FtpControl()
    assert ctl.state is State.GREETING
    with pytest.raises(LocalProtocolError):
        ctl.send(Command("USER", "x"))
    ctl.receive_data(b"220 hi\r\n")
    assert ctl.next_event() == Reply(220, ("hi",))
    assert ctl.state is State.IDLE
    assert ctl.send(Command("RETR", "f")) == b"RETR f\r\n"
    with pytest.raises(LocalProtocolError):
        ctl.send(Command("NOOP"))
    ctl.receive_data(b"150 go\r\n")
    assert ctl.next_event() is not None and ctl.state is State.TRANSFER
    ctl.receive_data(b"226 ok\r\n")
    assert ctl.next_event() is not None and ctl.state is State.IDLE
    ctl.receive_data(b"226 stray\r\n")
    with pytest.raises(FtpProtocolError):
        ctl.next_event()


def test_sync_drops_strays_up_to_the_noop_reply() -> None:
    ctl = FtpControl()
    ctl.receive_data(b"220 hi\r\n")
    ctl.next_event()
    ctl.send(Command("RETR", "f"))
    ctl.receive_data(b"150 go\r\n426 aborted\r\n")
    ctl.next_event()
    ctl.next_event()
    assert ctl.send_sync() == b"NOOP\r\n"
    ctl.receive_data(b"226 late\r\n200 NOOP ok\r\n")
    assert ctl.next_event() == Reply(226, ("late",)) and ctl.state is State.SYNC
    assert ctl.next_event() == Reply(200, ("NOOP ok",)) and ctl.state is State.IDLE


def test_421_closes() -> None:
    ctl = FtpControl()
    ctl.receive_data(b"421 Too many users\r\n")
    assert ctl.next_event() is not None and ctl.state is State.CLOSED


def test_command_injection_refused() -> None:
    with pytest.raises(LocalProtocolError):
        Command("RETR", "a\r\nDELE b").to_bytes()
    with pytest.raises(LocalProtocolError):
        Command("retr").to_bytes()


@pytest.mark.parametrize(
    ("verb", "code", "exc", "exit_code", "retryable"),
    [
        ("RETR", 550, NotFoundError, ExitCode.RESOURCE_NOT_FOUND, False),
        ("CWD", 550, NotFoundError, ExitCode.RESOURCE_NOT_FOUND, False),
        ("PASS", 530, FtpProtocolError, ExitCode.FTP_PROTOCOL_ERROR, False),
        ("RETR", 425, FtpProtocolError, ExitCode.FTP_PROTOCOL_ERROR, True),
        ("TYPE", 504, FtpProtocolError, ExitCode.FTP_PROTOCOL_ERROR, False),
    ],
)
def test_check_reply_errors(verb, code, exc, exit_code, retryable) -> None:
    with pytest.raises(exc) as info:
        check_reply(verb, Reply(code, ("no",)))
    assert info.value.exit_code == exit_code
    assert info.value.retryable is retryable
    assert check_reply("RETR", Reply(150, ("ok",))).code == 150


def test_reply_helpers() -> None:
    assert parse_epsv(Reply(229, ("Entering Extended Passive Mode (|||6446|)",))) == 6446
    assert parse_epsv(Reply(229, ("ok (!!!1234!)",))) == 1234
    with pytest.raises(FtpProtocolError):
        parse_epsv(Reply(229, ("ok (|||0|)",)))
    assert parse_pasv(Reply(227, ("Entering Passive Mode (10,1,2,3,4,1).",))) == ("10.1.2.3", 1025)
    with pytest.raises(FtpProtocolError):
        parse_pasv(Reply(227, ("(300,1,2,3,4,1)",)))
    assert parse_size(Reply(213, ("12345",))) == 12345
    with pytest.raises(FtpProtocolError):
        parse_size(Reply(213, ("12x",)))
    assert parse_mdtm(Reply(213, ("20170714024000",))) == 1500000000.0
    assert parse_mdtm(Reply(213, ("20170714024000.5",))) == 1500000000.5
    assert parse_mdtm(Reply(213, ("20171314021640",))) is None
    assert parse_mdtm(Reply(213, ("yesterday",))) is None
    assert parse_pwd(Reply(257, ('"/a ""b"" c" is current',))) == '/a "b" c'
    with pytest.raises(FtpProtocolError):
        parse_pwd(Reply(257, ("no quotes",)))
    assert format_port("127.0.0.1", 1025) == "127,0,0,1,4,1"
    assert format_eprt("127.0.0.1", 5282) == "|1|127.0.0.1|5282|"
    assert format_eprt("::1", 5282) == "|2|::1|5282|"


def test_urls() -> None:
    u = parse_ftp_url("ftp://u%40x:p%3As@host:2121/a/b%20c/f.iso;type=a")
    assert (u.scheme, u.host, u.port, u.user, u.password) == ("ftp", "host", 2121, "u@x", "p:s")
    assert u.dirs == ("a", "b c") and u.filename == "f.iso" and u.type_code == "a"
    assert u.path == "a/b c/f.iso" and not u.tls
    assert parse_ftp_url("ftps://h/f").port == 990 and parse_ftp_url("ftps://h/f").implicit_tls
    e = parse_ftp_url("ftpes://[::1]/f")
    assert e.port == 21 and e.tls and not e.implicit_tls and e.host == "::1"
    for bad in ("ftp://h/", "ftp:///f", "http://h/f", "ftp://h/a%0d%0aDELE/f", "ftp://h:99999/f"):
        with pytest.raises(LocalProtocolError):
            parse_ftp_url(bad)
