"""HTTP/1.1 downloads (RFC 9110/9112): a sans-IO core and a thin trio driver.

* :mod:`trioaria.http.proto` (pure): URLs, request heads, response decisions.
* :mod:`trioaria.http.chunked` (pure): strict chunked-body decoder.
* :mod:`trioaria.http.client` (trio): connections, the keep-alive pool, redirects.

Importing this package does not import trio; import the driver from
``trioaria.http.client``.
"""

from __future__ import annotations

__all__: list[str] = []
