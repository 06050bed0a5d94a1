"""``--pause-metadata``: a torrent whose metainfo had to be downloaded stops, paused, once it has it.

aria2 runs a ``.torrent`` URL or a magnet link as a metadata download that is followed by the
real one, and ``--pause-metadata`` queues that follower paused.  A trioaria torrent download
fetches its metadata itself (:class:`~trioaria.engine.torrent.TorrentGroup`), so the same
effect is one group that pauses right after the metadata arrived and keeps it in memory:
``aria2.unpause`` continues with the payload without asking the swarm again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from .torrent import TorrentGroup

if TYPE_CHECKING:
    from ..bt.metainfo import Metainfo

__all__ = ["MetadataPausingTorrent"]


class MetadataPausingTorrent(TorrentGroup):
    """A :class:`~trioaria.engine.torrent.TorrentGroup` honouring ``--pause-metadata``."""

    _fetched: Metainfo | None = None

    async def _metainfo(self) -> Metainfo | None:
        if self._fetched is not None:
            return self._fetched
        meta = await super()._metainfo()
        if meta is not None and self.source.kind != "file" and self.opt("pause-metadata"):
            self._fetched = meta
            self.cancel("pause")  # the group's own scope: it ends paused, metadata kept
            await trio.lowlevel.checkpoint()
        return meta
