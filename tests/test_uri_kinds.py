"""Which URIs become which downloads, as aria2 decides (engine/factory.py, source_factory.py,
mirrors.py): a real loopback HTTP server (stdlib, threaded) and the real CLI as a child process."""

from __future__ import annotations

import http.server
import os
import threading
from pathlib import Path

import pytest

from tests.bt.swarm_helpers import make_torrent, run_trioaria
from trioaria.bt.bencode import decode, encode

COMMON = ("--max-tries=1", "--retry-wait=0", "--bt-enable-lpd=false", "--seed-time=0")


class _Server:
    """path -> (content type, body); no Range support (200 with the whole body)."""

    def __init__(self, routes: dict[str, tuple[str, bytes]]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                ctype, body = route
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _meta4(url: str, name: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink">\n'
        f'  <file name="{name}"><url>{url}</url></file>\n'
        "</metalink>\n"
    )


# --- 1. one unsupported mirror sinks the whole download ------------------------------------


def test_unsupported_scheme_mirror_does_not_sink_the_good_mirror(tmp_path: Path) -> None:
    """aria2: several URIs are mirrors of one file; "foo is not supported yet" fails that URI
    only and the file comes from the http mirror (aria2c 1.36: exit 0)."""
    payload = os.urandom(50_000)
    out = tmp_path / "out"
    with _Server({"/f.bin": ("application/octet-stream", payload)}) as srv:
        res = run_trioaria(
            *COMMON, f"--dir={out}", srv.url("/f.bin"), "foo://127.0.0.1/f.bin", timeout=20
        )
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / "f.bin").read_bytes() == payload


# --- 2. a Metalink document next to a torrent: the torrent is treated as an HTTP mirror ------


def test_metalink_and_torrent_on_one_command_line(tmp_path: Path) -> None:
    """aria2 createRequestGroupForUri: every local .torrent/.meta4 is its own download.  Here
    a torrent beside a Metalink document is not a mirror of anything."""
    dl = tmp_path / "dl"
    dl.mkdir()
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(make_torrent(dl, [("r.bin", os.urandom(40_000))], name="r.bin"))
    meta = tmp_path / "m.meta4"
    with _Server({"/g.bin": ("application/octet-stream", os.urandom(30_000))}) as srv:
        meta.write_text(_meta4(srv.url("/g.bin"), "g.bin"))
        res = run_trioaria(*COMMON, f"--dir={dl}", "-V", str(meta), str(torrent), timeout=30)
    assert "unsupported URI scheme" not in res.stdout + res.stderr
    assert res.returncode == 0, res.stdout + res.stderr
    assert (dl / "g.bin").exists()


# --- 3. -Z copies -T / -M into every URI's entry -------------------------------------------


def test_force_sequential_does_not_duplicate_the_torrent_file(tmp_path: Path) -> None:
    """aria2 createRequestGroupForBitTorrent: "we ignore -Z option here" -- with -T every URI is
    a web seed of the one torrent, which is built once."""
    dl = tmp_path / "dl"
    dl.mkdir()
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(make_torrent(dl, [("r.bin", os.urandom(40_000))], name="r.bin"))
    res = run_trioaria(
        *COMMON, f"--dir={dl}", "-V", "-T", str(torrent), "-Z",
        "http://127.0.0.1:1/a/", "http://127.0.0.1:1/b/", timeout=30,
    )  # fmt: skip
    assert "already registered" not in res.stdout + res.stderr
    assert res.returncode == 0, res.stdout + res.stderr


def test_force_sequential_does_not_download_the_metalink_twice(tmp_path: Path) -> None:
    """aria2 Context.cc: with -M the Metalink document is the download (the URIs are not used),
    and -Z does not repeat it."""
    out = tmp_path / "out"
    meta = tmp_path / "m.meta4"
    with _Server({"/g.bin": ("application/octet-stream", os.urandom(30_000))}) as srv:
        meta.write_text(_meta4(srv.url("/g.bin"), "g.bin"))
        res = run_trioaria(
            *COMMON, f"--dir={out}", "-M", str(meta), "-Z", srv.url("/g.bin"), srv.url("/g.bin"),
            timeout=30,
        )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert not (out / "g.1.bin").exists(), sorted(p.name for p in out.iterdir())


# --- 4. --follow-torrent ignores Content-Type: application/x-bittorrent --------------------


def test_torrent_served_with_bittorrent_content_type_is_followed(tmp_path: Path) -> None:
    """aria2 ContentTypeRequestGroupCriteria: a download whose Content-Type is
    application/x-bittorrent (or whose file name ends in .torrent) is followed as a torrent
    (--follow-torrent=true), whatever the URL's suffix."""
    dl = tmp_path / "dl"
    dl.mkdir()
    body = make_torrent(dl, [("r.bin", os.urandom(40_000))], name="r.bin")
    with _Server({"/download?id=1": ("application/x-bittorrent", body)}) as srv:
        res = run_trioaria(
            *COMMON, f"--dir={dl}", "-V", "--follow-torrent=mem", srv.url("/download?id=1"),
            timeout=30,
        )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert not (dl / "download").exists(), "the torrent was saved as a plain file, not followed"


# --- 5. malformed URIs: exit 22 / 28 instead of aria2's 1 ----------------------------------


@pytest.mark.parametrize("uri", ["sftp://", "http://", "http://127.0.0.1:99999/x"])
def test_malformed_uri_exit_code_is_1_like_aria2(tmp_path: Path, uri: str) -> None:
    """aria2c 1.36: "Unrecognized URI or unsupported protocol: <uri>", exit 1."""
    res = run_trioaria(*COMMON, f"--dir={tmp_path}", uri, timeout=20)
    assert res.returncode == 1, res.stdout + res.stderr


# --- 6. local files are sniffed more narrowly than aria2 -----------------------------------


def test_extensionless_trackerless_torrent_file_is_a_torrent(tmp_path: Path) -> None:
    """aria2 ProtocolDetector::guessTorrentFile: a local file whose first byte is 'd' is a
    torrent, a trackerless one with a "created by" key (what clients write) too."""
    dl = tmp_path / "dl"
    dl.mkdir()
    doc = decode(make_torrent(dl, [("r.bin", os.urandom(40_000))], name="r.bin"))
    doc[b"created by"] = b"qBittorrent v4.6"
    doc[b"creation date"] = 1700000000
    path = tmp_path / "saved-torrent"  # e.g. a browser download without an extension
    path.write_bytes(encode(doc))
    res = run_trioaria(*COMMON, f"--dir={dl}", "-V", str(path), timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr


def test_extensionless_metalink_file_is_a_metalink(tmp_path: Path) -> None:
    """aria2 ProtocolDetector::guessMetalinkFile: a local file starting with "<?xml" is a
    Metalink document (aria2c downloads its file; checked: exit 0)."""
    out = tmp_path / "out"
    meta = tmp_path / "list.xml"
    payload = os.urandom(30_000)
    with _Server({"/g.bin": ("application/octet-stream", payload)}) as srv:
        meta.write_text(_meta4(srv.url("/g.bin"), "g.bin"))
        res = run_trioaria(*COMMON, f"--dir={out}", str(meta), timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / "g.bin").read_bytes() == payload
