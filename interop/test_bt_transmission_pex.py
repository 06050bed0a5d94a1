"""PEX from transmission-daemon (3.x): trioaria connects a peer it learned only through
transmission's ``ut_pex``.

On loopback, no tracker, a two-file torrent (``a.bin``, ``b.bin``, on piece boundaries):

* X, a libtorrent peer with PEX off on 127.0.0.2, has only ``b.bin`` (and wants nothing else).
  transmission 3.00 keeps one connection per IP address (its peer records are keyed by address
  alone), so X and trioaria must come from different loopback addresses;
* transmission (PEX on) has nothing and wants only ``a.bin``, so nobody can feed it and it
  stays a plain leecher: X dials it (transmission never dials a 127.0.0.1 address) and the two
  stay connected, neither interested in the other;
* trioaria gets a magnet whose only ``x.pe`` is transmission and ``--select-file=2``
  (``b.bin``): the metadata comes from transmission (BEP 9; or from X once known), the data can
  only come from X, whose address only transmission's ``ut_pex`` carries.  X takes no PEX, so it cannot learn trioaria
  and dial it instead; with ``--enable-peer-exchange=false`` the download never completes.

transmission 3.00 sent its first ``ut_pex`` right after its extension handshake in every run
(later ones come every 90 seconds), so the test takes a few seconds.  Its address for an incoming peer is the peer's
ephemeral port until the peer's extension handshake names the listen port (``p``), so the test
waits for that before trioaria starts.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import pytest

from tests.bt.swarm_helpers import make_torrent, run_trioaria, wait_until
from tests.servers.transmission import Transmission, running_transmission
from trioaria.bt.metainfo import parse_torrent

lt: Any
try:
    lt = importlib.import_module("libtorrent")
except ImportError:  # pragma: no cover - the test fails, saying so
    lt = None
PIECE = 65536
X_ADDRESS = "127.0.0.2"


def _peers(transmission: Transmission, torrent_id: int) -> set[tuple[str, int]]:
    peers = transmission.torrent(torrent_id, "peers")["peers"]
    return {(str(p["address"]), int(p["port"])) for p in peers}


def _x_with_b_only(raw: bytes, directory: Path, pieces_of_b: int) -> tuple[Any, Any]:
    if lt is None:
        pytest.fail("libtorrent is not installed (python3 -m pip install libtorrent)")
    ses = lt.session(
        {
            "listen_interfaces": f"{X_ADDRESS}:0",
            "outgoing_interfaces": X_ADDRESS,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_lsd": False,
            "enable_dht": False,
            "allow_multiple_connections_per_ip": True,  # transmission and trioaria: 127.0.0.1
            "alert_mask": 0,
        }
    )
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(raw))
    params.save_path = str(directory)
    params.file_priorities = [0, 4]  # a.bin unwanted, b.bin on disk
    params.flags |= lt.torrent_flags.disable_pex
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    handle = ses.add_torrent(params)
    wait_until(lambda: handle.status().num_pieces == pieces_of_b, "X to check b.bin")
    return ses, handle


def test_peer_learned_through_transmission_pex_gets_connected(tmp_path: Path) -> None:
    x_ses = None
    with running_transmission(tmp_path / "transmission", pex_enabled=True) as transmission:
        try:
            x_dir, middle, dl = tmp_path / "x", tmp_path / "middle", tmp_path / "dl"
            x_dir.mkdir()
            middle.mkdir()
            b = os.urandom(300_000)
            raw = make_torrent(
                x_dir,
                [("a.bin", os.urandom(4 * PIECE)), ("b.bin", b)],
                name="two",
                piece_length=PIECE,
            )
            (x_dir / "two" / "a.bin").unlink()  # X has b.bin only
            meta = parse_torrent(raw)
            x_ses, x_handle = _x_with_b_only(raw, x_dir, -(-len(b) // PIECE))
            torrent_id = transmission.add(raw, middle)
            transmission.rpc("torrent-set", ids=[torrent_id], **{"files-unwanted": [1]})
            x_handle.connect_peer(("127.0.0.1", transmission.peer_port))
            wait_until(
                lambda: (X_ADDRESS, x_ses.listen_port()) in _peers(transmission, torrent_id),
                "transmission to know X by its listen port",
            )
            magnet = (
                f"magnet:?xt=urn:btih:{meta.info_hash_hex}&dn=two"
                f"&x.pe=127.0.0.1:{transmission.peer_port}"
            )
            res = run_trioaria(
                f"--dir={dl}", "--seed-time=0", "--select-file=2", magnet, timeout=60
            )
            assert res.returncode == 0, res.stdout + res.stderr + transmission.log
            assert (dl / "two" / "b.bin").read_bytes() == b
            assert transmission.torrent(torrent_id, "haveValid")["haveValid"] == 0
        finally:
            if x_ses is not None:
                x_ses.pause()
