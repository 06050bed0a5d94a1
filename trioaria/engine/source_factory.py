"""Turn a URI into the :class:`~trioaria.base.sources.RangeSource` for its scheme."""

from __future__ import annotations

from typing import Any

from ..base import errors
from ..base.sources import RangeSource

__all__ = ["make_source", "supported_scheme"]

_SCHEMES = ("http", "https", "ftp", "ftps", "ftpes", "sftp")


def supported_scheme(uri: str) -> bool:
    return uri.partition(":")[0].lower() in _SCHEMES


def make_source(uri: str, options: Any) -> RangeSource:
    """Build the source for ``uri``; an unknown scheme is a clear one-line error."""
    scheme = uri.partition(":")[0].lower()
    if scheme in ("http", "https"):
        from ..http.source import HttpSource

        return HttpSource(uri, options)
    if scheme in ("ftp", "ftps", "ftpes"):
        from ..ftp.source import FtpSource

        return FtpSource(uri, options)
    if scheme == "sftp":
        from ..sftp.source import SftpSource

        return SftpSource(uri, options)
    raise errors.TrioariaError(f"unsupported URI scheme {scheme!r}: {uri}", retryable=False)
