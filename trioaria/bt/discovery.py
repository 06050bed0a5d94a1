"""Finding peers beyond the trackers: the DHT (BEP 5, BEP 32) and LPD (BEP 14) for torrents.

Theory of operation
-------------------
:class:`Discovery` holds the DHT of the whole run, as in aria2: :func:`open_discovery` starts it
in the engine's services nursery (:mod:`trioaria.net.services`) for the first torrent download
that wants it, and each download uses it through a :class:`DownloadDiscovery`, which applies the
download's own options (without a services nursery a download runs a DHT of its own):

* **Nodes.**  ``--enable-dht`` starts an IPv4 :class:`~trioaria.dht.node.DhtNode` on the first
  free port of ``--dht-listen-port`` (bound to ``--dht-listen-addr``, default all addresses);
  ``--enable-dht6`` an IPv6 one on the same port (``--dht-listen-addr6``, default ``::``); both
  are linked for BEP 32 ``want``.  Each loads its routing table from ``--dht-file-path`` /
  ``--dht-file-path6`` (aria2's ``dht.dat`` layout, :mod:`trioaria.dht.persist`) and saves it
  there when the run ends.  ``--dht-message-timeout`` is the query timeout.
* **Bootstrap.**  ``--dht-entry-point`` / ``--dht-entry-point6`` are pinged and our own id is
  looked up.  When no entry point is given and the loaded table is empty, the built-in list
  :data:`DEFAULT_BOOTSTRAP` is used instead (docs/decisions.md), unless
  ``--dht-default-bootstrap=false`` or ``TRIOARIA_NO_DEFAULT_BOOTSTRAP=1``.
* **Peers.**  :meth:`Discovery.serve_swarm` runs next to a swarm (the magnet's metadata swarm,
  then the download's): a ``get_peers`` lookup that ends with ``announce_peer`` of our
  ``--listen-port`` to the closest nodes, repeated every 15 minutes as aria2 does (sooner, with
  backoff, while nothing was found).  The peers found go to ``Swarm.add_peers``.  A private
  torrent (BEP 27) never uses the DHT.

**LPD.**  With ``--bt-enable-lpd`` (never for a private torrent) :meth:`Discovery.serve_lpd`
runs an :class:`~trioaria.dht.lpd_node.LpdNode` for the swarm: it joins 239.192.152.143:6771 on
``--bt-lpd-interface`` (an interface name or its IPv4 address; default: the kernel's choice),
announces the torrent with our ``--listen-port`` and hands every neighbour that announces the
same torrent to ``Swarm.add_peers``.

Answering other nodes (``ping``, ``find_node``, ``get_peers`` from the peer store,
``announce_peer`` with tokens) and the per-IP rate limit of incoming queries are the core's
(:class:`~trioaria.dht.protocol.DhtProtocol`).
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import logging
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import trio

from ..base.errors import TrioariaError
from ..net.services import start_service

# The DHT and LPD nodes are imported when they start (--enable-dht, --bt-enable-lpd): a
# download without them does not load the KRPC, routing and lookup modules.
if TYPE_CHECKING:
    from ..dht.node import DhtNode
    from ..dht.node_id import NodeId
    from ..dht.persist import DhtState

Address = tuple[str, int]

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "REANNOUNCE_INTERVAL",
    "Discovery",
    "PeerSink",
    "SharedUdp",
    "default_bootstrap_allowed",
    "open_discovery",
    "serve_lpd",
]

log = logging.getLogger("trioaria.bt.discovery")

DEFAULT_BOOTSTRAP: tuple[tuple[str, int], ...] = (
    ("router.bittorrent.com", 6881),
    ("dht.transmissionbt.com", 6881),
    ("router.utorrent.com", 6881),
    ("dht.libtorrent.org", 25401),
)
"""Well-known public bootstrap nodes, used only with an empty table and no entry point."""

REANNOUNCE_INTERVAL = 15 * 60.0
"""Seconds between two announces of one torrent once peers were found (aria2: 15 minutes)."""

FIRST_RETRY = 2.0
MAX_RETRY = 120.0
LOOKUP_BOUND = 120.0
LPD_POLL = 1.0
SERVICE_KEY = "trioaria.bt.discovery"
_SIOCGIFADDR = 0x8915

Resolver = Callable[[str, int, int], Awaitable[Address | None]]
"""``(host, port, family) -> (ip, port)`` or None: how entry points are resolved."""


class PeerSink(Protocol):
    """What :meth:`Discovery.serve_swarm` needs of a swarm."""

    info_hash: bytes

    def add_peers(self, addrs: Iterable[tuple[str, int]]) -> None: ...


def default_bootstrap_allowed(get: Callable[[str], object]) -> bool:
    """docs/decisions.md: the built-in list is off with ``TRIOARIA_NO_DEFAULT_BOOTSTRAP=1`` or
    ``--dht-default-bootstrap=false``."""
    if os.environ.get("TRIOARIA_NO_DEFAULT_BOOTSTRAP", "") not in ("", "0"):
        return False
    return str(get("dht-default-bootstrap")).lower() != "false"


async def resolve_udp(host: str, port: int, family: int) -> Address | None:
    """The first ``family`` address of ``host`` (None when it has none)."""
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    try:
        infos = await trio.socket.getaddrinfo(host.strip("[]"), port, af, socket.SOCK_DGRAM)
    except OSError:
        return None
    for info in infos:
        sockaddr = info[4]
        return str(sockaddr[0]), int(sockaddr[1])
    return None


def lpd_interface_address(value: object) -> str:
    """``--bt-lpd-interface`` as an IPv4 address: an address as given, a name looked up
    (``SIOCGIFADDR``), unset as ``0.0.0.0`` (the kernel picks the interface).

    Raises:
        OSError: no such interface, or it has no IPv4 address.
    """
    text = str(value or "").strip()
    if not text:
        return "0.0.0.0"
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", text[:15].encode()))
    return socket.inet_ntoa(packed[20:24])


def _ports(value: object) -> list[int]:
    if not value:
        return [0]
    if isinstance(value, int):
        return [value]
    out: list[int] = []
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        for item in value:
            out.extend(item if isinstance(item, range) else [int(item)])
    else:
        out.append(int(str(value)))
    return out or [0]


def _free_in_both(host4: str, host6: str, attempts: int = 20) -> int:
    """A UDP port number free on ``host4`` and on ``host6`` (0 if none was found): the OS picks
    an IPv4 port, and the IPv6 address is tried on the same number."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s4:
            try:
                s4.bind((host4, 0))
            except OSError:
                return 0
            port = int(s4.getsockname()[1])
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s6:
                s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    s6.bind((host6, port))
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        continue
                    return 0  # no IPv6 here: the caller warns and goes on with IPv4
                return port
    return 0


def _truthy(value: object) -> bool:
    return value is True or str(value).lower() == "true"


_Route = tuple[trio.MemorySendChannel[bytes], trio.MemoryReceiveChannel[bytes]]


class SharedUdp:
    """UDP tracker traffic on a DHT node's socket (docs/decisions.md: as aria2 does).

    :meth:`open` registers interest in one tracker address and returns a receive channel for its
    datagrams (the node's :attr:`~trioaria.dht.node.DhtNode.foreign` hook dispatches them by
    source address); :meth:`send` writes from the node's socket.
    """

    def __init__(self, node: DhtNode) -> None:
        self.node = node
        self._routes: dict[Address, list[_Route]] = {}
        node.foreign = self._dispatch

    @property
    def port(self) -> int:
        return self.node.port

    def _dispatch(self, data: bytes, address: Address) -> None:
        for send, _receive in self._routes.get((address[0], address[1]), ()):
            try:
                send.send_nowait(data)
            except trio.WouldBlock:
                pass  # a slow announce: UDP may drop, the client retransmits

    def open(self, address: Address) -> trio.MemoryReceiveChannel[bytes]:
        """Datagrams from ``address`` from now on (:meth:`close` to stop)."""
        send, receive = trio.open_memory_channel[bytes](16)
        self._routes.setdefault(address, []).append((send, receive))
        return receive

    def close(self, address: Address, receive: trio.MemoryReceiveChannel[bytes]) -> None:
        """Forget the route :meth:`open` made."""
        routes = self._routes.get(address, [])
        for route in [r for r in routes if r[1] is receive]:
            routes.remove(route)
            route[0].close()
            route[1].close()
        if not routes:
            self._routes.pop(address, None)

    async def send(self, data: bytes, address: Address) -> None:
        await self.node.send_foreign(data, address)


class Discovery:
    """The DHT side of one torrent download; see the module docstring.

    Args:
        get: the download's option lookup (``RequestGroup.opt``).
        resolve: how entry points and bootstrap names become addresses (tests inject one).
        bootstrap_nodes: the built-in list (tests inject loopback addresses).
    """

    def __init__(
        self,
        get: Callable[[str], object],
        *,
        resolve: Resolver = resolve_udp,
        bootstrap_nodes: Sequence[tuple[str, int]] = DEFAULT_BOOTSTRAP,
    ) -> None:
        self._get = get
        self._resolve = resolve
        self._bootstrap_nodes = tuple(bootstrap_nodes)
        self.enabled4 = _truthy(get("enable-dht"))
        self.enabled6 = _truthy(get("enable-dht6"))
        self.nodes: dict[int, DhtNode] = {}
        self.port = 0
        self.ready = trio.Event()
        self.used_default_bootstrap = False
        self._loaded: dict[int, int] = {}
        self._shared: dict[int, SharedUdp] = {}
        self._new_nodes_in, self._new_nodes_out = trio.open_memory_channel[Address](64)

    @property
    def enabled(self) -> bool:
        return self.enabled4 or self.enabled6

    def attach(self, swarm: Any, private: bool) -> None:
        """Let ``swarm`` advertise our DHT port (BEP 5 PORT) and feed peers' nodes to us."""
        if private or not self.nodes:
            return
        swarm.dht_port = self.port
        swarm.on_dht_node = self.add_node

    def add_node(self, address: Address) -> None:
        """A node learned from a peer's PORT message: pinged, and kept if it answers."""
        try:
            self._new_nodes_in.send_nowait(address)
        except trio.WouldBlock:
            pass  # a burst of peers: the table fills from lookups anyway

    async def _ping_new_nodes(self) -> None:
        async for address in self._new_nodes_out:
            node = self.nodes.get(6 if ":" in address[0] else 4)
            if node is None:
                continue
            with trio.move_on_after(LOOKUP_BOUND):
                try:
                    await node.ping(address)
                except TrioariaError:
                    pass

    def udp_for(self, family: int) -> SharedUdp | None:
        """The DHT socket of ``family`` (4 or 6) for UDP trackers, or None (no such node)."""
        node = self.nodes.get(family)
        if node is None:
            return None
        shared = self._shared.get(family)
        if shared is None:
            shared = self._shared[family] = SharedUdp(node)
        return shared

    # --- dht.dat ------------------------------------------------------------------------------

    def _path(self, family: int) -> str | None:
        value = self._get("dht-file-path6" if family == 6 else "dht-file-path")
        return os.path.expanduser(str(value)) if value else None

    def _load(self, family: int) -> DhtState | None:
        path = self._path(family)
        if not path or not os.path.isfile(path):  # not a FIFO, a device or a directory
            return None
        from ..dht.persist import MAX_FILE_SIZE, DhtFileError, parse_dht_file

        try:
            with open(path, "rb") as f:
                return parse_dht_file(f.read(MAX_FILE_SIZE), family)
        except (OSError, DhtFileError) as exc:
            log.warning("ignoring the DHT routing table %s: %s", path, exc)
            return None

    def save(self) -> None:
        """Write each node's table to its ``dht.dat`` (a temp file renamed into place).

        An empty table is not written: an offline run neither wipes a good file nor creates one.
        """
        for family, node in self.nodes.items():
            path = self._path(family)
            if not path:
                continue
            state = node.save_state(int(time.time()))
            if not state.nodes:  # nothing learned: keep an older file, create none
                continue
            from ..dht.persist import serialize_dht_file

            data = serialize_dht_file(state, family)
            try:
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                tmp = path + ".tmp"
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except OSError as exc:
                log.warning("cannot save the DHT routing table %s: %s", path, exc)

    # --- running ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report the port, bootstrap; serve until cancelled, then save the tables."""
        if not self.enabled:
            task_status.started(0)
            return
        timeout = float(str(self._get("dht-message-timeout") or 10))
        try:
            async with trio.open_nursery() as nursery:
                await self._bind(nursery, timeout)
                task_status.started(self.port)
                nursery.start_soon(self._ping_new_nodes)
                async with trio.open_nursery() as boot:
                    for family in self.nodes:
                        boot.start_soon(self._bootstrap, family)
                self.ready.set()
        finally:
            self.ready.set()
            self.save()

    async def _bind(self, nursery: trio.Nursery, timeout: float) -> None:
        ports = _ports(self._get("dht-listen-port"))
        if ports == [0] and self.enabled4 and self.enabled6:
            # the OS picks the IPv4 port; the IPv6 node needs the same number free too
            ports = [_free_in_both(self._node_host(4), self._node_host(6)), 0]
        last: OSError | None = None
        first_family = 4 if self.enabled4 else 6
        for port in ports:
            node = self._node(first_family, port, timeout)
            try:
                self.port = await nursery.start(node.run)
            except OSError as exc:
                last = exc
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise TrioariaError(f"cannot bind the DHT socket: {exc.strerror}") from None
            self.nodes[first_family] = node
            break
        else:
            raise TrioariaError(f"no free UDP port in --dht-listen-port ({last})")
        if self.enabled4 and self.enabled6:
            node6 = self._node(6, self.port, timeout)
            try:
                await nursery.start(node6.run)
            except OSError as exc:  # no IPv6 here: the IPv4 DHT still works
                log.warning("IPv6 DHT disabled: %s", exc)
            else:
                self.nodes[6] = node6
                self.nodes[4].link(node6)
        log.info("DHT listening on UDP port %d (%s)", self.port,
                 ", ".join(f"IPv{f}" for f in self.nodes))  # fmt: skip

    def _node_host(self, family: int) -> str:
        key = "dht-listen-addr6" if family == 6 else "dht-listen-addr"
        return str(self._get(key) or ("::" if family == 6 else "0.0.0.0"))

    def _node(self, family: int, port: int, timeout: float) -> DhtNode:
        host = self._node_host(family)
        state = self._load(family)
        self._loaded[family] = len(state.nodes) if state is not None else 0  # pinged by run()
        other = self.nodes.get(4 if family == 6 else 6)
        node_id: NodeId | None = other.node_id if other is not None else None
        from ..dht.node import DhtNode

        return DhtNode(host, port, node_id=node_id, state=state, query_timeout=timeout)

    async def _bootstrap(self, family: int) -> None:
        node = self.nodes[family]
        entry = self._get("dht-entry-point6" if family == 6 else "dht-entry-point")
        targets: list[tuple[str, int]] = []
        if isinstance(entry, tuple) and len(entry) == 2:
            targets = [(str(entry[0]), int(entry[1]))]
        elif not self._loaded.get(family) and default_bootstrap_allowed(self._get):
            targets = list(self._bootstrap_nodes)
            self.used_default_bootstrap = True
        addresses = []
        for host, port in targets:
            address = await self._resolve(host, port, family)
            if address is not None:
                addresses.append(address)
        if not addresses:
            return
        with trio.move_on_after(LOOKUP_BOUND):
            count = await node.bootstrap(addresses)
            log.info("DHT (IPv%d) bootstrapped: %d nodes", family, count)

    async def serve_swarm(self, swarm: PeerSink, port: int, private: bool = False) -> None:
        """Find peers for ``swarm`` and announce ``port`` until cancelled (never for private)."""
        if private or not self.enabled:
            return
        await self.ready.wait()
        nodes = list(self.nodes.values())
        if not nodes:
            return
        from ..dht.node_id import NodeId

        info_hash = NodeId(swarm.info_hash)
        retry = FIRST_RETRY
        while True:
            found: list[Address] = []

            async def one(node: DhtNode, found: list[Address] = found) -> None:
                with trio.move_on_after(LOOKUP_BOUND):
                    found.extend(await node.announce(info_hash, port))

            async with trio.open_nursery() as lookups:
                for node in nodes:
                    lookups.start_soon(one, node)
            if found:
                log.info("DHT: %d peers for %s", len(found), info_hash.hex())
                swarm.add_peers((str(ip), int(p)) for ip, p in found)
                await trio.sleep(REANNOUNCE_INTERVAL)
                retry = FIRST_RETRY
            else:
                await trio.sleep(retry)
                retry = min(retry * 2, MAX_RETRY)


async def serve_lpd(
    get: Callable[[str], object], swarm: PeerSink, port: int, private: bool = False
) -> None:
    """BEP 14 for ``swarm`` until cancelled (``--bt-enable-lpd``; never for private)."""
    if private or not _truthy(get("bt-enable-lpd")):
        return
    try:
        interface = lpd_interface_address(get("bt-lpd-interface"))
    except OSError as exc:
        log.warning("LPD disabled: --bt-lpd-interface: %s", exc)
        return
    from ..dht.lpd_node import LpdNode

    node = LpdNode(port, interface)
    async with trio.open_nursery() as nursery:
        try:
            await nursery.start(node.run)
        except OSError as exc:
            log.warning("LPD disabled: %s", exc)
            return
        node.add_torrent(swarm.info_hash)
        log.info("LPD: announcing on %s", interface)
        seen = 0
        while True:
            await node.wait_peer()
            if node.found > seen:
                fresh = node.peers_since(seen)
                seen = node.found
                swarm.add_peers(p.address for p in fresh if p.info_hash == swarm.info_hash)
            await trio.sleep(LPD_POLL)


class DownloadDiscovery:
    """One download's view of the run's :class:`Discovery`: its own options decide.

    ``--enable-dht``/``--enable-dht6`` of the download choose whether it uses the (shared) DHT
    at all; ``--bt-enable-lpd`` and ``--bt-lpd-interface`` are per download (one LPD socket
    per swarm).
    """

    def __init__(self, shared: Discovery | None, get: Callable[[str], object]) -> None:
        self.shared = shared
        self._get = get
        self.dht = shared is not None and (
            _truthy(get("enable-dht")) or _truthy(get("enable-dht6"))
        )

    @property
    def port(self) -> int:
        return self.shared.port if self.shared is not None and self.dht else 0

    async def serve_swarm(self, swarm: PeerSink, port: int, private: bool = False) -> None:
        """DHT peers for ``swarm`` (see :meth:`Discovery.serve_swarm`)."""
        if self.shared is not None and self.dht:
            await self.shared.serve_swarm(swarm, port, private)

    async def serve_lpd(self, swarm: PeerSink, port: int, private: bool = False) -> None:
        """LPD for ``swarm`` (see :func:`serve_lpd`)."""
        await serve_lpd(self._get, swarm, port, private)

    def attach(self, swarm: Any, private: bool) -> None:
        if self.shared is not None and self.dht:
            self.shared.attach(swarm, private)

    def udp_for(self, family: int) -> SharedUdp | None:
        if self.shared is None or not self.dht:
            return None
        return self.shared.udp_for(family)


async def _serve_shared(
    get: Callable[[str], object],
    *,
    task_status: trio.TaskStatus[Discovery] = trio.TASK_STATUS_IGNORED,
) -> None:
    discovery = Discovery(get)
    async with trio.open_nursery() as nursery:
        await nursery.start(discovery.run)
        task_status.started(discovery)


async def open_discovery(get: Callable[[str], object], nursery: trio.Nursery) -> DownloadDiscovery:
    """The download's discovery: the run-wide DHT (one node, one ``dht.dat`` writer for every
    torrent, as aria2), started by the first download that wants it in the engine's services
    nursery; without that nursery, a DHT of the download's own in ``nursery``."""
    if not (_truthy(get("enable-dht")) or _truthy(get("enable-dht6"))):
        return DownloadDiscovery(None, get)
    shared = await start_service(SERVICE_KEY, partial(_serve_shared, get))
    if isinstance(shared, Discovery):
        return DownloadDiscovery(shared, get)
    own = Discovery(get)
    await nursery.start(own.run)
    return DownloadDiscovery(own, get)
