"""FtpSource: one ``ftp://``, ``ftps://`` or ``ftpes://`` mirror as a RangeSource (driver).

Range and resume rules (RFC 3659 §4-5, aria2 ``FtpNegotiationCommand``):

* The probe logs in (or takes a pooled connection), changes to the file's directory and asks
  ``SIZE`` and ``MDTM``.  A 213 to ``SIZE`` gives the length and means segments are possible
  (every segment is ``REST offset`` + ``RETR``); without it the file is read once, from 0,
  and its length is what arrives.  ``MDTM`` becomes ``ProbeResult.last_modified``: on resume
  the group refuses (exit 8) a remote file newer than the control file, and ``-R`` sets the
  local file's time from it.
* The probe's stream is lazy: its ``RETR`` is sent on the first read, so a resumed download
  whose first missing byte is not 0 costs no aborted transfer.
* Every new control connection checks ``SIZE`` once per file against the download's length: a
  file that changed size is :class:`~trioaria.base.errors.CannotResumeError` (exit 8).
* A data connection that ends before its segment is a :class:`~trioaria.base.errors.NetworkError`
  (retried); the bytes that did arrive are kept.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from ..base import errors
from ..base.sources import ProbeResult, RangeSource, RangeStream
from ..net.connect import TlsOptions
from ..net.proxy import Proxy, ProxySettings
from .auth import credentials_for
from .client import DataTransfer, FtpConnection, PoolKey, data_rcvbuf, get_pool, open_pool
from .proto import parse_ftp_url, parse_mdtm, parse_size

__all__ = ["FtpSource"]

log = logging.getLogger("trioaria.ftp")


class _FtpStream(RangeStream):
    """``[start, end)`` of the file over one data connection (opened on first read if lazy)."""

    def __init__(
        self,
        source: FtpSource,
        conn: FtpConnection,
        start: int,
        end: int | None,
        transfer: DataTransfer | None = None,
    ) -> None:
        self._source = source
        self._conn = conn
        self._pos = start
        self._end = end
        self._transfer = transfer
        self._finished = False

    async def read_into(self, buf: memoryview) -> int:
        if self._transfer is None:
            self._transfer = await self._source._start(self._conn, self._pos)
        end = self._end if self._end is not None else self._source.total_length
        if end is not None:
            if self._pos >= end:
                await trio.lowlevel.checkpoint()
                return 0
            buf = buf[: end - self._pos]
        n = await self._transfer.read_into(buf)
        if n == 0 and end is not None and self._pos < end:
            raise errors.NetworkError(
                f"{self._source.uri}: data connection closed at byte {self._pos} before {end}"
            )
        if n == 0 and end is None:
            await self._transfer.end_of_data()  # only the final reply tells a cut file
        self._pos += n
        return n

    async def finish(self, *, drained: bool) -> None:
        if self._finished:
            await trio.lowlevel.checkpoint()
            return
        self._finished = True
        reusable = True
        if self._transfer is not None:
            reusable = await self._transfer.close()
        self._source._release(self._conn, reusable)


def _tunnel_proxy(scheme: str, host: str, options: Any) -> Proxy | None:
    """The proxy that tunnels this mirror's connections (``--ftp-proxy``/``--all-proxy``
    with ``--proxy-method=tunnel``, any SOCKS proxy, or any proxy for ftps/ftpes); ``None``
    when there is none.  A GET-forwarding HTTP proxy never gets here: such ``ftp://`` URIs
    are fetched by the HTTP driver (:func:`trioaria.engine.source_factory.make_source`)."""
    route = ProxySettings.from_options(options.get).route(scheme, host)
    if route is None:
        return None
    if not route.tunnel:
        raise errors.LocalProtocolError(f"{scheme}:// through a forwarding proxy is HTTP's job")
    return route.proxy


class FtpSource(RangeSource):
    """One FTP/FTPS mirror URI."""

    def __init__(self, uri: str, options: Any) -> None:
        self.uri = uri
        try:
            url = parse_ftp_url(uri)
        except errors.LocalProtocolError as exc:
            raise errors.TrioariaError(str(exc), retryable=False) from None
        self._url = url
        self.host_key = f"{url.host}:{url.port}"
        self._options = options
        user, password = credentials_for(url.host, url.user, url.password, options)
        type_code = url.type_code or ("a" if options.get("ftp-type") == "ascii" else "i")
        self._key = PoolKey(
            scheme=url.scheme,
            host=url.host,
            port=url.port,
            user=user,
            password=password,
            tls=TlsOptions.from_options(options) if url.tls else None,
            type_code=type_code,
            proxy=_tunnel_proxy(url.scheme, url.host, options),
        )
        self._proxy_tls = TlsOptions.from_options(options)
        self._passive = bool(options.get("ftp-pasv"))
        self._reuse = bool(options.get("ftp-reuse-connection"))
        self._rcvbuf = data_rcvbuf(int(options.get("socket-recv-buffer-size") or 0))
        self.total_length: int | None = None

    # --- connections ---------------------------------------------------------------------

    async def _acquire(self) -> FtpConnection:
        conn = (await open_pool()).acquire(self._key) if self._reuse else None
        if conn is None:
            o = self._options
            conn = await FtpConnection.open(
                self._url,
                self._key,
                connect_timeout=o.get("connect-timeout"),
                read_timeout=o.get("timeout"),
                disable_ipv6=bool(o.get("disable-ipv6")),
                proxy_tls=self._proxy_tls,
            )
        conn.data_rcvbuf = self._rcvbuf
        return conn

    def _release(self, conn: FtpConnection, reusable: bool = True) -> None:
        if reusable and self._reuse and conn.usable:
            get_pool().release(conn)
        else:
            conn.close_nowait()

    async def _start(self, conn: FtpConnection, offset: int) -> DataTransfer:
        return await conn.start_retr(self._url.filename, offset, passive=self._passive)

    async def _size(self, conn: FtpConnection) -> int | None:
        reply = await conn.command("SIZE", self._url.filename, check=False)
        size = parse_size(reply) if reply.code == 213 else None
        conn.checked[self._url.path] = size
        return size

    # --- RangeSource -------------------------------------------------------------------------

    async def probe(self) -> ProbeResult:
        conn = await self._acquire()
        try:
            await conn.change_dir(self._url.dirs)
            total = await self._size(conn)
            if self.total_length is not None and total is not None and total != self.total_length:
                raise errors.CannotResumeError(
                    f"{self.uri}: remote size is {total}, expected {self.total_length}"
                )
            mtime = None
            reply = await conn.command("MDTM", self._url.filename, check=False)
            if reply.code == 213:
                mtime = parse_mdtm(reply)
            self.total_length = total
            transfer = None
            if total is None:  # no SIZE: find out now whether the file exists at all
                transfer = await self._start(conn, 0)
        except BaseException:
            conn.close_nowait()
            raise
        return ProbeResult(
            total_length=total,
            supports_ranges=total is not None,
            filename=None,
            last_modified=mtime,
            stream=_FtpStream(self, conn, 0, None, transfer),
        )

    async def open_range(self, start: int, end: int | None) -> RangeStream:
        conn = await self._acquire()
        try:
            await conn.change_dir(self._url.dirs)
            if self.total_length is not None and self._url.path not in conn.checked:
                size = await self._size(conn)
                if size is not None and size != self.total_length:
                    raise errors.CannotResumeError(
                        f"{self.uri}: remote size changed from {self.total_length} to {size}"
                    )
            transfer = await self._start(conn, start)
        except errors.TrioariaError:
            if conn.usable:  # a refused command (550...) leaves the channel in step
                self._release(conn)
            else:
                conn.close_nowait()
            raise
        except BaseException:
            conn.close_nowait()
            raise
        return _FtpStream(self, conn, start, end, transfer)

    def expect_length(self, total_length: int) -> None:
        self.total_length = total_length

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()
