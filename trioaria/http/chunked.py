"""Strict incremental decoder for ``Transfer-Encoding: chunked`` bodies (pure, sans-IO).

Theory of operation
-------------------
RFC 9112 §7.1::

    chunked-body   = *chunk last-chunk trailer-section CRLF
    chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
    chunk-size     = 1*HEXDIG
    last-chunk     = 1*("0") [ chunk-ext ] CRLF

:meth:`ChunkedDecoder.feed` takes whatever the socket returned and gives back the payload as
``memoryview`` slices *of the data passed in* (no copy), so the driver must consume them
before it reuses its receive buffer.  Only the short size and trailer lines are buffered.

Strictness follows aria2's ``ChunkedDecodingStreamFilter`` (src/ChunkedDecodingStreamFilter.cc):
lines end in CRLF (a bare LF is an error), sizes are hex digits only, and the data must be
followed by exactly CRLF.  We also allow optional whitespace before a chunk extension (the
``BWS`` of RFC 9112 §7.1.1), cap sizes at 16 hex digits and cap line and trailer lengths.
Every violation raises :class:`~trioaria.base.errors.HttpProtocolError`; a body that ends early
is reported by :meth:`ChunkedDecoder.check_complete` (the driver turns EOF-before-done into a
``NetworkError``).
"""

from __future__ import annotations

import enum

from ..base.errors import HttpProtocolError

__all__ = ["ChunkedDecoder"]

_HEX = frozenset(b"0123456789abcdefABCDEF")


class _State(enum.Enum):
    SIZE = "size"  # reading a chunk-size line
    DATA = "data"  # inside chunk-data
    DATA_END = "data-end"  # expecting CRLF after chunk-data
    TRAILER = "trailer"  # reading trailer lines after the last chunk
    DONE = "done"
    ERROR = "error"


class ChunkedDecoder:
    """Decode one chunked body, fed in arbitrary pieces.

    Args:
        max_line: longest chunk-size line (with extensions) accepted.
        max_trailer: most trailer bytes accepted.

    Attributes:
        payload_bytes: payload bytes returned so far.
        unused: bytes fed after the end of the body (the start of whatever follows).
    """

    def __init__(self, *, max_line: int = 4096, max_trailer: int = 64 * 1024) -> None:
        self._state = _State.SIZE
        self._line = bytearray()
        self._remaining = 0
        self._crlf_seen = 0
        self._trailer_bytes = 0
        self._max_line = max_line
        self._max_trailer = max_trailer
        self.payload_bytes = 0
        self.unused = b""

    @property
    def done(self) -> bool:
        """The terminating empty line has been seen."""
        return self._state is _State.DONE

    def check_complete(self) -> None:
        """Raise if the body is not complete (call at EOF).

        Raises:
            HttpProtocolError: the chunked body was truncated.
        """
        if self._state is not _State.DONE:
            raise HttpProtocolError(
                f"truncated chunked body ({self.payload_bytes} payload bytes, "
                f"stopped in {self._state.value})"
            )

    def _fail(self, message: str) -> HttpProtocolError:
        self._state = _State.ERROR
        return HttpProtocolError(f"bad chunked encoding: {message}")

    def feed(self, data: bytes | bytearray | memoryview) -> list[memoryview]:
        """Consume *data* and return the payload it contained.

        Returns:
            Slices of *data* (zero-copy); possibly empty.

        Raises:
            HttpProtocolError: the framing is malformed (the decoder is then unusable).
        """
        if self._state is _State.ERROR:
            raise HttpProtocolError("bad chunked encoding: decoder already failed")
        view = memoryview(data).cast("B")
        out: list[memoryview] = []
        pos, size = 0, len(view)
        while pos < size:
            state = self._state
            if state is _State.DATA:
                take = min(self._remaining, size - pos)
                out.append(view[pos : pos + take])
                pos += take
                self._remaining -= take
                self.payload_bytes += take
                if self._remaining == 0:
                    self._state = _State.DATA_END
                    self._crlf_seen = 0
            elif state is _State.DATA_END:
                expected = b"\r\n"[self._crlf_seen]
                if view[pos] != expected:
                    raise self._fail("chunk data not followed by CRLF")
                pos += 1
                self._crlf_seen += 1
                if self._crlf_seen == 2:
                    self._state = _State.SIZE
            elif state is _State.DONE:
                self.unused += bytes(view[pos:])
                break
            else:  # SIZE or TRAILER: line-oriented
                room = self._max_line - len(self._line) + 1
                window = bytes(view[pos : pos + room])
                newline = window.find(b"\n")
                if newline < 0:
                    if len(window) >= room:
                        raise self._fail("line too long")
                    self._line += window
                    pos += len(window)
                    continue
                self._line += window[:newline]
                pos += newline + 1
                line = bytes(self._line)
                self._line.clear()
                if not line.endswith(b"\r"):
                    raise self._fail("line not terminated by CRLF")
                if state is _State.SIZE:
                    self._size_line(line[:-1])
                else:
                    self._trailer_line(line[:-1])
        return out

    def _size_line(self, line: bytes) -> None:
        size_part = line.split(b";", 1)[0]
        if b";" in line:
            size_part = size_part.rstrip(b" \t")
        if not size_part or len(size_part) > 16 or not all(c in _HEX for c in size_part):
            raise self._fail(f"invalid chunk size {line[:40]!r}")
        size = int(size_part, 16)
        if size == 0:
            self._state = _State.TRAILER
        else:
            self._remaining = size
            self._state = _State.DATA

    def _trailer_line(self, line: bytes) -> None:
        if not line:
            self._state = _State.DONE
            return
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > self._max_trailer:
            raise self._fail("trailer section too large")
        if b":" not in line:
            raise self._fail(f"malformed trailer field {line[:40]!r}")
