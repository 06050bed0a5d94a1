"""aria2's status structs built from ``statistics()`` snapshots, and list pagination (pure).

Every number is a string in aria2's answers (``"1048576"``), booleans are ``"true"`` /
``"false"`` and the bitfield is lowercase hex, highest bit first (``src/RpcMethodImpl.cc``
``gatherProgressCommon`` and ``gatherStoppedDownload``).  A download that is running or queued
reports its live progress; a stopped one (complete, error, removed) also reports ``errorCode``
and ``errorMessage`` and always ``downloadSpeed``/``connections`` ``"0"``.  ``bitfield`` is left
out until the download knows its pieces.  A ``keys`` list restricts the struct to those keys;
an empty list means every key.

:func:`paginate` is aria2's ``tellWaiting``/``tellStopped`` window: ``[offset, offset+num)``;
a negative ``offset`` counts from the end (-1 is the last item) and the window is returned in
reverse order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..base.stats import DownloadStats, DownloadStatus, EngineStats

__all__ = [
    "REMOVED_CODE",
    "BtView",
    "DownloadView",
    "PeerView",
    "file_entries",
    "global_stat",
    "paginate",
    "peer_entries",
    "server_entries",
    "status_struct",
    "uri_entries",
]

T = TypeVar("T")

#: aria2's ``errorCode`` for a download removed by the user (error_code::REMOVED).
REMOVED_CODE = 31

_STOPPED = (DownloadStatus.COMPLETE, DownloadStatus.ERROR, DownloadStatus.REMOVED)


@dataclass(frozen=True, slots=True)
class BtView:
    """What ``tellStatus`` shows of a torrent beyond the common fields (aria2's
    ``gatherBitTorrentMetadata`` and ``infoHash``/``numSeeders``/``seeder``).

    Attributes:
        info_hash: the info hash, 40 lowercase hex digits.
        announce_list: the torrent's tracker tiers (a magnet's ``tr`` values, one per tier).
        name: ``info.name``; None while a magnet's metadata is not there yet.
        mode: ``single`` or ``multi`` (empty while the metadata is unknown).
        comment: the torrent's comment, if any.
        creation_date: ``creation date`` in seconds since the epoch, if any.
        num_seeders: connected peers that have every piece.
        seeder: we have every selected piece (and are seeding).
        uploaded: payload bytes sent to peers this run.
    """

    info_hash: str
    announce_list: tuple[tuple[str, ...], ...] = ()
    name: str | None = None
    mode: str = ""
    comment: str | None = None
    creation_date: int | None = None
    num_seeders: int = 0
    seeder: bool = False
    uploaded: int = 0


@dataclass(frozen=True, slots=True)
class PeerView:
    """One connected peer for ``aria2.getPeers``."""

    peer_id: bytes
    ip: str
    port: int
    bitfield: bytes
    am_choking: bool
    peer_choking: bool
    download_speed: int
    upload_speed: int
    seeder: bool


@dataclass(frozen=True, slots=True)
class DownloadView:
    """What RPC shows of one download: its snapshot plus the settings it was added with.

    Attributes:
        stats: the group's ``statistics()`` snapshot.
        dir: the ``--dir`` the download writes to.
        uris: the mirror URIs it was added with.
        out: ``--out`` when given (names the file before the download starts).
        piece_length: ``--piece-length`` (reported until the download knows its pieces).
        bittorrent: the torrent's fields, for a BitTorrent download.
    """

    stats: DownloadStats
    dir: str
    uris: tuple[str, ...] = ()
    out: str = ""
    piece_length: int = 1 << 20
    bittorrent: BtView | None = None


def _s(n: int | None) -> str:
    return str(n) if n else "0"


def _bool(flag: bool) -> str:
    return "true" if flag else "false"


def _join(directory: str, name: str) -> str:
    if not name or name.startswith("/"):
        return name
    return f"{directory.rstrip('/')}/{name}" if directory else name


def uri_entries(view: DownloadView) -> list[dict[str, str]]:
    """``getUris``: each mirror URI, ``used`` once a connection took it, else ``waiting``."""
    sources = view.stats.sources
    if not sources:
        return [{"uri": u, "status": "waiting"} for u in view.uris]
    out = []
    for s in sources:
        used = s.bytes_downloaded > 0 or s.connections > 0 or s.failures > 0 or s.dropped
        out.append({"uri": s.uri, "status": "used" if used else "waiting"})
    return out


def file_entries(view: DownloadView) -> list[dict[str, Any]]:
    """``getFiles``: index (1-based), path, length, completedLength, selected, uris."""
    stats = view.stats
    uris = uri_entries(view)
    if stats.files:
        return [
            {
                "index": str(f.index),
                "path": f.path,
                "length": _s(f.length),
                "completedLength": _s(f.completed_length),
                "selected": _bool(f.selected),
                "uris": uris,
            }
            for f in stats.files
        ]
    return [
        {
            "index": "1",
            "path": stats.path or _join(view.dir, view.out),
            "length": _s(stats.total_length),
            "completedLength": _s(stats.completed_length),
            "selected": "true",
            "uris": uris,
        }
    ]


def server_entries(view: DownloadView) -> list[dict[str, Any]]:
    """``getServers``: per file, the mirrors that have a connection now."""
    servers = [
        {"uri": s.uri, "currentUri": s.uri, "downloadSpeed": _s(s.download_speed)}
        for s in view.stats.sources
        if s.connections > 0
    ]
    return [{"index": "1", "servers": servers}]


def percent_encode(raw: bytes) -> str:
    """aria2's ``util::torrentPercentEncode``: unreserved bytes as-is, others ``%XX``."""
    safe = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in raw)


def peer_entries(peers: Sequence[PeerView]) -> list[dict[str, str]]:
    """``getPeers``: one struct per connected peer (aria2's ``gatherPeer``)."""
    return [
        {
            "peerId": percent_encode(p.peer_id),
            "ip": p.ip,
            "port": str(p.port),
            "bitfield": p.bitfield.hex(),
            "amChoking": _bool(p.am_choking),
            "peerChoking": _bool(p.peer_choking),
            "downloadSpeed": _s(p.download_speed),
            "uploadSpeed": _s(p.upload_speed),
            "seeder": _bool(p.seeder),
        }
        for p in peers
    ]


def _bittorrent_struct(bt: BtView) -> dict[str, Any]:
    """The ``bittorrent`` struct: ``announceList`` always; the others when known (aria2)."""
    out: dict[str, Any] = {"announceList": [list(tier) for tier in bt.announce_list]}
    if bt.comment:
        out["comment"] = bt.comment
    if bt.creation_date:
        out["creationDate"] = bt.creation_date  # an integer in aria2's answer, not a string
    if bt.mode:
        out["mode"] = bt.mode
    if bt.name is not None:
        out["info"] = {"name": bt.name}
    return out


def status_struct(view: DownloadView, keys: Sequence[str] = ()) -> dict[str, Any]:
    """``tellStatus``: the status struct, restricted to ``keys`` when given."""
    stats = view.stats
    stopped = stats.status in _STOPPED
    piece_length = stats.piece_length or view.piece_length
    values: dict[str, Any] = {
        "gid": stats.gid,
        "status": stats.status.value,
        "totalLength": _s(stats.total_length),
        "completedLength": _s(stats.completed_length),
        "uploadLength": "0",
        "downloadSpeed": "0" if stopped else _s(stats.download_speed),
        "uploadSpeed": "0" if stopped else _s(stats.upload_speed),
        "connections": "0" if stopped else _s(stats.connections),
        "pieceLength": _s(piece_length),
        "numPieces": _s(stats.num_pieces),
        "dir": view.dir,
    }
    if stats.bitfield:
        values["bitfield"] = stats.bitfield.hex()
    bt = view.bittorrent
    if bt is not None:
        values["uploadLength"] = _s(bt.uploaded)
        values["infoHash"] = bt.info_hash
        values["numSeeders"] = "0" if stopped else _s(bt.num_seeders)
        values["seeder"] = _bool(bt.seeder)
        values["bittorrent"] = _bittorrent_struct(bt)
    if stopped:
        code = stats.error_code
        if stats.status is DownloadStatus.REMOVED:
            code = REMOVED_CODE
        elif stats.status is DownloadStatus.COMPLETE:
            code = 0
        values["errorCode"] = str(code)
        values["errorMessage"] = stats.error_message
    if keys:  # a set once per struct: tellWaiting(0, 1000) builds a thousand of these
        wanted = set(keys)
        values = {k: v for k, v in values.items() if k in wanted}
        if "files" not in wanted:
            return values
    values["files"] = file_entries(view)
    return values


def global_stat(engine: EngineStats, *, num_stopped_total: int) -> dict[str, str]:
    """``getGlobalStat``: overall speeds and how many downloads are in each list."""
    return {
        "downloadSpeed": _s(engine.download_speed),
        "uploadSpeed": _s(engine.upload_speed),
        "numActive": _s(engine.num_active),
        "numWaiting": _s(engine.num_waiting),
        "numStopped": _s(engine.num_stopped),
        "numStoppedTotal": _s(num_stopped_total),
    }


def paginate(items: Sequence[T], offset: int, num: int) -> list[T]:
    """aria2's pagination window (``AbstractPaginationRpcMethod``)."""
    if num <= 0:
        return []
    size = len(items)
    if offset < 0:
        last = offset + size  # index of the window's last item, counted from the front
        if last < 0:
            return []
        first = max(0, last - (num - 1))
        return list(reversed(items[first : last + 1]))
    if offset >= size:
        return []
    return list(items[offset : offset + num])
