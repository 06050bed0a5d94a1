"""aria2c as the oracle for metainfo parsing: ``aria2c -S`` on real and hand-built torrents.

For every torrent both accept, the fields ``aria2c -S`` prints (info hash, mode, name, piece
count, total length, files with lengths, trackers, web seeds, comment, creator, magnet URI) must
equal ours.  Two known departures are asserted, not hidden:

* aria2c hashes a *re-encoding* of ``info`` (``bittorrent_helper.cc``: ``bencode2::encode``), so
  for a non-canonical ``info`` (unsorted keys) or a hybrid v1+v2 torrent it prints a hash that no
  other client uses; ours is libtorrent's (test_metainfo.py pins libtorrent's values).
* an empty path component, a duplicate path and a file that is also a directory are refused
  here (exit 26), while aria2c lists them.

Web seed URLs (BEP 19) are compared with the GET paths aria2c sends to a local web server,
including aria2's quirk for a name that is not UTF-8 (its escaped form is percent-encoded again,
while path components are encoded from their raw bytes).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.servers.nginx import free_port
from tests.servers.process import stop_process
from trioaria.bt.errors import MetainfoError
from trioaria.bt.metainfo import Metainfo, parse_torrent

from .conftest import DATA, hashes_for, make_torrent


def _aria2c() -> str:
    path = shutil.which("aria2c")
    if path is None:  # a missing prerequisite is a failure (.ci/run installs aria2)
        pytest.fail("aria2c is not installed")
    return path


def aria2c_show(path: Path) -> dict[str, object]:
    """Run ``aria2c -S`` and read its report into a dict."""
    out = subprocess.run(
        [_aria2c(), "-S", str(path)], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    report: dict[str, object] = {"announce": [], "url_list": [], "files": []}
    section = None
    pending_path = None
    for line in out.splitlines():
        if line.startswith("Exception:"):
            report["error"] = line
        elif line in ("Announce:", "URL List:"):
            section = "announce" if line == "Announce:" else "url_list"
        elif line.startswith(" ") and section in ("announce", "url_list") and "|" not in line:
            report[section].append(line.strip())  # type: ignore[union-attr]
        elif m := re.match(r"^\s*\d+\|\./(.*)$", line):
            pending_path = m.group(1)
        elif (m := re.match(r"^\s+\|.*\(([\d,]+)\)$", line)) and pending_path is not None:
            report["files"].append((pending_path, int(m.group(1).replace(",", ""))))  # type: ignore[union-attr]
            pending_path = None
        elif ": " in line and not line.startswith(" "):
            key, _, value = line.partition(": ")
            report[key] = value
            section = None
    return report


def assert_same_as_aria2c(m: Metainfo, report: dict[str, object], *, hash_too: bool = True) -> None:
    assert "error" not in report, report["error"]
    if hash_too:
        assert report["Info Hash"] == m.info_hash_hex
        assert report["Magnet URI"] == m.magnet_uri()
    assert report["Mode"] == ("multi" if m.multi_file else "single")
    assert report["Name"] == m.name
    assert int(str(report["The Number of Pieces"])) == m.num_pieces
    total = re.search(r"\(([\d,]+)\)", str(report["Total Length"]))
    assert total is not None and int(total.group(1).replace(",", "")) == m.total_length
    assert report["files"] == [(f.path, f.length) for f in m.files]
    # aria2c prints one line per BEP 12 tier, its URLs separated by spaces.
    assert [line.split(" ") for line in report["announce"]] == [list(t) for t in m.announce_list]  # type: ignore[union-attr]
    assert report["url_list"] == list(m.url_list)
    assert report.get("Comment") == m.comment
    assert report.get("Created By") == m.created_by


@pytest.mark.parametrize("name", ["multi.torrent", "single.torrent", "unicode.torrent"])
def test_libtorrent_fixtures_match_aria2c(name):
    path = DATA / name
    assert_same_as_aria2c(parse_torrent(path.read_bytes(), default_name=name), aria2c_show(path))


@pytest.mark.parametrize("name", ["hybrid.torrent", "unsorted.torrent"])
def test_aria2c_hashes_a_re_encoding(name):
    path = DATA / name
    m = parse_torrent(path.read_bytes(), default_name=name)
    report = aria2c_show(path)
    assert_same_as_aria2c(m, report, hash_too=False)
    assert report["Info Hash"] != m.info_hash_hex


def _info(**extra: object) -> dict[bytes, object]:
    info: dict[bytes, object] = {b"name": b"f.bin", b"piece length": 16384, b"length": 40000}
    for key, value in extra.items():
        k = key.replace("_", " ").replace(" utf 8", ".utf-8").encode()
        if value is None:
            del info[k]
        else:
            info[k] = value
    total = info[b"length"] if b"length" in info else sum(f[b"length"] for f in info[b"files"])  # type: ignore[index,union-attr]
    info[b"pieces"] = hashes_for(total, info[b"piece length"])  # type: ignore[arg-type]
    return info


HAND_MADE = {
    "name-utf8": make_torrent(_info(name_utf_8="été.bin".encode()), announce=b"http://t/a"),
    "non-utf8-name": make_torrent(_info(name=b"caf\xe9 \x01x"), announce=b"http://t/a"),
    "control-char": make_torrent(_info(name=b"a\x01b\x7fc")),
    "nested-name": make_torrent(_info(name=b"dir/f.bin")),
    "no-name": make_torrent({k: v for k, v in _info().items() if k != b"name"}),
    "zero-length": make_torrent(_info(length=0)),
    "tiers": make_torrent(
        _info(),
        announce=b"http://ignored/a",
        announce__list=[[b"http://a/1", b"udp://b:2"], [b"http://c/3"]],
        url__list=b"http://seed/x",
        raw={b"comment.utf-8": b"c\xc3\xb6mment", b"comment": b"other"},
        created_by=b"hand",
    ),
    "multi-path-utf8": make_torrent(
        _info(
            length=None,
            files=[
                {b"length": 5, b"path": [b"a", b"b.bin"]},
                {b"length": 0, b"path": [b"e"]},
                {b"length": 7, b"path": [b"x"], b"path.utf-8": ["ü".encode(), b"y"]},
            ],
        ),
        url__list=[b"http://w1/", b"http://w2/"],
    ),
    "private": make_torrent(_info(private=1), announce=b"http://p/announce"),
}


@pytest.mark.parametrize("name", sorted(HAND_MADE))
def test_hand_made_torrents_match_aria2c(name, tmp_path):
    data = HAND_MADE[name]
    path = tmp_path / f"{name}.torrent"
    path.write_bytes(data)
    m = parse_torrent(data, default_name=str(path))
    assert_same_as_aria2c(m, aria2c_show(path))


BOTH_REFUSE = {
    "name-dotdot": _info(name=b".."),
    "name-absolute": _info(name=b"/etc"),
    "path-traversal": _info(length=None, files=[{b"length": 1, b"path": [b"..", b"evil"]}]),
    "path-dot": _info(length=None, files=[{b"length": 1, b"path": [b"a", b"."]}]),
    "path-empty": _info(length=None, files=[{b"length": 1, b"path": []}]),
    "no-piece-length": {b"name": b"x", b"pieces": b"", b"length": 0},
    "no-pieces": {b"name": b"x", b"piece length": 16384, b"length": 1},
    "no-length": {b"name": b"x", b"piece length": 16384, b"pieces": b""},
    "negative-length": {b"name": b"x", b"piece length": 16384, b"pieces": b"", b"length": -1},
    "too-many-hashes": {b"name": b"x", b"piece length": 16384, b"pieces": b"a" * 40, b"length": 1},
}


@pytest.mark.parametrize("name", sorted(BOTH_REFUSE))
def test_torrents_both_refuse_with_exit_26(name, tmp_path):
    info = BOTH_REFUSE[name]
    path = tmp_path / f"{name}.torrent"
    path.write_bytes(make_torrent(info, announce=b"http://t/a"))
    assert "errorCode=26" in str(aria2c_show(path).get("error"))
    with pytest.raises(MetainfoError):
        parse_torrent(path.read_bytes())


@pytest.mark.parametrize(
    "files",
    [
        [{b"length": 1, b"path": [b"a", b"", b"b"]}],
        [{b"length": 1, b"path": [b"a"]}, {b"length": 1, b"path": [b"a"]}],
        [{b"length": 1, b"path": [b"a"]}, {b"length": 1, b"path": [b"a", b"b"]}],
    ],
)
def test_stricter_than_aria2c(files, tmp_path):
    path = tmp_path / "strict.torrent"
    path.write_bytes(make_torrent(_info(length=None, files=files)))
    assert "error" not in aria2c_show(path)
    with pytest.raises(MetainfoError):
        parse_torrent(path.read_bytes())


# --- web seeds (BEP 19): the URLs aria2c requests -------------------------------------------


@pytest.fixture
def web_seed_log():
    """A web server that records the paths asked for and answers 404."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", paths
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


WEB_SEED_INFOS = {
    "multi": {
        b"name": b"my torrent",
        b"files": [
            {b"length": 20000, b"path": [b"sub dir", "ü ñ#?%.bin".encode()]},
            {b"length": 30000, b"path": [b"b+c&d.txt"]},
        ],
    },
    "utf8-keys": {
        b"name": b"n\xe9",
        b"name.utf-8": "né".encode(),
        b"files": [{b"length": 20000, b"path": [b"x"], b"path.utf-8": [b"utf", b"x y"]}],
    },
    "raw-bytes": {
        b"name": b"n\xe9",
        b"files": [{b"length": 20000, b"path": [b"caf\xe9", b"a\x01b"]}],
    },
    "single": {b"name": "sïngle file.bin".encode(), b"length": 20000},
}


@pytest.mark.parametrize("name", sorted(WEB_SEED_INFOS))
def test_web_seed_urls_match_aria2c(name, web_seed_log, tmp_path):
    base, paths = web_seed_log
    info = dict(WEB_SEED_INFOS[name])
    total = info.get(b"length") or sum(f[b"length"] for f in info[b"files"])
    info[b"piece length"] = 16384
    info[b"pieces"] = hashes_for(total, 16384)
    seeds = [f"{base}/slash/", f"{base}/noslash"]
    path = tmp_path / f"{name}.torrent"
    path.write_bytes(make_torrent(info, url__list=[s.encode() for s in seeds]))
    meta = parse_torrent(path.read_bytes())
    expected = {meta.web_seed_url(seed, i) for seed in seeds for i in range(len(meta.files))}
    process = subprocess.Popen(
        [
            _aria2c(),
            "--no-conf",
            f"--dir={tmp_path / 'dl'}",
            f"--listen-port={free_port()}",
            "--enable-dht=false",
            "--bt-enable-lpd=false",
            "--max-tries=1",
            "--summary-interval=0",
            "--quiet",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while {base + p for p in paths} != expected and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop_process(process)
    assert {base + p for p in paths} == expected
