"""transmission-daemon (3.x) as a real BitTorrent peer for tests (a function fixture).

Each test gets a private instance: its own config directory (``-g``) holding a ``settings.json``
written here, the peer port and the RPC port chosen by the OS, everything bound to 127.0.0.1,
and DHT, LPD, PEX, uTP, UPnP/NAT-PMP and blocklists off, so its only peer sources are the
torrent's tracker and peers that dial it.  A fresh daemon per test also avoids a transmission
quirk: after several back-to-back runs from the same address it may stop unchoking a peer.

The daemon is driven through its JSON-RPC over HTTP (``/transmission/rpc``, with the
``X-Transmission-Session-Id`` handshake: the first request is answered 409 with the id to send).
It is stopped by PID when the test ends (docs/testing.md, "Stop by PID").
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers.nginx import free_port
from tests.servers.process import stop_process

__all__ = ["SEEDING", "Transmission", "running_transmission", "start_transmission", "transmission"]

SEEDING = 6  # tr_torrent_activity TR_STATUS_SEED
_DEADLINE = 15.0


def _settings(download_dir: Path, peer_port: int, rpc_port: int) -> dict[str, object]:
    return {
        "bind-address-ipv4": "127.0.0.1",
        "bind-address-ipv6": "::1",
        "blocklist-enabled": False,
        "cache-size-mb": 4,
        "dht-enabled": False,
        "download-dir": str(download_dir),
        "download-queue-enabled": False,
        "encryption": 1,  # prefer MSE, accept plaintext
        "idle-seeding-limit-enabled": False,
        "incomplete-dir-enabled": False,
        "lpd-enabled": False,
        "message-level": 2,
        "peer-limit-global": 200,
        "peer-limit-per-torrent": 50,
        "peer-port": peer_port,
        "peer-port-random-on-start": False,
        "pex-enabled": False,
        "port-forwarding-enabled": False,
        "preallocation": 1,
        "queue-stalled-enabled": False,
        "ratio-limit-enabled": False,
        "rename-partial-files": True,
        "rpc-authentication-required": False,
        "rpc-bind-address": "127.0.0.1",
        "rpc-enabled": True,
        "rpc-host-whitelist-enabled": False,
        "rpc-port": rpc_port,
        "rpc-url": "/transmission/",
        "rpc-whitelist": "127.0.0.1",
        "rpc-whitelist-enabled": True,
        "scrape-paused-torrents-enabled": True,
        "script-torrent-done-enabled": False,
        "seed-queue-enabled": False,
        "speed-limit-down-enabled": False,
        "speed-limit-up-enabled": False,
        "start-added-torrents": True,
        "trash-original-torrent-files": False,
        "utp-enabled": False,
    }


def _listening(port: int) -> bool:
    """Whether a socket listens on 127.0.0.1:``port`` (read from ``/proc/net/tcp``).

    Not probed with a connection: transmission may close a new connection from an address
    whose previous one it has not torn down yet, and every peer here is 127.0.0.1.
    """
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        return any(
            fields[1] == local and fields[3] == "0A"  # 0A: TCP_LISTEN
            for fields in (line.split() for line in f.readlines()[1:])
        )


@dataclass
class Transmission:
    """A running transmission-daemon and a small JSON-RPC client for it."""

    config_dir: Path
    peer_port: int
    rpc_port: int
    process: subprocess.Popen[bytes]
    _session_id: str = field(default="", repr=False)

    @property
    def log(self) -> str:
        path = self.config_dir / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def rpc(self, method: str, **arguments: Any) -> dict[str, Any]:
        """Call ``method`` and return its ``arguments``; fail the test unless ``success``."""
        body = json.dumps({"method": method, "arguments": arguments}).encode()
        for _ in range(3):  # 409 hands out (or renews) the session id
            conn = http.client.HTTPConnection("127.0.0.1", self.rpc_port, timeout=10)
            try:
                headers = {"X-Transmission-Session-Id": self._session_id}
                conn.request("POST", "/transmission/rpc", body, headers)
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            if resp.status == 409:
                self._session_id = resp.getheader("X-Transmission-Session-Id") or ""
                continue
            assert resp.status == 200, (resp.status, data)
            reply = json.loads(data)
            assert reply.get("result") == "success", reply
            result: dict[str, Any] = reply.get("arguments", {})
            return result
        pytest.fail(f"transmission RPC {method}: no session id accepted")

    def add(self, torrent: bytes, download_dir: Path) -> int:
        """Add a .torrent (started at once); existing data in ``download_dir`` is verified."""
        args = self.rpc(
            "torrent-add",
            metainfo=base64.b64encode(torrent).decode(),
            **{"download-dir": str(download_dir)},
        )
        added = args.get("torrent-added") or args["torrent-duplicate"]
        return int(added["id"])

    def torrent(self, torrent_id: int, *fields: str) -> dict[str, Any]:
        got = self.rpc("torrent-get", ids=[torrent_id], fields=["id", *fields])["torrents"]
        assert len(got) == 1, got
        entry: dict[str, Any] = got[0]
        return entry

    def wait_seeding(self, torrent_id: int, timeout: float = 60) -> None:
        """Wait until the torrent is complete and seeding (a verify or a download finished)."""
        deadline = time.monotonic() + timeout
        while True:
            t = self.torrent(torrent_id, "status", "percentDone", "error", "errorString")
            if t["status"] == SEEDING and t["percentDone"] == 1:
                return
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(f"transmission never seeded torrent {torrent_id}: {t}\n{self.log}")
            time.sleep(0.05)


def start_transmission(config_dir: Path, **overrides: object) -> Transmission:
    """Start a private transmission-daemon with its config in ``config_dir``.

    ``overrides`` replace ``settings.json`` keys, spelt with ``_`` for ``-``
    (``encryption=2`` requires MSE, ``pex_enabled=True`` turns PEX on).
    """
    binary = shutil.which("transmission-daemon")
    if binary is None:
        pytest.fail(
            "transmission-daemon is not installed (apt-get install transmission-daemon; .ci/run does)"
        )
    config_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        peer_port, rpc_port = free_port(), free_port()
        if peer_port == rpc_port:
            continue
        settings = _settings(config_dir / "downloads", peer_port, rpc_port)
        settings.update({key.replace("_", "-"): value for key, value in overrides.items()})
        (config_dir / "settings.json").write_text(json.dumps(settings, indent=2))
        log = config_dir / "daemon.log"
        log.unlink(missing_ok=True)
        args = [binary, "-f", "-g", str(config_dir), "--logfile", str(log)]
        process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=config_dir
        )
        daemon = Transmission(config_dir, peer_port, rpc_port, process)
        deadline = time.monotonic() + _DEADLINE
        while process.poll() is None and time.monotonic() < deadline:
            try:
                daemon.rpc("session-get")
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
                continue
            if not _listening(peer_port):
                time.sleep(0.05)
                continue
            return daemon
        stop_process(process, grace=5)  # a port was probably taken meanwhile: try others
    log_text = (config_dir / "daemon.log").read_text(errors="replace")
    pytest.fail(f"transmission-daemon did not start: {log_text}")


@contextlib.contextmanager
def running_transmission(config_dir: Path, **overrides: object) -> Iterator[Transmission]:
    """:func:`start_transmission`, stopped and its config removed on exit."""
    daemon = start_transmission(config_dir, **overrides)
    try:
        yield daemon
    finally:
        stop_process(daemon.process)
        with contextlib.suppress(OSError):
            shutil.rmtree(daemon.config_dir)


@pytest.fixture
def transmission(tmp_path: Path) -> Iterator[Transmission]:
    """A fresh transmission-daemon for one test."""
    with running_transmission(tmp_path / "transmission") as daemon:
        yield daemon
