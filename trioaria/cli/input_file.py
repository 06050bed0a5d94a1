"""``-i/--input-file`` lists: URIs with per-download options (pure).

Implements aria2's input file format (manual, "Input File"; ``src/UriListParser.cc``), which is
also the format of ``--save-session``::

    http://mirror1/f.iso<TAB>http://mirror2/f.iso
      dir=/tmp/isos
      out=f.iso
    # a comment
    http://host/other.bin

A line that does not start with whitespace or ``#`` holds the URIs of one download separated
by TAB (blank parts are dropped).  The lines after it that start with a space or TAB are that
download's ``name=value`` options; lines starting with ``#`` and empty lines are skipped and do
not end the block.  Only per-download options are kept (aria2 ignores the others).  An indented
line before the first URI line is a URI line, as in aria2.

Theory of operation
-------------------
:class:`InputFileParser` is fed one line at a time and hands back an :class:`InputEntry` once
the entry is known to be complete, which is when the *next* URI line (or the end of the input)
arrives.  That is what ``--deferred-input`` needs: the CLI reads the file lazily, one entry at a
time, as the engine asks for work, and never holds the whole list.  :func:`parse_input_file`
is the same parser over a whole text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from trioaria.cli.conf_file import name_value_lines

__all__ = [
    "InputEntry",
    "InputFileParser",
    "format_input_file",
    "iter_input_entries",
    "parse_input_file",
]


@dataclass(frozen=True, slots=True)
class InputEntry:
    """One download from an ``-i`` file: its mirror URIs and its own options."""

    uris: tuple[str, ...]
    options: Mapping[str, str] = field(default_factory=dict)


class InputFileParser:
    """Incremental ``-i`` parser: :meth:`feed` lines, then :meth:`finish`.

    Args:
        home: expands ``${HOME}`` in path options when given.
        on_unknown: called with a message for unknown or ignored names (which are skipped);
            when ``None`` an unknown name raises and ignored ones are dropped.
        where: the name used in error messages.
    """

    def __init__(
        self,
        *,
        home: str | None = None,
        on_unknown: Callable[[str], None] | None = None,
        where: str = "input file",
    ) -> None:
        self._home = home
        self._on_unknown = on_unknown
        self._where = where
        self._lineno = 0
        self._uris: tuple[str, ...] | None = None
        self._block: list[tuple[int, str]] = []

    @property
    def lineno(self) -> int:
        """How many lines were fed so far."""
        return self._lineno

    def feed(self, line: str) -> InputEntry | None:
        """Take one line (a trailing ``\\n``/``\\r\\n`` is ignored).

        Returns:
            The previous entry when ``line`` starts a new one, else ``None``.

        Raises:
            OptionError: an invalid option value in the entry being returned (or an unknown
                name without ``on_unknown``), with its line number (exit 28).
        """
        self._lineno += 1
        line = line.rstrip("\n").rstrip("\r")
        if not line or line[0] == "#":
            return None
        if line[0] in " \t" and self._uris is not None:
            self._block.append((self._lineno, line))
            return None
        # aria2 takes an indented line that follows no URI line as a URI line too
        done = self._complete()
        self._uris = tuple(part.strip() for part in line.split("\t") if part.strip())
        return done

    def finish(self) -> InputEntry | None:
        """The last entry, once the input ended (``None`` if there is none)."""
        return self._complete()

    def _complete(self) -> InputEntry | None:
        uris, block = self._uris, self._block
        self._uris, self._block = None, []
        if not uris:
            return None
        options = name_value_lines(
            block,
            where=self._where,
            home=self._home,
            on_unknown=self._on_unknown,
            accept=lambda spec: spec.per_download,
        )
        return InputEntry(uris, options)


def iter_input_entries(
    lines: Iterable[str],
    *,
    home: str | None = None,
    on_unknown: Callable[[str], None] | None = None,
) -> Iterator[InputEntry]:
    """Yield entries as soon as ``lines`` shows each one is complete (lazy; see the module doc)."""
    parser = InputFileParser(home=home, on_unknown=on_unknown)
    for line in lines:
        entry = parser.feed(line)
        if entry is not None:
            yield entry
    last = parser.finish()
    if last is not None:
        yield last


def parse_input_file(
    text: str,
    *,
    home: str | None = None,
    on_unknown: Callable[[str], None] | None = None,
) -> list[InputEntry]:
    """Parse a whole ``-i`` file (also aria2's ``--save-session`` format).

    Args:
        text: the file's contents (already decompressed).
        home: expands ``${HOME}`` in path options when given.
        on_unknown: called for unknown or ignored names (which are skipped);
            when ``None`` an unknown name raises and ignored ones are dropped.

    Raises:
        OptionError: an invalid value (or unknown name), with the line number.
    """
    return list(iter_input_entries(text.split("\n"), home=home, on_unknown=on_unknown))


def format_input_file(entries: Sequence[InputEntry]) -> str:
    """Write entries in the ``-i`` format read by :func:`parse_input_file`."""
    out: list[str] = []
    for entry in entries:
        out.append("\t".join(entry.uris))
        for name, value in entry.options.items():
            out.extend(f" {name}={item}" for item in value.split("\n"))
    return "".join(line + "\n" for line in out)
