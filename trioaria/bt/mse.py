"""Message Stream Encryption (MSE, also "Protocol Encryption"): the handshake, sans-IO (pure).

Theory of operation
-------------------
The MSE specification (Vuze wiki "Message Stream Encryption", the de facto standard that
libtorrent, Transmission and aria2 implement; no BEP number) wraps a peer connection in RC4
after an anonymous Diffie-Hellman exchange.  A is the initiator, B the receiver::

    1 A->B: Diffie Hellman Ya, PadA
    2 B->A: Diffie Hellman Yb, PadB
    3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
            ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
    4 B->A: ENCRYPT(VC, crypto_select, len(padD), padD), ENCRYPT2(Payload Stream)
    5 A->B: ENCRYPT2(Payload Stream)

* DH over the 768-bit prime :data:`P` with generator 2; ``Y`` values are 96 bytes big-endian,
  private exponents 160 bits (the spec's minimum; docs/performance.md: about 0.5 ms per handshake).
  ``S`` is the shared secret as 96 bytes, ``SKEY`` the torrent's info hash, ``HASH`` SHA-1.
* "RC4 ... keyA = HASH('keyA', S, SKEY) ... keyB = HASH('keyB', S, SKEY) ... the first 1024 bytes
  of the RC4 output are discarded": A encrypts with keyA and decrypts with keyB, B the reverse
  (:class:`~trioaria.bt.rc4.Rc4`: OpenSSL's RC4 through ``cryptography`` or pycryptodome's).
* ``VC`` is 8 zero bytes; ``crypto_provide``/``crypto_select`` are 32-bit big-endian bit sets:
  ``0x01`` plaintext, ``0x02`` RC4 (:class:`CryptoMethod`).  Pads are 0 to 512 random bytes.
* ``IA`` is A's initial payload (the BitTorrent handshake), always RC4-encrypted; "ENCRYPT2" is
  the selected method: after ``padD`` both directions are plaintext or continue the RC4 streams.

Synchronisation is the bounded search of the spec: B does not know len(PadA), so it searches
for ``HASH('req1', S)`` in at most 512 + 20 bytes after ``Ya``; A searches for ``ENCRYPT(VC)``
(the first 8 bytes of keyB's RC4 stream) in at most 512 + 8 bytes after ``Yb``.  A search that
runs past its bound, a wrong VC, a pad length over 512, an unknown ``SKEY``, or no common method
raises :class:`MseError` and puts the handshake in the ``ERROR`` state.

:class:`MseHandshake` follows h11: ``receive_data(bytes)`` buffers, ``data_to_send()`` returns
the bytes to write, ``next_event()`` returns :class:`MseComplete` once, when the handshake is
over.  The event carries the negotiated method, the info hash (B learns it from ``SKEY``), A's
decrypted ``IA`` (receiver side) and whatever payload arrived after the handshake, already
decrypted.  From then on :meth:`MseHandshake.encrypt` and :meth:`MseHandshake.decrypt` carry the
payload stream (they are the identity for plaintext); ``encrypt_into``/``decrypt_into`` write
into a caller's buffer instead of returning a new object (the drivers' bulk path).  Randomness (DH exponent, pads) comes from
an injected ``random_bytes`` so tests can replay exact handshakes; drivers pass
``secrets.token_bytes``.  :func:`is_plain_handshake` tells an incoming plaintext BitTorrent
handshake from an MSE one by its first 20 bytes.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NoReturn

from ..base.errors import LocalProtocolError
from .errors import PeerProtocolError
from .rc4 import DROP, Rc4

__all__ = [
    "KEY_LENGTH",
    "MAX_PAD",
    "CryptoMethod",
    "CryptoPolicy",
    "MseComplete",
    "MseError",
    "MseHandshake",
    "MseRole",
    "MseState",
    "P",
    "is_plain_handshake",
]

P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563",
    16,
)
"""The 768-bit MSE prime (generator 2)."""

G = 2
KEY_LENGTH = 96
"""Bytes of a DH public value and of the shared secret S."""

MAX_PAD = 512
"""Longest PadA/PadB/PadC/PadD."""

VC = bytes(8)
MAX_RECEIVED_IA = 68
"""The longest IA taken from an initiator: one BitTorrent handshake (aria2 refuses more)."""
_PRIVATE_BYTES = 20  # 160-bit exponents
_PLAIN_PREFIX = b"\x13BitTorrent protocol"


class CryptoMethod(enum.IntFlag):
    """``crypto_provide`` / ``crypto_select`` bits."""

    PLAINTEXT = 0x01
    RC4 = 0x02


@dataclass(frozen=True, slots=True)
class CryptoPolicy:
    """What one torrent accepts from peers, in aria2's terms.

    Attributes:
        require: ``--bt-require-crypto`` (or ``--bt-force-encryption``): never a plain
            BitTorrent handshake, in either direction; no fallback to plain when MSE fails.
        rc4_only: ``--bt-min-crypto-level=arc4`` (or ``--bt-force-encryption``): the payload
            must be RC4; otherwise plaintext is offered too and preferred when we choose.
    """

    require: bool = False
    rc4_only: bool = False

    @classmethod
    def from_options(cls, get: Callable[[str], object]) -> CryptoPolicy:
        """The policy of ``--bt-require-crypto``, ``--bt-min-crypto-level``, ``--bt-force-encryption``."""
        force = _truthy(get("bt-force-encryption"))
        return cls(
            require=force or _truthy(get("bt-require-crypto")),
            rc4_only=force or str(get("bt-min-crypto-level") or "plain") == "arc4",
        )

    @property
    def allowed(self) -> CryptoMethod:
        """The methods offered (initiator) or accepted (receiver)."""
        return CryptoMethod.RC4 if self.rc4_only else CryptoMethod.RC4 | CryptoMethod.PLAINTEXT

    @property
    def prefer_plaintext(self) -> bool:
        """Receiver: choose plaintext when both are offered (aria2 picks the weakest allowed)."""
        return not self.rc4_only


def _truthy(value: object) -> bool:
    return value is True or str(value).lower() == "true"


class MseRole(enum.Enum):
    """Which side of the handshake we are."""

    INITIATOR = "initiator"
    RECEIVER = "receiver"


class MseState(enum.Enum):
    """Handshake steps; each waits for a number of bytes (or a sync pattern)."""

    WAIT_Y = "wait Y"  # the peer's DH public value
    SYNC = "sync"  # A: ENCRYPT(VC) in PadB; B: HASH('req1', S) in PadA
    READ_SKEY = "read SKEY hash"  # B
    READ_PROVIDE = "read VC, crypto_provide, len(PadC)"  # B
    READ_PADC = "read PadC, len(IA)"  # B
    READ_IA = "read IA"  # B
    READ_SELECT = "read crypto_select, len(PadD)"  # A
    READ_PADD = "read PadD"  # A
    DONE = "done"
    ERROR = "error"


class MseError(PeerProtocolError):
    """The MSE handshake failed (bad sync, VC, pad length, unknown torrent, no common method)."""


@dataclass(frozen=True, slots=True)
class MseComplete:
    """The handshake is over.

    Attributes:
        method: the negotiated :class:`CryptoMethod` (exactly one bit).
        info_hash: the torrent (the receiver learns it from the SKEY hash).
        initial_payload: receiver side: A's decrypted IA (usually its BitTorrent handshake).
        payload: peer bytes that followed the handshake, already decrypted.
    """

    method: CryptoMethod
    info_hash: bytes
    initial_payload: bytes
    payload: bytes


def _h(*parts: bytes) -> bytes:
    return hashlib.sha1(b"".join(parts)).digest()


def is_plain_handshake(first: bytes) -> bool | None:
    """Whether a connection's first bytes are a plaintext BitTorrent handshake.

    Returns:
        True (``\\x13BitTorrent protocol``), False (anything else: MSE or garbage), or None when
        fewer than 20 bytes have arrived and the prefix still matches.
    """
    n = min(len(first), len(_PLAIN_PREFIX))
    if first[:n] != _PLAIN_PREFIX[:n]:
        return False
    return True if n == len(_PLAIN_PREFIX) else None


class MseHandshake:
    """One side of an MSE handshake.

    Args:
        role: initiator (A) or receiver (B).
        info_hash: initiator: the torrent (SKEY).  Ignored by the receiver.
        info_hashes: receiver: the torrents it serves (matched against the SKEY hash).
        allowed: the methods we accept; the initiator offers all of them, the receiver picks.
        prefer_plaintext: receiver: pick plaintext when both are offered and allowed (aria2
            does so unless crypto is required); otherwise RC4 wins.
        initial_payload: initiator: IA, sent encrypted in step 3 (at most 65535 bytes).
        random_bytes: randomness for the DH exponent and pads.
        pad_max: longest pad we send (0 disables padding).
        policy_for: receiver: the :class:`CryptoPolicy` of the torrent named by SKEY; when
            given it replaces ``allowed`` and ``prefer_plaintext`` once the torrent is known.
    """

    def __init__(
        self,
        role: MseRole,
        *,
        info_hash: bytes | None = None,
        info_hashes: Iterable[bytes] = (),
        allowed: CryptoMethod = CryptoMethod.RC4 | CryptoMethod.PLAINTEXT,
        prefer_plaintext: bool = False,
        initial_payload: bytes = b"",
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        pad_max: int = MAX_PAD,
        policy_for: Callable[[bytes], CryptoPolicy] | None = None,
    ) -> None:
        if not allowed:
            raise LocalProtocolError("MSE needs at least one allowed method")
        if role is MseRole.INITIATOR and (info_hash is None or len(info_hash) != 20):
            raise LocalProtocolError("the MSE initiator needs the 20-byte info hash")
        if len(initial_payload) > 0xFFFF:
            raise LocalProtocolError("IA is limited to 65535 bytes")
        self.role = role
        self.state = MseState.WAIT_Y
        self.allowed = allowed
        self.prefer_plaintext = prefer_plaintext
        self.info_hash = info_hash
        self.method: CryptoMethod | None = None
        self._skeys = {_h(b"req2", ih): ih for ih in info_hashes}
        self._policy_for = policy_for
        self._ia = initial_payload
        self._random = random_bytes
        self._pad_max = min(pad_max, MAX_PAD)
        self._x = int.from_bytes(random_bytes(_PRIVATE_BYTES), "big") | 1
        self._buf = bytearray()
        self._out = bytearray()
        self._event: MseComplete | None = None
        self._s = b""
        self._searched = 0
        self._need = 0
        self._received_ia = b""
        self._enc: Rc4 | None = None
        self._dec: Rc4 | None = None
        if role is MseRole.INITIATOR:
            self._out += self._public() + self._pad()

    # --- helpers -----------------------------------------------------------------------------

    def _public(self) -> bytes:
        return pow(G, self._x, P).to_bytes(KEY_LENGTH, "big")

    def _pad(self) -> bytes:
        if not self._pad_max:
            return b""
        return self._random(int.from_bytes(self._random(2), "big") % (self._pad_max + 1))

    def _fail(self, reason: str) -> NoReturn:
        self.state = MseState.ERROR
        raise MseError(f"MSE handshake failed: {reason}")

    def _secret(self, peer_public: bytes) -> None:
        y = int.from_bytes(peer_public, "big")
        if not 1 < y < P - 1:
            self._fail("the peer's DH value is degenerate")
        self._s = pow(y, self._x, P).to_bytes(KEY_LENGTH, "big")

    def _ciphers(self, skey: bytes) -> None:
        key_a = _h(b"keyA", self._s, skey)
        key_b = _h(b"keyB", self._s, skey)
        mine, theirs = (key_a, key_b) if self.role is MseRole.INITIATOR else (key_b, key_a)
        self._enc = Rc4(mine, DROP)
        self._dec = Rc4(theirs, DROP)

    def _decrypt_take(self, n: int) -> bytes:
        assert self._dec is not None
        raw = bytes(self._buf[:n])
        del self._buf[:n]
        return self._dec.crypt(raw)

    def _encrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        assert self._enc is not None
        return self._enc.crypt(data)

    # --- the public interface ----------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Bytes to write to the peer now (may be empty)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> MseComplete | None:
        """:class:`MseComplete` once, when the handshake is over; else None."""
        event, self._event = self._event, None
        return event

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the peer.

        Raises:
            MseError: the peer broke the handshake (the state becomes ``ERROR``).
            LocalProtocolError: called after the handshake is over or failed.
        """
        if self.state in (MseState.DONE, MseState.ERROR):
            raise LocalProtocolError(f"MSE handshake is {self.state.value}; use decrypt()")
        self._buf += data
        while self.state not in (MseState.DONE, MseState.ERROR) and self._step():
            pass

    def encrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        """Encrypt outgoing payload with the negotiated method (after :class:`MseComplete`)."""
        if self.state is not MseState.DONE:
            raise LocalProtocolError("MSE handshake is not complete")
        if self.method is CryptoMethod.PLAINTEXT:
            return bytes(data)
        return self._encrypt(data)

    def decrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        """Decrypt incoming payload with the negotiated method (after :class:`MseComplete`)."""
        if self.state is not MseState.DONE:
            raise LocalProtocolError("MSE handshake is not complete")
        if self.method is CryptoMethod.PLAINTEXT:
            return bytes(data)
        assert self._dec is not None
        return self._dec.crypt(data)

    def encrypt_into(self, data: bytes | bytearray | memoryview, out: memoryview) -> None:
        """Encrypt ``data`` into ``out[:len(data)]`` (no new object; ``out`` must not overlap
        ``data``); a copy for plaintext."""
        self._crypt_into(self._enc, data, out)

    def decrypt_into(self, data: bytes | bytearray | memoryview, out: memoryview) -> None:
        """Decrypt ``data`` into ``out[:len(data)]``, as :meth:`encrypt_into`."""
        self._crypt_into(self._dec, data, out)

    def _crypt_into(
        self, cipher: Rc4 | None, data: bytes | bytearray | memoryview, out: memoryview
    ) -> None:
        if self.state is not MseState.DONE:
            raise LocalProtocolError("MSE handshake is not complete")
        if self.method is CryptoMethod.PLAINTEXT:
            out[: len(data)] = data
            return
        assert cipher is not None
        cipher.crypt_into(data, out)

    # --- the steps ---------------------------------------------------------------------------

    def _step(self) -> bool:
        """Advance one step if the buffer allows; False when more bytes are needed."""
        initiator = self.role is MseRole.INITIATOR
        state = self.state
        if state is MseState.WAIT_Y:
            if len(self._buf) < KEY_LENGTH:
                return False
            peer = bytes(self._buf[:KEY_LENGTH])
            del self._buf[:KEY_LENGTH]
            self._secret(peer)
            if initiator:
                self._send_step3()
            else:
                self._out += self._public() + self._pad()
            self.state = MseState.SYNC
            return True
        if state is MseState.SYNC:
            return self._sync_initiator() if initiator else self._sync_receiver()
        if state is MseState.READ_SKEY:
            if len(self._buf) < 20:
                return False
            obfuscated = bytes(self._buf[:20])
            del self._buf[:20]
            req3 = _h(b"req3", self._s)
            req2 = bytes(a ^ b for a, b in zip(obfuscated, req3, strict=True))
            info_hash = self._skeys.get(req2)
            if info_hash is None:
                self._fail("the peer asked for a torrent we do not serve")
            self.info_hash = info_hash
            if self._policy_for is not None:
                policy = self._policy_for(info_hash)
                self.allowed, self.prefer_plaintext = policy.allowed, policy.prefer_plaintext
            self._ciphers(info_hash)
            self.state = MseState.READ_PROVIDE
            return True
        if state is MseState.READ_PROVIDE:
            if len(self._buf) < 14:
                return False
            head = self._decrypt_take(14)
            if head[:8] != VC:
                self._fail("bad verification constant")
            provide = CryptoMethod(int.from_bytes(head[8:12], "big") & 0x3)
            self._need = self._pad_length(head[12:14], "PadC")
            common = provide & self.allowed
            if not common:
                self._fail(f"no common crypto method (peer provides {int(provide)})")
            if CryptoMethod.PLAINTEXT in common and (
                self.prefer_plaintext or CryptoMethod.RC4 not in common
            ):
                self.method = CryptoMethod.PLAINTEXT
            else:
                self.method = CryptoMethod.RC4
            self.state = MseState.READ_PADC
            return True
        if state is MseState.READ_PADC:
            if len(self._buf) < self._need + 2:
                return False
            tail = self._decrypt_take(self._need + 2)
            self._need = int.from_bytes(tail[-2:], "big")
            if self._need > MAX_RECEIVED_IA:  # aria2: "Too large IA length"
                self._fail(f"IA of {self._need} bytes (at most {MAX_RECEIVED_IA})")
            self.state = MseState.READ_IA
            return True
        if state is MseState.READ_IA:
            if len(self._buf) < self._need:
                return False
            self._received_ia = self._decrypt_take(self._need)
            assert self.method is not None
            chosen = self.method.to_bytes(4, "big")
            pad = self._pad()
            self._out += self._encrypt(VC + chosen + len(pad).to_bytes(2, "big") + pad)
            self._finish()
            return False
        if state is MseState.READ_SELECT:
            if len(self._buf) < 6:
                return False
            head = self._decrypt_take(6)
            select = int.from_bytes(head[:4], "big")
            if (
                select not in (CryptoMethod.PLAINTEXT, CryptoMethod.RC4)
                or not select & self.allowed
            ):
                self._fail(f"the peer selected crypto method {select}, which we did not offer")
            self.method = CryptoMethod(select)
            self._need = self._pad_length(head[4:6], "PadD")
            self.state = MseState.READ_PADD
            return True
        if state is MseState.READ_PADD:
            if len(self._buf) < self._need:
                return False
            self._decrypt_take(self._need)
            self._finish()
            return False
        return False  # pragma: no cover - DONE and ERROR never reach here

    def _pad_length(self, raw: bytes, name: str) -> int:
        n = int.from_bytes(raw, "big")
        if n > MAX_PAD:
            self._fail(f"too large {name} length: {n}")
        return n

    def _send_step3(self) -> None:
        assert self.info_hash is not None
        self._ciphers(self.info_hash)
        req2 = _h(b"req2", self.info_hash)
        req3 = _h(b"req3", self._s)
        pad = self._pad()
        self._out += _h(b"req1", self._s) + bytes(a ^ b for a, b in zip(req2, req3, strict=True))
        self._out += self._encrypt(
            VC
            + int(self.allowed).to_bytes(4, "big")
            + len(pad).to_bytes(2, "big")
            + pad
            + len(self._ia).to_bytes(2, "big")
            + self._ia
        )

    def _sync_initiator(self) -> bool:
        key_b = _h(b"keyB", self._s, self.info_hash or b"")
        marker = Rc4(key_b, DROP).crypt(VC)
        return self._search(marker, MseState.READ_SELECT, "ENCRYPT(VC)", decrypt_marker=True)

    def _sync_receiver(self) -> bool:
        return self._search(
            _h(b"req1", self._s), MseState.READ_SKEY, "HASH('req1', S)", decrypt_marker=False
        )

    def _search(self, marker: bytes, then: MseState, what: str, *, decrypt_marker: bool) -> bool:
        at = self._buf.find(marker)
        if at < 0:
            if len(self._buf) >= MAX_PAD + len(marker):
                self._fail(f"{what} not found within {MAX_PAD} bytes of padding")
            return False
        del self._buf[:at]
        if decrypt_marker:
            self._decrypt_take(len(marker))  # advances keyB's stream past VC
        else:
            del self._buf[: len(marker)]
        self.state = then
        return True

    def _finish(self) -> None:
        assert self.method is not None and self.info_hash is not None
        self.state = MseState.DONE
        rest = bytes(self._buf)
        self._buf.clear()
        payload = rest if self.method is CryptoMethod.PLAINTEXT else self._decrypt_take_bytes(rest)
        self._event = MseComplete(self.method, self.info_hash, self._received_ia, payload)

    def _decrypt_take_bytes(self, data: bytes) -> bytes:
        assert self._dec is not None
        return self._dec.crypt(data) if data else b""
