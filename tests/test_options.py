"""Tests for trioaria.cli.options and trioaria.cli.option_table against aria2's behaviour.

aria2c (1.36, Debian) is a required prerequisite: several tests diff our table and
our command-line parser against the real binary.
"""

from __future__ import annotations

import copy
import pickle
import re
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.errors import ExitCode, OptionError
from trioaria.cli.input_file import InputEntry, format_input_file, parse_input_file
from trioaria.cli.option_table import IMPLEMENTED, OPTIONS, SHORT_OPTIONS, ArgKind, OptType
from trioaria.cli.options import (
    UNSUPPORTED_WARNING,
    Options,
    build_options,
    conf_file_candidates,
    dynamic_defaults,
    parse_argv,
    parse_conf_file,
    parse_value,
)

ARIA2C = shutil.which("aria2c")


def _aria2c(*args: str, home: str = "/nonexistent") -> subprocess.CompletedProcess[str]:
    assert ARIA2C, "aria2c is a required prerequisite (apt-get install aria2)"
    return subprocess.run(
        [ARIA2C, "--no-conf", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"HOME": home, "PATH": "/usr/bin:/bin", "LC_ALL": "C"},
        check=False,
    )


def _aria2c_blocks() -> dict[str, dict[str, str | None]]:
    text = _aria2c("--help=#all").stdout
    out: dict[str, dict[str, str | None]] = {}
    for block in re.split(r"\n(?= (?:-\w, )?--[\w-])", text)[1:]:
        m = re.match(r" (?:-(\w), )?--([\w-]+)(\S*)", block)
        assert m is not None
        info: dict[str, str | None] = {"short": m.group(1), "metavar": m.group(3)}
        for key in ("Possible Values", "Default", "Tags"):
            found = re.search(rf"^\s+{key}: (.*)$", block, re.M)
            info[key] = found.group(1).strip() if found else None
        out[m.group(2)] = info
    return out


@pytest.fixture(scope="module")
def aria2c_options() -> dict[str, dict[str, str | None]]:
    return _aria2c_blocks()


# --- the table against aria2c ------------------------------------------------------------


def test_every_aria2c_option_is_in_the_table(aria2c_options):
    assert len(aria2c_options) >= 190, "could not parse aria2c --help=#all"
    missing = sorted(set(aria2c_options) - set(OPTIONS))
    assert not missing, f"options printed by aria2c but missing here: {missing}"


def test_short_flags_tags_and_metavars_match_aria2c(aria2c_options):
    for name, info in aria2c_options.items():
        spec = OPTIONS[name]
        if name != "file-allocation":  # aria2 1.37 added -a
            assert spec.short == info["short"], name
        assert spec.metavar == info["metavar"], name
        assert ", ".join(spec.tags) == info["Tags"], name


# Defaults that differ on purpose: docs/decisions.md, our own identity, or computed at startup.
_DEFAULT_DEPARTURES = {
    "auto-save-interval",
    "user-agent",
    "peer-agent",
    "peer-id-prefix",
    "dir",
    "conf-path",
    "netrc-path",
    "dht-file-path",
    "dht-file-path6",
    "ca-certificate",
}


def test_defaults_match_aria2c_except_documented_departures(aria2c_options):
    for name, info in aria2c_options.items():
        if name in _DEFAULT_DEPARTURES:
            continue
        assert OPTIONS[name].default == info["Default"], name
    assert OPTIONS["auto-save-interval"].default == "1"
    assert OPTIONS["max-connection-per-server"].max == 65535


def test_table_invariants():
    # aria2's 207 + the ssh-private-key, rpc-web-ui, dht-default-bootstrap and trace extensions
    assert len(OPTIONS) == 211
    assert sum(spec.hidden for spec in OPTIONS.values()) == 9
    for name, spec in OPTIONS.items():
        assert spec.name == name
        assert spec.help, name
        assert spec.help[-1] in ".)", name
        if spec.default is not None:
            parse_value(spec, spec.default)  # every default is valid
        if spec.arg is not ArgKind.REQUIRED:
            assert spec.no_arg_value is not None, name
    for letter, name in SHORT_OPTIONS.items():
        assert OPTIONS[name].short == letter
    assert {n for n, s in OPTIONS.items() if s.implemented} == IMPLEMENTED
    assert "max-redirect" not in OPTIONS  # not an aria2 option; never invent names
    per_download = {n for n, s in OPTIONS.items() if s.per_download}
    assert len(per_download) == 113
    assert {"dir", "out", "header", "split", "gid", "pause"} <= per_download
    assert not {"log", "max-concurrent-downloads", "enable-rpc"} & per_download


# --- values ------------------------------------------------------------------------------

VALID = [
    ("max-connection-per-server", "16", 16),
    ("max-connection-per-server", "64", 64),  # no cap of 16 here
    ("split", " 5 ", 5),
    ("min-split-size", "1M", 1048576),
    ("min-split-size", "1m", 1048576),
    ("min-split-size", "1024K", 1048576),
    ("min-split-size", "1073741824", 1073741824),
    ("max-download-limit", "0", 0),
    ("max-download-limit", "500k", 512000),
    ("continue", "true", True),
    ("continue", "false", False),
    ("continue", "", True),  # optional argument: empty means the no-argument value
    ("help", "", "#basic"),
    ("file-allocation", "falloc", "falloc"),
    ("follow-torrent", "mem", "mem"),
    ("seed-ratio", "0.0", 0.0),
    ("seed-time", "1.5", 1.5),
    ("listen-port", "6881-6883,7000", (range(6881, 6884), range(7000, 7001))),
    ("select-file", "3,1-2", (range(3, 4), range(1, 3))),
    (
        "checksum",
        "SHA-1=0192BA11326FE2298C8CB4DE616F4D4140213838",
        ("sha-1", "0192ba11326fe2298c8cb4de616f4d4140213838"),
    ),
    ("checksum", "md5=" + "a" * 32, ("md5", "a" * 32)),
    ("ssh-host-key-md", "sha-256=" + "0" * 64, ("sha-256", "0" * 64)),
    ("dht-entry-point", "router.example:6881", ("router.example", 6881)),
    ("dht-entry-point6", "[::1]:6881", ("::1", 6881)),
    ("all-proxy", "localhost:3128", "http://localhost:3128/"),
    ("all-proxy", "socks5://u:p@[::1]:1080", "socks5://u:p@[::1]:1080/"),
    ("all-proxy", "", ""),
    ("bt-prioritize-piece", "head=2M,tail", (("head", 2097152), ("tail", 1048576))),
    ("optimize-concurrent-downloads", "true", (5.0, 25.0)),
    ("optimize-concurrent-downloads", "false", None),
    ("optimize-concurrent-downloads", "3:4.5", (3.0, 4.5)),
    ("header", "X-A: 1\nX-B: 2", ("X-A: 1", "X-B: 2")),
    ("index-out", "1=a/b.bin", ("1=a/b.bin",)),
    ("gid", "0123456789abcdef", "0123456789abcdef"),
    ("user-agent", "anything at all", "anything at all"),
]


@pytest.mark.parametrize(("name", "raw", "expected"), VALID)
def test_parse_value_valid(name, raw, expected):
    assert parse_value(OPTIONS[name], raw) == expected


INVALID = [
    ("max-connection-per-server", "0"),
    ("max-connection-per-server", "65536"),
    ("split", "0"),
    ("split", "five"),
    ("split", "١٢"),  # non-ASCII digits are not numbers here
    ("timeout", ""),
    ("timeout", "601"),
    ("min-split-size", "1G"),  # aria2 knows only K and M
    ("min-split-size", "1M1"),
    ("min-split-size", "1048575"),
    ("min-split-size", "1025M"),
    ("min-split-size", "-1M"),
    ("max-download-limit", "-1"),
    ("continue", "yes"),
    ("continue", "True"),
    ("file-allocation", "bogus"),
    ("seed-ratio", "-1"),
    ("seed-ratio", "nan"),
    ("seed-ratio", "inf"),
    ("listen-port", "80"),
    ("listen-port", "7000-6999"),
    ("listen-port", "a-b"),
    ("select-file", "0"),
    ("checksum", "sha-1=xyz"),
    ("checksum", "md4=" + "0" * 32),
    ("checksum", "sha-1"),
    ("ssh-host-key-md", "sha-512=" + "0" * 128),
    ("dht-entry-point", "host"),
    ("dht-entry-point", "host:0"),
    ("all-proxy", "gopher://h:70"),
    ("all-proxy", "http://:80"),
    ("bt-prioritize-piece", "middle"),
    ("bt-prioritize-piece", "head="),
    ("optimize-concurrent-downloads", "3"),
    ("optimize-concurrent-downloads", "a:b"),
    ("index-out", "x=a"),
    ("index-out", "1="),
    ("gid", "0000000000000000"),
    ("gid", "xyz"),
    ("rpc-secret", ""),
    ("version", "maybe"),
]


@pytest.mark.parametrize(("name", "raw"), INVALID)
def test_parse_value_invalid_names_the_option(name, raw):
    with pytest.raises(OptionError) as info:
        parse_value(OPTIONS[name], raw)
    assert f"--{name}" in str(info.value)
    assert info.value.exit_code == ExitCode.OPTION_ERROR == 28


@given(name=st.sampled_from(sorted(OPTIONS)), raw=st.text(max_size=80))
def test_parse_value_raises_only_option_error(name, raw):
    try:
        parse_value(OPTIONS[name], raw)
    except OptionError as exc:
        message = str(exc)
    else:
        return
    assert f"--{name}" in message


@given(
    name=st.sampled_from(sorted(n for n, s in OPTIONS.items() if s.type is OptType.UNIT)),
    number=st.integers(min_value=0, max_value=2**40),
    unit=st.sampled_from(["", "K", "k", "M", "m"]),
)
def test_unit_values_round_trip(name, number, unit):
    spec = OPTIONS[name]
    expected = number * {"": 1, "k": 1024, "m": 1048576}[unit.lower()]
    try:
        assert parse_value(spec, f"{number}{unit}") == expected
    except OptionError:
        assert (spec.min is not None and expected < spec.min) or (
            spec.max is not None and expected > spec.max
        )


def test_home_is_expanded_only_in_path_options():
    assert parse_value(OPTIONS["dir"], "${HOME}/dl", home="/home/u") == "/home/u/dl"
    assert parse_value(OPTIONS["user-agent"], "${HOME}", home="/home/u") == "${HOME}"


# --- Options -----------------------------------------------------------------------------


def test_options_defaults_and_access():
    opts = Options.defaults()
    assert opts.max_connection_per_server == 1
    assert opts.get("max-connection-per-server") == 1
    assert opts["min-split-size"] == 20 * 1024 * 1024
    assert opts.auto_save_interval == 1
    assert opts.get("continue") is False
    assert opts.out is None
    assert opts.header is None
    assert not opts.is_set("split")
    with pytest.raises(AttributeError):
        _ = opts.no_such_option
    with pytest.raises(KeyError):
        opts.get("no-such-option")
    with pytest.raises(AttributeError):
        opts.split = 3  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(opts)) == opts
    assert copy.copy(opts) == opts


def test_options_with_overrides_validates_and_is_immutable():
    base = Options.defaults()
    new = base.with_overrides({"split": "8", "header": "A: 1", "max-download-limit": "1M"})
    assert (base.split, new.split) == (5, 8)
    assert new.is_set("split")
    assert not base.is_set("split")
    assert new.with_overrides({"header": ["B: 2", "C: 3"]}).header == ("A: 1", "B: 2", "C: 3")
    assert new.with_overrides({"header": "B: 2"}, replace_lists=True).header == ("B: 2",)
    strings = new.as_strings()
    assert strings["max-download-limit"] == "1048576"  # aria2 getOption normalizes numbers
    assert strings["continue"] == "false"
    assert strings["header"] == "A: 1"
    assert "out" not in strings
    with pytest.raises(OptionError, match="--split"):
        base.with_overrides({"split": "0"})
    with pytest.raises(OptionError, match="--bogus"):
        base.with_overrides({"bogus": "1"})
    assert base.with_overrides(new.as_strings()) == new.with_overrides({}, replace_lists=True)


def test_unsupported_warning_names_the_option():
    assert not OPTIONS["enable-mmap"].implemented
    text = UNSUPPORTED_WARNING("enable-mmap")
    assert "--enable-mmap" in text
    assert "\n" not in text


# --- command line ------------------------------------------------------------------------

ARGV = [
    (["-x16", "http://a/"], {"max-connection-per-server": "16"}, ["http://a/"]),
    (["-x", "16"], {"max-connection-per-server": "16"}, []),
    (["http://a/", "-s", "4", "http://b/"], {"split": "4"}, ["http://a/", "http://b/"]),
    (["--split=4", "--split", "6"], {"split": "6"}, []),
    (["--max-conn=3"], {"max-connection-per-server": "3"}, []),
    (["-c"], {"continue": "true"}, []),
    (["-cfalse"], {"continue": "false"}, []),
    (["-cZ"], {"continue": "Z"}, []),  # as getopt: -c takes the rest of the word
    (["-c", "-Z"], {"continue": "true", "force-sequential": "true"}, []),
    (["--continue", "true"], {"continue": "true"}, ["true"]),  # optional arg: only with '='
    (["--continue=false"], {"continue": "false"}, []),
    (["-h"], {"help": "#basic"}, []),
    (["-h#http"], {"help": "#http"}, []),
    (["--help=#http"], {"help": "#http"}, []),
    # a bare -h/--help takes the next word that is not an option (aria2c: a URI, #basic shown)
    (["--help", "#http"], {"help": "#http"}, []),
    (["-h", "proxy", "http://a/"], {"help": "proxy"}, ["http://a/"]),
    (["-vh", "#ftp"], {"version": "true", "help": "#ftp"}, []),
    (["-h", "-x2"], {"help": "#basic", "max-connection-per-server": "2"}, []),
    (["http://a/", "--help"], {"help": "#basic"}, ["http://a/"]),
    (["-v"], {"version": "true"}, []),
    (["-vc"], {"version": "true", "continue": "true"}, []),
    (["-d", "-x"], {"dir": "-x"}, []),  # a required argument may start with '-'
    (["--dir", "--split"], {"dir": "--split"}, []),
    (["--", "-x", "--split=3"], {}, ["-x", "--split=3"]),
    (["-"], {}, ["-"]),
    (
        ["--header=A: 1", "-x2", "--header", "B: 2"],
        {"header": "A: 1\nB: 2", "max-connection-per-server": "2"},
        [],
    ),
    (["--out="], {"out": ""}, []),
    (["--dns-timeout=5"], {"dns-timeout": "5"}, []),  # hidden in aria2, accepted here
    # abbreviations ignore hidden names, as getopt in aria2c never sees them
    (["--dht-listen-a=::1"], {"dht-listen-addr6": "::1"}, []),
    (["--dht-listen-addr=::1"], {"dht-listen-addr": "::1"}, []),
]


@pytest.mark.parametrize(("argv", "opts", "positional"), ARGV)
def test_parse_argv(argv, opts, positional):
    assert parse_argv(argv) == (opts, positional)


ARGV_ERRORS = [
    (["--bogus"], "--bogus"),
    (["--max=4"], "ambiguous"),
    (["-y"], "'y'"),
    (["-x"], "'x'"),
    (["--dir"], "--dir"),
    (["--version=1"], "--version"),
]


@pytest.mark.parametrize(("argv", "fragment"), ARGV_ERRORS)
def test_parse_argv_errors(argv, fragment):
    with pytest.raises(OptionError) as info:
        parse_argv(argv)
    assert fragment in str(info.value)
    assert info.value.exit_code == 28


# Each case parses (exit 1: "no URI given") or fails with exit 28, in aria2c and here.
DIFFERENTIAL = [
    ["-x", "16"],
    ["-s0"],
    ["-s", "1"],
    ["-k", "1M"],
    ["-k1G"],
    ["-k", "1025M"],
    ["-k1m"],
    ["--min-split-size=1048575"],
    ["-cZ"],
    ["-c", "-Z"],
    ["-qc"],
    ["--quiet=yes"],
    ["--quiet=false"],
    ["--timeout="],
    ["--dir"],
    ["--max=4"],
    ["--max-conn=4"],
    ["--nonexistent"],
    ["-y"],
    ["--seed-ratio=-1"],
    ["--seed-ratio=0.5"],
    ["--file-allocation=falloc"],
    ["--file-allocation=bogus"],
    ["--listen-port=6881-6999,7000"],
    ["--listen-port=80"],
    ["--select-file=1-5,8"],
    ["--checksum=sha-1=0192ba11326fe2298c8cb4de616f4d4140213838"],
    ["--checksum=sha-1=xyz"],
    ["--checksum=md4=00"],
    ["--dht-entry-point=host:6881"],
    ["--all-proxy=localhost:3128"],
    ["--bt-prioritize-piece=head=1M,tail"],
    ["--bt-prioritize-piece=middle"],
    ["--optimize-concurrent-downloads=3:4"],
    ["--optimize-concurrent-downloads=3"],
    ["--header=X: y", "--header", "Z: w"],
    ["--index-out=1=a.bin"],
    ["--index-out=x=a"],
    ["--max-overall-download-limit=1M"],
    ["--max-overall-download-limit=-1"],
    ["--rpc-secret="],
    ["--version=1"],
    ["--console-log-level=warn"],
    ["-j", "0"],
    ["--stream-piece-selector=geom"],
    ["--min-tls-version=TLSv1.0"],
    ["--dht-listen-a=::1"],
    ["--peer-c=3"],
]


def _our_status(argv: list[str]) -> int:
    try:
        opts, _ = parse_argv(argv)
        build_options(opts, {})
    except OptionError as exc:
        return int(exc.exit_code)
    return 1


@pytest.mark.parametrize("argv", DIFFERENTIAL, ids=" ".join)
def test_argv_acceptance_matches_aria2c(argv, tmp_path):
    theirs = _aria2c(*argv, home=str(tmp_path)).returncode
    assert theirs in (1, 28)
    assert _our_status(argv) == theirs


# --- aria2.conf -----------------------------------------------------------------------------

CONF = """\
# sample configuration file
listen-port=60000
  split = 3
dir=${HOME}/downloads
header=A: 1

continue
header=B: 2\r
=ignored
  # an indented comment
max-upload-limit=50K
"""


def test_parse_conf_file():
    conf = parse_conf_file(CONF, home="/home/u")
    assert conf == {
        "listen-port": "60000",
        "split": "3",
        "dir": "/home/u/downloads",
        "header": "A: 1\nB: 2",
        "continue": "",
        "max-upload-limit": "50K",
    }
    opts = build_options({"header": "C: 3", "split": "7"}, conf, home="/home/u")
    assert opts.split == 7  # command line beats the conf file
    assert opts.listen_port == (range(60000, 60001),)
    assert opts.get("continue") is True
    assert opts.header == ("A: 1", "B: 2", "C: 3")  # LIST options accumulate
    assert opts.max_upload_limit == 50 * 1024
    assert opts.is_set("listen-port")
    assert not opts.is_set("timeout")


def test_parse_conf_file_errors_name_the_line():
    with pytest.raises(OptionError, match=r"line 2: .*--split"):
        parse_conf_file("dir=/x\nsplit=0\n", home="/h")
    with pytest.raises(OptionError, match=r"line 1: unknown option 'foo-bar'"):
        parse_conf_file("foo-bar=1\n", home="/h")
    warnings: list[str] = []
    assert parse_conf_file("foo-bar=1\nsplit=2\n", home="/h", on_unknown=warnings.append) == {
        "split": "2"
    }
    assert len(warnings) == 1
    assert "foo-bar" in warnings[0]


def test_conf_file_candidates_and_dynamic_defaults():
    env = {"HOME": "/home/u"}
    assert conf_file_candidates(env) == [
        "/home/u/.aria2/aria2.conf",
        "/home/u/.config/aria2/aria2.conf",
    ]
    assert conf_file_candidates({**env, "XDG_CONFIG_HOME": "/x"})[1] == "/x/aria2/aria2.conf"
    dyn = dynamic_defaults(env, cwd="/work", exists=lambda p: p == "/home/u/.aria2/dht.dat")
    assert dyn == {
        "dir": "/work",
        "conf-path": "/home/u/.config/aria2/aria2.conf",
        "netrc-path": "/home/u/.netrc",
        "dht-file-path": "/home/u/.aria2/dht.dat",
        "dht-file-path6": "/home/u/.cache/aria2/dht6.dat",
    }
    opts = build_options({}, {}, base=dyn)
    assert opts.dir == "/work"
    assert not opts.is_set("dir")


# --- -i input files -------------------------------------------------------------------------

INPUT = """\
# downloads
http://server/file.iso\thttp://mirror/file.iso
  dir=/iso_images
\tout=file.img
# a comment inside the block does not end it

  header=A: 1
  header=B: 2
http://foo/bar
 log=/tmp/x.log
magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567\t
"""


def test_parse_input_file():
    entries = parse_input_file(INPUT)
    assert entries == [
        InputEntry(
            ("http://server/file.iso", "http://mirror/file.iso"),
            {"dir": "/iso_images", "out": "file.img", "header": "A: 1\nB: 2"},
        ),
        InputEntry(("http://foo/bar",), {}),  # log is not a per-download option
        InputEntry(("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567",), {}),
    ]


def test_parse_input_file_errors():
    with pytest.raises(OptionError, match=r"line 2: .*--split"):
        parse_input_file("http://a\n split=0\n")
    with pytest.raises(OptionError, match="line 2: unknown option 'nope'"):
        parse_input_file("http://a\n nope=1\n")
    notes: list[str] = []
    assert parse_input_file("http://a\n nope=1\n log=x\n", on_unknown=notes.append) == [
        InputEntry(("http://a",), {})
    ]
    assert len(notes) == 2


_uri = st.from_regex(r"(https?|ftp)://[a-z0-9.]{1,12}/[A-Za-z0-9._~%/?=&-]{0,20}", fullmatch=True)
_value = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x85"
    ),
    max_size=20,
).map(str.strip)
_plain = st.sampled_from(["out", "referer", "ftp-user", "http-passwd", "user-agent", "metalink-os"])


@given(
    st.lists(
        st.tuples(
            st.lists(_uri, min_size=1, max_size=3),
            st.dictionaries(_plain, _value, max_size=3),
            st.lists(_value.filter(bool), max_size=3),
        ),
        max_size=4,
    )
)
def test_input_file_round_trip(raw_entries):
    entries = []
    for uris, opts, headers in raw_entries:
        options = dict(opts)
        if headers:
            options["header"] = "\n".join(headers)
        entries.append(InputEntry(tuple(uris), options))
    assert parse_input_file(format_input_file(entries)) == entries


@given(
    st.dictionaries(
        st.sampled_from(["split", "timeout", "max-tries", "out", "dir", "retry-wait"]),
        st.integers(1, 600).map(str),
    )
)
def test_conf_round_trip(values):
    text = "".join(f"{k} = {v}\n" for k, v in values.items())
    conf = parse_conf_file(text, home="/h")
    assert conf == values
    opts = build_options({}, conf)
    assert opts.as_strings().items() >= values.items()
