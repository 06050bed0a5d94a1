"""trioaria.bt.metainfo: libtorrent-made fixtures, path safety, BEP 12/19/27/47 fields, magnets."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.errors import ExitCode
from trioaria.bt.bencode import decode, encode
from trioaria.bt.errors import BencodeError, MagnetError, MetainfoError
from trioaria.bt.metainfo import (
    make_magnet_uri,
    parse_host_port,
    parse_info,
    parse_magnet,
    parse_torrent,
)

from .conftest import DATA, hashes_for, make_torrent

# Info hashes and file lists as libtorrent 2.1.1 computed them when it created the fixtures
# (lt.create_torrent + lt.torrent_info(...).info_hashes().v1; offsets from file_storage).
LIBTORRENT = {
    "multi.torrent": (
        "03471f7490315cf8ecf280c7f6433b0281858f5e",
        [
            ("multi/a.bin", 100000, 0),
            ("multi/empty", 0, 100000),
            ("multi/sub/b.txt", 70000, 100000),
        ],
    ),
    "single.torrent": ("72a8f1d8a74b2bf66983887018a86798fc9e69a7", [("single.bin", 50000, 0)]),
    "unicode.torrent": (
        "6251e762337e5a5ae1962d5751b11587d8297874",
        [("uni/日本.txt", 3000, 0), ("uni/ünï cödé.bin", 40000, 3000)],
    ),
    # A hybrid v1+v2 torrent: BEP 47 padding files; the v1 hash is over the raw info span.
    "hybrid.torrent": (
        "1a1ac3df172f7ee89a525de4146b5726ae94781c",
        [
            ("multi/a.bin", 100000, 0),
            ("multi/.pad/31072", 31072, 100000),
            ("multi/empty", 0, 131072),
            ("multi/sub/b.txt", 70000, 131072),
            ("multi/.pad/28304", 28304, 201072),
        ],
    ),
    # Keys of info out of order: libtorrent hashes the raw bytes (so do we); aria2c re-encodes.
    "unsorted.torrent": ("f00e91d62140f8afb9eae8d78c032a3b0c09de6f", [("odd.bin", 3, 0)]),
}


@pytest.mark.parametrize("name", sorted(LIBTORRENT))
def test_libtorrent_fixtures(name):
    expected_hash, expected_files = LIBTORRENT[name]
    m = parse_torrent((DATA / name).read_bytes(), default_name=name)
    assert m.info_hash_hex == expected_hash
    assert [(f.path, f.length, f.offset) for f in m.files] == expected_files
    assert m.total_length == sum(f.length for f in m.files)
    assert m.num_pieces == -(-m.total_length // m.piece_length)
    assert hashlib.sha1(m.info_bytes).hexdigest() == expected_hash


def test_multi_file_fields():
    m = parse_torrent((DATA / "multi.torrent").read_bytes())
    assert m.multi_file and not m.private and m.name == "multi"
    assert m.piece_length == 16384 and m.num_pieces == 11
    assert m.announce_list == (
        ("http://127.0.0.1:6969/announce", "http://127.0.0.2:6969/announce"),
        ("udp://127.0.0.1:6969",),
    )
    assert m.trackers[-1] == "udp://127.0.0.1:6969"
    assert m.url_list == ("http://127.0.0.1/ws/",)
    assert m.comment == "fixture" and m.created_by == "libtorrent 2.1.1.0"
    assert isinstance(m.creation_date, int)
    assert m.piece_size(0) == 16384 and m.piece_size(10) == 170000 - 10 * 16384
    assert m.piece_hash(10) == m.pieces[200:220]
    with pytest.raises(IndexError):
        m.piece_hash(11)
    layout = m.layout()
    assert layout.total_length == 170000
    assert layout.locate(99990, 20) == [(0, 99990, 0, 10), (2, 0, 10, 10)]


def test_single_private_and_hybrid_padding():
    single = parse_torrent((DATA / "single.torrent").read_bytes())
    assert single.private and not single.multi_file and single.name == "single.bin"
    hybrid = parse_torrent((DATA / "hybrid.torrent").read_bytes())
    assert [f.padding for f in hybrid.files] == [False, True, False, False, True]


def _single(**info):
    base = {b"name": b"f.bin", b"piece length": 16384, b"length": 10}
    base.update({k.replace("_", " ").encode(): v for k, v in info.items()})
    base.setdefault(b"pieces", hashes_for(base[b"length"], base[b"piece length"]))
    return base


def _multi(paths, lengths=None, name=b"top"):
    lengths = lengths or [1] * len(paths)
    return {
        b"name": name,
        b"piece length": 16384,
        b"pieces": hashes_for(sum(lengths), 16384),
        b"files": [{b"length": n, b"path": p} for p, n in zip(paths, lengths, strict=True)],
    }


BAD_PATHS = [
    ([[b".."]], "traversal"),
    ([[b"a", b"..", b"b"]], "traversal"),
    ([[b"a/../../b"]], "traversal"),
    ([[b"a", b"."]], "traversal"),
    ([[b"a", b"", b"b"]], "Empty path component"),
    ([[b"a/"]], "Empty path component"),
    ([[b"/etc/passwd"]], "Empty path component"),
    ([[]], "Path is empty"),
    ([[b"a"], [b"a"]], "Duplicate file path"),
    ([[b"a"], [b"a", b"b"]], "both a file and a directory"),
    ([[b"a", 1]], "not a string"),
]


@pytest.mark.parametrize(("paths", "message"), BAD_PATHS)
def test_unsafe_paths_are_exit_26(paths, message):
    with pytest.raises(MetainfoError, match=message) as info:
        parse_torrent(make_torrent(_multi(paths)))
    assert info.value.exit_code == ExitCode.BITTORRENT_PARSE_ERROR


def _padded(files: list[dict[bytes, object]]) -> dict[bytes, object]:
    total = sum(int(f[b"length"]) for f in files)  # type: ignore[call-overload]
    return {b"name": b"t", b"piece length": 16, b"pieces": hashes_for(total, 16), b"files": files}


def test_padding_files_may_share_a_path_and_may_have_none():
    """BEP 47: padding files of one length share the recommended ``.pad/N`` (libtorrent writes
    them so); a padding file needs no ``path``; only equal lengths may share (zeros either way)."""
    pad6 = {b"length": 6, b"path": [b".pad", b"6"], b"attr": b"p"}
    files = [{b"length": 10, b"path": [b"a"]}, pad6, {b"length": 10, b"path": [b"b"]}, pad6]
    m = parse_torrent(make_torrent(_padded([*files, {b"length": 10, b"path": [b"c"]}])))
    assert [f.padding for f in m.files] == [False, True, False, True, False]
    assert [f.path for f in m.files][1::2] == ["t/.pad/6", "t/.pad/6"]
    m = parse_torrent(make_torrent(_padded([files[0], {b"length": 6, b"attr": b"p"}, files[2]])))
    assert m.files[1].padding and m.files[1].path == "t/.pad/6"
    bad = [
        [files[0], pad6, files[2], {b"length": 7, b"path": [b".pad", b"6"], b"attr": b"p"}],
        [files[0], pad6, {b"length": 10, b"path": [b".pad", b"6"]}],  # a real file there
        [files[0], {b"length": 6, b"path": [b"a"], b"attr": b"p"}],
        [files[0], {b"length": 6}],  # no path, not padding
    ]
    for entries in bad:
        with pytest.raises(MetainfoError):
            parse_torrent(make_torrent(_padded(entries)))


@pytest.mark.parametrize("name", [b"..", b".", b"/etc", b"a/", b"a//b", b"a/../b"])
def test_unsafe_names_are_exit_26(name):
    with pytest.raises(MetainfoError):
        parse_torrent(make_torrent(_single(name=name)))
    with pytest.raises(MetainfoError):
        parse_torrent(make_torrent(_multi([[b"f"]], name=name)))


def test_names_as_aria2_writes_them():
    # name.utf-8 wins; invalid UTF-8 is percent-encoded whole; control characters are escaped;
    # a name with '/' nests; a missing or empty name is the torrent's base name + ".file".
    info = _single()
    info[b"name.utf-8"] = b"\xc3\xa9t\xc3\xa9"
    assert parse_torrent(make_torrent(info)).name == "été"
    assert parse_torrent(make_torrent(_single(name=b"caf\xe9 x"))).name == "caf%E9%20x"
    assert parse_torrent(make_torrent(_single(name=b"a\x01b"))).files[0].path == "a%01b"
    assert parse_torrent(make_torrent(_single(name=b"d/f"))).files[0].path == "d/f"
    info = _single()
    del info[b"name"]
    m = parse_torrent(make_torrent(info), default_name="/tmp/dir/x.torrent")
    assert m.name == "x.torrent.file" and m.files[0].path == "x.torrent.file"
    m = parse_torrent(make_torrent(_single(name=b"")), default_name="y.torrent")
    assert m.name == "y.torrent.file"
    multi = _multi([[b"a"]])
    multi[b"files"][0][b"path.utf-8"] = [b"\xc3\xbc"]
    assert parse_torrent(make_torrent(multi)).files[0].path == "top/ü"


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({b"name": b"x", b"pieces": b"", b"length": 0}, "Missing piece length"),
        ({b"name": b"x", b"piece length": 0, b"pieces": b"", b"length": 0}, "positive"),
        ({b"name": b"x", b"piece length": 16384, b"length": 1}, "Missing pieces"),
        ({b"name": b"x", b"piece length": 16384, b"meta version": 2}, "v2-only"),
        ({b"name": b"x", b"piece length": 16384, b"pieces": b""}, "Missing length"),
        ({b"name": b"x", b"piece length": 16384, b"pieces": b"", b"length": -1}, "negative"),
        (
            {b"name": b"x", b"piece length": 16384, b"pieces": b"x" * 19, b"length": 1},
            "multiple of 20",
        ),
        (
            {b"name": b"x", b"piece length": 16384, b"pieces": b"x" * 40, b"length": 1},
            "Too few/many",
        ),
        ({b"name": b"x", b"piece length": 16384, b"pieces": b"", b"length": 1}, "Too few/many"),
        ({b"name": b"x", b"piece length": 16384, b"pieces": b"", b"files": []}, "empty"),
        (
            {b"name": b"x", b"piece length": 16384, b"pieces": b"", b"files": [1]},
            "not a dictionary",
        ),
        (
            {b"name": b"x", b"piece length": 16384, b"pieces": b"", b"files": [{b"length": 0}]},
            "path",
        ),
    ],
)
def test_invalid_info(info, message):
    with pytest.raises(MetainfoError, match=message):
        parse_torrent(make_torrent(info))


def test_root_errors():
    with pytest.raises(MetainfoError, match="root dictionary"):
        parse_torrent(b"li1ee")
    with pytest.raises(MetainfoError, match="Missing info"):
        parse_torrent(b"de")
    with pytest.raises(MetainfoError, match="Missing info"):
        parse_torrent(b"d4:infoi1ee")
    with pytest.raises(BencodeError) as info:
        parse_torrent(b"d4:infod4:name")
    assert info.value.exit_code == ExitCode.BENCODE_PARSE_ERROR


def test_zero_length_torrent_has_no_pieces():
    m = parse_torrent(
        make_torrent({b"name": b"z", b"piece length": 16384, b"pieces": b"", b"length": 0})
    )
    assert m.num_pieces == 0 and m.total_length == 0 and m.files[0].length == 0


def test_trackers_web_seeds_nodes():
    info = _single()
    m = parse_torrent(
        make_torrent(
            info,
            announce=b"http://ignored/",
            announce__list=[
                [b" http://a/ ", b"http://b/", b"http://a/"],
                [],
                [b""],
                5,
                [b"udp://c:1"],
            ],
            url__list=b"http://seed/",
            nodes=[[b"router.example", 6881], [b"bad"], [b"h", 0]],
        )
    )
    assert m.announce_list == (("http://a/", "http://b/"), ("udp://c:1",))
    assert m.url_list == ("http://seed/",)
    assert m.nodes == (("router.example", 6881),)
    # No usable tier: fall back to announce (BEP 12 with libtorrent's reading of an empty list).
    m = parse_torrent(make_torrent(info, announce=b"http://only/", announce__list=[[]]))
    assert m.announce_list == (("http://only/",),)
    m = parse_torrent(make_torrent(info, url__list=[b"http://1/", 7, b"", b"http://2/"]))
    assert m.url_list == ("http://1/", "http://2/")
    assert parse_torrent(make_torrent(_single(private=1))).private
    assert not parse_torrent(make_torrent(_single(private=2))).private


def test_parse_info_from_ut_metadata():
    info = _single()
    raw = encode(info)
    m = parse_info(raw, announce_list=[["http://t/"]], url_list=["http://w/"])
    assert m.info_hash == hashlib.sha1(raw).digest()
    assert m.announce_list == (("http://t/",),) and m.url_list == ("http://w/",)
    assert m == parse_info(bytearray(raw), announce_list=[["http://t/"]], url_list=["http://w/"])
    with pytest.raises(MetainfoError):
        parse_info(b"i1e")


def test_hundred_thousand_files_within_the_issue_budget(tmp_path):
    # The issue: a torrent with 10^5 files parses in <= 5 s and <= 300 MiB.  Memory is asserted
    # (VmHWM, the peak RSS of a fresh interpreter that parses it: ru_maxrss would carry over the
    # forking pytest's own peak); time is only reported.
    n = 100_000
    info = _multi([[b"d%d" % (i % 100), b"f%d.bin" % i] for i in range(n)], [1] * n)
    path = tmp_path / "big.torrent"
    path.write_bytes(make_torrent(info))
    script = (
        "import re, sys, time\n"
        "from trioaria.bt.metainfo import parse_torrent\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "t = time.perf_counter(); m = parse_torrent(data); t = time.perf_counter() - t\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
        "print(len(m.files), m.files[-1].offset, hwm, t)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    ).stdout.split()
    files, last_offset, max_rss_kib, seconds = int(out[0]), int(out[1]), int(out[2]), float(out[3])
    assert (files, last_offset) == (n, n - 1)
    assert max_rss_kib < 300 * 1024, max_rss_kib
    print(f"10^5 files: {seconds:.2f} s, max RSS {max_rss_kib / 1024:.0f} MiB")


SAFE_COMPONENT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
    min_size=1,
    max_size=8,
).filter(lambda s: s not in (".", ".."))


@given(
    st.lists(
        st.tuples(st.lists(SAFE_COMPONENT, min_size=1, max_size=3), st.integers(0, 50_000)),
        min_size=1,
        max_size=8,
        unique_by=lambda t: tuple(t[0]),
    ),
    st.sampled_from([1, 7, 16384, 32768]),
)
def test_generated_multi_file_torrents(files, piece_length):
    paths = {"/".join(p) for p, _ in files}
    dirs = {"/".join(p[:k]) for p, _ in files for k in range(1, len(p))}
    total = sum(n for _, n in files)
    info = {
        b"name": b"root",
        b"piece length": piece_length,
        b"pieces": hashes_for(total, piece_length),
        b"files": [{b"length": n, b"path": [c.encode() for c in p]} for p, n in files],
    }
    data = make_torrent(info, announce=b"http://t/")
    if paths & dirs:
        with pytest.raises(MetainfoError):
            parse_torrent(data)
        return
    m = parse_torrent(data)
    assert m.info_hash == hashlib.sha1(encode(info)).digest()
    assert [(f.path, f.length) for f in m.files] == [("root/" + "/".join(p), n) for p, n in files]
    offsets = [f.offset for f in m.files]
    assert offsets == [sum(n for _, n in files[:i]) for i in range(len(files))]
    assert m.total_length == total


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_typed_errors(data):
    try:
        parse_torrent(data)
    except (BencodeError, MetainfoError):
        pass


@given(st.data())
def test_mutated_fixtures_raise_only_typed_errors(data):
    name = data.draw(st.sampled_from(sorted(LIBTORRENT)))
    raw = bytearray((DATA / name).read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    try:
        m = parse_torrent(bytes(raw))
    except (BencodeError, MetainfoError):
        return
    assert m.info_hash == hashlib.sha1(m.info_bytes).digest()
    assert decode(m.info_bytes) is not None


# --- magnets -----------------------------------------------------------------------------

HASH = bytes.fromhex("cd36248e94281120c461a2f6aa30654358e578d5")


def test_magnet_hex_and_base32_agree():
    hex_uri = "magnet:?xt=urn:btih:CD36248E94281120C461A2F6AA30654358E578D5"
    b32 = base64.b32encode(HASH).decode()
    assert parse_magnet(hex_uri).info_hash == HASH
    assert parse_magnet(hex_uri.lower()).info_hash == HASH
    assert parse_magnet(f"magnet:?xt=urn:btih:{b32}").info_hash == HASH
    assert parse_magnet(f"MAGNET:?xt=urn:btih:{b32.lower()}").info_hash == HASH


def test_magnet_fields():
    uri = (
        "magnet:?xt=urn:btih:cd36248e94281120c461a2f6aa30654358e578d5&dn=Some%20Name%2B1"
        "&tr=http%3A%2F%2Ft1%2Fannounce&tr=udp://t2:80&tr.1=http%3A%2F%2Ft1%2Fannounce"
        "&x.pe=10.0.0.1:6881&x.pe=[::1]:51413&x.pe=garbage&x.pe=h:0&ws=http%3A%2F%2Fw%2F&xl=12345"
        "&xt=urn:btih:0000000000000000000000000000000000000000&unknown=1&flag"
    )
    m = parse_magnet(uri)
    assert m.info_hash_hex == HASH.hex()
    assert m.display_name == "Some Name+1"
    assert m.trackers == ("http://t1/announce", "udp://t2:80")
    assert m.peers == (("10.0.0.1", 6881), ("::1", 51413))
    assert m.web_seeds == ("http://w/",)
    assert m.exact_length == 12345


@pytest.mark.parametrize(
    "uri",
    [
        "http://x/?xt=urn:btih:" + "a" * 40,
        "magnet:",
        "magnet:?dn=x",
        "magnet:?xt=urn:btih:zz",
        "magnet:?xt=urn:btih:" + "g" * 40,
        "magnet:?xt=urn:btih:" + "a b " * 10,
        "magnet:?xt=urn:btih:" + "1" * 32,
        "magnet:?xt=urn:btmh:1220" + "a" * 64,
    ],
)
def test_bad_magnets_are_exit_27(uri):
    with pytest.raises(MagnetError) as info:
        parse_magnet(uri)
    assert info.value.exit_code == ExitCode.MAGNET_PARSE_ERROR


@given(
    st.binary(min_size=20, max_size=20),
    st.text(max_size=20),
    st.lists(st.text(min_size=1, max_size=20), max_size=4, unique=True),
)
def test_magnet_round_trip(info_hash, name, trackers):
    m = parse_magnet(make_magnet_uri(info_hash, name, trackers))
    assert m.info_hash == info_hash
    assert m.display_name == (name or None)
    assert m.trackers == tuple(trackers)


@given(st.text(max_size=80))
def test_arbitrary_magnets_raise_only_magnet_error(text):
    try:
        parse_magnet("magnet:?" + text)
    except MagnetError:
        pass


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4:80", ("1.2.3.4", 80)),
        ("[2001:db8::1]:6881", ("2001:db8::1", 6881)),
        ("host:65535", ("host", 65535)),
        ("host:65536", None),
        ("host:0", None),
        ("host", None),
        (":80", None),
        ("::1:80", None),
        ("[::1]80", None),
        ("h:\uff180", None),
    ],
)
def test_parse_host_port(text, expected):
    assert parse_host_port(text) == expected


def test_web_seed_urls():
    multi = parse_torrent((DATA / "multi.torrent").read_bytes())
    assert multi.web_seed_url("http://w/ws/", 2) == "http://w/ws/multi/sub/b.txt"
    assert multi.web_seed_url("http://w/ws", 0) == "http://w/ws/multi/a.bin"
    single = parse_torrent(make_torrent(_single(name=b"a b.bin")))
    assert single.web_seed_url("http://w/") == "http://w/a%20b.bin"
    assert single.web_seed_url("http://w/exact.iso") == "http://w/exact.iso"
