"""What RPC shows of BitTorrent downloads, and torrents uploaded without a file (driver).

``tellStatus`` adds ``infoHash``, ``numSeeders``, ``seeder`` and the ``bittorrent`` struct for a
:class:`~trioaria.engine.torrent.TorrentGroup` (aria2 ``gatherBitTorrentMetadata``): the
announce tiers, comment, creation date, mode and ``info.name`` once the metadata is known (a
magnet shows its ``tr`` trackers and info hash before that).  ``getPeers`` lists the connected
peers of its swarm.

The BitTorrent modules are imported only once a torrent exists: until
``trioaria.engine.torrent`` is loaded no group can be a torrent, so plain HTTP daemons never
import them.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import trio

from ..base.stats import DownloadStats
from .status import BtView, PeerView

if TYPE_CHECKING:
    from ..bt.metainfo import Metainfo
    from ..engine.group import RequestGroup

__all__ = ["static_stats", "torrent_bt_view", "torrent_peers", "uploaded_torrent_group"]

_TORRENT_MODULE = "trioaria.engine.torrent"

# metainfo of torrents read from a file before their download started (parsed once)
_parsed: weakref.WeakKeyDictionary[Any, Metainfo | None] = weakref.WeakKeyDictionary()


def _is_torrent(group: Any) -> bool:
    module = sys.modules.get(_TORRENT_MODULE)
    return module is not None and isinstance(group, module.TorrentGroup)


def _metainfo(group: Any) -> Metainfo | None:
    """The torrent's metainfo: the running group's, else the file's (read once)."""
    if group.meta is not None:
        return group.meta  # type: ignore[no-any-return]
    fetched = getattr(group, "_fetched", None)  # --pause-metadata, or kept in memory
    if fetched is not None:
        return fetched  # type: ignore[no-any-return]
    source = group.source
    if source.kind != "file":
        return None
    if group not in _parsed:
        from ..base.errors import TrioariaError
        from ..bt.metainfo import parse_torrent

        try:
            with open(source.value, "rb") as f:
                _parsed[group] = parse_torrent(f.read(), default_name=source.value)
        except (OSError, TrioariaError):
            _parsed[group] = None
    return _parsed[group]


def torrent_bt_view(group: RequestGroup, stats: DownloadStats | None) -> BtView | None:
    """The ``bittorrent`` part of ``tellStatus`` for a torrent download, else None."""
    if not _is_torrent(group):
        return None
    torrent: Any = group
    meta = _metainfo(torrent)
    swarm = torrent.swarm
    seeders = sum(1 for p in swarm.peers if p.state is not None and p.state.seed) if swarm else 0
    uploaded = int(swarm.uploaded) if swarm is not None else 0
    done = (
        stats is not None
        and bool(stats.total_length)
        and (stats.completed_length >= (stats.total_length or 0))
    )
    if meta is not None:
        return BtView(
            info_hash=meta.info_hash_hex,
            announce_list=meta.announce_list,
            name=meta.name,
            mode="multi" if meta.multi_file else "single",
            comment=meta.comment,
            creation_date=meta.creation_date,
            num_seeders=seeders,
            seeder=done,
            uploaded=uploaded,
        )
    if torrent.source.kind == "magnet":
        from ..base.errors import TrioariaError
        from ..bt.metainfo import parse_magnet

        try:
            magnet = parse_magnet(torrent.source.value)
        except TrioariaError:
            return None
        return BtView(
            info_hash=magnet.info_hash_hex,
            announce_list=tuple((t,) for t in magnet.trackers),
            num_seeders=seeders,
        )
    return None  # a .torrent URL not fetched yet is an ordinary download to aria2 too


def static_stats(group: RequestGroup, stats: DownloadStats) -> DownloadStats:
    """A queued torrent's snapshot completed from its metainfo (aria2 knows the files and the
    pieces as soon as a torrent is added; the group learns them when it runs)."""
    if not _is_torrent(group) or stats.num_pieces:
        return stats
    meta = _metainfo(group)
    if meta is None:
        return stats
    import dataclasses
    import os

    from ..base.stats import FileStats
    from ..engine.torrent import selected_indexes

    directory = os.path.abspath(os.path.expanduser(str(group.options.get("dir") or ".")))
    chosen = selected_indexes(group.options, len(meta.files))
    files = tuple(
        FileStats(
            i + 1,
            os.path.join(directory, f.path),
            f.length,
            0,
            selected=chosen is None or i + 1 in chosen,
        )
        for i, f in enumerate(meta.files)
        if not f.padding
    )
    # as aria2: totalLength and the bitfield stay unknown until the download starts
    return dataclasses.replace(
        stats,
        files=files,
        path=os.path.join(directory, meta.name),
        piece_length=meta.piece_length,
        num_pieces=meta.num_pieces,
    )


def torrent_peers(group: RequestGroup) -> list[PeerView]:
    """The connected peers of a torrent download (none for other downloads)."""
    if not _is_torrent(group):
        return []
    swarm: Any = getattr(group, "swarm", None)
    if swarm is None:
        return []
    now = trio.current_time()
    out: list[PeerView] = []
    for peer in list(swarm.peers):
        state = peer.state
        if state is None or not peer.ready:
            continue
        pieces = state.pieces
        out.append(
            PeerView(
                peer_id=bytes(peer.peer_id),
                ip=str(peer.addr[0]),
                port=int(peer.addr[1]),
                bitfield=pieces.to_bytes() if pieces is not None else b"",
                am_choking=bool(state.am_choking),
                peer_choking=bool(state.peer_choking),
                download_speed=int(state.download.rate(now)),
                upload_speed=int(state.upload.rate(now)),
                seeder=bool(state.seed),
            )
        )
    return out


def uploaded_torrent_group(
    meta: Metainfo, options: Any, *, web_seeds: Sequence[str] = ()
) -> RequestGroup:
    """A torrent download whose metainfo stays in memory (``--rpc-save-upload-metadata=false``).

    aria2 leaves such downloads out of ``--save-session``: there is no file to name.
    """
    from ..engine.torrent import TorrentGroup, TorrentSource

    class UploadedTorrent(TorrentGroup):
        save_in_session = False
        _fetched = meta  # what tellStatus reads before the download runs

        async def _metainfo(self) -> Metainfo | None:
            return meta

    return UploadedTorrent(
        TorrentSource("file", f"{meta.info_hash_hex}.torrent"), options, web_seeds=web_seeds
    )
