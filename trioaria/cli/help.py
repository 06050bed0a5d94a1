"""``--help`` text in aria2c's layout (pure).

Follows aria2's ``showUsage`` (``src/version_usage.cc``) and the per-option block
of ``src/OptionHandler.cc``: a usage line; then, for ``#TAG`` (``#basic`` by
default), ``#all`` or a keyword matched against option names, one block per
option::

     -x, --max-connection-per-server=NUM Maximum connections to one server ...

                                  Possible Values: 1-65535
                                  Default: 1
                                  Tags: #basic, #http, #ftp

An option that is parsed but not honoured yet gets a last line starting with
``(not implemented)`` that says whether it is ignored with a warning or refused.
Hidden options are left out as in aria2.  An unknown ``#tag`` prints an empty
list, as aria2c does.  Our extra pseudo-tag ``#unsupported`` lists every option
that is accepted but not implemented yet (hidden ones included).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING

from trioaria.cli.option_table import OPTIONS, TAGS, ArgKind, OptionSpec, OptType
from trioaria.cli.unsupported import status_note

if TYPE_CHECKING:
    from trioaria.cli.options import Options

__all__ = ["HELP_TAGS", "possible_values", "render_help", "render_option"]

#: Every value ``--help`` understands as a tag (aria2's plus ``#all`` and ``#unsupported``).
HELP_TAGS: tuple[str, ...] = (*TAGS, "#all", "#unsupported")

_INDENT = 30  # aria2 aligns descriptions at column 30
_WIDTH = 80

_FIXED_POSSIBLE: dict[OptType, str] = {
    OptType.BOOL: "true, false",
    OptType.CONCURRENCY: "true, false, A:B",
    OptType.CHECKSUM: "HASH_TYPE=HEX_DIGEST",
    OptType.HOST_PORT: "HOST:PORT",
    OptType.PROXY: "[http://][USER:PASSWORD@]HOST[:PORT]",
    OptType.PIECE_PRIORITY: "head[=SIZE], tail[=SIZE]",
}


def _bound(value: int | float | None, as_float: bool) -> str:
    if value is None:
        return "*"
    return f"{value:.1f}" if as_float else str(value)


def possible_values(spec: OptionSpec) -> str:
    """The ``Possible Values:`` text of an option ("" when there is none)."""
    if spec.name == "help":
        return ", ".join(HELP_TAGS)
    if spec.arg is ArgKind.NONE:
        return ""
    if spec.possible:
        return spec.possible
    if spec.type in _FIXED_POSSIBLE:
        return _FIXED_POSSIBLE[spec.type]
    if spec.type is OptType.ENUM:
        return ", ".join(spec.choices)
    if spec.type in (OptType.INT, OptType.UNIT, OptType.FLOAT, OptType.INT_RANGE):
        as_float = spec.type is OptType.FLOAT
        return f"{_bound(spec.min, as_float)}-{_bound(spec.max, as_float)}"
    return ""


def render_option(spec: OptionSpec, *, default: str | None = None) -> str:
    """One option's block (without the blank line that separates blocks).

    Args:
        spec: the option.
        default: the default to show instead of ``spec.default`` (for
            environment-derived defaults such as ``--dir``).
    """
    head = f" -{spec.short}, --{spec.name}" if spec.short else f" --{spec.name}"
    head += spec.metavar
    head = head.ljust(_INDENT) if len(head) < _INDENT else head + " "
    pad = " " * _INDENT
    # A head longer than the column pushes the first line right; keep it within _WIDTH.
    overhang = "\0" * (len(head) - _INDENT)
    body = textwrap.wrap(spec.help, _WIDTH - _INDENT, initial_indent=overhang) or [overhang]
    lines = [head + body[0][len(overhang) :], *(pad + line for line in body[1:]), ""]
    possible = possible_values(spec)
    if possible:
        lines.append(f"{pad}Possible Values: {possible}")
    shown = spec.default if default is None else default
    if shown:
        lines.append(f"{pad}Default: {shown}")
    lines.append(f"{pad}Tags: {', '.join(spec.tags)}")
    note = status_note(spec.name)
    if note:
        lines.extend(pad + line for line in textwrap.wrap(note, _WIDTH - _INDENT))
    return "\n".join(lines)


def _basic_epilogue(prog: str) -> str:
    return (
        "URI, MAGNET, TORRENT_FILE, METALINK_FILE:\n"
        " Several HTTP(S)/FTP/SFTP URIs name mirrors of one file unless -Z is given.\n"
        " Magnet URIs, .torrent and .metalink files are always separate downloads.\n"
        " With -T and URIs together, the HTTP/FTP data also feeds the swarm.\n"
        " Quote URIs that contain '&' or other characters special to the shell.\n"
        "\n"
        "About the number of connections\n"
        f" {prog} opens 1 connection per host by default (-x) and does not split\n"
        " ranges below 2*20MiB (-k); for more parallelism try -x4 -k1M.\n"
        "\n"
    )


def render_help(
    tag_or_keyword: str | None,
    options: Options | None = None,
    *,
    prog: str = "trioaria",
    defaults: Mapping[str, str] | None = None,
    table: Mapping[str, OptionSpec] = OPTIONS,
) -> str:
    """Render ``--help[=TAG|KEYWORD]``.

    Args:
        tag_or_keyword: ``None`` means ``#basic``; ``""`` gives the one-line
            usage aria2 prints after an error; ``#TAG``, ``#all``,
            ``#unsupported`` or a word matched against option names (a leading
            ``--`` and anything from ``=`` on are dropped, as in aria2).
        options: the effective options, if known.  Values that were not set
            explicitly but differ from the table's default (environment-derived
            ones such as ``--dir``) are shown as ``Default:``.
        prog: the program name for the usage line.
        defaults: further defaults to show in place of the table's.
        table: the option table.

    Returns:
        The text, ending with a newline.
    """
    shown_defaults: dict[str, str] = {}
    if options is not None:
        explicit = options.explicit_names()
        table_defaults = type(options).defaults().as_strings()
        shown_defaults.update(
            (name, value)
            for name, value in options.as_strings().items()
            if name not in explicit and value != table_defaults.get(name)
        )
    shown_defaults.update(defaults or {})
    out = [f"Usage: {prog} [OPTIONS] [URI | MAGNET | TORRENT_FILE | METALINK_FILE]..."]
    keyword = "#basic" if tag_or_keyword is None else tag_or_keyword
    if keyword.startswith("--"):
        keyword = keyword[2:]
    keyword = keyword.partition("=")[0]
    if not keyword:
        out.append(f"See '{prog} -h'.")
        return "\n".join(out) + "\n"
    visible = [spec for spec in table.values() if not spec.hidden]
    if keyword == "#all":
        out.append("Printing all options.")
        chosen = visible
    elif keyword == "#unsupported":
        out.append("Printing options that are accepted but not implemented yet.")
        chosen = [spec for spec in table.values() if not spec.implemented]
    elif keyword.startswith("#"):
        out.append(f"Printing options tagged with '{keyword}'.")
        out.append(f"See '{prog} -h#help' to know all available tags.")
        chosen = [spec for spec in visible if keyword in spec.tags]
    else:
        chosen = [spec for spec in visible if keyword in spec.name]
        if not chosen:
            out.append(f"No option matching with '{keyword}'.")
            out.append(render_option(table["help"]))
            out.append("Refer to man page for more information.")
            return "\n".join(out) + "\n"
        out.append(f"Printing options whose name includes '{keyword}'.")
    out.append("Options:")
    for spec in chosen:
        out.append(render_option(spec, default=shown_defaults.get(spec.name)))
        out.append("")
    text = "\n".join(out) + "\n"
    if keyword == "#basic":
        text += _basic_epilogue(prog)
    return text + "Refer to man page for more information.\n"
