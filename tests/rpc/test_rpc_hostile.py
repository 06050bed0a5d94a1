"""Hostile RPC clients cannot stop the daemon or hold it: an id nested too deep to write back
(before any token is checked), a number JSON cannot write back, a client that never reads its
answer (aria2 gives up after 30 s without progress)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

import trioaria.rpc.server as server_mod
from tests.rpc.rpc_util import running_daemon


def _post(body: bytes) -> bytes:
    return (
        b"POST /jsonrpc HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


async def _exchange(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(data)
    out = b""
    with trio.move_on_after(5):
        while chunk := await stream.receive_some(65536):
            out += chunk
    await stream.aclose()
    return out


def _strict(payload: bytes) -> object:
    def refuse(name: str) -> object:
        raise ValueError(name)

    return json.loads(payload, parse_constant=refuse)


async def test_a_deeply_nested_id_does_not_stop_the_daemon(tmp_path: Path) -> None:
    async with running_daemon(tmp_path) as dm:  # a secret is set; these carry no token
        for depth in range(900, 1000):  # json.loads accepts some that json.dumps cannot write
            body = b'{"jsonrpc":"2.0","method":"aria2.getVersion","id":'
            out = await _exchange(dm.port, _post(body + b"[" * depth + b"]" * depth + b"}"))
            answer = _strict(out.partition(b"\r\n\r\n")[2])
            assert isinstance(answer, dict) and "error" in answer
        assert "result" in await dm.call("aria2.getVersion")  # still serving


async def test_an_id_json_cannot_write_back_is_a_parse_error(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, secret=None) as dm:
        body = b'{"jsonrpc":"2.0","id":1e999,"method":"system.listMethods"}'
        answer = _strict((await _exchange(dm.port, _post(body))).partition(b"\r\n\r\n")[2])
        assert isinstance(answer, dict) and answer["error"]["code"] == -32700


async def test_an_answer_nobody_reads_is_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_mod, "IDLE_TIMEOUT", 0.5)
    async with running_daemon(tmp_path, secret=None) as dm:
        batch = [
            {"jsonrpc": "2.0", "id": i, "method": "aria2.getGlobalOption"} for i in range(4000)
        ]  # a ~15 MB answer, far more than the socket buffers hold
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(("127.0.0.1", dm.port))
        stream = trio.SocketStream(sock)
        await stream.send_all(_post(json.dumps(batch).encode()))
        await trio.sleep(3)  # not reading, well past the (shortened) timeout
        got = b""
        with trio.fail_after(20):
            try:
                while chunk := await stream.receive_some(1 << 20):
                    got += chunk
            except trio.BrokenResourceError:
                pass
        head, _, payload = got.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        assert len(payload) < length  # the server gave up: the answer was cut short
        assert "result" in await dm.call("aria2.getVersion")


async def test_a_websocket_client_that_never_reads_is_dropped(tmp_path: Path) -> None:
    """Small requests with large answers, never read: past 16 MiB of answers waiting the client
    is disconnected (the queue is bounded in bytes, not only in frames)."""
    async with running_daemon(tmp_path, secret=None) as dm:
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(("127.0.0.1", dm.port))
        stream = trio.SocketStream(sock)
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host="x", target="/jsonrpc")))
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(4096)
        ws.receive_data(head)
        assert any(isinstance(e, AcceptConnection) for e in ws.events())
        batch = json.dumps(
            [{"jsonrpc": "2.0", "id": i, "method": "aria2.getGlobalOption"} for i in range(100)]
        )  # a 6 KB message, a ~370 KB answer
        with trio.fail_after(30):
            try:
                for _ in range(300):  # ~110 MB of answers if all were kept
                    await stream.send_all(ws.send(TextMessage(data=batch)))
                    waiting = sum(dm.server._ws_queued.values())
                    assert waiting <= server_mod._WS_QUEUE_BYTES
            except trio.BrokenResourceError:
                pass  # dropped while we were still sending
            while dm.server._clients:  # the server let go of it
                await trio.sleep(0.05)
        await stream.aclose()
        assert "result" in await dm.call("aria2.getVersion")
