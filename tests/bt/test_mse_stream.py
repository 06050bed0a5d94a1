"""MseStream and the aria2 dialling rules over loopback TCP, in process.

An initiator and a receiver meet through a real socket; every policy pair that can agree does,
the payload survives both ways (and ``receive_into``), and the pairs that cannot agree fail with
:class:`~trioaria.bt.mse.MseError`.  ``open_peer_stream`` falls back to a plain connection when a
peer does not speak MSE, unless crypto is required.
"""

from __future__ import annotations

import random

import pytest
import trio

from trioaria.base.errors import TrioariaError
from trioaria.bt.crypto_stream import (
    MSE_HANDSHAKE_TIMEOUT,
    MseStream,
    accept_encrypted,
    initiate,
    open_peer_stream,
)
from trioaria.bt.mse import CryptoMethod, CryptoPolicy, MseError
from trioaria.net.connect import ByteStream, open_stream

INFO_HASH = bytes(range(20))
OTHER = bytes(range(1, 21))


async def _pair(
    outgoing: CryptoPolicy, incoming: CryptoPolicy
) -> tuple[MseStream | BaseException, MseStream | BaseException, bytes]:
    """Run both handshakes over one loopback connection; each side's stream or error."""
    results: dict[str, MseStream | BaseException] = {}
    seen: list[bytes] = []
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def serve(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        sock = await listeners[0].accept()
        stream = ByteStream(sock)
        first = await stream.receive_some(68)
        try:
            s, ih = await accept_encrypted(stream, first, [OTHER, INFO_HASH], lambda _ih: incoming)
            results["in"] = s
            seen.append(ih)
        except TrioariaError as exc:
            results["in"] = exc
            stream.close_nowait()

    async with trio.open_nursery() as nursery:
        await nursery.start(serve)
        stream = await open_stream("127.0.0.1", port, tls=None, connect_timeout=5)
        try:
            results["out"] = await initiate(stream, INFO_HASH, outgoing)
        except TrioariaError as exc:
            results["out"] = exc
            stream.close_nowait()
    await listeners[0].aclose()
    return results["out"], results["in"], seen[0] if seen else b""


PLAIN_OK = CryptoPolicy()
REQUIRE = CryptoPolicy(require=True)
RC4_ONLY = CryptoPolicy(require=True, rc4_only=True)


@pytest.mark.parametrize(
    ("outgoing", "incoming", "method"),
    [
        (PLAIN_OK, PLAIN_OK, CryptoMethod.PLAINTEXT),  # aria2: the weakest allowed method
        (REQUIRE, PLAIN_OK, CryptoMethod.PLAINTEXT),
        (RC4_ONLY, PLAIN_OK, CryptoMethod.RC4),
        (PLAIN_OK, RC4_ONLY, CryptoMethod.RC4),
        (RC4_ONLY, RC4_ONLY, CryptoMethod.RC4),
    ],
)
async def test_handshake_and_payload_both_ways(
    outgoing: CryptoPolicy, incoming: CryptoPolicy, method: CryptoMethod
) -> None:
    a, b, info_hash = await _pair(outgoing, incoming)
    assert isinstance(a, MseStream) and isinstance(b, MseStream), (a, b)
    assert a.method is method and b.method is method
    assert info_hash == INFO_HASH  # the receiver learned the torrent from SKEY
    rng = random.Random(5)
    blob = rng.randbytes(300_000)
    back = rng.randbytes(70_000)
    got = bytearray()
    got_back = bytearray()

    async def read_all(stream: MseStream, into: bytearray, size: int, use_into: bool) -> None:
        buf = bytearray(8192)
        while len(into) < size:
            if use_into:
                n = await stream.receive_into(memoryview(buf))
                assert n
                into += buf[:n]
            else:
                data = await stream.receive_some(5000)
                assert data
                into += data

    async def send_in_pieces(stream: MseStream, data: bytes) -> None:
        # small, large, small: the reused ciphertext buffer grows once and is reused after
        for lo, hi in ((0, 1000), (1000, 200_000), (200_000, 200_500), (200_500, len(data))):
            await stream.send_all(memoryview(data)[lo:hi])

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_in_pieces, a, blob)
            nursery.start_soon(b.send_all, back)
            nursery.start_soon(read_all, b, got, len(blob), True)
            nursery.start_soon(read_all, a, got_back, len(back), False)
    assert bytes(got) == blob and bytes(got_back) == back
    a.close_nowait()
    b.close_nowait()


async def test_plaintext_only_initiator_meets_rc4_only_receiver() -> None:
    plain_only = CryptoPolicy(require=True, rc4_only=False)
    a, b, _ = await _pair(CryptoPolicy(rc4_only=True), plain_only)
    assert isinstance(a, MseStream) and isinstance(b, MseStream)  # RC4 offered: agreed on RC4
    a.close_nowait()
    b.close_nowait()

    class PlainOnly(CryptoPolicy):
        @property
        def allowed(self) -> CryptoMethod:
            return CryptoMethod.PLAINTEXT

    a, b, _ = await _pair(PlainOnly(), RC4_ONLY)
    assert isinstance(b, MseError), b  # no common method: the receiver refuses
    assert isinstance(a, TrioariaError), a


async def _plain_only_peer(
    connections: list[bytes], task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """A peer that speaks only plain BitTorrent: anything else is hung up on."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    try:
        while True:
            sock = await listeners[0].accept()
            first = await sock.receive_some(20)
            connections.append(bytes(first))
            if not first.startswith(b"\x13BitTorrent protocol"[: len(first)]):
                await sock.aclose()
                continue
            await sock.send_all(b"ok")
            await sock.aclose()
    finally:
        await listeners[0].aclose()


async def test_dialling_falls_back_to_plain_unless_required() -> None:
    connections: list[bytes] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(_plain_only_peer, connections)
            stream = await open_peer_stream(
                "127.0.0.1", port, INFO_HASH, CryptoPolicy(), connect_timeout=5
            )
            assert isinstance(stream, ByteStream)  # MSE was tried, then plain
            await stream.send_all(b"\x13BitTorrent protocol")
            assert await stream.receive_some(2) == b"ok"
            stream.close_nowait()
            assert len(connections) == 2
            assert not connections[0].startswith(b"\x13BitTorrent")  # the first was MSE's Ya
            with pytest.raises(TrioariaError):  # reset or closed during the handshake
                await open_peer_stream("127.0.0.1", port, INFO_HASH, REQUIRE, connect_timeout=5)
            assert len(connections) == 3  # required: no plain retry
            nursery.cancel_scope.cancel()


def test_policy_from_options() -> None:
    opts = {"bt-require-crypto": "false", "bt-min-crypto-level": "plain"}
    assert CryptoPolicy.from_options(opts.get) == CryptoPolicy()
    assert CryptoPolicy.from_options({"bt-force-encryption": True}.get) == RC4_ONLY
    got = CryptoPolicy.from_options({"bt-require-crypto": True}.get)
    assert got == REQUIRE and got.allowed == CryptoMethod.RC4 | CryptoMethod.PLAINTEXT
    assert (
        CryptoPolicy.from_options({"bt-min-crypto-level": "arc4"}.get).allowed is CryptoMethod.RC4
    )


async def _answers_everything_plainly(
    connections: list[bytes], task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """A client without MSE that takes any 68 bytes for a handshake and answers plainly."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])

    async def answer(sock: trio.SocketStream) -> None:
        async with sock:
            got = bytearray()
            while len(got) < 68:
                data = await sock.receive_some(68 - len(got))
                if not data:
                    return
                got += data
            connections.append(bytes(got))
            await sock.send_all(b"\x13BitTorrent protocol" + bytes(8) + INFO_HASH + bytes(20))
            await sock.receive_some(1)

    try:
        async with trio.open_nursery() as nursery:
            while True:
                nursery.start_soon(answer, await listeners[0].accept())
    finally:
        await listeners[0].aclose()


async def test_plain_answer_to_mse_falls_back_without_waiting_for_the_timeout() -> None:
    connections: list[bytes] = []
    # well inside MSE_HANDSHAKE_TIMEOUT: the plain answer is recognised at once
    with trio.fail_after(MSE_HANDSHAKE_TIMEOUT / 2):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(_answers_everything_plainly, connections)
            stream = await open_peer_stream(
                "127.0.0.1", port, INFO_HASH, CryptoPolicy(), connect_timeout=5
            )
            assert isinstance(stream, ByteStream)
            stream.close_nowait()
            assert len(connections) == 1  # the plain retry has not sent its 68 bytes yet
            with pytest.raises(MseError, match="plain BitTorrent"):
                await open_peer_stream("127.0.0.1", port, INFO_HASH, REQUIRE, connect_timeout=5)
            nursery.cancel_scope.cancel()


async def test_prefetch_decrypts_ahead_in_order() -> None:
    """RC4 read-ahead (``prefetch``): the next chunk is decrypted in a worker thread into the
    buffer the reader will pass next; the bytes come back whole and in order, also when the
    reader passes another buffer than the one prefetched into (it is copied over), mixed with
    ``receive_some``, and a plaintext stream ignores it."""
    a, b, _ = await _pair(RC4_ONLY, RC4_ONLY)
    assert isinstance(a, MseStream) and isinstance(b, MseStream)
    assert a.encrypted and b.encrypted
    blob = random.Random(7).randbytes(2_000_000)
    got = bytearray()
    prefetched = 0

    async def read_all() -> None:
        nonlocal prefetched
        views = [memoryview(bytearray(65536)), memoryview(bytearray(65536))]
        turn = 0
        reads = 0
        while len(got) < len(blob):
            reads += 1
            if reads % 7 == 0:  # now and then the general path
                data = await b.receive_some(3000)
                assert data
                got.extend(data)
                continue
            view = views[turn] if reads % 5 else memoryview(bytearray(65536))  # a stray buffer
            n = await b.receive_into(view)
            assert n
            got.extend(view[:n])
            turn ^= 1
            b.prefetch(views[turn])
            prefetched += b._ahead is not None
            await trio.sleep(0.001)  # the reader's own work: data piles up meanwhile

    async def send_all() -> None:
        for lo in range(0, len(blob), 50_000):
            await a.send_all(memoryview(blob)[lo : lo + 50_000])

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_all)
            nursery.start_soon(read_all)
    assert bytes(got) == blob
    assert prefetched > 5  # the read-ahead did run
    a.close_nowait()
    b.close_nowait()

    c, d, _ = await _pair(PLAIN_OK, PLAIN_OK)
    assert isinstance(c, MseStream) and isinstance(d, MseStream)
    assert not d.encrypted
    d.prefetch(memoryview(bytearray(100)))
    assert d._ahead is None
    c.close_nowait()
    d.close_nowait()
