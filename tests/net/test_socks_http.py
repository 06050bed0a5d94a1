"""HTTP(S) downloads through SOCKS proxies, end to end through the CLI (issue 14 part 3).

microsocks (SOCKS5, RFC 1929 user/password) and dante (SOCKS5 without authentication) are real
servers.  dante 1.4 has no SOCKS4a (it takes 4a's ``0.0.0.1`` for the destination), so the
``socks4a://`` case runs against a small SOCKS4a relay written here, which records the host
names it was asked to resolve: that proves the name went to the proxy, not to our resolver.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

from tests.cli_util import CliResult, log_lines, run_process, serve_copy, unique_name
from tests.servers.nginx import NginxServer
from tests.servers.proxies import SOCKS_PASSWORD, SOCKS_USER, ProxyServer

CLI = [sys.executable, "-m", "trioaria"]


async def trioaria(home: Path, *args: str) -> CliResult:
    return await run_process([*CLI, "--no-conf", "-d", str(home / "dl"), *args], home=home)


@pytest.mark.parametrize(
    ("kind", "scheme", "host"),
    [
        ("microsocks", "http", "127.0.0.1"),
        ("microsocks", "https", "127.0.0.1"),
        ("dante", "http", "localhost"),  # socks5://: the name is resolved by us
        ("dante-h", "https", "localhost"),  # socks5h://: by the proxy
    ],
)
async def test_http_through_socks5(
    tmp_path: Path,
    nginx: NginxServer,
    microsocks: ProxyServer,
    dante: ProxyServer,
    kind: str,
    scheme: str,
    host: str,
) -> None:
    name = unique_name(f"socks-{kind}-{scheme}")
    data = serve_copy(nginx, name, 1_500_000)
    if kind == "microsocks":
        proxy = microsocks.uri(user=SOCKS_USER, password=SOCKS_PASSWORD)
    elif kind == "dante":
        proxy = dante.uri()
    else:
        proxy = f"socks5h://127.0.0.1:{dante.port}"
    url = nginx.url(f"/{name}") if scheme == "http" else nginx.https_url(f"/{name}", host)
    url = url.replace("127.0.0.1", host)
    res = await trioaria(
        tmp_path,
        f"--all-proxy={proxy}",
        f"--ca-certificate={nginx.ca_cert}",
        "-x2",
        "-s2",
        "-k1M",
        url,
    )
    assert res.returncode == 0, res
    assert (tmp_path / "dl" / name).read_bytes() == data
    assert log_lines(nginx, f"/{name}")
    port = nginx.port if scheme == "http" else nginx.https_port
    if kind == "microsocks":  # microsocks logs "client[N] IP: connected to HOST:PORT"
        assert await microsocks.wait_log(f"connected to 127.0.0.1:{port}"), microsocks.log_text()
    if kind.startswith("dante"):
        assert await dante.wait_log(f"127.0.0.1.{port}\n"), dante.log_text()[-2000:]


class Socks4aRelay:
    """A minimal SOCKS4/4a server (CONNECT only) for loopback tests; resolves only
    ``localhost``."""

    def __init__(self) -> None:
        self.port = 0
        self.names: list[str] = []

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _read_until_nul(self, stream: trio.SocketStream, limit: int = 300) -> bytes:
        out = b""
        while not out.endswith(b"\0"):
            chunk = await stream.receive_some(1)
            if not chunk or len(out) > limit:
                raise OSError("bad request")
            out += chunk
        return out[:-1]

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            head = b""
            while len(head) < 8:
                chunk = await client.receive_some(8 - len(head))
                if not chunk:
                    return
                head += chunk
            port = int.from_bytes(head[2:4], "big")
            await self._read_until_nul(client)  # user id
            if head[4:7] == b"\0\0\0" and head[7]:
                name = (await self._read_until_nul(client)).decode()
                self.names.append(name)
                address = "127.0.0.1" if name == "localhost" else None
            else:
                address = ".".join(str(b) for b in head[4:8])
            if address is None or head[:2] != b"\x04\x01":
                await client.send_all(b"\x00\x5b" + bytes(6))
                return
            upstream = await trio.open_tcp_stream(address, port)
            async with upstream:
                await client.send_all(b"\x00\x5a" + bytes(6))

                async def pipe(a: trio.SocketStream, b: trio.SocketStream) -> None:
                    try:
                        while data := await a.receive_some(65536):
                            await b.send_all(data)
                    except trio.BrokenResourceError:
                        pass
                    with trio.move_on_after(0):
                        await b.send_eof()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(pipe, client, upstream)
                    nursery.start_soon(pipe, upstream, client)


async def test_http_through_socks4a_sends_the_name(tmp_path: Path, nginx: NginxServer) -> None:
    name = unique_name("socks4a")
    data = serve_copy(nginx, name, 800_000)
    relay = Socks4aRelay()
    async with trio.open_nursery() as nursery:
        await nursery.start(relay.serve)
        res = await trioaria(
            tmp_path,
            f"--all-proxy=socks4a://127.0.0.1:{relay.port}",
            f"http://localhost:{nginx.port}/{name}",
        )
        refused = await trioaria(
            tmp_path / "r",
            f"--all-proxy=socks4a://127.0.0.1:{relay.port}",
            "--max-tries=1",
            f"http://unknown.invalid:{nginx.port}/{name}",
        )
        nursery.cancel_scope.cancel()
    assert res.returncode == 0, res
    assert (tmp_path / "dl" / name).read_bytes() == data
    assert relay.names[0] == "localhost"
    # the proxy could not resolve the name: SOCKS4's "request rejected", exit 1, nothing written
    assert refused.returncode == 1, refused
    assert "request rejected or failed" in refused.stdout + refused.stderr, refused
    assert "unknown.invalid" in relay.names
    assert not (tmp_path / "r" / "dl" / name).exists()
