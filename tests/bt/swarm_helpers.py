"""Helpers for end-to-end BitTorrent tests: torrents, an aria2c peer, trioaria as a subprocess."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.servers.nginx import free_port
from tests.servers.process import stop_process
from trioaria.bt.bencode import encode

REPO = Path(__file__).resolve().parents[2]


def aria2c_path() -> str:
    path = shutil.which("aria2c")
    if path is None:
        pytest.fail("aria2c is not installed")  # .ci/run installs it
    return path


def make_torrent(
    root: Path,
    files: list[tuple[str, bytes]],
    *,
    name: str,
    piece_length: int = 32768,
    announce: str | None = None,
) -> bytes:
    """Write ``files`` under ``root`` and return a v1 .torrent for them (multi-file if > 1)."""
    blob = b"".join(data for _, data in files)
    pieces = b"".join(
        hashlib.sha1(blob[i : i + piece_length]).digest() for i in range(0, len(blob), piece_length)
    )
    info: dict[bytes, object] = {b"name": name.encode(), b"piece length": piece_length}
    info[b"pieces"] = pieces
    if len(files) == 1 and files[0][0] == name:
        info[b"length"] = len(files[0][1])
        (root / name).write_bytes(files[0][1])
    else:
        info[b"files"] = [
            {b"length": len(data), b"path": [p.encode() for p in rel.split("/")]}
            for rel, data in files
        ]
        for rel, data in files:
            path = root / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    doc: dict[bytes, Any] = {b"info": info}
    if announce:
        doc[b"announce"] = announce.encode()
    return encode(doc)


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"{what} did not start listening on {port}")
            time.sleep(0.05)


def start_aria2c(
    torrent: Path, directory: Path, *, seed: bool = True, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], int]:
    """aria2c on a free port: seeding ``torrent`` from ``directory`` (``-V``), or leeching."""
    port = free_port()
    args = [
        aria2c_path(),
        "--no-conf",
        f"--dir={directory}",
        f"--listen-port={port}",
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        "--summary-interval=0",
        "--quiet",
        "--seed-ratio=0.0",
        *extra,
    ]
    if seed:
        args.append("--check-integrity=true")
    else:
        args.append("--seed-time=0")
    args.append(str(torrent))
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if seed:
        wait_listening(port, process, "aria2c")
    return process, port


def trioaria_args(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "trioaria",
        "--no-conf",
        "--summary-interval=0",
        f"--listen-port={free_port()}",
        "--enable-dht=false",  # a test that wants the DHT passes --enable-dht=true after this
        *args,
    ]


def run_trioaria(
    *args: str, timeout: float = 90, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        trioaria_args(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def start_trioaria(*args: str, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        trioaria_args(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd
    )


__all__ = [
    "aria2c_path",
    "free_port",
    "make_torrent",
    "run_trioaria",
    "start_aria2c",
    "start_trioaria",
    "stop_process",
    "trioaria_args",
    "wait_listening",
]


def loopback_lt_session() -> Any:
    """A libtorrent session confined to 127.0.0.1: no DHT, LSD, UPnP or NAT-PMP, several
    connections per IP allowed (every test peer is 127.0.0.1)."""
    try:
        import libtorrent as lt
    except ImportError:  # a missing prerequisite is a failure: pip install libtorrent
        pytest.fail("libtorrent is not installed (python3 -m pip install libtorrent)")
    return lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "allow_multiple_connections_per_ip": True,
            "alert_mask": 0,
        }
    )


def wait_until(predicate: Any, what: str, timeout: float = 60) -> None:
    """Poll ``predicate`` every 50 ms; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)
