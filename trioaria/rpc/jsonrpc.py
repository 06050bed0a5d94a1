"""JSON-RPC 2.0 codec as aria2 speaks it: POST bodies, batches, GET parameters, JSONP (pure).

Theory of operation
-------------------
:func:`decode` turns a request body into a :class:`JsonCall`: a list of items, each either an
:class:`~trioaria.rpc.messages.RpcRequest` to run or an already decided error
:class:`~trioaria.rpc.messages.RpcResponse`, and whether it was a batch.  It never raises:
anything that is not JSON is ``-32700 "Parse error."``, a value that is neither an object nor an
array ``-32600 "Invalid Request."``; an object without ``id`` or ``method`` is
``-32600`` and ``params`` that is not an array ``-32602 "Invalid params."`` (aria2
``rpc::processJsonRpcRequest``; aria2 has no named parameters).  In a batch, elements that are
not objects are skipped, as aria2 does.

:func:`decode_get` implements aria2's GET form (``/jsonrpc?method=M&id=I&params=BASE64``, and
``jsoncallback=CB`` for JSONP): ``method`` and ``id`` are strings, ``params`` is a base64-encoded
JSON array; without ``method`` and ``id`` the decoded ``params`` is the whole (batch) request.

:func:`encode` writes one response (``{"id":..,"jsonrpc":"2.0","result":..}`` or ``"error"``),
:func:`encode_batch` an array of them, either wrapped as ``CB(...)`` for JSONP;
:func:`http_status` is aria2's HTTP status for a single response (200; 400 for method errors and
invalid requests; 404 for -32601; 500 otherwise).  JSON floats, ``NaN`` and ``Infinity`` are
accepted by the decoder only as far as Python's ``json`` does, and a float where an integer is
expected is a type error in the method table (aria2 has no floating point numbers).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .messages import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    RpcRequest,
    RpcResponse,
    error_response,
)

__all__ = [
    "JsonCall",
    "decode",
    "decode_get",
    "encode",
    "encode_batch",
    "encode_notification",
    "http_status",
]

# A JSONP callback is echoed into JavaScript: only a dotted identifier is accepted.
_CALLBACK = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*")


@dataclass(slots=True)
class JsonCall:
    """A decoded request: the items to run (or their ready answers) and whether it was a batch."""

    items: list[RpcRequest | RpcResponse] = field(default_factory=list)
    batch: bool = False
    callback: str = ""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):  # 1e999: not a number JSON can write back
        raise ValueError(f"{text} is out of range")
    return value


def _loads(text: bytes | str) -> Any:
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite)


def _item(obj: Any) -> RpcRequest | RpcResponse:
    """aria2 ``processJsonRpcRequest`` checks, in its order."""
    if not isinstance(obj, dict) or "id" not in obj:
        return error_response(INVALID_REQUEST, "Invalid Request.")
    request_id = obj["id"]
    method = obj.get("method")
    if not isinstance(method, str):
        return error_response(INVALID_REQUEST, "Invalid Request.", id=request_id)
    params = obj.get("params", [])
    if not isinstance(params, list):
        return error_response(INVALID_PARAMS, "Invalid params.", id=request_id)
    return RpcRequest(method, params, request_id, True)


def _from_value(value: Any, callback: str = "") -> JsonCall:
    if isinstance(value, dict):
        return JsonCall([_item(value)], False, callback)
    if isinstance(value, list):
        return JsonCall([_item(v) for v in value if isinstance(v, dict)], True, callback)
    return JsonCall([error_response(INVALID_REQUEST, "Invalid Request.")], False, callback)


def _parse_error(callback: str = "") -> JsonCall:
    return JsonCall([error_response(PARSE_ERROR, "Parse error.")], False, callback)


def decode(data: bytes) -> JsonCall:
    """Decode a POST body (or a WebSocket text message); never raises."""
    try:
        value = _loads(data)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return _parse_error()
    return _from_value(value)


def decode_get(query: str) -> JsonCall:
    """Decode the query string of ``GET /jsonrpc?...`` (without the ``?``); never raises."""
    fields: dict[str, str] = {}
    try:
        for key, val in parse_qsl(query, keep_blank_values=True, errors="strict"):
            fields[key] = val
    except (ValueError, UnicodeDecodeError):
        return _parse_error()
    callback = fields.get("jsoncallback", "")
    if callback and not _CALLBACK.fullmatch(callback):
        return JsonCall([error_response(INVALID_REQUEST, "Invalid Request.")], False, "")
    params: Any = None
    if fields.get("params"):
        try:
            raw = base64.b64decode(fields["params"].replace(" ", "+"), validate=False)
            params = _loads(raw)
        except (ValueError, binascii.Error, RecursionError, UnicodeDecodeError):
            return _parse_error(callback)
    method, request_id = fields.get("method"), fields.get("id")
    if not method and not request_id:
        if params is None:
            return _parse_error(callback)
        return _from_value(params, callback)  # aria2: a batch carried in params
    obj: dict[str, Any] = {}
    if method:
        obj["method"] = method
    if request_id:
        obj["id"] = request_id
    if params is not None:
        obj["params"] = params
    return _from_value(obj, callback)


def _dump(value: Any, *, sort: bool = False) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort)


def _envelope(response: RpcResponse) -> str:
    # aria2 writes object keys in sorted order (its Dict is a std::map) inside the result or
    # error; the envelope keeps "id", "jsonrpc", then "result"/"error".  The value is sorted
    # by the json module's C encoder (a Python walk over 1,000 tellWaiting structs cost more
    # than the rest of the call).
    key = "result" if response.code == 0 else "error"
    try:
        request_id = _dump(response.id)
    except (RecursionError, ValueError):  # an id nested too deep to write back: null
        request_id = "null"
    return f'{{"id":{request_id},"jsonrpc":"2.0","{key}":{_dump(response.value, sort=True)}}}'


def _wrap(text: str, callback: str) -> bytes:
    if callback:
        text = f"{callback}({text})"
    # a lone surrogate (only possible inside a string) becomes a valid JSON \\u escape
    return text.encode("utf-8", "backslashreplace")


def encode(response: RpcResponse, callback: str = "") -> bytes:
    """One JSON-RPC response object, as JSONP when ``callback`` is given."""
    return _wrap(_envelope(response), callback)


def encode_batch(responses: list[RpcResponse], callback: str = "") -> bytes:
    """A batch answer: an array of response objects (``[]`` for an empty batch)."""
    return _wrap("[" + ",".join(_envelope(r) for r in responses) + "]", callback)


def encode_notification(method: str, gid: str) -> bytes:
    """A server-to-client notification: ``{"jsonrpc":"2.0","method":M,"params":[{"gid":G}]}``."""
    return _wrap(_dump({"jsonrpc": "2.0", "method": method, "params": [{"gid": gid}]}), "")


def http_status(response: RpcResponse) -> int:
    """aria2's HTTP status for a single JSON-RPC response (``HttpServerBodyCommand``)."""
    if response.code == 0:
        return 200
    if response.code in (1, INVALID_REQUEST):
        return 400
    if response.code == -32601:
        return 404
    return 500
