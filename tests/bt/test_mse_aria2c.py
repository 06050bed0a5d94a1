"""MSE/PE in real downloads, against aria2c on 127.0.0.1 and against trioaria's own listener.

aria2c runs with ``--bt-require-crypto=true --bt-min-crypto-level=arc4``: it refuses plain
handshakes and plaintext payload, so a completed download proves RC4 both ways.  trioaria leeches
from such an aria2c (trioaria dials: initiator) and seeds to one (the tracker tells only aria2c
about trioaria, so aria2c dials: trioaria is the receiver).  A raw client checks the listener's
rules: a plain handshake is hung up on when crypto is required, an MSE offer of plaintext only is
refused under ``--bt-force-encryption``, and RC4 gets the handshake and the bitfield.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.bt.swarm_helpers import (
    REPO,
    free_port,
    make_torrent,
    run_trioaria,
    start_aria2c,
    stop_process,
    wait_listening,
)
from tests.bt.tracker_server import Tracker
from trioaria.bt.messages import Bitfield, Handshake, make_reserved
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.mse import CryptoMethod, MseHandshake, MseRole
from trioaria.bt.wire import PeerConnection

RC4_REQUIRED = ("--bt-require-crypto=true", "--bt-min-crypto-level=arc4")
PEER_ID = b"-TA0100-"


def test_leech_from_aria2c_requiring_rc4(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(1024 * 1024 + 333)
    torrent = tmp_path / "e.torrent"
    torrent.write_bytes(make_torrent(seed, [("e.bin", payload)], name="e.bin"))
    meta = parse_torrent(torrent.read_bytes())
    aria2c, port = start_aria2c(torrent, seed, extra=RC4_REQUIRED)
    magnet = f"magnet:?xt=urn:btih:{meta.info_hash_hex}&dn=e.bin&x.pe=127.0.0.1:{port}"
    try:
        res = run_trioaria(f"--dir={dl}", "--seed-time=0", "--bt-require-crypto=true", magnet)
    finally:
        stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "e.bin").read_bytes() == payload


def _start_seeder(
    torrent: Path, directory: Path, port: int, *extra: str
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    args = [
        sys.executable, "-m", "trioaria", "--no-conf", "--summary-interval=0",
        f"--listen-port={port}", f"--dir={directory}", "-V", *extra, str(torrent),
    ]  # fmt: skip
    log = directory / "trioaria.log"
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


def test_seed_to_aria2c_requiring_rc4(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    payload = os.urandom(768 * 1024 + 5)
    with Tracker(interval=600) as tracker:  # no re-announce: trioaria never learns aria2c
        torrent = tmp_path / "f.torrent"
        torrent.write_bytes(
            make_torrent(seed, [("f.bin", payload)], name="f.bin", announce=tracker.url)
        )
        ours = _start_seeder(torrent, seed, free_port(), "--bt-force-encryption=true")
        try:
            deadline = time.monotonic() + 30
            while not any(a.peer_id.startswith(PEER_ID) for a in tracker.state.announces):
                assert ours.poll() is None, (seed / "trioaria.log").read_text()
                assert time.monotonic() < deadline, "trioaria never announced"
                time.sleep(0.05)
            leech, _ = start_aria2c(torrent, dl, seed=False, extra=RC4_REQUIRED)
            try:
                assert leech.wait(timeout=90) == 0
            finally:
                stop_process(leech)
            assert ours.wait(timeout=60) == 0, (seed / "trioaria.log").read_text()
        finally:
            stop_process(ours)
    assert (dl / "f.bin").read_bytes() == payload
    mine = [a for a in tracker.state.announces if a.peer_id.startswith(PEER_ID)]
    assert mine[-1].event == "stopped" and mine[-1].uploaded >= len(payload)


def _connect_mse(port: int, info_hash: bytes, allowed: CryptoMethod) -> list[object]:
    """Events trioaria sends after an MSE handshake offering ``allowed`` (until its bitfield)."""
    conn = PeerConnection(info_hash=info_hash)
    ours = conn.send(Handshake(info_hash, b"-XX0000-msetestmsete", make_reserved(fast=False)))
    mse = MseHandshake(
        MseRole.INITIATOR, info_hash=info_hash, initial_payload=ours, allowed=allowed
    )
    events: list[object] = []
    done = None
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(mse.data_to_send())
        for _ in range(200):
            data = sock.recv(65536)
            if not data:
                return events
            if done is None:
                mse.receive_data(data)
                sock.sendall(mse.data_to_send())
                done = mse.next_event()
                if done is None:
                    continue
                assert done.method is CryptoMethod.RC4
                data = done.payload
            else:
                data = mse.decrypt(data)
            if data:
                conn.receive_data(data)
            while (event := conn.next_event()) is not None:
                events.append(event)
            if any(isinstance(e, Bitfield) for e in events):
                return events
    raise AssertionError(f"no bitfield: {events}")


def test_listener_rules_when_rc4_is_forced(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    payload = os.urandom(100_000)
    torrent = tmp_path / "g.torrent"
    torrent.write_bytes(make_torrent(seed, [("g.bin", payload)], name="g.bin"))
    meta = parse_torrent(torrent.read_bytes())
    port = free_port()
    ours = _start_seeder(torrent, seed, port, "--bt-force-encryption=true", "--seed-time=2")
    try:
        wait_listening(port, ours, "trioaria")
        # the listener is up before -V registered the torrent: retry until RC4 gets an answer,
        # so that the refusals below are about the policy, not an unknown torrent
        deadline = time.monotonic() + 30
        while not (events := _connect_mse(port, meta.info_hash, CryptoMethod.RC4)):
            assert time.monotonic() < deadline and ours.poll() is None, "no MSE answer"
            time.sleep(0.1)
        assert isinstance(events[0], Handshake) and events[0].peer_id.startswith(PEER_ID)
        bitfield = next(e for e in events if isinstance(e, Bitfield))
        assert bitfield.bits == b"\xf0"  # all 4 pieces
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            plain = PeerConnection(info_hash=meta.info_hash)
            sock.sendall(plain.send(Handshake(meta.info_hash, b"-XX0000-plainplainpl")))
            assert sock.recv(100) == b""  # crypto required: the plain handshake is refused
        assert _connect_mse(port, meta.info_hash, CryptoMethod.PLAINTEXT) == []  # no RC4: refused
        events = _connect_mse(port, meta.info_hash, CryptoMethod.RC4 | CryptoMethod.PLAINTEXT)
        assert isinstance(events[0], Handshake)  # and both offered: RC4 chosen
    finally:
        stop_process(ours)
