"""Start-up guard (issue 15): what a run imports, checked in a fresh interpreter.

``--version`` must be answered before trio, h11 or ssl are imported, and a plain HTTP download
(no proxy, cookie file, netrc, Digest challenge, checksum, BitTorrent, FTP, SFTP, RPC or
Metalink) must not import the modules only those features need: each is imported inside the
function that first needs it.  A test here fails when someone re-adds an eager import
(docs/performance.md §7).  Timing itself is measured by ``bench/startup.py``, never asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from trioaria.demo import serve_bytes

REPO = Path(__file__).resolve().parent.parent

#: Imported only when the feature is used; none of them by a plain HTTP download.
LAZY = (
    "sqlite3",  # --load-cookies with a browser database
    "trioaria.net.proxy",  # --all-proxy and friends
    "trioaria.net.proxy_connect",
    "trioaria.net.proxy_proto",
    "trioaria.net.socks",
    "trioaria.net.netrc",  # an existing .netrc file, or FTP
    "trioaria.http.digest_auth",  # a 401 with a Digest challenge
    "trioaria.storage.checksum",  # --checksum, piece hashes, a Digest header to check
    "trioaria.bt",
    "trioaria.dht",
    "trioaria.ftp.source",
    "trioaria.sftp",
    "trioaria.rpc",
    "trioaria.metalink.parse",
    "asyncssh",
    "email.utils",  # the demo server sends an IMF-fixdate Last-Modified: parsed without it
)

_PROBE = """
import json, sys
from trioaria.cli import main
code = main(sys.argv[2:])
watched = json.loads(sys.argv[1])
print(json.dumps({"code": code, "loaded": sorted(m for m in watched if m in sys.modules)}))
"""


def _run(watched: tuple[str, ...], args: list[str], cwd: Path) -> tuple[int, list[str]]:
    """``main(args)``'s exit code, and which of *watched* were imported by then."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["HOME"] = str(cwd)  # no ~/.netrc, no ~/.aria2/aria2.conf
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(watched), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return int(result["code"]), list(result["loaded"])


def test_version_imports_no_trio(tmp_path: Path) -> None:
    assert _run(("trio", "h11", "ssl", "trioaria.engine.queue"), ["--version"], tmp_path) == (0, [])


def _download_args(tmp_path: Path) -> tuple[list[str], bytes]:
    payload = os.urandom(100_000)
    port = serve_bytes(payload)
    url = f"http://127.0.0.1:{port}/f.bin"
    args = ["--no-conf", "--console-log-level=error", "--summary-interval=0", "-d", str(tmp_path)]
    return [*args, "-o", "out.bin", url], payload


def test_plain_http_download_imports_no_optional_feature(tmp_path: Path) -> None:
    args, payload = _download_args(tmp_path)
    assert _run(LAZY, args, tmp_path) == (0, [])
    assert (tmp_path / "out.bin").read_bytes() == payload


def test_the_guard_sees_a_used_feature(tmp_path: Path) -> None:
    """The probe does see a lazy module once its feature is used: a proxy (nothing listens on
    port 9, so the download fails fast)."""
    args, _ = _download_args(tmp_path)
    code, loaded = _run(LAZY, ["--all-proxy=http://127.0.0.1:9", "--max-tries=1", *args], tmp_path)
    assert code != 0
    assert "trioaria.net.proxy" in loaded


def test_torrent_without_dht_lpd_or_udp_trackers_imports_none_of_them(tmp_path: Path) -> None:
    """A torrent with an HTTP tracker, DHT, LPD and PEX off, no ``--trace``: the DHT/LPD nodes,
    KRPC, the BEP 15 client, PEX, the tracer and BEP 9 are never imported (they load when a
    node starts, a udp:// tracker is asked, PEX is on, a trace is written or the first
    ut_metadata message comes)."""
    import hashlib

    from trioaria.bt.bencode import encode

    payload = os.urandom(100_000)
    (tmp_path / "p.bin").write_bytes(payload)
    piece = 32 * 1024
    pieces = b"".join(
        hashlib.sha1(payload[i : i + piece]).digest() for i in range(0, len(payload), piece)
    )
    info = {b"name": b"p.bin", b"piece length": piece, b"length": len(payload), b"pieces": pieces}
    torrent = tmp_path / "p.torrent"
    torrent.write_bytes(encode({b"announce": b"http://127.0.0.1:9/announce", b"info": info}))
    args = [
        "--no-conf", "--console-log-level=error", "--summary-interval=0", "-V",
        "--seed-time=0", "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
        "--enable-peer-exchange=false", "-d", str(tmp_path), str(torrent),
    ]  # fmt: skip
    watched = ("trioaria.bt.swarm", "trioaria.dht", "trioaria.dht.node", "trioaria.dht.krpc",
               "trioaria.dht.lpd_node", "trioaria.bt.udp_tracker", "trioaria.bt.pex",
               "trioaria.bt.pex_exchange", "trioaria.bt.trace", "trioaria.bt.ut_metadata")  # fmt: skip
    assert _run(watched, args, tmp_path) == (0, ["trioaria.bt.swarm"])
