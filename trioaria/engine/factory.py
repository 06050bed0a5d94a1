"""Which URIs become which downloads: one factory for the command line, RPC and the Python API.

aria2's ``download_helper.cc`` rules, shared so a download added over RPC (``aria2.addUri``,
``aria2.addTorrent``, ``aria2.addMetalink``) or through :class:`trioaria.Session` is the same
kind of group the command line would build, with the run's server statistics
(``--server-stat-of``):

* each local Metalink document (``.meta4``/``.metalink``, or ``--metalink-file``) gives one
  download per selected file, its urls the mirrors (:mod:`trioaria.metalink.plan`);
* each torrent (a ``.torrent`` file or URL, or ``--torrent-file``) and each magnet link is one
  BitTorrent download (:class:`~trioaria.engine.torrent.TorrentGroup`);
* the other URIs are mirrors of one ordinary download.

Plain URLs never import the BitTorrent or Metalink packages (start-up time).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from ..metalink.detect import METALINK_SUFFIXES
from .group import RequestGroup
from .server_stat import ServerStatTable

__all__ = ["GroupFactory", "is_metalink_arg", "is_torrent_candidate"]

log = logging.getLogger("trioaria.engine.factory")


def is_metalink_arg(uri: str) -> bool:
    """A command-line argument naming a local Metalink document: a ``.meta4``/``.metalink``
    path, or an existing file that starts with ``<?xml`` (aria2 ``guessMetalinkFile``)."""
    if "://" in uri:
        return False
    if uri.lower().endswith(METALINK_SUFFIXES):
        return True
    if not os.path.isfile(uri):
        return False
    try:
        with open(uri, "rb") as f:
            return f.read(5) == b"<?xml"
    except OSError:
        return False


def is_torrent_candidate(uri: str) -> bool:
    """Whether ``uri`` may name a torrent (a magnet, a ``.torrent`` URL or a local path)."""
    low = uri.lower()
    return low.startswith("magnet:") or ".torrent" in low or "://" not in uri


def _gid(options: Any) -> str | None:
    return str(options.get("gid")) if options.is_set("gid") else None


class GroupFactory:
    """Builds request groups for one run (every group shares ``server_stats``).

    Args:
        server_stats: the run's ``--server-stat-if/-of`` table.
        spawn: adds downloads to the running engine: with it (and ``--follow-metalink`` not
            ``false``) an ordinary download that turns out to be a Metalink document starts
            the downloads it describes (:class:`trioaria.metalink.follow.FollowingGroup`).
    """

    def __init__(
        self,
        server_stats: ServerStatTable | None = None,
        spawn: Callable[[Sequence[RequestGroup]], None] | None = None,
    ) -> None:
        self.server_stats = server_stats if server_stats is not None else ServerStatTable()
        self.spawn = spawn

    def make_group(self, uris: list[str], options: Any) -> RequestGroup:
        """One ordinary download whose mirrors are ``uris``."""
        gid = _gid(options)
        if self.spawn is not None and str(options.get("follow-metalink") or "false") != "false":
            from ..metalink.follow import FollowingGroup

            return FollowingGroup(
                uris, options, gid=gid, server_stats=self.server_stats, spawn=self.spawn
            )
        return RequestGroup(uris, options, gid=gid, server_stats=self.server_stats)

    def make_groups(self, uris: list[str], options: Any) -> list[RequestGroup]:
        """Every download one command-line entry (or one ``addUri``) asks for.

        Raises:
            TrioariaError: an unreadable or invalid Metalink document (exit 20).
        """
        if options.get("metalink-file") or any(is_metalink_arg(u) for u in uris):
            return self._metalink_groups(uris, options)
        if not options.get("torrent-file") and not any(is_torrent_candidate(u) for u in uris):
            return [self.make_group(uris, options)]
        from .torrent import TorrentGroup, split_torrent_uris

        torrents, rest = split_torrent_uris(uris, options)
        if not torrents:
            return [self.make_group(uris, options)]
        kind: type[TorrentGroup] = TorrentGroup
        if options.get("pause-metadata") and any(t.kind != "file" for t in torrents):
            from .metadata_pause import MetadataPausingTorrent

            kind = MetadataPausingTorrent
        gid = _gid(options)
        # aria2: with -T the other URIs are the torrent's web seeds (BEP 19, merged with its
        # url-list); without -T they are a download of their own.
        seeds = rest if options.get("torrent-file") else []
        groups: list[RequestGroup] = [
            kind(t, options, gid=gid if i == 0 else None, web_seeds=seeds if i == 0 else ())
            for i, t in enumerate(torrents)
        ]
        if rest and not seeds:
            groups.append(self.make_group(rest, options.without("torrent-file", "gid")))
        return groups

    def _metalink_groups(self, uris: list[str], options: Any) -> list[RequestGroup]:
        from ..metalink.groups import build_groups
        from ..metalink.plan import metalink_downloads

        paths = [u for u in uris if is_metalink_arg(u)]
        rest = [u for u in uris if not is_metalink_arg(u)]
        if options.get("metalink-file"):
            paths.insert(0, str(options.get("metalink-file")))
        groups = build_groups(
            metalink_downloads(paths, options), gid=_gid(options), server_stats=self.server_stats
        )
        if rest and options.get("metalink-file"):
            # aria2 Context.cc: with -M the document is the download; the URIs are not used
            log.warning("-M: the URIs given with it are not used: %s", " ".join(rest))
        elif rest:  # torrents and magnets beside the documents are downloads of their own
            groups.extend(self.make_groups(rest, options.without("gid")))
        return groups
