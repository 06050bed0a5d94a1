"""The RPC method table's :class:`~trioaria.rpc.methods.Backend` over a DownloadEngine (driver).

Everything here is synchronous: the engine's queue is plain state (docs/design.md §4), so an RPC
call changes it between two checkpoints and no other task sees half a change.  Downloads added
over RPC are built by the same ``make_group`` factory the command line uses, so they share the
run's server statistics (``--server-stat-of``) and the overall rate limit.

Live option changes follow aria2: ``max-download-limit`` on an active download sets its token
bucket's rate at once; the other changeable options are stored and, on an active download,
restart it (it is paused and queued again at the front).  ``changeGlobalOption`` updates the
template for new downloads and applies ``max-overall-download-limit`` and
``max-concurrent-downloads`` at once.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._version import __version__
from ..base.errors import TrioariaError
from ..base.stats import EngineStats
from ..cli.unsupported import check_refused
from ..engine.group import RequestGroup, new_gid
from ..engine.queue import DownloadEngine
from . import options as rpc_options
from .messages import RpcMethodError
from .session import session_text
from .status import DownloadView

__all__ = ["EngineBackend"]

log = logging.getLogger("trioaria.rpc.backend")

MakeGroup = Callable[[list[str], Any], RequestGroup]


def _strings(struct: rpc_options.OptionStruct) -> dict[str, str]:
    """Option values as the string form ``check_refused`` reads."""
    return {k: v if isinstance(v, str) else "\n".join(v) for k, v in struct.items()}


class EngineBackend:
    """Adapts a :class:`~trioaria.engine.queue.DownloadEngine` to the RPC method table."""

    def __init__(
        self,
        engine: DownloadEngine,
        *,
        make_group: MakeGroup | None = None,
        secret: str | None = None,
        features: Iterable[str] = (),
    ) -> None:
        self.engine = engine
        self._make_group: MakeGroup = make_group or (lambda uris, opts: RequestGroup(uris, opts))
        self._secret = secret or ""
        self._features = list(features)
        self.version = __version__
        self.session_id = secrets.token_hex(20)  # aria2: random per process, hex of 20 bytes

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
        return DownloadView(
            stats=group.statistics(),
            dir=directory,
            uris=tuple(group.uris),
            out=str(opts.get("out") or ""),
            piece_length=int(opts.get("piece-length") or 1 << 20),
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

    def add_uri(
        self, uris: list[str], options: rpc_options.OptionStruct, position: int | None
    ) -> str:
        check_refused(_strings(options), where="the RPC request")
        opts = self.engine.options.with_overrides(options, replace_lists=True)
        gid = None
        if "gid" in options:
            gid = str(opts.get("gid")).lower()
            if self.engine.find(gid) is not None:
                raise RpcMethodError(f"GID#{gid} is not unique.")
        group = self._make_group(uris, opts)
        if gid is not None:
            group.gid = gid
        while gid is None and self.engine.find(group.gid) is not None:  # 2^-64, but be exact
            group.gid = new_gid()
        if opts.get("pause"):
            group.cancel("pause")  # waiting -> paused before it is queued
        self.engine.insert(group, position)
        return group.gid

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
        if active and change.restart:
            engine.restart(group)
        return True

    def change_global_option(self, options: rpc_options.OptionStruct) -> None:
        check_refused(_strings(options), where="the RPC request")
        engine = self.engine
        engine.options = engine.options.with_overrides(options, replace_lists=True)
        if "max-overall-download-limit" in options:
            engine.download_limit.rate = int(engine.options.get("max-overall-download-limit") or 0)
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
        groups = [*self.engine.active, *self.engine.waiting, *self.engine.stopped]
        text = session_text(
            (g.uris, g.gid, g.state, g.options.as_strings(), g.options.explicit_names())
            for g in groups
        )
        try:
            _write_atomic(str(path), text.encode("utf-8"))
        except (OSError, TrioariaError) as exc:
            raise RpcMethodError(f"Failed to serialize session to '{path}'.") from exc
        log.log(25, "Serialized session to '%s' successfully.", path)
        return str(path)


def _write_atomic(path: str, data: bytes) -> None:
    """Write a small file through a temporary name and a rename (``.gz`` is gzipped)."""
    if path.endswith(".gz"):
        import gzip

        data = gzip.compress(data)
    tmp = f"{path}.__temp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
