"""PexExchange, the swarm side of BEP 11, on plain values: what it sends, when, and what it takes.

The swarm and its peers are small stand-ins with the attributes PexExchange reads (a real swarm
needs a download); the messages are decoded with the codec of ``trioaria/bt/pex.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from trioaria.bt.errors import PeerProtocolError
from trioaria.bt.messages import Extended
from trioaria.bt.pex import FLAG_REACHABLE, FLAG_SEED, PexMessage, PexPeer, decode_pex, encode_pex
from trioaria.bt.pex_exchange import PexExchange
from trioaria.bt.tracker import PeerAddress


@dataclass
class _Conn:
    remote_extensions: dict[str, int]


@dataclass
class _State:
    seed: bool = False


@dataclass(eq=False)
class _Peer:
    listen_addr: tuple[str, int] | None
    outgoing: bool = True
    pex_id: int | None = 7
    seed: bool = False
    ready: bool = True
    sent: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conn = _Conn({"ut_pex": self.pex_id} if self.pex_id else {})
        self.state = _State(self.seed)

    def send(self, event: Any) -> None:
        self.sent.append(event)


class _Swarm:
    def __init__(self, peers: list[_Peer]) -> None:
        self.peers = set(peers)
        self.added: list[tuple[str, int]] = []

    def add_peers(self, addrs: Iterable[tuple[str, int]]) -> None:
        self.added.extend(addrs)


def _messages(peer: _Peer) -> list[PexMessage]:
    out = []
    for event in peer.sent:
        assert isinstance(event, Extended) and event.ext_id == peer.pex_id
        out.append(decode_pex(bytes(event.payload)))
    return out


def test_sends_the_other_peers_at_most_once_a_minute() -> None:
    a = _Peer(("10.0.0.1", 6881))
    b = _Peer(("10.0.0.2", 6882), outgoing=False, seed=True)
    c = _Peer(("10.0.0.3", 6883), pex_id=None)  # does not speak ut_pex: told nothing
    swarm = _Swarm([a, b, c])
    pex = PexExchange()
    pex.tick(swarm, 100.0)  # type: ignore[arg-type]
    (first,) = _messages(a)
    assert {p.address.host: p.flags for p in first.added} == {
        "10.0.0.2": FLAG_SEED,
        "10.0.0.3": FLAG_REACHABLE,
    }
    assert c.sent == []
    d = _Peer(("10.0.0.4", 6884))
    swarm.peers.add(d)
    swarm.peers.discard(c)
    pex.tick(swarm, 130.0)  # type: ignore[arg-type]
    assert len(a.sent) == 1  # BEP 11: not again within a minute
    pex.tick(swarm, 161.0)  # type: ignore[arg-type]
    second = _messages(a)[1]
    assert [p.address.host for p in second.added] == ["10.0.0.4"]
    assert [x.host for x in second.dropped] == ["10.0.0.3"]


def test_received_peers_go_to_the_swarm_capped() -> None:
    swarm = _Swarm([])
    pex = PexExchange()
    many = tuple(
        PexPeer(PeerAddress(f"10.1.{i // 250}.{i % 250 + 1}", 7000 + i)) for i in range(80)
    )
    pex.received(swarm, _Peer(None), encode_pex(PexMessage(added=many)))  # type: ignore[arg-type]
    assert swarm.added[:2] == [("10.1.0.1", 7000), ("10.1.0.2", 7001)]
    assert len(swarm.added) == 50  # BEP 11's per-message cap
    with pytest.raises(PeerProtocolError):
        pex.received(swarm, _Peer(None), b"not bencode")  # type: ignore[arg-type]
