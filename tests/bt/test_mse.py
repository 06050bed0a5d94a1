"""MSE/PE handshake: pairs in memory (any fragmentation), hostile input, and a seeding aria2c.

aria2c runs with ``--bt-require-crypto=true``, so it refuses plaintext: only a correct MSE
initiator gets past the handshake.  Our initiator carries the BitTorrent handshake as IA and the
decrypted stream goes into :class:`~trioaria.bt.wire.PeerConnection`, which must produce
aria2c's handshake and its bitfield.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from Crypto.Cipher import ARC4
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.servers.nginx import free_port
from tests.servers.process import stop_process
from trioaria.base.errors import LocalProtocolError
from trioaria.bt.bencode import encode
from trioaria.bt.messages import Bitfield, Handshake, make_reserved
from trioaria.bt.metainfo import parse_torrent
from trioaria.bt.mse import (
    KEY_LENGTH,
    CryptoMethod,
    MseComplete,
    MseError,
    MseHandshake,
    MseRole,
    MseState,
    is_plain_handshake,
)
from trioaria.bt.rc4 import Rc4, backends, default_backend
from trioaria.bt.wire import PeerConnection

IH = hashlib.sha1(b"torrent").digest()
OTHER = hashlib.sha1(b"other").digest()


def rng(seed: int) -> Callable[[int], bytes]:
    r = random.Random(seed)
    return r.randbytes


def run_pair(
    a: MseHandshake, b: MseHandshake, chunks: Callable[[bytes], list[bytes]] = lambda d: [d]
) -> tuple[MseComplete, MseComplete]:
    """Shuttle bytes between A and B until both completed (bounded)."""
    done_a = done_b = None
    for _ in range(10):
        for chunk in chunks(a.data_to_send()):
            b.receive_data(chunk)
            done_b = done_b or b.next_event()
        for chunk in chunks(b.data_to_send()):
            a.receive_data(chunk)
            done_a = done_a or a.next_event()
        if done_a and done_b:
            return done_a, done_b
    raise AssertionError(f"no completion: A {a.state}, B {b.state}")


def pair(seed: int = 1, ia: bytes = b"hello IA", **kw: object) -> tuple[MseHandshake, MseHandshake]:
    a_kw = {k[2:]: v for k, v in kw.items() if k.startswith("a_")}
    b_kw = {k[2:]: v for k, v in kw.items() if k.startswith("b_")}
    a = MseHandshake(
        MseRole.INITIATOR, info_hash=IH, initial_payload=ia, random_bytes=rng(seed), **a_kw
    )  # type: ignore[arg-type]
    b = MseHandshake(
        MseRole.RECEIVER, info_hashes=[OTHER, IH], random_bytes=rng(seed + 1000), **b_kw
    )  # type: ignore[arg-type]
    return a, b


def test_rc4_both_ways() -> None:
    a, b = pair()
    done_a, done_b = run_pair(a, b)
    assert done_a.method is done_b.method is CryptoMethod.RC4
    assert done_b.info_hash == IH and done_b.initial_payload == b"hello IA"
    wire = a.encrypt(b"payload A->B")
    assert wire != b"payload A->B" and b.decrypt(wire) == b"payload A->B"
    assert a.decrypt(b.encrypt(b"x" * 5000)) == b"x" * 5000
    # the _into calls continue the same keystreams, writing into the caller's buffer
    out, back = memoryview(bytearray(7000)), memoryview(bytearray(7000))
    a.encrypt_into(b"y" * 6000, out)
    b.decrypt_into(out[:6000], back)
    assert bytes(back[:6000]) == b"y" * 6000 and bytes(back[6000:]) == bytes(1000)
    assert b.decrypt(a.encrypt(b"z")) == b"z"


@pytest.mark.parametrize("backend", list(backends()))
def test_rc4_backends_match_the_reference_keystream(backend: str) -> None:
    """Every RC4 backend gives pycryptodome's ``ARC4.new(key, drop=1024)`` keystream, through
    ``crypt`` and ``crypt_into`` alike, across calls of any size."""
    key = bytes(range(20))
    data = random.Random(3).randbytes(70_000)
    reference = ARC4.new(key, drop=1024).encrypt(data)
    rc4 = Rc4(key, backend=backend)
    out = memoryview(bytearray(len(data)))
    rc4.crypt_into(data[:1], out[:1])
    head = rc4.crypt(data[1:5000])
    rc4.crypt_into(memoryview(data)[5000:], out[5000:])
    assert bytes(out[:1]) + head + bytes(out[5000:]) == reference
    assert default_backend() in backends()


def test_plaintext_when_preferred_or_only() -> None:
    a, b = pair(b_prefer_plaintext=True)
    done_a, done_b = run_pair(a, b)
    assert done_a.method is done_b.method is CryptoMethod.PLAINTEXT
    assert b.decrypt(a.encrypt(b"clear")) == a.encrypt(b"clear") == b"clear"
    a, b = pair(a_allowed=CryptoMethod.PLAINTEXT)
    assert run_pair(a, b)[0].method is CryptoMethod.PLAINTEXT
    # require crypto: a plaintext-only initiator is refused
    a, b = pair(a_allowed=CryptoMethod.PLAINTEXT, b_allowed=CryptoMethod.RC4)
    with pytest.raises(MseError, match="no common crypto method"):
        run_pair(a, b)
    assert b.state is MseState.ERROR


def test_payload_riding_behind_the_handshake() -> None:
    a, b = pair(b_pad_max=0)
    b.receive_data(a.data_to_send())
    a.receive_data(b.data_to_send())
    b.receive_data(a.data_to_send())
    done_b = b.next_event()
    assert done_b is not None and done_b.payload == b""
    reply = b.data_to_send() + b.encrypt(b"B's handshake and bitfield")
    a.receive_data(reply[:7])
    assert a.next_event() is None
    a.receive_data(reply[7:])
    done_a = a.next_event()
    assert done_a is not None and done_a.payload == b"B's handshake and bitfield"
    with pytest.raises(LocalProtocolError):
        a.receive_data(b"more")


def test_unknown_torrent_and_bad_vc() -> None:
    a = MseHandshake(MseRole.INITIATOR, info_hash=OTHER, random_bytes=rng(3))
    b = MseHandshake(MseRole.RECEIVER, info_hashes=[IH], random_bytes=rng(4))
    with pytest.raises(MseError, match="do not serve"):
        run_pair(a, b)
    a, b = pair(5)
    b.receive_data(a.data_to_send())
    a.receive_data(b.data_to_send())
    step3 = bytearray(a.data_to_send())
    step3[40] ^= 0xFF  # first byte of ENCRYPT(VC)
    with pytest.raises(MseError, match="verification constant"):
        b.receive_data(bytes(step3))


def test_sync_search_is_bounded() -> None:
    a = MseHandshake(MseRole.INITIATOR, info_hash=IH, random_bytes=rng(6))
    a.data_to_send()
    a.receive_data(b"\x05" * KEY_LENGTH)
    a.receive_data(b"\0" * 519)  # up to 512 + 8 bytes the search waits
    with pytest.raises(MseError, match="not found within 512"):
        a.receive_data(b"\0")
    b = MseHandshake(MseRole.RECEIVER, info_hashes=[IH], random_bytes=rng(7))
    b.receive_data(b"\x05" * KEY_LENGTH + b"\0" * 531)
    with pytest.raises(MseError, match="not found"):
        b.receive_data(b"\0")
    c = MseHandshake(MseRole.RECEIVER, info_hashes=[IH], random_bytes=rng(8))
    with pytest.raises(MseError, match="degenerate"):
        c.receive_data(b"\0" * KEY_LENGTH)


def test_pad_length_over_512_is_refused() -> None:
    a, b = pair(9, b_pad_max=0)
    b.receive_data(a.data_to_send())
    a.receive_data(b.data_to_send())
    b.receive_data(a.data_to_send())
    assert b.next_event() is not None
    step4 = bytearray(b.data_to_send())  # ENCRYPT(VC, crypto_select, len(PadD) = 0)
    assert len(step4) == 14
    step4[12] ^= 0x02  # RC4 is a XOR stream: len(PadD) becomes 0x0201 = 513
    step4[13] ^= 0x01
    with pytest.raises(MseError, match="PadD length: 513"):
        a.receive_data(bytes(step4))


def test_plain_detection() -> None:
    assert is_plain_handshake(b"\x13BitTorrent protocol\0\0") is True
    assert is_plain_handshake(b"\x13BitTor") is None
    assert is_plain_handshake(b"\x13BitTox") is False
    assert is_plain_handshake(os.urandom(1) + b"\xff" * 30) in (False, None)


def _splitter(cuts: list[int]) -> Callable[[bytes], list[bytes]]:
    def split(data: bytes) -> list[bytes]:
        out, i = [], 0
        for c in cuts:
            if i >= len(data):
                break
            out.append(data[i : i + c])
            i += c
        out.append(data[i:])
        return [x for x in out if x]

    return split


@settings(max_examples=40)
@given(
    st.integers(0, 2**32),
    st.lists(st.integers(1, 300), max_size=30),
    st.binary(max_size=100),
    st.booleans(),
)
def test_fragmentation_invariance(seed: int, cuts: list[int], ia: bytes, plain: bool) -> None:
    whole = run_pair(*pair(seed, ia, b_prefer_plaintext=plain))
    a, b = pair(seed, ia, b_prefer_plaintext=plain)
    pieces = run_pair(a, b, _splitter(cuts))
    assert pieces == whole
    assert b.decrypt(a.encrypt(ia)) == ia


# --- against aria2c ---------------------------------------------------------------------------

PIECE_LENGTH = 16384


@pytest.fixture(scope="module")
def aria2c_crypto_seed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[bytes, int, int]]:
    aria2c = shutil.which("aria2c")
    if aria2c is None:
        pytest.fail("aria2c is not installed")
    root = tmp_path_factory.mktemp("mse-seed")
    payload = random.Random(11).randbytes(3 * PIECE_LENGTH + 99)
    (root / "p.bin").write_bytes(payload)
    pieces = b"".join(
        hashlib.sha1(payload[i : i + PIECE_LENGTH]).digest()
        for i in range(0, len(payload), PIECE_LENGTH)
    )
    info = {
        b"name": b"p.bin",
        b"piece length": PIECE_LENGTH,
        b"pieces": pieces,
        b"length": len(payload),
    }
    torrent = encode({b"info": info})
    (root / "s.torrent").write_bytes(torrent)
    port = free_port()
    process = subprocess.Popen(
        [
            aria2c, "--no-conf", "--seed-ratio=0.0", "--check-integrity=true", f"--dir={root}",
            f"--listen-port={port}", "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
            "--enable-peer-exchange=false", "--bt-require-crypto=true", "--bt-min-crypto-level=arc4",
            "--summary-interval=0", "--quiet", str(root / "s.torrent"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("aria2c did not start listening")
                time.sleep(0.1)
        meta = parse_torrent(torrent)
        yield meta.info_hash, meta.num_pieces, port
    finally:
        stop_process(process)


def _handshake_with(
    port: int, info_hash: bytes, num_pieces: int, allowed: CryptoMethod
) -> tuple[MseComplete, list[object]]:
    conn = PeerConnection(info_hash=info_hash, num_pieces=num_pieces)
    ours = conn.send(
        Handshake(info_hash, b"-TA0100-msetestmsete", make_reserved(fast=False, extensions=False))
    )
    mse = MseHandshake(
        MseRole.INITIATOR, info_hash=info_hash, initial_payload=ours, allowed=allowed
    )
    events: list[object] = []
    done: MseComplete | None = None
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(mse.data_to_send())
        for _ in range(200):
            data = sock.recv(65536)
            assert data, f"aria2c closed the connection (state {mse.state}, events {events})"
            if done is None:
                mse.receive_data(data)
                sock.sendall(mse.data_to_send())
                done = mse.next_event()
                if done is None:
                    continue
                data = done.payload
            else:
                data = mse.decrypt(data)
            if data:  # b"" would mean EOF to the wire codec
                conn.receive_data(data)
            while (event := conn.next_event()) is not None:
                events.append(event)
            if any(isinstance(e, Bitfield) for e in events):
                assert done is not None
                return done, events
    raise AssertionError(f"no bitfield from aria2c: {events}")


def test_mse_initiator_against_aria2c_require_crypto(
    aria2c_crypto_seed: tuple[bytes, int, int],
) -> None:
    info_hash, num_pieces, port = aria2c_crypto_seed
    done, events = _handshake_with(
        port, info_hash, num_pieces, CryptoMethod.RC4 | CryptoMethod.PLAINTEXT
    )
    assert done.method is CryptoMethod.RC4  # aria2c with arc4 as the minimum level selects RC4
    assert isinstance(events[0], Handshake) and events[0].info_hash == info_hash
    assert events[0].peer_id.startswith(b"A2-")
    bitfield = next(e for e in events if isinstance(e, Bitfield))
    assert bitfield.bits == b"\xf0"  # 4 pieces, all present


def test_plaintext_only_is_refused_by_aria2c(aria2c_crypto_seed: tuple[bytes, int, int]) -> None:
    info_hash, num_pieces, port = aria2c_crypto_seed
    with pytest.raises((AssertionError, MseError, OSError)):
        _handshake_with(port, info_hash, num_pieces, CryptoMethod.PLAINTEXT)


def test_an_initial_payload_longer_than_a_handshake_is_refused() -> None:
    """The receiver buffers A's IA whole: more than one BitTorrent handshake (68 bytes) is
    refused before it is read, as aria2 ("Too large IA length")."""
    a, b = pair(11, ia=b"x" * 69)
    b.receive_data(a.data_to_send())
    a.receive_data(b.data_to_send())
    with pytest.raises(MseError, match="IA of 69 bytes"):
        b.receive_data(a.data_to_send())
    a, b = pair(12, ia=b"x" * 68)
    _, done_b = run_pair(a, b)
    assert done_b.initial_payload == b"x" * 68
