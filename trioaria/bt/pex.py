"""BEP 11 Peer Exchange (``ut_pex``): message codec and the per-peer added/dropped diff (pure).

Theory of operation
-------------------
Peers that advertise ``ut_pex`` in their BEP 10 handshake tell each other, about once a minute,
which peers they connected to and which they dropped since the last message.  The payload of the
Extended message is a bencoded dictionary: ``added`` (compact IPv4 peers, 6 bytes each) with
``added.f`` (one flag byte per added peer), ``added6``/``added6.f`` (18-byte IPv6 peers) and
``dropped``/``dropped6``.  Flags: 0x01 prefers encryption, 0x02 seed or upload-only, 0x04
supports uTP, 0x08 supports ut_holepunch, 0x10 reachable (we connected out to it).

"added and dropped ... should contain at most 50 peers" per message, and messages should not
come more often than once a minute: :class:`PexState` keeps, for one connection, what that peer
has been told, and :meth:`PexState.diff` returns the next message (or ``None`` when nothing
changed or a minute has not passed).  Decoding bounds the work a hostile peer can cause: at most
``max_peers`` entries per list are read, and a torrent flagged private (BEP 27) must not use PEX
at all (the caller's decision).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .bencode import BValue, Encodable, decode, encode
from .errors import BencodeError, PeerProtocolError
from .tracker import PeerAddress, decode_compact_peers, encode_compact_peers

__all__ = [
    "EXTENSION_NAME",
    "FLAG_ENCRYPTION",
    "FLAG_HOLEPUNCH",
    "FLAG_REACHABLE",
    "FLAG_SEED",
    "FLAG_UTP",
    "PexMessage",
    "PexPeer",
    "PexState",
    "decode_pex",
    "encode_pex",
]

EXTENSION_NAME = "ut_pex"
FLAG_ENCRYPTION = 0x01
FLAG_SEED = 0x02
FLAG_UTP = 0x04
FLAG_HOLEPUNCH = 0x08
FLAG_REACHABLE = 0x10

MAX_PER_MESSAGE = 50
"""BEP 11's cap on ``added`` and on ``dropped`` in one message."""

INTERVAL = 60.0
"""Seconds between two messages to one peer."""


@dataclass(frozen=True, slots=True)
class PexPeer:
    """An added peer and its BEP 11 flags."""

    address: PeerAddress
    flags: int = 0


@dataclass(frozen=True, slots=True)
class PexMessage:
    """One ``ut_pex`` message: peers added and dropped since the previous one."""

    added: tuple[PexPeer, ...] = ()
    dropped: tuple[PeerAddress, ...] = ()


def encode_pex(message: PexMessage) -> bytes:
    """The Extended payload for ``message`` (IP literals only; host names cannot be sent).

    Raises:
        ValueError: an address is not an IP literal or a port is out of range.
    """
    d: dict[bytes, Encodable] = {}
    added4 = [p for p in message.added if ":" not in p.address.host]
    added6 = [p for p in message.added if ":" in p.address.host]
    for key, peers in ((b"added", added4), (b"added6", added6)):
        v4, v6 = encode_compact_peers([p.address for p in peers])
        d[key] = v4 or v6
        d[key + b".f"] = bytes(p.flags & 0xFF for p in peers)
    dropped4, dropped6 = encode_compact_peers(message.dropped)
    d[b"dropped"] = dropped4
    d[b"dropped6"] = dropped6
    return encode(d)


def _compact(
    d: dict[bytes, BValue], key: bytes, *, ipv6: bool, max_peers: int
) -> list[PeerAddress]:
    raw = d.get(key)
    if not isinstance(raw, bytes):
        return []
    size = 18 if ipv6 else 6
    raw = raw[: max_peers * size]
    return decode_compact_peers(raw[: len(raw) - len(raw) % size], ipv6=ipv6)


def decode_pex(payload: bytes, *, max_peers: int = 200) -> PexMessage:
    """Decode a ``ut_pex`` payload leniently: a missing or short flags string means flags 0,
    a list cut mid-entry loses its last entry, lists longer than ``max_peers`` are cut.

    Raises:
        PeerProtocolError: the payload is not a bencoded dictionary.
    """
    try:
        d = decode(payload, max_size=1 << 20)
    except BencodeError as exc:
        raise PeerProtocolError(f"bad ut_pex message: {exc.reason}") from None
    if not isinstance(d, dict):
        raise PeerProtocolError("ut_pex message is not a dictionary")
    added: list[PexPeer] = []
    for key, ipv6 in ((b"added", False), (b"added6", True)):
        flags = d.get(key + b".f")
        flag_bytes = flags if isinstance(flags, bytes) else b""
        for i, address in enumerate(_compact(d, key, ipv6=ipv6, max_peers=max_peers)):
            added.append(PexPeer(address, flag_bytes[i] if i < len(flag_bytes) else 0))
    dropped = _compact(d, b"dropped", ipv6=False, max_peers=max_peers)
    dropped += _compact(d, b"dropped6", ipv6=True, max_peers=max_peers)
    return PexMessage(tuple(added), tuple(dropped))


class PexState:
    """What one peer has been told by PEX, and what to tell it next.

    Attributes:
        last_sent: when the last message went out (``None`` before the first).
    """

    def __init__(self) -> None:
        self._told: dict[PeerAddress, int] = {}
        self.last_sent: float | None = None

    def diff(self, current: Iterable[PexPeer], now: float) -> PexMessage | None:
        """The next message given the peers connected now, or ``None`` (nothing new, or
        less than :data:`INTERVAL` since the last one).  Peers left out because of the
        50-per-message cap are sent in a later message.
        """
        if self.last_sent is not None and now - self.last_sent < INTERVAL:
            return None
        wanted = {p.address: p.flags for p in current}
        added = [PexPeer(a, f) for a, f in wanted.items() if self._told.get(a) != f][
            :MAX_PER_MESSAGE
        ]
        dropped = [a for a in self._told if a not in wanted][:MAX_PER_MESSAGE]
        if not added and not dropped:
            return None
        for peer in added:
            self._told[peer.address] = peer.flags
        for address in dropped:
            del self._told[address]
        self.last_sent = now
        return PexMessage(tuple(added), tuple(dropped))
