"""trioaria.metalink.plan: a parsed document's files as downloads (options, mirrors, hashes)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from trioaria.base.errors import MetalinkError
from trioaria.cli.options import Options
from trioaria.metalink.plan import is_metalink_path, load_metalink, metalink_downloads
from trioaria.storage.session import PieceHashes

NS = "urn:ietf:params:xml:ns:metalink"
H = hashlib.sha1(b"x").hexdigest()


def _write(tmp_path: Path, body: str, name: str = "d.meta4") -> str:
    path = tmp_path / name
    path.write_text(f'<metalink xmlns="{NS}">{body}</metalink>')
    return str(path)


def test_each_file_is_one_download(tmp_path: Path) -> None:
    doc = _write(
        tmp_path,
        f'<file name="a/one.bin"><size>3</size><hash type="md5">{"00" * 16}</hash>'
        f'<hash type="sha-1">{H}</hash><pieces length="2" type="sha-1"><hash>{H}</hash>'
        f'<hash>{H}</hash></pieces><url priority="9">http://slow/one</url>'
        '<url priority="1">https://fast/one</url><url priority="2">mailto:x@y</url></file>'
        '<file name="two.bin"><url>ftp://h/two</url></file>',
    )
    one, two = metalink_downloads([doc], Options.defaults())
    assert one.name == "a/one.bin" and one.uris == ["https://fast/one", "http://slow/one"]
    assert one.options.get("out") == "a/one.bin"
    assert one.options.get("checksum") == ("sha-1", H)
    assert one.piece_hashes == PieceHashes("sha-1", 2, (bytes.fromhex(H), bytes.fromhex(H)))
    assert two.uris == ["ftp://h/two"] and two.piece_hashes is None
    assert not two.options.get("checksum")


def test_options_respected(tmp_path: Path) -> None:
    doc = _write(
        tmp_path,
        f'<file name="a"><size>1</size><hash type="sha-1">{H}</hash><pieces length="2"'
        f' type="sha-1"><hash>{H}</hash></pieces><url>http://h/a</url></file>'
        '<file name="b"><url>rel/b</url></file>',
    )
    user = "md5=" + "11" * 16
    opts = Options.defaults().with_overrides(
        {
            "checksum": user,
            "realtime-chunk-checksum": "false",
            "metalink-base-uri": "http://base/dir/",
        }
    )
    a, b = metalink_downloads([doc], opts)
    assert a.options.get("checksum") == ("md5", "11" * 16)  # the user's wins
    assert a.piece_hashes is None
    assert b.uris == ["http://base/dir/rel/b"]
    only = metalink_downloads([doc], opts.with_overrides({"select-file": "2"}))
    assert [d.name for d in only] == ["b"]


def test_file_without_usable_url(tmp_path: Path) -> None:
    doc = _write(
        tmp_path,
        '<file name="t"><metaurl mediatype="application/x-foo">http://h/t.foo</metaurl></file>',
    )
    with pytest.raises(MetalinkError, match="no usable URL"):
        metalink_downloads([doc], Options.defaults())
    doc = _write(tmp_path, '<file name="r"><url>relative</url></file>', "r.meta4")
    with pytest.raises(MetalinkError, match="no usable URL"):
        metalink_downloads([doc], Options.defaults())


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MetalinkError, match="Failed to read"):
        load_metalink(str(tmp_path / "missing.meta4"))
    bad = tmp_path / "bad.meta4"
    bad.write_bytes(b"<x")
    with pytest.raises(MetalinkError, match=r"bad\.meta4"):
        load_metalink(str(bad))


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("a.meta4", True),
        ("dir/B.METALINK", True),
        ("http://h/a.meta4", False),
        ("a.torrent", False),
        ("meta4", False),
    ],
)
def test_is_metalink_path(arg: str, expected: bool) -> None:
    assert is_metalink_path(arg) is expected


def _files(tmp_path: Path) -> str:
    return _write(
        tmp_path,
        '<file name="en-linux"><version>1.0</version><language>en</language><os>linux</os>'
        "<url>http://h/1</url></file>"
        '<file name="de-linux"><version>1.0</version><language>de</language><os>linux</os>'
        "<url>http://h/2</url></file>"
        '<file name="en-win"><version>2.0</version><language>en</language><os>windows</os>'
        "<url>http://h/3</url></file>",
        "f.meta4",
    )


@pytest.mark.parametrize(
    ("given", "names"),
    [
        ({}, ["en-linux", "de-linux", "en-win"]),
        ({"metalink-language": "en"}, ["en-linux", "en-win"]),
        ({"metalink-os": "linux"}, ["en-linux", "de-linux"]),
        ({"metalink-version": "2.0"}, ["en-win"]),
        ({"metalink-language": "en", "metalink-os": "linux"}, ["en-linux"]),
        ({"metalink-language": "fr"}, []),
        # --select-file indexes the files left after the filters (aria2's order)
        ({"metalink-language": "en", "select-file": "2"}, ["en-win"]),
    ],
)
def test_language_os_version_filters(
    tmp_path: Path, given: dict[str, str], names: list[str]
) -> None:
    opts = Options.defaults().with_overrides(given)
    assert [d.name for d in metalink_downloads([_files(tmp_path)], opts)] == names


def test_location_and_preferred_protocol_order_the_mirrors(tmp_path: Path) -> None:
    doc = _write(
        tmp_path,
        '<file name="a"><url priority="1" location="us">http://us/a</url>'
        '<url priority="2" location="de">ftp://de/a</url>'
        '<url priority="3" location="JP">http://jp/a</url>'
        '<url priority="4">https://any/a</url></file>',
        "loc.meta4",
    )

    def order(**given: str) -> list[str]:
        opts = Options.defaults().with_overrides({k.replace("_", "-"): v for k, v in given.items()})
        (d,) = metalink_downloads([doc], opts)
        return d.uris

    assert order() == ["http://us/a", "ftp://de/a", "http://jp/a", "https://any/a"]
    assert order(metalink_location="jp,de") == [
        "ftp://de/a", "http://jp/a", "http://us/a", "https://any/a"
    ]  # fmt: skip
    assert order(metalink_preferred_protocol="https")[0] == "https://any/a"
    assert order(metalink_preferred_protocol="ftp") == [
        "ftp://de/a", "http://us/a", "http://jp/a", "https://any/a"
    ]  # fmt: skip
    # both preferences stack: a jp http url beats a plain ftp one when ftp is preferred
    assert order(metalink_location="jp", metalink_preferred_protocol="http")[0] == "http://jp/a"


def test_v3_maxconnections_caps_split_and_signature_kept(tmp_path: Path) -> None:
    path = tmp_path / "m.metalink"
    path.write_text(
        '<metalink version="3.0" xmlns="http://www.metalinker.org/"><files>'
        '<file name="one"><verification><signature type="pgp">SIG</signature></verification>'
        '<resources maxconnections="1"><url type="http">http://h/one</url></resources></file>'
        '<file name="two"><resources maxconnections="3"><url type="http">http://h/two</url>'
        "</resources></file>"
        '<file name="three"><resources><url type="http">http://h/3</url></resources></file>'
        "</files></metalink>"
    )
    opts = Options.defaults().with_overrides({"split": "5"})
    one, two, three = metalink_downloads([str(path)], opts)
    assert one.options.get("split") == 1  # segmented download off for this file
    assert two.options.get("split") == 3
    assert three.options.get("split") == 5
    assert one.signature is not None and one.signature.body == "SIG"
    assert two.signature is None
    assert one.unique_protocol and not Options.defaults().with_overrides(
        {"metalink-enable-unique-protocol": "false"}
    ).get("metalink-enable-unique-protocol")


def test_torrent_metaurl_is_handed_to_bittorrent(tmp_path: Path) -> None:
    doc = _write(
        tmp_path,
        '<file name="t"><metaurl mediatype="torrent" priority="2">http://h/b.torrent</metaurl>'
        '<metaurl mediatype="torrent" priority="1">http://h/a.torrent</metaurl>'
        '<metaurl mediatype="application/x-foo">http://h/x</metaurl></file>'
        '<file name="both"><metaurl mediatype="torrent">http://h/c.torrent</metaurl>'
        "<url>http://h/both</url></file>"
        '<file name="named"><metaurl mediatype="torrent" name="d/named">http://h/d.torrent'
        "</metaurl><url>http://h/named</url></file>",
        "t.meta4",
    )
    opts = Options.defaults().with_overrides({"select-file": "1-3"})
    t, both, named = metalink_downloads([doc], opts)
    assert t.torrent == "http://h/a.torrent" and t.uris == [] and t.torrent_file is None
    assert t.options.get("follow-torrent") == "mem"
    assert not t.options.get("select-file")  # the document's selection is not the torrent's
    # a single-file torrent takes the file's urls as web seeds (BEP 19)
    assert both.torrent == "http://h/c.torrent" and both.uris == ["http://h/both"]
    # a named file of a multi-file torrent: its urls serve that file only, so no torrent
    assert named.torrent is None and named.uris == ["http://h/named"]
