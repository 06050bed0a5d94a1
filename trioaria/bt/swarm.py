"""The peers of one torrent: dialling, accepting, choking, HAVE broadcasts, bans, metadata.

Theory of operation
-------------------
A :class:`Swarm` is the context every :class:`~trioaria.bt.peer_task.PeerTask` of one torrent
shares.  It never owns a picker or a disk path of its own: blocks go to the download's
:class:`~trioaria.storage.session.StorageSession` (``write_block``), claims come from its picker,
uploads are read back through it (docs/design.md, "one picker, one disk layer").

:meth:`Swarm.run` is started in the download's nursery and runs:

* the **connector**: dials known addresses (trackers, ``x.pe``, peers' listen ports learned from
  BEP 10 handshakes) while fewer than ``--bt-max-peers`` peers are connected; banned addresses and
  our own are skipped;
* the **choker** (:class:`~trioaria.bt.choker.Choker`): a round every 10 s, and at once when an
  interested peer waits while an upload slot is free, so a new leecher does not wait 10 s;
* **one connection per peer**: a handshake under a peer id already connected is refused
  (:meth:`Swarm.admit_peer_id`); the running connection stays;
* the **HAVE broadcaster**: each piece the session verifies is announced to every peer at once
  (:meth:`Swarm.piece_verified`, the session's ``on_piece_verified`` hook); pieces verified
  before a peer connected are in the bitfield it gets.

A piece that fails its SHA-1 check blames the peers that wrote it (``on_piece_failed``): a sole
writer is banned at once (address and peer id), a co-writer on its second strike.  Metadata for
a magnet (BEP 9) is assembled here from every peer that offers it; the first verified copy wins.

Rates: the download limits (``--max-download-limit``, ``--max-overall-download-limit``) are the
same token buckets HTTP and FTP use; ``--max-upload-limit`` and ``--max-overall-upload-limit``
govern uploads.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from ..base.errors import TrioariaError
from ..base.policy import SpeedLimit
from ..base.speed import SpeedMeter
from ..storage.bitfield import Bitfield as Pieces
from .choker import ROUND_INTERVAL, ChokePeer, Choker
from .crypto_stream import PeerStream, open_peer_stream
from .errors import PeerProtocolError
from .fast import allowed_fast_set
from .metainfo import Metainfo
from .mse import CryptoPolicy
from .peer_task import PeerTask

if TYPE_CHECKING:  # --trace, PEX and BEP 9 are imported when a download uses them
    from .pex_exchange import PexExchange
    from .trace import Tracer
    from .ut_metadata import MetadataAssembler, MetadataData

__all__ = ["Swarm", "SwarmStats"]

log = logging.getLogger("trioaria.bt.swarm")

UNCHOKE_SLOTS = 4
# A failed dial is tried again after these delays, then given up (libtorrent retries a peer up
# to 3 times too).  A peer may refuse a connection for a moment: transmission closes a new one
# from an address whose previous connection it has not torn down yet (a magnet download redials
# its metadata peers as soon as the metadata is in).
REDIAL_AFTER = (2.0, 10.0, 30.0)
ALLOWED_FAST_SIZE = 10  # BEP 6 "k"; aria2 and libtorrent send 10
MIN_PEERS = 40  # aria2 BtRuntime's minimum: a leecher below it keeps dialling
DIAL_RECHECK = 1.0  # seconds: aria2's ActivePeerConnectionCommand tick
MAX_CANDIDATES = 1024  # addresses waiting to be dialled (aria2's MAX_PEER_LIST_SIZE)
METADATA_SOURCES = 4  # peers asked for the metadata at once, each into its own assembler
METADATA_PATIENCE = 30  # seconds a peer asked for the metadata may send nothing


@dataclass(frozen=True, slots=True)
class SwarmStats:
    """A snapshot of a swarm for the readout and the announce loop."""

    connections: int
    download_speed: int
    upload_speed: int
    downloaded: int
    uploaded: int


class Swarm:
    """The peers of one torrent; see the module docstring.

    Args:
        info_hash: the torrent's info hash.
        peer_id: our 20-byte peer id.
        meta: the metainfo (``None`` while a magnet's metadata is being fetched).
        session: the download's storage session (``None`` in the metadata phase).
        max_peers: ``--bt-max-peers`` (0: unlimited).
        request_peer_speed_limit: ``--bt-request-peer-speed-limit`` in bytes/s: while leeching
            slower than this, more peers are dialled (up to twice ``max_peers``); at or above
            it, no new peer is dialled once :data:`MIN_PEERS` are connected (aria2's rule).
        peer_agent: ``--peer-agent`` (the extended handshake's ``v``).
        connect_timeout: seconds allowed for a TCP connect.
        download_limits: returns the download token buckets in force now.
        upload_limits: returns the upload token buckets in force now.
        rng: randomness for the choker's optimistic draw.
        crypto: MSE/PE policy (``--bt-require-crypto``, ``--bt-min-crypto-level``).
        tracer: ``--trace``: every peer message is written there (bt/trace.py).
    """

    def __init__(
        self,
        info_hash: bytes,
        peer_id: bytes,
        *,
        meta: Metainfo | None,
        session: object | None = None,
        max_peers: int = 55,
        request_peer_speed_limit: int = 0,
        peer_agent: str = "trioaria",
        connect_timeout: float = 30.0,
        download_limits: Callable[[], tuple[SpeedLimit, ...]] = tuple,
        upload_limits: Callable[[], tuple[SpeedLimit, ...]] = tuple,
        rng: random.Random | None = None,
        crypto: CryptoPolicy | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        from ..storage.session import StorageSession

        self.info_hash = info_hash
        self.peer_id = peer_id
        self.tracer = tracer
        self.meta = meta
        self.session: StorageSession | None = (
            session if isinstance(session, StorageSession) else None
        )
        self.max_peers = max_peers
        self.request_peer_speed_limit = request_peer_speed_limit
        self.peer_agent = peer_agent
        self.listen_port = 0
        self.connect_timeout = connect_timeout
        self.crypto = crypto or CryptoPolicy()
        #: BEP 11 peer exchange (None: off, e.g. a private torrent)
        self.pex: PexExchange | None = None
        #: BEP 5: our DHT port (0: none) and where peers' PORT messages go
        self.dht_port = 0
        self.on_dht_node: Callable[[tuple[str, int]], None] | None = None
        self._download_limits = download_limits
        self._upload_limits = upload_limits
        self._rng = rng or random.Random()
        self.choker = Choker(self._rng.choice)
        self.peers: set[PeerTask] = set()
        self._candidates: dict[tuple[str, int], None] = {}
        self._connecting: set[tuple[str, int]] = set()
        self._dial_failures: dict[tuple[str, int], int] = {}
        self._self_addrs: set[tuple[str, int]] = set()
        self.banned_addrs: set[tuple[str, int]] = set()
        self.banned_ids: set[bytes] = set()
        self.violations: list[str] = []
        self.complete = False
        self.uploaded = 0
        self.downloaded = 0
        now = trio.current_time()
        self.down_meter = SpeedMeter(now)
        self.up_meter = SpeedMeter(now)
        self._changed = trio.Event()
        self._choke_now = trio.Event()
        self._nursery: trio.Nursery | None = None
        self.fatal: TrioariaError | None = None
        self.fatal_event = trio.Event()
        self._last_block: dict[int, float] = {}
        # BEP 9 metadata (magnet phase)
        self.metadata: bytes | None = None
        self.metadata_event = trio.Event()
        # one assembler per peer asked (at most METADATA_SOURCES at once): a peer whose pieces
        # fail the info hash, or that announced another size, spoils only its own attempt
        self._assemblers: dict[PeerTask, MetadataAssembler] = {}
        self._metadata_since: dict[PeerTask, float] = {}  # asked, or last piece received
        self.metadata_received = 0  # metadata bytes received (--bt-stop-timeout while fetching)
        self._seen: dict[tuple[str, int], None] = {}
        self._fast_sets: dict[str, list[int]] = {}  # peer IP -> its BEP 6 allowed fast set

    # --- geometry ---------------------------------------------------------------------------

    def block_request(self, block: int) -> tuple[int, int, int]:
        """``(index, begin, length)`` of a storage block."""
        return self.block_requests([block])[0]

    def block_requests(self, blocks: list[int]) -> list[tuple[int, int, int]]:
        """``(index, begin, length)`` of each storage block (a pipeline refill), in one call.

        Blocks are numbered piece by piece (``blocks_per_piece`` each, the last one of a piece
        or of the download maybe shorter), so the arithmetic is done here, not block by block
        through :meth:`PieceStorage.block_span` (docs/performance.md §9)."""
        assert self.session is not None
        st = self.session.storage
        pl, bl, bpp = st.piece_length, st.block_length, st.blocks_per_piece
        last = st.num_pieces - 1
        last_size = st.total_length - last * pl
        out = []
        for block in blocks:
            index = block // bpp
            begin = (block - index * bpp) * bl
            length = (pl if index < last else last_size) - begin
            out.append((index, begin, bl if length > bl else length))
        return out

    def block_index(self, index: int, begin: int) -> int:
        assert self.session is not None
        st = self.session.storage
        return st.block_of(index * st.piece_length + begin)

    def block_geometry(self) -> tuple[int, int]:
        """``(blocks_per_piece, block_length)``: a block starting at ``begin`` in piece ``index``
        is block ``index * blocks_per_piece + begin // block_length``; ``(0, 1)`` before the
        metadata."""
        if self.session is None:
            return 0, 1
        st = self.session.storage
        return st.blocks_per_piece, st.block_length

    def verified_bitfield(self) -> Pieces:
        assert self.session is not None
        return self.session.storage.verified

    def have_piece(self, index: int) -> bool:
        session = self.session
        return session is not None and bool(session.storage.verified[index])

    def wants_any(self, pieces: Iterable[int]) -> bool:
        """Whether any of ``pieces`` is wanted and not written yet."""
        session = self.session
        if session is None or self.complete:
            return False
        st = session.storage
        wanted = session.wanted
        return any(wanted[p] and not st.pieces[p] for p in pieces)

    def allowed_fast_for(self, peer: PeerTask) -> frozenset[int]:
        """BEP 6: the pieces ``peer`` may request from us while we choke it (10, as aria2)."""
        return frozenset(self.allowed_fast_list(peer))

    def allowed_fast_list(self, peer: PeerTask) -> list[int]:
        """The allowed fast set of ``peer``'s address, in BEP 6 draw order (cached per address)."""
        meta = self.meta
        if meta is None or not meta.num_pieces:
            return []
        ip = peer.addr[0]
        cached = self._fast_sets.get(ip)
        if cached is None:
            try:
                cached = allowed_fast_set(ip, self.info_hash, meta.num_pieces, ALLOWED_FAST_SIZE)
            except ValueError:  # not an IP literal
                cached = []
            self._fast_sets[ip] = cached
        return cached

    def read_block(self, index: int, begin: int, length: int) -> bytes:
        assert self.session is not None
        return self.session.read(index * self.session.storage.piece_length + begin, length)

    # --- counters and limits -----------------------------------------------------------------

    def count_upload(self, n: int, now: float) -> None:
        self.uploaded += n
        self.up_meter.add(n, now)

    async def upload_allowance(self, n: int) -> None:
        """Reserve ``n`` bytes of every upload bucket, then wait until they are due."""
        await _throttle(self._upload_limits(), n)

    def upload_limited(self) -> bool:
        """Whether an upload rate limit applies (the writer then sends one block at a time)."""
        return any(limit.limited for limit in self._upload_limits())

    async def download_throttle(self, n: int) -> None:
        """``n`` bytes were received: take them from the download buckets, wait if in debt."""
        await _throttle(self._download_limits(), n)

    def seeders(self) -> int:
        """Connected peers that have every piece (the readout's ``SD:``)."""
        return sum(1 for p in self.peers if p.ready and p.state is not None and p.state.seed)

    def statistics(self) -> SwarmStats:
        now = trio.current_time()
        return SwarmStats(
            connections=sum(1 for p in self.peers if p.ready),
            download_speed=self.down_meter.rate(now),
            upload_speed=self.up_meter.rate(now),
            downloaded=self.downloaded,
            uploaded=self.uploaded,
        )

    # --- blocks and pieces -------------------------------------------------------------------

    def block_arrived(
        self, peer: PeerTask, index: int, begin: int, data: bytes | bytearray | memoryview,
        now: float,
    ) -> None:  # fmt: skip
        """One requested block from ``peer``: :meth:`blocks_arrived` with a run of one."""
        if self.session is None:
            return
        self.blocks_arrived(
            peer, self.block_index(index, begin), [memoryview(data)], len(data), now
        )

    def blocks_arrived(
        self, peer: PeerTask, first: int, data: list[memoryview], nbytes: int, now: float
    ) -> None:
        """Consecutive blocks ``first, first + 1, ...`` of one read from ``peer`` (``nbytes`` in
        all): :meth:`block_arrived` for each, with one disk write, one picker call and one
        rate-meter update (docs/performance.md §9)."""
        session = self.session
        if session is None or self.complete:
            return
        try:
            outcome = session.write_blocks(peer, first, data)
        except TrioariaError as exc:  # a disk error ends the download, not just this peer
            self.fail(exc)
            return
        self.downloaded += nbytes
        self.down_meter.add(nbytes, now)
        self._last_block[id(peer)] = now
        for other, other_block in outcome.cancels:
            if isinstance(other, PeerTask) and other is not peer:
                other.cancel_block(other_block)

    def cancel_claims(self, cancels: list[tuple[object, int]]) -> None:
        """A web seed wrote blocks peers had requested: CANCEL those requests (BEP 3)."""
        for peer, block in cancels:
            if isinstance(peer, PeerTask):
                peer.cancel_block(block)

    def fail(self, exc: TrioariaError) -> None:
        if self.fatal is None:
            self.fatal = exc
            self.fatal_event.set()

    def piece_failed(self, piece: int, blamed: frozenset[object]) -> None:
        """``on_piece_failed`` of the session: blame and ban the peers that wrote ``piece``."""
        peers = [p for p in blamed if isinstance(p, PeerTask)]
        for peer in peers:
            peer.strikes += 1
            if (len(peers) == 1 or peer.strikes >= 2) and not peer.closed:
                log.warning("banning %r: piece %d failed its hash check", peer, piece)
                self.ban(peer)

    def ban(self, peer: PeerTask) -> None:
        for addr in (peer.addr, peer.listen_addr):
            if addr is not None:
                self.banned_addrs.add(addr)
        if peer.peer_id:
            self.banned_ids.add(peer.peer_id)
        peer.close()

    def is_banned(self, peer: PeerTask, peer_id: bytes) -> bool:
        return peer_id in self.banned_ids or peer.addr in self.banned_addrs

    def note_violation(self, peer: PeerTask, reason: str) -> None:
        self.violations.append(f"{peer.addr[0]}:{peer.addr[1]}: {reason}")
        del self.violations[:-50]
        for addr in (peer.addr, peer.listen_addr):
            if addr is not None:
                self.banned_addrs.add(addr)
        if peer.peer_id:
            self.banned_ids.add(peer.peer_id)

    def note_self(self, peer: PeerTask) -> None:
        self._self_addrs.add(peer.addr)

    def admit_peer_id(self, peer: PeerTask, peer_id: bytes) -> bool:
        """Whether ``peer`` may go on after its handshake named ``peer_id``.

        Two connections to one peer (each side dialled the other, or it came on two
        addresses) would count it twice and split its blocks, so the second is refused: the
        first keeps running, whatever it is doing.  (libtorrent instead picks one of two
        crossed connections by comparing peer ids, but aria2c answers the loss of either by
        dropping both, so replacing a running connection made an aria2c peer reconnect every
        second or two.)  When the refused connection is one we dialled, the running one
        learns that address, so the connector does not dial it again.
        """
        for other in self.peers:
            if other is peer or other.closed or other.peer_id != peer_id:
                continue
            log.debug("%r: already connected to this peer as %r", peer, other)
            if other.listen_addr is None and peer.outgoing:
                other.listen_addr = peer.addr
            return False
        return True

    def set_complete(self) -> None:
        """Every wanted piece is verified: stop requesting, drop other seeds."""
        self.complete = True
        for peer in list(self.peers):
            peer.lose_interest()
            if peer.state is not None and peer.state.seed:
                peer.close()
        self._choke_now.set()

    # --- peers coming and going --------------------------------------------------------------

    def add_peers(self, addrs: Iterable[tuple[str, int]]) -> None:
        """Addresses to dial (trackers, magnet ``x.pe``, PEX, LPD).

        At most :data:`MAX_CANDIDATES` wait (aria2's peer list size): past it the oldest go,
        so a peer flooding PEX messages cannot grow the list without bound."""
        candidates = self._candidates
        added = False
        for addr in addrs:
            if self._dialable(addr):
                candidates[addr] = None
                added = True
        if len(candidates) > MAX_CANDIDATES:
            for old in list(itertools.islice(candidates, len(candidates) - MAX_CANDIDATES)):
                del candidates[old]
        if added:
            self._wake()

    def dht_node_seen(self, address: tuple[str, int]) -> None:
        """A peer's PORT message (BEP 5): its DHT node, for our routing table."""
        if self.on_dht_node is not None and 0 < address[1] < 65536:
            self.on_dht_node(address)

    def learn_address(self, addr: tuple[str, int]) -> None:
        """An incoming peer's listen address (kept for a later reconnect; not dialled now)."""

    def known_addresses(self) -> list[tuple[str, int]]:
        """Listen addresses of the peers seen (the download phase of a magnet reuses them)."""
        out = [p.listen_addr for p in self.peers if p.listen_addr is not None]
        return [*dict.fromkeys([*out, *self._candidates, *self._seen])]

    def _dialable(self, addr: tuple[str, int]) -> bool:
        if addr in self.banned_addrs or addr in self._self_addrs or addr in self._connecting:
            return False
        if self.listen_port and addr[1] == self.listen_port and addr[0] in _LOOPBACK_SELF:
            return False
        return not any(p.listen_addr == addr or p.addr == addr for p in self.peers)

    def _wake(self) -> None:
        self._changed.set()

    def peer_ready(self, peer: PeerTask) -> None:
        if peer.listen_addr is not None:
            self._seen[peer.listen_addr] = None

    def peer_left(self, peer: PeerTask) -> None:
        self.peers.discard(peer)
        if peer in self._assemblers:
            self._metadata_source_gone(peer)
        self._last_block.pop(id(peer), None)
        self._wake()
        self._choke_now.set()

    def interest_changed(self, peer: PeerTask) -> None:
        state = peer.state
        if state is not None and state.peer_interested and state.am_choking:
            unchoked = sum(1 for p in self.peers if p.state is not None and not p.state.am_choking)
            if unchoked < UNCHOKE_SLOTS:
                self._choke_now.set()

    def accept(self, stream: PeerStream, addr: tuple[str, int], initial: bytes) -> bool:
        """Take a connection the listener accepted (its handshake bytes already read)."""
        if self._nursery is None or addr in self.banned_addrs:
            return False
        if self.max_peers and len(self.peers) >= self._incoming_cap():
            return False
        peer = PeerTask(self, stream, addr, outgoing=False, initial=initial)
        self.peers.add(peer)
        self._nursery.start_soon(peer.run)
        return True

    # --- running -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connector and choker; cancel the enclosing scope to stop."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._connector, nursery)
            nursery.start_soon(self._choke_loop)
            if self.meta is None:  # a magnet: its metadata comes from the peers first
                nursery.start_soon(self._metadata_watch)
            if self.pex is not None:
                nursery.start_soon(self.pex.run, self)
            task_status.started()

    def _incoming_cap(self) -> int:
        """Peers kept when one more connects to us: ``--bt-max-peers``, or twice that while
        a leecher downloads slower than ``--bt-request-peer-speed-limit`` (aria2
        ``PeerReceiveHandshakeCommand``: a slow download takes every peer that comes)."""
        session = self.session
        if (
            session is not None
            and not session.is_complete()
            and self.request_peer_speed_limit
            and self.down_meter.rate(trio.current_time()) < self.request_peer_speed_limit
        ):
            return 2 * self.max_peers
        return self.max_peers

    def _dial_room(self) -> bool:
        """Whether one more peer may be dialled now.

        aria2 (``ActivePeerConnectionCommand``): a seed dials up to ``--bt-max-peers``; a leecher
        dials while it has fewer than :data:`MIN_PEERS` peers or downloads slower than
        ``--bt-request-peer-speed-limit``, and then "temporarily increases the number of
        peers" (here up to twice ``--bt-max-peers``).
        """
        count = len(self.peers) + len(self._connecting)
        cap = self.max_peers or None
        session = self.session
        leeching = session is not None and not session.is_complete()
        if leeching and self.request_peer_speed_limit:
            rate = self.down_meter.rate(trio.current_time())
            if rate < self.request_peer_speed_limit:
                cap = 2 * cap if cap is not None else None
            elif cap is None or cap > MIN_PEERS:
                cap = MIN_PEERS
        return cap is None or count < cap

    async def _connector(self, nursery: trio.Nursery) -> None:
        while True:
            while self._candidates and self._dial_room():
                addr = next(iter(self._candidates))
                del self._candidates[addr]
                if not self._dialable(addr):
                    continue
                self._connecting.add(addr)
                nursery.start_soon(self._dial, addr)
            # candidates held back by the speed rule are reconsidered once a second
            with trio.move_on_after(DIAL_RECHECK if self._candidates else math.inf):
                await self._changed.wait()
            self._changed = trio.Event()

    async def _dial(self, addr: tuple[str, int]) -> None:
        log.debug("connecting to peer %s:%d", addr[0], addr[1])
        try:
            try:
                stream = await open_peer_stream(
                    addr[0], addr[1], self.info_hash, self.crypto,
                    connect_timeout=self.connect_timeout,
                )  # fmt: skip
            except TrioariaError as exc:
                log.debug("cannot connect to %s:%d: %s", addr[0], addr[1], exc)
                failures = self._dial_failures.pop(addr, 0)
                self._dial_failures[addr] = failures + 1
                if len(self._dial_failures) > MAX_CANDIDATES:  # forget the oldest failure
                    del self._dial_failures[next(iter(self._dial_failures))]
                peer = None
            else:
                self._dial_failures.pop(addr, None)
                peer = PeerTask(self, stream, addr, outgoing=True)
                self.peers.add(peer)
        finally:
            self._connecting.discard(addr)
        if peer is not None:
            await peer.run()
        elif failures < len(REDIAL_AFTER):
            await trio.sleep(REDIAL_AFTER[failures])
            self.add_peers([addr])

    async def _choke_loop(self) -> None:
        while True:
            with trio.move_on_after(ROUND_INTERVAL):
                await self._choke_now.wait()
            self._choke_now = trio.Event()
            self._choke_round()
            await trio.sleep(0.2)  # several triggers at once make one round

    def _choke_round(self) -> None:
        now = trio.current_time()
        snapshot = []
        for peer in self.peers:
            state = peer.state
            if state is None or peer.closed:
                continue
            snapshot.append(
                ChokePeer(
                    key=peer,
                    interested=state.peer_interested,
                    download_rate=state.download.rate(now),
                    upload_rate=state.upload.rate(now),
                    snubbed=state.snubbed,
                    last_block=self._last_block.get(id(peer)),
                    last_unchoked=peer.last_unchoked,
                    uploading=bool(state.queued_uploads),
                    am_choking=state.am_choking,
                )
            )
        if not snapshot:
            return
        result = self.choker.run(snapshot, now, seeding=self.complete)
        for item in snapshot:
            key = item.key
            assert isinstance(key, PeerTask)
            key.set_choking(key not in result.unchoked, now)

    def piece_verified(self, piece: int) -> None:
        """The session verified ``piece`` (its ``on_piece_verified`` hook): HAVE to every peer."""
        for peer in list(self.peers):
            peer.send_have(piece)

    # --- BEP 9 metadata ----------------------------------------------------------------------

    def metadata_offered(self, peer: PeerTask) -> None:
        """A peer announced ``metadata_size``: ask it for every piece, into an assembler of its
        own, while fewer than :data:`METADATA_SOURCES` peers are being asked."""
        size = peer.metadata_size
        if self.metadata is not None or self.meta is not None or size is None:
            return
        if peer in self._assemblers or peer.closed or len(self._assemblers) >= METADATA_SOURCES:
            return
        from .ut_metadata import MetadataAssembler

        try:
            assembler = MetadataAssembler(self.info_hash, size)
        except PeerProtocolError as exc:
            log.info("%r: %s", peer, exc)
            peer.close()
            return
        self._assemblers[peer] = assembler
        self._metadata_since[peer] = trio.current_time()
        for piece in assembler.missing():
            peer.request_metadata(piece)

    def metadata_piece(self, peer: PeerTask, message: MetadataData) -> None:
        """A piece of metadata from ``peer``: the info hash is checked over that peer's own
        pieces, so a peer that lies is banned (aria2: "Got wrong ut_metadata") and the others
        go on."""
        assembler = self._assemblers.get(peer)
        if assembler is None or self.metadata is not None:
            return
        self.metadata_received += len(message.data)
        self._metadata_since[peer] = trio.current_time()
        try:
            result = assembler.add(message)
        except PeerProtocolError as exc:
            log.info("%r: %s", peer, exc)
            self._metadata_source_gone(peer, ban=True)
            return
        if result is not None:
            self.metadata = result
            self._assemblers.clear()
            self._metadata_since.clear()
            self.metadata_event.set()
        elif assembler.failures:
            log.warning("banning %r: its metadata does not match the info hash", peer)
            self._metadata_source_gone(peer, ban=True)

    def _metadata_source_gone(self, peer: PeerTask, *, ban: bool = False) -> None:
        """``peer`` is no longer asked for metadata: another peer that offers it is asked."""
        self._assemblers.pop(peer, None)
        self._metadata_since.pop(peer, None)
        if ban:
            self.ban(peer)
        for other in list(self.peers):
            if other is not peer and other.metadata_size is not None:
                self.metadata_offered(other)

    def metadata_rejected(self, peer: PeerTask) -> None:
        """aria2 drops a peer that rejects a metadata request ("didn't offer metadata"); it
        may be dialled again later, and meanwhile another peer is asked."""
        log.debug("%r rejected a metadata request", peer)
        if peer in self._assemblers:
            self._metadata_source_gone(peer)
            peer.close()

    async def _metadata_watch(self) -> None:
        """A peer asked for the metadata that sends nothing for :data:`METADATA_PATIENCE`
        seconds gives its place to another (aria2 times its requests out too)."""
        while self.metadata is None:
            await trio.sleep(DIAL_RECHECK)
            now = trio.current_time()
            for peer, since in list(self._metadata_since.items()):
                if now - since >= METADATA_PATIENCE:
                    log.info("%r sent no metadata for %d s", peer, METADATA_PATIENCE)
                    self._metadata_source_gone(peer)
                    peer.close()


_LOOPBACK_SELF = ("127.0.0.1", "::1", "localhost")


async def _throttle(limits: tuple[SpeedLimit, ...], n: int) -> None:
    if not limits:
        return
    now = trio.current_time()
    delay = 0.0
    for limit in limits:
        if limit.limited:
            limit.consume(n, now)
            debt = -limit.tokens(now)
            if debt > 0:
                delay = max(delay, debt / limit.rate)
    if delay:
        await trio.sleep(delay)
