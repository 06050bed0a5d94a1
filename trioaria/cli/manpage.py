"""The ``trioaria(1)`` manual page, generated from the option table (pure).

``--help`` ends with "Refer to man page for more information.", so a page ships in the wheel
(``trioaria/trioaria.1``, package data).  It is not written by hand: :func:`render_manpage`
builds it from :data:`~trioaria.cli.option_table.OPTIONS` (the same text, defaults, possible
values and "(not implemented)" notes as ``--help``) and aria2's exit codes, and
``tests/cli/test_manpage.py`` fails when the shipped file differs from what it generates.
Regenerate with::

    python -m trioaria.cli.manpage > trioaria/trioaria.1

The page is plain ``man(7)`` roff with no date, so the same tree always yields the same bytes.
Options are grouped by their first help tag, in aria2's tag order, as ``aria2c.1`` groups them.
"""

from __future__ import annotations

from trioaria._version import __version__
from trioaria.base.errors import ExitCode
from trioaria.cli.help import possible_values
from trioaria.cli.option_table import OPTIONS, TAGS, OptionSpec
from trioaria.cli.unsupported import status_note
from trioaria.net.proxy import PROXY_VARIABLES

__all__ = ["render_manpage"]

_SECTION_TITLES = {
    "#basic": "Basic options",
    "#advanced": "Advanced options",
    "#http": "HTTP options",
    "#https": "HTTPS options",
    "#ftp": "FTP and SFTP options",
    "#metalink": "Metalink options",
    "#bittorrent": "BitTorrent options",
    "#cookie": "Cookie options",
    "#hook": "Hook options",
    "#file": "File options",
    "#rpc": "RPC options",
    "#checksum": "Checksum options",
    "#experimental": "Experimental options",
    "#deprecated": "Deprecated options",
    "#help": "Help options",
}

_EXIT_TEXT = {
    ExitCode.FINISHED: "All downloads were successful.",
    ExitCode.UNKNOWN_ERROR: "An unknown error occurred.",
    ExitCode.TIME_OUT: "A time-out occurred.",
    ExitCode.RESOURCE_NOT_FOUND: "A resource was not found.",
    ExitCode.MAX_FILE_NOT_FOUND: "--max-file-not-found answers of 'not found' were received.",
    ExitCode.TOO_SLOW_DOWNLOAD_SPEED: "The download was too slow (--lowest-speed-limit).",
    ExitCode.NETWORK_PROBLEM: "A network problem occurred.",
    ExitCode.IN_PROGRESS: "Unfinished downloads remained (Ctrl-C, --stop); they resume with -c.",
    ExitCode.CANNOT_RESUME: "The server does not support resume, or the file changed.",
    ExitCode.NOT_ENOUGH_DISK_SPACE: "There was not enough disk space.",
    ExitCode.PIECE_LENGTH_CHANGED: "The piece length differs from the control file.",
    ExitCode.DUPLICATE_DOWNLOAD: "The same file was being downloaded already.",
    ExitCode.DUPLICATE_INFO_HASH: "The same info hash was being downloaded already.",
    ExitCode.FILE_ALREADY_EXISTS: "The file already existed (see --allow-overwrite).",
    ExitCode.FILE_RENAMING_FAILED: "Renaming the file failed (see --auto-file-renaming).",
    ExitCode.FILE_OPEN_ERROR: "An existing file could not be opened.",
    ExitCode.FILE_CREATE_ERROR: "A file could not be created or truncated.",
    ExitCode.FILE_IO_ERROR: "A file I/O error occurred.",
    ExitCode.DIR_CREATE_ERROR: "A directory could not be created.",
    ExitCode.NAME_RESOLVE_ERROR: "A host name could not be resolved.",
    ExitCode.METALINK_PARSE_ERROR: "A Metalink document could not be parsed.",
    ExitCode.FTP_PROTOCOL_ERROR: "An FTP command failed.",
    ExitCode.HTTP_PROTOCOL_ERROR: "An HTTP response was bad or unexpected.",
    ExitCode.HTTP_TOO_MANY_REDIRECTS: "Too many redirects.",
    ExitCode.HTTP_AUTH_FAILED: "HTTP authorization failed.",
    ExitCode.BENCODE_PARSE_ERROR: "A bencoded file (.torrent) could not be parsed.",
    ExitCode.BITTORRENT_PARSE_ERROR: "A .torrent file was corrupt or missing information.",
    ExitCode.MAGNET_PARSE_ERROR: "A magnet URI was bad.",
    ExitCode.OPTION_ERROR: "An option was unknown, had a bad value, or is refused until it is"
    " implemented (proxies).",
    ExitCode.HTTP_SERVICE_UNAVAILABLE: "The server answered 503 and the download gave up.",
    ExitCode.JSON_PARSE_ERROR: "A JSON-RPC request could not be parsed.",
    ExitCode.REMOVED: "Reserved (aria2: a download was removed).",
    ExitCode.CHECKSUM_ERROR: "A checksum did not match.",
}


def _text(line: str) -> str:
    """Escape running text for roff: backslashes, and a leading ``.``/``'`` (a request)."""
    line = line.replace("\\", "\\e")
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line


def _dashes(text: str) -> str:
    """Option names and flags: ``-`` is a hyphen in roff; ``\\-`` is the minus users type."""
    return _text(text).replace("-", "\\-")


def _option(spec: OptionSpec) -> list[str]:
    flags = f"-{spec.short}, --{spec.name}" if spec.short else f"--{spec.name}"
    out = [".TP", f"\\fB{_dashes(flags)}\\fR{_dashes(spec.metavar)}", _text(spec.help)]
    details = []
    possible = possible_values(spec)
    if possible:
        details.append(f"Possible values: {possible}")
    if spec.default:
        details.append(f"Default: {spec.default}")
    details.append(f"Tags: {', '.join(spec.tags) or 'none'}")
    for detail in details:
        out.extend([".br", _text(detail)])
    note = status_note(spec.name)
    if note:
        out.extend([".br", f"\\fI{_text(note)}\\fR"])
    return out


def _sections() -> list[tuple[str, list[OptionSpec]]]:
    groups: dict[str, list[OptionSpec]] = {tag: [] for tag in TAGS}
    other: list[OptionSpec] = []
    for spec in OPTIONS.values():
        if spec.hidden:
            continue
        if spec.tags and spec.tags[0] in groups:
            groups[spec.tags[0]].append(spec)
        else:
            other.append(spec)
    out = [(_SECTION_TITLES.get(tag, tag), specs) for tag, specs in groups.items() if specs]
    if other:
        out.append(("Other options", other))
    return out


def render_manpage() -> str:
    """The complete ``trioaria.1`` page (roff text, ending with a newline)."""
    lines = [
        '.\\" Generated by trioaria.cli.manpage from the option table; do not edit.',
        f'.TH TRIOARIA 1 "" "trioaria {__version__}" "User Commands"',
        ".SH NAME",
        "trioaria \\- a pure\\-Python re\\-implementation of the aria2 download utility",
        ".SH SYNOPSIS",
        ".B trioaria",
        "[\\fIOPTIONS\\fR] [\\fIURI\\fR | \\fIMAGNET\\fR | \\fITORRENT_FILE\\fR |"
        " \\fIMETALINK_FILE\\fR]...",
        ".SH DESCRIPTION",
        "trioaria downloads files over HTTP(S), FTP, FTPS and SFTP, from one or several mirrors,",
        "with several connections per file, the way",
        ".BR aria2c (1)",
        "does.  It keeps aria2's option names, defaults, configuration file, input-file format,",
        ".I .aria2",
        "control files and exit codes, so a download started by one program can be finished by",
        "the other.",
        ".PP",
        "Several URIs on the command line are mirrors of one file, unless",
        ".B \\-Z",
        "is given.  Every aria2 option name is accepted.  An option that is not implemented yet",
        "is marked below; most of them are accepted with a warning and ignored, but those whose",
        "omission would send traffic elsewhere than asked (proxies, interfaces, the DNS server)",
        "are an error (exit status 28) until they are implemented.",
        ".SH OPTIONS",
    ]
    for title, specs in _sections():
        lines.append(f".SS {title}")
        for spec in specs:
            lines.extend(_option(spec))
    lines += [
        ".SH FILES",
        ".TP",
        ".I $HOME/.aria2/aria2.conf",
        "The configuration file, else",
        ".IR $XDG_CONFIG_HOME/aria2/aria2.conf ;",
        "one",
        ".I name=value",
        "option per line, without the leading dashes.",
        ".B \\-\\-conf\\-path",
        "names another file and",
        ".B \\-\\-no\\-conf",
        "skips it.",
        ".TP",
        ".I FILE.aria2",
        "The control file next to an unfinished download: aria2's version 1 layout.",
        ".SH ENVIRONMENT",
        ".TP",
        ".I " + ", ".join(PROXY_VARIABLES),
        "Set the matching proxy option, as in aria2: over the configuration file, under the",
        "command line.  Upper-case spellings are read too; the lower-case one wins when both are set.",
        ".SH EXIT STATUS",
    ]
    for code in ExitCode:
        lines += [".TP", f".B {int(code)}", _text(_EXIT_TEXT[code])]
    lines += [
        ".SH SEE ALSO",
        ".BR aria2c (1)",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - the regeneration command in the docstring
    print(render_manpage(), end="")
