"""RC4 keystreams for MSE, with a zero-copy ``crypt_into`` (pure).

Theory of operation
-------------------
MSE carries the payload in RC4 with "the first 1024 bytes of the RC4 output discarded"
(docs/design.md, "BitTorrent"; :mod:`trioaria.bt.mse`).  RC4 is the one per-byte cost an
encrypted transfer adds to a plaintext one (docs/performance.md, "MSE"), so this module picks the
fastest implementation already installed and offers a call that writes into a caller's buffer:

* ``cryptography``'s ``ARC4`` (OpenSSL's RC4, ~430 MiB/s on the reference machine) when it is
  importable and OpenSSL still provides RC4 (its "legacy" provider).  ``cryptography`` is not an
  extra dependency: asyncssh requires it.  ``update_into`` writes the output straight into the
  caller's buffer; input and output must not overlap (OpenSSL only promises exact in-place
  operation, and ``cryptography`` rejects partial overlap), so :class:`Rc4` asks for two buffers.
* pycryptodome's ``ARC4`` (~340 MiB/s) otherwise, through its public API only: ``encrypt``
  returns a new ``bytes`` that ``crypt_into`` copies into the output (one ``memcpy``, about 1 %
  of the RC4 time for a 256 KiB read).

Both produce the same keystream (tests/bt/test_mse.py checks them against each other).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["DROP", "Rc4", "backends", "default_backend"]

DROP = 1024
"""Keystream bytes MSE discards before the first byte it uses."""

Buffer = bytes | bytearray | memoryview


class _Cipher(Protocol):
    def crypt(self, data: Buffer) -> bytes: ...

    def crypt_into(self, data: Buffer, out: memoryview) -> None: ...


class _PyCryptodome:
    """pycryptodome's RC4 through its public API."""

    __slots__ = ("_c",)

    def __init__(self, key: bytes) -> None:
        from Crypto.Cipher import ARC4

        self._c = ARC4.new(key)

    def crypt(self, data: Buffer) -> bytes:
        return bytes(self._c.encrypt(data))

    def crypt_into(self, data: Buffer, out: memoryview) -> None:
        out[: len(data)] = self._c.encrypt(data)


class _OpenSsl:
    """OpenSSL's RC4 through ``cryptography``."""

    __slots__ = ("_c",)

    def __init__(self, key: bytes) -> None:
        self._c = _openssl_cipher(_openssl_arc4(key), mode=None).encryptor()

    def crypt(self, data: Buffer) -> bytes:
        return bytes(self._c.update(data))

    def crypt_into(self, data: Buffer, out: memoryview) -> None:
        self._c.update_into(data, out)


_openssl_arc4: Any = None
_openssl_cipher: Any = None
_backends: dict[str, Callable[[bytes], _Cipher]] = {}


def _openssl_works() -> bool:
    global _openssl_arc4, _openssl_cipher
    try:  # cryptography >= 43 keeps RC4 in the "decrepit" package
        from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
        from cryptography.hazmat.primitives.ciphers import Cipher
    except ImportError:  # pragma: no cover - depends on the installed cryptography
        return False
    _openssl_arc4, _openssl_cipher = ARC4, Cipher
    try:  # RC4 needs OpenSSL's legacy provider, which a system OpenSSL may lack
        _OpenSsl(b"\x00" * 16).crypt(b"\x00")
    except Exception:  # UnsupportedAlgorithm or an OpenSSL error
        return False
    return True


def backends() -> dict[str, Callable[[bytes], _Cipher]]:
    """The RC4 implementations usable here, by name, the fastest (``openssl``) first.

    Found on the first call, not at import: the crypto libraries cost start-up time a download
    that never negotiates RC4 should not pay.
    """
    if not _backends:
        if _openssl_works():
            _backends["openssl"] = _OpenSsl
        _backends["pycryptodome"] = _PyCryptodome
    return _backends


def default_backend() -> str:
    """The fastest usable backend's name."""
    return next(iter(backends()))


class Rc4:
    """One RC4 keystream with the first ``drop`` bytes discarded.

    Args:
        key: the RC4 key (MSE: the 20-byte ``HASH('keyA'|'keyB', S, SKEY)``).
        drop: keystream bytes to discard first (MSE: :data:`DROP`).
        backend: a :func:`backends` name; the fastest when None.
    """

    __slots__ = ("_c", "crypt", "crypt_into")

    def __init__(self, key: bytes, drop: int = DROP, *, backend: str | None = None) -> None:
        self._c = backends()[backend or default_backend()](key)
        if drop:
            self._c.crypt(bytes(drop))
        #: ``crypt(data) -> bytes``: the next ``len(data)`` bytes encrypted (or decrypted)
        self.crypt = self._c.crypt
        #: ``crypt_into(data, out)``: the same, written into ``out[:len(data)]``; ``out`` must
        #: not overlap ``data``
        self.crypt_into = self._c.crypt_into
