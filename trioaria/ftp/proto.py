"""FTP control channel, sans-IO (RFC 959, RFC 2428 EPSV/EPRT, RFC 3659 SIZE/MDTM/REST, RFC 4217).

Theory of operation
-------------------
:class:`FtpControl` is the whole control-channel protocol as a value: the driver feeds it the
bytes it received (:meth:`FtpControl.receive_data`), drains :class:`Reply` events
(:meth:`FtpControl.next_event`) and sends what :meth:`FtpControl.send` returns for a
:class:`Command`.  It never touches a socket.

Replies (RFC 959 §4.2): ``"123 text"`` is a one-line reply; ``"123-text"`` opens a multi-line
reply which ends at the first line that starts with the same three digits and a space::

    211-Features:
     EPSV
     REST STREAM
    211 End

The parser accepts CRLF or bare LF, caps line length and line count (a hostile server cannot
make it buffer without limit) and raises :class:`~trioaria.base.errors.FtpProtocolError` (aria2
exit 21) on anything that is not a reply.

The session is a small state table (:data:`TRANSITIONS`): a command may only be sent when the
channel is idle; ``RETR`` answered by a 1yz preliminary reply puts the channel in
``TRANSFER`` until the final 2yz/4yz/5yz reply.  :func:`check_reply` maps a reply that is not
the expected one to the error aria2 reports: 550 → exit 3 (RESOURCE_NOT_FOUND), anything else
→ exit 21; 4yz replies (transient, RFC 959 §4.2.1) may be retried, 5yz may not.

The helpers parse what the replies carry: :func:`parse_epsv` (RFC 2428 ``(|||port|)``),
:func:`parse_pasv` (``h1,h2,h3,h4,p1,p2``; the address is returned but the driver ignores it,
docs/decisions.md), :func:`parse_size`, :func:`parse_mdtm` (RFC 3659 ``YYYYMMDDHHMMSS[.s]`` UTC),
:func:`parse_pwd` (RFC 959 257 with doubled quotes), and build ``PORT``/``EPRT`` arguments.
:func:`parse_ftp_url` reads ``ftp://``, ``ftps://`` (implicit TLS, port 990) and ``ftpes://``
(explicit ``AUTH TLS``, port 21) URLs (RFC 1738 §3.2, ``;type=a|i``).
"""

from __future__ import annotations

import calendar
import enum
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..base.errors import FtpProtocolError, LocalProtocolError, NotFoundError

__all__ = [
    "DEFAULT_PORTS",
    "EXPECTED",
    "MAX_LINE",
    "MAX_LINES",
    "TRANSITIONS",
    "Command",
    "FtpControl",
    "FtpUrl",
    "Reply",
    "ReplyParser",
    "State",
    "check_reply",
    "format_eprt",
    "format_port",
    "parse_epsv",
    "parse_ftp_url",
    "parse_mdtm",
    "parse_pasv",
    "parse_pwd",
    "parse_size",
]

#: Longest reply line accepted (RFC 959 sets no limit; real servers stay far below).
MAX_LINE = 8192
#: Most lines in one multi-line reply (a FEAT or HELP listing is a few dozen).
MAX_LINES = 1000
#: Most characters of a reply's text shown in a message.
MAX_SHOWN = 200

_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")

#: Default ports: ``ftps`` is implicit TLS (RFC 4217 §1 history, IANA port 990).
DEFAULT_PORTS = {"ftp": 21, "ftpes": 21, "ftps": 990}


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete reply: its code and every text line (without the code prefix)."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The lines joined by newlines."""
        return "\n".join(self.lines)

    @property
    def preliminary(self) -> bool:
        """1yz: more replies follow for the same command (RFC 959 §4.2)."""
        return 100 <= self.code < 200

    def __str__(self) -> str:
        """The code and last line, printable: a server's text reaches messages and the
        console, so control characters (terminal escapes) are shown escaped, the line capped."""
        last = self.lines[-1] if self.lines else ""
        shown = _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", last[:MAX_SHOWN])
        return f"{self.code} {shown}{'...' if len(last) > MAX_SHOWN else ''}".strip()


@dataclass(frozen=True, slots=True)
class Command:
    """One command line (``verb`` upper case, optional argument)."""

    verb: str
    arg: str | None = None

    def to_bytes(self) -> bytes:
        """``VERB SP arg CRLF``.

        Raises:
            LocalProtocolError: the argument holds CR, LF or NUL (command injection), or
                the verb is not 3-4 letters.
        """
        if not re.fullmatch(r"[A-Z]{3,4}", self.verb):
            raise LocalProtocolError(f"bad FTP verb {self.verb!r}")
        if self.arg is None:
            return f"{self.verb}\r\n".encode()
        if any(c in self.arg for c in "\r\n\0"):
            raise LocalProtocolError(f"FTP argument with a line break: {self.arg!r}")
        # RFC 2640 §2.2: pathnames are UTF-8 on the wire.
        return f"{self.verb} {self.arg}\r\n".encode("utf-8", "surrogateescape")


_CODE_RE = re.compile(rb"([1-5][0-9][0-9])([ -]?)")


class ReplyParser:
    """Incremental reply parser: :meth:`receive_data`, then :meth:`next_event` until None."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pending: list[str] = []  # lines of an open multi-line reply
        self._code: int | None = None
        self._eof = False

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes; ``b""`` means the server closed the connection."""
        if not data:
            self._eof = True
            return
        self._buf += data
        if len(self._buf) > MAX_LINE and self._buf.find(b"\n", 0, MAX_LINE + 1) < 0:
            raise FtpProtocolError(f"FTP reply line longer than {MAX_LINE} bytes")

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete reply."""
        return len(self._buf)

    def next_event(self) -> Reply | None:
        """The next complete reply, or None if more bytes are needed.

        Raises:
            FtpProtocolError: a line that is not part of a reply, or limits exceeded.
        """
        while True:
            end = self._buf.find(b"\n")
            if end < 0:
                if self._eof and self._buf:
                    raise FtpProtocolError("connection closed inside an FTP reply")
                return None
            if end > MAX_LINE:
                raise FtpProtocolError(f"FTP reply line longer than {MAX_LINE} bytes")
            raw = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            reply = self._line(raw)
            if reply is not None:
                return reply

    def _line(self, raw: bytes) -> Reply | None:
        m = _CODE_RE.match(raw)
        text = raw.decode("utf-8", "replace")
        if self._code is None:
            if m is None or (len(raw) > 3 and m.group(2) == b""):
                raise FtpProtocolError(f"malformed FTP reply: {text[:80]!r}")
            code = int(m.group(1))
            if m.group(2) == b"-":
                self._code = code
                self._pending = [text[4:]]
                return None
            return Reply(code, (text[4:],))
        # Inside a multi-line reply: "code SP" ends it; any other line is text.
        if m is not None and int(m.group(1)) == self._code and raw[3:4] in (b" ", b""):
            code, lines = self._code, (*self._pending, text[4:])
            self._code, self._pending = None, []
            return Reply(code, lines)
        self._pending.append(text)
        if len(self._pending) > MAX_LINES:
            raise FtpProtocolError(f"FTP reply with more than {MAX_LINES} lines")
        return None


class State(enum.Enum):
    """Where the control channel is."""

    GREETING = "greeting"  # connected; the server's 220 has not arrived
    IDLE = "idle"  # a command may be sent
    WAITING = "waiting"  # a command was sent; its final reply has not arrived
    TRANSFER = "transfer"  # RETR got 1yz; the final reply follows the data
    SYNC = "sync"  # NOOP sent after an aborted transfer: replies up to its 200 are strays
    CLOSED = "closed"  # 421, QUIT answered, or EOF


#: (state, what happened) -> next state.  "prelim"/"final" are reply classes; "send" a command.
TRANSITIONS: dict[tuple[State, str], State] = {
    (State.GREETING, "prelim"): State.GREETING,  # 120 "service ready in nnn minutes"
    (State.GREETING, "final"): State.IDLE,
    (State.IDLE, "send"): State.WAITING,
    (State.WAITING, "prelim"): State.TRANSFER,
    (State.WAITING, "final"): State.IDLE,
    (State.TRANSFER, "prelim"): State.TRANSFER,
    (State.TRANSFER, "final"): State.IDLE,
    # ABOR and STAT may be sent while a transfer runs (RFC 959 §4.1.3)
    (State.TRANSFER, "send"): State.TRANSFER,
    (State.IDLE, "sync"): State.SYNC,
    (State.SYNC, "prelim"): State.SYNC,
    (State.SYNC, "final"): State.SYNC,  # until the NOOP's 200 (see FtpControl.next_event)
}

#: The replies that mean success, per command ("greeting" is the connection's first reply).
EXPECTED: dict[str, frozenset[int]] = {
    "greeting": frozenset({220}),
    "AUTH": frozenset({234}),
    "PBSZ": frozenset({200}),
    "PROT": frozenset({200}),
    "USER": frozenset({230, 331}),
    "PASS": frozenset({230, 202}),
    "TYPE": frozenset({200}),
    "PWD": frozenset({257}),
    "CWD": frozenset({250, 200}),
    "SIZE": frozenset({213}),
    "MDTM": frozenset({213}),
    "EPSV": frozenset({229}),
    "PASV": frozenset({227}),
    "PORT": frozenset({200}),
    "EPRT": frozenset({200}),
    "REST": frozenset({350}),
    "RETR": frozenset({125, 150, 226, 250}),
    "NOOP": frozenset({200}),
    "QUIT": frozenset({221}),
    "FEAT": frozenset({211}),
    "ABOR": frozenset({225, 226}),
}


class FtpControl:
    """The control channel's protocol state (sans-IO; docs/design.md shape)."""

    def __init__(self) -> None:
        self._parser = ReplyParser()
        self.state = State.GREETING
        #: the command whose reply is awaited (``"greeting"`` at first)
        self.pending: str | None = "greeting"

    def send(self, command: Command) -> bytes:
        """Bytes to send for *command*.

        Raises:
            LocalProtocolError: the channel is not idle (one command at a time), or closed.
        """
        key = (self.state, "send")
        if key not in TRANSITIONS or (
            self.state is State.TRANSFER and command.verb not in ("ABOR", "STAT")
        ):
            raise LocalProtocolError(f"cannot send {command.verb} in state {self.state.value}")
        data = command.to_bytes()
        if self.state is State.IDLE:
            self.pending = command.verb
        self.state = TRANSITIONS[key]
        return data

    def send_sync(self) -> bytes:
        """``NOOP`` that brings the channel back in step after an aborted transfer: every
        reply before its 200 is a stray (a late 226/426 of the transfer) and is dropped.

        Raises:
            LocalProtocolError: the channel is not idle.
        """
        if self.state is not State.IDLE:
            raise LocalProtocolError(f"cannot resynchronise in state {self.state.value}")
        self.state = TRANSITIONS[(State.IDLE, "sync")]
        self.pending = "NOOP"
        return Command("NOOP").to_bytes()

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the control connection (``b""``: it closed)."""
        self._parser.receive_data(data)

    @property
    def buffered(self) -> int:
        """Bytes received that are not part of a reply returned yet."""
        return self._parser.buffered

    def next_event(self) -> Reply | None:
        """The next reply (None: need more bytes); advances :attr:`state`.

        Raises:
            FtpProtocolError: garbage, or a reply nobody asked for.
        """
        reply = self._parser.next_event()
        if reply is None:
            return None
        if reply.code == 421:  # service closing: nothing more will come
            self.state = State.CLOSED
            return reply
        if self.state is State.IDLE:
            raise FtpProtocolError(f"unsolicited FTP reply: {reply}")
        if self.state is State.CLOSED:
            raise FtpProtocolError(f"FTP reply after the channel closed: {reply}")
        kind = "prelim" if reply.preliminary else "final"
        if self.state is State.SYNC and reply.code == 200:
            self.state, self.pending = State.IDLE, None
            return reply
        self.state = TRANSITIONS[(self.state, kind)]
        if self.state is State.IDLE:
            if self.pending == "QUIT":
                self.state = State.CLOSED
            self.pending = None
        return reply


def check_reply(verb: str, reply: Reply, *, what: str = "") -> Reply:
    """Return *reply* if it is a success for *verb*; else raise aria2's error for it.

    Raises:
        NotFoundError: 550 to CWD/RETR/SIZE/MDTM (exit 3, not retried).
        FtpProtocolError: any other unexpected reply (exit 21); retryable for 4yz and 421,
            not for 5yz (a refused login is 530: exit 21 as aria2's FtpNegotiationCommand).
    """
    if reply.code in EXPECTED.get(verb, frozenset()):
        return reply
    subject = f" ({what})" if what else ""
    if reply.code == 550 and verb in ("CWD", "RETR", "SIZE", "MDTM"):
        err: Exception = NotFoundError(f"resource not found{subject}: {reply}")
    elif reply.code == 530:
        err = FtpProtocolError(f"FTP login refused{subject}: {reply}", retryable=False)
    else:
        transient = 400 <= reply.code < 500
        err = FtpProtocolError(
            f"unexpected FTP reply to {verb}{subject}: {reply}", retryable=transient
        )
    raise err


def parse_epsv(reply: Reply) -> int:
    """Port from ``229 Entering Extended Passive Mode (|||6446|)`` (RFC 2428 §3)."""
    m = re.search(r"\((.)\1\1(\d{1,5})\1\)", reply.text)
    if m is None or not 0 < int(m.group(2)) < 65536:
        raise FtpProtocolError(f"malformed EPSV reply: {reply}")
    return int(m.group(2))


def parse_pasv(reply: Reply) -> tuple[str, int]:
    """``(host, port)`` from ``227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)``."""
    m = re.search(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})", reply.text)
    if m is None:
        raise FtpProtocolError(f"malformed PASV reply: {reply}")
    nums = [int(x) for x in m.groups()]
    if any(n > 255 for n in nums) or nums[4] * 256 + nums[5] == 0:
        raise FtpProtocolError(f"malformed PASV reply: {reply}")
    return ".".join(map(str, nums[:4])), nums[4] * 256 + nums[5]


def parse_size(reply: Reply) -> int:
    """The byte count of ``213 12345`` (RFC 3659 §4)."""
    text = reply.text.strip()
    if not _DIGITS.fullmatch(text):
        raise FtpProtocolError(f"malformed SIZE reply: {reply}")
    return int(text)


def parse_mdtm(reply: Reply) -> float | None:
    """Seconds since the epoch from ``213 YYYYMMDDHHMMSS[.sss]`` (UTC, RFC 3659 §2.3).

    Returns None for a value that is not a valid time (some servers answer oddly).
    """
    m = re.fullmatch(r"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\.\d{1,9})?", reply.text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    try:
        base = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    return base + (float(m.group(7)) if m.group(7) else 0.0)


def parse_pwd(reply: Reply) -> str:
    """The directory of ``257 "/home/x" is the current directory`` (``""`` escapes ``"``)."""
    text = reply.lines[0] if reply.lines else ""
    start = text.find('"')
    if start < 0:
        raise FtpProtocolError(f"malformed PWD reply: {reply}")
    out: list[str] = []
    i = start + 1
    while i < len(text):
        if text[i] == '"':
            if text[i + 1 : i + 2] == '"':
                out.append('"')
                i += 2
                continue
            return "".join(out)
        out.append(text[i])
        i += 1
    raise FtpProtocolError(f"malformed PWD reply: {reply}")


def format_port(host: str, port: int) -> str:
    """The ``PORT`` argument ``h1,h2,h3,h4,p1,p2`` for an IPv4 address."""
    addr = ipaddress.IPv4Address(host)
    return ",".join([*str(addr).split("."), str(port >> 8), str(port & 0xFF)])


def format_eprt(host: str, port: int) -> str:
    """The ``EPRT`` argument ``|1|a.b.c.d|port|`` or ``|2|v6|port|`` (RFC 2428 §2)."""
    addr = ipaddress.ip_address(host.split("%", 1)[0])
    return f"|{1 if addr.version == 4 else 2}|{addr}|{port}|"


@dataclass(frozen=True, slots=True)
class FtpUrl:
    """A parsed ``ftp://``/``ftps://``/``ftpes://`` URL.

    Attributes:
        scheme: ``ftp``, ``ftps`` (implicit TLS) or ``ftpes`` (explicit ``AUTH TLS``).
        host: host name or address (IPv6 without brackets).
        port: TCP port.
        user: percent-decoded user from the URL, or None.
        password: percent-decoded password from the URL, or None.
        dirs: directory components (decoded) before the file name.
        filename: the file name (decoded).
        type_code: ``"a"`` or ``"i"`` from ``;type=``, or None.
    """

    scheme: str
    host: str
    port: int
    user: str | None
    password: str | None
    dirs: tuple[str, ...]
    filename: str
    type_code: str | None = None

    @property
    def tls(self) -> bool:
        return self.scheme in ("ftps", "ftpes")

    @property
    def implicit_tls(self) -> bool:
        return self.scheme == "ftps"

    @property
    def path(self) -> str:
        """Directories and file joined with ``/`` (relative to the login directory)."""
        return "/".join((*self.dirs, self.filename))


def parse_ftp_url(url: str) -> FtpUrl:
    """Parse *url* (RFC 1738 §3.2).

    Raises:
        LocalProtocolError: not an FTP URL, no host, or no file name.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise LocalProtocolError(f"bad FTP URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise LocalProtocolError(f"not an FTP URL: {url!r}")
    host = parts.hostname or ""
    if not host:
        raise LocalProtocolError(f"FTP URL without a host: {url!r}")
    path = parts.path
    type_code: str | None = None
    m = re.search(r";type=([aiAI])$", path)
    if m is not None:
        type_code = m.group(1).lower()
        path = path[: m.start()]
    segments = [unquote(s) for s in path.split("/")[1:]]
    if not segments or not segments[-1]:
        raise LocalProtocolError(f"FTP URL names no file: {url!r}")
    if any(c in s for s in segments for c in "\r\n\0"):
        raise LocalProtocolError(f"FTP URL with control characters: {url!r}")
    return FtpUrl(
        scheme=scheme,
        host=host,
        port=port or DEFAULT_PORTS[scheme],
        user=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        dirs=tuple(s for s in segments[:-1] if s),
        filename=segments[-1],
        type_code=type_code,
    )
