"""The ``trioaria`` command: argv → Options → DownloadEngine under ``trio.run`` → exit status.

Follows aria2's ``src/option_processing.cc`` (configuration file, ``--conf-path``,
``--no-conf``), ``src/Context.cc`` and ``src/download_helper.cc`` (which URIs become which
downloads) and ``src/MultiUrlRequestInfo.cc`` (signals, exit status):

* **Options**: command line > ``aria2.conf`` > environment defaults > aria2's defaults.  The
  configuration file is ``--conf-path``, else ``$HOME/.aria2/aria2.conf`` if it exists, else
  ``$XDG_CONFIG_HOME/aria2/aria2.conf``; ``--no-conf`` skips it.  An explicit ``--conf-path``
  that does not exist is exit 1, a bad value in the file exit 28 (aria2).
* **Downloads**: with ``-i`` the URIs on the command line are ignored and every input-file entry
  is one download with its own options (the global ``--out`` is not applied to them).  Without
  ``-i`` the command-line URIs are mirrors of one download, or one download each with ``-Z``.
  ``-P`` first expands ``{a,b}``/``[1-9]`` patterns (:mod:`trioaria.cli.uri_expand`), on the
  command line and in ``-i`` lines.  ``--deferred-input`` reads the input file lazily: an entry
  is read only when fewer than ``-j`` of the fed downloads are unfinished.
* **Stopping**: the first SIGINT shuts down gracefully (control files saved, exit 7 if anything
  is unfinished); a second SIGINT, or SIGTERM/SIGHUP, forces shutdown (control files are still
  saved: that costs milliseconds and protects the user's bytes).  ``--stop=SEC`` and
  ``--stop-with-process=PID`` (checked every second, as aria2) shut down gracefully.
* **Log**: ``-l FILE`` (``-`` for stdout) gets aria2-style lines
  ``YYYY-MM-DD HH:MM:SS.ffffff [LEVEL] [module.py:line] message`` at ``--log-level``; the
  console shows notices at ``--console-log-level``.

``--version`` is answered before trio or h11 is imported, so it stays fast.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from .._version import __version__

if TYPE_CHECKING:
    import logging

    from ..engine.group import RequestGroup
    from .input_file import InputEntry
    from .options import Options

__all__ = ["enabled_features", "main"]

# aria2 -v names its compiled-in features.  Ours are listed only when they work from this
# command line: a feature tied to an option is listed once that option is implemented
# (cli/implemented.py), so a half-landed package never shows up here.
_ALWAYS = ("Async DNS", "FTP", "HTTPS", "Message Digest", "SFTP")  # Async DNS: trio's resolver
_OPTION_FEATURES = (
    ("BitTorrent", "torrent-file"),
    ("Firefox3 Cookie", "load-cookies"),
    ("GZip", "http-accept-gzip"),
    ("JSON-RPC", "enable-rpc"),
    ("Metalink", "metalink-file"),
    ("Proxy", "all-proxy"),
    ("XML-RPC", "enable-rpc"),
)

# How often --stop-with-process looks for the process (aria2: every second).
WATCH_PROCESS_INTERVAL = 1.0


def enabled_features() -> list[str]:
    """The "Enabled Features" of ``-v``: what works today (see ``_OPTION_FEATURES``)."""
    from .implemented import IMPLEMENTED

    found = list(_ALWAYS)
    found.extend(name for name, option in _OPTION_FEATURES if option in IMPLEMENTED)
    return sorted(found, key=str.lower)


def _version_text() -> str:
    return (
        f"trioaria version {__version__}\n"
        "A pure-Python re-implementation of aria2 on trio.\n"
        "\n"
        f"Enabled Features: {', '.join(enabled_features())}\n"
        "Hash Algorithms: sha-1, sha-224, sha-256, sha-384, sha-512, md5, adler32\n"
        f"Python: {sys.version.split()[0]}\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script and ``python -m trioaria``."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in ("-v", "--version"):
        sys.stdout.write(_version_text())
        return 0
    # Start-up allocates only objects that live for the whole run (modules, option tables):
    # collecting them is wasted work (docs/performance.md "Start-up"); on again before trio.run.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _main(args, gc_was_enabled)
    finally:
        if gc_was_enabled:
            gc.enable()


def _main(args: list[str], gc_was_enabled: bool) -> int:
    from ..base.errors import ExitCode, OptionError, TrioariaError

    try:
        opts, input_opts, uris = _load_options(args)
    except OptionError as exc:
        sys.stderr.write(_option_error_text(exc))
        return int(exc.exit_code)
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
    if opts.get("show-files"):
        return _show_files(opts, uris)
    if opts.get("daemon"):
        opts, input_opts, uris = (
            _absolute_paths(opts),
            _absolute_paths(input_opts),
            [_absolute_uri(u) for u in uris],
        )
        _daemonize()
    deferred: _DeferredInput | None = None
    try:
        if opts.get("input-file") and opts.get("deferred-input"):
            deferred = _DeferredInput(opts.get("input-file"), input_opts)
            entries: list[tuple[list[str], Options]] = []
        else:
            entries = _download_entries(opts, input_opts, uris)
    except (TrioariaError, OSError) as exc:
        sys.stderr.write(f"{exc}\n")
        code = exc.exit_code if isinstance(exc, TrioariaError) else ExitCode.UNKNOWN_ERROR
        return int(code)
    if not entries and deferred is None and not opts.get("enable-rpc"):
        if opts.get("input-file"):
            sys.stdout.write("No files to download.\n")  # aria2, for an empty input file
            return 0
        sys.stderr.write(
            "Specify at least one URL.\nUsage: trioaria [OPTIONS] [URI | MAGNET | TORRENT_FILE |"
            " METALINK_FILE]...\nSee 'trioaria -h'.\n"
        )
        return int(ExitCode.UNKNOWN_ERROR)
    try:
        routed = _setup_logging(opts)
    except OSError as exc:  # -l names a directory, or a place that cannot be written
        sys.stderr.write(f"Failed to open the log file {opts.get('log')}: {exc.strerror}\n")
        return int(ExitCode.FILE_CREATE_ERROR)
    import trio

    from ..engine.queue import DownloadEngine

    engine = DownloadEngine(opts)
    # start-up objects (modules, option tables) live for the whole run: out of the collector's
    # way, so the collections the transfer triggers stay cheap (docs/performance.md)
    gc.freeze()
    if gc_was_enabled:
        gc.enable()
    try:
        return trio.run(_amain, engine, opts, entries, routed, deferred)
    finally:
        if deferred is not None:
            deferred.close()


# Options naming local files: made absolute before -D changes the directory to "/".
_PATH_OPTIONS = (
    "dir",
    "log",
    "input-file",
    "save-session",
    "server-stat-if",
    "server-stat-of",
    "torrent-file",
    "metalink-file",
    "rpc-certificate",
    "rpc-private-key",
    "load-cookies",
    "save-cookies",
    "netrc-path",
    "ca-certificate",
    "certificate",
    "private-key",
    "dht-file-path",
    "dht-file-path6",
)


def _absolute_paths(opts: Options) -> Options:
    """``opts`` with every relative path option made absolute (for ``-D``)."""
    changes: dict[str, str] = {}
    for name in _PATH_OPTIONS:
        value = opts.get(name)
        if isinstance(value, str) and value and value != "-" and not os.path.isabs(value):
            changes[name] = os.path.abspath(value)
    return opts.with_overrides(changes, explicit=True) if changes else opts


def _absolute_uri(uri: str) -> str:
    """A local path among the URIs (a torrent, a Metalink) made absolute (for ``-D``)."""
    if "://" in uri or uri.lower().startswith("magnet:") or os.path.isabs(uri):
        return uri
    return os.path.abspath(uri)


def _daemonize() -> None:
    """``-D``: detach as aria2 does with ``daemon(0, 0)``: a double fork (the parent exits 0,
    the grandchild leads no terminal), the working directory becomes ``/`` and stdin, stdout
    and stderr point to ``/dev/null``; messages go to ``--log`` only."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def _warn(message: str) -> None:
    sys.stderr.write(f"[WARN] {message}\n")


_USAGE = "Usage: trioaria [OPTIONS] [URI | MAGNET | TORRENT_FILE | METALINK_FILE]...\n"


def _option_error_text(exc: Exception) -> str:
    """An option error as aria2c words it, with more help: the program name and the message;
    for a bad value, that option's help block; for an unknown name, the closest names; then the
    usage line and ``See 'trioaria -h'.``."""
    from .help import render_option
    from .option_table import OPTIONS
    from .unsupported import RefusedOptionError
    from .values import OptionValueError

    text = f"trioaria: {exc}\n"
    if isinstance(exc, OptionValueError | RefusedOptionError) and exc.option in OPTIONS:
        text += render_option(OPTIONS[exc.option]) + "\n"
    text += _USAGE + "See 'trioaria -h'.\n"
    message = str(exc)
    if message.startswith("unrecognized option '--"):
        import difflib

        word = message.removeprefix("unrecognized option '--").rstrip("'")
        visible = [n for n, spec in OPTIONS.items() if not spec.hidden]
        close = difflib.get_close_matches(word, visible, n=5, cutoff=0.7)
        if close:
            text += "\nDid you mean:\n" + "".join(f"\t--{n}\n" for n in close)
    return text


# --- options ------------------------------------------------------------------------------


def _read_conf(argv_opts: dict[str, str], home: str) -> tuple[str, dict[str, str]]:
    """The configuration file's path and options (aria2 ``option_processing``)."""
    from ..base.errors import ExitCode, OptionError, TrioariaError
    from .conf_file import conf_file_candidates, parse_conf_file

    if argv_opts.get("no-conf", "false") in ("true", ""):
        return "", {}
    explicit = argv_opts.get("conf-path")
    if explicit is not None:
        explicit = explicit.replace("${HOME}", home)
    candidates = [explicit] if explicit else conf_file_candidates(os.environ)
    for cand in candidates:
        if not os.path.isfile(cand):
            continue

        def unknown(message: str) -> None:
            _warn(message)

        try:
            with open(cand, encoding="utf-8", errors="replace") as f:
                return cand, parse_conf_file(f.read(), home=home, where=cand, on_unknown=unknown)
        except OptionError as exc:
            raise OptionError(f"Parse error in {cand}\n{exc}") from None
        except OSError as exc:
            raise TrioariaError(f"Parse error in {cand}\n{exc}") from None
    if explicit:
        raise TrioariaError(
            f"Configuration file {explicit} is not found.", exit_code=ExitCode.UNKNOWN_ERROR
        )
    return "", {}


def _load_options(args: list[str]) -> tuple[Options, Options, list[str]]:
    """Parse everything; returns ``(options, options for -i entries, positional URIs)``.

    aria2 applies neither ``--out`` nor a conf file's ``out`` to input-file entries
    (``download_helper.cc``: ``requestOption->remove(PREF_OUT)``).

    Raises:
        OptionError: a bad option, or one that is refused until implemented (exit 28).
    """
    from .argv import parse_argv
    from .conf_file import dynamic_defaults
    from .options import build_options
    from .unsupported import check_refused

    argv_opts, uris = parse_argv(args)
    help_only = "help" in argv_opts or "version" in argv_opts
    home = os.path.expanduser("~")
    conf_path, conf_opts = _read_conf(argv_opts, home)
    # aria2: the proxy variables override the conf file; the command line overrides both
    conf_opts = {**conf_opts, **_proxy_environment(quiet=help_only)}
    base = dynamic_defaults(os.environ, cwd=os.getcwd(), exists=os.path.exists)
    opts = build_options(argv_opts, conf_opts, base=base, home=home)
    if not help_only:  # --help and --version download nothing, so nothing is refused
        check_refused(conf_opts, where=conf_path)
        check_refused(argv_opts, where="the command line")
        _warn_unsupported(opts.explicit_names())
        _check_local_files(opts)
    if not opts.get("input-file"):
        return opts, opts, uris

    def without_out(d: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in d.items() if k != "out"}

    input_opts = build_options(without_out(argv_opts), without_out(conf_opts), base=base, home=home)
    return opts, input_opts, uris


def _check_local_files(opts: Options) -> None:
    """``-T`` and ``-M`` name files that must exist (aria2 ``LocalFilePathOptionHandler``
    with ``mustExist``: exit 28 before anything starts; ``-M -`` reads standard input).

    Raises:
        OptionError: a missing file, or a directory (exit 28).
    """
    for name in ("torrent-file", "metalink-file"):
        path = opts.get(name)
        if not path or (name == "metalink-file" and path == "-"):
            continue
        if not os.path.isfile(path):
            from ..base.errors import OptionError

            what = "is a directory" if os.path.isdir(path) else "does not exist"
            raise OptionError(f"--{name}: the file {path} {what}")


_warned: set[str] = set()


def _warn_unsupported(names: Iterable[str]) -> None:
    """One warning per explicitly set option that is accepted but not implemented yet."""
    from .unsupported import unimplemented_names, unsupported_warning

    for name in unimplemented_names(sorted(names)):
        if name not in _warned:
            _warned.add(name)
            _warn(unsupported_warning(name))


def _proxy_environment(*, quiet: bool) -> dict[str, str]:
    """``http_proxy`` and friends as option values; an unusable one is reported and skipped."""
    names = {"http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "no_proxy"}
    if not any(name.lower() in names for name in os.environ):
        return {}  # the common case costs no import (start-up time, issue 15)
    from .unsupported import proxy_environment_options

    values, warnings = proxy_environment_options(os.environ)
    if not quiet:
        for warning in warnings:
            _warn(warning)
    return values


# --- which URIs become which downloads ----------------------------------------------------


def _groups_for(uris: list[str], opts: Options) -> list[tuple[list[str], Options]]:
    """aria2 ``createRequestGroupForUri``: expand with ``-P``, then mirrors or ``-Z``."""
    if opts.get("parameterized-uri"):
        from .uri_expand import expand_uris

        uris = expand_uris(uris)
    if not uris:
        return []
    if opts.get("force-sequential") and not (
        opts.get("torrent-file") or opts.get("metalink-file")
    ):  # aria2: with -T the URIs are the torrent's web seeds and -Z is ignored; -M likewise
        # one download per URI; --out is ignored with -Z (aria2 manual: it would name them all)
        alone = opts.without("out") if opts.get("out") else opts
        return [([u], alone) for u in uris]
    return [(list(uris), opts)]


def _entry_groups(entry: InputEntry, input_opts: Options) -> list[tuple[list[str], Options]]:
    """One ``-i`` entry's downloads; its own options are checked like the command line's.

    Raises:
        OptionError: a refused option in the entry (exit 28).
    """
    from .unsupported import check_refused

    check_refused(entry.options, where=f"the input file, entry {entry.uris[0]}")
    _warn_unsupported(entry.options)
    # aria2 createRequestGroupFromUriListParser: an entry's option replaces the global value,
    # lists included (a saved --header is not sent twice, nor saved twice again)
    entry_opts = input_opts.with_overrides(entry.options, replace_lists=True)
    return _groups_for(list(entry.uris), entry_opts)


def _input_warning(message: str) -> None:
    _warn(f"{message} (not valid in an input file)")


def _download_entries(
    opts: Options, input_opts: Options, uris: list[str]
) -> list[tuple[list[str], Options]]:
    """Turn positional URIs or ``-i`` entries into ``(mirror_uris, options)`` pairs."""
    input_file = opts.get("input-file")
    if not input_file:
        if opts.get("metalink-file") and not uris:
            _check_metalinks([([], opts)])
            return [([], opts)]  # -M alone: the document is the download
        if opts.get("torrent-file") and not uris:
            return [([], opts)]  # -T alone: the torrent is the download
        return _check_metalinks(_groups_for(uris, opts))
    from .input_file import parse_input_file

    if input_file == "-":
        text = sys.stdin.read()
    else:
        with open(input_file, "rb") as fb:
            raw = fb.read()
        if raw[:2] == b"\x1f\x8b":  # aria2: "Input files can use gzip compression"
            raw = _gunzip(raw, input_file)
        text = raw.decode("utf-8", errors="replace")
    entries: list[tuple[list[str], Options]] = []
    home = os.path.expanduser("~")
    for entry in parse_input_file(text, home=home, on_unknown=_input_warning):
        entries.extend(_entry_groups(entry, input_opts))
    return _check_metalinks(entries)


def _is_metalink_arg(uri: str) -> bool:
    """A local Metalink document (:func:`trioaria.engine.factory.is_metalink_arg`, imported
    for local paths only: plain URLs do not import it at this point)."""
    if "://" in uri:
        return False
    from ..engine.factory import is_metalink_arg

    return is_metalink_arg(uri)


def _check_metalinks(
    entries: list[tuple[list[str], Options]],
) -> list[tuple[list[str], Options]]:
    """Parse every Metalink document of ``entries`` before anything starts.

    Raises:
        MetalinkError: an unreadable or invalid document (exit 20, nothing downloaded).
    """
    for uris, entry_opts in entries:
        paths = [u for u in uris if _is_metalink_arg(u)]
        if entry_opts.get("metalink-file"):
            paths.insert(0, str(entry_opts.get("metalink-file")))
        if paths:
            from ..metalink.plan import metalink_downloads

            metalink_downloads(paths, entry_opts)
    return entries


def _gunzip(raw: bytes, path: str) -> bytes:
    """A gzip-compressed input file's text (aria2: input files can use gzip compression).

    Raises:
        TrioariaError: a truncated or corrupt file (exit 1).
    """
    import gzip
    import zlib

    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        from ..base.errors import TrioariaError

        raise TrioariaError(f"cannot read the input file {path}: {exc}") from None


def _open_text(path: str) -> tuple[TextIO, Any]:
    """``path`` opened once (a pipe cannot be opened twice) as text, through gzip when its
    first two bytes say it is compressed; also the binary file, for closing."""
    import io

    raw = open(path, "rb")  # noqa: SIM115 - closed by _DeferredInput.close
    try:
        compressed = raw.peek(2)[:2] == b"\x1f\x8b"
        if compressed:
            import gzip

            text: TextIO = io.TextIOWrapper(
                gzip.GzipFile(fileobj=raw), encoding="utf-8", errors="replace"
            )
        else:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
    except BaseException:
        raw.close()
        raise
    return text, raw


class _DeferredInput:
    """``--deferred-input``: the input file read one entry at a time, in a worker thread."""

    def __init__(self, path: str, input_opts: Options) -> None:
        from .input_file import InputFileParser

        self._path = path
        # opened on the first read, in the worker thread (a pipe's writer may be slow)
        self._file: TextIO | None = sys.stdin if path == "-" else None
        self._raw: Any = None
        self._owned = path != "-"
        self._opts = input_opts
        self._parser = InputFileParser(home=os.path.expanduser("~"), on_unknown=_input_warning)
        self._eof = False
        self._pending: list[tuple[list[str], Options]] = []

    async def next_group(self) -> tuple[list[str], Options] | None:
        """The next download, or ``None`` at the end of the file.

        Raises:
            TrioariaError: an invalid entry (OptionError, exit 28) or a bad ``-P`` pattern.
        """
        import trio

        while not self._pending:
            if self._eof:
                return None
            line = await trio.to_thread.run_sync(self._readline, abandon_on_cancel=True)
            if line:
                entry = self._parser.feed(line)
            else:
                self._eof = True
                entry = self._parser.finish()
            if entry is not None:
                self._pending.extend(_entry_groups(entry, self._opts))
        return self._pending.pop(0)

    def _readline(self) -> str:
        import zlib

        try:
            if self._file is None:
                self._file, self._raw = _open_text(self._path)
            return self._file.readline()
        except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt gzip file
            from ..base.errors import TrioariaError

            raise TrioariaError(f"cannot read the input file: {exc}") from None

    def close(self) -> None:
        if self._owned:
            if self._file is not None:
                self._file.close()
            if self._raw is not None:
                self._raw.close()


# --- logging ------------------------------------------------------------------------------

_LEVELS = {"debug": 10, "info": 20, "notice": 25, "warn": 30, "error": 40}
_LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 25: "NOTICE", 30: "WARN", 40: "ERROR", 50: "ERROR"}


class _ConsoleHandler:
    """Routes trioaria's log records to the console as aria2-style notice lines."""

    def __init__(self) -> None:
        self.console: Any = None

    def make(self, level: int) -> logging.Handler:
        import logging

        outer = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                name = _LEVEL_NAMES.get(record.levelno, record.levelname).lower()
                if outer.console is not None:
                    outer.console.notice(name, record.getMessage())
                else:
                    sys.stderr.write(f"[{name.upper()}] {record.getMessage()}\n")

        handler = Handler()
        handler.setLevel(level)
        return handler


def _log_formatter() -> logging.Formatter:
    """aria2's log line: ``2024-05-01 12:00:00.123456 [NOTICE] [group.py:123] message``."""
    import logging
    from datetime import datetime

    class Aria2Formatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            when = datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S.%f")
            level = _LEVEL_NAMES.get(record.levelno, record.levelname)
            where = f"{record.module}.py:{record.lineno}"
            text = f"{when} [{level}] [{where}] {record.getMessage()}"
            if record.exc_info:
                text += "\n" + self.formatException(record.exc_info)
            return text

    return Aria2Formatter()


def _setup_logging(opts: Options) -> _ConsoleHandler:
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
            logging.StreamHandler(sys.stderr if opts.get("out") == "-" else sys.stdout)
            if log_path == "-"
            else logging.FileHandler(log_path, encoding="utf-8")
        )
        handler.setLevel(_LEVELS.get(opts.get("log-level"), 10))
        handler.setFormatter(_log_formatter())
        root.addHandler(handler)
        root.info(
            "trioaria %s, Python %s, pid %d", __version__, sys.version.split()[0], os.getpid()
        )
        root.info("Logging started.")
    return routed


# --- the run ------------------------------------------------------------------------------


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (aria2 checks ``/proc/PID``; ``kill(pid, 0)`` is portable)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists but belongs to someone else
    except OverflowError:
        return False
    return True


def _iter_signals() -> Iterator[int]:
    import signal

    yield from (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


async def _amain(
    engine: Any,
    opts: Options,
    entries: list[tuple[list[str], Options]],
    routed: _ConsoleHandler,
    deferred: _DeferredInput | None,
) -> int:
    import logging
    import signal

    import trio

    log = logging.getLogger("trioaria.cli.app")
    order: dict[int, int] = {}  # id(group) -> position in the input: the results follow it

    import time

    from ..engine import server_stat
    from ..engine.factory import GroupFactory

    # --server-stat-if: one table of server speeds shared by every download of the run
    server_stats = server_stat.table_from_options(opts, time.time())

    def spawn(groups: Sequence[RequestGroup]) -> None:
        # downloads a followed Metalink describes (trioaria.metalink.follow)
        for group in groups:
            order[id(group)] = len(order)
            engine.add(group)

    factory = GroupFactory(server_stats, spawn=spawn)
    make_groups = factory.make_groups

    daemon = bool(opts.get("enable-rpc"))
    for uris, entry_opts in entries:
        for group in make_groups(uris, entry_opts):
            order[id(group)] = len(order)
            if daemon and entry_opts.get("pause"):
                # --pause, or " pause=true" of a -i entry (a saved session): aria2 honours
                # it only with --enable-rpc, where aria2.unpause can start the download
                group.cancel("pause")
            engine.add(group)
    if opts.get("pause"):
        # aria2 removes --pause from the global options once the initial downloads got it:
        # downloads added later over RPC start unless their own options say pause=true
        engine.options = engine.options.with_overrides({"pause": "false"}, explicit=False)
    session_path = str(opts.get("save-session") or "")

    quiet = bool(opts.get("quiet"))
    # -o -: the payload owns stdout; the readout and results go to stderr
    out = sys.stderr if opts.get("out") == "-" else sys.stdout
    input_error: list[int] = []
    # Signals after the receiver closes (downloads stopped, results being printed) are
    # ignored: the receiver restores SIG_IGN, redelivers pending signals into it, and CPython
    # keeps SIG_IGN at interpreter exit (a Python-level handler would be reset to SIG_DFL
    # there).  Otherwise a repeated Ctrl-C killed us with a KeyboardInterrupt traceback.
    # The receiver also encloses the nursery, so watch_signals ends before it closes.
    for signum in _iter_signals():
        signal.signal(signum, signal.SIG_IGN)
    with trio.open_signal_receiver(*_iter_signals()) as sigs:
        async with trio.open_nursery() as nursery:

            async def watch_signals() -> None:
                async for signum in sigs:
                    if signum == signal.SIGINT and not engine.is_shutting_down:
                        # aria2c 1.36 prints it as a NOTICE line
                        log.log(
                            25,
                            "Shutdown sequence commencing... Press Ctrl-C again for"
                            " emergency shutdown.",
                        )
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
            watched = opts.get("stop-with-process")
            if watched is not None:

                async def watch_process() -> None:
                    while _process_alive(watched):
                        await trio.sleep(WATCH_PROCESS_INTERVAL)
                    log.info("Process %d is not running. Commencing shutdown.", watched)
                    engine.shutdown()

                nursery.start_soon(watch_process)
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
            if entries:
                log.log(25, "Downloading %d item(s)", len(entries))
            if opts.get("enable-rpc"):  # the daemon: serve until aria2.shutdown or a signal
                from ..base.errors import TrioariaError
                from ..rpc.server import open_rpc

                try:
                    rpc = open_rpc(engine, factory=factory, features=enabled_features())
                    await nursery.start(rpc.serve)
                except (OSError, TrioariaError) as exc:
                    log.error("Failed to setup RPC server: %s", exc)
                    input_error.append(1)
                    engine.shutdown()
            interval = int(opts.get("save-session-interval") or 0)
            if (session_path or opts.get("enable-rpc")) and interval > 0:
                from ..rpc.session_file import run_session_saver

                nursery.start_soon(run_session_saver, engine, float(interval))
            if deferred is None:
                await engine.run(keep_running=bool(opts.get("enable-rpc")))
            else:
                await _run_deferred(engine, opts, deferred, input_error, nursery, order, factory)
            nursery.cancel_scope.cancel()
    # RPC changeGlobalOption may have named another file (or the first one): the current one
    session_path = str(engine.options.get("save-session") or "")
    if session_path:  # aria2 writes the session at every exit, graceful or forced
        from ..rpc.session_file import save_session_file

        try:
            save_session_file(engine, session_path)
        except OSError as exc:
            log.error("Failed to serialize session to '%s': %s", session_path, exc)
    code: int = engine.exit_code()
    if opts.get("server-stat-of"):
        server_stat.save_file(str(opts.get("server-stat-of")), server_stats)
    if input_error and code == 0:
        code = input_error[0]
    # aria2 MultiUrlRequestInfo: the "will resume" note unless every download completed
    # (or was removed): a failure, one in progress or one still queued all get it
    done = ("complete", "removed")
    incomplete = any(g.state.value not in done for g in engine.all_groups())
    _print_results(engine, opts, console, order, incomplete=incomplete)
    routed.console = None
    return code


async def _run_deferred(
    engine: Any,
    opts: Options,
    deferred: _DeferredInput,
    input_error: list[int],
    nursery: Any,
    order: dict[int, int],
    factory: Any,
) -> None:
    """Run the engine while feeding it input-file entries only as it needs work.

    An entry is read when fewer than ``-j`` of the fed downloads are waiting or running (a
    paused one does not count).  Entries become downloads through the run's group factory, so
    torrents, magnets and Metalinks in the file are what they are on the command line.  Without
    ``--enable-rpc`` the run ends once the file is read and its downloads stopped.
    """
    import logging

    import trio

    from ..base.errors import TrioariaError
    from ..base.stats import DownloadStatus

    log = logging.getLogger("trioaria.cli.app")
    limit = max(1, opts.get("max-concurrent-downloads"))
    daemon = bool(opts.get("enable-rpc"))
    fed: list[Any] = []
    changed = trio.Event()
    live = (DownloadStatus.WAITING, DownloadStatus.ACTIVE)

    def busy() -> int:
        fed[:] = [g for g in fed if g.state in (*live, DownloadStatus.PAUSED)]
        return sum(1 for g in fed if g.state in live)

    def on_event(event: str, group: Any) -> None:
        changed.set()

    engine.listeners.append(on_event)
    spawn = factory.spawn

    def spawn_fed(groups: Any) -> None:
        # downloads a followed Metalink starts count as fed: without this the feeder saw no
        # work left once the document's own download ended and shut the engine down under them
        fed.extend(groups)
        if spawn is not None:
            spawn(groups)
        changed.set()

    factory.spawn = spawn_fed

    async def wait_change() -> None:
        nonlocal changed
        changed = trio.Event()
        await changed.wait()

    async def feed() -> None:
        try:
            while not engine.is_shutting_down:
                if busy() >= limit:
                    await wait_change()
                    continue
                try:
                    item = await deferred.next_group()
                    groups = [] if item is None else factory.make_groups(*item)
                except TrioariaError as exc:
                    log.error("%s", exc)
                    input_error.append(int(exc.exit_code))
                    break
                except OSError as exc:
                    log.error("cannot read the input file: %s", exc)
                    input_error.append(1)
                    break
                if item is None:
                    break
                for group in groups:
                    if daemon and item[1].get("pause"):
                        group.cancel("pause")
                    order[id(group)] = len(order)
                    fed.append(group)
                    engine.add(group)
            while busy() and not engine.is_shutting_down:
                await wait_change()
        finally:
            if not daemon:
                engine.shutdown()  # nothing left to feed: let the engine end once idle

    nursery.start_soon(feed)
    await engine.run(keep_running=True)


def _show_files(opts: Options, uris: list[str]) -> int:
    """``-S``: print the contents of each torrent (aria2c's report) and exit."""
    from ..base.errors import TrioariaError
    from ..bt.metainfo import parse_torrent
    from .show_files import format_torrent_info

    code = 0
    if opts.get("metalink-file") or any(_is_metalink_arg(u) for u in uris):
        code = _show_metalinks(opts, uris)
        uris = [u for u in uris if not _is_metalink_arg(u)]
    paths = [str(opts.get("torrent-file"))] if opts.get("torrent-file") else []
    paths += [u for u in uris if "://" not in u and not u.lower().startswith("magnet:")]
    for path in paths:
        try:
            with open(path, "rb") as f:
                meta = parse_torrent(f.read(), default_name=path)
        except OSError as exc:
            sys.stderr.write(f"Exception: cannot read {path}: {exc.strerror}\n")
            code = 1
            continue
        except TrioariaError as exc:
            sys.stderr.write(f"Exception: {exc}\n")
            code = int(exc.exit_code)
            continue
        sys.stdout.write(format_torrent_info(meta, path))
    return code


def _show_metalinks(opts: Options, uris: list[str]) -> int:
    """``-S`` for ``-M`` and positional Metalink documents (aria2c's ``Files:`` table)."""
    from ..base.errors import TrioariaError
    from ..metalink.plan import load_metalink
    from ..metalink.show import format_metalink_files

    given = [(str(opts.get("metalink-file")), False)] if opts.get("metalink-file") else []
    given += [(u, True) for u in uris if _is_metalink_arg(u)]
    code = 0
    for path, banner in given:
        try:
            doc = load_metalink(path, base_uri=opts.get("metalink-base-uri") or None)
        except TrioariaError as exc:
            sys.stderr.write(f"Exception: {exc}\n")
            code = int(exc.exit_code)
            continue
        sys.stdout.write(format_metalink_files(doc, path, banner=banner))
    return code


def _print_results(
    engine: Any, opts: Options, console: Any, order: dict[int, int], *, incomplete: bool
) -> None:
    """aria2's end of a run: a ``Download GID#… not complete: PATH`` notice per unfinished
    download, then "Download Results" in input order (the engine lists them as they stopped)."""
    from .console import not_complete_messages

    groups = sorted(engine.all_groups(), key=lambda g: order.get(id(g), len(order)))
    if opts.get("quiet") or not groups:
        return
    stats = [g.statistics() for g in groups]
    for message in not_complete_messages(stats):
        console.notice("notice", message)
    console.print_results(
        stats,
        mode=opts.get("download-result"),
        avg_speeds={g.gid: g.average_speed() for g in groups},
        incomplete=incomplete,
        program="trioaria",
    )
    sys.stdout.flush()
