"""The sans-IO handshakes of a proxy tunnel, fed bytes: SOCKS5 (RFC 1928), its user/password
sub-negotiation (RFC 1929), SOCKS4/4a, and the HTTP ``CONNECT`` reply (RFC 9110 §9.3.6).
Each reply is fed whole, one byte at a time, and followed by tunnel bytes that must be left
alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.errors import ExitCode
from trioaria.net.proxy_proto import (
    MAX_HEAD,
    ConnectReply,
    ProxyError,
    ProxyStatus,
    connect_error,
    connect_request,
)
from trioaria.net.socks import SocksError, SocksHandshake


def run(hs: SocksHandshake, replies: bytes, *, bytewise: bool) -> list[bytes]:
    """Drive *hs* with the server's *replies*; return what the client sent, per step."""
    sent = [hs.data_to_send()]
    data = memoryview(replies)
    while not hs.done:
        n = hs.wanted()
        assert 0 < n <= len(data), "the handshake wants more than the server sent"
        take = 1 if bytewise else n
        hs.receive_data(data[:take])
        data = data[take:]
        out = hs.data_to_send()
        if out:
            sent.append(out)
    assert hs.wanted() == 0
    return sent


BOUND_V4 = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"
BOUND_NAME = b"\x05\x00\x00\x03\x09localhost\x00\x50"
BOUND_V6 = b"\x05\x00\x00\x04" + bytes(15) + b"\x01\x00\x50"

SOCKS_CASES = [
    # (scheme, host, port, user, password, server replies, expected client messages)
    (
        "socks5",
        "127.0.0.1",
        80,
        None,
        None,
        b"\x05\x00" + BOUND_V4,
        [b"\x05\x01\x00", b"\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50"],
    ),
    (
        "socks5h",
        "example.org",
        443,
        None,
        None,
        b"\x05\x00" + BOUND_NAME,
        [b"\x05\x01\x00", b"\x05\x01\x00\x03\x0bexample.org\x01\xbb"],
    ),
    (
        "socks5",
        "::1",
        21,
        None,
        None,
        b"\x05\x00" + BOUND_V6,
        [b"\x05\x01\x00", b"\x05\x01\x00\x04" + bytes(15) + b"\x01\x00\x15"],
    ),
    (
        "socks5",
        "[::1]",
        21,
        "u",
        "pw",
        b"\x05\x02\x01\x00" + BOUND_V4,
        [
            b"\x05\x02\x00\x02",
            b"\x01\x01u\x02pw",
            b"\x05\x01\x00\x04" + bytes(15) + b"\x01\x00\x15",
        ],
    ),
    (
        "socks5",
        "h",
        1,
        "u",
        "pw",
        b"\x05\x00" + BOUND_V4,  # server needs no auth after all
        [b"\x05\x02\x00\x02", b"\x05\x01\x00\x03\x01h\x00\x01"],
    ),
    (
        "socks4",
        "10.0.0.1",
        80,
        "me",
        None,
        b"\x00\x5a\x00\x00\x00\x00\x00\x00",
        [b"\x04\x01\x00\x50\x0a\x00\x00\x01me\x00"],
    ),
    (
        "socks4a",
        "example.org",
        80,
        None,
        None,
        b"\x00\x5a" + bytes(6),
        [b"\x04\x01\x00\x50\x00\x00\x00\x01\x00example.org\x00"],
    ),
    (
        "socks4a",
        "10.0.0.1",
        80,
        None,
        None,
        b"\x00\x5a" + bytes(6),  # literals stay literal
        [b"\x04\x01\x00\x50\x0a\x00\x00\x01\x00"],
    ),
]


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize(
    ("scheme", "host", "port", "user", "password", "replies", "expected"), SOCKS_CASES
)
def test_socks_handshake(
    scheme: str,
    host: str,
    port: int,
    user: str | None,
    password: str | None,
    replies: bytes,
    expected: list[bytes],
    bytewise: bool,
) -> None:
    hs = SocksHandshake(scheme, host, port, user=user, password=password)
    tunnel = b"220 FTP greeting\r\n"
    assert run(hs, replies + tunnel, bytewise=bytewise) == expected  # tunnel bytes untouched


REFUSALS = [
    # (scheme, user, replies, words in the message, retryable)
    ("socks5", None, b"\x05\xff", "wants a user name and password", False),
    ("socks5", "u", b"\x05\xff", "no acceptable authentication method", False),
    ("socks5", "u", b"\x05\x02\x01\x01", "rejected (RFC 1929)", False),
    ("socks5", None, b"\x05\x02", "did not offer", True),
    ("socks5", None, b"HTTP/1.1 400", "does not speak SOCKS5", True),
    ("socks5", None, b"\x05\x00\x05\x05\x00\x01\x00\x00", "connection refused", True),
    ("socks5", None, b"\x05\x00\x05\x02\x00\x01\x00\x00", "not allowed by ruleset", True),
    ("socks5", None, b"\x05\x00\x05\x00\x00\x07\x00", "address type 7", True),
    ("socks4", None, b"\x00\x5b" + bytes(6), "rejected or failed", True),
    ("socks4", None, b"HTTP/1.0", "does not speak SOCKS4", True),
]


@pytest.mark.parametrize(("scheme", "user", "replies", "words", "retryable"), REFUSALS)
def test_socks_refusals_are_clear_errors(
    scheme: str, user: str | None, replies: bytes, words: str, retryable: bool
) -> None:
    hs = SocksHandshake(scheme, "10.0.0.1", 80, user=user, password="x", label="socks://p:1")
    with pytest.raises(SocksError) as info:
        run(hs, replies + bytes(32), bytewise=False)
    assert words in str(info.value) and "socks://p:1" in str(info.value), info.value
    assert info.value.retryable is retryable
    assert info.value.exit_code == ExitCode.UNKNOWN_ERROR


def test_socks_eof_and_impossible_destinations() -> None:
    hs = SocksHandshake("socks5", "h", 1)
    hs.data_to_send()
    with pytest.raises(SocksError, match="closed the connection"):
        hs.receive_data(b"")
    with pytest.raises(SocksError, match="socks4a:// or socks5h://"):
        SocksHandshake("socks4", "example.org", 80)
    with pytest.raises(SocksError, match="IPv6"):
        SocksHandshake("socks4", "::1", 80)
    with pytest.raises(SocksError, match="255 bytes"):
        run(
            SocksHandshake("socks5", "h", 1, user="u" * 256, password=""),
            b"\x05\x02",
            bytewise=False,
        )


@given(st.binary(max_size=40))
def test_socks_any_reply_is_a_result_or_a_socks_error(replies: bytes) -> None:
    hs = SocksHandshake("socks5", "h", 1, user="u", password="p")
    hs.data_to_send()
    data = replies
    try:
        while not hs.done and data:
            n = min(hs.wanted(), len(data))
            hs.receive_data(data[:n])
            data = data[n:]
            hs.data_to_send()
    except SocksError:
        pass


# --- HTTP CONNECT ----------------------------------------------------------------------------


def test_connect_request() -> None:
    assert connect_request("::1", 443, authorization="Basic eA==") == (
        b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Authorization: Basic eA==\r\n\r\n"
    )
    assert connect_request("example.org", 21) == (
        b"CONNECT example.org:21 HTTP/1.1\r\nHost: example.org:21\r\n\r\n"
    )
    with pytest.raises(ValueError, match="CR or LF"):
        connect_request("h\r\nX: y", 1)


def feed_connect(data: bytes, *, bytewise: bool) -> tuple[ProxyStatus, bytes]:
    reply = ConnectReply("http://p:1")
    rest = memoryview(data)
    while reply.result is None:
        n = 1 if bytewise else min(reply.wanted(), len(rest))
        assert 0 < reply.wanted() <= 4
        used = reply.receive_data(rest[:n])
        rest = rest[used:]
    assert reply.wanted() == 0
    return reply.result, bytes(rest)


CONNECT_REPLIES = [
    (b"HTTP/1.1 200 Connection established\r\n\r\n", ProxyStatus(200, "Connection established")),
    (b"HTTP/1.0 200 OK\r\nProxy-agent: x\r\n\r\n", ProxyStatus(200, "OK")),
    (
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
        ProxyStatus(407, "Proxy Authentication Required"),
    ),
    (b"HTTP/1.1 403\r\n\r\n", ProxyStatus(403, "")),
]


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize(("data", "status"), CONNECT_REPLIES)
def test_connect_reply_never_reads_into_the_tunnel(
    data: bytes, status: ProxyStatus, bytewise: bool
) -> None:
    tunnel = b"SSH-2.0-OpenSSH\r\n\r\n"
    got, rest = feed_connect(data + tunnel, bytewise=bytewise)
    assert got == status
    assert rest == tunnel


def test_connect_reply_whole_buffer_returns_used_count() -> None:
    reply = ConnectReply()
    data = b"HTTP/1.1 200 OK\r\n\r\n220 hello\r\n"
    assert reply.receive_data(data) == len(data) - len(b"220 hello\r\n")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"SSH-2.0-x\r\n\r\n", "not HTTP"),
        (b"\x05\x00", "not HTTP"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/2 200\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * (MAX_HEAD // 6 + 1), "over"),
        (b"", "closed the connection before answering"),
    ],
)
def test_connect_reply_garbage(data: bytes, words: str) -> None:
    reply = ConnectReply("http://p:1")

    def feed() -> None:
        reply.receive_data(data)
        reply.receive_data(b"")

    with pytest.raises(ProxyError, match=words):
        feed()


def test_connect_error_mapping() -> None:
    assert connect_error(ProxyStatus(200, "OK"), "p", "h:1") is None
    auth = connect_error(ProxyStatus(407, "Proxy Authentication Required"), "p", "h:1")
    assert auth is not None and not auth.retryable and auth.status == 407
    assert auth.exit_code == ExitCode.UNKNOWN_ERROR  # aria2c 1.36: CONNECT refused -> exit 1
    assert "proxy authentication failed" in str(auth)
    other = connect_error(ProxyStatus(502, "Bad Gateway"), "p", "h:1")
    assert other is not None and other.retryable and "Proxy connection failed" in str(other)


@given(st.binary(max_size=200), st.binary(max_size=50))
def test_connect_reply_any_bytes_are_a_status_or_a_proxy_error(head: bytes, tail: bytes) -> None:
    """Whatever the proxy sends, the parser ends with a status or a ProxyError, and never
    takes a byte past the first blank line."""
    reply = ConnectReply()
    data = memoryview(head + tail)
    try:
        while reply.result is None and data:
            used = reply.receive_data(data[: reply.wanted()])
            data = data[used:]
    except ProxyError:
        return
    if reply.result is not None:
        taken = len(head) + len(tail) - len(data)
        assert (head + tail)[:taken].endswith(b"\r\n\r\n")
        assert (head + tail)[:taken].count(b"\r\n\r\n") == 1
