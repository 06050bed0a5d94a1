"""The DHT routing table file, in the layout of aria2's ``dht.dat`` (pure).

aria2 saves its routing table on exit to ``--dht-file-path`` (IPv4) and ``--dht-file-path6``
(IPv6) and loads it on start, so a restarted client does not have to bootstrap.  trioaria reads
and writes the same layout so either program can use the other's file (issue 11).  All integers
are big-endian:

====== ======================================================================================
bytes  meaning
====== ======================================================================================
8      header: magic ``A1 A2``, format id ``02``, three zero bytes, version ``00 03``
8      the save time, seconds since the epoch (version 2: 4 bytes, then 4 reserved)
8      reserved
20     the local node id
4      reserved
4      number of nodes *n*
4      reserved
56 * n per node: 1 byte compact length (6 for IPv4, 18 for IPv6), 7 reserved, the compact
       address padded with zeros to 24 bytes, the 20-byte node id, 4 reserved
====== ======================================================================================

Reading follows aria2's rules: a node whose compact length is not the file's family, whose
address is all zeros, or whose port is 0 is skipped; a wrong header or a short file is an error
(:class:`DhtFileError`), and the caller then starts with an empty table, as aria2 does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..base.errors import TrioariaError
from .node_id import ID_LENGTH, NodeId, NodeInfo, decode_peer, encode_peer

__all__ = [
    "HEADER",
    "MAX_FILE_SIZE",
    "MAX_SAVED_NODES",
    "DhtFileError",
    "DhtState",
    "parse_dht_file",
    "serialize_dht_file",
]

HEADER = bytes([0xA1, 0xA2, 0x02, 0, 0, 0, 0, 0x03])
"""Version 3 header (written)."""

_HEADER_V2 = bytes([0xA1, 0xA2, 0x02, 0, 0, 0, 0, 0x02])
_ENTRY = 56
MAX_SAVED_NODES = 2048
"""Nodes read from a ``dht.dat`` at most (a routing table holds 160 buckets of 8)."""
_TOP = struct.Struct(">8sQ8s20s4sI4s")  # header, time, reserved, id, reserved, count, reserved
MAX_FILE_SIZE = _TOP.size + MAX_SAVED_NODES * _ENTRY
"""The bytes of a ``dht.dat`` that are ever read."""


class DhtFileError(TrioariaError):
    """A ``dht.dat`` file cannot be read (bad header, truncated)."""


@dataclass(frozen=True, slots=True)
class DhtState:
    """What a ``dht.dat`` holds.

    Attributes:
        local_id: our node id.
        nodes: the saved nodes, in file order.
        saved_at: the save time (seconds since the epoch).
    """

    local_id: NodeId
    nodes: tuple[NodeInfo, ...]
    saved_at: int = 0


def parse_dht_file(data: bytes, family: int = 4) -> DhtState:
    """Decode a ``dht.dat`` for ``family`` (4 or 6).

    Raises:
        DhtFileError: the header is not aria2's version 2 or 3, or the file is truncated.
    """
    header = data[:8]
    if header == HEADER:
        if len(data) < _TOP.size:
            raise DhtFileError("Failed to load DHT routing table: truncated header")
        _, saved_at, _, local, _, count, _ = _TOP.unpack_from(data)
        pos = _TOP.size
    elif header == _HEADER_V2:
        if len(data) < _TOP.size:
            raise DhtFileError("Failed to load DHT routing table: truncated header")
        saved_at = int.from_bytes(data[8:12], "big")
        local = data[24:44]
        count = int.from_bytes(data[48:52], "big")
        pos = _TOP.size
    else:
        raise DhtFileError("Failed to load DHT routing table: bad header")
    want = 6 if family == 4 else 18
    nodes: list[NodeInfo] = []
    for _ in range(min(count, MAX_SAVED_NODES)):
        entry = data[pos : pos + _ENTRY]
        if len(entry) < _ENTRY:
            raise DhtFileError("Failed to load DHT routing table: truncated node list")
        pos += _ENTRY
        if entry[0] != want:
            continue
        compact = entry[8 : 8 + want]
        if not any(compact):
            continue
        ip, port = decode_peer(compact)
        if port == 0:
            continue
        nodes.append(NodeInfo(NodeId(entry[32 : 32 + ID_LENGTH]), ip, port))
    return DhtState(NodeId(bytes(local)), tuple(nodes), saved_at)


def serialize_dht_file(state: DhtState, family: int = 4) -> bytes:
    """Encode ``state`` as a version 3 ``dht.dat`` for ``family``.

    Nodes of the other family are written as zeroed entries (aria2 does the same), which every
    reader skips.
    """
    clen = 6 if family == 4 else 18
    out = [
        _TOP.pack(
            HEADER, state.saved_at, bytes(8), state.local_id, bytes(4), len(state.nodes), bytes(4)
        )
    ]
    for node in state.nodes:
        compact = encode_peer(node.ip, node.port) if node.family == family else bytes(clen)
        out.append(bytes([clen]) + bytes(7) + compact.ljust(24, b"\0") + node.id + bytes(4))
    return b"".join(out)
