"""HttpSource: one http(s):// mirror as a :class:`~trioaria.base.sources.RangeSource` (driver).

Range and resume rules (RFC 9110 §14 and §13.1.5):

* The probe asks for ``Range: bytes=0-``.  A 206 proves ranges work and gives the total length
  from ``Content-Range``; a 200 gives it from ``Content-Length`` (``None`` when chunked) and
  ranges are assumed only with ``Accept-Ranges: bytes``.  With ``--use-head`` a ``HEAD``
  comes first (aria2); its answer alone is used when it gives a length and ``Accept-Ranges``.
* Every later ranged request carries ``If-Range`` with the first response's ETag (or
  Last-Modified), so a file that changes mid-download answers 200 instead of mixing versions:
  that is reported as :class:`~trioaria.base.errors.CannotResumeError` (exit 8), as is a
  ``Content-Range`` total that differs from the first one.
* A 206 whose ``Content-Range`` does not start where we asked is a lying server
  (:class:`~trioaria.base.errors.HttpProtocolError`), never silently written.

Request headers follow aria2's ``HttpRequest::createRequest``: ``User-Agent`` (``-U``),
``Referer`` (``--referer``, ``*`` = the URI), ``Authorization: Basic`` (RFC 7617) from
``--http-user``/``--http-passwd`` (credentials in the URI win; with
``--http-auth-challenge`` they are sent only after a 401), ``Cache-Control``/``Pragma:
no-cache`` (``--http-no-cache``), ``Connection: close`` (``--enable-http-keep-alive=false``),
``If-Modified-Since`` (``--conditional-get``: the local file's mtime when it exists without a
control file; a 304 means "already up to date") and every ``--header``.

``--http-accept-gzip`` sends ``Accept-Encoding: deflate, gzip`` on the probe only.  A probe
answer with ``Content-Encoding: gzip``/``deflate`` is decoded on the fly
(:mod:`trioaria.http.gzip`); its decoded length is unknown, so the download runs over that one
connection, never split.  A probe answered without a content coding proves the identity
length, and the later range requests do not offer codings at all (a ranged body must be the
identity bytes).

``--enable-http-pipelining`` (aria2: "Enable HTTP/1.1 pipelining"): :attr:`HttpSource.pipelining`
tells the download group that a stream may send the request for its connection's next segment
before its own body is read (:meth:`_HttpStream.pipeline`).  That next range comes back as a
stream whose first read reads the pipelined response head and checks it exactly as
:meth:`HttpSource.open_range` does; if the server closed the connection instead of answering,
the range is requested again on a fresh connection.  As in aria2 (``HttpRequest.cc``),
pipelining implies keep-alive: ``Connection: close`` is not sent even with
``--enable-http-keep-alive=false``.
"""

from __future__ import annotations

import logging
import os
import secrets
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..base import errors
from ..base.sources import ProbeResult, RangeSource, RangeStream
from ..ftp.auth import load_netrc
from ..net.connect import TlsOptions, recv_buffer_size
from ..storage.naming import apply_dir, control_file_path, name_from_url
from .client import ConnectionPool, HttpConnection, SchemeRedirect, open_response, with_cookies
from .cookie_files import run_jar
from .gzip import ContentDecoder, content_encoding
from .proto import (
    WANT_DIGEST,
    HttpRequest,
    ResponseInfo,
    basic_auth_header,
    check_range_response,
    classify_status,
    parse_content_disposition,
    parse_http_date,
    parse_url,
)

if TYPE_CHECKING:
    from ..net.proxy import ProxySettings
    from .digest_auth import DigestAuth

__all__ = ["FOLLOWED_SCHEMES", "HttpSource"]

log = logging.getLogger("trioaria.http")

_DECODE_READ = 64 * 1024

#: RFC 5854 §7 and Metalink 3 media types, offered in ``Accept`` with ``--follow-metalink``.
METALINK_CONTENT_TYPES = ("application/metalink4+xml", "application/metalink+xml")

#: Schemes an HTTP redirect may lead to, served by another driver (aria2 follows a
#: ``Location: ftp://...``; SFTP too, since we have it).
FOLLOWED_SCHEMES = frozenset({"ftp", "ftps", "ftpes", "sftp"})


def _http_date(value: str | None) -> float | None:
    return parse_http_date(value) if value else None


def _proxy_settings(options: Any) -> ProxySettings | None:
    """The download's proxies, or ``None`` when no proxy option is set (then the proxy and
    SOCKS modules are never imported: start-up time, issue 15)."""
    if not any(options.get(f"{p}-proxy") for p in ("http", "https", "ftp", "all")):
        return None
    from ..net.proxy import ProxySettings

    return ProxySettings.from_options(options.get)


def _metalink_fields(info: ResponseInfo) -> dict[str, Any]:
    """Content-Type, ``Link`` and ``Digest`` of a probe answer (RFC 6249 Metalink/HTTP)."""
    digests = info.header_list("digest")
    return {
        "content_type": info.header("content-type"),
        "links": tuple(info.header_list("link")),
        "digest": ", ".join(digests) if digests else None,
    }


class _HttpStream(RangeStream):
    def __init__(self, source: HttpSource, conn: HttpConnection, keep_alive: bool) -> None:
        self._source = source
        self._pool = source._pool
        self._conn = conn
        self._keep_alive = keep_alive
        self._next: _PipelinedStream | None = None

    async def read_into(self, buf: memoryview) -> int:
        return await self._conn.read_into(buf)

    async def pipeline(self, start: int, end: int) -> RangeStream | None:
        """Send ``GET [start, end)`` on this connection now (one request ahead at most)."""
        conn = self._conn
        if not self._source.pipelining or self._next is not None or not conn.can_pipeline:
            return None
        req = self._source._request("GET", start, end - 1, probe=False)
        if parse_url(req.url).origin != conn.origin:
            return None  # redirected elsewhere since this connection was opened
        req = with_cookies(req, run_jar(self._source._options))
        await conn.pipeline(req)
        log.debug("pipelined GET %s bytes=%d-%d", req.url, start, end - 1)
        self._next = _PipelinedStream(self._source, conn, req, start, end)
        return self._next

    async def finish(self, *, drained: bool) -> None:
        conn = self._conn
        if self._next is not None and drained and conn.body_done and conn.alive:
            return  # the pipelined range's stream owns the connection now
        if drained and self._keep_alive and conn.reusable:
            self._pool.release(conn)
        else:
            await conn.aclose()  # a pipelined answer cannot be skipped: it goes too


class _PipelinedStream(RangeStream):
    """A range already requested on a busy connection; the first read reads its head."""

    def __init__(
        self, source: HttpSource, conn: HttpConnection, req: HttpRequest, start: int, end: int
    ) -> None:
        self._source = source
        self._conn = conn
        self._req = req
        self._range = (start, end)
        self._stream: RangeStream | None = None
        self._finished = False

    async def _opened(self) -> RangeStream:
        if self._stream is None:
            if self._finished:
                raise errors.LocalProtocolError("read from a finished stream")
            start, end = self._range
            pipelined = self._conn if self._conn.alive else None
            self._stream = await self._source._open(start, end, pipelined=(pipelined, self._req))
        return self._stream

    async def read_into(self, buf: memoryview) -> int:
        return await (await self._opened()).read_into(buf)

    async def pipeline(self, start: int, end: int) -> RangeStream | None:
        # the next request goes behind this one's answer: read its head first
        return await (await self._opened()).pipeline(start, end)

    async def finish(self, *, drained: bool) -> None:
        self._finished = True
        if self._stream is not None:
            await self._stream.finish(drained=drained)
        else:
            await self._conn.aclose()  # never read: its answer cannot be skipped safely


class _DecodingStream(RangeStream):
    """A gzip/deflate body, decoded while it is read (length unknown until the end)."""

    def __init__(self, raw: _HttpStream, encoding: str) -> None:
        self._raw = raw
        self._decoder = ContentDecoder(encoding)
        self._scratch = bytearray(_DECODE_READ)
        self._raw_done = False

    async def read_into(self, buf: memoryview) -> int:
        decoder = self._decoder
        while True:
            n = decoder.decode_into(buf)
            if n:
                return n
            if self._raw_done:
                return 0
            if decoder.done:
                # read the rest of the encoded body (normally nothing) so the
                # connection can be reused
                while await self._raw.read_into(memoryview(self._scratch)):
                    pass
                self._raw_done = True
                return 0
            got = await self._raw.read_into(memoryview(self._scratch))
            if got == 0:
                self._raw_done = True
                decoder.finish()  # raises on a truncated compressed stream
                return 0
            decoder.feed(bytes(self._scratch[:got]))

    async def finish(self, *, drained: bool) -> None:
        await self._raw.finish(drained=drained and self._raw_done)


class HttpSource(RangeSource):
    """One HTTP or HTTPS mirror URI.

    Args:
        uri: the ``http(s)://`` URI.
        options: the download's options (any ``.get(name)``).
        follow: builds the source of a URI of another scheme
            (:func:`trioaria.engine.source_factory.make_source`).  A redirect to ``ftp://``,
            ``ftps://``, ``ftpes://`` or ``sftp://`` is then served by that source from here
            on: :meth:`probe`, :meth:`open_range`, :meth:`expect_length` and :meth:`aclose`
            go to it and :attr:`host_key` becomes its host.  Without *follow*, or for any
            other scheme, such a redirect ends with a one-line error quoting the
            ``Location`` as sent (exit 1, not retried).
    """

    def __init__(
        self, uri: str, options: Any, *, follow: Callable[[str], RangeSource] | None = None
    ) -> None:
        self.uri = uri
        self._follow = follow
        #: the source a redirect to another scheme handed this URI to
        self._delegate: RangeSource | None = None
        self._retired: list[RangeSource] = []
        self._asked_if_modified = False  # the last probe carried If-Modified-Since
        self.pipelining = bool(options.get("enable-http-pipelining"))
        parsed = parse_url(uri)
        self.host_key = f"{parsed.host}:{parsed.port}"
        self._options = options
        self._url = uri
        # --http-user and an Authorization --header belong to the origin the user named: they
        # are not sent once a redirect has left it (http/client.py drops them on the hop)
        self._origin = parsed.origin
        self._pool = ConnectionPool(
            rcvbuf=recv_buffer_size(int(options.get("socket-recv-buffer-size") or 0)),
            proxies=_proxy_settings(options),
        )
        self._tls = TlsOptions.from_options(options)
        self._validator: str | None = None
        self._total: int | None = None
        self._ranged = False
        # --http-auth-challenge: credentials only after the server asked for them (aria2
        # AuthConfigFactory::activateBasicCred on a 401)
        self._auth_active = not options.get("http-auth-challenge")
        self._expected_digest: tuple[str, bytes] | None = None  # RFC 6249 §6 (expect_digest)
        self._digest_auth: DigestAuth | None = None  # set by the first Digest challenge
        self._digest_origin: tuple[str, str, int] | None = None  # the origin that challenged
        self._digest_url = ""  # the URL whose 401 the current answer answers
        self._conditional = True  # --conditional-get applies (not to a retry this run began)
        self._digest_tries = 0

    # --- request building ---------------------------------------------------------------

    def _headers(self, *, probe: bool = False) -> tuple[tuple[str, str], ...]:
        o = self._options
        headers: list[tuple[str, str]] = [("User-Agent", o.get("user-agent") or "aria2/1.37.0")]
        referer = o.get("referer")
        if referer:
            headers.append(("Referer", self.uri if referer == "*" else referer))
        # credentials in the URI are always sent and win over --http-user and .netrc (aria2);
        # after a Digest challenge, every request answers it instead (RFC 7616)
        if self._digest_auth is None:
            creds = self._option_credentials()
            if creds is not None and self._auth_active and parse_url(self._url).userinfo is None:
                headers.append(basic_auth_header(*creds))
        if (
            probe
            and str(o.get("follow-metalink") or "false") != "false"
            and not self._has_header("accept")
        ):
            # aria2 HttpRequest "transparent metalink": a server may answer with the document
            headers.append(("Accept", "*/*," + ",".join(METALINK_CONTENT_TYPES)))
        if not o.get("no-want-digest-header") and not self._has_header("want-digest"):
            headers.append(("Want-Digest", WANT_DIGEST))  # RFC 3230 §4.3.1, as aria2 sends it
        if probe and o.get("http-accept-gzip"):
            headers.append(("Accept-Encoding", "deflate, gzip"))
        if o.get("http-no-cache"):
            headers += [("Cache-Control", "no-cache"), ("Pragma", "no-cache")]
        if not self._keep_alive():
            headers.append(("Connection", "close"))
        if probe:
            since = self._if_modified_since()
            self._asked_if_modified = since is not None
            if since is not None:
                headers.append(("If-Modified-Since", since))
        away = parse_url(self._url).origin != self._origin
        for line in o.get("header") or ():
            name, sep, value = str(line).partition(":")
            if sep and name.strip():
                name = name.strip()
                if away and name.lower() == "authorization":
                    continue
                if name.lower() == "cookie":
                    name = "Cookie"  # told apart from the jar's "cookie" (client.with_cookies)
                headers.append((name, value.strip()))
        return tuple(headers)

    def _has_header(self, name: str) -> bool:
        """A ``--header`` of this name was given (it replaces the built-in one, as aria2)."""
        return any(
            str(line).partition(":")[0].strip().lower() == name
            for line in self._options.get("header") or ()
        )

    def _check_digest(self, info: ResponseInfo) -> None:
        """RFC 6249 §6 / RFC 3230: a ``Digest`` that disagrees with the known one fails."""
        if self._expected_digest is None:
            return
        values = info.header_list("digest")
        if not values:
            return
        from ..storage.checksum import parse_digest_header  # only with --checksum or Metalink

        algorithm, digest = self._expected_digest
        got = parse_digest_header(", ".join(values)).get(algorithm)
        if got is not None and got != digest:
            raise errors.HttpProtocolError(
                f"{self.uri}: Invalid hash found in Digest header field ({algorithm})",
                retryable=False,
            )

    def _option_credentials(self) -> tuple[str, str] | None:
        """``--http-user``/``--http-passwd``, else the ``.netrc`` entry for the host (its
        ``default`` entry is not used for HTTP, as aria2's ``HttpAuthResolver``).  An
        ``ftp://`` URI fetched by a forwarding proxy logs in with ``--ftp-user`` instead (squid
        takes the FTP login from ``Authorization``)."""
        o = self._options
        prefix = "ftp" if self._url.lower().startswith("ftp:") else "http"
        user = o.get(f"{prefix}-user")
        if user and parse_url(self._url).origin == self._origin:
            return str(user), str(o.get(f"{prefix}-passwd") or "")
        netrc = load_netrc(o)
        entry = netrc.find(parse_url(self._url).host, ignore_default=True) if netrc else None
        if entry is not None and entry.login:
            return entry.login, entry.password
        return None

    def _credentials(self) -> tuple[str, str] | None:
        """The user and password for a Digest answer: the URI's, else the options'."""
        userinfo = parse_url(self._url).userinfo
        if userinfo is not None:
            user, _, password = userinfo.partition(":")
            return urllib.parse.unquote(user), urllib.parse.unquote(password)
        return self._option_credentials()

    def _answer_challenge(self, exc: errors.AuthError) -> bool:
        """After a 401: answer a Digest challenge (RFC 7616 §3.3) if we have credentials and
        have not yet answered this nonce (a ``stale=true`` challenge renews it).  Whether
        the request should be sent again."""
        from .digest_auth import DigestAuth, parse_challenges, pick_digest  # after a 401 only

        challenge = pick_digest(parse_challenges(exc.challenges))
        creds = self._credentials()
        if challenge is None or creds is None:
            return False
        old = self._digest_auth
        if (
            old is not None
            and old.nonce == challenge.params["nonce"]
            and (exc.url is None or exc.url == self._digest_url)
        ):
            return False  # this nonce was answered for this URL and refused: wrong credentials
        if old is not None and challenge.params.get("stale", "").lower() != "true":
            self._digest_tries += 1
            if self._digest_tries > 1:
                return False
        if old is not None and old.nonce == challenge.params["nonce"]:
            self._digest_url = self._url  # the same nonce, another URL: answered there too
            return True
        self._digest_auth = DigestAuth(challenge, *creds)
        self._digest_origin = parse_url(self._url).origin  # its answers go there only
        self._digest_url = self._url
        log.debug("answering the Digest challenge of realm %r", self._digest_auth.realm)
        return True

    def _local_target(self) -> str:
        """The path ``--conditional-get`` compares against: ``-d`` plus ``-o`` or the URI name
        (aria2 HttpRequestCommand: Content-Disposition is not known yet, and is ignored)."""
        o = self._options
        directory = os.path.abspath(os.path.expanduser(o.get("dir") or "."))
        return apply_dir(directory, o.get("out") or name_from_url(self.uri))

    def unconditional(self) -> None:
        self._conditional = False

    def _if_modified_since(self) -> str | None:
        if not self._options.get("conditional-get") or not self._conditional:
            return None
        path = self._local_target()
        try:
            if os.path.exists(control_file_path(path)):
                return None  # a download in progress is resumed, never skipped (aria2)
            mtime = os.stat(path).st_mtime
        except OSError:
            return None
        import email.utils  # --conditional-get only (start-up time)

        return email.utils.formatdate(mtime, usegmt=True)

    def _keep_alive(self) -> bool:
        # aria2 HttpRequest.cc: no "Connection: close" when pipelining is on
        return bool(self._options.get("enable-http-keep-alive")) or self.pipelining

    def _request(
        self, method: str, start: int | None, end: int | None, *, probe: bool
    ) -> HttpRequest:
        """The request for bytes ``start..end`` (``end`` inclusive)."""
        headers = self._headers(probe=probe)
        url = parse_url(self._url)
        if self._digest_auth is not None and url.origin == self._digest_origin:
            headers += (self._digest_auth.header(method, url.target, secrets.token_hex(16)),)
        return HttpRequest(
            method=method,
            url=self._url,
            range_start=start,
            range_end=end,
            headers=headers,
            if_range=None if probe or start is None else self._validator,
        )

    async def _send(
        self,
        method: str,
        start: int | None,
        end: int | None,
        *,
        probe: bool,
        pipelined: tuple[HttpConnection | None, HttpRequest] | None = None,
    ) -> tuple[HttpConnection, ResponseInfo]:
        """One request (redirects followed); a 401 under --http-auth-challenge is retried
        once with the credentials.  ``pipelined``: ``(connection, request)`` of a request
        already sent with :meth:`HttpConnection.pipeline` (connection ``None``: it was
        closed before answering; the same request is sent on another connection)."""
        o = self._options
        while True:
            conn_ahead: HttpConnection | None = None
            if pipelined is not None:
                (conn_ahead, req), pipelined = pipelined, None
            else:
                req = self._request(method, start, end, probe=probe)
            try:
                conn, info, final_url = await open_response(
                    self._pool,
                    req,
                    tls=self._tls,
                    connect_timeout=o.get("connect-timeout"),
                    read_timeout=o.get("timeout"),
                    disable_ipv6=bool(o.get("disable-ipv6")),
                    pipelined=conn_ahead,
                    cookies=run_jar(o),
                )
            except errors.AuthError as exc:
                if exc.status == 401 and exc.url is not None:
                    self._url = exc.url  # the challenge answers for that URL (RFC 7616 §3.4)
                if exc.status == 401 and self._answer_challenge(exc):
                    continue
                if exc.status == 401 and not self._auth_active and self._option_credentials():
                    self._auth_active = True  # "Try again with HTTP authentication" (aria2)
                    continue
                raise
            self._url = final_url
            return conn, info

    def _stream(self, conn: HttpConnection) -> _HttpStream:
        return _HttpStream(self, conn, self._keep_alive())

    def _filename(self, info: ResponseInfo) -> str | None:
        disposition = info.header("content-disposition")
        name = None
        if disposition is not None:
            name = parse_content_disposition(
                disposition,
                default_utf8=bool(self._options.get("content-disposition-default-utf8")),
            )
        # aria2 names the file after the last URL of a redirect chain (Request::getFile)
        return name or (name_from_url(self._url) if self._url != self.uri else None)

    # --- RangeSource --------------------------------------------------------------------

    def _switch(self, redirect: SchemeRedirect) -> RangeSource:
        """The source for a redirect's target (made once per target), or the error."""
        if redirect.scheme not in FOLLOWED_SCHEMES or self._follow is None:
            raise redirect
        current = self._delegate
        if current is not None and current.uri == redirect.target:
            return current
        delegate = self._follow(redirect.target)
        if current is not None:
            self._retired.append(current)
        if self._total is not None:
            delegate.expect_length(self._total)
        log.info("%s: redirected to %s", redirect.origin_url, redirect.target)
        self._delegate = delegate
        self.host_key = delegate.host_key
        return delegate

    async def probe(self) -> ProbeResult:
        if self._delegate is not None:
            return await self._delegate.probe()
        try:
            return await self._probe_http()
        except SchemeRedirect as redirect:
            delegate = self._switch(redirect)
        result = await delegate.probe()
        if result.filename is None:  # aria2 names the file after the last URI of the chain
            result.filename = name_from_url(delegate.uri)
        return result

    async def _probe_http(self) -> ProbeResult:
        if self._options.get("use-head"):
            result = await self._probe_head()
            if result is not None:
                return result
        conn, info = await self._send("GET", 0, None, probe=True)
        try:
            if info.status == 416:
                # An empty entity has no byte 0: ask again without a Range header.
                await conn.aclose()
                conn, info = await self._send("GET", None, None, probe=True)
            if info.status == 304:
                return self._not_modified(conn, info)  # releases or closes conn
            if info.status not in (200, 206):
                classify_status(info)
                raise errors.HttpProtocolError(
                    f"unexpected HTTP status {info.status} for {self.uri}"
                )
            coding = content_encoding(info.header("content-encoding"))
            if coding is not None and self._options.get("http-accept-gzip"):
                # decoded length unknown: one connection, sequential, never split
                return ProbeResult(
                    total_length=None,
                    supports_ranges=False,
                    filename=self._filename(info),
                    etag=info.etag,
                    last_modified=_http_date(info.last_modified),
                    stream=_DecodingStream(self._stream(conn), coding),
                    **_metalink_fields(info),
                )
            self._check_digest(info)
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
            filename=self._filename(info),
            etag=info.etag,
            last_modified=_http_date(info.last_modified),
            stream=self._stream(conn),
            **_metalink_fields(info),
        )

    async def _probe_head(self) -> ProbeResult | None:
        """``--use-head``: ``HEAD`` first.  Enough on its own when it gives the length and
        ``Accept-Ranges: bytes`` without a content coding; else ``None`` (probe with GET)."""
        conn, info = await self._send("HEAD", None, None, probe=True)
        if info.status == 304:
            return self._not_modified(conn, info)
        self._pool.release(conn)  # a HEAD answer has no body: the connection is reusable
        if info.status != 200:
            classify_status(info)
            return None
        total = info.content_length
        if total is None or not info.accept_ranges or info.header("content-encoding"):
            return None
        self._total = total
        self._validator = info.etag or info.last_modified
        return ProbeResult(
            total_length=total,
            supports_ranges=True,
            filename=self._filename(info),
            etag=info.etag,
            last_modified=_http_date(info.last_modified),
            stream=None,
            **_metalink_fields(info),
        )

    def _not_modified(self, conn: HttpConnection, info: ResponseInfo) -> ProbeResult:
        """304 to ``--conditional-get``: the local file is up to date (aria2 marks every piece
        done and reports the download complete).

        Only an answer to a conditional request (RFC 9110 §15.4.5): a 304 to a request that
        carried neither ``If-Modified-Since`` nor ``If-None-Match`` (a lying server or proxy,
        a resumed download, which never asks) is a protocol error, as in aria2, never
        "complete" for a file that may be half downloaded.
        """
        del info
        if not (
            self._asked_if_modified
            or self._has_header("if-modified-since")
            or self._has_header("if-none-match")
        ):
            conn.close_nowait()
            raise errors.HttpProtocolError(
                f"{self.uri}: 304 Not Modified without If-Modified-Since or If-None-Match"
            )
        path = self._local_target()
        try:
            size = os.path.getsize(path)
        except OSError:
            conn.close_nowait()
            raise errors.HttpProtocolError(
                f"{self.uri}: 304 Not Modified, but {path} is gone", retryable=False
            ) from None
        self._pool.release(conn)
        return ProbeResult(
            total_length=size,
            supports_ranges=False,
            filename=os.path.basename(path),
            not_modified=True,
        )

    async def open_range(self, start: int, end: int | None) -> RangeStream:
        if self._delegate is not None:
            return await self._delegate.open_range(start, end)
        return await self._open(start, end)

    async def _open(
        self,
        start: int,
        end: int | None,
        *,
        pipelined: tuple[HttpConnection | None, HttpRequest] | None = None,
    ) -> RangeStream:
        last = None if end is None else end - 1
        try:
            conn, info = await self._send("GET", start, last, probe=False, pipelined=pipelined)
        except SchemeRedirect as redirect:
            return await self._switch(redirect).open_range(start, end)
        try:
            if info.status in (200, 206):
                self._check_digest(info)
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
                    self._whole_body_for_range(info, start)
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
        return self._stream(conn)

    def _whole_body_for_range(self, info: ResponseInfo, start: int) -> None:
        """A 200 to ``Range: bytes=start-`` (start > 0).  With ``If-Range`` that means the
        file changed (RFC 9110 §13.1.5) unless the answer carries the very validator we sent
        (then, as when we have no validator, the server simply ignores ``Range``).

        Raises:
            CannotResumeError: another length or another validator (exit 8).
            RangesIgnoredError: the same file, from byte 0: this mirror cannot serve ranges.
        """
        total = info.total_length
        if self._total is not None and total is not None and total != self._total:
            raise errors.CannotResumeError(
                f"{self.uri}: remote length changed from {self._total} to {total}"
            )
        answered = info.etag or info.last_modified
        if self._validator and answered and answered != self._validator:
            raise errors.CannotResumeError(
                f"{self.uri}: the file changed on the server (validator {self._validator}"
                f" is now {answered}); it was sent whole for a range request"
            )
        raise errors.RangesIgnoredError(
            f"{self.uri}: the server ignored the Range header (asked for byte {start} on,"
            " got 200 and the whole file)"
        )

    def expect_digest(self, algorithm: str, digest: bytes) -> None:
        self._expected_digest = (algorithm, digest)
        if self._delegate is not None:
            self._delegate.expect_digest(algorithm, digest)

    def expect_length(self, total_length: int) -> None:
        self._total = total_length
        if self._delegate is not None:
            self._delegate.expect_length(total_length)

    async def aclose(self) -> None:
        try:
            await self._pool.aclose()
        finally:
            others, self._retired = self._retired, []
            if self._delegate is not None:
                others.append(self._delegate)
            for source in others:
                await source.aclose()
