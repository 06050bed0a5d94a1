"""The ``trioaria`` command: argv → Options → DownloadEngine under ``trio.run`` → exit status.

Exit statuses are aria2's (``errors.ExitCode``).  Signals follow aria2
(``src/MultiUrlRequestInfo.cc``): the first SIGINT shuts down gracefully (control files saved,
exit 7 if anything is unfinished); a second SIGINT, or SIGTERM/SIGHUP, forces shutdown (control
files are still saved: that costs milliseconds and protects the user's bytes).

``--version`` is answered before trio or h11 is imported, so it stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ._version import __version__

__all__ = ["main"]

# aria2 -v prints these lines; ours lists what trioaria really has.
_FEATURES = "Async DNS, HTTPS, Checksum, Message Digest"


def _version_text() -> str:
    return (
        f"trioaria version {__version__}\n"
        "A pure-Python re-implementation of aria2 on trio.\n"
        "\n"
        f"Enabled Features: {_FEATURES}\n"
        "Hash Algorithms: sha-1, sha-224, sha-256, sha-384, sha-512, md5, adler32\n"
        f"Python: {sys.version.split()[0]}\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script and ``python -m trioaria``."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in ("-v", "--version"):
        sys.stdout.write(_version_text())
        return 0
    from .errors import ExitCode, TrioariaError

    try:
        opts, uris = _load_options(args)
    except TrioariaError as exc:
        sys.stderr.write(f"{exc}\n")
        return int(exc.exit_code)
    if opts.is_set("help"):
        from .help import render_help

        sys.stdout.write(render_help(opts.get("help"), opts))
        return 0
    if opts.is_set("version"):
        sys.stdout.write(_version_text())
        return 0
    try:
        entries = _download_entries(opts, uris)
    except TrioariaError as exc:
        sys.stderr.write(f"{exc}\n")
        return int(exc.exit_code)
    if not entries:
        sys.stderr.write(
            "Specify at least one URL.\nUsage: trioaria [OPTIONS] [URI | MAGNET | TORRENT_FILE |"
            " METALINK_FILE]...\nSee 'trioaria -h'.\n"
        )
        return int(ExitCode.UNKNOWN_ERROR)
    routed = _setup_logging(opts)
    import trio

    from .engine import DownloadEngine

    engine = DownloadEngine(opts)
    return trio.run(_amain, engine, opts, entries, routed)


def _warn(message: str) -> None:
    sys.stderr.write(f"[WARN] {message}\n")


def _load_options(args: list[str]) -> tuple[Any, list[str]]:
    """Command line > conf file > environment defaults > aria2's defaults."""
    from .options import (
        build_options,
        conf_file_candidates,
        dynamic_defaults,
        parse_argv,
        parse_conf_file,
    )

    argv_opts, uris = parse_argv(args)
    home = os.path.expanduser("~")
    conf_opts: dict[str, str] = {}
    if argv_opts.get("no-conf", "false") != "true":
        path = argv_opts.get("conf-path")
        candidates = [path] if path else conf_file_candidates(os.environ)
        for cand in candidates:
            if cand and os.path.isfile(cand):

                def unknown(name: str, where: str = cand) -> None:
                    _warn(f"unknown option {name!r} in {where}")

                with open(cand, encoding="utf-8", errors="replace") as f:
                    conf_opts = parse_conf_file(
                        f.read(),
                        home=home,
                        where=cand,
                        on_unknown=unknown,
                    )
                break
    base = dynamic_defaults(os.environ, cwd=os.getcwd(), exists=os.path.exists)
    opts = build_options(argv_opts, conf_opts, base=base, home=home)
    _warn_unsupported(opts)
    return opts, uris


def _warn_unsupported(opts: Any) -> None:
    """One warning per explicitly set option that is accepted but not implemented yet."""
    from .option_table import OPTIONS
    from .options import UNSUPPORTED_WARNING

    for name in opts.explicit_names():
        spec = OPTIONS.get(name)
        if spec is not None and not spec.implemented:
            _warn(UNSUPPORTED_WARNING(name))


def _download_entries(opts: Any, uris: list[str]) -> list[tuple[list[str], Any]]:
    """Turn positional URIs and ``-i`` lines into ``(mirror_uris, options)`` pairs."""
    entries: list[tuple[list[str], Any]] = []
    if uris:
        if opts.get("force-sequential"):
            entries.extend(([u], opts) for u in uris)
        else:
            entries.append((list(uris), opts))
    input_file = opts.get("input-file")
    if input_file:
        from .options import parse_input_file

        if input_file == "-":
            text = sys.stdin.read()
        else:
            with open(input_file, encoding="utf-8", errors="replace") as f:
                text = f.read()
        entries_in = parse_input_file(
            text, on_unknown=lambda name: _warn(f"option {name!r} is not valid in an input file")
        )
        for entry in entries_in:
            entries.append((list(entry.uris), opts.with_overrides(entry.options)))
    return entries


_LEVELS = {"debug": 10, "info": 20, "notice": 25, "warn": 30, "error": 40}


class _ConsoleHandler:
    """Routes trioaria's log records to the console as aria2-style notice lines."""

    def __init__(self) -> None:
        self.console: Any = None

    def make(self, level: int) -> Any:
        import logging

        outer = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                name = {25: "notice", 30: "warn"}.get(record.levelno, record.levelname.lower())
                if outer.console is not None:
                    outer.console.notice(name, record.getMessage())
                else:
                    sys.stderr.write(f"[{name.upper()}] {record.getMessage()}\n")

        handler = Handler()
        handler.setLevel(level)
        return handler


def _setup_logging(opts: Any) -> _ConsoleHandler:
    import logging

    logging.addLevelName(25, "NOTICE")
    root = logging.getLogger("trioaria")
    root.setLevel(logging.DEBUG)
    root.propagate = False
    for old in list(root.handlers):
        root.removeHandler(old)
    routed = _ConsoleHandler()
    if not opts.get("quiet"):
        root.addHandler(routed.make(_LEVELS.get(opts.get("console-log-level"), 25)))
    else:  # -q: nothing at all, not even logging's last-resort handler on stderr
        root.addHandler(logging.NullHandler())
    log_path = opts.get("log")
    if log_path:
        handler: logging.Handler
        handler = (
            logging.StreamHandler(sys.stdout) if log_path == "-" else logging.FileHandler(log_path)
        )
        handler.setLevel(_LEVELS.get(opts.get("log-level"), 10))
        handler.setFormatter(
            logging.Formatter("%(asctime)s [%(levelname)s] [%(name)s] %(message)s")
        )
        root.addHandler(handler)
    return routed


async def _amain(
    engine: Any, opts: Any, entries: list[tuple[list[str], Any]], routed: _ConsoleHandler
) -> int:
    import signal

    import trio

    from .group import RequestGroup

    for uris, entry_opts in entries:
        gid = entry_opts.get("gid") if entry_opts.is_set("gid") else None
        engine.add(RequestGroup(uris, entry_opts, gid=gid))

    quiet = bool(opts.get("quiet"))
    out = sys.stdout
    # Signals after the receiver closes (downloads stopped, results being printed) are
    # ignored: the receiver restores SIG_IGN, redelivers pending signals into it, and CPython
    # keeps SIG_IGN at interpreter exit (a Python-level handler would be reset to SIG_DFL
    # there).  Otherwise a repeated Ctrl-C killed us with a KeyboardInterrupt traceback.
    # The receiver also encloses the nursery, so watch_signals ends before it closes.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as sigs:
        async with trio.open_nursery() as nursery:

            async def watch_signals() -> None:
                async for signum in sigs:
                    if signum == signal.SIGINT and not engine.is_shutting_down:
                        if not quiet:
                            out.write(
                                "\nShutdown sequence commencing... Press Ctrl-C again for"
                                " emergency shutdown.\n"
                            )
                            out.flush()
                        engine.shutdown()
                    else:
                        engine.shutdown(force=True)

            nursery.start_soon(watch_signals)
            stop_after = opts.get("stop")
            if stop_after:

                async def stop_timer() -> None:
                    await trio.sleep(stop_after)
                    engine.shutdown()

                nursery.start_soon(stop_timer)
            from .readout import run_readout

            console = await nursery.start(
                lambda task_status=trio.TASK_STATUS_IGNORED: run_readout(
                    engine.statistics,
                    stream=out,
                    is_tty=out.isatty(),
                    summary_interval=opts.get("summary-interval"),
                    quiet=quiet,
                    human_readable=bool(opts.get("human-readable")),
                    color=bool(opts.get("enable-color")),
                    truncate=bool(opts.get("truncate-console-readout")),
                    show_readout=bool(opts.get("show-console-readout")),
                    console_log_level=opts.get("console-log-level"),
                    task_status=task_status,
                )
            )
            routed.console = console
            await engine.run()
            nursery.cancel_scope.cancel()
    code: int = engine.exit_code()
    _print_results(engine, opts, console, incomplete=code == 7)
    routed.console = None
    return code


def _print_results(engine: Any, opts: Any, console: Any, *, incomplete: bool) -> None:
    groups = engine.all_groups()
    if opts.get("quiet") or not groups:
        return
    console.print_results(
        [g.statistics() for g in groups],
        mode=opts.get("download-result"),
        avg_speeds={g.gid: g.average_speed() for g in groups},
        incomplete=incomplete,
        program="trioaria",
    )
    out = sys.stdout
    out.flush()
