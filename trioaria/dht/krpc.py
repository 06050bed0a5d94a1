"""KRPC: the bencoded query/response/error messages of the BitTorrent DHT (pure).

Theory of operation
-------------------
BEP 5 "KRPC Protocol": "A KRPC message is a single dictionary with three keys common to every
message and additional keys depending on the type of message.  Every message has a key "t"
with a string value representing a transaction ID ... Every message also has a key "y" with a
single character value describing the type of message.  The value of the "y" key is one of "q"
for query, "r" for response, or "e" for error."  A query carries "q" (the method name) and "a"
(its arguments), a response "r" (return values), an error "e" (a list ``[code, message]``).  A
message may carry "v", the sender's client version (aria2 sends ``A2`` plus two bytes).

The four queries (BEP 5 "DHT Queries"): ``ping {id}``, ``find_node {id, target}``,
``get_peers {id, info_hash}`` and ``announce_peer {id, implied_port?, info_hash, port, token}``.
BEP 32 adds ``want`` (``[b"n4", b"n6"]``) to find_node and get_peers and ``nodes6`` to their
answers; BEP 42 adds ``ip`` (the requester's compact address) to responses.

:func:`decode_message` turns one datagram into a :class:`Query`, :class:`Response` or
:class:`ErrorMessage`; :func:`encode_message` is its inverse.  A response does not say which
query it answers, so :class:`Response` keeps every return value it understands (id, nodes,
nodes6, values, token, ip) and the caller matches it to its transaction.  Anything malformed
raises :class:`KrpcDecodeError` carrying the transaction id when one could be read, so a node
can answer ``203 Protocol Error`` to a broken query and silently drop everything else.
Datagrams larger than :data:`MAX_DATAGRAM` are refused before decoding.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..base.errors import RemoteProtocolError
from ..bt.bencode import BValue, decode, encode
from ..bt.errors import BencodeError
from .node_id import (
    ID_LENGTH,
    Address,
    NodeId,
    NodeInfo,
    decode_nodes,
    decode_peer,
    encode_nodes,
    encode_peer,
)

__all__ = [
    "MAX_DATAGRAM",
    "ErrorCode",
    "ErrorMessage",
    "KrpcDecodeError",
    "Message",
    "Method",
    "Query",
    "Response",
    "decode_message",
    "encode_message",
]

MAX_DATAGRAM = 8192
"""Largest KRPC datagram accepted (real ones stay under 1500 bytes)."""

_MAX_VALUES = 200  # peers kept from one get_peers answer
_MAX_WANT = 4


class Method(enum.StrEnum):
    """The BEP 5 query methods."""

    PING = "ping"
    FIND_NODE = "find_node"
    GET_PEERS = "get_peers"
    ANNOUNCE_PEER = "announce_peer"


class ErrorCode(enum.IntEnum):
    """BEP 5 "Errors": the codes of a KRPC error message."""

    GENERIC = 201
    SERVER = 202
    PROTOCOL = 203
    METHOD_UNKNOWN = 204


class KrpcDecodeError(RemoteProtocolError):
    """A datagram is not a valid KRPC message.

    Attributes:
        transaction: the ``t`` value when it could be read (to answer with error 203), else None.
        is_query: the message declared itself a query (``y`` = ``q``).
    """

    retryable = False

    def __init__(
        self, reason: str, transaction: bytes | None = None, *, is_query: bool = False
    ) -> None:
        super().__init__(f"bad KRPC message: {reason}")
        self.reason = reason
        self.transaction = transaction
        self.is_query = is_query


@dataclass(frozen=True, slots=True)
class Query:
    """A KRPC query (``y`` = ``q``).

    Attributes:
        t: the transaction id (opaque bytes chosen by the querier).
        method: the method name as sent (a :class:`Method` value for the known four).
        id: the querying node's id.
        target: find_node's ``target``.
        info_hash: get_peers' and announce_peer's ``info_hash``.
        port: announce_peer's ``port``.
        token: announce_peer's ``token``.
        implied_port: announce_peer's ``implied_port`` (use the UDP source port).
        want: BEP 32 ``want`` (``b"n4"``, ``b"n6"``), empty when absent.
        version: the sender's ``v``, if any.
    """

    t: bytes
    method: str
    id: NodeId
    target: NodeId | None = None
    info_hash: NodeId | None = None
    port: int | None = None
    token: bytes | None = None
    implied_port: bool = False
    want: tuple[bytes, ...] = ()
    version: bytes | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """A KRPC response (``y`` = ``r``).

    Attributes:
        t: the transaction id of the query it answers.
        id: the responding node's id.
        nodes: compact IPv4 nodes (find_node, get_peers).
        nodes6: compact IPv6 nodes (BEP 32).
        values: peers (get_peers), as addresses.
        token: get_peers' announce token.
        ip: BEP 42: our address as the responder saw it.
        version: the sender's ``v``, if any.
    """

    t: bytes
    id: NodeId
    nodes: tuple[NodeInfo, ...] = ()
    nodes6: tuple[NodeInfo, ...] = ()
    values: tuple[Address, ...] = ()
    token: bytes | None = None
    ip: Address | None = None
    version: bytes | None = None
    has_nodes: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    """A KRPC error (``y`` = ``e``): ``[code, message]``."""

    t: bytes
    code: int
    message: str
    version: bytes | None = None


Message = Query | Response | ErrorMessage


def _bytes(d: dict[bytes, BValue], key: bytes, what: str, t: bytes | None, q: bool) -> bytes:
    value = d.get(key)
    if not isinstance(value, bytes):
        raise KrpcDecodeError(f"{what} is missing or not a string", t, is_query=q)
    return value


def _id(d: dict[bytes, BValue], key: bytes, t: bytes | None, q: bool) -> NodeId:
    value = _bytes(d, key, key.decode(), t, q)
    if len(value) != ID_LENGTH:
        raise KrpcDecodeError(f"{key.decode()} has {len(value)} bytes, not 20", t, is_query=q)
    return NodeId(value)


def _parse_query(t: bytes, msg: dict[bytes, BValue], version: bytes | None) -> Query:
    method = _bytes(msg, b"q", "q", t, True).decode("ascii", "replace")
    args = msg.get(b"a")
    if not isinstance(args, dict):
        raise KrpcDecodeError("query arguments 'a' missing", t, is_query=True)
    sender = _id(args, b"id", t, True)
    want_raw = args.get(b"want", [])
    want = (
        tuple(w for w in want_raw[:_MAX_WANT] if isinstance(w, bytes))
        if isinstance(want_raw, list)
        else ()
    )
    if method == Method.PING:
        return Query(t, method, sender, version=version)
    if method == Method.FIND_NODE:
        return Query(
            t, method, sender, target=_id(args, b"target", t, True), want=want, version=version
        )
    if method == Method.GET_PEERS:
        return Query(
            t,
            method,
            sender,
            info_hash=_id(args, b"info_hash", t, True),
            want=want,
            version=version,
        )
    if method == Method.ANNOUNCE_PEER:
        port = args.get(b"port")
        implied = args.get(b"implied_port", 0)
        implied_port = isinstance(implied, int) and implied != 0
        if not isinstance(port, int) or not (0 < port <= 0xFFFF or implied_port):
            raise KrpcDecodeError("announce_peer port is missing or out of range", t, is_query=True)
        return Query(
            t,
            method,
            sender,
            info_hash=_id(args, b"info_hash", t, True),
            port=port,
            token=_bytes(args, b"token", "token", t, True),
            implied_port=implied_port,
            version=version,
        )
    return Query(t, method, sender, version=version)


def _parse_response(t: bytes, msg: dict[bytes, BValue], version: bytes | None) -> Response:
    ret = msg.get(b"r")
    if not isinstance(ret, dict):
        raise KrpcDecodeError("response values 'r' missing", t)
    sender = _id(ret, b"id", t, False)
    try:
        nodes_raw = ret.get(b"nodes")
        nodes6_raw = ret.get(b"nodes6")
        nodes = tuple(decode_nodes(nodes_raw, 4)) if isinstance(nodes_raw, bytes) else ()
        nodes6 = tuple(decode_nodes(nodes6_raw, 6)) if isinstance(nodes6_raw, bytes) else ()
        values: list[Address] = []
        raw_values = ret.get(b"values", [])
        if isinstance(raw_values, list):
            for v in raw_values[:_MAX_VALUES]:
                if isinstance(v, bytes) and len(v) in (6, 18):
                    values.append(decode_peer(v))
        ip_raw = ret.get(b"ip", msg.get(b"ip"))
        ip = decode_peer(ip_raw) if isinstance(ip_raw, bytes) and len(ip_raw) in (6, 18) else None
    except ValueError as exc:
        raise KrpcDecodeError(str(exc), t) from None
    token = ret.get(b"token")
    return Response(
        t,
        sender,
        nodes=nodes,
        nodes6=nodes6,
        values=tuple(values),
        token=token if isinstance(token, bytes) else None,
        ip=ip,
        version=version,
        has_nodes=isinstance(nodes_raw, bytes) or isinstance(nodes6_raw, bytes),
    )


def _parse_error(t: bytes, msg: dict[bytes, BValue], version: bytes | None) -> ErrorMessage:
    err = msg.get(b"e")
    if not isinstance(err, list) or len(err) < 2 or not isinstance(err[0], int):
        raise KrpcDecodeError("error value 'e' is not [code, message]", t)
    text = err[1] if isinstance(err[1], bytes) else b""
    return ErrorMessage(t, err[0], text.decode("utf-8", "replace"), version)


def decode_message(data: bytes | bytearray | memoryview) -> Message:
    """Decode one KRPC datagram.

    Raises:
        KrpcDecodeError: not bencoded, not a dictionary, or missing what its type requires.
    """
    if len(data) > MAX_DATAGRAM:
        raise KrpcDecodeError(f"datagram of {len(data)} bytes is too large")
    try:
        msg = decode(data, max_depth=8, max_size=MAX_DATAGRAM)
    except BencodeError as exc:
        raise KrpcDecodeError(exc.reason) from None
    if not isinstance(msg, dict):
        raise KrpcDecodeError("not a dictionary")
    t = msg.get(b"t")
    if not isinstance(t, bytes):
        raise KrpcDecodeError("transaction id 't' missing")
    v = msg.get(b"v")
    version = v if isinstance(v, bytes) else None
    y = msg.get(b"y")
    if y == b"q":
        return _parse_query(t, msg, version)
    if y == b"r":
        return _parse_response(t, msg, version)
    if y == b"e":
        return _parse_error(t, msg, version)
    raise KrpcDecodeError("message type 'y' is not q, r or e", t)


def encode_message(message: Message, *, version: bytes | None = None) -> bytes:
    """Encode a message; ``version`` (``v``) overrides the message's own.

    Raises:
        ValueError: a query lacks an argument its method requires.
    """
    v = version if version is not None else message.version
    out: dict[bytes, BValue] = {b"t": message.t}
    if isinstance(message, Query):
        args: dict[bytes, BValue] = {b"id": message.id}
        m = message.method
        if m == Method.FIND_NODE:
            if message.target is None:
                raise ValueError("find_node needs a target")
            args[b"target"] = message.target
        elif m in (Method.GET_PEERS, Method.ANNOUNCE_PEER):
            if message.info_hash is None:
                raise ValueError(f"{m} needs an info_hash")
            args[b"info_hash"] = message.info_hash
        if m == Method.ANNOUNCE_PEER:
            if message.port is None or message.token is None:
                raise ValueError("announce_peer needs a port and a token")
            args[b"port"] = message.port
            args[b"token"] = message.token
            if message.implied_port:
                args[b"implied_port"] = 1
        if message.want:
            args[b"want"] = list(message.want)
        out[b"y"] = b"q"
        out[b"q"] = m.encode()
        out[b"a"] = args
    elif isinstance(message, Response):
        ret: dict[bytes, BValue] = {b"id": message.id}
        if message.nodes or message.has_nodes:
            ret[b"nodes"] = encode_nodes(message.nodes)
        if message.nodes6:
            ret[b"nodes6"] = encode_nodes(message.nodes6)
        if message.values:
            ret[b"values"] = [encode_peer(ip, port) for ip, port in message.values]
        if message.token is not None:
            ret[b"token"] = message.token
        out[b"y"] = b"r"
        out[b"r"] = ret
        if message.ip is not None:
            out[b"ip"] = encode_peer(*message.ip)
    else:
        out[b"y"] = b"e"
        out[b"e"] = [message.code, message.message.encode()]
    if v is not None:
        out[b"v"] = v
    return encode(out)
