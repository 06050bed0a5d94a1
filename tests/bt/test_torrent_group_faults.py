"""A torrent download faces what aria2 does without hanging or failing: a magnet with no peers
obeys --bt-stop-timeout, a damaged saved metadata file falls back to the peers, a .torrent URL
may redirect, nothing to share ends seeding, a peer lying about the metadata is banned and
spoils nothing else, and a .torrent that cannot be saved is a clear one-line error."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import trio
import trio.testing

from tests.bt.swarm_helpers import make_torrent, run_trioaria, start_aria2c, stop_process
from trioaria.bt.bencode import encode
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.swarm import Swarm
from trioaria.bt.ut_metadata import MetadataData

MAGNET_NO_PEERS = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=lonely"


# --- a magnet with no peers obeys --bt-stop-timeout ----------------------------------------


def test_magnet_without_peers_obeys_bt_stop_timeout(tmp_path: Path) -> None:
    """aria2 BtSetup adds BtStopDownloadCommand in metadata-get mode too: no byte for SEC
    seconds stops the magnet (exit 7)."""
    try:
        res = run_trioaria(f"--dir={tmp_path}", "--bt-stop-timeout=1", MAGNET_NO_PEERS, timeout=8)
    except subprocess.TimeoutExpired:
        pytest.fail("a magnet with no peers ran past --bt-stop-timeout=1 for 8 s")
    assert res.returncode == 7, res.stdout + res.stderr


# --- --bt-load-saved-metadata with a damaged saved file --------------------------------------


def test_load_saved_metadata_falls_back_to_peers_when_file_is_truncated(tmp_path: Path) -> None:
    """aria2 (download_helper.cc createBtMagnetRequestGroup): a saved <hash>.torrent that
    does not parse is ignored and the metadata is fetched from peers (a half-written file
    from an earlier crash must not block the magnet for good)."""
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(100_000)
    torrent = tmp_path / "g.torrent"
    torrent.write_bytes(make_torrent(seed, [("g.bin", payload)], name="g.bin"))
    meta = parse_torrent(torrent.read_bytes())
    (dl / f"{meta.info_hash_hex}.torrent").write_bytes(torrent.read_bytes()[:40])  # truncated
    aria2c, port = start_aria2c(torrent, seed)
    magnet = f"magnet:?xt=urn:btih:{meta.info_hash_hex}&dn=g.bin&x.pe=127.0.0.1:{port}"
    try:
        res = run_trioaria(
            f"--dir={dl}", "--seed-time=0", "--bt-load-saved-metadata", magnet, timeout=30
        )
    finally:
        stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "g.bin").read_bytes() == payload


# --- a .torrent URL that redirects -----------------------------------------------------------


class _RedirectingServer:
    def __init__(self, body: bytes) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/get/t.torrent":
                    self.send_response(302)
                    self.send_header("Location", "/files/t.torrent")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-bittorrent")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: object) -> None:
                pass

        self.body = body
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _RedirectingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_torrent_url_behind_a_redirect(tmp_path: Path) -> None:
    """aria2 downloads a .torrent URL like any HTTP download and follows its 3xx redirects
    (up to 20).  The data is already on disk, so -V completes at once once the .torrent is read."""
    seed = tmp_path / "seed"
    seed.mkdir()
    body = make_torrent(seed, [("r.bin", os.urandom(50_000))], name="r.bin")
    with _RedirectingServer(body) as srv:
        res = run_trioaria(
            f"--dir={seed}",
            "-V",
            "--seed-time=0",
            f"http://127.0.0.1:{srv.port}/get/t.torrent",
            timeout=30,
        )
    assert res.returncode == 0, res.stdout + res.stderr


# --- a torrent of zero-length files ---------------------------------------------


def test_zero_length_torrent_does_not_seed_forever(tmp_path: Path) -> None:
    """aria2 ShareRatioSeedCriteria::evaluate: completedLength == 0 -> seeding ends.
    With the default --seed-ratio=1.0 a torrent with nothing to upload must not wait forever
    for one uploaded byte."""
    src = tmp_path / "src"
    src.mkdir()
    torrent = tmp_path / "e.torrent"
    torrent.write_bytes(make_torrent(src, [("x", b""), ("y", b"")], name="empty"))
    try:
        res = run_trioaria(f"--dir={tmp_path / 'dl'}", str(torrent), timeout=8)
    except subprocess.TimeoutExpired:
        pytest.fail("a torrent with 0 bytes to share was still seeding after 8 s")
    assert res.returncode == 0, res.stdout + res.stderr


# --- ut_metadata: one hostile peer ---------------------------------------------------------------


class _FakePeer:
    """What Swarm's BEP 9 code (and its choke loop) touches on a PeerTask."""

    state = None

    def __init__(self, port: int, metadata_size: int) -> None:
        self.addr = ("127.0.0.1", port)
        self.listen_addr = self.addr
        self.peer_id = f"-XX0000-{port:012d}".encode()
        self.metadata_size = metadata_size
        self.closed = False
        self.requested: list[int] = []

    def close(self) -> None:
        self.closed = True

    def request_metadata(self, piece: int) -> None:
        self.requested.append(piece)


def _info() -> tuple[bytes, bytes]:
    info = encode(
        {b"name": b"a.bin", b"length": 5, b"piece length": 16384, b"pieces": b"\x00" * 20}
    )
    return info, hashlib.sha1(info).digest()


def test_one_peer_sending_bad_metadata_does_not_abort_the_magnet() -> None:
    """A peer sends the (only) metadata piece with wrong bytes, as often as it likes.  aria2
    (UTMetadataDataExtensionMessage: 'Got wrong ut_metadata') drops that peer and goes on:
    the liar is banned and the honest peer's metadata completes the magnet."""
    info, info_hash = _info()

    async def main() -> None:
        swarm = Swarm(info_hash, b"-TA0100-000000000000", meta=None)
        honest = _FakePeer(1001, len(info))
        hostile = _FakePeer(1002, len(info))
        swarm.metadata_offered(honest)  # type: ignore[arg-type]
        swarm.metadata_offered(hostile)  # type: ignore[arg-type]
        for _ in range(6):
            if hostile.closed:
                break
            swarm.metadata_piece(hostile, MetadataData(0, len(info), b"\xff" * len(info)))  # type: ignore[arg-type]
        assert hostile.closed, "the peer that sent every byte of the bad metadata was kept"
        assert swarm.fatal is None, f"one hostile peer aborted the download: {swarm.fatal}"
        swarm.metadata_piece(honest, MetadataData(0, len(info), info))  # type: ignore[arg-type]
        assert swarm.metadata == info

    trio.run(main)


def test_peer_announcing_a_wrong_metadata_size_does_not_lock_out_honest_peers() -> None:
    """A peer that announces a wrong metadata_size and never answers does not keep honest
    peers (the right size) from being asked: each peer asked fills an assembler of its own."""
    info, info_hash = _info()

    async def main() -> None:
        swarm = Swarm(info_hash, b"-TA0100-000000000000", meta=None)
        liar = _FakePeer(1003, 5 * 16384)  # wrong size, never sends anything
        honest = _FakePeer(1004, len(info))
        swarm.metadata_offered(liar)  # type: ignore[arg-type]
        swarm.metadata_offered(honest)  # type: ignore[arg-type]
        liar.close()  # the liar goes away without sending a byte
        assert honest.requested, "the honest peer with the right metadata_size is never asked"

    trio.run(main)


# --- a .torrent that cannot be saved ---------------------------------------------------------------


def test_follow_torrent_save_error_is_a_clear_one_line_error(tmp_path: Path) -> None:
    """--follow-torrent=true saves the .torrent under --dir; when that fails (here --dir is a
    regular file) the run ends with a one-line error, exit 18, as the same --dir given a local
    .torrent does ('Failed to create directory ...'; aria2: DIR_CREATE_ERROR)."""
    seed = tmp_path / "seed"
    seed.mkdir()
    body = make_torrent(seed, [("r.bin", os.urandom(1000))], name="r.bin")
    not_a_dir = tmp_path / "afile"
    not_a_dir.write_bytes(b"")
    with _RedirectingServer(body) as srv:
        res = run_trioaria(
            f"--dir={not_a_dir}",
            "--bt-stop-timeout=1",
            f"http://127.0.0.1:{srv.port}/files/t.torrent",
            timeout=30,
        )
    out = res.stdout + res.stderr
    assert "ExceptionGroup" not in out, out
    assert res.returncode == 18, out


# --- --force-save and seeding -----------------------------------------------------------------


def test_force_save_keeps_the_upload_made_while_seeding(tmp_path: Path) -> None:
    """--force-save: aria2 saves a torrent's control file when the download stops (after
    seeding: RequestGroupMan::removeStoppedGroup -> saveControlFile), so its all-time upload
    counts what was uploaded while seeding, not just what was uploaded before completion."""
    from tests.bt.swarm_helpers import make_torrent, start_trioaria, stop_process, wait_listening
    from tests.bt.test_upload_count import PIECE, _blocks, _connect, _until_unchoked
    from tests.servers.nginx import free_port
    from trioaria.bt.messages import Piece
    from trioaria.bt.metainfo import parse_torrent
    from trioaria.bt.wire import PeerConnection
    from trioaria.storage import control_file as cf

    size = 2 << 20
    seed = tmp_path / "seed"
    seed.mkdir()
    payload = os.urandom(size)
    torrent = tmp_path / "u.torrent"
    raw = make_torrent(seed, [("u.bin", payload)], name="u.bin", piece_length=PIECE)
    torrent.write_bytes(raw)
    meta = parse_torrent(raw)
    port = free_port()
    ours = start_trioaria(
        f"--dir={seed}", "-V", "--force-save=true", f"--listen-port={port}",
        "--seed-ratio=0.4", "--seed-time=1", str(torrent),
    )  # fmt: skip
    try:
        wait_listening(port, ours, "trioaria")
        deadline = time.monotonic() + 20
        while True:
            assert time.monotonic() < deadline, "never unchoked"
            sock = _connect(port)
            conn = PeerConnection(info_hash=meta.info_hash, num_pieces=meta.num_pieces)
            if _until_unchoked(sock, conn, meta.info_hash, b"-XX0000-forcesave001"):
                break
            sock.close()
            time.sleep(0.1)
        with sock:
            wanted = _blocks(0, size // 2)
            sock.sendall(conn.send_requests(wanted))
            got = 0
            while got < len(wanted):
                assert time.monotonic() < deadline + 20
                data = sock.recv(1 << 16)
                if not data:
                    break
                conn.receive_data(data)
                while (event := conn.next_event()) is not None:
                    if isinstance(event, Piece):
                        got += 1
            out, _ = ours.communicate(timeout=30)
        assert ours.returncode == 0, out.decode(errors="replace")
    finally:
        stop_process(ours)
    control = seed / "u.bin.aria2"
    assert control.exists()
    uploaded = cf.parse(control.read_bytes()).upload_length
    assert uploaded >= size // 2, f"control file says {uploaded} bytes uploaded"


# --- ut_metadata: silent and rejecting peers -------------------------------------------------


def test_four_silent_metadata_peers_do_not_lock_out_an_honest_fifth() -> None:
    """Four peers advertise the right metadata_size and never answer a request (hostile or
    stuck): after METADATA_PATIENCE each gives its place up (aria2 times its requests out too,
    UTMetadataRequestTracker), so the honest fifth peer is asked."""
    info, info_hash = _info()

    async def main() -> None:
        swarm = Swarm(info_hash, b"-TA0100-000000000000", meta=None)
        async with trio.open_nursery() as nursery:
            await nursery.start(swarm.run)
            silent = [_FakePeer(2000 + i, len(info)) for i in range(4)]
            honest = _FakePeer(2010, len(info))
            for p in [*silent, honest]:
                swarm.peers.add(p)  # type: ignore[arg-type]
                swarm.metadata_offered(p)  # type: ignore[arg-type]
            await trio.sleep(600)  # ten minutes with the silent peers saying nothing
            assert honest.requested, "the honest peer was never asked for the metadata"
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_one_rejected_request_from_the_only_peer_does_not_stall_the_magnet() -> None:
    """The only peer rejects one request (libtorrent does while its send buffer is full): as
    aria2 (UTMetadataRejectExtensionMessage) the connection is dropped, so that the peer may be
    dialled again, rather than kept and never asked again."""
    info, info_hash = _info()

    async def main() -> None:
        swarm = Swarm(info_hash, b"-TA0100-000000000000", meta=None)
        async with trio.open_nursery() as nursery:
            await nursery.start(swarm.run)
            only = _FakePeer(2100, len(info))
            swarm.peers.add(only)  # type: ignore[arg-type]
            swarm.metadata_offered(only)  # type: ignore[arg-type]
            assert only.requested == [0]
            swarm.metadata_rejected(only)  # type: ignore[arg-type]  # busy: asks again later
            await trio.sleep(600)
            if only.closed:  # aria2: "Drop connection because peer didn't offer metadata."
                nursery.cancel_scope.cancel()  # (it may be dialled again)
                return
            for _ in range(len(only.requested)):
                swarm.metadata_piece(only, MetadataData(0, len(info), info))  # type: ignore[arg-type]
            assert swarm.metadata == info, (
                f"the only peer was asked {only.requested} and its answer was dropped"
            )
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
