"""Where downloaded bytes land: never over a file the user did not select, a fetched .torrent
never over an existing file, and -d/-o joined one way for every use (aria2 util::applyDir)."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.bt.swarm_helpers import make_torrent, run_trioaria
from tests.servers.nginx import NginxServer
from trioaria.bt.bencode import decode, encode


def _web_seed_torrent(tmp_path: Path, nginx: NginxServer, files: list[tuple[str, bytes]]) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    prefix = f"lr-{uuid.uuid4().hex[:8]}"
    raw = make_torrent(src, files, name="multi", piece_length=16384)
    for rel, data in files:
        nginx.add_file(f"{prefix}/multi/{rel}", data)
    doc = decode(raw)
    doc[b"url-list"] = [nginx.url(f"/{prefix}/").encode()]
    torrent = tmp_path / "m.torrent"
    torrent.write_bytes(encode(doc))
    return torrent


def test_existing_unselected_file_is_not_overwritten(tmp_path: Path, nginx: NginxServer) -> None:
    """aria2 (MultiDiskAdaptor::fileExists checks *every* file entry) refuses with exit 13
    when any file of the torrent exists without a control file, selected or not: a shared
    piece's bytes never land in the user's file."""
    files = [("a.bin", b"A" * 20000), ("b.bin", b"B" * 30000)]  # piece 1 spans a.bin|b.bin
    torrent = _web_seed_torrent(tmp_path, nginx, files)
    dl = tmp_path / "dl"
    (dl / "multi").mkdir(parents=True)
    mine = b"U" * 30000
    (dl / "multi" / "b.bin").write_bytes(mine)  # the user's own file, not selected
    res = run_trioaria(
        f"--dir={dl}",
        "--seed-time=0",
        "--enable-dht=false",
        "--bt-enable-lpd=false",
        "--select-file=1",
        str(torrent),
        timeout=30,
    )
    assert (dl / "multi" / "b.bin").read_bytes() == mine, "existing unselected file overwritten"
    assert res.returncode == 13, res.stdout[-500:]


def test_fetched_torrent_does_not_overwrite_an_existing_file(
    tmp_path: Path, nginx: NginxServer
) -> None:
    """``trioaria URL.torrent`` saves the fetched .torrent as aria2 saves any download: an
    existing file of that name is kept (x.1.torrent, or exit 13), never replaced."""
    files = [("a.bin", b"A" * 20000), ("b.bin", b"B" * 30000)]
    torrent = _web_seed_torrent(tmp_path, nginx, files)
    prefix = f"lr-{uuid.uuid4().hex[:8]}"
    nginx.add_file(f"{prefix}/x.torrent", torrent.read_bytes())
    dl = tmp_path / "dl"
    dl.mkdir()
    (dl / "x.torrent").write_bytes(b"precious")
    res = run_trioaria(
        f"--dir={dl}",
        "--seed-time=0",
        "--enable-dht=false",
        "--bt-enable-lpd=false",
        nginx.url(f"/{prefix}/x.torrent"),
        timeout=30,
    )
    assert res.returncode == 0, res.stdout[-500:]
    assert (dl / "x.torrent").read_bytes() == b"precious", "existing x.torrent overwritten"


def test_absolute_out_remove_control_file_stays_in_dir(tmp_path: Path, nginx: NginxServer) -> None:
    """-o is always relative to -d (aria2 util::applyDir: a leading '/' is stripped), for the
    control file --remove-control-file removes too: nothing outside --dir is touched."""
    name = f"lr-{uuid.uuid4().hex[:8]}.bin"
    nginx.add_file(name, b"x" * 1000)
    victim = tmp_path / "victim.bin"
    (tmp_path / "victim.bin.aria2").write_bytes(b"another download's control file")
    dl = tmp_path / "dl"
    res = run_trioaria(
        f"--dir={dl}",
        f"--out={victim}",
        "--remove-control-file",
        nginx.url(f"/{name}"),
        timeout=30,
    )
    assert res.returncode == 0, res.stdout[-500:]
    assert (dl / str(victim).lstrip("/")).read_bytes() == b"x" * 1000  # written inside -d
    assert (tmp_path / "victim.bin.aria2").exists(), "a file outside --dir was deleted"
