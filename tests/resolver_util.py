"""A hostname resolver from a fixed table, for tests that inject one into trio
(``trio.socket.set_custom_hostname_resolver``): names map to ``getaddrinfo`` tuples."""

from __future__ import annotations

from typing import Any

import trio

__all__ = ["StaticResolver"]


class StaticResolver(trio.abc.HostnameResolver):
    """Answers ``getaddrinfo`` from ``table`` (filtered by family) and records the names asked."""

    def __init__(self, table: dict[str, list[tuple[Any, ...]]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def getaddrinfo(
        self, host: bytes | None, port: bytes | str | int | None, family: int = 0,
        type: int = 0, proto: int = 0, flags: int = 0,  # noqa: A002 - trio.abc.HostnameResolver
    ) -> list[tuple[Any, ...]]:  # fmt: skip
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.asked.append(name)
        await trio.lowlevel.checkpoint()
        return [a for a in self.table[name] if family in (0, a[0])]

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
        raise NotImplementedError
