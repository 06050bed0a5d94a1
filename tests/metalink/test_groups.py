"""trioaria.metalink.detect / groups: what is followed, and what each file becomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from trioaria.cli.options import Options
from trioaria.engine.torrent import TorrentGroup
from trioaria.metalink.detect import is_metalink_resource
from trioaria.metalink.groups import MetalinkGroup, build_groups, save_signature
from trioaria.metalink.parse import Signature
from trioaria.metalink.plan import MetalinkDownload


@pytest.mark.parametrize(
    ("content_type", "name", "expected"),
    [
        ("application/metalink4+xml", "x.bin", True),
        ("Application/Metalink+XML; charset=utf-8", None, True),
        ("application/octet-stream", "release.meta4", True),
        (None, "dir/REL.METALINK?x=1", True),
        ("text/xml", "x.xml", False),
        ("application/metalink4+xmlx", "a.meta4x", False),
        (None, None, False),
    ],
)
def test_is_metalink_resource(content_type: str | None, name: str | None, expected: bool) -> None:
    assert is_metalink_resource(content_type, name) is expected


def test_save_signature_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    assert save_signature(str(target), Signature("application/pgp-signature", "SIG"))
    assert (tmp_path / "f.bin.sig").read_text() == "SIG\n"
    assert not save_signature(str(target), Signature("application/pgp-signature", "OTHER"))
    assert (tmp_path / "f.bin.sig").read_text() == "SIG\n"


def test_build_groups_hands_torrents_to_bittorrent() -> None:
    opts = Options.defaults()
    downloads = [
        MetalinkDownload(["http://h/a"], opts, None, "a", unique_protocol=True),
        MetalinkDownload([], opts, None, "t", torrent="http://h/t.torrent"),
    ]
    a, t = build_groups(downloads, gid="0123456789abcdef")
    assert isinstance(a, MetalinkGroup) and a.gid == "0123456789abcdef" and a.unique_protocol
    assert isinstance(t, TorrentGroup) and t.source.value == "http://h/t.torrent"
    assert t.source.kind == "url"


async def test_show_files_matches_aria2c(tmp_path: Path) -> None:
    from tests.cli_util import run_aria2c, run_cli

    doc = tmp_path / "t.meta4"
    doc.write_text(
        '<?xml version="1.0"?>\n<metalink xmlns="urn:ietf:params:xml:ns:metalink">'
        '<file name="a/one.bin"><size>12345</size><url>http://127.0.0.1:1/x</url></file>'
        '<file name="two.bin"><url>http://127.0.0.1:1/y</url></file>'
        '<file name="big.iso"><size>4294967296</size><url>http://127.0.0.1:1/z</url></file>'
        "</metalink>"
    )
    for args in (("-S", "-M", doc), ("-S", doc)):
        ours = await run_cli(*args, home=tmp_path)
        theirs = await run_aria2c(*args, home=tmp_path)
        assert ours.returncode == theirs.returncode == 0, (ours, theirs)
        assert ours.stdout == theirs.stdout, (ours.stdout, theirs.stdout)
    assert not list(tmp_path.glob("*.bin")), "nothing downloaded"
