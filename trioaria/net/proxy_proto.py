"""HTTP ``CONNECT`` tunnels through a proxy: the request and the reply (pure, sans-IO).

Theory of operation
-------------------
RFC 9110 §9.3.6: the client sends ``CONNECT host:port HTTP/1.1`` with the authority form of
the target (RFC 9112 §3.2.3; IPv6 literals in brackets), a ``Host`` header with the same
value, and ``Proxy-Authorization`` when it has credentials (§11.7.2).  "Any 2xx (Successful)
response indicates that the sender (and all inbound proxies) will switch to tunnel mode
immediately after the response header section"; anything else means no tunnel.

:class:`ConnectReply` parses the reply head.  It never consumes a byte past the blank line
that ends the head, because the tunnel's first bytes (an FTP greeting, an SSH banner) may
follow in the same packet: :meth:`ConnectReply.receive_data` returns how many bytes of the
input it took, and :meth:`ConnectReply.wanted` tells the driver how many more it may read
without over-reading.  A reply that is not HTTP at all, or a head longer than
:data:`MAX_HEAD`, is a :class:`~trioaria.base.errors.ProxyError`.

:func:`connect_error` turns a refusal into aria2's error, "Proxy connection failed." with exit
1 (``AbstractProxyResponseCommand.cc``; aria2c 1.36 measured: a ``CONNECT`` answered 407 ends
with exit 1).  A 407 names the cause and is not retried: no retry can cure wrong credentials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..base.errors import ExitCode, NetworkError

__all__ = [
    "MAX_HEAD",
    "ConnectReply",
    "ProxyError",
    "ProxyStatus",
    "authority",
    "connect_error",
    "connect_request",
]

#: Longest reply head accepted from a proxy.
MAX_HEAD = 16 * 1024

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: ([^\r\n]*))?")


class ProxyError(NetworkError):
    """The proxy refused the tunnel or spoke something other than its protocol.

    Attributes:
        status: the HTTP status of a refused ``CONNECT`` (``None`` for SOCKS or garbage).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        exit_code: ExitCode = ExitCode.UNKNOWN_ERROR,
        retryable: bool = True,
    ) -> None:
        super().__init__(message, exit_code=exit_code, retryable=retryable)
        self.status = status


@dataclass(frozen=True, slots=True)
class ProxyStatus:
    """The status line of a ``CONNECT`` reply."""

    status: int
    reason: str


def authority(host: str, port: int) -> str:
    """``host:port`` in authority form; IPv6 literals bracketed (RFC 3986 §3.2.2)."""
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect_request(
    host: str, port: int, *, authorization: str | None = None, user_agent: str | None = None
) -> bytes:
    """The ``CONNECT`` request head for *host*:*port*.

    Args:
        host, port: the origin the tunnel leads to.
        authorization: a ``Proxy-Authorization`` value (``Basic ...``) or ``None``.
        user_agent: a ``User-Agent`` to send, if any.
    """
    target = authority(host, port)
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if user_agent:
        lines.append(f"User-Agent: {user_agent}")
    if authorization:
        lines.append(f"Proxy-Authorization: {authorization}")
    for line in lines:
        if "\r" in line or "\n" in line:
            raise ValueError("CR or LF in a CONNECT request line")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class ConnectReply:
    """Incremental parser of one ``CONNECT`` reply head (never reads past it)."""

    def __init__(self, proxy_label: str = "the proxy") -> None:
        self._label = proxy_label
        self._head = bytearray()
        self._result: ProxyStatus | None = None

    @property
    def result(self) -> ProxyStatus | None:
        """The parsed status once the whole head is in, else ``None``."""
        return self._result

    def wanted(self) -> int:
        """How many bytes may be read now without reading past the head (at least 1
        while the head is incomplete, 0 when it is complete): the distance to a possible
        ``\\r\\n\\r\\n``."""
        if self._result is not None:
            return 0
        head = self._head
        for n in (3, 2, 1):
            if head.endswith(b"\r\n\r\n"[:n]):
                return 4 - n
        return 4

    def receive_data(self, data: bytes | bytearray | memoryview) -> int:
        """Feed bytes; return how many were consumed (the rest belong to the tunnel).

        Raises:
            ProxyError: the reply is not an HTTP response head, is too long, or the
                proxy closed the connection (``data`` empty) before the head ended.
        """
        if self._result is not None:
            return 0
        data = bytes(data)
        if not data:
            raise ProxyError(
                f"{self._label} closed the connection before answering CONNECT"
                + (" completely" if self._head else "")
            )
        start = max(0, len(self._head) - 3)
        self._head += data
        end = self._head.find(b"\r\n\r\n", start)
        if not self._head.startswith(b"HTTP/"[: len(self._head)]):
            raise ProxyError(f"{self._label} answered CONNECT with something that is not HTTP")
        if end < 0:
            if len(self._head) > MAX_HEAD:
                raise ProxyError(f"{self._label} sent a CONNECT reply head over {MAX_HEAD} bytes")
            return len(data)
        used = len(data) - (len(self._head) - (end + 4))
        del self._head[end + 4 :]
        status_line = bytes(self._head).split(b"\r\n", 1)[0]
        match = _STATUS_LINE.fullmatch(status_line)
        if match is None:
            raise ProxyError(f"{self._label} answered CONNECT with a malformed status line")
        reason = (match.group(2) or b"").decode("latin-1").strip()
        self._result = ProxyStatus(int(match.group(1)), reason)
        return used


def connect_error(status: ProxyStatus, proxy_label: str, target: str) -> ProxyError | None:
    """``None`` for a 2xx (the tunnel is open); else the error for the refusal."""
    if 200 <= status.status < 300:
        return None
    text = f"HTTP {status.status} {status.reason}".rstrip()
    if status.status == 407:
        return ProxyError(
            f"proxy authentication failed at {proxy_label} ({text}); check the proxy user and"
            " password",
            status=407,
            retryable=False,
        )
    return ProxyError(
        f"Proxy connection failed: {proxy_label} refused CONNECT {target} ({text})",
        status=status.status,
    )
