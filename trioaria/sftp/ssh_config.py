"""The part of OpenSSH's ``~/.ssh/config`` that decides where and as whom to log in (pure).

ssh_config(5) rules, for the keywords trioaria uses: ``Host``, ``HostName``, ``Port``, ``User``
and ``IdentityFile``.  A line is a keyword and its arguments, separated by whitespace or one
``=``; keywords are case-insensitive; ``#`` starts a comment.  ``Host`` starts a block that
applies when one of its patterns matches the name given on the command line (``*`` and ``?``
wildcards, ``!pattern`` negates and vetoes the block); lines before the first ``Host`` apply to
every host.  For each keyword the *first* value obtained wins, except ``IdentityFile``, whose
values accumulate in order.  ``%h`` in ``HostName`` is the name given, ``%%`` a percent sign.
``Match`` blocks are skipped (their conditions need a shell and the local user), and so is
``Include``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

__all__ = ["HostConfig", "lookup"]


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


def lookup(text: str, name: str) -> HostConfig:
    """The settings of *text* (a config file's contents) for the host *name*."""
    active = True
    values: dict[str, str] = {}
    identities: list[str] = []
    for raw in text.splitlines():
        parsed = _split(raw)
        if parsed is None:
            continue
        key, value = parsed
        if key == "host":
            active = _host_matches(value.split(), name)
            continue
        if key == "match":
            active = False
            continue
        if not active or not value:
            continue
        if key == "identityfile":
            identities.append(value)
        elif key in ("hostname", "port", "user") and key not in values:
            values[key] = value
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
        hostname = hostname.replace("%h", name).replace("%%", "%")
    return HostConfig(
        hostname=hostname,
        port=port,
        user=values.get("user"),
        identity_files=tuple(identities),
    )
