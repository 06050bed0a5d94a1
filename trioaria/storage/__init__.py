"""storage: the one piece + disk layer shared by every protocol (HTTP/FTP/SFTP segments, BT blocks).

Modules: ``layout`` (multi-file offsets, pure), ``disk`` (inline ``os.pwrite`` driver, allocation,
atomic ``.aria2`` saves) and ``naming`` (aria2's ``-d``/``-o``/``--allow-overwrite``/
``--auto-file-renaming``/``-c`` output-path decisions).  Import them by module; nothing is
re-exported here.
"""

from __future__ import annotations

__all__: list[str] = []
