"""Console output: sizes, ETA, readout, summary, notices, results table, and the trio driver.

Golden strings marked "aria2c 1.36" were printed by the real ``aria2c`` 1.36.0 installed here,
downloading from a local nginx with ``limit_rate`` (1 MiB/s and 100 KiB/s locations), both
through a pipe and on a pty (``script -q -c "stty cols N; aria2c ..." /dev/null``; the pty's
``\\r\\n`` translation is undone in the literals).  The snapshot numbers fed in are chosen to
give the same figures aria2c showed.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from fractions import Fraction

import pytest
import trio
from hypothesis import example, given
from hypothesis import strategies as st

from trioaria.base.errors import OptionError
from trioaria.base.stats import (
    DownloadStats,
    DownloadStatus,
    EngineStats,
    FileStats,
    SourceStats,
)
from trioaria.cli.console import (
    format_eta,
    format_size,
    notice_line,
    notice_time_text,
    readout_line,
    results_table,
    resume_hint,
    summary_block,
    summary_time_text,
)
from trioaria.cli.readout import Console, run_readout

ACTIVE = DownloadStatus.ACTIVE
MiB = 1024 * 1024
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def dl(
    gid: str,
    done: int,
    total: int | None,
    speed: int,
    *,
    path: str = "",
    status: DownloadStatus = ACTIVE,
    file_done: int | None = None,
    uri: str = "",
    **kw: object,
) -> DownloadStats:
    files = (FileStats(1, path, total or 0, done if file_done is None else file_done),)
    sources = (SourceStats(uri),) if uri else ()
    return DownloadStats(
        gid=gid.ljust(16, "0"),
        status=status,
        total_length=total,
        completed_length=done,
        download_speed=speed,
        connections=kw.pop("connections", 1),  # type: ignore[arg-type]
        files=files,
        sources=sources,
        **kw,  # type: ignore[arg-type]
    )


def engine(*downloads: DownloadStats, speed: int = 0, upload: int = 0) -> EngineStats:
    active = sum(d.status is ACTIVE for d in downloads)
    return EngineStats(speed, upload, active, 0, 0, downloads)


# --- sizes ------------------------------------------------------------------------------------

SIZE_CASES = [
    (0, "0B"),
    (9, "9B"),
    (921, "921B"),
    (922, "0.9KiB"),  # aria2 promotes >= 922 of a unit
    (1023, "0.9KiB"),
    (1024, "1.0KiB"),
    (1535, "1.4KiB"),  # one decimal, truncated not rounded
    (10 * 1024, "10KiB"),
    (160 * 1024, "160KiB"),  # aria2c 1.36
    (309248, "302KiB"),  # aria2c 1.36 ("DL:302KiB")
    (921 * 1024 + 1023, "921KiB"),
    (922 * 1024, "0.9MiB"),  # aria2c 1.36 ("0.9MiB/0B")
    (MiB - 1, "0.9MiB"),
    (1081344, "1.0MiB"),  # aria2c 1.36
    (5_000_000, "4.7MiB"),  # aria2c 1.36
    (30_000_000, "28MiB"),  # aria2c 1.36
    (3 * 1024**3, "3.0GiB"),  # aria2c 1.36
    (922 * 1024**3, "922GiB"),  # no promotion past the largest unit
    (1023 * 1024**3, "1,023GiB"),
    (5000 * 1024**3, "5,000GiB"),
]


@pytest.mark.parametrize(("n", "text"), SIZE_CASES)
def test_format_size_golden(n, text):
    assert format_size(n) == text


def test_format_size_raw_and_negative():
    assert format_size(1081344, human=False) == "1081344B"  # aria2c 1.36 --human-readable=false
    assert format_size(0, False) == "0B"
    assert format_size(-2048) == "-2.0KiB"


def _parse_size(text: str) -> tuple[Fraction, Fraction, int]:
    """(value, step of the last digit, unit multiplier) of a human size string."""
    m = re.fullmatch(r"([0-9,]+)(?:\.([0-9]))?(|Ki|Mi|Gi)B", text)
    assert m, text
    whole, dec, unit = m.groups()
    assert "," not in whole or unit == "Gi"
    value = Fraction(int(whole.replace(",", "")))
    step = Fraction(1)
    if dec is not None:
        value += Fraction(int(dec), 10)
        step = Fraction(1, 10)
    return value, step, 1024 ** ["", "Ki", "Mi", "Gi"].index(unit)


@given(st.integers(min_value=0, max_value=2**62))
@example(1153434)  # hypothesis found it: the bound must allow for the truncated KiB
def test_format_size_brackets_the_value(n):
    value, step, unit = _parse_size(format_size(n))
    # The shown figure is truncated at every division by 1024 (aria2 abbrevSize), so it
    # brackets n with its bytes below the next smaller unit dropped: 1153434 B is 1126 KiB,
    # shown as 1.0MiB although n / 2**20 is 1.1000004.
    coarse = n - n % (unit // 1024) if unit > 1 else n
    assert value * unit <= coarse < (value + step) * unit
    assert coarse <= n < coarse + max(1, unit // 1024)
    assert format_size(n, human=False) == f"{n}B"


# --- ETA --------------------------------------------------------------------------------------

ETA_CASES = [
    (None, ""),
    (0, "0s"),
    (3, "3s"),  # aria2c 1.36
    (3.99, "3s"),
    (-5, "0s"),
    (60, "1m"),
    (260, "4m20s"),  # aria2c 1.36
    (3600, "1h"),
    (3661, "1h1m1s"),
    (3 * 3600 + 5, "3h5s"),
    (199_877, "55h31m17s"),  # aria2c 1.36
]


@pytest.mark.parametrize(("seconds", "text"), ETA_CASES)
def test_format_eta_golden(seconds, text):
    assert format_eta(seconds) == text


@given(st.integers(min_value=0, max_value=10**9))
def test_format_eta_round_trips(sec):
    text = format_eta(sec)
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    assert m
    assert text
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    assert mi < 60
    assert s < 60
    assert h * 3600 + mi * 60 + s == sec


# --- readout ----------------------------------------------------------------------------------

READOUT_CASES = [
    # aria2c 1.36 through a pipe (1 MiB/s location):
    (
        engine(dl("295ce7", 1081344, 5_000_000, MiB)),
        True,
        "[#295ce7 1.0MiB/4.7MiB(21%) CN:1 DL:1.0MiB ETA:3s]",
    ),
    # aria2c 1.36 --human-readable=false (two lines of one run):
    (
        engine(dl("d7cff8", 1081344, 5_000_000, 1057032)),
        False,
        "[#d7cff8 1081344B/5000000B(21%) CN:1 DL:1057032B ETA:3s]",
    ),
    (
        engine(dl("d7cff8", 4227072, 5_000_000, 1053869)),
        False,
        "[#d7cff8 4227072B/5000000B(84%) CN:1 DL:1053869B]",  # ETA < 1 s is left out
    ),
    # aria2c 1.36, unknown length (chunked): no percentage, no ETA
    (
        engine(dl("a88c36", 622592, None, 309248)),
        True,
        "[#a88c36 608KiB/0B CN:1 DL:302KiB]",
    ),
    # aria2c 1.36, 3 GiB at ~15 KiB/s
    (
        engine(dl("99c402", 0, 3 * 1024**3, 16116)),
        True,
        "[#99c402 0B/3.0GiB(0%) CN:1 DL:15KiB ETA:55h31m17s]",
    ),
    # sixteen connections, the brief's example
    (
        engine(dl("2089b0", 400 * MiB, 1024**3, 120 * MiB, connections=16)),
        True,
        "[#2089b0 400MiB/1.0GiB(39%) CN:16 DL:120MiB ETA:5s]",
    ),
    # nothing active: nothing to show
    (engine(dl("000001", 5, 5, 0, status=DownloadStatus.COMPLETE)), True, ""),
]


@pytest.mark.parametrize(("stats", "human", "text"), READOUT_CASES)
def test_readout_line_golden(stats, human, text):
    assert readout_line(stats, human_readable=human) == text


def _five_downloads(stage: int) -> EngineStats:
    """The five transfers aria2c 1.36 showed (pipe, -j 10), at its first two summaries."""
    done_big = [163840, 229376][stage]
    done_fast = [1081344, 2129920][stage]
    return engine(
        dl("e9ec92", done_fast, 5_000_000, 1055460, path="out/file5m.bin"),
        dl("7f12b0", done_big, 30_000_000, 114100, path="out/big.bin"),
        dl("39ec66", done_fast, 30_000_000, 1055460, path="out/big.1.bin"),
        dl("a88c36", [360448, 622592][stage], None, 309248, path="out/big.2.bin"),
        dl("876d44", done_big, 5_000_000, 114100, path="out/file5m.1.bin"),
        dl("2ff935", 100, 100, 0, path="out/tiny.bin", status=DownloadStatus.COMPLETE),
        speed=[2 * MiB + 615 * 1024, 2 * MiB + 512 * 1024][stage],
    )


def test_readout_compact_form_matches_aria2c():
    # aria2c 1.36 (pipe), several downloads at once: the compact form.
    assert readout_line(_five_downloads(0)) == (
        "[DL:2.6MiB][#e9ec92 1.0MiB/4.7MiB(21%)][#7f12b0 160KiB/28MiB(0%)]"
        "[#39ec66 1.0MiB/28MiB(3%)][#a88c36 352KiB/0B][#876d44 160KiB/4.7MiB(3%)]"
    )
    assert readout_line(_five_downloads(1)) == (
        "[DL:2.5MiB][#e9ec92 2.0MiB/4.7MiB(42%)][#7f12b0 224KiB/28MiB(0%)]"
        "[#39ec66 2.0MiB/28MiB(7%)][#a88c36 608KiB/0B][#876d44 224KiB/4.7MiB(4%)]"
    )


def test_readout_compact_caps_at_five_and_shows_upload():
    many = [dl(f"{i:06x}", i * 1024, 10 * 1024, 1) for i in range(1, 8)]
    text = readout_line(engine(*many, speed=2048, upload=1024))
    assert text.startswith("[DL:2.0KiB UL:1.0KiB][#000001 1.0KiB/10KiB(10%)]")
    assert text.count("[#") == 5
    assert text.endswith("[#000005 5.0KiB/10KiB(50%)](+2)")


# aria2c 1.36 on a 100-column pty with the default --enable-color=true:
TTY_LINE = (
    "\x1b[35m[\x1b[0m#e3557c 1.0MiB/4.7MiB\x1b[36m(21%)\x1b[0m CN:1 DL:\x1b[32m1.0MiB\x1b[0m"
    " ETA:\x1b[33m3s\x1b[0m\x1b[35m]\x1b[0m\x1b[0m"
)


def test_readout_colors_match_aria2c():
    stats = engine(dl("e3557c", 1081344, 5_000_000, MiB))
    assert readout_line(stats, color=True) == TTY_LINE
    assert readout_line(stats, color=True, width=200) == TTY_LINE


def test_readout_truncation_matches_aria2c():
    # aria2c 1.36 on a 30-column pty: 29 visible characters, colours kept, reset appended.
    stats = engine(dl("b01d47", 1081344, 5_000_000, MiB))
    assert readout_line(stats, color=True, width=29) == (
        "\x1b[35m[\x1b[0m#b01d47 1.0MiB/4.7MiB\x1b[36m(21%)\x1b[0m C\x1b[0m"
    )
    assert readout_line(stats, width=29) == "[#b01d47 1.0MiB/4.7MiB(21%) C"
    assert readout_line(stats, width=0) == ""


def test_readout_phases_and_bittorrent_extras():
    alloc = dl("aaaaaa", 0, 5 * MiB, 0, phase="FileAlloc", phase_done=MiB, phase_total=5 * MiB)
    queued = dl(
        "bbbbbb", 0, MiB, 0, phase="FileAlloc", phase_total=MiB, status=DownloadStatus.WAITING
    )
    check = dl("cccccc", 0, 0, 0, phase="Checksum", status=DownloadStatus.WAITING)
    assert readout_line(engine(alloc, queued, check)) == (
        "[#aaaaaa 0B/5.0MiB(0%) CN:1 DL:0B]"
        " [FileAlloc:#aaaaaa 1.0MiB/5.0MiB(20%)](+1) [Checksum:#cccccc 0B/0B(--%)]"
    )
    # Upload shown once something was uploaded (upload_speed stands in while stats.py has no
    # uploaded-total field); a finished (seeding) download shows no DL.
    seeding = dl("dddddd", MiB, MiB, 0, upload_speed=2048)
    assert readout_line(engine(seeding)) == "[#dddddd 1.0MiB/1.0MiB(100%) CN:1 UL:2.0KiB]"


class _BtStats:
    """Stand-in for the BitTorrent fields stats.py may grow (read with getattr)."""

    def __init__(self, base: DownloadStats, **extra: object) -> None:
        self._base = base
        self.__dict__.update(extra)

    def __getattr__(self, name: str) -> object:
        return getattr(self._base, name)


def test_readout_bittorrent_fields_when_present():
    base = dl("eeeeee", 512 * 1024, MiB, 1024, connections=3, upload_speed=2048)
    bt = _BtStats(base, num_seeders=2, upload_length=3 * MiB)
    assert readout_line(engine(bt)) == (  # type: ignore[arg-type]
        "[#eeeeee 512KiB/1.0MiB(50%) CN:3 SD:2 DL:1.0KiB UL:2.0KiB(3.0MiB) ETA:8m32s]"
    )
    seed = _BtStats(dl("ffffff", MiB, MiB, 0), seeder=True, upload_length=MiB * 3 // 2)
    assert readout_line(engine(seed)) == "[#ffffff SEED(1.5) CN:1 UL:0B(1.5MiB)]"  # type: ignore[arg-type]
    empty = _BtStats(dl("ffffff", 0, MiB, 0), seeder=True, upload_length=0)
    assert readout_line(engine(empty)) == "[#ffffff SEED(--) CN:1 DL:0B]"  # type: ignore[arg-type]


_st_download = st.builds(
    dl,
    st.text("0123456789abcdef", min_size=6, max_size=16),
    st.integers(0, 2**40),
    st.one_of(st.none(), st.integers(0, 2**41)),
    st.integers(0, 2**31),
    path=st.text(min_size=0, max_size=20).filter(lambda s: "\n" not in s and "\r" not in s),
)


@given(st.lists(_st_download, min_size=0, max_size=8), st.integers(0, 200), st.booleans())
def test_truncation_is_a_visible_prefix(downloads, width, color):
    stats = engine(*downloads, speed=12345)
    full = ANSI.sub("", readout_line(stats, color=color))
    cut = readout_line(stats, color=color, width=width)
    visible = ANSI.sub("", cut)
    assert visible == full[:width]
    if color:
        assert cut.endswith("\x1b[0m")
    else:
        assert "\x1b" not in cut


# --- summary ----------------------------------------------------------------------------------

# aria2c 1.36 (pipe, --summary-interval=2, -j 10), its first summary block:
SUMMARY_FIVE = """\
 *** Download Progress Summary as of Mon Nov 23 02:04:14 2026 ***\x20
===============================================================================
[#e9ec92 2.0MiB/4.7MiB(42%) CN:1 DL:1.0MiB ETA:2s]
FILE: out/file5m.bin
-------------------------------------------------------------------------------
[#7f12b0 224KiB/28MiB(0%) CN:1 DL:111KiB ETA:4m20s]
FILE: out/big.bin
-------------------------------------------------------------------------------
[#39ec66 2.0MiB/28MiB(7%) CN:1 DL:1.0MiB ETA:26s]
FILE: out/big.1.bin
-------------------------------------------------------------------------------
[#a88c36 608KiB/0B CN:1 DL:302KiB]
FILE: out/big.2.bin
-------------------------------------------------------------------------------
[#876d44 224KiB/4.7MiB(4%) CN:1 DL:111KiB ETA:41s]
FILE: out/file5m.1.bin
-------------------------------------------------------------------------------

"""


def test_summary_block_matches_aria2c():
    now = summary_time_text(datetime(2026, 11, 23, 2, 4, 14))
    assert now == "Mon Nov 23 02:04:14 2026"
    assert summary_block(_five_downloads(1), now) == SUMMARY_FIVE


def test_summary_block_width_paths_and_empty():
    assert summary_time_text(datetime(2026, 11, 3, 2, 4, 5)) == "Tue Nov  3 02:04:05 2026"
    assert summary_block(engine(), "x") == ""
    multi = DownloadStats(
        gid="1234567890abcdef",
        status=ACTIVE,
        total_length=30,
        completed_length=0,
        download_speed=0,
        files=(
            FileStats(1, "d/a", 10, 0),
            FileStats(2, "d/b", 10, 0, selected=False),
            FileStats(3, "d/c", 10, 0),
            FileStats(4, "d/e", 0, 0),
        ),
    )
    nameless = dl("abcdef", 0, None, 0, uri="http://127.0.0.1:1/x")
    text = summary_block(engine(multi, nameless), "T", width=10, human_readable=False)
    assert text.splitlines() == [
        " *** Download Progress Summary as of T *** ",
        "=" * 10,
        "[#123456 0B/30B(0%) CN:0 DL:0B]",
        "FILE: d/a (2more)",
        "-" * 10,
        "[#abcdef 0B/0B CN:1 DL:0B]",
        "FILE: http://127.0.0.1:1/x",
        "-" * 10,
        "",
    ]


# --- notices ----------------------------------------------------------------------------------


def test_notice_line_matches_aria2c():
    t = notice_time_text(datetime(2026, 11, 23, 2, 3, 27))
    assert t == "11/23 02:03:27"
    # aria2c 1.36 colours the level tag whenever --enable-color is on (even through a pipe).
    assert (
        notice_line("notice", "Download complete: out/file5m.bin", t, color=True)
        == "11/23 02:03:27 [\x1b[1;32mNOTICE\x1b[0m] Download complete: out/file5m.bin"
    )
    # aria2c 1.36 --enable-color=false
    assert (
        notice_line("NOTICE", "Downloading 1 item(s)", "11/23 02:06:23")
        == "11/23 02:06:23 [NOTICE] Downloading 1 item(s)"
    )
    assert notice_line("error", "x", t, color=True) == "11/23 02:03:27 [\x1b[1;31mERROR\x1b[0m] x"
    assert notice_line("warn", "y", t) == "11/23 02:03:27 [WARN] y"
    with pytest.raises(OptionError):
        notice_line("loud", "z", t)


# --- results table ----------------------------------------------------------------------------

# aria2c 1.36 (pipe), one completed download:
RESULTS_OK = """
Download Results:
gid   |stat|avg speed  |path/URI
======+====+===========+=======================================================
295ce7|OK  |   1.0MiB/s|out/file5m.bin

Status Legend:
(OK):download completed.
"""

# aria2c 1.36 (pipe), --download-result=full, -j 10, Ctrl-C after 4.5 s:
RESULTS_FULL = """
Download Results:
gid   |stat|avg speed  |  %|path/URI
======+====+===========+===+===================================================
2ff935|OK  |    16KiB/s|100|out/tiny.bin
be9c5d|ERR |       0B/s|  -|http://127.0.0.1:47265/nothere.bin
e9ec92|INPR|   1.0MiB/s| 83|out/file5m.bin
7f12b0|INPR|   106KiB/s|  0|out/big.bin
39ec66|INPR|   1.0MiB/s| 13|out/big.1.bin
a88c36|INPR|   304KiB/s|  -|out/big.2.bin
876d44|INPR|   106KiB/s|  0|out/file5m.1.bin

Status Legend:
(OK):download completed.(ERR):error occurred.(INPR):download in-progress.

aria2 will resume download if the transfer is restarted.
If there are any errors, then see the log file. See '-l' option in help/man page for details.
"""


def _results_downloads() -> list[DownloadStats]:
    return [
        dl("2ff935", 100, 100, 0, path="out/tiny.bin", status=DownloadStatus.COMPLETE),
        dl(
            "be9c5d",
            0,
            None,
            0,
            status=DownloadStatus.ERROR,
            uri="http://127.0.0.1:47265/nothere.bin",
            error_code=3,
        ),
        dl("e9ec92", 4 * MiB, 5_000_000, MiB, path="out/file5m.bin"),
        dl("7f12b0", 425984, 30_000_000, 0, path="out/big.bin", file_done=0),
        dl("39ec66", 4 * MiB, 30_000_000, 0, path="out/big.1.bin"),
        dl("a88c36", 1258291, None, 0, path="out/big.2.bin"),
        dl("876d44", 425984, 5_000_000, 0, path="out/file5m.1.bin", file_done=0),
    ]


_AVG = {
    "2ff9350000000000": 16 * 1024,
    "be9c5d0000000000": 0,
    "e9ec920000000000": MiB,
    "7f12b00000000000": 106 * 1024,
    "39ec660000000000": MiB,
    "a88c360000000000": 304 * 1024,
    "876d440000000000": 106 * 1024,
}


def test_results_table_matches_aria2c():
    done = [
        dl("295ce7", 5_000_000, 5_000_000, 0, path="out/file5m.bin", status=DownloadStatus.COMPLETE)
    ]
    assert results_table(done, avg_speeds={"295ce70000000000": MiB}) == RESULTS_OK
    text = results_table(_results_downloads(), mode="full", avg_speeds=_AVG) + resume_hint()
    assert text == RESULTS_FULL


def test_results_table_default_mode_colors_and_hide():
    rows = [*_results_downloads(), dl("0a0b0c", 0, 10, 0, path="p", status=DownloadStatus.REMOVED)]
    text = results_table(rows, avg_speeds=_AVG, color=True)
    lines = text.split("\n")
    assert lines[4] == "2ff935|\x1b[1;32mOK\x1b[0m  |    16KiB/s|out/tiny.bin"
    assert lines[5] == "be9c5d|\x1b[1;31mERR\x1b[0m |       0B/s|http://127.0.0.1:47265/nothere.bin"
    assert lines[6] == "e9ec92|\x1b[1;34mINPR\x1b[0m|   1.0MiB/s|out/file5m.bin"
    assert lines[11] == "0a0b0c|\x1b[1mRM\x1b[0m  |        n/a|p"  # no average known
    assert lines[-2] == (
        "(OK):download completed.(ERR):error occurred."
        "(INPR):download in-progress.(RM):download removed."
    )
    assert results_table(rows, mode="hide") == ""
    with pytest.raises(OptionError):
        results_table(rows, mode="fancy")
    assert results_table([]) == (
        "\nDownload Results:\ngid   |stat|avg speed  |path/URI\n"
        "======+====+===========+" + "=" * 55 + "\n"
    )


def test_results_table_full_multi_file():
    torrent = DownloadStats(
        gid="abcdef0123456789",
        status=DownloadStatus.COMPLETE,
        total_length=300,
        completed_length=300,
        download_speed=0,
        files=(
            FileStats(1, "t/a", 100, 100),
            FileStats(2, "t/b", 100, 50, selected=False),
            FileStats(3, "t/c", 100, 40),
            FileStats(4, "t/empty", 0, 0),
        ),
    )
    none_selected = DownloadStats(
        gid="1111110000000000",
        status=DownloadStatus.ERROR,
        total_length=10,
        completed_length=0,
        download_speed=0,
        files=(FileStats(1, "x", 10, 0, selected=False),),
    )
    lines = results_table([torrent, none_selected], mode="full").split("\n")
    assert lines[4:8] == [
        "abcdef|OK  |        n/a|100|t/a",
        "   |    |           | 40|t/c",  # aria2's (misaligned) continuation prefix
        "   |    |           |  -|t/empty",
        "111111|ERR |        n/a|  -|n/a",
    ]
    default = results_table([torrent], avg_speeds={torrent.gid: 5000 * 1024**3}).split("\n")
    assert default[4] == "abcdef|OK  | 5,000GiB/s|t/a (2more)"  # setw(8) + "B/s"


# --- the trio driver --------------------------------------------------------------------------


def _progress(gid: str, done: int) -> EngineStats:
    return engine(dl(gid, done, 5_000_000, MiB, path="out/file5m.bin"), speed=MiB)


class _Feed:
    """get_stats() for a 1 MiB/s download: 1.0, 2.0, 3.0, 4.0 MiB at the ticks, as aria2c saw."""

    def __init__(self, gid: str) -> None:
        self.gid = gid
        self.calls = 0

    def __call__(self) -> EngineStats:
        self.calls += 1
        return _progress(self.gid, [1081344, 2129920, 3178496, 4227072][min(self.calls, 4) - 1])


async def _session(console_kw: dict[str, object], gid: str, start_wall: datetime) -> str:
    """Replay the aria2c session: notice, 4 s of ticks, completion notice, results table."""
    out = io.StringIO()
    t0 = trio.current_time()

    def wall() -> datetime:
        return start_wall + timedelta(seconds=trio.current_time() - t0)

    feed = _Feed(gid)
    async with trio.open_nursery() as nursery:
        console: Console = await nursery.start(
            lambda task_status: run_readout(
                feed,
                stream=out,
                summary_interval=2,
                clock=wall,
                task_status=task_status,
                **console_kw,  # type: ignore[arg-type]
            )
        )
        console.notice("notice", "Downloading 1 item(s)")
        await trio.sleep_until(t0 + 4.5)
        nursery.cancel_scope.cancel()
    await trio.sleep_until(t0 + 5)
    console.notice("notice", "Download complete: out/file5m.bin")
    done = dl(gid, 5_000_000, 5_000_000, 0, path="out/file5m.bin", status=DownloadStatus.COMPLETE)
    console.print_results([done], avg_speeds={done.gid: MiB})
    assert feed.calls == 4
    return out.getvalue()


# aria2c 1.36 -d out --summary-interval=2 http://.../slow/file5m.bin > pipe (whole output):
PIPE_SESSION = """
11/23 02:03:22 [\x1b[1;32mNOTICE\x1b[0m] Downloading 1 item(s)
[#295ce7 1.0MiB/4.7MiB(21%) CN:1 DL:1.0MiB ETA:3s]
 *** Download Progress Summary as of Mon Nov 23 02:03:24 2026 ***\x20
===============================================================================
[#295ce7 2.0MiB/4.7MiB(42%) CN:1 DL:1.0MiB ETA:2s]
FILE: out/file5m.bin
-------------------------------------------------------------------------------

[#295ce7 2.0MiB/4.7MiB(42%) CN:1 DL:1.0MiB ETA:2s]
[#295ce7 3.0MiB/4.7MiB(63%) CN:1 DL:1.0MiB ETA:1s]
 *** Download Progress Summary as of Mon Nov 23 02:03:26 2026 ***\x20
===============================================================================
[#295ce7 4.0MiB/4.7MiB(84%) CN:1 DL:1.0MiB]
FILE: out/file5m.bin
-------------------------------------------------------------------------------

[#295ce7 4.0MiB/4.7MiB(84%) CN:1 DL:1.0MiB]

11/23 02:03:27 [\x1b[1;32mNOTICE\x1b[0m] Download complete: out/file5m.bin

Download Results:
gid   |stat|avg speed  |path/URI
======+====+===========+=======================================================
295ce7|OK  |   1.0MiB/s|out/file5m.bin

Status Legend:
(OK):download completed.
"""


async def test_driver_pipe_session_matches_aria2c(autojump_clock):
    kw = {"is_tty": False, "quiet": False, "human_readable": True, "color": True, "truncate": True}
    text = await _session(kw, "295ce7", datetime(2026, 11, 23, 2, 3, 22))
    assert text == PIPE_SESSION


def _tty_session_expected() -> str:
    # aria2c 1.36 on a 100-column pty, same command: each tick wipes the line with 99 spaces.
    wipe = "\r" + " " * 99 + "\r"
    rule_eq, rule_dash = "=" * 99, "-" * 99

    def colored(done: str, pct: str, eta: str) -> str:
        tail = f" ETA:\x1b[33m{eta}\x1b[0m" if eta else ""
        return (
            f"\x1b[35m[\x1b[0m#e3557c {done}/4.7MiB\x1b[36m({pct}%)\x1b[0m CN:1 DL:"
            f"\x1b[32m1.0MiB\x1b[0m{tail}\x1b[35m]\x1b[0m\x1b[0m"
        )

    def summary(when: str, line: str) -> str:
        return (
            f" *** Download Progress Summary as of Mon Nov 23 {when} 2026 *** \n{rule_eq}\n"
            f"{line}\nFILE: out/file5m.bin\n{rule_dash}\n\n"
        )

    return (
        "\n11/23 02:03:33 [\x1b[1;32mNOTICE\x1b[0m] Downloading 1 item(s)\n"
        + wipe
        + colored("1.0MiB", "21", "3s")
        + wipe
        + summary("02:03:35", "[#e3557c 2.0MiB/4.7MiB(42%) CN:1 DL:1.0MiB ETA:2s]")
        + colored("2.0MiB", "42", "2s")
        + wipe
        + colored("3.0MiB", "63", "1s")
        + wipe
        + summary("02:03:37", "[#e3557c 4.0MiB/4.7MiB(84%) CN:1 DL:1.0MiB]")
        + colored("4.0MiB", "84", "")
        + "\n11/23 02:03:38 [\x1b[1;32mNOTICE\x1b[0m] Download complete: out/file5m.bin\n"
        "\nDownload Results:\ngid   |stat|avg speed  |path/URI\n"
        "======+====+===========+=======================================================\n"
        "e3557c|\x1b[1;32mOK\x1b[0m  |   1.0MiB/s|out/file5m.bin\n"
        "\nStatus Legend:\n(OK):download completed.\n"
    )


async def test_driver_tty_session_matches_aria2c(autojump_clock):
    kw = {
        "is_tty": True,
        "quiet": False,
        "human_readable": True,
        "color": True,
        "truncate": True,
        "columns": lambda: 100,
    }
    text = await _session(kw, "e3557c", datetime(2026, 11, 23, 2, 3, 33))
    # (aria2c's completion notice came at 02:03:37 there; our replay prints it one second later)
    assert text == _tty_session_expected()


async def test_driver_quiet_writes_nothing(autojump_clock):
    out = io.StringIO()
    feed = _Feed("aaaaaa")
    with trio.move_on_after(10):
        async with trio.open_nursery() as nursery:
            console = await nursery.start(
                lambda task_status: run_readout(
                    feed,
                    stream=out,
                    is_tty=True,
                    quiet=True,
                    human_readable=True,
                    color=True,
                    truncate=True,
                    task_status=task_status,
                )
            )
            console.notice("error", "boom")
            console.clear()
            console.print_results([dl("aaaaaa", 0, 1, 0)], incomplete=True)
    assert out.getvalue() == ""
    assert feed.calls == 0


async def test_driver_no_summary_no_readout_and_log_level(autojump_clock):
    out = io.StringIO()
    console = Console(
        out,
        is_tty=False,
        show_readout=False,
        console_log_level="warn",
        clock=lambda: datetime(2026, 1, 2, 3, 4, 5),
    )
    feed = _Feed("bbbbbb")
    with trio.move_on_after(130.5):
        await console.run(feed, summary_interval=0)
    assert feed.calls == 130
    console.notice("notice", "dropped")
    console.notice("warn", "kept")
    assert out.getvalue() == "\n01/02 03:04:05 [WARN] kept\n"
    with pytest.raises(OptionError):
        Console(out, is_tty=False, console_log_level="chatty")


async def test_driver_default_summary_interval_and_idle_engine(autojump_clock):
    # 60 s default; a summary is skipped (and stays due) while nothing is active.
    out = io.StringIO()
    states = iter([engine()] * 61 + [_progress("cccccc", 1081344)] * 100)
    console = Console(out, is_tty=False, clock=lambda: datetime(2026, 1, 2, 3, 4, 5))
    with trio.move_on_after(125.5):
        await console.run(lambda: next(states))
    text = out.getvalue()
    headers = [i for i, line in enumerate(text.splitlines()) if "*** Download" in line]
    # Due since t=60, held back while idle, printed at t=62 (first active tick), then at t=122.
    assert headers == [0, 66]
    lines = text.splitlines()
    assert lines[0] == " *** Download Progress Summary as of Fri Jan  2 03:04:05 2026 *** "
    assert lines[2] == lines[6] == "[#cccccc 1.0MiB/4.7MiB(21%) CN:1 DL:1.0MiB ETA:3s]"
    assert sum(line.startswith("[#cccccc") for line in lines) == 64 + 2  # ticks 62..125 + blocks


async def test_driver_tty_truncate_clear_and_resume_hint(autojump_clock):
    out = io.StringIO()
    cols = [30]
    console = Console(out, is_tty=True, columns=lambda: cols[0])
    console.tick(_progress("b01d47", 1081344))
    assert out.getvalue() == "\r" + " " * 29 + "\r[#b01d47 1.0MiB/4.7MiB(21%) C"
    cols[0] = 40  # a resized terminal is picked up at the next tick
    console.clear()
    assert out.getvalue().endswith("\r" + " " * 39 + "\r")
    console = Console(io.StringIO(), is_tty=True, truncate=False, columns=lambda: 30)
    console.tick(_progress("b01d47", 1081344))
    assert console._stream.getvalue().endswith("ETA:3s]")  # type: ignore[attr-defined]
    # StringIO has no terminal: the width falls back to aria2's 79.
    assert Console(io.StringIO(), is_tty=True).width() == 79
    out = io.StringIO()
    Console(out, is_tty=False).print_results(
        [dl("dddddd", 0, 10, 0)], mode="hide", incomplete=True, program="trioaria"
    )
    assert out.getvalue().startswith("\ntrioaria will resume download")
