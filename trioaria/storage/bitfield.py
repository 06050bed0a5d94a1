"""A fixed-size bit set in BitTorrent bit order (BEP 3 "bitfield"; aria2's control file).

Bit ``i`` lives in byte ``i // 8`` under mask ``0x80 >> (i % 8)``: the high bit of the first byte
is piece 0.  Spare bits at the end are always zero ("Spare bits at the end are set to zero.
Clients should drop the connection if they receive bitfields that are not of the correct size,
or if the bitfield has any of the spare bits set", BEP 3).
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["Bitfield"]

_POPCOUNT = bytes(bin(i).count("1") for i in range(256))


class Bitfield:
    """A mutable set of ``length`` bits with O(1) ``count``."""

    __slots__ = ("_bits", "_count", "length")

    def __init__(self, length: int) -> None:
        if length < 0:
            raise ValueError("bitfield length must be >= 0")
        self.length = length
        self._bits = bytearray((length + 7) // 8)
        self._count = 0

    @classmethod
    def from_bytes(cls, data: bytes, length: int) -> Bitfield:
        """Build from wire bytes; raises ValueError on a wrong size or set spare bits."""
        bf = cls(length)
        if len(data) != len(bf._bits):
            raise ValueError(f"bitfield of {len(data)} bytes for {length} bits")
        if length % 8 and data[-1] & (0xFF >> (length % 8)):
            raise ValueError("bitfield has spare bits set")
        bf._bits[:] = data
        bf._count = sum(data.translate(_POPCOUNT))
        return bf

    def to_bytes(self) -> bytes:
        return bytes(self._bits)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> bool:
        if not 0 <= index < self.length:
            raise IndexError(index)
        return bool(self._bits[index >> 3] & (0x80 >> (index & 7)))

    def set(self, index: int) -> bool:
        """Set bit ``index``; returns True if it was newly set."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        mask = 0x80 >> (index & 7)
        byte = self._bits[index >> 3]
        if byte & mask:
            return False
        self._bits[index >> 3] = byte | mask
        self._count += 1
        return True

    def clear(self, index: int) -> bool:
        """Clear bit ``index``; returns True if it was set before."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        mask = 0x80 >> (index & 7)
        byte = self._bits[index >> 3]
        if not byte & mask:
            return False
        self._bits[index >> 3] = byte & ~mask
        self._count -= 1
        return True

    def count(self) -> int:
        """Number of set bits."""
        return self._count

    def all(self) -> bool:
        return self._count == self.length

    def iter_set(self) -> Iterator[int]:
        for i in range(self.length):
            if self._bits[i >> 3] & (0x80 >> (i & 7)):
                yield i

    def iter_clear(self) -> Iterator[int]:
        for i in range(self.length):
            if not self._bits[i >> 3] & (0x80 >> (i & 7)):
                yield i

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Bitfield)
            and other.length == self.length
            and other._bits == self._bits
        )

    def __hash__(self) -> int:  # mutable: identity semantics are wrong, so forbid hashing
        raise TypeError("Bitfield is mutable and unhashable")

    def __repr__(self) -> str:
        return f"Bitfield({self._count}/{self.length})"
