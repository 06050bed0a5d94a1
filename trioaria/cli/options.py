"""Option values: parsing, the command line, ``aria2.conf``, ``-i`` files (pure).

Implements aria2's option semantics (``src/OptionParser.cc``,
``src/OptionHandlerImpl.cc``, ``src/option_processing.cc``, ``src/UriListParser.cc``
and the manual's "OPTIONS", "aria2.conf" and "Input File" sections) on top of the
table in :mod:`trioaria.cli.option_table`.

Theory of operation
-------------------
Every layer works on *strings* first, exactly like aria2 (whose ``Option`` object
is a string map): :func:`parse_argv` turns ``argv`` into ``{name: raw}`` with GNU
``getopt_long`` rules, :func:`parse_conf_file` does the same for ``aria2.conf``
and :func:`trioaria.cli.input_file.parse_input_file` for each ``-i`` entry.
Repeatable (LIST) options are kept as one string joined with ``"\\n"``, which is
also aria2's internal form.
:func:`build_options` then layers table defaults < environment-derived defaults <
conf file < command line and validates every value with :func:`parse_value` into
an immutable :class:`Options`.  Invalid values raise
:class:`~trioaria.base.errors.OptionError` (exit status 28) naming ``--NAME``.

Nothing here touches the process environment or the file system: the caller
passes ``env``/``home``/``cwd`` and an ``exists`` predicate.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from trioaria.base.errors import OptionError
from trioaria.cli.option_table import OPTIONS, SHORT_OPTIONS, ArgKind, OptionSpec, OptType

__all__ = [
    "HASH_HEX_LENGTHS",
    "UNSUPPORTED_WARNING",
    "OptionValue",
    "Options",
    "build_options",
    "conf_file_candidates",
    "dynamic_defaults",
    "expand_home",
    "parse_argv",
    "parse_conf_file",
    "parse_value",
    "value_to_string",
]

#: A parsed option value.  BOOL -> bool, INT/UNIT -> int, FLOAT -> float,
#: STRING/PATH/ENUM/PROXY -> str, LIST -> tuple[str, ...], INT_RANGE ->
#: tuple[range, ...], CHECKSUM -> (type, hexdigest), HOST_PORT -> (host, port),
#: PIECE_PRIORITY -> ((\"head\"|\"tail\", size), ...), CONCURRENCY -> (A, B) or None;
#: ``None`` when unset.
OptionValue = (
    bool
    | int
    | float
    | str
    | tuple[str, ...]
    | tuple[range, ...]
    | tuple[str, str]
    | tuple[str, int]
    | tuple[tuple[str, int], ...]
    | tuple[float, float]
    | None
)

#: Hex digest length per hash type accepted by ``--checksum`` (aria2
#: ``MessageDigest``; the names are aria2's).
HASH_HEX_LENGTHS: dict[str, int] = {
    "md5": 32,
    "sha-1": 40,
    "sha-224": 56,
    "sha-256": 64,
    "sha-384": 96,
    "sha-512": 128,
    "adler32": 8,
}

_INT_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_UNIT_RE = re.compile(r"([0-9]+)([KkMm]?)", re.ASCII)
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_HEX_RE = re.compile(r"[0-9a-f]+", re.ASCII)
_GID_RE = re.compile(r"[0-9a-fA-F]{16}", re.ASCII)
_PROXY_SCHEMES = ("http", "https", "ftp", "socks4", "socks4a", "socks5", "socks5h")
_DEFAULT_PRIORITY_SIZE = 1024 * 1024  # aria2: head/tail without SIZE means 1M
_CONCURRENCY_DEFAULT = (5.0, 25.0)  # aria2's optimize-concurrent-downloads-coeffA/B


def UNSUPPORTED_WARNING(name: str) -> str:
    """The one-line warning printed once for an accepted but unimplemented option."""
    return (
        f"--{name} is accepted for aria2 compatibility but not implemented yet; it has "
        "no effect (see --help=#unsupported)."
    )


def _fail(spec: OptionSpec, reason: str) -> OptionError:
    return OptionError(f"option '--{spec.name}': {reason}")


def _spec(name: str) -> OptionSpec:
    try:
        return OPTIONS[name]
    except KeyError:
        raise OptionError(f"unknown option '--{name}'") from None


# --- single values ----------------------------------------------------------------------


def _check_range(spec: OptionSpec, number: int | float) -> None:
    lo, hi = spec.min, spec.max
    if (lo is None or number >= lo) and (hi is None or number <= hi):
        return
    if spec.type is OptType.FLOAT:
        lo_s = None if lo is None else f"{lo:.1f}"
        hi_s = None if hi is None else f"{hi:.1f}"
    else:
        lo_s = None if lo is None else str(lo)
        hi_s = None if hi is None else str(hi)
    if lo_s is not None and hi_s is not None:
        raise _fail(spec, f"{spec.name} must be between {lo_s} and {hi_s}.")
    if lo_s is not None:
        raise _fail(spec, f"{spec.name} must be greater than or equal to {lo_s}.")
    raise _fail(spec, f"{spec.name} must be smaller than or equal to {hi_s}.")


def _parse_int(spec: OptionSpec, raw: str) -> int:
    text = raw.strip()
    if not _INT_RE.fullmatch(text) or len(text) > 40:
        raise _fail(spec, f"bad number {raw!r}")
    number = int(text)
    _check_range(spec, number)
    return number


def _size(spec: OptionSpec, raw: str) -> int:
    """aria2 ``util::getRealSize``: digits with an optional K or M (1K = 1024)."""
    m = _UNIT_RE.fullmatch(raw.strip())
    if m is None or len(m.group(1)) > 30:
        raise _fail(spec, f"bad or negative size {raw!r} (use digits with an optional K or M)")
    mult = {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    return int(m.group(1)) * mult


def _parse_float(spec: OptionSpec, raw: str) -> float:
    text = raw.strip()
    if not _FLOAT_RE.fullmatch(text) or len(text) > 60:
        raise _fail(spec, f"bad number {raw!r}")
    number = float(text)
    if not math.isfinite(number):
        raise _fail(spec, f"bad number {raw!r}")
    _check_range(spec, number)
    return number


def _parse_int_range(spec: OptionSpec, raw: str) -> tuple[range, ...]:
    """aria2 ``util::parseIntSegments``: ``"1-5,8"``; each number within [min, max]."""
    out: list[range] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        first, sep, last = part.partition("-")
        if not _INT_RE.fullmatch(first) or (sep and not _INT_RE.fullmatch(last)):
            raise _fail(spec, f"bad integer range {part!r}")
        if len(first) > 20 or len(last) > 20:
            raise _fail(spec, f"bad integer range {part!r}")
        a = int(first)
        b = int(last) if sep else a
        if b < a:
            raise _fail(spec, f"bad integer range {part!r}")
        _check_range(spec, a)
        _check_range(spec, b)
        out.append(range(a, b + 1))
    if not out:
        raise _fail(spec, "an index or range such as '1-5,8' is required")
    return tuple(out)


def _parse_checksum(spec: OptionSpec, raw: str) -> tuple[str, str]:
    kind, sep, digest = raw.partition("=")
    kind = kind.strip().lower()
    digest = digest.strip().lower()
    accepted = spec.choices or tuple(HASH_HEX_LENGTHS)
    if not sep or kind not in accepted:
        raise _fail(spec, f"expected TYPE=HEXDIGEST with TYPE one of {', '.join(accepted)}")
    if len(digest) != HASH_HEX_LENGTHS[kind] or not _HEX_RE.fullmatch(digest):
        raise _fail(spec, f"{kind} needs {HASH_HEX_LENGTHS[kind]} hex digits")
    return kind, digest


def _split_host_port(text: str) -> tuple[str, str]:
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return "", ""
        return host, rest[1:]
    host, _, port = text.rpartition(":")
    return host, port


def _parse_host_port(spec: OptionSpec, raw: str) -> tuple[str, int]:
    host, port = _split_host_port(raw.strip())
    if not host or not port.isdigit() or not port.isascii() or not 0 < int(port) < 65536:
        raise _fail(spec, f"expected HOST:PORT, got {raw!r}")
    return host, int(port)


def _parse_proxy(spec: OptionSpec, raw: str) -> str:
    text = raw.strip()
    if not text:
        return ""  # an empty value cancels a proxy set earlier (aria2)
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise _fail(spec, f"unrecognized proxy {raw!r}") from None
    if parts.scheme.lower() not in _PROXY_SCHEMES or not parts.hostname:
        raise _fail(spec, f"unrecognized proxy {raw!r}")
    if port == 0:
        raise _fail(spec, f"unrecognized proxy {raw!r}")
    scheme = parts.scheme.lower()
    if scheme == "ftp":  # aria2 treats an ftp:// proxy as an HTTP proxy
        scheme = "http"
    return f"{scheme}://{parts.netloc}{parts.path or '/'}"


def _parse_priority(spec: OptionSpec, raw: str) -> tuple[tuple[str, int], ...]:
    out: list[tuple[str, int]] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        word, eq, size = part.partition("=")
        if word not in ("head", "tail") or (eq and not size):
            raise _fail(spec, f"unrecognized token {part!r} (use head[=SIZE],tail[=SIZE])")
        out.append((word, _size(spec, size) if eq else _DEFAULT_PRIORITY_SIZE))
    return tuple(out)


def _parse_concurrency(spec: OptionSpec, raw: str) -> tuple[float, float] | None:
    if raw in ("true", ""):
        return _CONCURRENCY_DEFAULT
    if raw == "false":
        return None
    a, sep, b = raw.partition(":")
    if not sep or not b:
        raise _fail(spec, f"{spec.name} must be either 'true', 'false' or a pair A:B.")
    coeffs = []
    for text in (a, b):
        if not _FLOAT_RE.fullmatch(text) or not math.isfinite(float(text)):
            raise _fail(spec, f"bad number {text!r}")
        coeffs.append(float(text))
    return coeffs[0], coeffs[1]


def _parse_list_item(spec: OptionSpec, item: str) -> str:
    if spec.name == "index-out":
        index, eq, path = item.partition("=")
        index = index.strip()
        if not eq or not index.isdigit() or not index.isascii() or len(index) > 10:
            raise _fail(spec, f"expected INDEX=PATH, got {item!r}")
        if not path.strip():
            raise _fail(spec, f"path with index={int(index)} is empty")
    return item


def expand_home(spec: OptionSpec, value: str, home: str | None) -> str:
    """Replace ``${HOME}`` in PATH options, as aria2 does even for command-line values."""
    if home is None or spec.type is not OptType.PATH:
        return value
    return value.replace("${HOME}", home)


def parse_value(spec: OptionSpec, raw: str, *, home: str | None = None) -> OptionValue:
    """Parse and validate one raw value for ``spec``.

    An empty value for an option with an optional argument means its
    ``no_arg_value`` (``--continue=`` is ``--continue=true``), as in aria2.

    Args:
        spec: the option.
        raw: its string value.
        home: when given, ``${HOME}`` in PATH values is replaced by it.

    Returns:
        The typed value (see :data:`OptionValue`).

    Raises:
        OptionError: the value is invalid; the message names ``--NAME`` (exit 28).
    """
    if raw == "" and spec.arg is not ArgKind.REQUIRED and spec.no_arg_value is not None:
        raw = spec.no_arg_value
    kind = spec.type
    if kind is OptType.BOOL:
        if raw == "true":
            return True
        if raw == "false":
            return False
        raise _fail(spec, f"{spec.name} must be either 'true' or 'false'.")
    if kind is OptType.INT:
        return _parse_int(spec, raw)
    if kind is OptType.UNIT:
        number = _size(spec, raw)
        _check_range(spec, number)
        return number
    if kind is OptType.FLOAT:
        return _parse_float(spec, raw)
    if kind is OptType.ENUM:
        if raw not in spec.choices:
            choices = " ".join(f"'{c}'" for c in spec.choices)
            raise _fail(spec, f"{spec.name} must be one of the following: {choices}")
        return raw
    if kind is OptType.PATH:
        return expand_home(spec, raw, home)
    if kind is OptType.STRING:
        if spec.name == "rpc-secret" and not raw:
            raise _fail(spec, "an empty string is not allowed")
        if spec.name == "gid" and (not _GID_RE.fullmatch(raw) or int(raw, 16) == 0):
            raise _fail(spec, "a GID is 16 hex digits and not all zero")
        return raw
    if kind is OptType.LIST:
        return tuple(_parse_list_item(spec, item) for item in raw.split("\n") if item)
    if kind is OptType.INT_RANGE:
        return _parse_int_range(spec, raw)
    if kind is OptType.CHECKSUM:
        return _parse_checksum(spec, raw)
    if kind is OptType.HOST_PORT:
        return _parse_host_port(spec, raw)
    if kind is OptType.PROXY:
        return _parse_proxy(spec, raw)
    if kind is OptType.PIECE_PRIORITY:
        return _parse_priority(spec, raw)
    return _parse_concurrency(spec, raw)


def value_to_string(spec: OptionSpec, value: OptionValue, raw: str) -> str:
    """The aria2 string form of a parsed value (what RPC ``getOption`` shows).

    Numbers are normalized like aria2 (``"1M"`` -> ``"1048576"``), booleans are
    ``true``/``false``, lists are joined with newlines; other types keep ``raw``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if spec.type in (OptType.INT, OptType.UNIT) and isinstance(value, int):
        return str(value)
    if spec.type is OptType.LIST and isinstance(value, tuple):
        return "\n".join(str(v) for v in value)
    if spec.type is OptType.CHECKSUM and isinstance(value, tuple):
        return f"{value[0]}={value[1]}"
    if spec.type is OptType.PROXY and isinstance(value, str):
        return value
    if spec.type is OptType.CONCURRENCY:
        return "false" if value is None else raw if ":" in raw else "true"
    return raw


# --- the immutable option set -----------------------------------------------------------


class Options(Mapping[str, Any]):
    """An immutable set of option values, keyed by aria2 name.

    ``opts.max_connection_per_server`` and ``opts["max-connection-per-server"]``
    and ``opts.get("max-connection-per-server")`` all return the typed value
    (``None`` when unset).  Iteration yields the names of options that have a
    value, in the table's order.
    """

    __slots__ = ("_explicit", "_raw", "_values")

    _values: dict[str, OptionValue]
    _raw: dict[str, str]
    _explicit: frozenset[str]

    def __init__(
        self,
        values: Mapping[str, OptionValue],
        raw: Mapping[str, str],
        explicit: frozenset[str] = frozenset(),
    ) -> None:
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "_raw", dict(raw))
        object.__setattr__(self, "_explicit", explicit)

    # construction

    @classmethod
    def defaults(cls) -> Options:
        """Every option at its table default (environment-derived ones unset)."""
        return _table_defaults()

    def with_overrides(
        self,
        mapping: Mapping[str, str | Sequence[str]],
        *,
        home: str | None = None,
        explicit: bool = True,
        replace_lists: bool = False,
    ) -> Options:
        """Return a copy with ``mapping`` applied and validated.

        Args:
            mapping: name -> raw string; LIST options also take a sequence of
                items (an RPC array) or a newline-joined string.
            home: expands ``${HOME}`` in PATH values when given.
            explicit: record the names as explicitly set (see :meth:`is_set`).
            replace_lists: replace LIST values instead of appending to them
                (aria2 appends across conf file, command line and ``-i`` lines).

        Raises:
            OptionError: an unknown name or an invalid value (exit 28).
        """
        values = dict(self._values)
        raw = dict(self._raw)
        for name, given in mapping.items():
            spec = _spec(name)
            if spec.type is OptType.LIST:
                text = given if isinstance(given, str) else "\n".join(given)
                items = parse_value(spec, text, home=home)
                assert isinstance(items, tuple)
                old = () if replace_lists else values.get(name) or ()
                assert isinstance(old, tuple)
                value: OptionValue = tuple(str(v) for v in (*old, *items))
                values[name] = value
                raw[name] = value_to_string(spec, value, text)
                continue
            if not isinstance(given, str):
                raise _fail(spec, "expected a single string value")
            value = parse_value(spec, given, home=home)
            values[name] = value
            raw[name] = value_to_string(spec, value, expand_home(spec, given, home))
        marked = self._explicit | frozenset(mapping) if explicit else self._explicit
        return Options(values, raw, marked)

    # queries

    def get(self, name: str, default: Any = None) -> Any:
        """The typed value of option ``name`` (``None``/``default`` when unset).

        Raises:
            KeyError: ``name`` is not an aria2 option (a programming error).
        """
        if name not in OPTIONS:
            raise KeyError(name)
        return self._values.get(name, default)

    def __getitem__(self, name: str) -> Any:
        if name not in OPTIONS:
            raise KeyError(name)
        return self._values.get(name)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        name = attr.replace("_", "-")
        if name not in OPTIONS:
            raise AttributeError(f"no aria2 option named {name!r}")
        return self._values.get(name)

    def __setattr__(self, attr: str, value: object) -> None:
        raise AttributeError("Options is immutable; use with_overrides()")

    def __reduce__(self) -> tuple[type[Options], tuple[Any, ...]]:
        return (Options, (self._values, self._raw, self._explicit))

    def __iter__(self) -> Iterator[str]:
        return (name for name in OPTIONS if name in self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Options):
            return NotImplemented
        return self._raw == other._raw and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._raw.items())))

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={self._raw[n]!r}" for n in sorted(self._explicit) if n in self._raw)
        return f"Options({shown})"

    def is_set(self, name: str) -> bool:
        """Whether ``name`` was given explicitly (conf file, command line, RPC)."""
        if name not in OPTIONS:
            raise KeyError(name)
        return name in self._explicit

    def as_strings(self) -> dict[str, str]:
        """aria2 RPC ``getOption`` form: every option with a value, as strings."""
        return {name: self._raw[name] for name in self}

    def explicit_names(self) -> frozenset[str]:
        """The names given explicitly."""
        return self._explicit


@functools.cache
def _table_defaults() -> Options:
    values: dict[str, OptionValue] = {}
    raw: dict[str, str] = {}
    for name, spec in OPTIONS.items():
        if spec.default is None:
            continue
        value = parse_value(spec, spec.default)
        values[name] = value
        raw[name] = value_to_string(spec, value, spec.default)
    return Options(values, raw)


# --- command line ------------------------------------------------------------------------


def _store(out: dict[str, str], spec: OptionSpec, value: str) -> None:
    if spec.type is OptType.LIST and spec.name in out:
        out[spec.name] = out[spec.name] + "\n" + value
    else:
        out[spec.name] = value


def _long_option(word: str) -> OptionSpec:
    if word in OPTIONS:
        return OPTIONS[word]
    # Abbreviations are matched against the options aria2 shows (getopt never sees
    # hidden ones), so an abbreviation means the same thing here as in aria2c.
    matches = [n for n, spec in OPTIONS.items() if n.startswith(word) and not spec.hidden]
    if len(matches) == 1:
        return OPTIONS[matches[0]]
    if matches:
        shown = " ".join(f"'--{m}'" for m in matches)
        raise OptionError(f"option '--{word}' is ambiguous; possibilities: {shown}")
    raise OptionError(f"unrecognized option '--{word}'")


def parse_argv(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``argv`` (without the program name) into options and URIs.

    GNU ``getopt_long`` rules, as aria2 uses them: options and URIs may be mixed;
    ``--`` ends the options; ``--name=value`` and ``--name value`` for options
    that require an argument; options with an *optional* argument
    (``--continue``, ``--help``) take one only as ``--name=value``; a unique
    prefix of a long name is accepted (``--max-conn=4``); short flags take
    ``-x16`` or ``-x 16``, and flags with an optional argument take the rest of
    the word (so ``-cZ`` means ``--continue=Z``, an error, exactly as in
    aria2c).  A repeated LIST option (``--header``) accumulates, joined with
    ``"\\n"``; for other options the last one wins.  Values are not validated
    here; :func:`build_options` does that.

    Returns:
        ``({name: raw value}, positional arguments)``.

    Raises:
        OptionError: an unknown or ambiguous option, or a missing/forbidden
            argument (exit 28).
    """
    opts: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    n = len(argv)
    while i < n:
        word = argv[i]
        i += 1
        if word == "--":
            positional.extend(argv[i:])
            break
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            spec = _long_option(name)
            if eq:
                if spec.arg is ArgKind.NONE:
                    raise OptionError(f"option '--{spec.name}' doesn't allow an argument")
            elif spec.arg is ArgKind.REQUIRED:
                if i >= n:
                    raise OptionError(f"option '--{spec.name}' requires an argument")
                value = argv[i]
                i += 1
            else:
                value = spec.no_arg_value or ""
            _store(opts, spec, value)
            continue
        if word.startswith("-") and len(word) > 1:
            j = 1
            while j < len(word):
                letter = word[j]
                j += 1
                if letter not in SHORT_OPTIONS:
                    raise OptionError(f"invalid option -- '{letter}'")
                spec = OPTIONS[SHORT_OPTIONS[letter]]
                rest = word[j:]
                if spec.arg is ArgKind.NONE:
                    _store(opts, spec, spec.no_arg_value or "")
                    continue
                if spec.arg is ArgKind.OPTIONAL:
                    _store(opts, spec, rest if rest else spec.no_arg_value or "")
                    break
                if rest:
                    _store(opts, spec, rest)
                elif i < n:
                    _store(opts, spec, argv[i])
                    i += 1
                else:
                    raise OptionError(f"option requires an argument -- '{letter}'")
                break
            continue
        positional.append(word)
    return opts, positional


# --- aria2.conf ---------------------------------------------------------------------------


def _name_value_lines(
    lines: Sequence[tuple[int, str]],
    *,
    where: str,
    home: str | None,
    on_unknown: Callable[[str], None] | None,
    accept: Callable[[OptionSpec], bool] = lambda spec: True,
) -> dict[str, str]:
    """aria2 ``OptionParser::parse(Option&, istream&)`` over ``(line number, text)``."""
    out: dict[str, str] = {}
    for lineno, line in lines:
        if not line or line[0] == "#":
            continue
        name, _, value = line.partition("=")
        name = name.strip()
        value = value.strip()
        if not name or name[0] == "#":
            continue  # aria2 would warn about an indented comment; we skip it
        spec = OPTIONS.get(name)
        if spec is None:
            message = f"{where} line {lineno}: unknown option {name!r}"
            if on_unknown is None:
                raise OptionError(message)
            on_unknown(message)
            continue
        if not accept(spec):
            if on_unknown is not None:
                on_unknown(f"{where} line {lineno}: --{name} is ignored here")
            continue
        try:
            parse_value(spec, value, home=home)
        except OptionError as exc:
            raise OptionError(f"{where} line {lineno}: {exc}") from None
        _store(out, spec, expand_home(spec, value, home))
    return out


def _lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.rstrip("\r")) for n, line in enumerate(text.split("\n"), start=1)]


def parse_conf_file(
    text: str,
    *,
    home: str,
    on_unknown: Callable[[str], None] | None = None,
    where: str = "aria2.conf",
) -> dict[str, str]:
    """Parse an ``aria2.conf``: ``name=value`` lines without the ``--`` prefix.

    Lines whose first character is ``#`` are comments and blank lines are
    skipped; whitespace around the name and the value is ignored (aria2
    ``util::divide``); ``name`` alone means an empty value (``continue`` ->
    true).  ``${HOME}`` is expanded in path options.  Values are validated.

    Args:
        text: the file's contents.
        home: the user's home directory for ``${HOME}``.
        on_unknown: called with a message for an unknown option name, which is
            then skipped (aria2 only warns); when ``None`` an unknown name raises.
        where: the file name used in messages.

    Raises:
        OptionError: an invalid value, or an unknown name without
            ``on_unknown``; the message gives the line number (exit 28).
    """
    return _name_value_lines(_lines(text), where=where, home=home, on_unknown=on_unknown)


def conf_file_candidates(env: Mapping[str, str]) -> list[str]:
    """Where aria2 looks for its configuration file, in order (aria2 ``util::getConfigFile``).

    ``$HOME/.aria2/aria2.conf`` if it exists, else
    ``$XDG_CONFIG_HOME/aria2/aria2.conf`` (``$HOME/.config`` when unset).
    """
    home = env.get("HOME", "")
    xdg = env.get("XDG_CONFIG_HOME") or f"{home}/.config"
    return [f"{home}/.aria2/aria2.conf", f"{xdg}/aria2/aria2.conf"]


def dynamic_defaults(
    env: Mapping[str, str], *, cwd: str, exists: Callable[[str], bool]
) -> dict[str, str]:
    """Defaults aria2 computes from the environment at startup.

    ``dir`` (the working directory), ``conf-path``, ``netrc-path`` and
    ``dht-file-path``/``dht-file-path6`` (the legacy ``$HOME/.aria2/dht.dat``
    if it exists, else under ``$XDG_CACHE_HOME/aria2``).

    Args:
        env: environment variables (``HOME``, ``XDG_CONFIG_HOME``, ``XDG_CACHE_HOME``).
        cwd: the current working directory.
        exists: a predicate telling whether a path exists (``os.path.exists``).
    """
    home = env.get("HOME", "")
    conf = conf_file_candidates(env)
    cache = env.get("XDG_CACHE_HOME") or f"{home}/.cache"
    out = {
        "dir": cwd,
        "conf-path": conf[0] if exists(conf[0]) else conf[1],
        "netrc-path": f"{home}/.netrc",
    }
    for name, leaf in (("dht-file-path", "dht.dat"), ("dht-file-path6", "dht6.dat")):
        legacy = f"{home}/.aria2/{leaf}"
        out[name] = legacy if exists(legacy) else f"{cache}/aria2/{leaf}"
    return out


def build_options(
    argv_opts: Mapping[str, str],
    conf_opts: Mapping[str, str],
    *,
    base: Mapping[str, str] | None = None,
    home: str | None = None,
) -> Options:
    """Layer the sources: table defaults < ``base`` < conf file < command line.

    LIST options accumulate across the conf file and the command line (aria2's
    cumulative options); for the rest the later source wins.

    Args:
        argv_opts: from :func:`parse_argv`.
        conf_opts: from :func:`parse_conf_file` (empty with ``--no-conf``).
        base: environment-derived defaults (:func:`dynamic_defaults`); not
            counted as explicitly set.
        home: expands ``${HOME}`` in command-line path values.

    Raises:
        OptionError: an unknown name or invalid value, naming the option (exit 28).
    """
    opts = Options.defaults()
    if base:
        opts = opts.with_overrides(base, explicit=False)
    opts = opts.with_overrides(conf_opts, home=home)
    return opts.with_overrides(argv_opts, home=home)
