"""BEP 19 web seeds end to end: nginx serves a torrent's files, alone or next to a real peer.

The torrent's ``url-list`` (or URIs given after ``-T``) become mirrors of the torrent's byte
space; one range request may span several pieces and several files, every piece is SHA-1
checked, and pieces that came over HTTP are announced and uploaded to peers (the libtorrent
side of that is in ``interop/test_bt_libtorrent.py``).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest
import trio

from tests.bt.swarm_helpers import make_torrent, run_trioaria, start_aria2c, stop_process
from tests.bt.tracker_server import Tracker
from tests.e2e_util import nginx_bytes_sent
from trioaria.bt.bencode import decode, encode
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.webseed import WebSeedSource, web_seed_files
from trioaria.cli.options import Options
from trioaria.engine.source_factory import make_source


def _with_url_list(torrent: bytes, urls: list[str]) -> bytes:
    doc = decode(torrent)
    assert isinstance(doc, dict)
    doc[b"url-list"] = [u.encode() for u in urls]
    return encode(doc)


def _publish(nginx, prefix: str, root: Path) -> None:  # type: ignore[no-untyped-def]
    """Copy every file under ``root`` into nginx's document root below ``prefix``."""
    for path in root.rglob("*"):
        if path.is_file():
            nginx.add_file(f"{prefix}/{path.relative_to(root)}", path.read_bytes())


def test_web_seed_alone_multi_file(tmp_path: Path, nginx) -> None:  # type: ignore[no-untyped-def]
    """A multi-file torrent (pieces spanning file ends, an empty file) from its url-list only."""
    src, dl = tmp_path / "src", tmp_path / "dl"
    src.mkdir()
    files = [
        ("a.bin", os.urandom(100_001)),
        ("empty.txt", b""),
        ("sub dir/b.bin", os.urandom(70_000)),
        ("sub dir/c.bin", os.urandom(5)),
    ]
    prefix = f"ws-{uuid.uuid4().hex[:8]}"
    raw = make_torrent(src, files, name="multi", piece_length=32768)
    _publish(nginx, prefix, src)
    torrent = tmp_path / "m.torrent"
    torrent.write_bytes(_with_url_list(raw, [nginx.url(f"/{prefix}/")]))
    agent = f"ws-alone-{uuid.uuid4().hex}"
    res = run_trioaria(
        f"--dir={dl}", "--seed-time=0", f"--user-agent={agent}", "--split=1", str(torrent)
    )
    assert res.returncode == 0, res.stdout + res.stderr
    for rel, data in files:
        assert (dl / "multi" / rel).read_bytes() == data
    assert not (dl / "multi.aria2").exists()
    sent, lines = nginx_bytes_sent(nginx.access_log, agent)
    assert sent == sum(len(d) for _, d in files)  # each byte fetched once
    requested = {line.request.split()[1] for line in lines}
    assert f"/{prefix}/multi/sub%20dir/b.bin" in requested
    assert all("empty" not in r for r in requested)


def test_web_seed_alone_announces_completed(tmp_path: Path, nginx) -> None:  # type: ignore[no-untyped-def]
    """BEP 3: ``completed`` is sent when the download completes, also when every byte came
    from the web seed and none from a peer."""
    src, dl = tmp_path / "src", tmp_path / "dl"
    src.mkdir()
    prefix = f"ws-{uuid.uuid4().hex[:8]}"
    with Tracker(interval=900) as tracker:
        raw = make_torrent(
            src, [("f.bin", os.urandom(100_000))], name="f.bin", announce=tracker.url
        )
        _publish(nginx, prefix, src)
        torrent = tmp_path / "w.torrent"
        torrent.write_bytes(_with_url_list(raw, [nginx.url(f"/{prefix}/f.bin")]))
        res = run_trioaria(f"--dir={dl}", "--seed-time=0", str(torrent))
        assert res.returncode == 0, res.stdout + res.stderr
        info_hash = parse_torrent(raw).info_hash
        assert tracker.state.events(info_hash) == ["started", "completed", "stopped"]
    assert (dl / "f.bin").read_bytes() == (src / "f.bin").read_bytes()


def test_web_seed_given_with_minus_T(tmp_path: Path, nginx) -> None:  # type: ignore[no-untyped-def]
    """``-T x.torrent http://host/dir/``: a directory URI gets the name appended (BEP 19);
    tiny 8 KiB pieces (below the 16 KiB block) work."""
    src, dl = tmp_path / "src", tmp_path / "dl"
    src.mkdir()
    payload = os.urandom(50_000)
    prefix = f"ws-{uuid.uuid4().hex[:8]}"
    torrent = tmp_path / "s.torrent"
    torrent.write_bytes(make_torrent(src, [("s.bin", payload)], name="s.bin", piece_length=8192))
    nginx.add_file(f"{prefix}/s.bin", payload)
    res = run_trioaria(f"--dir={dl}", "--seed-time=0", "-T", str(torrent), nginx.url(f"/{prefix}/"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "s.bin").read_bytes() == payload


def test_bad_web_seed_data_is_refetched_and_blamed(tmp_path: Path, nginx) -> None:  # type: ignore[no-untyped-def]
    """A web seed serving wrong bytes fails its pieces' SHA-1 checks and is dropped; a good
    one finishes the torrent."""
    src, dl = tmp_path / "src", tmp_path / "dl"
    src.mkdir()
    payload = os.urandom(200_000)
    prefix = f"ws-{uuid.uuid4().hex[:8]}"
    raw = make_torrent(src, [("g.bin", payload)], name="g.bin", piece_length=16384)
    nginx.add_file(f"{prefix}/bad/g.bin", bytes(len(payload)))
    nginx.add_file(f"{prefix}/good/g.bin", payload)
    torrent = tmp_path / "g.torrent"
    torrent.write_bytes(
        _with_url_list(raw, [nginx.url(f"/{prefix}/bad/"), nginx.url(f"/{prefix}/good/")])
    )
    res = run_trioaria(
        f"--dir={dl}", "--seed-time=0", "--max-tries=2", "--split=2", "--min-split-size=1M",
        "--uri-selector=inorder", str(torrent),
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert hashlib.sha1((dl / "g.bin").read_bytes()).digest() == hashlib.sha1(payload).digest()
    assert "failed its sha-1 check" in res.stdout  # the bad seed's pieces were caught


@pytest.mark.parametrize(
    ("piece_length", "size"),
    [(65536, 2 * 1024 * 1024), (3 * 16384 + 1, 2 * 1024 * 1024 + 17)],  # 2 MiB + 17 is prime
    ids=["64k", "odd-pieces"],
)
def test_web_seed_and_aria2c_peer_fill_one_torrent(  # type: ignore[no-untyped-def]
    tmp_path: Path, nginx, piece_length: int, size: int
) -> None:
    """A rate-limited web seed and a rate-limited aria2c seed both deliver part of one torrent
    (also with pieces of 3 x 16 KiB + 1: one picker and one geometry for ranges and blocks)."""
    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(size)
    prefix = f"ws-{uuid.uuid4().hex[:8]}"
    nginx.add_file(f"{prefix}/mix.bin", payload)
    with Tracker(interval=1) as tracker:
        raw = make_torrent(
            seed,
            [("mix.bin", payload)],
            name="mix.bin",
            piece_length=piece_length,
            announce=tracker.url,
        )
        torrent = tmp_path / "mix.torrent"
        # nginx sends 300 KiB/s per connection, aria2c uploads 300 KiB/s: neither alone is fast
        torrent.write_bytes(_with_url_list(raw, [nginx.url(f"/rate/300k/{prefix}/mix.bin")]))
        aria2c, _ = start_aria2c(torrent, seed, extra=("--max-upload-limit=300K",))
        agent = f"ws-mix-{uuid.uuid4().hex}"
        try:
            res = run_trioaria(
                f"--dir={dl}", "--seed-time=0", f"--user-agent={agent}", str(torrent), timeout=60
            )
        finally:
            stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "mix.bin").read_bytes() == payload
    sent, _ = nginx_bytes_sent(nginx.access_log, agent)
    assert 0 < sent < len(payload), sent  # the web seed sent some, the peer the rest


async def test_web_seed_stream_spans_files(nginx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One range over three files (one of them a BEP 47 padding file) reads as the concatenation."""
    prefix = f"ws-{uuid.uuid4().hex[:8]}"
    a, b = os.urandom(1000), os.urandom(3000)
    nginx.add_file(f"{prefix}/t/a", a)
    nginx.add_file(f"{prefix}/t/b", b)
    info = {
        b"name": b"t",
        b"piece length": 16384,
        b"pieces": b"\0" * 20,
        b"files": [
            {b"length": 1000, b"path": [b"a"]},
            {b"length": 24, b"path": [b".pad", b"24"], b"attr": b"p"},
            {b"length": 3000, b"path": [b"b"]},
        ],
    }
    meta = parse_torrent(encode({b"info": info}))
    options = Options.defaults().with_overrides({"user-agent": "ws-unit"})
    source = WebSeedSource(
        nginx.url(f"/{prefix}/"),
        web_seed_files(meta, nginx.url(f"/{prefix}/")),
        lambda url: make_source(url, options),
    )
    try:
        stream = await source.open_range(500, 3900)
        buf = bytearray(700)
        out = bytearray()
        with trio.fail_after(10):
            while n := await stream.read_into(memoryview(buf)):
                out += buf[:n]
        await stream.finish(drained=True)
    finally:
        await source.aclose()
    assert bytes(out) == (a + bytes(24) + b)[500:3900]


def test_magnet_ws_web_seed(tmp_path: Path, nginx) -> None:  # type: ignore[no-untyped-def]
    """A magnet's ``ws`` (BEP 19 in magnets): the metadata comes from an aria2c peer (BEP 9),
    which then uploads at 16 KiB/s, so most of the payload must come from the web seed."""
    import urllib.parse

    seed, dl = tmp_path / "seed", tmp_path / "dl"
    seed.mkdir()
    payload = os.urandom(1024 * 1024)
    prefix = f"ws-{uuid.uuid4().hex[:8]}"
    nginx.add_file(f"{prefix}/mag.bin", payload)
    raw = make_torrent(seed, [("mag.bin", payload)], name="mag.bin", piece_length=65536)
    torrent = tmp_path / "mag.torrent"
    torrent.write_bytes(raw)
    meta = parse_torrent(raw)
    aria2c, port = start_aria2c(torrent, seed, extra=("--max-upload-limit=16K",))
    agent = f"ws-magnet-{uuid.uuid4().hex}"
    ws = urllib.parse.quote(nginx.url(f"/{prefix}/mag.bin"), safe="")
    magnet = f"magnet:?xt=urn:btih:{meta.info_hash_hex}&dn=mag.bin&x.pe=127.0.0.1:{port}&ws={ws}"
    try:
        res = run_trioaria(f"--dir={dl}", "--seed-time=0", f"--user-agent={agent}", magnet)
    finally:
        stop_process(aria2c)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "mag.bin").read_bytes() == payload
    sent, _ = nginx_bytes_sent(nginx.access_log, agent)
    assert sent > len(payload) // 2


def test_range_segments_follow_piece_priority() -> None:
    """``--bt-prioritize-piece`` for range sources: the prioritised runs come first, each cut to
    its prioritised pieces, then the ordinary largest gap."""
    from trioaria.storage.picker import Picker
    from trioaria.storage.pieces import PieceStorage

    pl = 32768
    picker = Picker(PieceStorage(20 * pl + 100, pl), min_split_size=pl)
    picker.prioritize_head_tail([(0, 20 * pl + 100)], 2 * pl, pl)  # pieces 0-1 and 19-20
    first = picker.next_segment("seed")
    second = picker.next_segment("seed")
    third = picker.next_segment("seed")
    assert first is not None and second is not None and third is not None
    assert (first.start, first.end) == (0, 2 * pl)
    assert (second.start, second.end) == (19 * pl, 20 * pl + 100)
    assert (third.start, third.end) == (2 * pl, 19 * pl)


def test_web_seed_fetches_the_prioritised_tail_first(tmp_path: Path, nginx) -> None:  # type: ignore[no-untyped-def]
    src, dl = tmp_path / "src", tmp_path / "dl"
    src.mkdir()
    payload = os.urandom(10 * 65536)
    prefix = f"ws-{uuid.uuid4().hex[:8]}"
    nginx.add_file(f"{prefix}/p.bin", payload)
    raw = make_torrent(src, [("p.bin", payload)], name="p.bin", piece_length=65536)
    torrent = tmp_path / "p.torrent"
    torrent.write_bytes(_with_url_list(raw, [nginx.url(f"/{prefix}/p.bin")]))
    agent = f"ws-prio-{uuid.uuid4().hex}"
    res = run_trioaria(
        f"--dir={dl}", "--seed-time=0", f"--user-agent={agent}", "--split=1",
        "--bt-prioritize-piece=tail=64K", str(torrent),
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "p.bin").read_bytes() == payload
    _, lines = nginx_bytes_sent(nginx.access_log, agent)
    assert lines[0].range == f"bytes={9 * 65536}-{10 * 65536 - 1}", lines


def test_ftp_and_http_web_seeds_share_a_multi_file_torrent(
    tmp_path: Path, nginx, ftp_server
) -> None:  # type: ignore[no-untyped-def]
    """Two web seeds of different protocols (pyftpdlib and nginx) split one multi-file torrent:
    the FTP driver's ``REST`` + ``RETR`` per file and HTTP ranges fill the same pieces."""
    src, dl = tmp_path / "src", tmp_path / "dl"
    src.mkdir()
    files = [("one.bin", os.urandom(1_500_000)), ("two.bin", os.urandom(2_600_001))]
    raw = make_torrent(src, files, name="both", piece_length=65536)
    prefix = f"ws-{uuid.uuid4().hex[:8]}"
    for rel, data in files:
        nginx.add_file(f"{prefix}/both/{rel}", data)
        ftp_server.add_file(f"both/{rel}", data)
    torrent = tmp_path / "both.torrent"
    ftp_base = ftp_server.url("")
    # nginx at 500 KiB/s per connection, so the (slower to open) FTP connection gets its share
    torrent.write_bytes(_with_url_list(raw, [ftp_base, nginx.url(f"/rate/500k/{prefix}/")]))
    agent = f"ws-ftp-{uuid.uuid4().hex}"
    res = run_trioaria(
        f"--dir={dl}", "--seed-time=0", f"--user-agent={agent}", "--split=2",
        "--min-split-size=1M", str(torrent),
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    for rel, data in files:
        assert (dl / "both" / rel).read_bytes() == data
    sent, _ = nginx_bytes_sent(nginx.access_log, agent)
    assert 0 < sent < sum(len(d) for _, d in files)
    assert ftp_server.commands("RETR"), ftp_server.log_text()[-2000:]
