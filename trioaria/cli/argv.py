"""The command line: ``argv`` -> ``{name: raw value}`` and URIs, with GNU getopt rules (pure).

aria2 parses its command line with ``getopt_long`` (``src/OptionParser.cc``); this module keeps
those rules (see :func:`parse_argv`) so an abbreviation, a bundle of short flags or an optional
argument means the same thing to trioaria as to aria2c.  Values are validated later, by
:func:`trioaria.cli.options.build_options`.
"""

from __future__ import annotations

from collections.abc import Sequence

from trioaria.base.errors import OptionError
from trioaria.cli.option_table import OPTIONS, SHORT_OPTIONS, ArgKind, OptionSpec
from trioaria.cli.values import store_raw

__all__ = ["parse_argv"]


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


def _takes_next_word(spec: OptionSpec, argv: Sequence[str], i: int) -> bool:
    """``-h``/``--help`` followed by a separate word that is not an option takes it as its tag or
    keyword (``trioaria -h '#http'``, ``trioaria --help proxy``).  getopt (so aria2c) would
    make that word a URI and print ``#basic``; a URI is useless next to ``--help`` anyway."""
    return spec.name == "help" and i < len(argv) and not argv[i].startswith("-")


def parse_argv(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``argv`` (without the program name) into options and URIs.

    GNU ``getopt_long`` rules, as aria2 uses them: options and URIs may be mixed;
    ``--`` ends the options; ``--name=value`` and ``--name value`` for options
    that require an argument; options with an *optional* argument
    (``--continue``, ``--help``) take one only as ``--name=value``; a unique
    prefix of a long name is accepted (``--max-conn=4``); short flags take
    ``-x16`` or ``-x 16``, and flags with an optional argument take the rest of
    the word (so ``-cZ`` means ``--continue=Z``, an error, exactly as in
    aria2c).  One departure: a bare ``-h``/``--help`` takes the next word as its
    tag or keyword when that word is not an option (``-h '#http'``).  A repeated LIST option (``--header``) accumulates, joined with
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
            elif _takes_next_word(spec, argv, i):
                value = argv[i]
                i += 1
            else:
                value = spec.no_arg_value or ""
            store_raw(opts, spec, value)
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
                    store_raw(opts, spec, spec.no_arg_value or "")
                    continue
                if spec.arg is ArgKind.OPTIONAL:
                    if not rest and _takes_next_word(spec, argv, i):
                        rest = argv[i]
                        i += 1
                    store_raw(opts, spec, rest if rest else spec.no_arg_value or "")
                    break
                if rest:
                    store_raw(opts, spec, rest)
                elif i < n:
                    store_raw(opts, spec, argv[i])
                    i += 1
                else:
                    raise OptionError(f"option requires an argument -- '{letter}'")
                break
            continue
        positional.append(word)
    return opts, positional
