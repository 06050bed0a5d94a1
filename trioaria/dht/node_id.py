"""Node ids, XOR distance and the compact node and peer formats of the DHT (pure).

BEP 5 "Routing Table": "Each node has a globally unique identifier known as the 'node ID.' Node
IDs are chosen at random from the same 160-bit space as BitTorrent infohashes.  A 'distance
metric' is used to compare two node IDs or a node ID and an infohash for 'closeness.' ... In
Kademlia, the distance metric is XOR and the result is interpreted as an unsigned integer."

BEP 5 "Contact Encoding": "Contact information for peers is encoded as a 6-byte string ...
4-byte IP address in network byte order with the 2 byte port in network byte order
concatenated onto the end.  Contact information for nodes is encoded as a 26-byte string ...
20-byte node ID in network byte order has the compact IP-address/port info concatenated to the
end."  BEP 32 adds the IPv6 forms: 18-byte peers and 38-byte nodes (``nodes6``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import NewType

__all__ = [
    "ID_LENGTH",
    "Address",
    "NodeId",
    "NodeInfo",
    "bucket_index",
    "decode_nodes",
    "decode_peer",
    "distance",
    "encode_nodes",
    "encode_peer",
    "node_id",
    "random_id_in_bucket",
]

ID_LENGTH = 20
"""Bytes in a node id or an info hash (160 bits)."""

NodeId = NewType("NodeId", bytes)
"""A 20-byte node id (or an info hash used as a lookup target)."""

Address = tuple[str, int]
"""An ``(ip, port)`` pair; ``ip`` is the textual IPv4 or IPv6 address."""


def node_id(raw: bytes) -> NodeId:
    """Check that ``raw`` is 20 bytes and return it as a :data:`NodeId`.

    Raises:
        ValueError: the length is not 20.
    """
    if len(raw) != ID_LENGTH:
        raise ValueError(f"a node id has {ID_LENGTH} bytes, not {len(raw)}")
    return NodeId(bytes(raw))


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node as the DHT passes it around: its id and its UDP address."""

    id: NodeId
    ip: str
    port: int

    @property
    def address(self) -> Address:
        """``(ip, port)``."""
        return (self.ip, self.port)

    @property
    def family(self) -> int:
        """4 or 6."""
        return 6 if ":" in self.ip else 4


def distance(a: bytes, b: bytes) -> int:
    """BEP 5: ``distance(A,B) = |A xor B|``, as an unsigned integer."""
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


def bucket_index(own: bytes, other: bytes) -> int:
    """The number of leading bits ``own`` and ``other`` share (160 when equal)."""
    d = distance(own, other)
    return ID_LENGTH * 8 - d.bit_length()


def random_id_in_bucket(prefix: bytes, prefix_bits: int, random_bytes: bytes) -> NodeId:
    """An id whose first ``prefix_bits`` bits are those of ``prefix``; the rest from ``random_bytes``.

    Used to refresh a bucket: BEP 5 "picking a random ID in the range of the bucket and
    performing a find_nodes search on it".
    """
    if len(random_bytes) != ID_LENGTH:
        raise ValueError("random_bytes must have 20 bytes")
    bits = ID_LENGTH * 8
    mask = ((1 << prefix_bits) - 1) << (bits - prefix_bits) if prefix_bits else 0
    value = (int.from_bytes(prefix, "big") & mask) | (int.from_bytes(random_bytes, "big") & ~mask)
    return NodeId(value.to_bytes(ID_LENGTH, "big"))


def encode_peer(ip: str, port: int) -> bytes:
    """Compact peer info: 6 bytes (IPv4) or 18 bytes (IPv6), port in network order.

    Raises:
        ValueError: ``ip`` is not an IP address or ``port`` is out of range.
    """
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} out of range")
    return ipaddress.ip_address(ip).packed + port.to_bytes(2, "big")


def decode_peer(raw: bytes) -> Address:
    """Inverse of :func:`encode_peer` (6 or 18 bytes).

    Raises:
        ValueError: another length.
    """
    if len(raw) not in (6, 18):
        raise ValueError(f"compact peer info has 6 or 18 bytes, not {len(raw)}")
    return str(ipaddress.ip_address(raw[:-2])), int.from_bytes(raw[-2:], "big")


def encode_nodes(nodes: list[NodeInfo] | tuple[NodeInfo, ...]) -> bytes:
    """Compact node info for ``nodes`` (26 bytes each for IPv4, 38 for IPv6; one family)."""
    return b"".join(n.id + encode_peer(n.ip, n.port) for n in nodes)


def decode_nodes(raw: bytes, family: int = 4) -> list[NodeInfo]:
    """Decode a ``nodes`` (family 4) or ``nodes6`` (family 6) string.

    Entries with port 0 are skipped (nobody listens there).

    Raises:
        ValueError: the length is not a multiple of the entry size.
    """
    size = ID_LENGTH + (6 if family == 4 else 18)
    if len(raw) % size:
        raise ValueError(f"compact node info length {len(raw)} is not a multiple of {size}")
    out: list[NodeInfo] = []
    for i in range(0, len(raw), size):
        ip, port = decode_peer(raw[i + ID_LENGTH : i + size])
        if port:
            out.append(NodeInfo(NodeId(raw[i : i + ID_LENGTH]), ip, port))
    return out
