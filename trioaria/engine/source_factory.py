"""Turn a URI into the :class:`~trioaria.base.sources.RangeSource` for its scheme.

An ``ftp://`` URI whose proxy forwards with GET (``--ftp-proxy``/``--all-proxy`` with the
default ``--proxy-method=get``) is an HTTP source: the proxy speaks FTP.  An HTTP source is
given :func:`make_source` itself, so a redirect to ``ftp://`` or
``sftp://`` is served by that driver (issue 15; aria2 follows such redirects too).
:func:`open_services` is the run-wide nursery of the drivers' background tasks (the FTP
pool's reaper; :mod:`trioaria.net.services`): the engine opens it once around its queue.
"""

from __future__ import annotations

import functools
import urllib.parse
from typing import Any

from ..base import errors
from ..base.sources import RangeSource
from ..net.services import open_services

__all__ = ["make_source", "open_services", "supported_scheme"]

_SCHEMES = ("http", "https", "ftp", "ftps", "ftpes", "sftp")


def supported_scheme(uri: str) -> bool:
    return uri.partition(":")[0].lower() in _SCHEMES


def _forwarded(uri: str, options: Any) -> bool:
    """Whether *uri* goes to a forwarding (GET) HTTP proxy rather than to its server."""
    from ..net.proxy import ProxySettings

    host = urllib.parse.urlsplit(uri).hostname or ""
    route = ProxySettings.from_options(options.get).route("ftp", host)
    return route is not None and not route.tunnel


def make_source(uri: str, options: Any) -> RangeSource:
    """Build the source for ``uri``; an unknown scheme, or a URI without a host or with a port
    that is not a number in 1-65535, is a clear one-line error (exit 1, as aria2's
    "Unrecognized URI or unsupported protocol")."""
    scheme = uri.partition(":")[0].lower()
    if scheme in _SCHEMES:
        _check_authority(uri)
    if scheme in ("http", "https"):
        from ..http.source import HttpSource

        return HttpSource(uri, options, follow=functools.partial(make_source, options=options))
    if scheme == "ftp" and _forwarded(uri, options):
        # an HTTP proxy in --proxy-method=get fetches ftp:// itself (aria2: "Use GET for FTP
        # via HTTP proxy"): the HTTP driver sends it the absolute URI
        from ..http.source import HttpSource

        return HttpSource(uri, options)
    if scheme in ("ftp", "ftps", "ftpes"):
        from ..ftp.source import FtpSource

        return FtpSource(uri, options)
    if scheme == "sftp":
        from ..sftp.source import SftpSource

        return SftpSource(uri, options)
    raise errors.TrioariaError(f"unsupported URI scheme: {uri}", retryable=False)


_SCHEMES = ("http", "https", "ftp", "ftps", "ftpes", "sftp")


def _check_authority(uri: str) -> None:
    try:
        parts = urllib.parse.urlsplit(uri)
        usable = bool(parts.hostname) and parts.port != 0
    except ValueError:  # "[::1", a port out of range or not a number
        usable = False
    if not usable:
        raise errors.TrioariaError(
            f"Unrecognized URI or unsupported protocol: {uri}", retryable=False
        )
