"""FTP/FTPS client driver on trio: control connections, data connections, a reuse pool.

Theory of operation
-------------------
:class:`FtpConnection` is one logged-in control connection.  It feeds the bytes it reads to
the sans-IO :class:`~trioaria.ftp.proto.FtpControl` and sends what it returns; every reply
wait is bounded by ``--timeout`` (:func:`trioaria.net.connect.read_deadline`).

Login (:meth:`FtpConnection.open`): greeting 220; for ``ftpes://`` ``AUTH TLS`` (234) and the
TLS handshake on the same socket (RFC 4217 §4), for ``ftps://`` TLS from the first byte;
``USER``/``PASS``; with TLS ``PBSZ 0`` and ``PROT P`` (RFC 4217 §9: data connections are
TLS too); ``TYPE I`` (or ``A``, ``--ftp-type``); ``PWD`` to learn the login directory, so
later ``CWD`` commands are absolute and a pooled connection can serve any file.

One transfer (:meth:`FtpConnection.start_retr`): passive mode sends ``EPSV`` first (RFC 2428)
and falls back to ``PASV`` once a server refuses it.  The address in a PASV reply is
ignored: the data connection goes to the control connection's peer (docs/decisions.md; curl does
the same since 7.74), so a server behind NAT, or a hostile one, cannot point us elsewhere.
The data connection's TCP handshake is started (non-blocking ``connect``) before ``REST`` is
sent and only awaited after the 1yz reply to ``RETR``: a passive server listens from its
227/229 reply on (RFC 959 §3.2), so the handshake costs no round trip of its own.
Active mode (``--ftp-pasv=false``) listens on the control socket's local address, port 0,
and sends ``PORT`` (IPv4) or ``EPRT`` (IPv6); only a connection from the server's address is
accepted.  Then ``REST offset`` (RFC 3659 §5; also for 0 when resuming is in use) and
``RETR``.  With TLS the data connection is wrapped as a TLS client and offered the control
connection's TLS session, which servers such as vsftpd (``require_ssl_reuse``) demand; the
data handshake starts after the 1yz reply to ``RETR`` (vsftpd begins its side only then).

Data connections ask for a large receive buffer (:data:`DATA_RCVBUF`, or
``--socket-recv-buffer-size``) when the OS grants it in full: each ``recv_into`` then fills
most of the group's 1 MiB buffer, which halves the reads (and the CPU) of a fast transfer.
Where the OS caps ``SO_RCVBUF`` below that, the socket is left to the kernel's autotuning.

Ending a transfer early (a segment ends before the file does): the data connection is
closed, then the transfer's final reply is read.  226/250 (all was sent) or 425/426/451
(the server noticed the close) ends the transfer, and the connection is in step again: it
goes back to the pool with no extra round trip.  Any other reply, or none, is followed by
``NOOP`` and the replies up to its 200, so a stray reply is drained before reuse (aria2
only reuses a connection whose transfer reached the end of the file).  In case a server
sends a second, late reply anyway, the first command on such a connection treats an
unexpected reply as a retryable error (the connection is dropped, the segment is retried)
and from then on this run resynchronises that server's connections with ``NOOP``.

:class:`FtpPool` keeps idle logged-in connections per (scheme, host, port, user, TLS
settings) for ``--ftp-reuse-connection``.  It lives for one ``trio.run`` (a ``RunVar``) and
is shared by every download of the run, so ten files from one host are fetched over one
control connection.  Idle connections expire after :data:`IDLE_SECONDS`.  Its reaper
(:meth:`FtpPool.serve`) is a structured task: :func:`open_pool` starts it with
``nursery.start`` in the run's services nursery (:mod:`trioaria.net.services`) before the
pool is first used, and closing that nursery cancels it and closes every idle connection.
Without a services nursery the pool has no task and expires connections when it is used.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass

import trio

from ..base.errors import (
    ConnectError,
    FtpProtocolError,
    NetworkError,
    RestRefusedError,
    TrioariaError,
)
from ..net.connect import (
    DATA_RCVBUF,
    ByteStream,
    Target,
    TlsOptions,
    begin_connect,
    connect_deadline,
    finish_connect,
    make_ssl_context,
    map_exceptions,
    open_transport,
    os_cause,
    read_deadline,
    recv_buffer_size,
    transport_socket,
)
from ..net.proxy import Proxy
from ..net.services import services_open, start_service
from ..net.tls import TlsStream
from .proto import (
    EXPECTED,
    Command,
    FtpControl,
    FtpUrl,
    Reply,
    State,
    check_reply,
    format_eprt,
    format_port,
    parse_epsv,
    parse_pasv,
    parse_pwd,
)

__all__ = [
    "DATA_RCVBUF",
    "IDLE_SECONDS",
    "DataTransfer",
    "FtpConnection",
    "FtpPool",
    "PoolKey",
    "data_rcvbuf",
    "get_pool",
    "open_pool",
]

#: Idle pooled control connections are closed after this many seconds (aria2: 15).
IDLE_SECONDS = 15.0
_RECEIVE = 16384
#: Final replies that end a transfer cut short by closing its data connection.
_TRANSFER_END = frozenset({226, 250, 425, 426, 451})

#: The data-connection receive buffer policy is shared with HTTP (trioaria.net.connect).
data_rcvbuf = recv_buffer_size


@dataclass(frozen=True, slots=True)
class PoolKey:
    """What makes two control connections interchangeable."""

    scheme: str
    host: str
    port: int
    user: str
    password: str
    tls: TlsOptions | None
    type_code: str
    #: the proxy that tunnels the control and data connections (``CONNECT`` or SOCKS)
    proxy: Proxy | None = None


async def _tls_wrap(
    tcp: trio.SocketStream | TlsStream,
    ctx: ssl.SSLContext,
    host: str,
    session: ssl.SSLSession | None = None,
) -> TlsStream:
    # RFC 4217 §10.2: data connections resume the control connection's session
    stream = TlsStream(tcp, ctx, server_hostname=host, session=session)
    try:
        with map_exceptions():
            await stream.do_handshake()
    except BaseException:
        transport_socket(tcp).close()
        raise
    return stream


class FtpConnection:
    """One logged-in FTP control connection (one task at a time)."""

    def __init__(
        self,
        key: PoolKey,
        tcp: trio.SocketStream | TlsStream,
        stream: ByteStream,
        *,
        read_timeout: float,
        connect_timeout: float,
    ) -> None:
        self.key = key
        self._tcp = tcp
        self._stream = stream
        self._ssl: TlsStream | None = None
        self._ctl = FtpControl()
        self.read_timeout = read_timeout
        self.connect_timeout = connect_timeout
        self.home = "/"
        self.cwd: str | None = None
        self.epsv_ok = True
        self.idle_since = 0.0
        self.broken = False
        self.checked: dict[str, int | None] = {}  # path -> SIZE seen on this connection
        #: SO_RCVBUF for data connections (:func:`data_rcvbuf`); 0: the kernel's default
        self.data_rcvbuf = 0
        #: TLS settings for an ``https://`` proxy in ``key.proxy``
        self.proxy_tls: TlsOptions | None = None
        #: ``--disable-ipv6``, for the data connections' tunnels too
        self.disable_ipv6 = False
        #: the last transfer was cut short and no NOOP followed: a late stray reply may
        #: still come, so the next command's unexpected reply is a retryable error
        self.stray_possible = False
        sockname = transport_socket(tcp).getsockname()
        self.local_ip = str(sockname[0])
        self.peer_ip = str(stream.peer[0]) if stream.peer else key.host

    # --- opening ------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: FtpUrl,
        key: PoolKey,
        *,
        connect_timeout: float,
        read_timeout: float,
        disable_ipv6: bool = False,
        proxy_tls: TlsOptions | None = None,
    ) -> FtpConnection:
        """Connect, (TLS,) log in, set TYPE, learn the login directory.

        With ``key.proxy`` the control connection (and later every data connection) is a
        tunnel through that proxy (:func:`trioaria.net.connect.open_transport`);
        *proxy_tls* is for an ``https://`` proxy.

        Raises:
            NameResolveError, ConnectError, NetworkError, TimeoutError_: connecting.
            FtpProtocolError: a refused login (530, exit 21) or an unexpected reply.
        """
        host = url.host
        ctx = make_ssl_context(key.tls) if key.tls is not None else None
        with connect_deadline(connect_timeout, f"connecting to {host}:{url.port}"):
            tcp = await open_transport(
                host, url.port, disable_ipv6=disable_ipv6, proxy=key.proxy, proxy_tls=proxy_tls
            )
            ssl_stream = None
            if url.implicit_tls:
                assert ctx is not None
                ssl_stream = await _tls_wrap(tcp, ctx, host)
        conn = cls(
            key,
            tcp,
            ByteStream(ssl_stream or tcp),
            read_timeout=read_timeout,
            connect_timeout=connect_timeout,
        )
        conn._ssl = ssl_stream
        conn.proxy_tls = proxy_tls
        conn.disable_ipv6 = disable_ipv6
        try:
            await conn._login(url, ctx)
        except BaseException:
            conn.close_nowait()
            raise
        return conn

    async def _login(self, url: FtpUrl, ctx: ssl.SSLContext | None) -> None:
        check_reply("greeting", await self.read_reply(), what=self.key.host)
        if url.tls and not url.implicit_tls:
            assert ctx is not None
            await self.command("AUTH", "TLS")
            if self._ctl.buffered:  # clear text after the 234 would pass as a TLS reply
                raise FtpProtocolError(
                    f"{self.key.host} sent data after its AUTH TLS reply, before TLS began"
                    " (refused: it could be injected)",
                    retryable=False,
                )
            with connect_deadline(self.connect_timeout, "TLS handshake"):
                self._ssl = await _tls_wrap(self._tcp, ctx, url.host)
            self._stream = ByteStream(self._ssl)
        reply = await self.command("USER", self.key.user, what=self.key.host)
        if reply.code == 331:
            await self.command("PASS", self.key.password, what=self.key.host)
        if url.tls:
            await self.command("PBSZ", "0")
            await self.command("PROT", "P")
        await self.command("TYPE", self.key.type_code.upper())
        reply = await self.command("PWD", check=False)
        if reply.code == 257:
            self.home = parse_pwd(reply) or "/"
        self.cwd = self.home

    # --- replies and commands -------------------------------------------------------------

    async def read_reply(self) -> Reply:
        """The next reply (preliminary ones included), within ``--timeout``."""
        while True:
            reply = self._ctl.next_event()
            if reply is not None:
                if reply.code == 421:
                    self.broken = True
                    raise FtpProtocolError(f"server closed the session: {reply}", retryable=True)
                return reply
            with read_deadline(self.read_timeout, "waiting for an FTP reply"):
                data = await self._stream.receive_some(_RECEIVE)
            if not data:
                self.broken = True
                raise NetworkError("FTP control connection closed by the server")
            self._ctl.receive_data(data)

    async def send(self, verb: str, arg: str | None = None) -> None:
        await self._stream.send_all(self._ctl.send(Command(verb, arg)))

    async def command(
        self, verb: str, arg: str | None = None, *, check: bool = True, what: str = ""
    ) -> Reply:
        """Send one command and return its final reply (checked unless *check* is False)."""
        self.broken = True  # until the reply is in
        await self.send(verb, arg)
        reply = await self.read_reply()
        while reply.preliminary:
            reply = await self.read_reply()
        self.broken = False
        if self.stray_possible:
            if reply.code not in EXPECTED.get(verb, ()):
                if reply.code in _TRANSFER_END:
                    # most likely a late second reply to the cut-short transfer: this
                    # connection is out of step; NOOP-resync this server from now on
                    self.broken = True
                    get_pool().strict_sync.add(self.key)
                    raise FtpProtocolError(
                        f"{verb}: out-of-step FTP reply after a transfer: {reply}",
                        retryable=True,
                    )
            elif reply.code not in _TRANSFER_END:
                self.stray_possible = False  # an unambiguous answer: in step
        return check_reply(verb, reply, what=what) if check else reply

    async def change_dir(self, dirs: tuple[str, ...]) -> None:
        """Go to ``home/dirs`` unless already there (absolute path: reuse-safe)."""
        target = self.home.rstrip("/") + "".join("/" + d for d in dirs) if dirs else self.home
        if self.cwd == target:
            return
        self.cwd = None
        await self.command("CWD", target or "/", what=target)
        self.cwd = target

    # --- data connections -----------------------------------------------------------------

    async def start_retr(self, name: str, offset: int, *, passive: bool) -> DataTransfer:
        """``EPSV``/``PASV`` or ``PORT``/``EPRT``, ``REST``, ``RETR``; the data stream is open.

        Raises:
            NotFoundError: 550 (exit 3).  FtpProtocolError: other refusals; a server that
            cannot ``REST`` to a non-zero offset (exit 21, not retried).
        """
        if self.key.proxy is not None:  # only passive mode can go through a tunnel
            data = await self._tunnelled(name, offset)
        elif passive:
            data = await self._passive(name, offset)
        else:
            data = await self._active(name, offset)
        return DataTransfer(self, data)

    async def _passive_port(self) -> int:
        port: int | None = None
        if self.epsv_ok:
            reply = await self.command("EPSV", check=False)
            if reply.code == 229:
                port = parse_epsv(reply)
            elif 500 <= reply.code < 600:
                self.epsv_ok = False
            else:
                check_reply("EPSV", reply)
        if port is None:
            _ignored_host, port = parse_pasv(await self.command("PASV"))
        return port

    async def _passive(self, name: str, offset: int) -> ByteStream:
        target = self._data_target(await self._passive_port())
        what = f"data connection to {target.label}"
        with map_exceptions(connecting=True):
            sock = begin_connect(target, rcvbuf=self.data_rcvbuf)
        try:
            # the handshake runs while REST and RETR are answered
            await self._rest_retr(name, offset)
            with connect_deadline(self.connect_timeout, what), map_exceptions(connecting=True):
                try:
                    tcp = await finish_connect(sock)
                except OSError as exc:
                    raise ConnectError(f"failed to establish the {what}: {os_cause(exc)}") from exc
            # TLS after the 1yz reply: vsftpd starts its side of the handshake only then
            return await self._wrap_data(tcp)
        except BaseException:
            sock.close()
            raise

    async def _tunnelled(self, name: str, offset: int) -> ByteStream:
        """Passive mode through ``key.proxy``: the data connection is another tunnel, to the
        control connection's host name (never the PASV address; docs/decisions.md) and the
        EPSV/PASV port, opened before ``REST``/``RETR`` as a direct one would be."""
        port = await self._passive_port()
        what = f"data connection to {self.key.host}:{port} through {self.key.proxy.label if self.key.proxy else ''}"
        with connect_deadline(self.connect_timeout, what):
            tunnel = await open_transport(
                self.key.host,
                port,
                proxy=self.key.proxy,
                proxy_tls=self.proxy_tls,
                rcvbuf=self.data_rcvbuf,
                disable_ipv6=self.disable_ipv6,
            )
        try:
            await self._rest_retr(name, offset)
            return await self._wrap_data(tunnel)
        except BaseException:
            transport_socket(tunnel).close()
            raise

    def _data_target(self, port: int) -> Target:
        """The passive data connection's address: the control connection's peer (the very
        address Happy Eyeballs picked, scope id kept), with the port from EPSV/PASV."""
        peer = self._stream.peer
        if len(peer) >= 2:
            family = socket.AF_INET6 if len(peer) == 4 else socket.AF_INET
            return Target(family, (peer[0], port, *peer[2:]))
        family = socket.AF_INET6 if ":" in self.peer_ip else socket.AF_INET
        return Target(family, (self.peer_ip, port))

    async def _active(self, name: str, offset: int) -> ByteStream:
        family = socket.AF_INET6 if ":" in self.local_ip else socket.AF_INET
        listener = trio.socket.socket(family, socket.SOCK_STREAM)
        try:
            with map_exceptions():
                if self.data_rcvbuf:  # inherited by the accepted socket
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.data_rcvbuf)
                await listener.bind((self.local_ip, 0))
                listener.listen(1)
            port = int(listener.getsockname()[1])
            if family == socket.AF_INET:
                await self.command("PORT", format_port(self.local_ip, port))
            else:
                await self.command("EPRT", format_eprt(self.local_ip, port))
            await self._rest_retr(name, offset)
            with connect_deadline(self.connect_timeout, "waiting for the active data connection"):
                while True:
                    with map_exceptions():
                        sock, addr = await listener.accept()
                    if _same_host(str(addr[0]), self.peer_ip):
                        break
                    sock.close()  # not the server: never trust a stranger's bytes
                tcp = trio.SocketStream(sock)
                return await self._wrap_data(tcp)
        finally:
            listener.close()

    async def _wrap_data(self, tcp: trio.SocketStream | TlsStream) -> ByteStream:
        if self._ssl is None or self.key.tls is None:
            return ByteStream(tcp)
        ctx = make_ssl_context(self.key.tls)
        session = None
        try:
            session = self._ssl.session
        except (AttributeError, ValueError):
            session = None
        with connect_deadline(self.connect_timeout, "TLS handshake on the data connection"):
            return ByteStream(await _tls_wrap(tcp, ctx, self.key.host, session))

    async def _rest_retr(self, name: str, offset: int) -> None:
        reply = await self.command("REST", str(offset), check=False)
        if reply.code != 350 and offset != 0:
            raise RestRefusedError(f"the FTP server cannot resume (REST {offset}): {reply}")
        self.broken = True
        await self.send("RETR", name)
        reply = await self.read_reply()
        if not reply.preliminary:
            check_reply("RETR", reply, what=name)
            raise FtpProtocolError(f"RETR {name}: no data connection was opened: {reply}")
        self.broken = False

    async def sync(self, *, noop: bool = False) -> None:
        """After an interrupted transfer: read its final reply; NOOP up to the 200 unless
        that reply plainly ended the transfer (and *noop* is False)."""
        self.broken = True
        reply = None
        if self._ctl.state is State.TRANSFER:
            reply = await self.read_reply()
            while self._ctl.state is State.TRANSFER:
                reply = await self.read_reply()
        if (
            not noop
            and reply is not None
            and reply.code in _TRANSFER_END
            and not self._ctl.buffered  # nothing more already came in
            and self.key not in get_pool().strict_sync
        ):
            self.broken = False
            self.stray_possible = True
            return
        await self._stream.send_all(self._ctl.send_sync())
        for _ in range(8):
            reply = await self.read_reply()
            if self._ctl.state is State.IDLE:
                self.broken = False
                return
        raise FtpProtocolError(f"FTP control channel out of step after a transfer: {reply}")

    async def finish_transfer(self) -> Reply:
        """The final reply of a transfer whose data reached EOF (226 expected)."""
        self.broken = True
        reply = await self.read_reply()
        while reply.preliminary:
            reply = await self.read_reply()
        self.broken = False
        return reply

    # --- state ------------------------------------------------------------------------------

    @property
    def in_transfer(self) -> bool:
        return self._ctl.state is State.TRANSFER

    @property
    def usable(self) -> bool:
        """Idle, in step and still open (a readable idle socket means the server left)."""
        return (
            not self.broken
            and self._ctl.state is State.IDLE
            and not self._ctl.buffered
            and not self._stream.closed
            and not self._stream.is_readable()
        )

    def close_nowait(self) -> None:
        self.broken = True
        self._stream.close_nowait()

    async def aclose(self) -> None:
        self.broken = True
        await self._stream.aclose()


def _same_host(a: str, b: str) -> bool:
    try:
        x = ipaddress.ip_address(a.split("%", 1)[0])
        y = ipaddress.ip_address(b.split("%", 1)[0])
    except ValueError:
        return a == b
    if isinstance(x, ipaddress.IPv6Address) and x.ipv4_mapped is not None:
        x = x.ipv4_mapped
    if isinstance(y, ipaddress.IPv6Address) and y.ipv4_mapped is not None:
        y = y.ipv4_mapped
    return x == y


class DataTransfer:
    """One open data connection of a ``RETR`` on its control connection."""

    def __init__(self, control: FtpConnection, data: ByteStream) -> None:
        self.control = control
        self.data = data
        self.eof = False
        self.final: Reply | None = None  # the transfer's final reply, once read

    async def end_of_data(self) -> None:
        """The data reached EOF and nothing else tells whether that was the whole file (no
        length known): the final reply does (RFC 959 §4.2: 226/250 done; 426/451 aborted).

        Raises:
            NetworkError: the server reports the transfer aborted (retryable).
        """
        self.final = await self.control.finish_transfer()
        if self.final.code not in (226, 250):
            raise NetworkError(f"the server reports the FTP transfer aborted: {self.final}")

    async def read_into(self, buf: memoryview) -> int:
        if self.eof:
            await trio.lowlevel.checkpoint()
            return 0
        n = await self.data.receive_into(buf)
        if n == 0:
            self.eof = True
        return n

    async def close(self) -> bool:
        """Close the data connection and bring the control channel back in step.

        Returns:
            True if the control connection may be reused.
        """
        ctl = self.control
        complete = self.eof
        self.data.close_nowait()
        try:
            with trio.move_on_after(min(ctl.read_timeout, 10)) as cs:
                if complete:
                    reply = self.final or await ctl.finish_transfer()
                    if reply.code not in (226, 250):
                        await ctl.sync()
                else:
                    await ctl.sync()
        except TrioariaError:
            ctl.close_nowait()
            return False
        if cs.cancelled_caught:
            ctl.close_nowait()
            return False
        return ctl.usable


class FtpPool:
    """Idle logged-in control connections per :class:`PoolKey` (``--ftp-reuse-connection``)."""

    def __init__(self, *, max_idle_per_key: int = 16) -> None:
        self._idle: dict[PoolKey, list[FtpConnection]] = {}
        self._max = max_idle_per_key
        self.opened = 0
        self.reused = 0
        #: servers that sent a late stray reply: their transfers are resynced with NOOP
        self.strict_sync: set[PoolKey] = set()
        #: the reaper (:meth:`serve`) is running; otherwise expiry is lazy (acquire/release)
        self.serving = False

    async def serve(
        self, *, task_status: trio.TaskStatus[FtpPool] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The reaper: closes connections idle for :data:`IDLE_SECONDS`; when cancelled (its
        nursery closes), closes every idle connection.  Start it with ``nursery.start``."""
        self.serving = True
        try:
            task_status.started(self)
            while True:
                await trio.sleep(IDLE_SECONDS / 3)
                self.expire()
        finally:
            self.serving = False
            self.close_all()

    def acquire(self, key: PoolKey) -> FtpConnection | None:
        """A usable idle connection for *key*, or None (expired/closed ones are dropped)."""
        now = trio.current_time()
        idle = self._idle.get(key, [])
        while idle:
            conn = idle.pop()
            if conn.usable and now - conn.idle_since < IDLE_SECONDS:
                self.reused += 1
                return conn
            conn.close_nowait()
        return None

    def release(self, conn: FtpConnection) -> None:
        if not self.serving:
            self.expire()
        if not conn.usable:
            conn.close_nowait()
            return
        conn.idle_since = trio.current_time()
        idle = self._idle.setdefault(conn.key, [])
        idle.append(conn)
        while len(idle) > self._max:
            idle.pop(0).close_nowait()

    def expire(self) -> None:
        now = trio.current_time()
        for idle in self._idle.values():
            for conn in [c for c in idle if now - c.idle_since >= IDLE_SECONDS]:
                idle.remove(conn)
                conn.close_nowait()

    def close_all(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close_nowait()
        self._idle.clear()

    @property
    def idle_count(self) -> int:
        return sum(len(v) for v in self._idle.values())


_POOL: trio.lowlevel.RunVar[FtpPool] = trio.lowlevel.RunVar("trioaria_ftp_pool")
_SERVICE = "ftp-pool"


async def open_pool() -> FtpPool:
    """This run's pool, its reaper started first (``nursery.start`` in the run's services
    nursery, :func:`trioaria.net.services.open_services`); without such a nursery, a pool
    that expires idle connections lazily (no background task)."""
    pool = _current_pool()
    if pool is not None and (pool.serving or not services_open()):
        await trio.lowlevel.checkpoint()
        return pool
    candidate = pool or FtpPool()
    started = await start_service(_SERVICE, candidate.serve)
    pool = started if isinstance(started, FtpPool) else (_current_pool() or candidate)
    _POOL.set(pool)
    return pool


def _current_pool() -> FtpPool | None:
    try:
        return _POOL.get()
    except LookupError:
        return None


def get_pool() -> FtpPool:
    """This run's pool as :func:`open_pool` left it (a reaper-less one if none was opened)."""
    try:
        return _POOL.get()
    except LookupError:
        pool = FtpPool()
        _POOL.set(pool)
        return pool
