"""Opening TCP/TLS connections, and the one place OS/trio/ssl errors become trioaria errors.

Theory of operation
-------------------
:func:`open_tcp` is the one TCP connect of every driver (HTTP, FTP control connections,
SFTP's socket handed to asyncssh): Happy Eyeballs (RFC 8305) over the addresses of
:func:`resolve`, interleaved by family (§4) and started :data:`HAPPY_EYEBALLS_DELAY` apart or
as soon as the previous attempt failed (§5), the first connection winning; optionally IPv4
only (aria2 ``--disable-ipv6``).  :func:`begin_connect`/:func:`finish_connect` are its single
attempt, also used on their own where the address is already known (FTP data connections go
to the control connection's peer).  :func:`open_stream` adds the TLS handshake when asked (aria2 ``--check-certificate``, ``--ca-certificate``,
``--certificate``/``--private-key``, ``--min-tls-version``).  The result is a
:class:`ByteStream`, whose :meth:`ByteStream.receive_into` is the fast body path of docs/performance.md
§4: on plain TCP it is one ``recv_into`` straight into the caller's reused buffer; on TLS it
is ``receive_some`` plus one copy.

Errors are translated at this seam only (docs/design.md, httpcore's ``map_exceptions``):
:func:`map_exceptions` turns ``socket.gaierror`` into ``NameResolveError`` (exit 19), failed
connects into ``ConnectError`` (its message names the OS cause of each address, e.g.
``Connection refused (ECONNREFUSED)``) and everything else (resets, TLS failures, broken streams)
into ``NetworkError`` (exit 6).  Timeouts stay cancel scopes (trio: "We don't provide
timeout arguments"); :func:`connect_deadline` and :func:`read_deadline` are ``fail_after``
wrappers that turn ``trio.TooSlowError`` into ``TimeoutError_``/``ReadTimeoutError`` (exit 2).
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from ..base.errors import (
    ConnectError,
    ExitCode,
    NameResolveError,
    NetworkError,
    OptionError,
    ReadTimeoutError,
    TimeoutError_,
)
from .tls import TlsStream

if TYPE_CHECKING:
    from .proxy import Proxy

__all__ = [
    "DATA_RCVBUF",
    "HAPPY_EYEBALLS_DELAY",
    "ByteStream",
    "Target",
    "TlsOptions",
    "begin_connect",
    "connect_deadline",
    "finish_connect",
    "interleave",
    "make_ssl_context",
    "map_exceptions",
    "open_stream",
    "open_tcp",
    "open_transport",
    "os_cause",
    "read_deadline",
    "recv_buffer_size",
    "resolve",
    "transport_socket",
]

#: Delay before racing the next address (RFC 8305 recommends 250 ms; trio's default too).
HAPPY_EYEBALLS_DELAY = 0.25

_TLS_VERSIONS = {
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """TLS settings, one field per aria2 option.

    Attributes:
        check_certificate: ``--check-certificate`` (verify the chain and the host name).
        ca_certificate: ``--ca-certificate``: a PEM file of extra trusted CAs (the system
            store is still used, as aria2 does).
        certificate: ``--certificate``: client certificate (PEM; may also hold the key).
        private_key: ``--private-key``: the client certificate's key (PEM).
        min_tls_version: ``--min-tls-version``: ``TLSv1.1``, ``TLSv1.2`` or ``TLSv1.3``.
    """

    check_certificate: bool = True
    ca_certificate: str | None = None
    certificate: str | None = None
    private_key: str | None = None
    min_tls_version: str = "TLSv1.2"

    @classmethod
    def from_options(cls, options: Any) -> TlsOptions:
        """The TLS settings of an :class:`~trioaria.cli.options.Options` (any ``.get(name)``)."""
        return cls(
            check_certificate=bool(options.get("check-certificate")),
            ca_certificate=options.get("ca-certificate") or None,
            certificate=options.get("certificate") or None,
            private_key=options.get("private-key") or None,
            min_tls_version=options.get("min-tls-version") or "TLSv1.2",
        )


@functools.lru_cache(maxsize=32)
def make_ssl_context(opts: TlsOptions) -> ssl.SSLContext:
    """Build (once per distinct *opts*) the client ``SSLContext``.

    Raises:
        OptionError: unknown ``min_tls_version``, or a CA/certificate/key file that cannot
            be loaded (exit 28).
    """
    try:
        minimum = _TLS_VERSIONS[opts.min_tls_version]
    except KeyError:
        raise OptionError(
            f"--min-tls-version must be one of {', '.join(_TLS_VERSIONS)}, "
            f"not {opts.min_tls_version!r}"
        ) from None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if minimum < ssl.TLSVersion.TLSv1_2:
        # OpenSSL 3's default security level refuses TLS 1.1 outright.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = minimum
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        if opts.ca_certificate is not None:
            ctx.load_verify_locations(cafile=opts.ca_certificate)
        if opts.certificate is not None:
            ctx.load_cert_chain(opts.certificate, opts.private_key)
    except (OSError, ssl.SSLError) as exc:
        raise OptionError(f"cannot load TLS certificate or key: {exc}") from None
    if not opts.check_certificate:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__


def _find_ssl_error(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    for _ in range(5):  # trio chains the ssl error as __cause__ of BrokenResourceError
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _translate(exc: BaseException, *, connecting: bool) -> NetworkError:
    ssl_error = _find_ssl_error(exc)
    if isinstance(ssl_error, ssl.SSLCertVerificationError):
        reason = ssl_error.verify_message or _describe(ssl_error)
        # aria2: "SSL/TLS handshake failure" is a DlAbortEx: errorCode=1 and never retried
        return NetworkError(
            f"TLS certificate verification failed: {reason} "
            "(use --ca-certificate or --check-certificate=false)",
            exit_code=ExitCode.UNKNOWN_ERROR,
            retryable=False,
        )
    if ssl_error is not None:
        return NetworkError(f"TLS error: {ssl_error.reason or _describe(ssl_error)}")
    if isinstance(exc, socket.gaierror):
        return NameResolveError(f"could not resolve host name: {_describe(exc)}")
    if isinstance(exc, trio.ClosedResourceError):
        return NetworkError("connection was closed locally")
    if isinstance(exc, trio.BrokenResourceError):
        cause = exc.__cause__
        return NetworkError(f"connection broken: {_describe(cause or exc)}")
    if connecting:
        return ConnectError(f"failed to establish connection: {os_cause(exc)}")
    if isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE):
        return NetworkError(f"connection reset by peer: {os_cause(exc)}")
    return NetworkError(f"network error: {os_cause(exc)}")


@contextmanager
def map_exceptions(*, connecting: bool = False) -> Iterator[None]:
    """Translate OS/trio/ssl errors raised inside the block into trioaria errors.

    ``socket.gaierror`` -> :class:`NameResolveError`; TLS verification failure -> a one-line
    :class:`NetworkError`; other ``OSError``, ``ssl.SSLError``, ``trio.BrokenResourceError``
    and ``trio.ClosedResourceError`` -> :class:`NetworkError`, or :class:`ConnectError` when
    *connecting*.  ``trio.TooSlowError`` and ``trio.Cancelled`` pass through untouched.
    """
    try:
        yield
    except (OSError, ssl.SSLError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise _translate(exc, connecting=connecting) from exc


@contextmanager
def connect_deadline(seconds: float, what: str = "connect") -> Iterator[None]:
    """``trio.fail_after(seconds)`` raising :class:`TimeoutError_` (exit 2) instead."""
    try:
        with trio.fail_after(seconds):
            yield
    except trio.TooSlowError:
        raise TimeoutError_(f"{what} timed out after {seconds:g} s") from None


@contextmanager
def read_deadline(seconds: float, what: str = "read") -> Iterator[None]:
    """``trio.fail_after(seconds)`` raising :class:`ReadTimeoutError` (exit 2) instead.

    Wrap each :meth:`ByteStream.receive_into` (or ``HttpConnection.read_into``) call to get
    aria2's ``--timeout`` semantics: no byte for *seconds* seconds is an error.
    """
    try:
        with trio.fail_after(seconds):
            yield
    except trio.TooSlowError:
        raise ReadTimeoutError(f"{what} timed out: no data for {seconds:g} s") from None


class ByteStream:
    """A connected TCP or TLS byte stream; every method raises only trioaria errors.

    Not safe for concurrent use by two tasks in the same direction (like trio streams).
    """

    __slots__ = ("_closed", "_lowat", "_sock", "_stream", "peer", "tls")

    def __init__(
        self, stream: trio.SocketStream | trio.SSLStream[trio.SocketStream] | TlsStream
    ) -> None:
        self._stream = stream
        inner: object = stream
        while isinstance(inner, (trio.SSLStream, TlsStream)):  # TLS over TLS via a proxy
            inner = inner.transport_stream
        assert isinstance(inner, trio.SocketStream)
        self._sock = inner.socket
        #: whether the stream is TLS
        self.tls = isinstance(stream, (trio.SSLStream, TlsStream))
        #: the peer's address tuple as returned by ``getpeername``
        try:
            self.peer: tuple[object, ...] = tuple(self._sock.getpeername())
        except OSError:  # reset between connect and here
            self.peer = ()
        self._closed = False
        self._lowat = 1  # SO_RCVLOWAT as set by wait_for_bytes

    async def send_all(
        self,
        data: bytes | bytearray | memoryview,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Send all of *data*.

        With *progress*, plain TCP calls it with the count of bytes handed to the kernel so far
        after each ``send`` (a caller that is cancelled half-way knows how much went out);
        TLS calls it once, at the end.
        """
        with map_exceptions():
            if progress is None:
                await self._stream.send_all(data)
            elif self.tls:
                await self._stream.send_all(data)
                progress(len(data))
            else:
                view = memoryview(data).cast("B")
                sent = 0
                while sent < len(view):
                    sent += await self._sock.send(view[sent:])
                    progress(sent)

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        """Up to *max_bytes* bytes; ``b""`` at EOF."""
        with map_exceptions():
            return bytes(await self._stream.receive_some(max_bytes))

    async def receive_into(self, buf: memoryview) -> int:
        """Receive into *buf*; return the byte count, ``0`` at EOF.

        Plain TCP: one ``recv_into`` straight into *buf* (no intermediate object).  TLS:
        ``receive_some(len(buf))`` and one copy.  Cancellation (a timeout) never loses
        bytes: either the call returns them or nothing was consumed.
        """
        if not buf:
            return 0
        try:
            if not self.tls:
                return await self._sock.recv_into(buf)
            if isinstance(self._stream, TlsStream):  # decrypts straight into buf
                return await self._stream.receive_into(buf)
            data = await self._stream.receive_some(len(buf))
        except (OSError, ssl.SSLError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _translate(exc, connecting=False) from exc
        size = len(data)
        buf[:size] = data
        return size

    async def wait_for_bytes(self, nbytes: int, patience: float) -> bool:
        """Plain TCP: return once at least *nbytes* are waiting to be read, at EOF or on an
        error, or after *patience* seconds, whichever comes first (TLS: at once).

        The kernel holds the wake-up back (``SO_RCVLOWAT``, socket(7)) until that much has
        arrived, so a reader owed a lot by a sender slower than itself takes one large read
        instead of many small ones, each a trip through trio and the codec
        (docs/performance.md §9).  The mark stays set for the next call with the same
        *nbytes* (one ``setsockopt`` per change, not per read); it is back at 1 after a wait
        that ran out of patience and after a call with ``nbytes <= 1``, which returns at once.
        A reader that waits here before some reads must do so before every read, or a plain
        :meth:`receive_into` could wait for the mark too.

        Returns:
            False when *patience* ran out first, else True.
        """
        if self.tls:
            return True
        want = max(nbytes, 1)
        if want != self._lowat and not self._set_lowat(want):
            return True
        if want == 1:
            return True
        with trio.move_on_after(patience) as scope:
            await trio.lowlevel.wait_readable(self._sock)
        if scope.cancelled_caught:
            self._set_lowat(1)
            return False
        return True

    def _set_lowat(self, nbytes: int) -> bool:
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, nbytes)
        except OSError:  # closed meanwhile: the next read reports it
            return False
        self._lowat = nbytes
        return True

    def try_receive_into(self, buf: memoryview) -> int | None:
        """Plain TCP only: the bytes already waiting, read into *buf* at once without blocking;
        ``None`` when none are (or on TLS, or on an error the next :meth:`receive_into` will
        report), ``0`` at EOF.  For a reader that wants to start work on the next chunk early
        (:meth:`trioaria.bt.crypto_stream.MseStream.prefetch`)."""
        if self.tls or not buf:
            return None
        try:
            return os.readv(self._sock.fileno(), [buf])
        except OSError:  # BlockingIOError: nothing waiting
            return None

    def try_send(self, data: bytes | bytearray | memoryview) -> int | None:
        """Plain TCP only: hand *data* to the kernel at once without blocking; the count it
        took, or ``None`` when it took nothing (a full send buffer, TLS, or an error the next
        :meth:`send_all` will report).  Not while a :meth:`send_all` is under way."""
        if self.tls or self._closed or not data:
            return None
        try:
            return os.write(self._sock.fileno(), data)
        except OSError:  # BlockingIOError: the buffer is full
            return None

    def is_readable(self) -> bool:
        """Whether a read would not block: on an idle keep-alive connection this means the
        server closed it (or sent garbage), so it must not be reused."""
        if self._closed:
            return True
        try:
            return self._sock.is_readable()
        except OSError:
            return True

    @property
    def closed(self) -> bool:
        """:meth:`aclose` or :meth:`close_nowait` was called."""
        return self._closed

    def close_nowait(self) -> None:
        """Close the socket at once (no TLS ``close_notify``); synchronous and idempotent."""
        if not self._closed:
            self._closed = True
            self._sock.close()

    async def aclose(self) -> None:
        """Close gracefully (TLS ``close_notify`` best effort, never blocking long)."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        if self.tls:
            with trio.move_on_after(1):
                try:
                    await self._stream.aclose()
                except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
        self._sock.close()
        await trio.lowlevel.checkpoint()


@dataclass(frozen=True, slots=True)
class Target:
    """One resolved address to connect to."""

    family: int
    sockaddr: tuple[Any, ...]

    @property
    def label(self) -> str:
        """``1.2.3.4:80`` or ``[::1]:80``: for messages."""
        host, port = self.sockaddr[0], self.sockaddr[1]
        return f"[{host}]:{port}" if self.family == socket.AF_INET6 else f"{host}:{port}"


def interleave(targets: list[Target]) -> list[Target]:
    """RFC 8305 §4 ("Sorting of Resolved Destination Addresses"): keep the resolver's order
    within each family, start with the family of the first answer and alternate, so that
    one dead family costs one Happy Eyeballs delay, not a timeout per address."""
    if not targets:
        return []
    first = [t for t in targets if t.family == targets[0].family]
    other = [t for t in targets if t.family != targets[0].family]
    ordered: list[Target] = []
    for i in range(max(len(first), len(other))):
        ordered += first[i : i + 1] + other[i : i + 1]
    return ordered


def ascii_host(host: str) -> str:
    """*host* without IPv6 brackets, a name in its ASCII form, as it goes into ``CONNECT``,
    SOCKS, SNI and the resolver alike: IDNA 2008 with UTS 46 mapping (RFC 5891; ``faß.de``
    is ``xn--fa-hia.de``), the encoding trio's resolver applies; ASCII names as they are.

    Raises:
        NameResolveError: a name that cannot be encoded, or with an empty or over-long label
            (exit 19).
    """
    host = host.strip("[]")
    if _is_literal(host):
        return host
    if not host.isascii():
        import idna  # trio's own dependency, for the same reason

        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise NameResolveError(f"could not resolve host name {host}: {exc}") from None
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not all(0 < len(label) < 64 for label in labels):
        raise NameResolveError(f"could not resolve host name {host}: an empty or too long label")
    return host


async def resolve(host: str, port: int, *, disable_ipv6: bool = False) -> list[Target]:
    """Resolve *host* (a name or an IP literal, brackets allowed) to connect targets in
    Happy Eyeballs order (:func:`interleave`); only IPv4 with *disable_ipv6*.

    Raises:
        NameResolveError: the name has no (usable) address (exit 19).
    """
    host = host.strip("[]")
    family = socket.AF_INET if disable_ipv6 else socket.AF_UNSPEC
    try:
        infos = await trio.socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        reason = exc.strerror or _describe(exc)
        raise NameResolveError(f"could not resolve host name {host}: {reason}") from exc
    except UnicodeError as exc:  # a name IDNA cannot encode ("exa..mple")
        raise NameResolveError(f"could not resolve host name {host}: {exc}") from None
    targets: list[Target] = []
    for fam, _type, _proto, _canon, sockaddr in infos:
        target = Target(int(fam), tuple(sockaddr))
        if fam in (socket.AF_INET, socket.AF_INET6) and target not in targets:
            targets.append(target)
    if not targets:
        which = "IPv4 address" if disable_ipv6 else "address"
        raise NameResolveError(f"could not resolve host name {host}: no {which}")
    return interleave(targets)


def os_cause(exc: BaseException) -> str:
    """The OS cause of *exc* in words: ``Connection refused (ECONNREFUSED)``."""
    if isinstance(exc, OSError) and exc.errno:
        text = exc.strerror or os.strerror(exc.errno)
        name = errno.errorcode.get(exc.errno)
        return f"{text} ({name})" if name else text
    return _describe(exc)


def begin_connect(target: Target, *, rcvbuf: int = 0) -> socket.socket:
    """A non-blocking TCP socket whose connect to *target* has been started (not awaited).

    ``SO_RCVBUF`` is set before the SYN, so the window scale offered fits it.  The caller
    may do other work (FTP: ``REST``/``RETR``) before :func:`finish_connect`.

    Raises:
        OSError: the connect failed at once.
    """
    sock = socket.socket(target.family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        err = sock.connect_ex(target.sockaddr)
        if err not in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            raise OSError(err, os.strerror(err))
    except BaseException:
        sock.close()
        raise
    return sock


async def finish_connect(sock: socket.socket) -> trio.SocketStream:
    """Wait for the handshake :func:`begin_connect` started; the socket as a trio stream.

    The socket is closed if the handshake fails or the wait is cancelled.

    Raises:
        OSError: the connect failed (``SO_ERROR``).
    """
    try:
        await trio.lowlevel.wait_writable(sock)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(trio.socket.from_stdlib_socket(sock))


def _connect_failure(host: str, port: int, failures: list[tuple[Target, OSError]]) -> ConnectError:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if len(failures) == 1:
        target, exc = failures[0]
        shown = where if target.label == where else f"{where} ({target.sockaddr[0]})"
        message = f"failed to establish connection to {shown}: {os_cause(exc)}"
    else:
        causes = "; ".join(f"{t.label}: {os_cause(e)}" for t, e in failures)
        message = f"failed to establish connection to {where}: {causes}"
    err = ConnectError(message)
    err.__cause__ = (
        failures[0][1] if len(failures) == 1 else ExceptionGroup(message, [e for _, e in failures])
    )
    return err


async def open_tcp(
    host: str,
    port: int,
    *,
    disable_ipv6: bool = False,
    rcvbuf: int = 0,
    delay: float = HAPPY_EYEBALLS_DELAY,
) -> trio.SocketStream:
    """Connect to *host*:*port* with Happy Eyeballs (RFC 8305): the one TCP connect of every
    driver (HTTP, FTP control, SFTP).

    The addresses from :func:`resolve` are tried in order; the next attempt starts when the
    previous one failed or after *delay* seconds, whichever comes first, while earlier
    attempts keep running.  The first connection made wins and cancels the others (trio's
    ``open_tcp_stream`` is the template; ours also sets ``SO_RCVBUF`` before the SYN and
    names every address's OS cause when all fail).  No timeout here: wrap the call in
    :func:`connect_deadline`.

    Raises:
        NameResolveError: see :func:`resolve`.
        ConnectError: every address failed; the message names each OS cause.
    """
    targets = await resolve(host, port, disable_ipv6=disable_ipv6)
    winner: list[trio.SocketStream] = []
    failures: list[tuple[Target, OSError]] = []

    async def attempt(target: Target, failed: trio.Event) -> None:
        try:
            stream = await finish_connect(begin_connect(target, rcvbuf=rcvbuf))
        except OSError as exc:
            failures.append((target, exc))
            failed.set()
            return
        if winner:  # a photo finish: the race is already won
            stream.socket.close()
            return
        winner.append(stream)
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        for target in targets:
            failed = trio.Event()
            nursery.start_soon(attempt, target, failed)
            with trio.move_on_after(delay):
                await failed.wait()
    if winner:
        return winner[0]
    raise _connect_failure(host.strip("[]"), port, failures)


#: The receive buffer asked for on bulk-data connections (HTTP bodies, FTP data).  With it each
#: ``recv_into`` fills the whole 1 MiB read buffer instead of 150-500 KiB: ~40 % fewer reads and
#: ~15 % less CPU at 16 connections on loopback (bench/README.md).
DATA_RCVBUF = 4 << 20
_RCVBUF_GRANTED: dict[int, bool] = {}


def recv_buffer_size(option: int) -> int:
    """The ``SO_RCVBUF`` for data connections; 0 leaves the socket to the kernel's autotuning.

    A non-zero ``--socket-recv-buffer-size`` is used as given (aria2).  Otherwise
    :data:`DATA_RCVBUF` is used only if the OS grants all of it (checked once on a scratch
    socket): a smaller fixed buffer would switch autotuning off and could slow a long link.
    """
    if option > 0:
        return option
    granted = _RCVBUF_GRANTED.get(DATA_RCVBUF)
    if granted is None:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, DATA_RCVBUF)
                granted = probe.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= DATA_RCVBUF
        except OSError:
            granted = False
        _RCVBUF_GRANTED[DATA_RCVBUF] = granted
    return DATA_RCVBUF if granted else 0


async def open_stream(
    host: str,
    port: int,
    *,
    tls: TlsOptions | None,
    server_hostname: str | None = None,
    connect_timeout: float,
    disable_ipv6: bool = False,
    rcvbuf: int = 0,
    proxy: Proxy | None = None,
    proxy_tls: TlsOptions | None = None,
    user_agent: str | None = None,
) -> ByteStream:
    """Connect to *host*:*port* (Happy Eyeballs), then do the TLS handshake if *tls*.

    With *proxy*, the TCP connection goes to the proxy (TLS to it for an ``https://`` proxy,
    with *proxy_tls*), which is asked for a tunnel to *host*:*port* (HTTP ``CONNECT`` or
    SOCKS; :func:`trioaria.net.proxy_connect.establish_tunnel`); TLS to the origin then runs
    inside the tunnel.  ``socks5://`` and ``socks4://`` resolve *host* here; ``socks5h://``
    and ``socks4a://`` leave it to the proxy.

    Args:
        host: a name, an IPv4 literal or an IPv6 literal (brackets allowed).
        port: TCP port.
        tls: ``None`` for plain TCP; else the TLS settings.
        server_hostname: name for SNI and certificate matching (default: *host*).
        connect_timeout: seconds for resolving, connecting, the proxy's handshake and the
            TLS handshake together.
        disable_ipv6: only use IPv4 addresses (aria2 ``--disable-ipv6``).
        rcvbuf: ``SO_RCVBUF`` to set once connected (see :func:`recv_buffer_size`); 0: leave it.
        proxy: tunnel through this proxy (``None``: connect directly).
        proxy_tls: TLS settings for an ``https://`` proxy (default: :class:`TlsOptions`).
        user_agent: sent with ``CONNECT``.

    Raises:
        NameResolveError, ConnectError, NetworkError: see :func:`map_exceptions`.
        ProxyError: the proxy refused the tunnel or answered garbage.
        TimeoutError_: *connect_timeout* expired.
        OptionError: the TLS files could not be loaded.
    """
    host = ascii_host(host)
    ctx = make_ssl_context(tls) if tls is not None else None
    with connect_deadline(connect_timeout, f"connecting to {host}:{port}"):
        transport = await open_transport(
            host,
            port,
            disable_ipv6=disable_ipv6,
            rcvbuf=rcvbuf,
            proxy=proxy,
            proxy_tls=proxy_tls,
            user_agent=user_agent,
        )
        if ctx is None:
            return ByteStream(transport)
        tls_stream = TlsStream(transport, ctx, server_hostname=server_hostname or host)
        try:
            with map_exceptions():
                await tls_stream.do_handshake()
        except BaseException:
            transport_socket(transport).close()
            raise
        return ByteStream(tls_stream)


def transport_socket(transport: trio.SocketStream | TlsStream) -> trio.socket.SocketType:
    """The TCP socket under *transport* (under every TLS layer)."""
    inner: object = transport
    while isinstance(inner, TlsStream):
        inner = inner.transport_stream
    assert isinstance(inner, trio.SocketStream)
    return inner.socket


async def open_transport(
    host: str,
    port: int,
    *,
    disable_ipv6: bool = False,
    rcvbuf: int = 0,
    proxy: Proxy | None = None,
    proxy_tls: TlsOptions | None = None,
    user_agent: str | None = None,
) -> trio.SocketStream | TlsStream:
    """A byte stream to *host*:*port*: a TCP connection (Happy Eyeballs), or, with *proxy*,
    a tunnel to it through the proxy (see :func:`open_stream`).  No deadline here: wrap the
    call in :func:`connect_deadline`.  The socket is closed if anything fails.

    Raises:
        NameResolveError, ConnectError, NetworkError, ProxyError: as :func:`open_stream`.
    """
    host = ascii_host(host)
    if proxy is None:
        return await open_tcp(host, port, disable_ipv6=disable_ipv6, rcvbuf=rcvbuf)
    from .proxy_connect import establish_tunnel  # CONNECT and SOCKS: only through a proxy

    try:
        tcp = await open_tcp(proxy.host, proxy.port, disable_ipv6=disable_ipv6, rcvbuf=rcvbuf)
    except NetworkError as exc:  # say that it is the proxy that cannot be reached
        exc.message = f"cannot reach the proxy {proxy.label}: {exc.message}"
        raise
    transport: trio.SocketStream | TlsStream = tcp
    try:
        if proxy.tls:
            proxy_ctx = make_ssl_context(proxy_tls or TlsOptions())
            transport = TlsStream(tcp, proxy_ctx, server_hostname=proxy.host)
            with map_exceptions():
                await transport.do_handshake()
        destination = host
        if proxy.scheme in ("socks5", "socks4") and not _is_literal(host):
            v4_only = disable_ipv6 or proxy.scheme == "socks4"
            destination = (await resolve(host, port, disable_ipv6=v4_only))[0].sockaddr[0]
        with map_exceptions():
            await establish_tunnel(transport, proxy, destination, port, user_agent=user_agent)
    except BaseException:
        tcp.socket.close()
        raise
    return transport


def _is_literal(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
