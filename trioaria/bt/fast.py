"""BEP 6 Fast extension: the canonical "allowed fast" set (pure).

A peer may request the pieces of its allowed fast set even while choked.  BEP 6 ("Allowed Fast")
fixes how the set is drawn so that both sides can compute it: take the peer's IPv4 address with
the last byte cleared (``0xFFFFFF00 & ip``), append the info hash, and hash repeatedly with SHA-1;
each digest yields five big-endian 32-bit words, each ``word % num_pieces`` a piece index, kept
if new, until ``k`` indices are drawn.  The BEP's test vectors (IP 80.4.4.200, info hash of 20
``0xAA`` bytes, 1313 pieces) are tests/bt/test_fast.py's golden values.

BEP 6 defines the set for IPv4 only; for an IPv6 peer we use its first 48 bits (its site
prefix), the same idea of "all addresses one party controls share one set".
"""

from __future__ import annotations

import hashlib
import ipaddress

__all__ = ["allowed_fast_set"]


def allowed_fast_set(ip: str, info_hash: bytes, num_pieces: int, k: int = 10) -> list[int]:
    """The first ``k`` pieces of the allowed fast set for a peer at ``ip``.

    Args:
        ip: the peer's address (an IPv4 or IPv6 literal).
        info_hash: the torrent's 20-byte info hash.
        num_pieces: pieces in the torrent.
        k: set size (aria2 and libtorrent use 10); capped at ``num_pieces``.

    Returns:
        Piece indices in the order BEP 6 draws them (a prefix of the set for a larger ``k``).

    Raises:
        ValueError: ``ip`` is not an IP literal or the info hash is not 20 bytes.
    """
    if len(info_hash) != 20:
        raise ValueError("info hash must be 20 bytes")
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        prefix = (int(address) & 0xFFFFFF00).to_bytes(4, "big")
    else:
        prefix = address.packed[:6] + bytes(10)
    k = min(k, num_pieces)
    chosen: list[int] = []
    seen: set[int] = set()
    x = prefix + info_hash
    while len(chosen) < k:
        x = hashlib.sha1(x).digest()
        for i in range(0, 20, 4):
            if len(chosen) >= k:
                break
            index = int.from_bytes(x[i : i + 4], "big") % num_pieces
            if index not in seen:
                seen.add(index)
                chosen.append(index)
    return chosen
