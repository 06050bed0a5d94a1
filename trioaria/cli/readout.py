"""The console driver: redraws aria2's readout, prints summaries, notices and the results table.

This is the thin trio side of :mod:`trioaria.cli.console` (which does all the formatting).  It
follows aria2 ``ConsoleStatCalc::calculateStat`` and ``Logger::writeLog``:

* Every ``interval`` (1 s, as aria2) one *tick*: on a TTY the line is wiped with ``"\\r"``,
  ``columns - 1`` spaces and ``"\\r"``; then, when ``--summary-interval`` seconds have passed
  since the last one (or since the start) and a download is active, the summary block; then the
  readout line (``--show-console-readout``), redrawn in place on a TTY and written as its own
  line through a pipe (aria2 does the same: a piped aria2c logs one readout line per second).
* A notice is written as ``"\\n" + line + "\\n"`` exactly like aria2, which leaves the last
  readout visible above it; :meth:`Console.clear` wipes the line instead when a caller prefers.
* ``-q`` silences everything; colours need ``--enable-color`` and a TTY for the readout and
  the table (aria2 colours the log level tag whenever ``--enable-color`` is on).

The console's time stamps come from an injectable wall clock (``datetime.now``); the tick
schedule uses :func:`trio.current_time`, so tests drive it with ``MockClock``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TextIO

import trio

from trioaria.base.errors import OptionError
from trioaria.base.stats import DownloadStats, EngineStats
from trioaria.cli.console import (
    DEFAULT_COLUMNS,
    LOG_LEVELS,
    notice_line,
    notice_time_text,
    readout_line,
    results_table,
    resume_hint,
    summary_block,
    summary_time_text,
)

__all__ = ["Console", "run_readout", "terminal_columns"]

# aria2 treats an interval as elapsed 10 ms early (A2_DELTA_MILLIS), so a 60 s summary is not
# pushed to the next tick by scheduling jitter.
_SLACK = 0.01


def terminal_columns(stream: TextIO) -> int | None:
    """The terminal width of ``stream``, or ``None`` when it is not a terminal."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return None


class Console:
    """Everything aria2 writes to its console, for one output stream.

    Args:
        stream: where to write (stdout, or stderr with ``--stderr``).
        is_tty: whether ``stream`` is a terminal (readout redrawn in place, colours allowed).
        quiet: ``-q``: write nothing at all.
        human_readable: ``--human-readable``.
        color: ``--enable-color``.
        truncate: ``--truncate-console-readout``: cut the readout to the terminal width.
        show_readout: ``--show-console-readout``.
        console_log_level: ``--console-log-level``: notices below it are dropped.
        columns: returns the terminal width (``None`` if unknown); defaults to asking
            ``stream``'s file descriptor.  Read on every tick, so resizing works.
        clock: the wall clock for time stamps (local time).
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        is_tty: bool,
        quiet: bool = False,
        human_readable: bool = True,
        color: bool = False,
        truncate: bool = True,
        show_readout: bool = True,
        console_log_level: str = "notice",
        columns: Callable[[], int | None] | None = None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        if console_log_level.lower() not in LOG_LEVELS:
            raise OptionError(f"unknown --console-log-level {console_log_level!r}")
        self._stream = stream
        self._is_tty = is_tty
        self._quiet = quiet
        self._human = human_readable
        self._color = color
        self._truncate = truncate
        self._show_readout = show_readout
        self._min_level = LOG_LEVELS.index(console_log_level.lower())
        self._columns = columns if columns is not None else lambda: terminal_columns(stream)
        self._clock = clock
        self._gone = False  # the stream's reader went away: nothing more is written

    def width(self) -> int:
        """aria2's console width: terminal columns - 1 on a TTY, otherwise 79."""
        if self._is_tty:
            cols = self._columns()
            if cols is not None:
                return max(0, cols - 1)
        return DEFAULT_COLUMNS

    def _write(self, text: str) -> None:
        if self._gone:
            return
        try:
            try:
                self._stream.write(text)
            except UnicodeEncodeError:  # a name the console's encoding cannot show
                encoding = getattr(self._stream, "encoding", None) or "ascii"
                self._stream.write(
                    text.encode(encoding, "backslashreplace").decode(encoding, "replace")
                )
            self._stream.flush()
        except BrokenPipeError:
            # the reader went away (``trioaria URI | head -c 10``): as aria2, which ignores
            # SIGPIPE, the console goes quiet and the download goes on
            self._gone = True
            _silence(self._stream)
        except ValueError:  # the stream was closed
            self._gone = True

    def clear(self) -> None:
        """Wipe the readout line on a TTY (``\\r``, spaces to the width, ``\\r``)."""
        if self._is_tty and not self._quiet:
            self._write(f"\r{' ' * self.width()}\r")

    def notice(self, level: str, message: str) -> None:
        """Write one console log line, as aria2: ``\\nMM/DD HH:MM:SS [LEVEL] message\\n``.

        Raises:
            OptionError: ``level`` is not an aria2 log level.
        """
        line = notice_line(level, message, notice_time_text(self._clock()), color=self._color)
        if self._quiet or LOG_LEVELS.index(level.lower()) < self._min_level:
            return
        self._write(f"\n{line}\n")

    def tick(self, stats: EngineStats, *, summary: bool = False) -> bool:
        """One redraw: wipe (TTY), the summary block if ``summary``, then the readout line.

        Returns:
            Whether a summary block was written (aria2 skips it while nothing is active).
        """
        if self._quiet:
            return False
        width = self.width()
        out: list[str] = []
        if self._is_tty:
            out.append(f"\r{' ' * width}\r")
        block = ""
        if summary:
            block = summary_block(
                stats, summary_time_text(self._clock()), width=width, human_readable=self._human
            )
            out.append(block)
        if self._show_readout:
            line = readout_line(
                stats,
                human_readable=self._human,
                color=self._color and self._is_tty,
                width=width if (self._truncate and self._is_tty) else None,
            )
            if self._is_tty:
                out.append(line)
            elif line:
                # aria2 would print an empty line here when nothing is active; we do not.
                out.append(line + "\n")
        if out:
            self._write("".join(out))
        return bool(block)

    def print_results(
        self,
        downloads: Sequence[DownloadStats],
        *,
        mode: str = "default",
        avg_speeds: Mapping[str, int] | None = None,
        incomplete: bool = False,
        program: str = "aria2",
    ) -> None:
        """Write the "Download Results" table (and the resume hint when ``incomplete``)."""
        if self._quiet:
            return
        text = results_table(
            downloads,
            mode=mode,
            avg_speeds=avg_speeds,
            color=self._color and self._is_tty,
        )
        if incomplete:
            text += resume_hint(program)
        if text:
            self._write(text)

    async def run(
        self,
        get_stats: Callable[[], EngineStats],
        *,
        interval: float = 1.0,
        summary_interval: float = 60.0,
    ) -> None:
        """Tick every ``interval`` seconds until cancelled.

        Args:
            get_stats: returns a fresh snapshot (called once per tick).
            interval: redraw period; aria2 uses 1 s.
            summary_interval: ``--summary-interval``; 0 disables the summary.
        """
        if self._quiet:
            await trio.sleep_forever()
        start = trio.current_time()
        last_summary = start
        deadline = start + interval
        while True:
            await trio.sleep_until(deadline)
            now = trio.current_time()
            stats = get_stats()
            due = summary_interval > 0 and now - last_summary + _SLACK >= summary_interval
            if self.tick(stats, summary=due):
                last_summary = now
            deadline = max(deadline + interval, now)


async def run_readout(
    get_stats: Callable[[], EngineStats],
    *,
    stream: TextIO,
    is_tty: bool,
    interval: float = 1.0,
    summary_interval: float = 60.0,
    quiet: bool,
    human_readable: bool,
    color: bool,
    truncate: bool,
    show_readout: bool = True,
    console_log_level: str = "notice",
    columns: Callable[[], int | None] | None = None,
    clock: Callable[[], datetime] = datetime.now,
    task_status: trio.TaskStatus[Console] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run aria2's console readout until cancelled; ``nursery.start`` returns the :class:`Console`.

    The started :class:`Console` is what the CLI uses for notices (``console.notice(...)``),
    ``console.clear()`` and, after the engine stopped, ``console.print_results(...)``.
    Arguments are :class:`Console`'s and :meth:`Console.run`'s.
    """
    console = Console(
        stream,
        is_tty=is_tty,
        quiet=quiet,
        human_readable=human_readable,
        color=color,
        truncate=truncate,
        show_readout=show_readout,
        console_log_level=console_log_level,
        columns=columns,
        clock=clock,
    )
    task_status.started(console)
    await console.run(get_stats, interval=interval, summary_interval=summary_interval)


def _silence(stream: TextIO) -> None:
    """Point a stream whose reader went away at /dev/null, so that the flush at exit (and
    anything else still writing to it) does not fail again."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
