"""What a download engine needs from any *range source* (HTTP now; FTP and SFTP later).

A range source is one URI that can serve arbitrary byte ranges of one remote file.  The
download group (``trioaria.engine.group``) only speaks this interface, so an HTTP mirror, an FTP
mirror and an SFTP mirror fill the same pieces through the same picker and disk layer.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

__all__ = ["ProbeResult", "RangeSource", "RangeStream"]


class RangeStream(abc.ABC):
    """An open response body positioned at the first requested byte."""

    @abc.abstractmethod
    async def read_into(self, buf: memoryview) -> int:
        """Read the next body bytes into ``buf``; 0 means the body ended."""

    @abc.abstractmethod
    async def finish(self, *, drained: bool) -> None:
        """Give the connection back (``drained``: the body was read to its end) or close it."""

    async def pipeline(self, start: int, end: int) -> RangeStream | None:
        """Request ``[start, end)`` on this stream's connection now, before this body ends.

        Only asked when the source's ``pipelining`` is true.  Returns the stream of that
        range, to be read only after this one was finished with ``drained=True``; if this
        one is finished undrained, the returned stream can only be finished (its answer is
        lost with the connection).  ``None``: not possible now (the default: FTP, SFTP).
        """
        del start, end
        return None


@dataclass(slots=True)
class ProbeResult:
    """What the first response told us about the remote file."""

    total_length: int | None
    supports_ranges: bool
    filename: str | None = None
    etag: str | None = None
    last_modified: float | None = None  # seconds since the epoch
    stream: RangeStream | None = None  # the body from byte 0, left open for the first segment
    # --conditional-get answered "304 Not Modified": the local file ``filename`` (in --dir) is
    # up to date; total_length is its size and nothing is downloaded (aria2: exit 0)
    not_modified: bool = False
    # Metalink (docs/design.md §5): the response's Content-Type (``--follow-metalink``), its
    # RFC 8288 ``Link`` header values and its RFC 3230 ``Digest`` value (RFC 6249)
    content_type: str | None = None
    links: tuple[str, ...] = ()
    digest: str | None = None


class RangeSource(abc.ABC):
    """One mirror URI of one file."""

    uri: str
    host_key: str  # connections are capped per host key (``-x``)
    pipelining: bool = False  # streams may pipeline the next range (RangeStream.pipeline)

    @abc.abstractmethod
    async def probe(self) -> ProbeResult:
        """Open the resource from byte 0 and report its size, name and validators."""

    @abc.abstractmethod
    async def open_range(self, start: int, end: int | None) -> RangeStream:
        """Open ``[start, end)`` (``end`` None: to the end of the file)."""

    def expect_length(self, total_length: int) -> None:  # noqa: B027 - optional hook
        """The download's length is known: a mirror serving another length must fail (exit 8)."""

    def unconditional(self) -> None:  # noqa: B027 - optional hook
        """Probes from now on ask for the body whatever the local file (no
        ``If-Modified-Since``): a retry of a download this run began."""

    def expect_digest(self, algorithm: str, digest: bytes) -> None:  # noqa: B027 - optional hook
        """The file's digest is known: a response whose RFC 3230 ``Digest`` of ``algorithm``
        differs must fail, not retryable (RFC 6249 §6; aria2 drops the mirror)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release pooled connections."""
