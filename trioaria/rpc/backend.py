"""The RPC method table's :class:`~trioaria.rpc.methods.Backend` over a DownloadEngine (driver).

Everything here is synchronous: the engine's queue is plain state (docs/design.md §4), so an RPC
call changes it between two checkpoints and no other task sees half a change.  Downloads added
over RPC are built by the same :class:`~trioaria.engine.factory.GroupFactory` the command line
uses, so a magnet or ``.torrent`` URL given to ``addUri`` becomes a BitTorrent download, and
every download shares the run's server statistics (``--server-stat-of``) and the overall rate
limit.

``addTorrent`` and ``addMetalink`` receive the document itself.  As aria2 with
``--rpc-save-upload-metadata=true`` (the default), it is saved under ``--dir`` as
``<sha1 of the document>.torrent`` / ``.meta4`` and the download is built from that file, so
``--save-session`` can name it and ``-i`` restores it; with ``false`` the torrent stays in
memory and such downloads are left out of the session file (aria2's rule).

Live option changes follow aria2: ``max-download-limit`` on an active download sets its token
bucket's rate at once; the other changeable options are stored and, on an active download,
restart it (it is paused and queued again at the front).  ``changeGlobalOption`` updates the
template for new downloads and applies ``max-overall-download-limit`` and
``max-concurrent-downloads`` at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from .._version import __version__
from ..base.errors import TrioariaError
from ..base.stats import DownloadStatus, EngineStats
from ..cli.unsupported import check_refused
from ..engine.factory import GroupFactory
from ..engine.group import RequestGroup, new_gid
from ..engine.queue import DownloadEngine
from . import options as rpc_options
from .messages import RpcMethodError
from .session_file import save_session_file, write_atomic
from .status import BtView, DownloadView, PeerView
from .torrents import static_stats, torrent_bt_view, torrent_peers, uploaded_torrent_group

__all__ = ["EngineBackend"]

log = logging.getLogger("trioaria.rpc.backend")

_SCHEMES = frozenset({"http", "https", "ftp", "ftps", "ftpes", "sftp"})


def _strings(struct: rpc_options.OptionStruct) -> dict[str, str]:
    """Option values as the string form ``check_refused`` reads."""
    return {k: v if isinstance(v, str) else "\n".join(v) for k, v in struct.items()}


class EngineBackend:
    """Adapts a :class:`~trioaria.engine.queue.DownloadEngine` to the RPC method table."""

    def __init__(
        self,
        engine: DownloadEngine,
        *,
        factory: GroupFactory | None = None,
        secret: str | None = None,
        features: Iterable[str] = (),
    ) -> None:
        self.engine = engine
        self.factory = factory or GroupFactory()
        self._secret = secret or ""
        self._features = list(features)
        self.version = __version__
        self.session_id = secrets.token_hex(20)  # aria2: random per process, hex of 20 bytes
        self._delete_files: set[str] = set()  # trioaria.removeWithFiles waiting for the stop
        engine.listeners.append(self._on_engine_event)

    # --- identity -----------------------------------------------------------------------

    def check_token(self, token: str | None) -> bool:
        if not self._secret:
            return True
        given = (token or "").encode("utf-8", "surrogatepass")
        return token is not None and hmac.compare_digest(given, self._secret.encode())

    def features(self) -> list[str]:
        return list(self._features)

    # --- views --------------------------------------------------------------------------

    def _view(self, group: RequestGroup) -> DownloadView:
        opts = group.options
        directory = str(opts.get("dir") or ".")
        stats = group.statistics()
        bt: BtView | None = torrent_bt_view(group, stats)
        if bt is not None:
            stats = static_stats(group, stats)
        return DownloadView(
            stats=stats,
            dir=directory,
            uris=() if bt is not None else tuple(group.uris),
            out=str(opts.get("out") or ""),
            piece_length=int(opts.get("piece-length") or 1 << 20),
            bittorrent=bt,
        )

    def _group(self, gid: str) -> RequestGroup:
        group = self.engine.find(gid)
        if group is None:
            raise RpcMethodError(f"GID {gid} is not found")
        return group

    def gids(self) -> Iterable[str]:
        engine = self.engine
        return [g.gid for g in (*engine.active, *engine.waiting, *engine.stopped)]

    def view(self, gid: str) -> DownloadView | None:
        group = self.engine.find(gid)
        return None if group is None else self._view(group)

    def active(self) -> list[DownloadView]:
        return [self._view(g) for g in self.engine.active]

    def waiting(self) -> list[DownloadView]:
        return [self._view(g) for g in self.engine.waiting]

    def stopped(self) -> list[DownloadView]:
        return [self._view(g) for g in self.engine.stopped]

    def engine_stats(self) -> EngineStats:
        engine = self.engine
        active = [g.statistics() for g in engine.active]
        return EngineStats(
            download_speed=sum(d.download_speed for d in active),
            upload_speed=sum(d.upload_speed for d in active),
            num_active=len(active),
            num_waiting=len(engine.waiting),
            num_stopped=len(engine.stopped),
        )

    def stopped_total(self) -> int:
        return self.engine.stopped_total

    # --- queue --------------------------------------------------------------------------

    def _options(self, options: rpc_options.OptionStruct) -> Any:
        """The new download's options: the global ones with the request's on top.

        Raises:
            RpcMethodError: a ``gid`` option that is already taken.
        """
        check_refused(_strings(options), where="the RPC request")
        opts = self.engine.options.with_overrides(options, replace_lists=True)
        if "gid" in options and self.engine.find(str(opts.get("gid")).lower()) is not None:
            raise RpcMethodError(f"GID#{str(opts.get('gid')).lower()} is not unique.")
        return opts

    def _queue(self, groups: list[RequestGroup], opts: Any, position: int | None) -> list[str]:
        """Queue ``groups`` together at ``position``; their GIDs in order."""
        if not groups:
            raise RpcMethodError("No URI to download.")
        for i, group in enumerate(groups):
            if i == 0 and "gid" in opts.explicit_names():
                group.gid = str(opts.get("gid")).lower()
            while self.engine.find(group.gid) is not None:  # 2^-64, but be exact
                group.gid = new_gid()
            if opts.get("pause"):
                group.cancel("pause")  # waiting -> paused before it is queued
            self.engine.insert(group, None if position is None else position + i)
        return [g.gid for g in groups]

    def add_uri(
        self, uris: list[str], options: rpc_options.OptionStruct, position: int | None
    ) -> str:
        opts = self._options(options)
        # aria2 (AddUriRpcMethod) ignores local paths: a magnet or a .torrent URL is a
        # torrent, anything else is a mirror of one download.
        remote = [u for u in uris if "://" in u or u.lower().startswith("magnet:")]
        groups = self.factory.make_groups(remote, opts) if remote else []
        # aria2 adds one download only (AddUriRpcMethod: result.front(), the URIs' ordinary
        # download before any torrent): the GID returned is the only one queued
        from ..engine.torrent import TorrentGroup

        groups.sort(key=lambda g: isinstance(g, TorrentGroup))
        if len(groups) > 1:
            log.info("aria2.addUri: one download only; not added: %d more", len(groups) - 1)
        return self._queue(groups[:1], opts, position)[0]

    def add_torrent(
        self,
        data: bytes,
        uris: list[str],
        options: rpc_options.OptionStruct,
        position: int | None,
    ) -> str:
        from ..bt.metainfo import parse_torrent

        opts = self._options(options)
        meta = parse_torrent(data, default_name="")  # MetainfoError: the method's error
        # the uris are the torrent's web seeds (BEP 19), as aria2 takes them
        if opts.get("rpc-save-upload-metadata"):
            path = _save_upload(opts, data, ".torrent")
            groups = self.factory.make_groups(
                list(uris), opts.with_overrides({"torrent-file": path})
            )
        else:
            groups = [uploaded_torrent_group(meta, opts, web_seeds=uris)]
        return self._queue(groups, opts, position)[0]

    def add_metalink(
        self, data: bytes, options: rpc_options.OptionStruct, position: int | None
    ) -> list[str]:
        opts = self._options(options)
        path = _save_upload(opts, data, ".meta4")
        try:
            groups = self.factory.make_groups([path], opts.with_overrides({"metalink-file": ""}))
        finally:
            if not opts.get("rpc-save-upload-metadata"):
                with contextlib.suppress(OSError):
                    os.remove(path)
        if not opts.get("rpc-save-upload-metadata"):
            for group in groups:
                group.save_in_session = False  # type: ignore[attr-defined]
        return self._queue(groups, opts, position)

    def seeding_gids(self) -> list[str]:
        """Running torrents that have every selected piece and seed now."""
        return [g.gid for g in self.engine.active if getattr(g, "seeding", False)]

    def peers(self, gid: str) -> list[PeerView]:
        return torrent_peers(self._group(gid))

    def change_uri(
        self, gid: str, index: int, remove: list[str], add: list[str], position: int | None
    ) -> tuple[int, int]:
        group = self._group(gid)
        if group.state in (DownloadStatus.COMPLETE, DownloadStatus.ERROR, DownloadStatus.REMOVED):
            raise RpcMethodError(f"No URI to change for GID#{gid}")
        if torrent_bt_view(group, None) is not None or index != 1:
            raise RpcMethodError(f"No such file: index={index}")
        return self._change_uris(group, remove, add, position)

    def _change_uris(
        self, group: RequestGroup, remove: list[str], add: list[str], position: int | None
    ) -> tuple[int, int]:
        """aria2 ``changeUri``: delete one occurrence per URI of ``remove``, then insert the
        valid URIs of ``add`` at ``position`` (the end when None).  A running download is
        restarted so its connections use the new list (progress is kept)."""
        deleted = 0
        for uri in remove:
            if uri in group.uris:
                group.uris.remove(uri)
                deleted += 1
        valid = [u for u in add if u.partition("://")[0].lower() in _SCHEMES and "://" in u]
        where = len(group.uris) if position is None else min(max(0, position), len(group.uris))
        group.uris[where:where] = valid
        if (deleted or valid) and group in self.engine.active:
            self.engine.restart(group)
        return deleted, len(valid)

    def pause(self, gid: str, *, force: bool) -> bool:
        return self.engine.pause(self._group(gid))

    def pause_all(self, *, force: bool) -> None:
        for group in [*self.engine.active, *self.engine.waiting]:
            self.engine.pause(group)

    def unpause(self, gid: str) -> bool:
        return self.engine.unpause(self._group(gid))

    def unpause_all(self) -> None:
        for group in list(self.engine.waiting):
            self.engine.unpause(group)

    def remove(self, gid: str, *, force: bool) -> bool:
        return self.engine.remove(self._group(gid))

    def remove_with_files(self, gid: str) -> bool:
        """``trioaria.removeWithFiles``: remove, then delete the files and the control file
        once the download stopped (its files are closed by then)."""
        group = self._group(gid)
        self._delete_files.add(group.gid)
        if not self.engine.remove(group):
            self._delete_files.discard(group.gid)
            return False
        return True

    def _on_engine_event(self, event: str, group: RequestGroup) -> None:
        if event == "stop" and group.gid in self._delete_files:
            self._delete_files.discard(group.gid)
            _delete_download_files(group)

    def change_position(self, gid: str, pos: int, how: str) -> int | None:
        return self.engine.change_position(self._group(gid), pos, how)

    # --- options ------------------------------------------------------------------------

    def change_option(self, gid: str, struct: Mapping[str, Any]) -> bool:
        group = self._group(gid)
        engine = self.engine
        active = group in engine.active
        if not active and group not in engine.waiting:
            return False
        change = rpc_options.split_change(struct, active=active)
        every = {**change.live, **change.restart}
        check_refused(_strings(every), where="the RPC request")
        group.options = group.options.with_overrides(every, replace_lists=True)
        if "max-download-limit" in every:
            group.speed_limit.rate = int(group.options.get("max-download-limit") or 0)
        # a torrent's upload cap and peer count change at once too (aria2 changeOption)
        upload = getattr(group, "upload_limit", None)
        if "max-upload-limit" in every and upload is not None:
            upload.rate = int(group.options.get("max-upload-limit") or 0)
        swarm = getattr(group, "swarm", None)
        if "bt-max-peers" in every and swarm is not None:
            swarm.max_peers = int(group.options.get("bt-max-peers") or 0)
        if active and change.restart:
            engine.restart(group)
        return True

    def change_global_option(self, options: rpc_options.OptionStruct) -> None:
        check_refused(_strings(options), where="the RPC request")
        engine = self.engine
        engine.options = engine.options.with_overrides(options, replace_lists=True)
        if "max-overall-download-limit" in options:
            engine.download_limit.rate = int(engine.options.get("max-overall-download-limit") or 0)
        if "max-overall-upload-limit" in options:
            from ..engine.torrent import set_overall_upload_rate

            set_overall_upload_rate(int(engine.options.get("max-overall-upload-limit") or 0))
        if "max-concurrent-downloads" in options:
            engine.wake()

    def download_options(self, gid: str) -> dict[str, str] | None:
        group = self.engine.find(gid)
        return None if group is None else dict(group.options.as_strings())

    def global_options(self) -> dict[str, str]:
        return dict(self.engine.options.as_strings())

    # --- results and the process ----------------------------------------------------------

    def purge_results(self) -> None:
        self.engine.purge_results()

    def remove_result(self, gid: str) -> bool:
        return self.engine.remove_result(self._group(gid))

    def shutdown(self, *, force: bool) -> None:
        self.engine.shutdown(force=force)

    def save_session(self) -> str:
        path = self.engine.options.get("save-session")
        if not path:
            raise RpcMethodError("Filename is not given.")
        try:
            save_session_file(self.engine, str(path))
        except (OSError, TrioariaError) as exc:
            raise RpcMethodError(f"Failed to serialize session to '{path}'.") from exc
        return str(path)


def _delete_download_files(group: RequestGroup) -> None:
    """Delete a stopped download's files and control files (never a directory)."""
    stats = group.statistics()
    paths = {f.path for f in stats.files if f.path}
    if stats.path and not os.path.isdir(stats.path):
        paths.add(stats.path)
    controls = {f"{p}.aria2" for p in paths}
    if stats.path:
        controls.add(f"{stats.path}.aria2")  # a multi-file torrent's, next to its directory
    for path in sorted(paths | controls):
        try:
            os.remove(path)
            log.log(25, "Deleted %s (trioaria.removeWithFiles)", path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot delete %s: %s", path, exc)


def _save_upload(opts: Any, data: bytes, suffix: str) -> str:
    """Save an uploaded torrent or Metalink as ``<dir>/<sha1 hex><suffix>`` (aria2)."""
    directory = os.path.abspath(os.path.expanduser(str(opts.get("dir") or ".")))
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, hashlib.sha1(data).hexdigest() + suffix)
    write_atomic(path, data)
    return path
