"""A tiny HTTP tracker for loopback tests (BEP 3 + BEP 23 compact peers), with fault injection.

It runs in a thread (``http.server``), so real clients (aria2c, trioaria subprocesses, libtorrent)
and in-process trio code can all announce to it.  Every announce is recorded with its parsed
query; ``fail_next`` makes the next N announces answer with a ``failure reason``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_to_bytes

from trioaria.bt.bencode import encode


@dataclass
class Announce:
    info_hash: bytes
    peer_id: bytes
    port: int
    event: str
    uploaded: int
    downloaded: int
    left: int
    client: str


@dataclass
class TrackerState:
    interval: int = 2
    fail_next: int = 0
    swarms: dict[bytes, dict[tuple[str, int], bytes]] = field(default_factory=dict)
    announces: list[Announce] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self, info_hash: bytes, peer_id_prefix: bytes = b"") -> list[str]:
        with self.lock:
            return [
                a.event
                for a in self.announces
                if a.info_hash == info_hash and a.peer_id.startswith(peer_id_prefix)
            ]


def _raw_param(query: str, name: str) -> bytes | None:
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == name:
            return unquote_to_bytes(value)
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        pass

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        state = self.server.state
        if path != "/announce":
            self._answer(404, b"not found")
            return
        params = {k: v[0] for k, v in parse_qs(query).items()}
        info_hash = _raw_param(query, "info_hash") or b""
        peer_id = _raw_param(query, "peer_id") or b""
        port = int(params.get("port", "0"))
        event = params.get("event", "")
        host = self.client_address[0]
        with state.lock:
            state.announces.append(
                Announce(
                    info_hash,
                    peer_id,
                    port,
                    event,
                    int(params.get("uploaded", "0")),
                    int(params.get("downloaded", "0")),
                    int(params.get("left", "0")),
                    self.headers.get("User-Agent", ""),
                )
            )
            if state.fail_next > 0:
                state.fail_next -= 1
                self._answer(200, encode({b"failure reason": b"injected failure"}))
                return
            swarm = state.swarms.setdefault(info_hash, {})
            if event == "stopped":
                swarm.pop((host, port), None)
            elif port:
                swarm[(host, port)] = peer_id
            others = [a for a in swarm if a != (host, port)]
        compact = b"".join(
            bytes(int(x) for x in h.split(".")) + p.to_bytes(2, "big") for h, p in others
        )
        body = encode(
            {b"interval": state.interval, b"complete": 0, b"incomplete": 0, b"peers": compact}
        )
        self._answer(200, body)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: TrackerState


class Tracker:
    """Start with ``with Tracker() as t:``; ``t.url`` is the announce URL."""

    def __init__(self, interval: int = 2) -> None:
        self.state = TrackerState(interval=interval)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/announce"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Tracker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
