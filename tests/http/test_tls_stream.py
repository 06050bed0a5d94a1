"""TlsStream (trioaria/tls.py) against a real TLS server on 127.0.0.1 (trio.SSLStream, test CA).

Checks what the HTTPS body path relies on: one ``receive_into`` decrypts several TLS records at
once, the bytes are exact, and both ends of a stream (``close_notify`` and a bare TCP close, as
``https_compatible``) read as end of stream; a wrong CA fails the handshake with one clear error.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
import trio

from tests.servers.nginx import make_test_pki
from trioaria.base.errors import NetworkError
from trioaria.net.connect import TlsOptions, open_stream

PAYLOAD = os.urandom(3 * 1024 * 1024 + 77)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_test_pki(tmp_path_factory.mktemp("tlspki"))


async def _serve(pki: dict[str, Path], *, close_notify: bool, task_status=trio.TASK_STATUS_IGNORED):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki["server_cert"], pki["server_key"])
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    sock_stream = await listeners[0].accept()
    tls = trio.SSLStream(sock_stream, ctx, server_side=True, https_compatible=True)
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError:  # the client refused our certificate
        await listeners[0].aclose()
        return
    for off in range(0, len(PAYLOAD), 100_000):
        await tls.send_all(PAYLOAD[off : off + 100_000])
    if close_notify:
        await tls.aclose()
    else:
        await sock_stream.aclose()  # no close_notify: a bare TCP close
    await listeners[0].aclose()


@pytest.mark.parametrize("close_notify", [True, False])
async def test_body_is_exact_and_reads_span_records(pki, close_notify):
    async with trio.open_nursery() as nursery:
        port = await nursery.start(
            lambda task_status: _serve(pki, close_notify=close_notify, task_status=task_status)
        )
        stream = await open_stream(
            "127.0.0.1", port, tls=TlsOptions(ca_certificate=str(pki["ca"])), connect_timeout=10
        )
        buf = bytearray(1 << 20)
        got = bytearray()
        biggest = 0
        with trio.fail_after(20):
            while True:
                n = await stream.receive_into(memoryview(buf))
                if n == 0:
                    break
                biggest = max(biggest, n)
                got += buf[:n]
        await stream.aclose()
    assert bytes(got) == PAYLOAD
    assert biggest > 16 * 1024  # several 16 KiB records decrypted by one call


async def test_wrong_ca_fails_the_handshake_clearly(pki, tmp_path):
    other = make_test_pki(tmp_path / "other")
    async with trio.open_nursery() as nursery:
        port = await nursery.start(
            lambda task_status: _serve(pki, close_notify=True, task_status=task_status)
        )
        with pytest.raises(NetworkError, match="certificate"):
            await open_stream(
                "127.0.0.1",
                port,
                tls=TlsOptions(ca_certificate=str(other["ca"])),
                connect_timeout=10,
            )
        nursery.cancel_scope.cancel()
