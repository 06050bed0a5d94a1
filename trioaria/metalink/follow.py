"""``--follow-metalink`` and Metalink/HTTP (RFC 6249) for a plain URI download (driver).

Theory of operation
-------------------
A command-line or RPC URI becomes a :class:`FollowingGroup` unless ``--follow-metalink=false``
(the HTTP source then also offers the Metalink media types in ``Accept``, aria2's
"transparent metalink").  It is a :class:`~trioaria.engine.group.RequestGroup` that looks at
the first answer (the probe) before anything is written:

1. **Metalink/HTTP** (RFC 6249).  ``Link: <...>; rel=duplicate; pri=; geo=; pref`` adds
   mirrors to the download, in the order :func:`~trioaria.http.link_header.mirror_links`
   gives (``--metalink-location`` first).  ``Link: <...>; rel=describedby;
   type="application/metalink4+xml"`` is fetched into memory: the document's file of the same
   name (or its only file) gives more mirrors, the whole-file hash and the piece hashes.  An
   RFC 3230 ``Digest`` gives the whole-file hash when none was known (aria2: the strongest);
   from then on every source's ``Digest`` must agree, or that source fails and is dropped
   (:meth:`~trioaria.http.source.HttpSource.expect_digest`).  ``Want-Digest`` is sent on every
   request unless ``--no-want-digest-header``.
2. **Following** (aria2 ``MetalinkPostDownloadHandler``).  When the answer's ``Content-Type``
   is a Metalink type or the file name ends in ``.meta4``/``.metalink``
   (:func:`~trioaria.metalink.detect.is_metalink_resource`): with ``true`` the document is
   downloaded as usual (it stays in ``--dir``), with ``mem`` it is read into memory only
   (its path shows as ``[MEMORY]name``, as in aria2); then it is parsed, relative urls
   resolved against the document's URI (or ``--metalink-base-uri``), and every chosen file is
   queued as a download of its own (:mod:`trioaria.metalink.groups`).  A bad document fails
   this download with exit 20; the files' downloads never follow Metalink again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import trio

from ..base import errors
from ..base.sources import ProbeResult, RangeStream
from ..engine.group import NOTICE, RequestGroup
from ..engine.mirrors import SourceState
from ..net.connect import read_deadline
from .detect import is_metalink_resource

__all__ = ["FollowingGroup", "read_all"]

log = logging.getLogger("trioaria.metalink")

_CHUNK = 64 * 1024


async def read_all(stream: RangeStream, *, limit: int, timeout: float, what: str) -> bytes:
    """Read ``stream`` to its end into memory (at most ``limit`` bytes), then finish it.

    Raises:
        MetalinkError: the body is larger than ``limit`` (exit 20).
        ReadTimeoutError: no byte for ``timeout`` seconds.
    """
    out = bytearray()
    buf = bytearray(_CHUNK)
    drained = False
    try:
        while True:
            with read_deadline(timeout, f"reading {what}"):
                n = await stream.read_into(memoryview(buf))
            if n == 0:
                drained = True
                return bytes(out)
            out += buf[:n]
            if len(out) > limit:
                raise errors.MetalinkError(f"{what}: larger than {limit} bytes")
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await stream.finish(drained=drained)


class FollowingGroup(RequestGroup):
    """A URI download that follows Metalink answers (see the module docstring).

    Args:
        uris, options: as :class:`~trioaria.engine.group.RequestGroup`.
        spawn: queues the downloads a followed document describes.
    """

    def __init__(
        self,
        uris: list[str],
        options: Any,
        *,
        spawn: Callable[[Sequence[RequestGroup]], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(uris, options, **kwargs)
        self._spawn = spawn

    # --- RFC 6249 ------------------------------------------------------------------------

    def _locations(self) -> set[str]:
        raw = str(self.opt("metalink-location") or "")
        return {x.strip().lower() for x in raw.split(",") if x.strip()}

    async def _metalink_http(self, first: SourceState, probe: ProbeResult, name: str) -> None:
        from ..http.link_header import metalink_links, mirror_links
        from ..storage.checksum import parse_digest_header, pick_strongest

        assert self.mirrors is not None
        base = first.source.uri
        for uri in metalink_links(probe.links, base=base)[:1]:
            await self._described_by(uri, name, probe.total_length)
        for mirror in mirror_links(probe.links, locations=self._locations(), base=base):
            if self.mirrors.add(mirror.uri) is not None:
                log.info("GID#%s Adding URI=%s (Link rel=duplicate)", self.gid, mirror.uri)
        if probe.digest and not self.opt("checksum"):
            best = pick_strongest(parse_digest_header(probe.digest))
            if best is not None:
                log.info("GID#%s Setting digest: type=%s", self.gid, best.algorithm)
                self.options = self.options.with_overrides(
                    {"checksum": f"{best.algorithm}={best.hexdigest}"}
                )
        self.expect_digest()

    async def _described_by(self, uri: str, name: str, length: int | None) -> None:
        """RFC 6249 §3.3: the full Metalink document of this file."""
        from ..engine.source_factory import make_source
        from .parse import MAX_DOCUMENT_SIZE, parse_metalink
        from .plan import mirror_urls, piece_hashes

        assert self.mirrors is not None
        opts = self.options.with_overrides({"follow-metalink": "false"})
        source = make_source(uri, opts)
        try:
            timeout = float(self.opt("connect-timeout")) + float(self.opt("timeout"))
            with trio.fail_after(timeout):
                probe = await source.probe()
            if probe.stream is None:
                probe.stream = await source.open_range(0, None)
            data = await read_all(
                probe.stream, limit=MAX_DOCUMENT_SIZE, timeout=float(self.opt("timeout")), what=uri
            )
            doc = parse_metalink(data, base_uri=uri)
        except (errors.TrioariaError, trio.TooSlowError) as exc:
            log.warning("GID#%s cannot use the Metalink %s: %s", self.gid, uri, exc)
            return
        finally:
            with trio.CancelScope(shield=True):
                await source.aclose()
        files = [f for f in doc.files if f.name == name] or (
            list(doc.files) if len(doc.files) == 1 else []
        )
        if not files:
            log.warning("GID#%s the Metalink %s does not describe %s", self.gid, uri, name)
            return
        file = files[0]
        if file.size is not None and length is not None and file.size != length:
            log.warning(
                "GID#%s the Metalink %s gives %s %d bytes, the server %d: not used",
                self.gid, uri, name, file.size, length,
            )  # fmt: skip
            return
        log.log(NOTICE, "GID#%s Metalink %s describes %s", self.gid, uri, name)
        for url in mirror_urls(file, self.options):
            if self.mirrors.add(url) is not None:
                log.info("GID#%s Adding URI=%s (Metalink)", self.gid, url)
        best = file.best_hash()
        if best is not None and not self.opt("checksum"):
            self.options = self.options.with_overrides(
                {"checksum": f"{best.algorithm}={best.hexdigest}"}
            )
        if self._piece_hashes is None and self.opt("realtime-chunk-checksum"):
            self._piece_hashes = piece_hashes(file.best_pieces())

    # --- following -----------------------------------------------------------------------

    async def _download_probed(self, first: SourceState, probe: ProbeResult) -> None:
        from ..storage.naming import name_from_url

        name = self.opt("out") or probe.filename or name_from_url(first.source.uri)
        if probe.links or probe.digest:
            await self._metalink_http(first, probe, name)
        if (
            _is_torrent_resource(probe.content_type, name)
            and str(self.opt("follow-torrent") or "true") != "false"
            and first.source.uri.lower().startswith(("http://", "https://"))
        ):
            self._follow_torrent(first.source.uri)
            return
        mode = str(self.opt("follow-metalink") or "false")
        if mode == "false" or not is_metalink_resource(probe.content_type, name):
            await super()._download_probed(first, probe)
            return
        base = str(self.opt("metalink-base-uri") or "") or first.source.uri
        if mode == "mem":
            data = await self._read_in_memory(first, probe, name)
        else:
            await super()._download_probed(first, probe)
            if not self.path or self.opt("dry-run"):
                return
            data = await _read_document(self.path)
        self._follow(data, base)

    def _follow_torrent(self, uri: str) -> None:
        """aria2 ``ContentTypeRequestGroupCriteria``: a download served as
        ``application/x-bittorrent`` (or named ``.torrent``) is a torrent: it is fetched again
        as one (``--follow-torrent``; the probe's body is not kept) and downloaded."""
        from ..engine.torrent import TorrentGroup, TorrentSource

        group = TorrentGroup(TorrentSource("url", uri), self.options.without("out", "gid"))
        log.log(NOTICE, "GID#%s follows the torrent %s as GID#%s", self.gid, uri, group.gid)
        self.path = f"[METADATA]{uri}"
        self._spawn([group])

    async def _read_in_memory(self, first: SourceState, probe: ProbeResult, name: str) -> bytes:
        from .parse import MAX_DOCUMENT_SIZE

        self.path = "[MEMORY]" + name.rpartition("/")[2]
        self.total_length = probe.total_length
        stream, self._unused_stream = self._unused_stream, None
        if stream is None:
            stream = await first.source.open_range(0, None)
        data = await read_all(
            stream,
            limit=MAX_DOCUMENT_SIZE,
            timeout=float(self.opt("timeout")),
            what=first.source.uri,
        )
        first.meter.add(len(data), trio.current_time())
        self._streamed = len(data)
        self.total_length = len(data)
        return data

    def _follow(self, data: bytes, base: str) -> None:
        from .groups import build_groups
        from .parse import parse_metalink
        from .plan import document_downloads

        where = self.uris[0] if self.uris else self.path
        try:
            doc = parse_metalink(data, base_uri=base)
        except errors.MetalinkError as exc:
            raise errors.MetalinkError(f"{where}: {exc}") from None
        opts = self.options.with_overrides({"follow-metalink": "false"})
        downloads = document_downloads(doc, opts, where=where)
        groups = build_groups(downloads, server_stats=self.server_stats)
        for group in groups:
            log.log(NOTICE, "GID#%s follows Metalink %s: %s", group.gid, where, group.opt("out"))
        self._spawn(groups)


async def _read_document(path: str) -> bytes:
    """The downloaded document, read only up to the parser's size limit (one byte more, so
    that a larger document is refused by the parser without being held in memory whole)."""
    from .parse import MAX_DOCUMENT_SIZE

    async with await trio.open_file(path, "rb") as f:
        data: bytes = await f.read(MAX_DOCUMENT_SIZE + 1)
    return data


def _is_torrent_resource(content_type: str | None, name: str | None) -> bool:
    """A body aria2 would follow as a torrent: ``application/x-bittorrent``, or a name that
    ends in ``.torrent``."""
    if content_type and content_type.partition(";")[0].strip().lower() == (
        "application/x-bittorrent"
    ):
        return True
    return bool(name) and str(name).partition("?")[0].lower().endswith(".torrent")
