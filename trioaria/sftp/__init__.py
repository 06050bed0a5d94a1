"""SFTP downloads through asyncssh on its own asyncio thread (docs/decisions.md "SFTP").

* :mod:`trioaria.sftp.hostkey` (pure): ``--ssh-host-key-md`` pins and the known_hosts policy.
* :mod:`trioaria.sftp.bridge`: the trio -> asyncio thread bridge (docs/design.md).
* :mod:`trioaria.sftp.source`: :class:`SftpSource`, the ``sftp://`` RangeSource.

Importing this package imports neither asyncssh nor trio; import the driver from
``trioaria.sftp.source``.
"""

from __future__ import annotations

__all__: list[str] = []
