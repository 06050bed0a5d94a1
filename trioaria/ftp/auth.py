"""Credentials for FTP (and SFTP): the ``.netrc`` file on disk plus aria2's precedence.

The parsing and the lookup order are pure (:mod:`trioaria.net.netrc`); this driver-side module
reads the file.  Like aria2 (``MultiUrlRequestInfo.cc``) and ftp(1), a netrc file that group or
others may read is refused with a notice ("It should be 600. netrc support disabled.").
``-n/--no-netrc`` skips it; ``--netrc-path`` names it (default ``~/.netrc``).
"""

from __future__ import annotations

import logging
import os
import stat
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..net.netrc import Netrc

__all__ = ["credentials_for", "load_netrc"]

log = logging.getLogger("trioaria.ftp")

_CACHE: dict[tuple[str, int, int], Netrc | None] = {}


def load_netrc(options: Any) -> Netrc | None:
    """The parsed netrc named by the options, or None (``-n``, missing, or too permissive).

    Raises:
        OptionError: the file cannot be parsed (aria2 aborts too).
    """
    if options.get("no-netrc"):
        return None
    path = options.get("netrc-path")
    if not path:
        return None
    path = os.path.expanduser(str(path))
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    key = (path, st.st_mtime_ns, st.st_mode)
    if key in _CACHE:
        return _CACHE[key]
    netrc: Netrc | None = None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.log(
            logging.INFO + 5,
            ".netrc file %s does not have correct permissions. It should be 600. "
            "netrc support disabled.",
            path,
        )
    else:
        from ..net.netrc import parse_netrc  # only when the file exists (start-up time)

        with open(path, encoding="utf-8", errors="replace") as f:
            netrc = parse_netrc(f.read())
    _CACHE[key] = netrc
    return netrc


def credentials_for(
    host: str, url_user: str | None, url_password: str | None, options: Any
) -> tuple[str, str]:
    """``(user, password)`` in aria2's order: URL, ``--ftp-user``, netrc, anonymous."""
    from ..net.netrc import resolve_credentials  # FTP only; the module costs ~1 ms at start-up

    return resolve_credentials(
        host,
        url_user=url_user,
        url_password=url_password,
        option_user=options.get("ftp-user"),
        option_password=options.get("ftp-passwd"),
        netrc=load_netrc(options),
    )
