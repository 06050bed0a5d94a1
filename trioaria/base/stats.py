"""Immutable ``statistics()`` snapshots (trio's naming rule: long-lived objects expose them).

The console readout, the "Download Results" table and (later) RPC ``tellStatus`` read only
these snapshots, never the live objects, so a reader can never observe half an update.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["DownloadStats", "DownloadStatus", "EngineStats", "FileStats", "SourceStats"]


class DownloadStatus(enum.Enum):
    """Lifecycle states, named as aria2's RPC ``status`` values."""

    WAITING = "waiting"
    ACTIVE = "active"
    PAUSED = "paused"
    ERROR = "error"
    COMPLETE = "complete"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class SourceStats:
    """One source (mirror URI) of a download."""

    uri: str
    bytes_downloaded: int = 0
    download_speed: int = 0  # bytes per second, averaged over the last seconds
    connections: int = 0
    failures: int = 0
    dropped: bool = False
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class FileStats:
    """One file of a download (one for HTTP; many for multi-file torrents/Metalink)."""

    index: int  # 1-based, as aria2
    path: str
    length: int
    completed_length: int
    selected: bool = True


@dataclass(frozen=True, slots=True)
class DownloadStats:
    """Snapshot of one RequestGroup."""

    gid: str  # 16 lowercase hex digits, as aria2
    status: DownloadStatus
    total_length: int | None  # None while unknown (no Content-Length yet)
    completed_length: int
    download_speed: int  # bytes per second
    upload_speed: int = 0
    connections: int = 0
    path: str = ""
    files: tuple[FileStats, ...] = ()
    sources: tuple[SourceStats, ...] = ()
    piece_length: int = 0
    num_pieces: int = 0
    bitfield: bytes = b""
    error_code: int = 0
    error_message: str = ""
    phase: str = ""  # "" while downloading; "FileAlloc" or "Checksum" while those run
    phase_done: int = 0
    phase_total: int = 0
    # BitTorrent only (None / False for other downloads): the readout's SEED(ratio), SD: and
    # UL:(total) come from these, as aria2's printProgress
    seeder: bool = False  # every selected piece is verified and the torrent is seeding
    upload_length: int | None = None  # payload bytes uploaded this run
    num_seeders: int | None = None  # connected peers that have every piece

    @property
    def eta(self) -> float | None:
        """Seconds to completion at the current speed, or None when unknown."""
        if self.total_length is None or self.download_speed <= 0:
            return None
        return max(0, self.total_length - self.completed_length) / self.download_speed


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Snapshot of the whole DownloadEngine (aria2.getGlobalStat plus the groups)."""

    download_speed: int
    upload_speed: int
    num_active: int
    num_waiting: int
    num_stopped: int
    downloads: tuple[DownloadStats, ...] = field(default_factory=tuple)
