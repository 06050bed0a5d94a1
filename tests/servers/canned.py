"""A loopback server with canned answers: it reads each request's head, notes it, sends an
answer (fixed bytes, or what a function makes of the head: a redirect, a proxy's reply, a
challenge) and keeps the connection a while (port 0)."""

from __future__ import annotations

from collections.abc import Callable

import trio


async def serve_canned(
    nursery: trio.Nursery,
    reply: bytes | Callable[[bytes], bytes],
    *,
    seen: list[bytes] | None = None,
    linger: float = 0,
) -> int:
    """Serve ``reply`` (or ``reply(head)``) to every request, its head noted in ``seen``;
    return the port."""

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            head = b""
            with trio.move_on_after(5):
                while b"\r\n\r\n" not in head:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        return
                    head += chunk
                if seen is not None:
                    seen.append(head)
                await stream.send_all(reply(head) if callable(reply) else reply)
                await trio.sleep(linger)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, handle, listeners)
    return int(listeners[0].socket.getsockname()[1])


def redirect_to(location: str) -> bytes:
    """A ``302`` to ``location`` that closes the connection."""
    return (
        f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
