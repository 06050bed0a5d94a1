"""Decoding ``Content-Encoding: gzip`` / ``deflate`` bodies (pure, sans-IO).

aria2 ``--http-accept-gzip`` sends ``Accept-Encoding: deflate, gzip`` and inflates a response
whose ``Content-Encoding`` is ``gzip`` or ``deflate`` (aria2 ``HttpResponse::
getContentEncodingStreamFilter``, ``GZipDecodingStreamFilter``: zlib's automatic gzip/zlib
header detection).  RFC 9110 §8.4.1.2 defines ``deflate`` as the zlib format (RFC 1950); some
servers send a raw RFC 1951 stream instead, which is accepted too.  Several concatenated gzip
members (RFC 1952 §2.2) decode to the concatenation of their contents.

The decoded length of such a body is unknown until its end, so the download engine writes it
sequentially over one connection (``Transfers.download_unknown_length`` in trioaria.engine.transfer).

:class:`ContentDecoder` is fed encoded bytes and hands out decoded bytes into a caller's
buffer, never more than the buffer holds (``zlib`` ``max_length``), so memory stays bounded
whatever the compression ratio.
"""

from __future__ import annotations

import zlib

from ..base.errors import HttpProtocolError

__all__ = ["DECODABLE_ENCODINGS", "ContentDecoder", "content_encoding"]

#: ``Content-Encoding`` values we inflate (``x-gzip``: RFC 9110 §8.4.1.3 says to treat it as gzip).
DECODABLE_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})

_AUTO = zlib.MAX_WBITS | 32  # zlib or gzip header, detected
_RAW = -zlib.MAX_WBITS
_MAGIC = b"\x1f\x8b"  # RFC 1952 §2.3.1 ID1 ID2


def content_encoding(value: str | None) -> str | None:
    """The single coding we can decode from a ``Content-Encoding`` value, else ``None``.

    ``identity`` (and an absent header) is ``None``; a stacked list such as
    ``gzip, br`` is ``None`` too (not decodable here: the caller stores the body as sent).
    """
    if value is None:
        return None
    codings = [c.strip().lower() for c in value.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if len(codings) == 1 and codings[0] in DECODABLE_ENCODINGS:
        return codings[0]
    return None


class ContentDecoder:
    """Incremental gzip/deflate decoder with bounded output.

    Use: call :meth:`decode_into`; when it returns 0 and :attr:`done` is false, :meth:`feed`
    more encoded bytes and try again; at the end of the body call :meth:`finish`, which
    raises if the compressed stream was cut short.

    Args:
        encoding: ``gzip``, ``x-gzip`` or ``deflate``.
    """

    def __init__(self, encoding: str) -> None:
        if encoding not in DECODABLE_ENCODINGS:
            raise ValueError(f"cannot decode Content-Encoding {encoding!r}")
        self.encoding = encoding
        self._raw_fallback = encoding == "deflate"
        self._obj = zlib.decompressobj(_AUTO)
        self._pending = b""  # encoded bytes not given to zlib yet
        self._head = b""  # the first bytes given to zlib, replayed if raw deflate is detected
        self._started = False  # zlib accepted the (2-byte) zlib/gzip header
        self._done = False  # the last member ended
        self._between = False  # a gzip member ended; another may follow
        self.decoded = 0

    @property
    def done(self) -> bool:
        """The compressed stream ended (trailing bytes after it are ignored)."""
        return self._done

    def feed(self, data: bytes) -> None:
        """Queue encoded body bytes."""
        if data and not self._done:
            self._pending += data

    def decode_into(self, buf: memoryview) -> int:
        """Decode into *buf*; returns the count (0: more input is needed, or done).

        Raises:
            HttpProtocolError: the body is not valid gzip/deflate data.
        """
        if self._done or not buf:
            return 0
        while True:
            if self._between:
                if len(self._pending) < 2 and _MAGIC.startswith(self._pending):
                    return 0  # cannot tell yet whether another member follows
                self._between = False
                if self._pending[:2] != _MAGIC:
                    self._pending = b""
                    self._done = True  # anything after the stream is ignored
                    return 0
                self._obj = zlib.decompressobj(_AUTO)
            data = self._obj.unconsumed_tail or self._pending
            from_pending = not self._obj.unconsumed_tail
            if not data and not self._started:
                return 0
            # With no input left zlib may still hold output back (max_length capped the last
            # call): decompress(b"") drains it; it returns b"" once nothing is buffered.
            if from_pending:
                self._pending = b""
            if not self._started:
                self._head += data[:2]
            try:
                out = self._obj.decompress(data, len(buf))
            except zlib.error as exc:
                if self._raw_fallback and not self._started:
                    # "deflate" sent as a raw RFC 1951 stream (no zlib header)
                    self._raw_fallback = False
                    self._obj = zlib.decompressobj(_RAW)
                    replay = self._head[: -len(data[:2])] + data
                    self._pending = replay + (self._pending if from_pending else b"")
                    self._head = b""
                    self._started = True
                    continue
                raise HttpProtocolError(
                    f"cannot decode the {self.encoding} body: {exc}", retryable=False
                ) from None
            if len(self._head) >= 2:
                self._started = True
            if self._obj.eof:
                self._pending = self._obj.unused_data + self._pending
                self._between = True
            if out:
                size = len(out)
                buf[:size] = out
                self.decoded += size
                return size
            if self._between:
                continue
            if self._done or not data:
                return 0

    def finish(self) -> None:
        """The body ended: check the compressed stream was complete.

        Raises:
            HttpProtocolError: the body ended inside the compressed stream.
        """
        if self._done or self._between:
            self._done = True
            return
        if not self._head and not self._pending:
            self._done = True  # an empty body: nothing to decode
            return
        raise HttpProtocolError(
            f"the {self.encoding} body ended before its compressed stream did", retryable=True
        )
