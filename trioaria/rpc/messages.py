"""RPC request and response values shared by the codecs and the method table (pure).

aria2 (``src/RpcRequest.h``, ``src/RpcResponse.h``, ``src/rpc_helper.cc``) keeps one request
shape for JSON-RPC and XML-RPC: a method name, a parameter list and, for JSON-RPC, an ``id``.
A response carries a code: 0 for success, 1 for an error raised by a method (JSON-RPC
``{"code": 1, "message": ...}``, XML-RPC ``faultCode`` 1), or one of JSON-RPC 2.0's protocol
codes (-32700 parse error, -32600 invalid request, -32602 invalid params).  ``authorized`` is
False when the secret token was wrong, so the driver can delay the answer as aria2 does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_ERROR",
    "PARSE_ERROR",
    "RpcMethodError",
    "RpcRequest",
    "RpcResponse",
    "error_response",
]

METHOD_ERROR = 1  # aria2: every error raised while a method runs
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602


class RpcMethodError(Exception):
    """A method failed; the message is what aria2 would say (``code`` 1 / ``faultCode`` 1)."""


@dataclass(slots=True)
class RpcRequest:
    """One call: ``method``, positional ``params``, the JSON-RPC ``id`` (None for XML-RPC).

    ``params`` is mutable on purpose: the ``token:`` secret is popped off its front before the
    method sees the list (aria2 ``RpcMethod::authorize``).
    """

    method: str
    params: list[Any] = field(default_factory=list)
    id: Any = None
    json: bool = True


@dataclass(frozen=True, slots=True)
class RpcResponse:
    """The outcome of one call; ``value`` is the result, or the error struct when ``code != 0``."""

    code: int
    value: Any
    id: Any = None
    authorized: bool = True


def error_response(
    code: int,
    message: str,
    *,
    id: Any = None,  # noqa: A002 - JSON-RPC's name
    json: bool = True,
    authorized: bool = True,
) -> RpcResponse:
    """An error response in the form the transport expects (``code``/``message`` for JSON-RPC,
    ``faultCode``/``faultString`` for XML-RPC)."""
    if json:
        value: dict[str, Any] = {"code": code, "message": message}
    else:
        value = {"faultCode": code, "faultString": message}
    return RpcResponse(code, value, id, authorized)
