"""LpdNode: the trio multicast driver of Local Service Discovery (BEP 14).

The protocol (message codec, schedule, cookie and flood filters) is the pure
:class:`trioaria.bt.lpd.LpdService`; this driver owns the socket.  It lives next to the DHT's
UDP driver because both are small datagram loops of the same shape (read until the core's
deadline, feed the core, write what it returns); the BitTorrent layer starts it per
``--bt-enable-lpd`` and feeds :attr:`LpdNode.peers` into its swarms.

Socket set-up (docs/design.md; verified across network namespaces): bind port 6771 on
the group's address (as aria2: a datagram sent to this host's own address is not heard) with
``SO_REUSEADDR`` (several clients on one host share the port), join
the group on the interface given by ``--bt-lpd-interface`` (``IP_ADD_MEMBERSHIP`` with that
interface's address, or ``IPV6_JOIN_GROUP`` with its index), send through the same interface
(``IP_MULTICAST_IF``), TTL 1 unless told otherwise.  Multicast loopback is off by default; with
it on, our own announces come back and the cookie filters them out.
"""

from __future__ import annotations

import math
import secrets
import socket
import struct

import trio

from ..bt.lpd import LPD_GROUP4, LPD_PORT, LpdPeer, LpdService

MAX_PEERS = 256  # announces kept for the swarms to read (each reads them within a second)

__all__ = ["LpdNode"]


class LpdNode:
    """One LPD participant on one interface.

    Args:
        port: our BitTorrent listen port (announced).
        interface: the interface address (IPv4) or name (IPv6) to join the group on.
        group: :data:`~trioaria.bt.lpd.LPD_GROUP4` or :data:`~trioaria.bt.lpd.LPD_GROUP6`.
        loop: keep multicast loopback on (our own announces come back; the cookie drops them).
        ttl: multicast TTL / hop limit.
        lpd_port: the group's port (6771; tests may pick another).
    """

    def __init__(
        self,
        port: int,
        interface: str,
        *,
        group: str = LPD_GROUP4,
        loop: bool = False,
        ttl: int = 1,
        lpd_port: int = LPD_PORT,
    ) -> None:
        self.interface = interface
        self.group = group
        self.loop = loop
        self.ttl = ttl
        self.lpd_port = lpd_port
        self.service = LpdService(port, secrets.token_hex(8), group=group)
        self.peers: list[LpdPeer] = []  # the last MAX_PEERS found, oldest first
        self.found = 0  # peers found in all (``peers`` holds the last of them)
        self.sent = 0
        self._found = trio.Event()
        self._scope: trio.CancelScope | None = None

    def add_torrent(self, info_hash: bytes) -> None:
        """Announce ``info_hash`` (at once) and accept neighbours' announces of it."""
        self.service.add_torrent(info_hash, trio.current_time())
        self._kick()

    def remove_torrent(self, info_hash: bytes) -> None:
        """Stop announcing ``info_hash``."""
        self.service.remove_torrent(info_hash)

    def add_found(self, found: list[LpdPeer]) -> None:
        """Peers a neighbour announced: kept for the swarms, the last :data:`MAX_PEERS` of
        them (neighbours re-announce every 5 minutes, for as long as we run)."""
        self.peers.extend(found)
        self.found += len(found)
        del self.peers[:-MAX_PEERS]
        self._found.set()

    def peers_since(self, count: int) -> list[LpdPeer]:
        """The peers found after the first ``count`` (:attr:`found` then), as far as kept."""
        return self.peers[max(0, len(self.peers) - (self.found - count)) :]

    async def wait_peer(self) -> LpdPeer:
        """Wait until at least one peer was found; returns the first."""
        await self._found.wait()
        return self.peers[0]

    def _kick(self) -> None:
        if self._scope is not None:
            timer = self.service.get_timer()
            self._scope.deadline = timer if timer is not None else math.inf

    def _open(self) -> trio.socket.SocketType:
        v6 = ":" in self.group
        sock = trio.socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if v6:
            index = socket.if_nametoindex(self.interface)
            mreq = socket.inet_pton(socket.AF_INET6, self.group) + struct.pack("@I", index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(self.loop))
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, self.ttl)
        else:
            mreq = socket.inet_aton(self.group) + socket.inet_aton(self.interface)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.interface)
            )
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(self.loop))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.ttl)
        return sock

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; ``task_status.started()`` once the group is joined."""
        with self._open() as sock:
            # the group's address, as aria2: only datagrams sent to the group are heard, not
            # ones sent to this host's own address (from anywhere, not just the local network)
            await sock.bind((self.group, self.lpd_port))
            task_status.started()
            destination = (self.group, self.lpd_port)
            while True:
                timer = self.service.get_timer()
                with trio.CancelScope(deadline=timer if timer is not None else math.inf) as scope:
                    self._scope = scope
                    try:
                        data, address = await sock.recvfrom(2048)
                    except OSError:
                        continue
                    found = self.service.receive_datagram(
                        data, (address[0], address[1]), trio.current_time()
                    )
                    if found:
                        self.add_found(found)
                self._scope = None
                for datagram in self.service.datagrams_to_send(trio.current_time()):
                    try:
                        await sock.sendto(datagram, destination)
                        self.sent += 1
                    except OSError:
                        pass  # no route yet (interface down): the next interval retries
