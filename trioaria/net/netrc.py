"""The ``.netrc`` file (pure): parse its text and find the credentials for a host.

Behaviour follows aria2 (``src/Netrc.cc``, ``src/AuthConfigFactory.cc``), which follows the
classic ftp(1) format: whitespace-separated tokens ``machine NAME``, ``default``, ``login``,
``password``, ``account`` and ``macdef NAME`` (its body runs to the next empty line and is
skipped); ``#`` starts a comment line.  The first entry that matches wins; ``default``
matches every host.  A machine name starting with ``.`` matches a domain suffix
(``.example.org`` matches ``ftp.example.org``) but never a numeric address (aria2
``util::noProxyDomainMatch``).

Credentials for FTP and SFTP (:func:`resolve_credentials`), in aria2's order:

1. user and password from the URL;
2. user from the URL without a password: the netrc password when the netrc entry for the
   host has that login, else ``--ftp-passwd``;
3. ``--ftp-user`` (with ``--ftp-passwd``) when given;
4. the netrc entry for the host (unless ``-n``);
5. ``anonymous`` / ``ARIA2USER@``.

Reading the file is the driver's job (``trioaria.ftp.auth.load_netrc``), which also refuses a
file readable by group or others, as aria2 and ftp(1) do.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..base.errors import OptionError

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "Netrc",
    "NetrcEntry",
    "parse_netrc",
    "resolve_credentials",
]

#: aria2's default FTP credentials (AuthConfigFactory.cc AUTH_DEFAULT_USER/PASSWD).
DEFAULT_USER = "anonymous"
DEFAULT_PASSWORD = "ARIA2USER@"


@dataclass(frozen=True, slots=True)
class NetrcEntry:
    """One ``machine`` (or ``default``, machine ``""``) entry."""

    machine: str
    login: str = ""
    password: str = ""
    account: str = ""

    def matches(self, host: str) -> bool:
        if not self.machine:
            return True  # default
        if self.machine.startswith(".") and not _numeric(host):
            return host.lower().endswith(self.machine.lower())
        return host.lower() == self.machine.lower()


def _numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Netrc:
    """The parsed file: entries in file order."""

    entries: tuple[NetrcEntry, ...] = ()

    def find(self, host: str, *, ignore_default: bool = False) -> NetrcEntry | None:
        """The first entry matching *host* (``default`` skipped when *ignore_default*)."""
        for entry in self.entries:
            if ignore_default and not entry.machine:
                continue
            if entry.matches(host):
                return entry
        return None


_FIELDS = {"login", "password", "account"}


def parse_netrc(text: str) -> Netrc:
    """Parse the netrc *text*.

    Raises:
        OptionError: a token where ``machine`` or ``default`` was expected, or the file
            ends where a value was expected (aria2 aborts on both).
    """
    entries: list[NetrcEntry] = []
    current: dict[str, str] | None = None
    expect: str | None = None  # the keyword whose value comes next
    lines = text.splitlines()
    i = 0

    def store() -> None:
        if current is not None:
            entries.append(NetrcEntry(**current))

    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("#"):
            continue
        for token in line.split():
            if expect is not None:
                if expect == "macdef":
                    # the body runs to the next empty line
                    while i < len(lines) and lines[i].strip():
                        i += 1
                    expect = None
                    break
                assert current is not None
                current[expect] = token
                expect = None
                continue
            if token == "machine":
                store()
                current = {"machine": ""}
                expect = "machine"
            elif token == "default":
                store()
                current = {"machine": ""}
            elif current is None:
                raise OptionError(
                    f"netrc: parse error: {token!r} where 'machine' or 'default' was expected"
                )
            elif token in _FIELDS or token == "macdef":
                expect = token
            # unknown tokens are ignored, as aria2 does
    if expect is not None and expect != "macdef":
        raise OptionError("netrc: parse error: the file ends where a value was expected")
    store()
    return Netrc(tuple(entries))


def resolve_credentials(
    host: str,
    *,
    url_user: str | None,
    url_password: str | None,
    option_user: str | None,
    option_password: str | None,
    netrc: Netrc | None,
) -> tuple[str, str]:
    """``(user, password)`` for *host* in aria2's order (see the module docstring).

    Args:
        host: the URL's host.
        url_user, url_password: from ``user:pass@`` in the URL (None when absent).
        option_user, option_password: ``--ftp-user`` / ``--ftp-passwd``.
        netrc: the parsed netrc, or None (``-n``, missing or refused file).
    """
    if url_user:
        if url_password is not None:
            return url_user, url_password
        entry = netrc.find(host) if netrc is not None else None
        if entry is not None and entry.login == url_user:
            return url_user, entry.password
        return url_user, option_password or ""
    if option_user:
        return option_user, option_password or ""
    entry = netrc.find(host) if netrc is not None else None
    if entry is not None and entry.login:
        return entry.login, entry.password
    return DEFAULT_USER, DEFAULT_PASSWORD
