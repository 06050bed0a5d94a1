"""Announce tokens with secret rotation, and the store of announced peers (pure).

BEP 5 "get_peers": "The return value for a query for peers includes an opaque value known as
the 'token.'  For a node to announce that its controlling peer is downloading a torrent, it
must present the token received from the same queried node in a recent query for peers. ...
The BitTorrent implementation uses the SHA1 hash of the IP address concatenated onto a secret
that changes every five minutes and tokens up to ten minutes old are accepted."

:class:`TokenManager` does exactly that: a token is ``sha1(secret + compact ip)`` truncated to
:data:`TOKEN_LENGTH` bytes, the secret rotates every :data:`SECRET_LIFETIME` seconds and the
previous secret stays valid, so a token lives 5 to 10 minutes.  The port is left out on purpose:
a peer behind a NAT may announce from another UDP port than it asked from.

:class:`PeerStore` keeps what ``announce_peer`` told us: per info hash, peer addresses with
an expiry (:data:`PEER_LIFETIME`, aria2 and libtorrent use 30 minutes for a peer not
re-announced), bounded in hashes and peers per hash so a flood costs bounded memory.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections import OrderedDict
from collections.abc import Callable

from .node_id import Address

__all__ = ["PEER_LIFETIME", "SECRET_LIFETIME", "TOKEN_LENGTH", "PeerStore", "TokenManager"]

SECRET_LIFETIME = 5 * 60.0
"""Seconds between secret rotations (BEP 5: "a secret that changes every five minutes")."""

TOKEN_LENGTH = 8
"""Bytes of a token we hand out."""

PEER_LIFETIME = 30 * 60.0
"""Seconds an announced peer is kept without a new announce."""


class TokenManager:
    """Hands out and checks get_peers/announce_peer tokens.

    Args:
        random_bytes: a source of secret bytes (``secrets.token_bytes`` in drivers).
        now: the time of creation.
    """

    def __init__(self, random_bytes: Callable[[int], bytes], now: float) -> None:
        self._random = random_bytes
        self._current = random_bytes(20)
        self._previous = random_bytes(20)
        self._rotated = now

    def _token(self, secret: bytes, ip: str) -> bytes:
        packed = ipaddress.ip_address(ip).packed
        return hashlib.sha1(secret + packed).digest()[:TOKEN_LENGTH]

    def rotate_if_due(self, now: float) -> None:
        """Rotate the secret when :data:`SECRET_LIFETIME` has passed (twice: both are replaced)."""
        elapsed = now - self._rotated
        if elapsed < SECRET_LIFETIME:
            return
        if elapsed >= 2 * SECRET_LIFETIME:  # asleep for two periods: neither secret is recent
            self._previous, self._current = self._random(20), self._random(20)
            self._rotated = now
        else:
            self._previous, self._current = self._current, self._random(20)
            self._rotated += SECRET_LIFETIME

    def get_timer(self) -> float:
        """When the next rotation is due."""
        return self._rotated + SECRET_LIFETIME

    def token_for(self, ip: str, now: float) -> bytes:
        """The token for a requester at ``ip``."""
        self.rotate_if_due(now)
        return self._token(self._current, ip)

    def check(self, token: bytes, ip: str, now: float) -> bool:
        """Whether ``token`` was handed to ``ip`` by the current or the previous secret."""
        self.rotate_if_due(now)
        return any(
            hmac.compare_digest(token, self._token(secret, ip))
            for secret in (self._current, self._previous)
        )


class PeerStore:
    """Peers announced to us, per info hash, with expiry.

    Args:
        max_torrents: info hashes kept (the oldest is dropped beyond).
        max_peers: peers kept per info hash (the oldest announce is dropped beyond).
        lifetime: seconds a peer stays without re-announcing.
    """

    def __init__(
        self, *, max_torrents: int = 2000, max_peers: int = 100, lifetime: float = PEER_LIFETIME
    ) -> None:
        self.max_torrents = max_torrents
        self.max_peers = max_peers
        self.lifetime = lifetime
        self._torrents: OrderedDict[bytes, OrderedDict[Address, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._torrents)

    def add(self, info_hash: bytes, peer: Address, now: float) -> None:
        """Record an announce of ``peer`` for ``info_hash``."""
        peers = self._torrents.get(info_hash)
        if peers is None:
            peers = self._torrents[info_hash] = OrderedDict()
            while len(self._torrents) > self.max_torrents:
                self._torrents.popitem(last=False)
        else:
            self._torrents.move_to_end(info_hash)
        peers.pop(peer, None)
        peers[peer] = now + self.lifetime
        while len(peers) > self.max_peers:
            peers.popitem(last=False)

    def get(self, info_hash: bytes, now: float, limit: int = 50) -> list[Address]:
        """Live peers for ``info_hash``, the most recent announces first, at most ``limit``."""
        peers = self._torrents.get(info_hash)
        if not peers:
            return []
        for peer in [p for p, expiry in peers.items() if expiry <= now]:
            del peers[peer]
        if not peers:
            del self._torrents[info_hash]
            return []
        return list(reversed(peers))[:limit]

    def expire(self, now: float) -> None:
        """Drop every expired peer (and torrents left empty)."""
        for info_hash in list(self._torrents):
            self.get(info_hash, now, 0)
