"""``aria2.conf``: ``name=value`` lines, where the file is looked for, environment defaults (pure).

aria2's ``OptionParser::parse(Option&, istream&)``, ``util::getConfigFile`` and the defaults it
computes at start-up (``src/option_processing.cc``).  :func:`name_value_lines` is shared with the
``-i`` input-file parser (:mod:`trioaria.cli.input_file`), whose indented option lines have the
same syntax.  Nothing here reads the environment or the file system: callers pass ``env`` and an
``exists`` predicate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from trioaria.base.errors import OptionError
from trioaria.cli.option_table import OPTIONS, OptionSpec
from trioaria.cli.values import expand_home, parse_value, store_raw

__all__ = ["conf_file_candidates", "dynamic_defaults", "name_value_lines", "parse_conf_file"]


def name_value_lines(
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
        store_raw(out, spec, expand_home(spec, value, home))
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
    return name_value_lines(_lines(text), where=where, home=home, on_unknown=on_unknown)


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
