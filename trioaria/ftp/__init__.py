"""FTP and FTPS (RFC 959, 2428, 3659, 4217): sans-IO control core, trio driver, RangeSource.

``proto`` is the pure control-channel core; ``client`` the trio driver (control and data
connections, the reuse pool); ``source`` the :class:`~trioaria.base.sources.RangeSource` for
``ftp://``, ``ftps://`` (implicit TLS) and ``ftpes://`` (explicit ``AUTH TLS``) URIs; ``auth``
reads ``.netrc`` for credentials.
"""

from __future__ import annotations

__all__: list[str] = []
