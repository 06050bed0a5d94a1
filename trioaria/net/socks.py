"""SOCKS5 (RFC 1928, user/password per RFC 1929) and SOCKS4/4a client handshakes (pure).

Theory of operation
-------------------
:class:`SocksHandshake` is a sans-IO client for the ``CONNECT`` command.  The driver sends
:meth:`~SocksHandshake.data_to_send`, then reads exactly :meth:`~SocksHandshake.wanted`
bytes and feeds them to :meth:`~SocksHandshake.receive_data`, until :attr:`~SocksHandshake.done`.
Every reply has a length known from its first bytes, so the driver never reads a byte of the
tunnel itself (an FTP greeting or an SSH banner may follow the last reply at once).

SOCKS5 (RFC 1928 §3-§6): the greeting offers "no authentication" (``X'00'``) and, with
credentials, "username/password" (``X'02'``); the server picks one, or ``X'FF'`` ("NO
ACCEPTABLE METHODS").  RFC 1929 §2: ``VER=1 ULEN UNAME PLEN PASSWD``; "A STATUS field of
X'00' indicates success.  If the server returns a 'failure' (STATUS value other than X'00')
status, it MUST close the connection."  The request carries an IPv4 (``ATYP=1``), a domain
name (``ATYP=3``; ``socks5h`` and names the caller did not resolve) or an IPv6 address
(``ATYP=4``); the reply's ``REP`` is 0 on success, else one of :data:`SOCKS5_REPLIES`.

SOCKS4 sends an IPv4 address; SOCKS4a (Ying-Da Lee's extension) sends ``0.0.0.1`` followed by
the user id and the host name, for the proxy to resolve.  The reply is 8 bytes; ``CD=90``
means granted.
"""

from __future__ import annotations

import enum
import ipaddress
import struct

from .proxy_proto import ProxyError

__all__ = ["SOCKS5_REPLIES", "SocksError", "SocksHandshake"]

#: RFC 1928 §6 reply codes.
SOCKS5_REPLIES: dict[int, str] = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}
_SOCKS4_REPLIES = {
    91: "request rejected or failed",
    92: "rejected: the SOCKS server cannot reach the client's identd",
    93: "rejected: identd reports a different user id",
}


class SocksError(ProxyError):
    """The SOCKS server refused (or broke) the handshake: exit 1, as a connection that could
    not be established (aria2 has no SOCKS)."""


class _State(enum.Enum):
    METHOD = enum.auto()  # waiting for the SOCKS5 method selection
    AUTH = enum.auto()  # waiting for the RFC 1929 status
    REPLY_HEAD = enum.auto()  # waiting for VER REP RSV ATYP + first address byte
    REPLY_REST = enum.auto()  # the rest of the bound address and port
    SOCKS4_REPLY = enum.auto()
    DONE = enum.auto()


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class SocksHandshake:
    """One SOCKS ``CONNECT`` handshake, client side.

    Args:
        scheme: ``socks5``, ``socks5h``, ``socks4`` or ``socks4a``.
        host: the destination: an IP literal, or a name (sent to the proxy to resolve:
            ``socks5h``/``socks4a``, and ``socks5`` when the caller did not resolve it).
        port: the destination port.
        user, password: credentials; SOCKS5 then offers RFC 1929, SOCKS4 sends *user* as
            the user id.
        label: the proxy, for messages.

    Raises:
        SocksError: a destination SOCKS4 cannot express (a name, or IPv6), or credentials
            longer than 255 bytes.
    """

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        *,
        user: str | None = None,
        password: str | None = None,
        label: str = "the SOCKS proxy",
    ) -> None:
        self._label = label
        self._user = user
        self._password = password
        self._host = host.strip("[]")
        self._port = port
        self._buffer = bytearray()
        self._rest = 0
        self.target = f"{host}:{port}"
        if scheme in ("socks4", "socks4a"):
            self._version = 4
            self._out = self._socks4_request(scheme)
            self._state = _State.SOCKS4_REPLY
        elif scheme in ("socks5", "socks5h"):
            self._version = 5
            methods = b"\x00\x02" if user is not None else b"\x00"
            self._out = bytes([5, len(methods)]) + methods
            self._state = _State.METHOD
        else:
            raise SocksError(f"not a SOCKS scheme: {scheme}", retryable=False)

    # -- building requests ----------------------------------------------------------------

    def _socks4_request(self, scheme: str) -> bytes:
        address = _literal(self._host)
        user_id = (self._user or "").encode()
        if b"\0" in user_id:
            raise SocksError("a SOCKS4 user id cannot contain NUL", retryable=False)
        head = struct.pack("!BBH", 4, 1, self._port)
        if isinstance(address, ipaddress.IPv4Address):
            return head + address.packed + user_id + b"\0"
        if address is not None or scheme == "socks4":
            what = "an IPv6 address" if address is not None else "a host name"
            raise SocksError(
                f"{self._label} speaks SOCKS4, which cannot connect to {what} ({self._host});"
                " use socks4a:// or socks5h://",
                retryable=False,
            )
        name = self._host.encode("idna")
        return head + b"\0\0\0\1" + user_id + b"\0" + name + b"\0"

    def _socks5_request(self) -> bytes:
        address = _literal(self._host)
        if isinstance(address, ipaddress.IPv4Address):
            dest = b"\x01" + address.packed
        elif isinstance(address, ipaddress.IPv6Address):
            dest = b"\x04" + address.packed
        else:
            name = self._host.encode("idna")
            if not 0 < len(name) < 256:
                raise SocksError(f"host name too long for SOCKS5: {self._host}", retryable=False)
            dest = b"\x03" + bytes([len(name)]) + name
        return b"\x05\x01\x00" + dest + struct.pack("!H", self._port)

    def _auth_request(self) -> bytes:
        user = (self._user or "").encode()
        password = (self._password or "").encode()
        if len(user) > 255 or len(password) > 255:
            raise SocksError(
                "SOCKS5 user name and password are limited to 255 bytes", retryable=False
            )
        return bytes([1, len(user)]) + user + bytes([len(password)]) + password

    # -- the sans-IO interface --------------------------------------------------------------

    @property
    def done(self) -> bool:
        """The tunnel is open."""
        return self._state is _State.DONE

    def data_to_send(self) -> bytes:
        """Bytes to send to the proxy now (empty when nothing is due)."""
        out, self._out = self._out, b""
        return out

    def wanted(self) -> int:
        """How many bytes to read next (exactly; 0 when done)."""
        need = {
            _State.METHOD: 2,
            _State.AUTH: 2,
            _State.REPLY_HEAD: 5,
            _State.REPLY_REST: self._rest,
            _State.SOCKS4_REPLY: 8,
            _State.DONE: 0,
        }[self._state]
        return max(0, need - len(self._buffer))

    def _fail(self, reason: str, *, retryable: bool = True) -> SocksError:
        return SocksError(
            f"SOCKS proxy {self._label} failed to connect to {self.target}: {reason}",
            retryable=retryable,
        )

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the proxy (at most :meth:`wanted`); ``b""`` means EOF.

        Raises:
            SocksError: the proxy refused, spoke another protocol or closed early.
        """
        if not data:
            raise self._fail("the proxy closed the connection during the handshake")
        if len(data) > self.wanted():
            raise ValueError("more bytes than wanted() were fed")
        self._buffer += data
        while self._state is not _State.DONE and self.wanted() == 0:
            self._step()

    def _step(self) -> None:
        msg, self._buffer = bytes(self._buffer), bytearray()
        state = self._state
        if state is _State.METHOD:
            if msg[0] != 5:
                raise self._fail("the proxy does not speak SOCKS5")
            if msg[1] == 0:
                self._out += self._socks5_request()
                self._state = _State.REPLY_HEAD
            elif msg[1] == 2 and self._user is not None:
                self._out += self._auth_request()
                self._state = _State.AUTH
            elif msg[1] == 0xFF:
                need = "a user name and password" if self._user is None else "another method"
                raise self._fail(
                    f"no acceptable authentication method (the proxy wants {need})",
                    retryable=False,
                )
            else:
                raise self._fail(
                    f"the proxy chose an authentication method we did not offer ({msg[1]})"
                )
        elif state is _State.AUTH:
            if msg[1] != 0:
                raise self._fail("user name or password rejected (RFC 1929)", retryable=False)
            self._out += self._socks5_request()
            self._state = _State.REPLY_HEAD
        elif state is _State.REPLY_HEAD:
            if msg[0] != 5:
                raise self._fail("malformed SOCKS5 reply")
            if msg[1] != 0:
                reason = SOCKS5_REPLIES.get(msg[1], f"reply code {msg[1]}")
                raise self._fail(reason)
            atyp = msg[3]
            sizes = {1: 4, 4: 16, 3: msg[4] + 1}
            if atyp not in sizes:
                raise self._fail(f"malformed SOCKS5 reply (address type {atyp})")
            self._rest = sizes[atyp] - 1 + 2  # one address byte is in already; + port
            self._state = _State.REPLY_REST
        elif state is _State.REPLY_REST:
            self._state = _State.DONE
        elif state is _State.SOCKS4_REPLY:
            if msg[0] != 0:
                raise self._fail("the proxy does not speak SOCKS4")
            if msg[1] != 90:
                raise self._fail(_SOCKS4_REPLIES.get(msg[1], f"reply code {msg[1]}"))
            self._state = _State.DONE
