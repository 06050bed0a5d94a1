"""Opening a tunnel through a proxy on an already connected stream (driver).

Theory of operation
-------------------
:func:`trioaria.net.connect.open_stream` connects to the proxy (Happy Eyeballs, and TLS when
the proxy URI is ``https://``) and then calls :func:`establish_tunnel`, which runs one of the
two sans-IO handshakes over that stream: HTTP ``CONNECT`` (:mod:`trioaria.net.proxy_proto`)
or SOCKS (:mod:`trioaria.net.socks`).  Both tell the driver how many bytes it may read without
reading into the tunnel, so whatever the origin sends first (an FTP greeting, an SSH banner)
stays in the socket for the protocol driver.  Once this returns, the stream carries the
origin's bytes; the caller adds TLS to the origin on top when the URI asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .proxy_proto import ConnectReply, authority, connect_error, connect_request
from .socks import SocksHandshake

MAX_INTERIM = 8  # interim 1xx answers accepted before CONNECT's final one

if TYPE_CHECKING:
    import trio

    from .proxy import Proxy
    from .tls import TlsStream

__all__ = ["establish_tunnel"]


async def _read(transport: trio.SocketStream | TlsStream, n: int) -> bytes:
    return bytes(await transport.receive_some(n))


async def establish_tunnel(
    transport: trio.SocketStream | TlsStream,
    proxy: Proxy,
    host: str,
    port: int,
    *,
    user_agent: str | None = None,
) -> None:
    """Ask *proxy* (connected as *transport*) for a tunnel to *host*:*port*.

    Args:
        transport: the connection to the proxy (plain TCP, or TLS to an ``https://`` proxy).
        proxy: the proxy (scheme and credentials).
        host: the destination: a name, or an address the caller resolved (``socks5``/``socks4``).
        port: the destination port.
        user_agent: sent with ``CONNECT``.

    Raises:
        ProxyError: the proxy refused (407: bad credentials; other statuses) or answered
            garbage; SocksError for SOCKS refusals.  OS and trio errors propagate for the
            caller's :func:`~trioaria.net.connect.map_exceptions`.
    """
    if proxy.is_socks:
        socks = SocksHandshake(
            proxy.scheme, host, port, user=proxy.user, password=proxy.password, label=proxy.label
        )
        while not socks.done:
            out = socks.data_to_send()
            if out:
                await transport.send_all(out)
            socks.receive_data(await _read(transport, socks.wanted()))
        return
    await transport.send_all(
        connect_request(host, port, authorization=proxy.authorization(), user_agent=user_agent)
    )
    for _ in range(MAX_INTERIM + 1):
        reply = ConnectReply(proxy.label)
        while reply.result is None:
            reply.receive_data(await _read(transport, reply.wanted()))
        # RFC 9110 §15.2: interim 1xx answers may come before the final one (101 is final)
        if not (100 <= reply.result.status < 200 and reply.result.status != 101):
            break
    assert reply.result is not None
    error = connect_error(reply.result, proxy.label, authority(host, port))
    if error is not None:
        raise error
