"""The RPC method table: aria2's ``aria2.*`` and ``system.*`` methods over a small interface (pure).

Theory of operation
-------------------
:func:`dispatch` runs one :class:`~trioaria.rpc.messages.RpcRequest` against a :class:`Backend`
and returns an :class:`~trioaria.rpc.messages.RpcResponse`; it never raises.  In aria2's order
(``src/RpcMethod.cc``):

1. **Token.**  A first parameter that is a string starting with ``token:`` is removed from the
   list; with ``--rpc-secret`` set the token must match it (the backend compares in constant
   time), otherwise the answer is ``"Unauthorized"`` and the response is marked unauthorized
   so the driver delays it.  ``system.listMethods`` and ``system.listNotifications`` need no
   token; ``system.multicall`` takes none itself: each inner call carries its own.
2. **Parameters** are checked by position with aria2's messages (``The parameter at 0 has
   wrong type.``, ``... is required but missing.``); a GID may be any unique prefix
   (``GID 0123 is not unique``, ``GID ... is not found``, ``Invalid GID ...``).
3. The method asks the backend, which does the work synchronously (docs/design.md §4): the
   engine's queue is plain state, so there is nothing to await.

Every failure is code 1 with a message (``faultCode`` 1 in XML-RPC), including an unknown method
(``No such method: X``), exactly as aria2; an unexpected exception inside a method also becomes
code 1 instead of reaching the transport.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from ..base.errors import TrioariaError
from ..base.stats import DownloadStatus, EngineStats
from . import options as rpc_options
from . import status
from .messages import METHOD_ERROR, RpcMethodError, RpcRequest, RpcResponse, error_response
from .status import DownloadView

__all__ = ["METHODS", "METHOD_NAMES", "NOTIFICATIONS", "Backend", "dispatch", "expand_gid"]

NOTIFICATIONS = (
    "aria2.onDownloadStart",
    "aria2.onDownloadPause",
    "aria2.onDownloadStop",
    "aria2.onDownloadComplete",
    "aria2.onDownloadError",
    "aria2.onBtDownloadComplete",
)


class Backend(Protocol):
    """What the method table needs from the engine (``trioaria.rpc.backend`` implements it)."""

    version: str
    session_id: str

    def check_token(self, token: str | None) -> bool:
        """Whether ``token`` (None: no ``token:`` parameter) satisfies ``--rpc-secret``."""

    def features(self) -> list[str]:
        """aria2's ``enabledFeatures``."""

    def gids(self) -> Iterable[str]:
        """Every GID RPC can name: active, waiting (and paused) and stopped downloads."""

    def view(self, gid: str) -> DownloadView | None:
        """One download's view, or None if it is gone."""

    def active(self) -> list[DownloadView]:
        """Running downloads, in start order."""

    def waiting(self) -> list[DownloadView]:
        """The queue (waiting and paused), front first."""

    def stopped(self) -> list[DownloadView]:
        """Download results, oldest first."""

    def engine_stats(self) -> EngineStats:
        """The engine's snapshot."""

    def stopped_total(self) -> int:
        """Downloads stopped in this session, including purged results."""

    def add_uri(
        self, uris: list[str], options: rpc_options.OptionStruct, position: int | None
    ) -> str:
        """Queue one download; return its GID."""

    def add_torrent(
        self,
        data: bytes,
        uris: list[str],
        options: rpc_options.OptionStruct,
        position: int | None,
    ) -> str:
        """Queue one torrent (the .torrent bytes, ``uris`` as web seeds); return its GID."""

    def add_metalink(
        self, data: bytes, options: rpc_options.OptionStruct, position: int | None
    ) -> list[str]:
        """Queue one download per file of a Metalink document; return their GIDs."""

    def peers(self, gid: str) -> list[status.PeerView]:
        """The connected peers of a torrent download (empty for other downloads)."""

    def change_uri(
        self, gid: str, index: int, remove: list[str], add: list[str], position: int | None
    ) -> tuple[int, int]:
        """``changeUri`` on file ``index`` (1-based): (URIs deleted, URIs added)."""

    def pause(self, gid: str, *, force: bool) -> bool:
        """Pause an active or waiting download; False if it cannot be paused now."""

    def pause_all(self, *, force: bool) -> None:
        """Pause every active and waiting download."""

    def unpause(self, gid: str) -> bool:
        """paused -> waiting; False if it is not paused."""

    def unpause_all(self) -> None:
        """Unpause every paused download."""

    def remove(self, gid: str, *, force: bool) -> bool:
        """Remove an active or queued download; False if it is not there."""

    def remove_with_files(self, gid: str) -> bool:
        """Remove like ``remove``, then delete the download's files once it stopped."""

    def change_position(self, gid: str, pos: int, how: str) -> int | None:
        """Move a queued download; its new position, or None if it is not queued."""

    def change_option(self, gid: str, struct: Mapping[str, Any]) -> bool:
        """Apply ``changeOption``; False if the download is not active or queued."""

    def change_global_option(self, options: rpc_options.OptionStruct) -> None:
        """Apply ``changeGlobalOption``."""

    def download_options(self, gid: str) -> dict[str, str] | None:
        """Every option of one download as strings, or None if it is unknown."""

    def global_options(self) -> dict[str, str]:
        """Every global option as strings."""

    def purge_results(self) -> None:
        """Forget every stopped download."""

    def remove_result(self, gid: str) -> bool:
        """Forget one stopped download; False if it is not a stopped one."""

    def shutdown(self, *, force: bool) -> None:
        """Stop the engine (graceful or forced)."""

    def save_session(self) -> str:
        """Write ``--save-session`` now; return the file name (raise RpcMethodError if unset)."""


Method = Callable[[Backend, list[Any]], Any]


# --- parameter checks (aria2's RpcMethodImpl.h helpers) -------------------------------------


def _param(params: list[Any], index: int, kind: type | tuple[type, ...], required: bool) -> Any:
    if len(params) > index:
        value = params[index]
        # bool is an int in Python but a distinct type in JSON and XML-RPC
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise RpcMethodError(f"The parameter at {index} has wrong type.")
        return value
    if required:
        raise RpcMethodError(f"The parameter at {index} is required but missing.")
    return None


def _required(params: list[Any], index: int, kind: type | tuple[type, ...]) -> Any:
    return _param(params, index, kind, True)


def _optional(params: list[Any], index: int, kind: type | tuple[type, ...]) -> Any:
    return _param(params, index, kind, False)


def _strings(value: list[Any] | None) -> list[str]:
    return [v for v in value or () if isinstance(v, str)]


def expand_gid(text: str, known: Iterable[str]) -> str:
    """A full GID from a unique prefix (aria2 ``GroupId::expandUnique``).

    Raises:
        RpcMethodError: with aria2's message for an invalid, ambiguous or unknown GID.
    """
    lowered = text.lower()
    if not text or len(text) > 16 or any(c not in "0123456789abcdef" for c in lowered):
        raise RpcMethodError(f"Invalid GID {text}")
    matches = [g for g in known if g.startswith(lowered)]
    if not matches:
        raise RpcMethodError(f"GID {text} is not found")
    if len(set(matches)) > 1:
        raise RpcMethodError(f"GID {text} is not unique")
    return matches[0]


def _gid(backend: Backend, params: list[Any], index: int = 0) -> str:
    return expand_gid(_required(params, index, str), backend.gids())


# --- methods ----------------------------------------------------------------------------


def _add_uri(b: Backend, p: list[Any]) -> Any:
    uris = _strings(_required(p, 0, list))
    struct = _optional(p, 1, dict) or {}
    position = _optional(p, 2, int)
    if position is not None and position < 0:
        raise RpcMethodError("Position must be greater than or equal to 0.")
    if not uris:
        raise RpcMethodError("URI is not provided.")
    return b.add_uri(uris, rpc_options.request_options(struct), position)


def _document(p: list[Any], index: int) -> bytes:
    """A base64 parameter: a JSON string, or XML-RPC ``<base64>`` (already bytes)."""
    value = _required(p, index, (str, bytes))
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(value.encode("ascii", "ignore"), validate=False)
    except (binascii.Error, ValueError):
        raise RpcMethodError(f"The parameter at {index} has wrong type.") from None


def _position(p: list[Any], index: int) -> int | None:
    position = _optional(p, index, int)
    if position is not None and position < 0:
        raise RpcMethodError("Position must be greater than or equal to 0.")
    return position  # type: ignore[no-any-return]


def _add_torrent(b: Backend, p: list[Any]) -> Any:
    data = _document(p, 0)
    uris = _strings(_optional(p, 1, list))
    struct = _optional(p, 2, dict) or {}
    position = _position(p, 3)
    return b.add_torrent(data, uris, rpc_options.request_options(struct), position)


def _add_metalink(b: Backend, p: list[Any]) -> Any:
    data = _document(p, 0)
    struct = _optional(p, 1, dict) or {}
    position = _position(p, 2)
    return b.add_metalink(data, rpc_options.request_options(struct), position)


def _change_uri(b: Backend, p: list[Any]) -> Any:
    gid = _gid(b, p)
    index = _required(p, 1, int)
    remove = _strings(_required(p, 2, list))
    add = _strings(_required(p, 3, list))
    position = _position(p, 4)
    if index < 1:
        raise RpcMethodError(f"No such file: index={index}")
    deleted, added = b.change_uri(gid, index, remove, add, position)
    return [deleted, added]  # integers in aria2's answer


def _remove(force: bool) -> Method:
    def method(b: Backend, p: list[Any]) -> Any:
        gid = _gid(b, p)
        if not b.remove(gid, force=force):
            raise RpcMethodError(f"Active Download not found for GID#{gid}")
        return gid

    return method


def _remove_with_files(b: Backend, p: list[Any]) -> Any:
    gid = _gid(b, p)
    if not b.remove_with_files(gid):
        raise RpcMethodError(f"Active Download not found for GID#{gid}")
    return gid


def _pause(force: bool) -> Method:
    def method(b: Backend, p: list[Any]) -> Any:
        gid = _gid(b, p)
        if not b.pause(gid, force=force):
            raise RpcMethodError(f"GID#{gid} cannot be paused now")
        return gid

    return method


def _pause_all(force: bool) -> Method:
    def method(b: Backend, p: list[Any]) -> Any:
        b.pause_all(force=force)
        return "OK"

    return method


def _unpause(b: Backend, p: list[Any]) -> Any:
    gid = _gid(b, p)
    if not b.unpause(gid):
        raise RpcMethodError(f"GID#{gid} cannot be unpaused now")
    return gid


def _unpause_all(b: Backend, p: list[Any]) -> Any:
    b.unpause_all()
    return "OK"


def _keys(p: list[Any], index: int) -> list[str]:
    return _strings(_optional(p, index, list))


def _tell_status(b: Backend, p: list[Any]) -> Any:
    gid = _gid(b, p)
    keys = _keys(p, 1)
    view = b.view(gid)
    if view is None:
        raise RpcMethodError(f"No such download for GID#{gid}")
    return status.status_struct(view, keys)


def _tell_active(b: Backend, p: list[Any]) -> Any:
    keys = _keys(p, 0)
    return [status.status_struct(v, keys) for v in b.active()]


def _window(source: Callable[[Backend], list[DownloadView]]) -> Method:
    def method(b: Backend, p: list[Any]) -> Any:
        offset = _required(p, 0, int)
        num = _required(p, 1, int)
        if num < 0:
            raise RpcMethodError(
                "The integer parameter at 1 has invalid value: the value must be greater than"
                " or equal to 0."
            )
        keys = _keys(p, 2)
        return [status.status_struct(v, keys) for v in status.paginate(source(b), offset, num)]

    return method


def _live_view(b: Backend, gid: str, message: str) -> DownloadView:
    view = b.view(gid)
    if view is None or view.stats.status in (
        DownloadStatus.COMPLETE,
        DownloadStatus.ERROR,
        DownloadStatus.REMOVED,
    ):
        raise RpcMethodError(message.format(gid=gid))
    return view


def _get_uris(b: Backend, p: list[Any]) -> Any:
    gid = _gid(b, p)
    return status.uri_entries(_live_view(b, gid, "No URI data is available for GID#{gid}"))


def _get_files(b: Backend, p: list[Any]) -> Any:
    gid = _gid(b, p)
    view = b.view(gid)
    if view is None:
        raise RpcMethodError(f"No file data is available for GID#{gid}")
    return status.file_entries(view)


def _get_peers(b: Backend, p: list[Any]) -> Any:
    gid = _gid(b, p)
    _live_view(b, gid, "No peer data is available for GID#{gid}")
    return status.peer_entries(b.peers(gid))


def _get_servers(b: Backend, p: list[Any]) -> Any:
    gid = _gid(b, p)
    view = b.view(gid)
    if view is None or view.stats.status is not DownloadStatus.ACTIVE:
        raise RpcMethodError(f"No active download for GID#{gid}")
    return status.server_entries(view)


def _change_position(b: Backend, p: list[Any]) -> Any:
    gid = _gid(b, p)
    pos = _required(p, 1, int)
    how = _required(p, 2, str)
    if how not in ("POS_SET", "POS_CUR", "POS_END"):
        raise RpcMethodError("Illegal argument.")
    where = b.change_position(gid, pos, how)
    if where is None:
        raise RpcMethodError(f"GID#{gid} not found in the waiting queue.")
    return where


def _change_option(b: Backend, p: list[Any]) -> Any:
    gid = _gid(b, p)
    struct = _required(p, 1, dict)
    if not b.change_option(gid, struct):
        raise RpcMethodError(f"Cannot change option for GID#{gid}")
    return "OK"


def _change_global_option(b: Backend, p: list[Any]) -> Any:
    struct = _required(p, 0, dict)
    b.change_global_option(rpc_options.global_change(struct))
    return "OK"


def _get_option(b: Backend, p: list[Any]) -> Any:
    gid = _gid(b, p)
    strings = b.download_options(gid)
    if strings is None:
        raise RpcMethodError(f"Cannot get option for GID#{gid}")
    return rpc_options.download_option_strings(strings)


def _get_global_option(b: Backend, p: list[Any]) -> Any:
    return rpc_options.global_option_strings(b.global_options())


def _get_global_stat(b: Backend, p: list[Any]) -> Any:
    return status.global_stat(b.engine_stats(), num_stopped_total=b.stopped_total())


def _purge(b: Backend, p: list[Any]) -> Any:
    b.purge_results()
    return "OK"


def _remove_result(b: Backend, p: list[Any]) -> Any:
    gid = _gid(b, p)
    if not b.remove_result(gid):
        raise RpcMethodError(f"Could not remove download result of GID#{gid}")
    return "OK"


def _get_version(b: Backend, p: list[Any]) -> Any:
    return {"version": b.version, "enabledFeatures": b.features()}


def _get_session_info(b: Backend, p: list[Any]) -> Any:
    return {"sessionId": b.session_id}


def _shutdown(force: bool) -> Method:
    def method(b: Backend, p: list[Any]) -> Any:
        b.shutdown(force=force)
        return "OK"

    return method


def _save_session(b: Backend, p: list[Any]) -> Any:
    b.save_session()
    return "OK"


METHODS: dict[str, Method] = {
    "aria2.addUri": _add_uri,
    "aria2.addTorrent": _add_torrent,
    "aria2.getPeers": _get_peers,
    "aria2.addMetalink": _add_metalink,
    "aria2.remove": _remove(False),
    "aria2.pause": _pause(False),
    "aria2.forcePause": _pause(True),
    "aria2.pauseAll": _pause_all(False),
    "aria2.forcePauseAll": _pause_all(True),
    "aria2.unpause": _unpause,
    "aria2.unpauseAll": _unpause_all,
    "aria2.forceRemove": _remove(True),
    "aria2.changePosition": _change_position,
    "aria2.tellStatus": _tell_status,
    "aria2.getUris": _get_uris,
    "aria2.getFiles": _get_files,
    "aria2.getServers": _get_servers,
    "aria2.tellActive": _tell_active,
    "aria2.tellWaiting": _window(lambda b: b.waiting()),
    "aria2.tellStopped": _window(lambda b: b.stopped()),
    "aria2.getOption": _get_option,
    "aria2.changeUri": _change_uri,
    "aria2.changeOption": _change_option,
    "aria2.getGlobalOption": _get_global_option,
    "aria2.changeGlobalOption": _change_global_option,
    "aria2.purgeDownloadResult": _purge,
    "aria2.removeDownloadResult": _remove_result,
    "aria2.getVersion": _get_version,
    "aria2.getSessionInfo": _get_session_info,
    "aria2.shutdown": _shutdown(False),
    "aria2.forceShutdown": _shutdown(True),
    "aria2.getGlobalStat": _get_global_stat,
    "aria2.saveSession": _save_session,
    # beyond aria2 (issue 728 there): remove and delete the files
    "trioaria.removeWithFiles": _remove_with_files,
}

#: What ``system.listMethods`` names, in aria2's order (``RpcMethodFactory.cc``).
METHOD_NAMES: tuple[str, ...] = (
    *METHODS,
    "system.multicall",
    "system.listMethods",
    "system.listNotifications",
)


# --- dispatch ---------------------------------------------------------------------------


def _pop_token(request: RpcRequest) -> str | None:
    if request.params and isinstance(request.params[0], str):
        first = request.params[0]
        if first.startswith("token:"):
            request.params.pop(0)
            return first[6:]
    return None


def _run(backend: Backend, request: RpcRequest) -> RpcResponse:
    token = _pop_token(request)
    if not backend.check_token(token):
        return error_response(
            METHOD_ERROR, "Unauthorized", id=request.id, json=request.json, authorized=False
        )
    method = METHODS.get(request.method)
    try:
        if method is None:
            raise RpcMethodError(f"No such method: {request.method}")
        return RpcResponse(0, method(backend, request.params), request.id)
    except (RpcMethodError, TrioariaError) as exc:
        return error_response(METHOD_ERROR, str(exc), id=request.id, json=request.json)
    except Exception as exc:  # a bug must not reach the transport (aria2 never crashes here)
        message = f"Internal error: {type(exc).__name__}: {exc}"
        return error_response(METHOD_ERROR, message, id=request.id, json=request.json)


def _multicall(backend: Backend, request: RpcRequest) -> RpcResponse:
    def fail(message: str) -> Any:
        return error_response(METHOD_ERROR, message, json=request.json).value

    try:
        specs = _required(request.params, 0, list)
    except RpcMethodError as exc:
        return error_response(METHOD_ERROR, str(exc), id=request.id, json=request.json)
    results: list[Any] = []
    authorized = True
    for spec in specs:
        if not isinstance(spec, dict):
            results.append(fail("system.multicall expected struct."))
            continue
        name = spec.get("methodName")
        if not isinstance(name, str):
            results.append(fail("Missing methodName."))
            continue
        if name == "system.multicall":
            results.append(fail("Recursive system.multicall forbidden."))
            continue
        params = spec.get("params")
        inner = RpcRequest(
            name, list(params) if isinstance(params, list) else [], None, request.json
        )
        response = _call(backend, inner)
        authorized = authorized and response.authorized
        results.append([response.value] if response.code == 0 else response.value)
    return RpcResponse(0, results, request.id, authorized)


def _call(backend: Backend, request: RpcRequest) -> RpcResponse:
    if request.method == "system.listMethods":
        return RpcResponse(0, list(METHOD_NAMES), request.id)
    if request.method == "system.listNotifications":
        return RpcResponse(0, list(NOTIFICATIONS), request.id)
    if request.method == "system.multicall":
        return _multicall(backend, request)
    return _run(backend, request)


def dispatch(backend: Backend, request: RpcRequest) -> RpcResponse:
    """Run one request; always returns a response (errors are code 1, aria2's messages)."""
    return _call(backend, request)
