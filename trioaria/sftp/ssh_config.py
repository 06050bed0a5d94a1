"""The part of OpenSSH's ``~/.ssh/config`` that decides where and as whom to log in (pure).

ssh_config(5) rules, for the keywords trioaria uses: ``Host``, ``HostName``, ``Port``, ``User``
and ``IdentityFile``.  A line is a keyword and its arguments, separated by whitespace or one
``=``; keywords are case-insensitive; ``#`` starts a comment.  ``Host`` starts a block that
applies when one of its patterns matches the name given on the command line (``*`` and ``?``
wildcards, ``!pattern`` negates and vetoes the block); lines before the first ``Host`` apply to
every host.  For each keyword the *first* value obtained wins, except ``IdentityFile``, whose
values accumulate in order.  ``%h`` in ``HostName`` is the name given, ``%%`` a percent sign.

``Match`` starts a block that applies when all its criteria hold (``!`` negates one):
``all``; ``host`` (the name after a ``HostName`` set so far), ``originalhost`` (the name given),
``user`` (the remote user: the URL's, else a ``User`` set so far, else the local one) and
``localuser`` take pattern lists as ``Host`` does; ``final`` holds (this is the one pass);
``canonical`` does not (no name canonicalization), and neither do ``exec`` (no command is
ever run) nor criteria this module does not know, so such a block is skipped.

``Include`` reads other files in place, as OpenSSH does: each argument may hold glob wildcards
and ``~``, a relative one is under ``~/.ssh``, matches are read in lexical order.  An
``Include`` inside a block that does not apply includes nothing; a ``Host`` line inside an
included file starts a block there, and the including file's block goes on after it.  Nesting
stops at 16 levels.  Reading the files is the caller's part (``include=``), so this module
stays pure.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["MAX_INCLUDE_DEPTH", "HostConfig", "lookup"]

#: OpenSSH's limit on nested ``Include`` (``READCONF_MAX_DEPTH``)
MAX_INCLUDE_DEPTH = 16

#: ``Include``'s reader: one argument (a path pattern) -> the texts of the files it names
Loader = Callable[[str], Sequence[str]]


@dataclass(frozen=True, slots=True)
class HostConfig:
    """What the config says for one host name (``None``: not set)."""

    hostname: str | None = None
    port: int | None = None
    user: str | None = None
    identity_files: tuple[str, ...] = ()


def _split(line: str) -> tuple[str, str] | None:
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    head, sep, rest = line.partition("=")
    key_ws = line.split(None, 1)
    if sep and (len(key_ws) == 1 or len(head.split()) == 1):
        key, value = head.strip(), rest.strip()
    else:
        key, value = key_ws[0], (key_ws[1].strip() if len(key_ws) > 1 else "")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return key.lower(), value


def _host_matches(patterns: list[str], name: str) -> bool:
    name = name.lower()
    matched = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if fnmatch.fnmatchcase(name, pattern.removeprefix("!").lower()):
            if negated:
                return False
            matched = True
    return matched


def _expand_hostname(hostname: str, name: str) -> str:
    """``HostName``'s tokens: ``%h`` is the name given, ``%%`` a percent sign."""
    return hostname.replace("%h", name).replace("%%", "%")


@dataclass(frozen=True, slots=True)
class _Who:
    """What ``Match`` criteria are tested against, besides the settings so far."""

    name: str
    user: str | None
    local_user: str | None


_MATCH_WITH_ARG = frozenset({"host", "originalhost", "user", "localuser", "exec"})


def _match(value: str, who: _Who, values: dict[str, str]) -> bool:
    """Whether a ``Match`` line's criteria all hold (ssh_config(5) "Match")."""
    words = value.split()
    if not words:
        return False
    ok = True
    i = 0
    while i < len(words):
        word = words[i]
        negated = word.startswith("!")
        key = word.removeprefix("!").lower()
        i += 1
        if key in _MATCH_WITH_ARG:
            if i >= len(words):
                return False  # a criterion without its argument: OpenSSH refuses the file
            arg = words[i]
            i += 1
            hostname = values.get("hostname")
            subject = {
                "host": _expand_hostname(hostname, who.name) if hostname else who.name,
                "originalhost": who.name,
                "user": who.user or values.get("user") or who.local_user,
                "localuser": who.local_user,
            }.get(key)
            hit = subject is not None and _host_matches(arg.split(","), subject)
        elif key in ("all", "final"):
            hit = True
        else:  # canonical, and criteria not known here
            hit = False
        ok = ok and (hit != negated)
    return ok


def _apply(
    text: str,
    who: _Who,
    values: dict[str, str],
    identities: list[str],
    include: Loader | None,
    *,
    active: bool,
    depth: int,
) -> None:
    """Fold one file's lines into *values* and *identities*; ``active``: the block around an
    ``Include`` applies (an included file starts in it)."""
    for raw in text.splitlines():
        parsed = _split(raw)
        if parsed is None:
            continue
        key, value = parsed
        if key == "host":
            active = _host_matches(value.split(), who.name)
            continue
        if key == "match":
            active = _match(value, who, values)
            continue
        if not active or not value:
            continue
        if key == "include":
            if include is not None and depth < MAX_INCLUDE_DEPTH:
                for pattern in value.split():
                    for included in include(pattern):
                        _apply(included, who, values, identities, include,
                               active=True, depth=depth + 1)  # fmt: skip
        elif key == "identityfile":
            identities.append(value)
        elif key in ("hostname", "port", "user") and key not in values:
            values[key] = value


def lookup(
    text: str,
    name: str,
    *,
    include: Loader | None = None,
    user: str | None = None,
    local_user: str | None = None,
) -> HostConfig:
    """The settings of *text* (a config file's contents) for the host *name*.

    *include* reads the files an ``Include`` line names (none are read without it); *user* is
    the remote user when the URL names one, *local_user* the local login name (``Match user``
    and ``Match localuser``).
    """
    values: dict[str, str] = {}
    identities: list[str] = []
    who = _Who(name, user, local_user)
    _apply(text, who, values, identities, include, active=True, depth=0)
    port: int | None = None
    if "port" in values:
        try:
            port = int(values["port"])
        except ValueError:
            port = None
        if port is not None and not 0 < port < 65536:
            port = None
    hostname = values.get("hostname")
    if hostname is not None:
        hostname = _expand_hostname(hostname, name)
    return HostConfig(
        hostname=hostname,
        port=port,
        user=values.get("user"),
        identity_files=tuple(identities),
    )
