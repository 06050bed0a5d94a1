"""``--trace=FILE``: peer-wire and tracker messages, both directions, one JSON object per line.

Real exchanges on 127.0.0.1: an aria2c seed found through the HTTP test tracker, and the same
seed handed out by a small BEP 15 UDP tracker (a thread answering with the pure codec).  The
HTTP run also checks ``--bt-prioritize-piece=tail``: the first block requested is in the tail.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

from tests.bt.swarm_helpers import make_torrent, run_trioaria, start_aria2c, stop_process
from tests.bt.tracker_server import Tracker
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.tracker import PeerAddress
from trioaria.bt.udp_tracker import (
    UdpAnnounceRequest,
    UdpAnnounceResponse,
    UdpConnectRequest,
    UdpConnectResponse,
    decode_udp_request,
    encode_udp,
)

COMMON = ("t", "dir", "proto", "peer", "type")


def _lines(path: Path) -> list[dict[str, object]]:
    lines = [json.loads(text) for text in path.read_text().splitlines()]
    for line in lines:
        assert tuple(line)[:5] == COMMON, line
        assert line["dir"] in ("in", "out")
    return lines


def test_trace_http_tracker_and_peer_wire(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    piece = 32768
    payload = os.urandom(40 * piece)
    trace = tmp_path / "trace.jsonl"
    with Tracker(interval=1) as tracker:
        torrent = tmp_path / "tr.torrent"
        raw = make_torrent(
            seed, [("tr.bin", payload)], name="tr.bin", piece_length=piece, announce=tracker.url
        )
        torrent.write_bytes(raw)
        aria2c, port = start_aria2c(torrent, seed)
        try:
            res = run_trioaria(
                f"--dir={dl}", "--seed-time=0", f"--trace={trace}",
                "--bt-prioritize-piece=tail=32K", str(torrent),
            )  # fmt: skip
        finally:
            stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "tr.bin").read_bytes() == payload
    meta = parse_torrent(raw)
    lines = _lines(trace)
    kinds = {(x["proto"], x["dir"], x["type"]) for x in lines}
    assert {
        ("http-tracker", "out", "announce"),
        ("http-tracker", "in", "announce_response"),
        ("peer", "out", "handshake"),
        ("peer", "in", "handshake"),
        ("peer", "out", "interested"),
        ("peer", "in", "unchoke"),
        ("peer", "out", "request"),
        ("peer", "in", "piece"),
    } <= kinds
    announce = next(x for x in lines if x["type"] == "announce")
    assert announce["peer"] == tracker.url and announce["event"] == "started"
    assert announce["info_hash"] == meta.info_hash_hex and announce["left"] == len(payload)
    hs_in = [x for x in lines if x["type"] == "handshake" and x["dir"] == "in"]
    assert all(x["info_hash"] == meta.info_hash_hex for x in hs_in)
    assert f"127.0.0.1:{port}" in {x["peer"] for x in hs_in}  # the one we dialled
    pieces = [x for x in lines if x["type"] == "piece" and x["dir"] == "in"]
    assert sum(int(x["length"]) for x in pieces) >= len(payload)  # lengths, never the data
    assert all("data" not in x for x in pieces)
    requests = [x for x in lines if x["type"] == "request" and x["dir"] == "out"]
    assert requests[0]["index"] == meta.num_pieces - 1  # --bt-prioritize-piece=tail first
    times = [float(x["t"]) for x in lines]  # type: ignore[arg-type]
    assert times == sorted(times)


class _UdpTracker:
    """A BEP 15 tracker in a thread that hands out one peer."""

    def __init__(self, peer_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.peer_port = peer_port
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            request = decode_udp_request(data)
            if isinstance(request, UdpConnectRequest):
                answer = encode_udp(UdpConnectResponse(request.transaction_id, 0x0102030405060708))
            elif isinstance(request, UdpAnnounceRequest):
                peers = (PeerAddress("127.0.0.1", self.peer_port),)
                answer = encode_udp(UdpAnnounceResponse(request.transaction_id, 60, 0, 1, peers))
            else:
                continue
            self.sock.sendto(answer, addr)

    def __enter__(self) -> _UdpTracker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def test_trace_udp_tracker(tmp_path: Path) -> None:
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(100_000)
    trace = tmp_path / "udp.jsonl"
    torrent = tmp_path / "u.torrent"
    make = make_torrent(seed, [("u.bin", payload)], name="u.bin", piece_length=32768)
    torrent.write_bytes(make)
    aria2c, port = start_aria2c(torrent, seed)
    try:
        with _UdpTracker(port) as udp:
            url = f"udp://127.0.0.1:{udp.port}/announce"
            res = run_trioaria(
                f"--dir={dl}", "--seed-time=0", f"--trace={trace}", f"--bt-tracker={url}",
                str(torrent),
            )  # fmt: skip
    finally:
        stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "u.bin").read_bytes() == payload
    udp_lines = [x for x in _lines(trace) if x["proto"] == "udp-tracker"]
    seen = [(x["dir"], x["type"]) for x in udp_lines]
    assert seen[:4] == [
        ("out", "connect"),
        ("in", "connect"),
        ("out", "announce"),
        ("in", "announce"),
    ]
    answer = udp_lines[3]
    assert answer["peer"] == f"127.0.0.1:{udp.port}" and answer["peers"] == 1
    assert udp_lines[2]["event"] == "started" and udp_lines[2]["port"] > 0


def test_requests_stop_once_the_selected_files_are_complete(tmp_path: Path) -> None:
    """``--select-file``: only pieces of the selected file are requested, and once they are
    verified trioaria says ``not_interested`` and requests nothing more (seen in the trace)."""
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    piece = 16384
    files = [("a.bin", os.urandom(4 * piece)), ("b.bin", os.urandom(12 * piece))]
    trace = tmp_path / "sel.jsonl"
    with Tracker(interval=1) as tracker:
        torrent = tmp_path / "sel.torrent"
        torrent.write_bytes(
            make_torrent(seed, files, name="sel", piece_length=piece, announce=tracker.url)
        )
        aria2c, _ = start_aria2c(torrent, seed)
        try:
            # --seed-time=0.02 (about a second): the connection lives on after completion, so
            # the trace shows that no request follows
            res = run_trioaria(
                f"--dir={dl}", "--seed-time=0.02", "--select-file=1", f"--trace={trace}",
                str(torrent),
            )  # fmt: skip
        finally:
            stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "sel" / "a.bin").read_bytes() == files[0][1]
    peer = [x for x in _lines(trace) if x["proto"] == "peer" and x["dir"] == "out"]
    requested = {x["index"] for x in peer if x["type"] == "request"}
    assert requested == {0, 1, 2, 3}, peer  # a.bin's pieces only
    assert {x["index"] for x in peer if x["type"] == "have"} == {0, 1, 2, 3}
    # per connection (there may be two to the same aria2c): nothing requested after it
    # turned not-interested, and it did once the selected pieces were verified
    by_peer: dict[object, list[str]] = {}
    for x in peer:
        by_peer.setdefault(x["peer"], []).append(str(x["type"]))
    assert any("not_interested" in kinds for kinds in by_peer.values()), by_peer
    for kinds in by_peer.values():
        if "not_interested" in kinds:
            assert "request" not in kinds[kinds.index("not_interested") :], kinds


def test_trace_line_format() -> None:
    """The common keys first, binary fields as hex, block payload only as its length."""
    import io

    from trioaria.bt.messages import Bitfield, Handshake, Piece
    from trioaria.bt.trace import Tracer, message_type

    out = io.StringIO()
    tracer = Tracer(out, clock=lambda: 1764931200.5)
    tracer.message("in", "peer", "[::1]:6881", Piece(3, 16384, memoryview(bytes(16384))))
    tracer.message("out", "peer", "127.0.0.1:1", Handshake(b"\xaa" * 20, b"-TA0100-" + b"x" * 12))
    tracer.message("out", "peer", "127.0.0.1:1", Bitfield(bytes(5000)))
    first, second, third = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {
        "t": 1764931200.5, "dir": "in", "proto": "peer", "peer": "[::1]:6881",
        "type": "piece", "index": 3, "begin": 16384, "length": 16384,
    }  # fmt: skip
    assert second["type"] == "handshake" and second["info_hash"] == "aa" * 20
    assert second["peer_id"] == (b"-TA0100-" + b"x" * 12).hex()
    assert third["type"] == "bitfield" and third["bits_length"] == 5000  # too long for hex
    assert message_type(Piece(0, 0, b"")) == "piece"
    assert tracer.lines == 3
