"""The immutable option set and how its sources are layered (pure).

Implements aria2's option semantics (``src/OptionParser.cc``, ``src/OptionHandlerImpl.cc``,
``src/option_processing.cc`` and the manual's "OPTIONS", "aria2.conf" and "Input File"
sections) on top of the table in :mod:`trioaria.cli.option_table`.

Theory of operation
-------------------
Every layer works on *strings* first, exactly like aria2 (whose ``Option`` object is a string
map): :func:`~trioaria.cli.argv.parse_argv` turns ``argv`` into ``{name: raw}`` with GNU
``getopt_long`` rules, :func:`~trioaria.cli.conf_file.parse_conf_file` does the same for
``aria2.conf`` and :func:`trioaria.cli.input_file.parse_input_file` for each ``-i`` entry.
Repeatable (LIST) options are kept as one string joined with ``"\\n"``, which is also aria2's
internal form.  :func:`build_options` then layers table defaults < environment-derived defaults
< conf file < command line and validates every value with
:func:`~trioaria.cli.values.parse_value` into an immutable :class:`Options`.  Invalid values
raise :class:`~trioaria.base.errors.OptionError` (exit status 28) naming ``--NAME``.

The parsing functions live in :mod:`trioaria.cli.values`, :mod:`trioaria.cli.argv` and
:mod:`trioaria.cli.conf_file` and are re-exported here.  Nothing here touches the process
environment or the file system.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from trioaria.base.errors import OptionError
from trioaria.cli.argv import parse_argv
from trioaria.cli.conf_file import conf_file_candidates, dynamic_defaults, parse_conf_file
from trioaria.cli.option_table import OPTIONS, OptionSpec, OptType
from trioaria.cli.unsupported import unsupported_warning
from trioaria.cli.values import (
    HASH_HEX_LENGTHS,
    OptionValue,
    expand_home,
    option_error,
    parse_value,
    value_to_string,
)

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


#: The one-line warning for an accepted but unimplemented option (kept under its old name).
UNSUPPORTED_WARNING = unsupported_warning


def _spec(name: str) -> OptionSpec:
    try:
        return OPTIONS[name]
    except KeyError:
        raise OptionError(f"unknown option '--{name}'") from None


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
            replace_lists: replace LIST values instead of appending to them (aria2
                appends the command line's to the conf file's; an ``-i`` entry's value, and
                an RPC option, replaces the global one).

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
                raise option_error(spec, "expected a single string value")
            value = parse_value(spec, given, home=home)
            values[name] = value
            raw[name] = value_to_string(spec, value, expand_home(spec, given, home))
        marked = self._explicit | frozenset(mapping) if explicit else self._explicit
        return Options(values, raw, marked)

    def without(self, *names: str) -> Options:
        """Return a copy where ``names`` are back at their table defaults, unset by the user
        (e.g. a Metalink document's ``--select-file`` that must not reach its torrent)."""
        defaults = _table_defaults()
        values = dict(self._values)
        raw = dict(self._raw)
        for name in names:
            _spec(name)
            values.pop(name, None)
            raw.pop(name, None)
            if name in defaults._values:
                values[name] = defaults._values[name]
                raw[name] = defaults._raw[name]
        return Options(values, raw, self._explicit - frozenset(names))

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
