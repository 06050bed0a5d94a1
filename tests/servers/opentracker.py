"""opentracker as a real HTTP and UDP (BEP 15) tracker for tests (a session fixture).

Debian builds opentracker in whitelist mode: an announce for an info-hash that is not listed in
the whitelist file fails with "Requested download is not authorized".  The fixture starts one
private instance bound to 127.0.0.1, TCP and UDP on the same OS-chosen port, chrooted (``-d``) to
a directory of its own where it reads the whitelist ``/whitelist`` (the path is resolved after
the chroot, and after dropping to the ``nobody`` user, so the directory is world-readable).
:meth:`OpenTracker.allow` appends an info-hash and reloads the list with ``SIGHUP``, then waits
until an announce for that hash is accepted.  :meth:`OpenTracker.wait_seeders` polls ``/scrape``
so a test starts its leecher only once the seed is known to the tracker (opentracker's announce
interval is about half an hour, so a leecher that asked too early would wait that long).

The process is stopped by PID when the session ends (docs/testing.md, "Stop by PID").
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest

from tests.servers.process import stop_process
from trioaria.bt.bencode import decode

__all__ = ["OpenTracker", "opentracker", "start_opentracker"]

_DEADLINE = 15.0


def _free_tcp_udp_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now (the OS picks it)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no port free for both TCP and UDP")


@dataclass
class OpenTracker:
    """A running opentracker: announce URLs, whitelist control and scrape counts."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def http_announce(self) -> str:
        return f"http://127.0.0.1:{self.port}/announce"

    @property
    def udp_announce(self) -> str:
        return f"udp://127.0.0.1:{self.port}/announce"

    @property
    def log(self) -> str:
        return (self.root / "run.log").read_text(errors="replace")

    def _get(self, path: str) -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().read()
        finally:
            conn.close()

    def _announce(self, info_hash: bytes, event: str) -> dict[bytes, object]:
        query = (
            f"info_hash={quote_from_bytes(info_hash)}&peer_id=-TEST00-whitelistchk"
            f"&port=9&uploaded=0&downloaded=0&left=1&compact=1&numwant=0&event={event}"
        )
        doc = decode(self._get(f"/announce?{query}"))
        assert isinstance(doc, dict), doc
        return dict(doc)

    def allow(self, info_hash: bytes) -> None:
        """Whitelist ``info_hash`` and wait until opentracker serves it.

        The check announces a placeholder peer (port 9) and removes it again with
        ``event=stopped``, so no test leecher is handed a peer that does not exist.
        """
        with (self.root / "whitelist").open("a") as f:
            f.write(info_hash.hex() + "\n")
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + _DEADLINE
        while b"failure reason" in self._announce(info_hash, "started"):
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(f"opentracker did not whitelist {info_hash.hex()}: {self.log}")
            time.sleep(0.05)
        self._announce(info_hash, "stopped")

    def scrape(self, info_hash: bytes) -> tuple[int, int]:
        """``(complete, incomplete)`` for ``info_hash`` from ``/scrape`` (BEP 48)."""
        doc = decode(self._get(f"/scrape?info_hash={quote_from_bytes(info_hash)}"))
        assert isinstance(doc, dict), doc
        files = doc.get(b"files")
        entry = files.get(info_hash) if isinstance(files, dict) else None
        if not isinstance(entry, dict):
            return 0, 0
        complete, incomplete = entry.get(b"complete", 0), entry.get(b"incomplete", 0)
        assert isinstance(complete, int) and isinstance(incomplete, int), entry
        return complete, incomplete

    def wait_swarm(
        self, info_hash: bytes, *, seeders: int = 0, leechers: int = 0, timeout: float = 30
    ) -> None:
        """Wait until the tracker lists at least ``seeders`` seeders and ``leechers`` leechers."""
        deadline = time.monotonic() + timeout
        while True:
            complete, incomplete = self.scrape(info_hash)
            if complete >= seeders and incomplete >= leechers:
                return
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(
                    f"opentracker lists {complete} seeder(s) and {incomplete} leecher(s) of "
                    f"{info_hash.hex()}, not {seeders} and {leechers}"
                )
            time.sleep(0.05)

    def wait_seeders(self, info_hash: bytes, count: int = 1) -> None:
        """Wait until the tracker lists ``count`` seeders of ``info_hash``."""
        self.wait_swarm(info_hash, seeders=count)


def start_opentracker(root: Path) -> OpenTracker:
    """Start opentracker chrooted to ``root`` (created world-readable), retrying a taken port."""
    binary = shutil.which("opentracker")
    if binary is None:
        pytest.fail("opentracker is not installed (apt-get install opentracker; .ci/run does)")
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # read by the unprivileged user after the chroot
    whitelist = root / "whitelist"
    whitelist.touch()
    os.chmod(whitelist, 0o644)
    for _ in range(5):
        port = _free_tcp_udp_port()
        log = (root / "run.log").open("wb")
        args = [binary, "-i", "127.0.0.1", "-p", str(port), "-P", str(port)]  # -i before -p/-P
        args += ["-A", "127.0.0.1", "-d", str(root), "-w", "/whitelist"]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=root)
        log.close()
        deadline = time.monotonic() + _DEADLINE
        while process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                time.sleep(0.02)
                continue
            return OpenTracker(root=root, port=port, process=process)
        stop_process(process, grace=2)  # most likely the port was taken meanwhile: try another
    pytest.fail(f"opentracker did not start: {(root / 'run.log').read_text(errors='replace')}")


@pytest.fixture(scope="session")
def opentracker() -> Iterator[OpenTracker]:
    """One opentracker for the session; tests whitelist their torrents with ``allow``."""
    root = Path(tempfile.mkdtemp(prefix="trioaria-opentracker-"))
    tracker = start_opentracker(root)
    try:
        yield tracker
    finally:
        stop_process(tracker.process)
        with contextlib.suppress(OSError):
            shutil.rmtree(root)
