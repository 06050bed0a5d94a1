"""LPD against libtorrent's Local Service Discovery: trioaria and libtorrent meet in two namespaces.

The namespaces are ``tests/bt/test_lpd.py``'s fixture (a veth pair 10.77.14.1/24 and
10.77.14.2/24 with multicast on, nothing else).  A libtorrent session with ``enable_lsd`` on
(DHT, UPnP, NAT-PMP and uTP off, listening on its veth address only) runs in one namespace, a
trioaria process with ``--bt-enable-lpd=true --bt-lpd-interface=<its veth>`` in the other.  The
torrent has no tracker and DHT and PEX are off, so the download can only complete through BEP 14
announces going across the veth link, in both directions of the test:

* libtorrent seeds, trioaria leeches (trioaria exits 0 with the right bytes);
* trioaria seeds, libtorrent leeches (libtorrent reports the torrent finished and its file
  matches).

libtorrent runs as a small script under ``ip netns exec`` (the same ``python``, libtorrent from
PyPI).  Its LSD announce interval is lowered to 1 s so it does not matter which side joins the
multicast group first.  A failed namespace set-up fails the test (the fixture raises).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bt.swarm_helpers import REPO, make_torrent
from tests.bt.test_lpd import namespaces  # noqa: F401 - the fixture

# only checked for here (the peer runs in a subprocess); missing is a failure, not a skip
HAVE_LIBTORRENT = importlib.util.find_spec("libtorrent") is not None

_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO), "LC_ALL": "C"}

# argv: listen address, port, torrent path, save dir, "seed" or "leech", seconds to run at most.
# Prints "finished" once the torrent is complete (a leecher then exits 0; a seeder keeps seeding
# until it is killed or its time is up).
_LT_PEER = r"""
import sys, time
import libtorrent as lt

ip, port, torrent, save, mode, limit = sys.argv[1:7]
ses = lt.session({
    "listen_interfaces": f"{ip}:{port}",
    "outgoing_interfaces": ip,
    "enable_lsd": True,
    "local_service_announce_interval": 1,
    "enable_dht": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_outgoing_utp": False,
    "enable_incoming_utp": False,
    "alert_mask": int(lt.alert.category_t.status_notification | lt.alert.category_t.peer_notification),
})
params = lt.add_torrent_params()
params.ti = lt.torrent_info(torrent)
params.save_path = save
if mode == "seed":
    params.flags |= lt.torrent_flags.seed_mode
params.flags &= ~lt.torrent_flags.auto_managed
params.flags &= ~lt.torrent_flags.paused
handle = ses.add_torrent(params)
deadline = time.monotonic() + float(limit)
said = False
while time.monotonic() < deadline:
    ses.wait_for_alert(200)
    for alert in ses.pop_alerts():
        print(type(alert).__name__, alert.message(), flush=True)
    status = handle.status()
    if status.is_seeding and not said:
        print("finished", flush=True)
        said = True
        if mode == "leech":
            sys.exit(0)
sys.exit(0 if said and mode == "seed" else 3)
"""


def _lt_peer(ns: str, ip: str, port: int, torrent: Path, save: Path, mode: str) -> list[str]:
    if not HAVE_LIBTORRENT:
        pytest.fail("libtorrent is not installed (python3 -m pip install libtorrent)")
    return [
        "ip", "netns", "exec", ns, sys.executable, "-c", _LT_PEER, ip, str(port), str(torrent),
        str(save), mode, "60",
    ]  # fmt: skip


def _trioaria(ns: str, *args: str) -> list[str]:
    return [
        "ip", "netns", "exec", ns, sys.executable, "-m", "trioaria", "--no-conf",
        "--summary-interval=0", "--enable-dht=false", "--enable-peer-exchange=false",
        "--bt-enable-lpd=true", *args,
    ]  # fmt: skip


def _torrent(tmp_path: Path, seed: Path) -> tuple[Path, bytes]:
    payload = os.urandom(400_000)
    torrent = tmp_path / "lt.torrent"
    torrent.write_bytes(make_torrent(seed, [("lt.bin", payload)], name="lt.bin"))
    return torrent, payload


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.kill()
    out, _ = proc.communicate(timeout=20)
    return out[-3000:]


def test_trioaria_leeches_from_libtorrent_found_by_lsd(
    tmp_path: Path,
    namespaces: tuple[str, str],  # noqa: F811 - the fixture
) -> None:
    a, b = namespaces
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    torrent, payload = _torrent(tmp_path, seed)
    env = dict(_ENV, HOME=str(tmp_path))
    peer = subprocess.Popen(
        _lt_peer(a, "10.77.14.1", 41011, torrent, seed, "seed"),
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        leech = subprocess.run(
            _trioaria(
                b, "--listen-port=41012", "--bt-lpd-interface=lpd1", f"--dir={dl}",
                "--seed-time=0", "--bt-stop-timeout=50", str(torrent),
            ),
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
    finally:
        peer_log = _stop(peer)
    assert leech.returncode == 0, leech.stdout + leech.stderr + peer_log
    assert (dl / "lt.bin").read_bytes() == payload


def test_libtorrent_leeches_from_trioaria_found_by_lsd(
    tmp_path: Path,
    namespaces: tuple[str, str],  # noqa: F811 - the fixture
) -> None:
    a, b = namespaces
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    dl.mkdir()
    torrent, payload = _torrent(tmp_path, seed)
    env = dict(_ENV, HOME=str(tmp_path))
    log = tmp_path / "seeder.log"
    seeder = subprocess.Popen(
        _trioaria(
            a, "--listen-port=41021", "--bt-lpd-interface=lpd0", f"--dir={seed}", "-V",
            f"--log={log}", "--log-level=info", str(torrent),
        ),
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and "LPD: announcing" in log.read_text(errors="replace")):
            assert seeder.poll() is None, _stop(seeder)
            assert time.monotonic() < deadline, "the trioaria seeder never joined the LPD group"
            time.sleep(0.05)
        peer = subprocess.run(
            _lt_peer(b, "10.77.14.2", 41022, torrent, dl, "leech"),
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
    finally:
        seeder_log = _stop(seeder)
    assert peer.returncode == 0, peer.stdout[-3000:] + peer.stderr[-3000:] + seeder_log
    assert (dl / "lt.bin").read_bytes() == payload
