"""Tests for trioaria.cli.help: aria2c's --help layout, tags, keyword search, #unsupported.

The option lists per tag are diffed against the real ``aria2c --help=TAG`` (a
required prerequisite).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from trioaria.cli.help import HELP_TAGS, possible_values, render_help, render_option
from trioaria.cli.option_table import OPTIONS, TAGS
from trioaria.cli.options import build_options

ARIA2C = shutil.which("aria2c")

# Options aria2 1.36 (the installed aria2c) does not print but newer aria2 does.
_NEWER_THAN_136 = {"no-want-digest-header"}
# trioaria extension options (docs/decisions.md), which aria2c does not have.
_EXTENSIONS = {"ssh-private-key", "rpc-web-ui", "dht-default-bootstrap", "trace"}


def _aria2c_help(keyword: str) -> str:
    assert ARIA2C, "aria2c is a required prerequisite (apt-get install aria2)"
    return subprocess.run(
        [ARIA2C, "--no-conf", f"--help={keyword}"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"HOME": "/nonexistent", "PATH": "/usr/bin:/bin", "LC_ALL": "C"},
        check=True,
    ).stdout


def _names(text: str) -> list[str]:
    text = text.partition("URI, MAGNET, TORRENT_FILE, METALINK_FILE:")[0]  # #basic epilogue
    return re.findall(r"^ (?:-\w, )?--([\w-]+)", text, re.M)


@pytest.mark.parametrize("tag", [*TAGS, "#all"])
def test_tag_lists_match_aria2c(tag):
    theirs = _names(_aria2c_help(tag))
    ours = [n for n in _names(render_help(tag)) if n not in _NEWER_THAN_136 | _EXTENSIONS]
    assert theirs, f"aria2c printed nothing for {tag}"
    assert ours == theirs  # same options, same order


@pytest.mark.parametrize("keyword", ["conn", "proxy", "dht", "--split=5"])
def test_keyword_search_matches_aria2c(keyword):
    theirs = _names(_aria2c_help(keyword))
    assert theirs
    ours = _names(render_help(keyword))
    assert [n for n in ours if n not in _NEWER_THAN_136 | _EXTENSIONS] == theirs


def test_block_layout_matches_aria2c_for_shared_text():
    # Our help sentences are our own; the head, the column and the trailer lines match.
    theirs = _aria2c_help("timeout").split("\n")
    ours = render_help("timeout", prog="aria2c").split("\n")
    assert ours[:3] == theirs[:3]  # usage, "Printing ...", "Options:"
    assert ours[3][:30] == theirs[3][:30] == " -t, --timeout=SEC            "
    for line in (
        "                              Possible Values: 1-600",
        "                              Default: 60",
    ):
        assert line in ours
    assert ours[-2] == theirs[-2] == "Refer to man page for more information."


def test_render_option_block():
    text = render_option(OPTIONS["max-connection-per-server"])
    lines = text.split("\n")
    assert lines[0].startswith(" -x, --max-connection-per-server=NUM Maximum connections")
    assert "                              Possible Values: 1-65535" in lines
    assert "                              Default: 1" in lines
    assert lines[-1] == "                              Tags: #basic, #http, #ftp"
    assert all(
        len(line) <= 80 for line in lines if not line.lstrip().startswith(("Possible", "Tags"))
    )
    short = render_option(OPTIONS["timeout"]).split("\n")[0]
    assert short.index("Give up") == 30  # descriptions start at column 30


def test_possible_values():
    assert possible_values(OPTIONS["continue"]) == "true, false"
    assert possible_values(OPTIONS["seed-ratio"]) == "0.0-*"
    assert possible_values(OPTIONS["max-tries"]) == "0-*"
    assert possible_values(OPTIONS["file-allocation"]) == "none, prealloc, trunc, falloc"
    assert possible_values(OPTIONS["listen-port"]) == "1024-65535"
    assert possible_values(OPTIONS["version"]) == ""
    assert possible_values(OPTIONS["help"]).endswith("#all, #unsupported")


def test_basic_is_the_default_and_has_the_epilogue():
    text = render_help(None)
    assert text == render_help("#basic")
    assert text.startswith(
        "Usage: trioaria [OPTIONS] [URI | MAGNET | TORRENT_FILE | METALINK_FILE]...\n"
    )
    assert "Printing options tagged with '#basic'." in text
    assert "URI, MAGNET, TORRENT_FILE, METALINK_FILE:" in text
    assert text.endswith("Refer to man page for more information.\n")
    assert " -d, --dir=DIR" in text


def _default_of(text: str, head: str) -> str:
    block = text[text.index(head) :].split("\n\n", 2)[1]
    return re.search(r"Default: (.*)", block).group(1)


def test_dynamic_defaults_are_shown():
    assert _default_of(render_help("#basic"), " -d, --dir=DIR") == "."
    text = render_help("#basic", defaults={"dir": "/srv/dl"})
    assert _default_of(text, " -d, --dir=DIR") == "/srv/dl"
    opts = build_options(
        {"max-connection-per-server": "4", "netrc-path": "/x"}, {}, base={"dir": "/srv"}
    )
    text = render_help("#all", opts)
    assert _default_of(text, " -d, --dir=DIR") == "/srv"
    assert _default_of(text, " -x, --max-connection-per-server=NUM") == "1"  # not the given 4
    assert _default_of(text, " -k, --min-split-size=SIZE") == "20M"  # aria2's spelling
    assert "Default: /x" not in text  # explicitly given, so not a default


def test_unsupported_lists_exactly_the_unimplemented_options():
    names = _names(render_help("#unsupported"))
    expected = [n for n, s in OPTIONS.items() if not s.implemented]
    assert names == expected
    assert "enable-mmap" in names
    assert "split" not in names
    assert "dns-timeout" in names  # hidden ones are listed here too


def test_unknown_tag_prints_an_empty_list_like_aria2c():
    theirs = _aria2c_help("#nosuchtag")
    ours = render_help("#nosuchtag", prog="aria2c")
    assert _names(theirs) == _names(ours) == []
    assert ours.split("\n")[:4] == theirs.split("\n")[:4]


def test_no_match_shows_the_help_option():
    text = render_help("zzzz")
    assert "No option matching with 'zzzz'." in text
    assert _names(text) == ["help"]


def test_empty_keyword_is_the_short_usage():
    assert render_help("") == (
        "Usage: trioaria [OPTIONS] [URI | MAGNET | TORRENT_FILE | METALINK_FILE]...\n"
        "See 'trioaria -h'.\n"
    )


def test_hidden_options_stay_hidden():
    for keyword in ("#all", "timeout", "dns"):
        assert "dns-timeout" not in _names(render_help(keyword))
    assert set(HELP_TAGS) >= {"#all", "#unsupported", *TAGS}


def test_a_reader_that_went_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """``trioaria -v | head -0``: standard output is a pipe nobody reads any more; the command
    ends quietly (128 + SIGPIPE, as aria2 killed by the signal), without a traceback."""
    import os
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        res = subprocess.run(
            [sys.executable, "-m", "trioaria", "-v"], stdout=write_end, stderr=subprocess.PIPE,
            timeout=30, check=False, cwd=tmp_path,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert b"Traceback" not in res.stderr, res.stderr.decode()[-500:]
    assert res.returncode == 141
