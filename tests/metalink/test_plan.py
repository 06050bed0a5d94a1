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
        tmp_path, '<file name="t"><metaurl mediatype="torrent">http://h/t.torrent</metaurl></file>'
    )
    with pytest.raises(MetalinkError, match="torrent metaurls are not followed yet"):
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
