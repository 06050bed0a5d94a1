"""aria2's console text: the readout line, the progress summary, log notices, "Download Results".

Pure formatting (no I/O, no clock): every function takes frozen :mod:`trioaria.base.stats` snapshots
and returns the exact text aria2c 1.36 writes, so the driver (:mod:`trioaria.cli.readout`) and the
CLI only decide *when* to write.

Theory of operation
-------------------
The behaviour follows aria2 ``src/ConsoleStatCalc.cc`` (readout, summary), ``src/util.cc``
(``abbrevSize``, ``secfmt``), ``src/ColorizedStream.cc`` (colours, truncation),
``src/Logger.cc`` (console log lines) and ``src/RequestGroupMan.cc`` (``showDownloadResults``),
and was checked against the real ``aria2c`` 1.36 on a TTY and through a pipe
(``tests/test_console.py`` records those outputs as literal expectations):

* Sizes: ``abbrevSize`` divides by 1024 while the value is >= 1024 (up to Gi), then promotes a
  value >= 922 to the next unit as ``0.9``; below 10 one *truncated* decimal is shown.  The
  largest unit keeps growing with thousands separators (``5,000GiB``).  With
  ``--human-readable=false`` sizes are plain byte counts.
* One active download: ``[#gid6 done/total(pct%) CN:n SD:n DL:speed UL:speed(total) ETA:t]``.
  ``SD`` only for BitTorrent, ``DL`` only while the download is unfinished, ``UL`` only after
  something was uploaded, ``ETA`` only when it is at least one second.  Several active
  downloads use aria2's compact form ``[DL:x][#gid a/b(p%)]...`` with at most five items and
  ``(+N)`` for the rest.  ``[FileAlloc:#gid a/b(p%)]`` and ``[Checksum:...]`` follow.
* Colours are segments that do not count towards the width when the line is truncated to the
  terminal, exactly as ``ColorizedStreamBuf::str(color, max)``; a coloured line always ends
  with a reset (``ESC[0m``).
* The summary block starts with a space and ends with a space after the second ``***``; its
  rules are as wide as the console (terminal columns - 1, or 79 off a terminal).
* The results legend lines are concatenated without separators, as aria2 prints them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from trioaria.base.errors import ExitCode, OptionError
from trioaria.base.stats import DownloadStats, DownloadStatus, EngineStats, FileStats

__all__ = [
    "DEFAULT_COLUMNS",
    "LOG_LEVELS",
    "format_eta",
    "format_size",
    "not_complete_messages",
    "notice_line",
    "notice_time_text",
    "readout_line",
    "results_table",
    "resume_hint",
    "summary_block",
    "summary_time_text",
]

#: Console width aria2 uses off a terminal (and when the terminal size is unknown).
DEFAULT_COLUMNS = 79

#: ``--console-log-level`` values, lowest first (aria2 ``Logger::LEVEL``).
LOG_LEVELS = ("debug", "info", "notice", "warn", "error")

# ANSI SGR sequences, as aria2 ``ColorizedStream.cc``.
_MAGENTA = "\033[35m"
_CYAN = "\033[36m"
_GREEN = "\033[32m"
_YELLOW = "\033[33m"
_CLEAR = "\033[0m"

_LEVEL_COLORS = {
    "DEBUG": "\033[1;37m",
    "INFO": "\033[1;36m",
    "NOTICE": "\033[1;32m",
    "WARN": "\033[1;33m",
    "ERROR": "\033[1;31m",
}

_UNITS = ("", "Ki", "Mi", "Gi")
_MAX_COMPACT_ITEMS = 5
_PATH_ROW = 55


# --- sizes and times ------------------------------------------------------------------------


def _abbrev(size: int) -> str:
    """aria2 ``util::abbrevSize`` (without the trailing ``B``)."""
    t = size
    unit = 0
    rem = 0
    while t >= 1024 and unit + 1 < len(_UNITS):
        t, rem = divmod(t, 1024)
        unit += 1
    if unit + 1 < len(_UNITS) and t >= 922:
        # "0.9Mi" reads better than "1023Ki" (and keeps the field four digits wide).
        unit += 1
        rem = t
        t = 0
    text = f"{t:,}"
    if t < 10 and unit > 0:
        text += f".{rem * 10 // 1024}"
    return text + _UNITS[unit]


def format_size(n: int, human: bool = True) -> str:
    """Format a byte count (or bytes per second) the way aria2's console does.

    Args:
        n: the number of bytes.
        human: ``--human-readable``: abbreviate with KiB/MiB/GiB; otherwise the plain count.

    Returns:
        ``"1.0MiB"``, ``"0.9MiB"``, ``"608KiB"``, ``"5,000GiB"``; ``"1048576B"`` when not
        human-readable.  Negative values (never produced by the engine) keep their sign.
    """
    if n < 0:
        return "-" + format_size(-n, human)
    if not human:
        return f"{n}B"
    return _abbrev(n) + "B"


def format_eta(seconds: float | None) -> str:
    """aria2 ``util::secfmt``: ``1h2m3s``, ``4m20s``, ``3s``, ``0s``.

    Fractions are truncated (aria2 works in whole seconds); ``None`` (unknown) gives ``""``
    and negative values are treated as 0.
    """
    if seconds is None:
        return ""
    sec = max(0, int(seconds))
    total = sec
    text = ""
    if sec >= 3600:
        text = f"{sec // 3600}h"
        sec %= 3600
    if sec >= 60:
        text += f"{sec // 60}m"
        sec %= 60
    if sec or total == 0:
        text += f"{sec}s"
    return text


def notice_time_text(moment: datetime) -> str:
    """The ``MM/DD HH:MM:SS`` stamp of aria2's console log lines (local time of ``moment``)."""
    return moment.strftime("%m/%d %H:%M:%S")


def summary_time_text(moment: datetime) -> str:
    """The ``asctime`` stamp of the summary header, e.g. ``Mon Nov  3 02:03:24 2026``."""
    return moment.ctime()


# --- coloured segments ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Color:
    code: str


_Segment: TypeAlias = str | _Color


def _render(parts: Sequence[_Segment], *, color: bool, width: int | None = None) -> str:
    """``ColorizedStreamBuf::str``: drop or keep colours; cut text (not colours) to ``width``."""
    out: list[str] = []
    room = width
    for part in parts:
        if isinstance(part, _Color):
            if color:
                out.append(part.code)
            continue
        if room is None:
            out.append(part)
            continue
        if not part:
            continue
        if len(part) > room:
            out.append(part[:room])
            break
        out.append(part)
        room -= len(part)
        if room == 0:
            break
    if color:
        out.append(_CLEAR)
    return "".join(out)


# --- readout ----------------------------------------------------------------------------------


def _opt_int(stats: object, name: str) -> int | None:
    """An optional integer field a newer :mod:`trioaria.base.stats` may carry (BitTorrent extras)."""
    value = getattr(stats, name, None)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _gid6(gid: str) -> str:
    return gid[:6]


def _total(d: DownloadStats) -> int:
    return d.total_length if d.total_length is not None else 0


def _finished(d: DownloadStats) -> bool:
    total = d.total_length
    return d.status is DownloadStatus.COMPLETE or (
        total is not None and total > 0 and d.completed_length >= total
    )


def _size_progress(d: DownloadStats, human: bool) -> list[_Segment]:
    if getattr(d, "seeder", False) is True:
        uploaded = _opt_int(d, "upload_length") or 0
        if d.completed_length > 0:
            ratio = (uploaded * 10 // d.completed_length) / 10.0
            return [f"SEED({ratio:.1f})"]
        return ["SEED(--)"]
    total = _total(d)
    parts: list[_Segment] = [
        f"{format_size(d.completed_length, human)}/{format_size(total, human)}"
    ]
    if total > 0:
        parts += [_Color(_CYAN), f"({100 * d.completed_length // total}%)", _Color(_CLEAR)]
    return parts


def _progress(d: DownloadStats, human: bool) -> list[_Segment]:
    """aria2 ``printProgress``: the full ``[#gid ...]`` item of one download."""
    total = _total(d)
    eta = 0
    if total > 0 and d.download_speed > 0:
        eta = (total - d.completed_length) // d.download_speed
    parts: list[_Segment] = [_Color(_MAGENTA), "[", _Color(_CLEAR), f"#{_gid6(d.gid)} "]
    parts += _size_progress(d, human)
    parts.append(f" CN:{d.connections}")
    seeders = _opt_int(d, "num_seeders")
    if seeders is not None:
        parts.append(f" SD:{seeders}")
    if not _finished(d):
        parts += [" DL:", _Color(_GREEN), format_size(d.download_speed, human), _Color(_CLEAR)]
    uploaded = _opt_int(d, "upload_length")
    if (uploaded is not None and uploaded > 0) or (uploaded is None and d.upload_speed > 0):
        parts += [" UL:", _Color(_CYAN), format_size(d.upload_speed, human), _Color(_CLEAR)]
        if uploaded is not None:
            parts.append(f"({format_size(uploaded, human)})")
    if eta > 0:
        parts += [" ETA:", _Color(_YELLOW), format_eta(eta), _Color(_CLEAR)]
    parts += [_Color(_MAGENTA), "]", _Color(_CLEAR)]
    return parts


def _compact(engine: EngineStats, active: Sequence[DownloadStats], human: bool) -> list[_Segment]:
    """aria2 ``printProgressCompact``: ``[DL:x UL:y][#gid a/b(p%)]...(+N)``."""
    parts: list[_Segment] = [_Color(_MAGENTA), "[", _Color(_CLEAR), "DL:", _Color(_GREEN)]
    parts += [format_size(engine.download_speed, human), _Color(_CLEAR)]
    if engine.upload_speed:
        parts += [" UL:", _Color(_CYAN), format_size(engine.upload_speed, human), _Color(_CLEAR)]
    parts += [_Color(_MAGENTA), "]", _Color(_CLEAR)]
    for d in active[:_MAX_COMPACT_ITEMS]:
        parts += [_Color(_MAGENTA), "[", _Color(_CLEAR), f"#{_gid6(d.gid)} "]
        parts += _size_progress(d, human)
        parts += [_Color(_MAGENTA), "]", _Color(_CLEAR)]
    if len(active) > _MAX_COMPACT_ITEMS:
        parts.append(f"(+{len(active) - _MAX_COMPACT_ITEMS})")
    return parts


def _phase_parts(engine: EngineStats, phase: str, human: bool) -> list[_Segment]:
    """`` [FileAlloc:#gid a/b(p%)](+N)``: the first download in ``phase``, the rest queued."""
    busy = [d for d in engine.downloads if d.phase == phase]
    if not busy:
        return []
    d = busy[0]
    pct = str(100 * d.phase_done // d.phase_total) if d.phase_total > 0 else "--"
    text = (
        f" [{phase}:#{_gid6(d.gid)} {format_size(d.phase_done, human)}/"
        f"{format_size(d.phase_total, human)}({pct}%)]"
    )
    if len(busy) > 1:
        text += f"(+{len(busy) - 1})"
    return [text]


def _active(engine: EngineStats) -> list[DownloadStats]:
    return [d for d in engine.downloads if d.status is DownloadStatus.ACTIVE]


def readout_line(
    engine: EngineStats,
    *,
    human_readable: bool = True,
    color: bool = False,
    width: int | None = None,
) -> str:
    """The one-line readout aria2 redraws every second (without ``\\r`` or newline).

    Args:
        engine: the snapshot; only ``ACTIVE`` downloads are shown (aria2's request groups).
        human_readable: ``--human-readable``.
        color: emit aria2's ANSI colours (the caller checks ``--enable-color`` *and* a TTY).
        width: ``--truncate-console-readout``: cut the visible text to this many characters
            (aria2 passes the terminal's columns - 1); colour codes do not count.

    Returns:
        e.g. ``[#2089b0 400MiB/1.0GiB(39%) CN:16 DL:120MiB ETA:5s]``; ``""`` (or a lone colour
        reset) when nothing is active.
    """
    active = _active(engine)
    parts: list[_Segment] = []
    if len(active) == 1:
        parts += _progress(active[0], human_readable)
    elif len(active) > 1:
        parts += _compact(engine, active, human_readable)
    parts += _phase_parts(engine, "FileAlloc", human_readable)
    parts += _phase_parts(engine, "Checksum", human_readable)
    return _render(parts, color=color, width=width)


# --- summary ----------------------------------------------------------------------------------


def _first_uri(d: DownloadStats) -> str:
    return d.sources[0].uri if d.sources else ""


def _selected_files(d: DownloadStats) -> list[FileStats]:
    if not d.files:
        # A download whose file list is not known yet still has one (unnamed) file in aria2.
        return [FileStats(1, d.path, _total(d), d.completed_length)]
    return [f for f in d.files if f.selected]


def _file_path(d: DownloadStats, f: FileStats) -> str:
    """aria2 ``writeFilePath(o, entry, memory)``: the path, else the first URI, else n/a."""
    if f.path:
        return f.path
    return _first_uri(d) or "n/a"


def _download_path(d: DownloadStats) -> str:
    """aria2 ``writeFilePath(first, last, ...)``: first requested file plus ``(Nmore)``."""
    files = _selected_files(d)
    if not files:
        return "n/a"
    text = _file_path(d, files[0])
    if files[0].path and len(files) > 1:
        text += f" ({len(files) - 1}more)"
    return text


def summary_block(
    engine: EngineStats,
    now_text: str,
    *,
    width: int = DEFAULT_COLUMNS,
    human_readable: bool = True,
) -> str:
    """The ``*** Download Progress Summary ***`` block aria2 prints every ``--summary-interval``.

    Args:
        engine: the snapshot; one entry per ``ACTIVE`` download.
        now_text: the local time in ``asctime`` form (see :func:`summary_time_text`).
        width: the rule width (terminal columns - 1 on a TTY, 79 otherwise).
        human_readable: ``--human-readable``.

    Returns:
        The block including the blank line aria2 writes after it, or ``""`` when no download
        is active (aria2 prints nothing then).
    """
    active = _active(engine)
    if not active:
        return ""
    lines = [f" *** Download Progress Summary as of {now_text} *** ", "=" * width]
    for d in active:
        lines.append(_render(_progress(d, human_readable), color=False))
        lines.append(f"FILE: {_download_path(d)}")
        lines.append("-" * width)
    return "\n".join(lines) + "\n\n"


# --- console log lines ------------------------------------------------------------------------


def notice_line(level: str, message: str, now_text: str, *, color: bool = False) -> str:
    """One console log line as aria2 ``Logger::writeLog`` prints it (without the newlines).

    aria2 writes ``"\\n"`` before and ``"\\n"`` after this text; the driver adds them.

    Args:
        level: ``debug``/``info``/``notice``/``warn``/``error`` (any case).
        message: the message; may span lines (an exception trace).
        now_text: ``MM/DD HH:MM:SS`` (see :func:`notice_time_text`).
        color: colour the level tag (aria2 does this whenever ``--enable-color`` is true).

    Returns:
        e.g. ``11/23 02:03:27 [NOTICE] Download complete: out/file5m.bin``.

    Raises:
        OptionError: ``level`` is not one of aria2's levels.
    """
    tag = level.upper()
    if tag.lower() not in LOG_LEVELS:
        raise OptionError(f"unknown log level {level!r}")
    if color:
        return f"{now_text} [{_LEVEL_COLORS[tag]}{tag}{_CLEAR}] {message}"
    return f"{now_text} [{tag}] {message}"


# --- Download Results -------------------------------------------------------------------------

_STATUS_TEXT = {
    "OK": ("OK  ", "\033[1;32mOK\033[0m  "),
    "INPR": ("INPR", "\033[1;34mINPR\033[0m"),
    "RM": ("RM  ", "\033[1mRM\033[0m  "),
    "ERR": ("ERR ", "\033[1;31mERR\033[0m "),
}

_LEGEND = {
    "OK": "(OK):download completed.",
    "ERR": "(ERR):error occurred.",
    "INPR": "(INPR):download in-progress.",
    "RM": "(RM):download removed.",
}


def _status_key(d: DownloadStats) -> str:
    if d.status is DownloadStatus.COMPLETE:
        return "OK"
    if d.status is DownloadStatus.REMOVED:
        return "RM"
    if d.status is DownloadStatus.ERROR:
        # aria2 keys the row by the result code: a download that stopped unfinished without
        # failing (--bt-stop-timeout: IN_PROGRESS, 7) is INPR, while RPC still says "error"
        return "INPR" if d.error_code == ExitCode.IN_PROGRESS else "ERR"
    return "INPR"


def _row_head(d: DownloadStats, status: str, avg_speeds: Mapping[str, int] | None) -> str:
    """aria2 ``formatDownloadResultCommon``: ``gid6|stat|avg speed|``."""
    speed = None if avg_speeds is None else avg_speeds.get(d.gid)
    speed_text = "        n/a" if speed is None else f"{_abbrev(speed):>8}B/s"
    return f"{_gid6(d.gid)}|{status}|{speed_text}|"


def _full_rows(d: DownloadStats, status: str, avg_speeds: Mapping[str, int] | None) -> list[str]:
    rows: list[str] = []
    for f in _selected_files(d):
        head = _row_head(d, status, avg_speeds) if not rows else "   |    |           |"
        if f.length == 0 or d.total_length is None:
            pct = "  -"
        else:
            pct = f"{100 * f.completed_length // f.length:>3}"
        rows.append(f"{head}{pct}|{_file_path(d, f)}")
    if not rows:
        rows.append(f"{_row_head(d, status, avg_speeds)}  -|n/a")
    rows.extend(_source_rows(d))
    return rows


def _source_rows(d: DownloadStats) -> list[str]:
    """trioaria's extension to ``full``: with several mirrors, the bytes each one served and
    its share (``   |    |           |   |  <uri>: <bytes> bytes (<share>%)``).  A download
    with one source prints nothing more, so its table stays aria2c's."""
    if len(d.sources) < 2:
        return []
    total = sum(s.bytes_downloaded for s in d.sources)
    rows = []
    for s in d.sources:
        share = 100 * s.bytes_downloaded // total if total else 0
        rows.append(f"   |    |           |   |  {s.uri}: {s.bytes_downloaded} bytes ({share}%)")
    return rows


def results_table(
    downloads: Sequence[DownloadStats],
    *,
    mode: str = "default",
    avg_speeds: Mapping[str, int] | None = None,
    color: bool = False,
) -> str:
    """The "Download Results" table aria2 prints at exit (``--download-result``).

    Args:
        downloads: finished, failed, removed and unfinished downloads, in aria2's order.
            COMPLETE -> ``OK``, ERROR -> ``ERR`` (``INPR`` when its code is 7, IN_PROGRESS,
            as for ``--bt-stop-timeout``), REMOVED -> ``RM``, anything else (stopped by
            Ctrl-C) -> ``INPR``.
        mode: ``default``, ``full`` (one line per selected file with its %, then -- a
            trioaria extension -- one line per mirror with the bytes it served when a
            download has several) or ``hide``.
        avg_speeds: session average download speed per GID (bytes/s); a GID missing here is
            shown as ``n/a``, as aria2 does for a zero session time.
        color: colour the status column (caller checks ``--enable-color`` and a TTY).

    Returns:
        The text exactly as aria2 writes it, starting with its leading newline; ``""`` for
        ``hide``.

    Raises:
        OptionError: ``mode`` is not ``default``/``full``/``hide``.
    """
    if mode == "hide":
        return ""
    if mode not in ("default", "full"):
        raise OptionError(f"--download-result must be default, full or hide, not {mode!r}")
    full = mode == "full"
    out = ["\nDownload Results:\ngid   |stat|avg speed  |"]
    if full:
        out.append("  %|path/URI\n======+====+===========+===+" + "=" * (_PATH_ROW - 4) + "\n")
    else:
        out.append("path/URI\n======+====+===========+" + "=" * _PATH_ROW + "\n")
    seen: dict[str, int] = {}
    for d in downloads:
        key = _status_key(d)
        seen[key] = seen.get(key, 0) + 1
        status = _STATUS_TEXT[key][1 if color else 0]
        if full:
            out.extend(row + "\n" for row in _full_rows(d, status, avg_speeds))
        else:
            out.append(f"{_row_head(d, status, avg_speeds)}{_download_path(d)}\n")
    if seen:
        out.append("\nStatus Legend:\n")
        out.extend(_LEGEND[key] for key in ("OK", "ERR", "INPR", "RM") if key in seen)
        out.append("\n")
    return "".join(out)


def not_complete_messages(downloads: Sequence[DownloadStats]) -> list[str]:
    """aria2's ``Download GID#<gid> not complete: <path>`` notices (``RequestGroupMan``), written
    before the results when downloads stopped unfinished (Ctrl-C, ``--stop``, an error).

    aria2 writes one for every stopped download that did not finish, with an empty path when
    none was chosen yet; trioaria leaves out those without a path (nothing to resume) and the
    removed ones.
    """
    return [
        f"Download GID#{d.gid} not complete: {d.path}"
        for d in downloads
        if d.path and _status_key(d) in ("INPR", "ERR")
    ]


def resume_hint(program: str = "aria2") -> str:
    """The note aria2 prints after the table when not everything completed (leading newline)."""
    return (
        f"\n{program} will resume download if the transfer is restarted.\n"
        "If there are any errors, then see the log file. "
        "See '-l' option in help/man page for details.\n"
    )
