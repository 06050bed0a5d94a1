"""One torrent (a ``.torrent`` file or URL, or a magnet link) as one download of the engine.

Theory of operation
-------------------
:class:`TorrentGroup` is a :class:`~trioaria.engine.group.RequestGroup` whose ``_download`` speaks
BitTorrent instead of probing a mirror, so the queue (``-j``), the lifecycle, the readout and the
exit status treat it like any other download.  Inside its one cancel scope and nursery:

1. **Metainfo.**  A local ``.torrent`` is parsed (exit 25/26 on bad input); a ``.torrent`` URL
   is fetched into memory (``--follow-torrent=true`` also saves it under ``--dir``); a magnet
   link runs a metadata swarm first (BEP 9 ``ut_metadata`` from peers found through its ``tr``
   trackers and ``x.pe`` peers; ``--bt-save-metadata``, ``--bt-metadata-only``,
   ``--bt-load-saved-metadata``).
2. **Storage.**  The files become a :class:`~trioaria.storage.layout.FileLayout` under ``--dir``
   (``--select-file`` marks the others unselected: never created unless a piece they share
   with a selected file forces it; ``--index-out`` renames); one
   :class:`~trioaria.storage.session.StorageSession` holds them with the torrent's SHA-1
   piece hashes and its info hash (the control file's BitTorrent bit).  ``<dir>/<name>.aria2``
   resumes as aria2's does; ``-V`` hashes every existing piece first.  Files that exist
   without a control file are refused (exit 13) unless ``-V``, ``-c`` or ``--allow-overwrite``.
3. **Swarm.**  The run's one :class:`~trioaria.bt.listener.PeerListener` (``--listen-port``,
   shared by every torrent as in aria2; peers that dial while ``-V`` runs are held), the
   :class:`~trioaria.bt.swarm.Swarm` and the :class:`~trioaria.bt.announce.Announcer` run until
   every selected piece is verified; then ``completed`` is announced, the control file removed,
   and the torrent is seeded until ``--seed-ratio`` or ``--seed-time`` is met (aria2's rules:
   either ends seeding; ratio 0 and no time means forever; ``--seed-time=0`` means no seeding).
   ``stopped`` is announced on the way out, bounded by a few seconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import trio

from ..base import errors
from ..base.policy import SpeedLimit
from ..base.stats import DownloadStats, DownloadStatus, FileStats
from ..bt.metainfo import Metainfo
from ..net.proxy import ProxySettings
from .group import NOTICE, RequestGroup

__all__ = [
    "TorrentGroup",
    "TorrentSource",
    "classify_uri",
    "set_overall_upload_rate",
    "split_torrent_uris",
]

log = logging.getLogger("trioaria.engine.torrent")

COMPLETE_POLL = 0.1
STOP_ANNOUNCE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class TorrentSource:
    """Where a torrent comes from: ``kind`` is ``file``, ``url`` or ``magnet``."""

    kind: str
    value: str


def classify_uri(uri: str, *, follow_torrent: str = "true") -> TorrentSource | None:
    """The torrent a command-line URI names, or ``None`` for an ordinary download."""
    low = uri.lower()
    if low.startswith("magnet:"):
        return TorrentSource("magnet", uri)
    scheme = low.partition(":")[0]
    if scheme in ("http", "https", "ftp", "ftps", "ftpes", "sftp") and "://" in low:
        path = low.partition("?")[0].partition("#")[0]
        if path.endswith(".torrent") and follow_torrent != "false" and scheme in ("http", "https"):
            return TorrentSource("url", uri)
        return None
    if "://" in uri:
        return None
    if low.endswith(".torrent") or (os.path.isfile(uri) and _looks_like_torrent(uri)):
        return TorrentSource("file", uri)
    return None


def _looks_like_torrent(path: str) -> bool:
    """aria2 ``guessTorrentFile``: a local file whose first byte is ``d`` (a bencoded
    dictionary) is read as a torrent, whatever its name (unless it is a Metalink document)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1)
    except OSError:
        return False
    return head == b"d"


def split_torrent_uris(uris: Sequence[str], options: Any) -> tuple[list[TorrentSource], list[str]]:
    """Separate the torrents (``-T`` first) from the ordinary URIs of one command line entry."""
    follow = str(options.get("follow-torrent") or "true")
    torrents: list[TorrentSource] = []
    rest: list[str] = []
    if options.get("torrent-file"):
        torrents.append(TorrentSource("file", str(options.get("torrent-file"))))
    for uri in uris:
        source = classify_uri(uri, follow_torrent=follow)
        if source is None:
            rest.append(uri)
        else:
            torrents.append(source)
    return torrents, rest


def make_peer_id(prefix: str) -> bytes:
    """``--peer-id-prefix`` plus random characters, 20 bytes."""
    raw = prefix.encode("utf-8", "replace")[:20]
    return raw + secrets.token_hex(10).encode()[: 20 - len(raw)]


def _listen_ports(options: Any) -> list[int]:
    value = options.get("listen-port")
    if not value:
        return [0]
    if isinstance(value, int):
        return [value]
    ports: list[int] = []
    for item in value:
        ports.extend(item if isinstance(item, range) else [int(item)])
    return ports


def _names(file: Any, name: str) -> bool:
    """Whether a Metalink metaurl ``name`` designates ``file`` of a torrent (its path with or
    without the multi-file torrent's directory)."""
    path = str(file.path)
    return path == name or path.partition("/")[2] == name


def selected_indexes(options: Any, count: int) -> set[int] | None:
    """``--select-file`` as 1-based file indexes (None: every file)."""
    value = options.get("select-file")
    if not value:
        return None
    chosen: set[int] = set()
    for item in value:
        for index in item if isinstance(item, range) else [int(item)]:
            if 1 <= index <= count:
                chosen.add(index)
    return chosen


def _index_out(options: Any) -> dict[int, str]:
    value = options.get("index-out")
    out: dict[int, str] = {}
    if not value:
        return out
    items = value if isinstance(value, tuple | list) else str(value).split("\n")
    for item in items:
        if isinstance(item, tuple) and len(item) == 2:
            index, path = item
        else:
            index_text, _, path = str(item).partition("=")
            if not index_text.strip().isdigit():
                continue
            index = int(index_text)
        out[int(index)] = str(path)
    return out


def tracker_tiers(
    base: Sequence[Sequence[str]], options: Any, *, private: bool = False
) -> list[list[str]]:
    """The announce tiers after ``--bt-exclude-tracker`` and ``--bt-tracker`` (aria2's order)."""
    exclude = [u.strip() for u in str(options.get("bt-exclude-tracker") or "").split(",") if u]
    tiers = [list(t) for t in base]
    if "*" in exclude:
        tiers = []
    elif exclude:
        tiers = [[u for u in t if u not in exclude] for t in tiers]
    extra = [u.strip() for u in str(options.get("bt-tracker") or "").split(",") if u.strip()]
    if not private:
        for url in extra:
            if not any(url in t for t in tiers):
                tiers.append([url])
    return [t for t in tiers if t]


class TorrentGroup(RequestGroup):
    """One torrent download; see the module docstring.

    Args:
        source: the torrent file, URL or magnet.
        options: the download's options.
        gid: aria2's GID, if given.
    """

    def __init__(
        self,
        source: TorrentSource,
        options: Any,
        *,
        gid: str | None = None,
        web_seeds: Sequence[str] = (),
    ) -> None:
        super().__init__([source.value], options, gid=gid)
        self.source = source
        self.web_seeds = list(web_seeds)  # URIs given with -T (BEP 19, as the url-list)
        # a Metalink metaurl's ``name`` (RFC 5854 §4.2.8.3): only that file of the torrent
        self.only_file: str | None = None
        self._swarm_bytes = 0  # swarm payload already added to the group's meter
        self._web_bytes = 0  # payload the web seeds delivered this run
        self._skip_seeding = False  # --bt-hash-check-seed=false after -V found it complete
        self.meta: Metainfo | None = None
        self.swarm: Any = None
        self.listener: Any = None
        self.announcer: Any = None
        self.discovery: Any = None
        self.seeding = False
        self._seed_scope: trio.CancelScope | None = None
        self.upload_limit = SpeedLimit(int(options.get("max-upload-limit") or 0))
        # --max-overall-upload-limit: one bucket for every torrent of the process (RPC
        # changeGlobalOption sets its rate: set_overall_upload_rate)
        self.overall_upload_limit: SpeedLimit | None = _overall_upload_limit(
            int(options.get("max-overall-upload-limit") or 0)
        )
        self.peer_id = make_peer_id(str(options.get("peer-id-prefix") or "-TA0100-"))
        self._selected_length: int | None = None

    # --- engine hooks ---------------------------------------------------------------------

    def cancel(self, event: str = "stop") -> None:
        """A stop while seeding ends the seeding: the download stays complete (as aria2)."""
        if self.seeding and self._seed_scope is not None and event == "stop":
            self._seed_scope.cancel()
            return
        super().cancel(event)

    def statistics(self) -> DownloadStats:
        base = super().statistics()
        session = self.session
        swarm = self.swarm
        sstats = swarm.statistics() if swarm is not None else None
        files: tuple[FileStats, ...] = ()
        completed = base.completed_length
        total = base.total_length
        if session is not None:
            st = session.storage
            verified = st.verified
            entries = []
            done_total = 0
            sel_total = 0
            for i, entry in enumerate(session.layout.files):
                done = 0
                if entry.length:
                    first = entry.offset // st.piece_length
                    last = (entry.end - 1) // st.piece_length
                    for piece in range(first, last + 1):
                        if verified[piece]:
                            a = max(entry.offset, piece * st.piece_length)
                            b = min(entry.end, (piece + 1) * st.piece_length)
                            done += b - a
                entries.append(
                    FileStats(i + 1, session.paths[i], entry.length, done, selected=entry.selected)
                )
                if entry.selected:
                    done_total += done
                    sel_total += entry.length
            files = tuple(entries)
            completed = done_total
            total = sel_total
        active = self.state is DownloadStatus.ACTIVE
        now = trio.current_time()
        web_speed = sum(s.meter.rate(now) for s in self._sources) if active else 0
        web_conns = sum(s.connections for s in self._sources) if active else 0
        return DownloadStats(
            gid=base.gid,
            status=base.status,
            total_length=total,
            completed_length=completed,
            download_speed=(sstats.download_speed if sstats and active else 0) + web_speed,
            upload_speed=sstats.upload_speed if sstats and active else 0,
            connections=(sstats.connections if sstats and active else 0) + web_conns,
            path=self.path,
            files=files,
            sources=base.sources,
            piece_length=base.piece_length,
            num_pieces=base.num_pieces,
            bitfield=session.storage.verified.to_bytes() if session is not None else b"",
            error_code=base.error_code,
            error_message=base.error_message,
            phase=base.phase,
            phase_done=base.phase_done,
            phase_total=base.phase_total,
            seeder=self.seeding and active,
            upload_length=(session.upload_base if session is not None else 0)
            + (sstats.uploaded if sstats is not None else 0),
            num_seeders=swarm.seeders() if swarm is not None and active else 0,
        )

    # --- limits ------------------------------------------------------------------------------

    def _upload_limits(self) -> tuple[SpeedLimit, ...]:
        own, overall = self.upload_limit, self.overall_upload_limit
        return tuple(x for x in (own, overall) if x is not None and x.rate > 0)

    # --- the download ------------------------------------------------------------------------

    async def _download(self) -> None:
        # an error raised in a nursery here comes out as itself: RequestGroup.run unwraps it
        from ..bt.discovery import open_discovery
        from ..bt.listener import open_listener

        async with trio.open_nursery() as nursery:
            # one listener per run (aria2): the engine's services nursery holds it
            self.listener = await open_listener(_listen_ports(self.options), nursery)
            self.discovery = await open_discovery(self.opt, nursery)
            meta = await self._metainfo()
            if meta is not None:
                self.meta = meta
                await self._run_torrent(meta)
            nursery.cancel_scope.cancel()

    async def _metainfo(self) -> Metainfo | None:
        from ..bt.metainfo import parse_torrent

        kind, value = self.source.kind, self.source.value
        if kind == "file":
            try:
                with open(value, "rb") as f:
                    data = f.read()
            except OSError as exc:
                raise errors.TrioariaError(
                    f"cannot read the torrent file {value}: {exc.strerror}",
                    exit_code=errors.ExitCode.FILE_OPEN_ERROR,
                    retryable=False,
                ) from None
            return parse_torrent(data, default_name=value)
        if kind == "url":
            return await self._fetch_torrent(value)
        return await self._magnet(value)

    def _proxies(self) -> ProxySettings:
        """The proxies for HTTP(S) trackers and ``.torrent`` URLs (as aria2; peers and UDP
        trackers are reached directly, as in aria2)."""
        return ProxySettings.from_options(self.options.get)

    async def _fetch_torrent(self, url: str) -> Metainfo:
        from ..bt.announce import http_get
        from ..bt.metainfo import parse_torrent
        from ..net.connect import TlsOptions

        timeout = float(self.opt("timeout") or 60) + float(self.opt("connect-timeout") or 60)
        data = await http_get(
            url,
            timeout=timeout,
            tls=TlsOptions.from_options(self.options),
            proxies=self._proxies(),
            what=".torrent URL",
        )
        from ..storage.naming import decide_output, name_from_url

        name = name_from_url(url)
        meta = parse_torrent(data, default_name=name)
        if str(self.opt("follow-torrent")) == "true":
            # saved like any download (aria2): an existing file is renamed, or kept and the
            # run refused (exit 13) without --auto-file-renaming; never silently replaced
            directory = self._directory()
            decision = decide_output(
                directory,
                str(self.opt("out") or name),
                exists=os.path.exists,
                allow_overwrite=bool(self.opt("allow-overwrite")),
                auto_file_renaming=bool(self.opt("auto-file-renaming")),
                continue_=False,
                control_file_exists=lambda p: False,
            )
            _save_file(os.path.dirname(decision.path), decision.path, data)
        return meta

    def _tracer(self) -> Any:
        """``--trace=FILE``: the process's tracer for FILE, or None (bt/trace.py)."""
        path = self.opt("trace")
        if not path:
            return None
        from ..bt.trace import open_tracer

        return open_tracer(str(path))

    def _directory(self) -> str:
        return os.path.abspath(os.path.expanduser(str(self.opt("dir") or ".")))

    async def _magnet(self, uri: str) -> Metainfo | None:
        from ..bt.metainfo import parse_info, parse_magnet, parse_torrent, serialize_torrent
        from ..bt.mse import CryptoPolicy
        from ..bt.pex_exchange import PexExchange
        from ..bt.swarm import Swarm

        magnet = parse_magnet(uri)
        hexhash = magnet.info_hash_hex
        saved = os.path.join(self._directory(), f"{hexhash}.torrent")
        tiers = tracker_tiers([[t] for t in magnet.trackers], self.options)
        if self.opt("bt-load-saved-metadata") and os.path.exists(saved):
            # aria2: a saved file that cannot be read or parsed is ignored (the peers have it)
            try:
                with open(saved, "rb") as f:
                    meta = parse_torrent(f.read(), default_name=saved)
            except (OSError, errors.TrioariaError) as exc:
                log.warning("cannot use the saved metadata %s (%s); asking the peers", saved, exc)
            else:
                if meta.info_hash == magnet.info_hash:
                    log.log(NOTICE, "Loaded saved metadata %s", saved)
                    return meta
        self.path = f"[METADATA]{magnet.display_name or hexhash}"
        swarm = Swarm(
            magnet.info_hash,
            self.peer_id,
            meta=None,
            max_peers=int(self.opt("bt-max-peers") or 0),
            peer_agent=str(self.opt("peer-agent") or "trioaria"),
            connect_timeout=float(self.opt("connect-timeout") or 60),
            crypto=CryptoPolicy.from_options(self.opt),
            tracer=self._tracer(),
        )
        if self.opt("enable-peer-exchange"):
            swarm.pex = PexExchange()
        self.discovery.attach(swarm, False)
        self.swarm = swarm
        await self._run_swarm_until(swarm, tiers, magnet.peers, swarm.metadata_event)
        self.swarm = None
        info = swarm.metadata
        assert info is not None
        meta = parse_info(
            info,
            default_name=magnet.display_name or hexhash,
            announce_list=tiers,
            url_list=magnet.web_seeds,
        )
        self._magnet_peers = swarm.known_addresses()
        log.log(NOTICE, "Metadata of %s downloaded (%d bytes)", hexhash, len(info))
        if self.opt("bt-save-metadata") or self.opt("bt-metadata-only"):
            _save_file(self._directory(), saved, serialize_torrent(meta))
            log.log(NOTICE, "Saved metadata as %s", saved)
        if self.opt("bt-metadata-only"):
            self.path = saved
            return None
        return meta

    async def _run_swarm_until(
        self,
        swarm: Any,
        tiers: list[list[str]],
        peers: Sequence[tuple[str, int]],
        done: trio.Event,
    ) -> None:
        """Run ``swarm`` with its announcer until ``done`` is set (or the swarm fails)."""
        from ..bt.announce import Announcer

        listener = self.listener
        announcer = Announcer(
            tiers,
            info_hash=swarm.info_hash,
            peer_id=self.peer_id,
            port=listener.port,
            counters=lambda: _counters(0, 0, 1),
            on_peers=swarm.add_peers,
            timeout=float(self.opt("bt-tracker-timeout") or 60),
            proxies=self._proxies(),
            udp_shared=self.discovery.udp_for,
            tracer=self._tracer(),
        )
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(swarm.run)
                listener.register(swarm)
                swarm.add_peers(peers)
                nursery.start_soon(announcer.run)
                nursery.start_soon(self.discovery.serve_swarm, swarm, listener.port)
                nursery.start_soon(self.discovery.serve_lpd, swarm, listener.port)
                async with trio.open_nursery() as waiter:

                    async def wait(event: trio.Event) -> None:
                        await event.wait()
                        waiter.cancel_scope.cancel()

                    waiter.start_soon(wait, done)
                    waiter.start_soon(wait, swarm.fatal_event)
                    stop_timeout = float(self.opt("bt-stop-timeout") or 0)
                    if stop_timeout:
                        waiter.start_soon(self._stop_when_idle, swarm, stop_timeout)
                nursery.cancel_scope.cancel()
            if swarm.fatal is not None and not done.is_set():
                raise swarm.fatal
        finally:
            listener.unregister(swarm)
            with trio.CancelScope(shield=True):
                await announcer.stop(STOP_ANNOUNCE_TIMEOUT)

    async def _stop_when_idle(self, swarm: Any, stop_timeout: float) -> None:
        """``--bt-stop-timeout`` while the metadata is fetched too (aria2 arms its
        ``BtStopDownloadCommand`` in metadata-get mode): no metadata byte for SEC seconds."""
        idle = _IdleWatch(trio.current_time())
        while True:
            await trio.sleep(min(1.0, stop_timeout / 4))
            if idle.idle_for(swarm.metadata_received, trio.current_time()) >= stop_timeout:
                raise errors.TrioariaError(
                    f"GID#{self.gid} Stop downloading torrent due to --bt-stop-timeout option.",
                    exit_code=errors.ExitCode.IN_PROGRESS,
                    retryable=False,
                )

    # --- storage -------------------------------------------------------------------------------

    def _layout(self, meta: Metainfo, directory: str) -> Any:
        from ..storage.layout import FileEntry, FileLayout, safe_relative_path

        chosen = selected_indexes(self.options, len(meta.files))
        if self.only_file is not None:
            chosen = {i for i, f in enumerate(meta.files, start=1) if _names(f, self.only_file)}
            if not chosen:
                raise errors.OptionError(f"the torrent has no file named {self.only_file!r}")
        renames = _index_out(self.options)
        entries = []
        for i, f in enumerate(meta.files, start=1):
            path = f.path
            if i in renames:
                path = safe_relative_path(renames[i].split("/"))
            selected = (chosen is None or i in chosen) and not f.padding
            entries.append(FileEntry(path, f.length, f.offset, selected))
        if chosen is not None and not any(e.selected for e in entries):
            raise errors.OptionError("--select-file selects none of the torrent's files")
        return FileLayout(entries)

    async def _run_torrent(self, meta: Metainfo) -> None:
        """The torrent's files and swarm; the run's listener holds peers that dial while the
        files are checked, and refuses a second download of the same torrent (exit 12)."""
        from ..bt.mse import CryptoPolicy

        self.listener.expect(meta.info_hash, CryptoPolicy.from_options(self.opt))
        try:
            await self._run_files_and_swarm(meta)
        finally:
            self.listener.forget(meta.info_hash)

    async def _run_files_and_swarm(self, meta: Metainfo) -> None:
        from ..bt.mse import CryptoPolicy
        from ..bt.swarm import Swarm
        from ..storage.disk import remove_control_file
        from ..storage.session import PieceHashes, StorageSession, check_capacity

        directory = self._directory()
        layout = self._layout(meta, directory)
        self.total_length = meta.total_length
        control_path = os.path.join(directory, meta.name + ".aria2")
        files = [os.path.join(directory, e.path) for e in layout.files if e.selected]
        self.path = os.path.join(directory, meta.name) if meta.multi_file else files[0]
        every = [os.path.join(directory, e.path) for e in layout.files]
        busy = next((p for p in every if self.paths_in_use.taken(p, self.gid)), None)
        if busy is not None:  # aria2 RequestGroup::createInitialCommand: DUPLICATE_DOWNLOAD
            raise errors.TrioariaError(
                f"File {busy} is being downloaded by another download.",
                exit_code=errors.ExitCode.DUPLICATE_DOWNLOAD,
                retryable=False,
            )
        self.paths_in_use.claim(every, self.gid)
        if self.opt("remove-control-file") and not self.opt("dry-run"):
            remove_control_file(control_path)  # aria2: removed before the download starts
        has_control = os.path.exists(control_path)
        existing = any(os.path.exists(p) for p in files)
        # aria2 MultiDiskAdaptor::fileExists looks at every file, selected or not: a piece
        # that reaches into an unselected file writes there too
        unselected = [p for p in every if p not in files and os.path.exists(p)]
        check = bool(self.opt("check-integrity"))
        # --bt-seed-unverified: existing files without a control file are taken as complete,
        # no hash checked (aria2 RequestGroup: markAllPiecesDone, then straight to seeding)
        unverified = existing and not has_control and _flag(self.opt("bt-seed-unverified"), False)
        if (
            (existing or unselected)
            and not has_control
            and not (check or unverified or self.opt("continue") or self.opt("allow-overwrite"))
        ):
            there = files[0] if existing else unselected[0]
            raise errors.TrioariaError(
                f"File {there} exists, but a control file (*.aria2) does not exist. Download"
                " was canceled in order to prevent your file from being truncated to 0. If you"
                " are sure to download the file all over again, then delete it or add"
                " --allow-overwrite=true option and restart aria2.",
                exit_code=errors.ExitCode.FILE_ALREADY_EXISTS,
                retryable=False,
            )
        selected_length = sum(e.length for e in layout.files if e.selected)
        check_capacity(directory, selected_length, allocate=str(self.opt("file-allocation")))
        digests = tuple(meta.piece_hash(i) for i in range(meta.num_pieces))
        swarm_box: list[Swarm] = []
        session = StorageSession(
            directory,
            layout,
            piece_length=meta.piece_length,
            control_path=control_path,
            hashes=PieceHashes("sha-1", meta.piece_length, digests),
            info_hash=meta.info_hash,
            selector=str(self.opt("stream-piece-selector") or "default"),
            min_split_size=int(self.opt("min-split-size") or 20 << 20),
            file_allocation=str(self.opt("file-allocation")),
            no_file_allocation_limit=int(self.opt("no-file-allocation-limit") or 0),
            auto_save_interval=float(self.opt("auto-save-interval") or 0),
            disk_cache=int(self.opt("disk-cache") or 0),
            max_open_files=int(self.opt("bt-max-open-files") or 0),
            on_piece_failed=lambda piece, blamed: self._torrent_piece_failed(
                swarm_box, piece, blamed
            ),
        )
        self.session = session
        resume = has_control or (existing and (check or unverified or bool(self.opt("continue"))))
        if existing and not has_control and self.opt("allow-overwrite") and not check:
            resume = False
        try:
            resumed = await session.open("resume" if resume else "new")
            if unverified:
                session.mark_all_present()
                log.info("--bt-seed-unverified: %s taken as complete", self.path)
            elif check and existing:
                await self._verify_existing_pieces(meta)
                # --bt-hash-check-seed=false: a -V that finds everything is the end (aria2)
                self._skip_seeding = session.is_complete() and not _flag(
                    self.opt("bt-hash-check-seed"), True
                )
            elif not resumed and not existing:
                await session.allocate()
            elif not resumed and existing and not check:
                remove_control_file(control_path)  # continued from the files' contents
            swarm = Swarm(
                meta.info_hash,
                self.peer_id,
                meta=meta,
                session=session,
                max_peers=int(self.opt("bt-max-peers") or 0),
                request_peer_speed_limit=int(self.opt("bt-request-peer-speed-limit") or 0),
                peer_agent=str(self.opt("peer-agent") or "trioaria"),
                connect_timeout=float(self.opt("connect-timeout") or 60),
                download_limits=self._limits,
                upload_limits=self._upload_limits,
                crypto=CryptoPolicy.from_options(self.opt),
                tracer=self._tracer(),
            )
            if self.opt("enable-peer-exchange") and not meta.private:
                from ..bt.pex_exchange import PexExchange

                swarm.pex = PexExchange()
            self.discovery.attach(swarm, meta.private)
            swarm_box.append(swarm)
            session.uploaded_now = lambda: swarm.uploaded
            self.swarm = swarm
            session.on_piece_verified = swarm.piece_verified
            session.on_block_cancels = swarm.cancel_claims
            self._prioritize(meta, session)
            self._make_web_seeds(meta)
            await self._leech_and_seed(meta, session, swarm)
        finally:
            await session.close()

    def _torrent_piece_failed(
        self, swarm_box: list[Any], piece: int, blamed: frozenset[object]
    ) -> None:
        """A bad piece: peers that wrote it are banned, web seeds take a failure."""
        if swarm_box:
            swarm_box[0].piece_failed(piece, blamed)
        self._piece_failed(piece, blamed)

    def _prioritize(self, meta: Metainfo, session: Any) -> None:
        """``--bt-prioritize-piece=head[=SIZE],tail[=SIZE]``: those pieces of every selected
        file go first, through the shared picker's priority (peers and web seeds alike)."""
        value = self.opt("bt-prioritize-piece")
        if not value:
            return
        sizes = dict(value) if not isinstance(value, str) else {}
        if isinstance(value, str):
            from ..storage.picker import parse_prioritize_piece

            head_b, tail_b = parse_prioritize_piece(value)
            sizes = {k: v for k, v in (("head", head_b), ("tail", tail_b)) if v}
        files = [(e.offset, e.length) for e in session.layout.files if e.selected]
        session.picker.prioritize_head_tail(files, sizes.get("head"), sizes.get("tail"))
        log.debug("--bt-prioritize-piece: %s", sizes)

    def _make_web_seeds(self, meta: Metainfo) -> None:
        """BEP 19: the ``url-list`` and the URIs given with the torrent become mirrors."""
        from .webseeds import make_web_seed_mirrors, web_seed_uris

        uris = web_seed_uris(meta, self.web_seeds)
        if uris and meta.total_length:
            self.mirrors = make_web_seed_mirrors(self, meta, uris)

    async def _verify_existing_pieces(self, meta: Metainfo) -> None:
        """``-V``: hash every wanted piece of the files on disk; keep the ones that match."""
        session = self.session
        assert session is not None
        session.restart_from_zero()
        st = session.storage
        wanted = [p for p in range(st.num_pieces) if session.wanted[p]]
        self.phase, self.phase_done, self.phase_total = "Checksum", 0, len(wanted) * 1
        layout, paths = session.layout, session.paths
        good: list[int] = []
        batch = 64
        for start in range(0, len(wanted), batch):
            chunk = wanted[start : start + batch]
            jobs = [(p, p * meta.piece_length, st.piece_size(p), meta.piece_hash(p)) for p in chunk]
            good.extend(await trio.to_thread.run_sync(_check_pieces, layout, paths, jobs))
            self.phase_done = start + len(chunk)
        session.mark_verified_pieces(good)
        self.phase = ""
        log.info("-V: %d of %d pieces are good", len(good), len(wanted))

    def _left(self) -> int:
        session = self.session
        if session is None:
            return 0
        st = session.storage
        missing = 0
        for piece in range(st.num_pieces):
            if session.wanted[piece] and not st.verified[piece]:
                missing += st.piece_size(piece)
        return missing

    async def _leech_and_seed(self, meta: Metainfo, session: Any, swarm: Any) -> None:
        from ..bt.announce import Announcer

        tiers = tracker_tiers(meta.announce_list, self.options, private=meta.private)
        listener = self.listener
        announcer = Announcer(
            tiers,
            info_hash=meta.info_hash,
            peer_id=self.peer_id,
            port=listener.port,
            counters=lambda: _counters(
                swarm.uploaded, swarm.downloaded + self._web_bytes, self._left()
            ),
            on_peers=swarm.add_peers,
            interval_override=int(self.opt("bt-tracker-interval") or 0),
            timeout=float(self.opt("bt-tracker-timeout") or 60),
            proxies=self._proxies(),
            udp_shared=self.discovery.udp_for,
            tracer=self._tracer(),
        )
        self.announcer = announcer
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(swarm.run)
                listener.register(swarm)
                swarm.add_peers(getattr(self, "_magnet_peers", ()))
                nursery.start_soon(announcer.run)
                nursery.start_soon(self.discovery.serve_swarm, swarm, listener.port, meta.private)
                nursery.start_soon(self.discovery.serve_lpd, swarm, listener.port, meta.private)
                async with trio.open_nursery() as storage_nursery:
                    await storage_nursery.start(session.run)
                    if self.mirrors is not None:
                        from .webseeds import run_web_seeds

                        storage_nursery.start_soon(run_web_seeds, self)
                    stop_timeout = float(self.opt("bt-stop-timeout") or 0)
                    idle = _IdleWatch(trio.current_time())
                    while not session.is_complete():
                        if swarm.fatal is not None:
                            raise swarm.fatal
                        self._sync_meter(swarm)
                        now = trio.current_time()
                        if stop_timeout and idle.idle_for(self.bytes_fetched, now) >= stop_timeout:
                            # aria2 BtStopDownloadCommand: no payload for SEC seconds
                            raise errors.TrioariaError(
                                f"GID#{self.gid} Stop downloading torrent due to"
                                " --bt-stop-timeout option.",
                                exit_code=errors.ExitCode.IN_PROGRESS,
                                retryable=False,
                            )
                        with trio.move_on_after(COMPLETE_POLL):
                            await swarm.fatal_event.wait()
                    storage_nursery.cancel_scope.cancel()
                swarm.set_complete()
                await session.finish(keep_control=bool(self.opt("force-save")))
                # a download that started complete never "completed"; one that came from the
                # peers, the web seeds or both did
                fetched = swarm.downloaded + self._web_bytes
                if fetched:
                    announcer.completed()
                if fetched or self.opt("bt-enable-hook-after-hash-check"):
                    self.notify("bt-complete")  # --on-bt-download-complete, before seeding
                if self._skip_seeding:
                    log.info("GID#%s verified complete; --bt-hash-check-seed=false", self.gid)
                else:
                    log.info("GID#%s download complete, seeding: %s", self.gid, self.path)
                    await self._seed(session, swarm)
                nursery.cancel_scope.cancel()
        finally:
            listener.unregister(swarm)
            with trio.CancelScope(shield=True):
                await announcer.stop(STOP_ANNOUNCE_TIMEOUT)

    def _sync_meter(self, swarm: Any) -> None:
        """The group's meter (average speed, results table) follows the swarm's payload (web
        seeds add theirs as they read, through ``_count_bytes``)."""
        if self._meter is None:
            return
        delta = swarm.downloaded - self._swarm_bytes
        if delta > 0:
            self._meter.add(delta, trio.current_time())
            self._swarm_bytes = swarm.downloaded
            self.bytes_fetched += delta

    def _count_bytes(self, n: int) -> None:
        self.bytes_fetched += n
        self._web_bytes += n

    async def _seed(self, session: Any, swarm: Any) -> None:
        seed_time = self.opt("seed-time")
        ratio = float(self.opt("seed-ratio") or 0.0)
        if seed_time is not None and float(seed_time) <= 0:
            return
        completed = sum(e.length for e in session.layout.files if e.selected)
        if ratio > 0 and not completed:
            return  # aria2 ShareRatioSeedCriteria: nothing to share meets any ratio
        deadline = trio.current_time() + float(seed_time) * 60 if seed_time is not None else None
        self.seeding = True
        log.info("seeding %s (ratio %.2f, time %s min)", self.path, ratio, seed_time)
        try:
            with trio.CancelScope() as scope:
                self._seed_scope = scope
                while True:
                    # aria2 ShareRatioSeedCriteria: the upload of earlier runs counts too
                    if ratio > 0 and (session.upload_base + swarm.uploaded) / completed >= ratio:
                        break
                    now = trio.current_time()
                    if deadline is not None and now >= deadline:
                        break
                    wait = 0.5 if deadline is None else min(0.5, deadline - now)
                    await trio.sleep(max(0.0, wait))
        finally:
            self.seeding = False
            self._seed_scope = None
            if self.opt("force-save"):  # the control file keeps what seeding uploaded (aria2)
                with trio.CancelScope(shield=True), trio.move_on_after(10):
                    await session.save(force=True)


def _save_file(directory: str, path: str, data: bytes) -> None:
    """Write a small file (a fetched ``.torrent``, saved metadata) whole or not at all: a
    temporary name, then a rename, so a crash never leaves a truncated file behind.

    Raises:
        StorageError: the directory cannot be created (exit 18) or the file written (16).
    """
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise errors.StorageError(
            f"Failed to create directory {directory}: {exc.strerror}",
            exit_code=errors.ExitCode.DIR_CREATE_ERROR,
        ) from None
    from ..storage.disk import write_file_atomic

    try:
        write_file_atomic(path, data)
    except OSError as exc:
        raise errors.StorageError(
            f"Failed to write {path}: {exc.strerror}", exit_code=errors.ExitCode.FILE_CREATE_ERROR
        ) from None


class _IdleWatch:
    """Seconds since a byte counter last moved (``--bt-stop-timeout``; time passed in)."""

    def __init__(self, now: float) -> None:
        self._since = now
        self._last = -1

    def idle_for(self, counter: int, now: float) -> float:
        if counter != self._last:
            self._last = counter
            self._since = now
        return now - self._since


def _flag(value: object, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


_OVERALL_UPLOAD: list[SpeedLimit] = []


def _overall_upload_limit(rate: int) -> SpeedLimit:
    if not _OVERALL_UPLOAD:
        _OVERALL_UPLOAD.append(SpeedLimit(rate))
    elif rate and _OVERALL_UPLOAD[0].rate != rate:
        _OVERALL_UPLOAD[0].rate = rate
    return _OVERALL_UPLOAD[0]


def set_overall_upload_rate(rate: int) -> None:
    """``--max-overall-upload-limit`` changed (RPC ``changeGlobalOption``): every torrent's
    shared upload bucket takes the new rate at once (0: unlimited)."""
    _overall_upload_limit(rate).rate = rate


def _counters(uploaded: int, downloaded: int, left: int) -> Any:
    from ..bt.announce import AnnounceCounters

    return AnnounceCounters(uploaded, downloaded, left)


def _check_pieces(
    layout: Any, paths: list[str], jobs: list[tuple[int, int, int, bytes]]
) -> list[int]:
    """Worker thread: the pieces among ``jobs`` whose bytes on disk match their SHA-1."""
    good = []
    fds: dict[int, int | None] = {}
    try:
        for piece, start, length, digest in jobs:
            hasher = hashlib.sha1()
            ok = True
            for index, file_offset, _buf, size in layout.locate(start, length):
                if index not in fds:
                    try:
                        fds[index] = os.open(paths[index], os.O_RDONLY)
                    except OSError:
                        fds[index] = None
                fd = fds[index]
                if fd is None:
                    ok = False
                    break
                data = os.pread(fd, size, file_offset)
                if len(data) != size:
                    ok = False
                    break
                hasher.update(data)
            if ok and hasher.digest() == digest:
                good.append(piece)
    finally:
        for fd in fds.values():
            if fd is not None:
                os.close(fd)
    return good
