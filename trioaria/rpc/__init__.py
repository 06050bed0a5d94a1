"""aria2-compatible RPC: JSON-RPC over HTTP (POST, GET/JSONP) and WebSocket, and XML-RPC.

Pure (sans-IO) modules: ``messages`` (request/response values, aria2's error codes),
``jsonrpc`` (JSON-RPC 2.0 codec: single, batch, GET parameters, JSONP, notifications),
``xmlrpc`` (XML-RPC codec through defusedxml, with size and depth limits), ``options``
(which option may be set where: addUri, changeOption, changeGlobalOption), ``status``
(aria2's status structs from :mod:`trioaria.base.stats` snapshots, pagination) and ``methods``
(the method table over a small :class:`~trioaria.rpc.methods.Backend` interface).

Drivers: ``backend`` (the :class:`~trioaria.rpc.methods.Backend` over a
:class:`~trioaria.engine.queue.DownloadEngine`), ``torrents`` (BitTorrent fields and peers of
torrent downloads) and ``server`` (h11 HTTP and wsproto WebSocket
on trio, notifications).
"""

from __future__ import annotations

__all__: list[str] = []
