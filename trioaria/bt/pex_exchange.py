"""Peer Exchange in a swarm (BEP 11): the driver of :mod:`trioaria.bt.pex`.

Theory of operation
-------------------
When ``--enable-peer-exchange`` is on and the torrent is not private (BEP 27), the swarm carries
a :class:`PexExchange`.  Every :class:`~trioaria.bt.peer_task.PeerTask` then advertises
``ut_pex`` in its BEP 10 handshake and hands incoming ``ut_pex`` messages to
:meth:`PexExchange.received`: the ``added``/``added6`` peers go to ``Swarm.add_peers`` (the
connector dials them under ``--bt-max-peers``; ``dropped`` is informational).  At most
:data:`MAX_ADDED_PER_MESSAGE` peers are taken from one message.

:meth:`PexExchange.run` looks at the swarm every few seconds; for each connected peer that
supports ``ut_pex`` a :class:`~trioaria.bt.pex.PexState` decides whether a message is due (at most
one a minute per peer, BEP 11) and what it holds: the listen addresses of the other connected
peers, with the seed and reachable flags, and those dropped since the last message.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from ..base.errors import TrioariaError
from .messages import Extended
from .pex import (
    EXTENSION_NAME,
    FLAG_REACHABLE,
    FLAG_SEED,
    PexPeer,
    PexState,
    decode_pex,
    encode_pex,
)
from .tracker import PeerAddress

if TYPE_CHECKING:
    from .peer_task import PeerTask
    from .swarm import Swarm

__all__ = ["CHECK_INTERVAL", "MAX_ADDED_PER_MESSAGE", "PexExchange"]

log = logging.getLogger("trioaria.bt.pex")

CHECK_INTERVAL = 5.0
"""Seconds between two looks at the swarm (each peer still gets at most one message a minute)."""

MAX_ADDED_PER_MESSAGE = 50
"""Peers taken from one incoming message (BEP 11 asks senders for at most 50)."""


class PexExchange:
    """PEX for one swarm; see the module docstring."""

    def __init__(self) -> None:
        self._states: dict[PeerTask, PexState] = {}
        self.received_peers = 0
        self.sent_messages = 0

    def received(self, swarm: Swarm, peer: PeerTask, payload: bytes) -> None:
        """A ``ut_pex`` message from ``peer``: dial the peers it added.

        Raises:
            PeerProtocolError: the payload is not a bencoded dictionary.
        """
        message = decode_pex(payload, max_peers=MAX_ADDED_PER_MESSAGE)
        added = [(p.address.host, p.address.port) for p in message.added if p.address.port]
        log.debug("%r: ut_pex added %d, dropped %d", peer, len(added), len(message.dropped))
        self.received_peers += len(added)
        if added:
            swarm.add_peers(added)

    def _current(self, swarm: Swarm) -> dict[PeerTask, PexPeer]:
        out: dict[PeerTask, PexPeer] = {}
        for peer in swarm.peers:
            if not peer.ready or peer.listen_addr is None:
                continue
            flags = FLAG_REACHABLE if peer.outgoing else 0
            if peer.state is not None and peer.state.seed:
                flags |= FLAG_SEED
            out[peer] = PexPeer(PeerAddress(*peer.listen_addr), flags)
        return out

    def tick(self, swarm: Swarm, now: float) -> None:
        """Send the messages that are due (sync: the writers carry them out)."""
        current = self._current(swarm)
        for gone in [p for p in self._states if p not in swarm.peers]:
            del self._states[gone]
        for peer in list(swarm.peers):
            ext = peer.conn.remote_extensions.get(EXTENSION_NAME) if peer.ready else None
            if not ext:
                continue
            state = self._states.setdefault(peer, PexState())
            others = [info for other, info in current.items() if other is not peer]
            message = state.diff(others, now)
            if message is None:
                continue
            try:
                payload = encode_pex(message)
            except (ValueError, TrioariaError):  # a host name cannot be sent
                continue
            peer.send(Extended(ext, payload))
            self.sent_messages += 1

    async def run(self, swarm: Swarm) -> None:
        """Tick every :data:`CHECK_INTERVAL` seconds until cancelled."""
        while True:
            await trio.sleep(CHECK_INTERVAL)
            self.tick(swarm, trio.current_time())
