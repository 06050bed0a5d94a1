"""HttpSource: one http(s):// mirror as a :class:`~trioaria.sources.RangeSource` (driver).

Range and resume rules (RFC 9110 §14 and §13.1.5):

* The probe asks for ``Range: bytes=0-``.  A 206 proves ranges work and gives the total length
  from ``Content-Range``; a 200 gives it from ``Content-Length`` (``None`` when chunked) and
  ranges are assumed only with ``Accept-Ranges: bytes``.
* Every later ranged request carries ``If-Range`` with the first response's ETag (or
  Last-Modified), so a file that changes mid-download answers 200 instead of mixing versions:
  that is reported as :class:`~trioaria.errors.CannotResumeError` (exit 8), as is a
  ``Content-Range`` total that differs from the first one.
* A 206 whose ``Content-Range`` does not start where we asked is a lying server
  (:class:`~trioaria.errors.HttpProtocolError`), never silently written.
"""

from __future__ import annotations

import base64
import email.utils
from typing import Any

from .. import errors
from ..sources import ProbeResult, RangeSource, RangeStream
from ..storage.naming import name_from_url
from .client import ConnectionPool, HttpConnection, open_response
from .proto import HttpRequest, ResponseInfo, check_range_response, classify_status, parse_url

__all__ = ["HttpSource"]


def _tls_options(options: Any) -> Any:
    from ..net import TlsOptions

    return TlsOptions(
        check_certificate=bool(options.get("check-certificate")),
        ca_certificate=options.get("ca-certificate") or None,
        certificate=options.get("certificate") or None,
        private_key=options.get("private-key") or None,
        min_tls_version=options.get("min-tls-version") or "TLSv1.2",
    )


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class _HttpStream(RangeStream):
    def __init__(self, pool: ConnectionPool, conn: HttpConnection, keep_alive: bool) -> None:
        self._pool = pool
        self._conn = conn
        self._keep_alive = keep_alive

    async def read_into(self, buf: memoryview) -> int:
        return await self._conn.read_into(buf)

    async def finish(self, *, drained: bool) -> None:
        if drained and self._keep_alive and self._conn.reusable:
            self._pool.release(self._conn)
        else:
            await self._conn.aclose()


class HttpSource(RangeSource):
    """One HTTP or HTTPS mirror URI."""

    def __init__(self, uri: str, options: Any) -> None:
        self.uri = uri
        parsed = parse_url(uri)
        self.host_key = f"{parsed.host}:{parsed.port}"
        self._options = options
        self._url = uri
        self._pool = ConnectionPool()
        self._tls = _tls_options(options)
        self._validator: str | None = None
        self._total: int | None = None
        self._ranged = False

    # --- request building ---------------------------------------------------------------

    def _headers(self) -> tuple[tuple[str, str], ...]:
        o = self._options
        headers: list[tuple[str, str]] = [("User-Agent", o.get("user-agent") or "aria2/1.37.0")]
        referer = o.get("referer")
        if referer:
            headers.append(("Referer", self.uri if referer == "*" else referer))
        user, passwd = o.get("http-user"), o.get("http-passwd")
        if user:
            token = base64.b64encode(f"{user}:{passwd or ''}".encode()).decode()
            headers.append(("Authorization", f"Basic {token}"))
        if not o.get("enable-http-keep-alive"):
            headers.append(("Connection", "close"))
        for line in o.get("header") or ():
            name, sep, value = str(line).partition(":")
            if sep:
                headers.append((name.strip(), value.strip()))
        return tuple(headers)

    async def _open(
        self, start: int, end: int | None, *, probe: bool
    ) -> tuple[HttpConnection, ResponseInfo]:
        o = self._options
        req = HttpRequest(
            method="GET",
            url=self._url,
            range_start=start,
            range_end=None if end is None else end - 1,
            headers=self._headers(),
            if_range=None if probe else self._validator,
        )
        conn, info, final_url = await open_response(
            self._pool,
            req,
            tls=self._tls,
            connect_timeout=o.get("connect-timeout"),
            read_timeout=o.get("timeout"),
            disable_ipv6=bool(o.get("disable-ipv6")),
        )
        self._url = final_url
        return conn, info

    # --- RangeSource --------------------------------------------------------------------

    async def probe(self) -> ProbeResult:
        conn, info = await self._open(0, None, probe=True)
        try:
            if info.status == 416:
                # An empty entity has no byte 0: ask again without a Range header.
                await conn.aclose()
                conn, info = await self._open_plain()
            if info.status not in (200, 206):
                classify_status(info)
                raise errors.HttpProtocolError(
                    f"unexpected HTTP status {info.status} for {self.uri}"
                )
            if info.status == 206:
                check_range_response(info, 0, None)
                self._ranged = True
            total = info.total_length
            self._total = total
            self._validator = info.etag or info.last_modified
        except BaseException:
            await conn.aclose()
            raise
        return ProbeResult(
            total_length=total,
            supports_ranges=total is not None and (info.status == 206 or info.accept_ranges),
            # aria2 names the file after the last URL of a redirect chain (Request::getFile)
            filename=info.content_disposition_filename
            or (name_from_url(self._url) if self._url != self.uri else None),
            etag=info.etag,
            last_modified=_http_date(info.last_modified),
            stream=_HttpStream(self._pool, conn, bool(self._options.get("enable-http-keep-alive"))),
        )

    async def _open_plain(self) -> tuple[HttpConnection, ResponseInfo]:
        o = self._options
        req = HttpRequest(method="GET", url=self._url, headers=self._headers())
        conn, info, self._url = await open_response(
            self._pool,
            req,
            tls=self._tls,
            connect_timeout=o.get("connect-timeout"),
            read_timeout=o.get("timeout"),
            disable_ipv6=bool(o.get("disable-ipv6")),
        )
        return conn, info

    async def open_range(self, start: int, end: int | None) -> RangeStream:
        conn, info = await self._open(start, end, probe=False)
        try:
            if info.status == 206:
                check_range_response(info, start, None if end is None else end - 1)
                total = info.total_length
                if self._total is not None and total is not None and total != self._total:
                    raise errors.CannotResumeError(
                        f"{self.uri}: remote length changed from {self._total} to {total}"
                    )
                if self._total is None:
                    self._total = total
            elif info.status == 200:
                whole = start == 0 and (end is None or end == info.total_length)
                if not whole:
                    if self._ranged or self._validator:
                        raise errors.CannotResumeError(
                            f"{self.uri}: the server sent the whole file for a range request "
                            "(the file changed, or ranges are not supported)"
                        )
                    raise errors.HttpProtocolError(
                        f"{self.uri}: the server ignored the Range header", retryable=False
                    )
                if self._total is not None and info.total_length not in (None, self._total):
                    raise errors.CannotResumeError(
                        f"{self.uri}: remote length changed from {self._total} to {info.total_length}"
                    )
            elif info.status == 416:
                raise errors.HttpProtocolError(f"{self.uri}: 416 Requested Range Not Satisfiable")
            else:
                classify_status(info)
                raise errors.HttpProtocolError(
                    f"unexpected HTTP status {info.status} for {self.uri}"
                )
        except BaseException:
            await conn.aclose()
            raise
        return _HttpStream(self._pool, conn, bool(self._options.get("enable-http-keep-alive")))

    def expect_length(self, total_length: int) -> None:
        self._total = total_length

    async def aclose(self) -> None:
        await self._pool.aclose()
