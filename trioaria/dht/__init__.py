"""The BitTorrent DHT (BEP 5, BEP 32 for IPv6), from scratch: pure cores and thin trio drivers.

Pure (sans-IO) modules: ``node_id`` (ids, XOR distance, compact node/peer forms), ``krpc`` (the
bencoded query/response/error codec), ``routing`` (k-buckets, splitting, liveness, refresh),
``tokens`` (announce tokens with secret rotation, the announced-peer store), ``lookup`` (the
iterative lookup state machine), ``persist`` (aria2's ``dht.dat`` layout) and ``protocol``
(one node as a datagram machine, time passed in).  Drivers: ``node`` (``DhtNode``, one UDP
socket) and ``lpd_node`` (``LpdNode``, the BEP 14 multicast socket around ``bt.lpd``).
"""

from __future__ import annotations

__all__: list[str] = []
