"""A torrent whose url-list holds only unusable web seeds runs without them (aria2 ignores a
web seed it cannot use)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.bt.swarm_helpers import make_torrent, run_trioaria
from tests.bt.test_webseed import _with_url_list


def test_torrent_with_only_a_malformed_web_seed_still_runs(tmp_path: Path) -> None:
    """The file is complete on disk (-V): nothing needs downloading.  A web seed "http://:80/"
    (no host) in the url-list of a (hostile or sloppy) torrent is logged and ignored, as
    aria2 ignores a web seed it cannot use.  Observed: the download fails, exit 1,
    "Unrecognized URI or unsupported protocol"."""
    src, dl = tmp_path / "src", tmp_path / "dl"
    src.mkdir()
    dl.mkdir()
    data = os.urandom(40_000)
    raw = make_torrent(src, [("f.bin", data)], name="f.bin")
    (dl / "f.bin").write_bytes(data)
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(_with_url_list(raw, ["http://:80/"]))
    res = run_trioaria(
        f"--dir={dl}", "-V", "--seed-time=0", "--enable-dht=false", str(torrent), timeout=30
    )
    assert res.returncode == 0, res.stdout[-1500:] + res.stderr[-1500:]
    assert (dl / "f.bin").read_bytes() == data
