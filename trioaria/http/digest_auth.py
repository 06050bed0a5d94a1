"""HTTP Digest access authentication, RFC 7616 (pure).

Theory of operation
-------------------
A server that wants Digest answers ``401`` with ``WWW-Authenticate: Digest realm=..., nonce=...,
qop="auth", algorithm=...`` (§3.3).  :func:`parse_challenges` reads every challenge of such
headers (RFC 9110 §11.6.1 syntax: a scheme, then ``name=token`` or ``name="quoted"`` pairs;
several challenges may share one header line).  :class:`DigestAuth` then answers each request
(§3.4): ``response = H(H(A1):nonce:nc:cnonce:qop:H(A2))`` with ``A1 = user:realm:password``
(``-sess``: ``H(user:realm:password):nonce:cnonce``) and ``A2 = method:uri``; ``nc`` counts
the requests made with one nonce.  Without ``qop`` the RFC 2069 form ``H(H(A1):nonce:H(A2))``
is used.  ``MD5``, ``SHA-256`` and their ``-sess`` variants are supported (§3.2: the client
picks the first challenge it understands, servers list the strongest first).

The client nonce is a parameter (the driver passes random bytes), so the RFC's §3.9.1
example can be checked exactly.  aria2 has only Basic (its issue #1953).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["Challenge", "DigestAuth", "parse_challenges", "pick_digest"]

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
}

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}))\s*(?:,|$)')
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|$)")


@dataclass(frozen=True, slots=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: its scheme (lower-case) and parameters (names
    lower-case, values unquoted)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(headers: Iterable[str]) -> list[Challenge]:
    """Every challenge in the given ``WWW-Authenticate`` values, in order."""
    out: list[Challenge] = []
    for value in headers:
        pos = 0
        current: Challenge | None = None
        while pos < len(value):
            if value[pos] in ", \t":
                pos += 1
                continue
            m = _PARAM.match(value, pos)
            if m is not None and current is not None:
                quoted = m[2]
                text = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else m[3]
                current.params[m[1].lower()] = text
                pos = m.end()
                continue
            s = _SCHEME.match(value, pos)
            if s is None:
                break  # malformed: keep what was read
            current = Challenge(s[1].lower(), {})
            out.append(current)
            pos = s.end()
            # token68 (Basic's old form, e.g. "Negotiate abc=="): skip it
            if pos < len(value) and _PARAM.match(value, pos) is None:
                while pos < len(value) and value[pos] != ",":
                    pos += 1
    return out


def pick_digest(challenges: Iterable[Challenge]) -> Challenge | None:
    """The first Digest challenge with an algorithm and qop we support (§3.7)."""
    for ch in challenges:
        if ch.scheme != "digest" or "nonce" not in ch.params:
            continue
        alg = ch.params.get("algorithm", "MD5").upper().removesuffix("-SESS")
        qops = {q.strip() for q in ch.params.get("qop", "auth").split(",")}
        if alg in _HASHES and (qops & {"auth"} or "qop" not in ch.params):
            return ch
    return None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DigestAuth:
    """Answers requests to one protection space with one challenge's nonce.

    Args:
        challenge: the Digest challenge (see :func:`pick_digest`).
        user, password: the credentials.
    """

    def __init__(self, challenge: Challenge, user: str, password: str) -> None:
        p = challenge.params
        self.realm = p.get("realm", "")
        self.nonce = p["nonce"]
        self.opaque = p.get("opaque")
        algorithm = p.get("algorithm", "MD5")
        self.algorithm = algorithm
        self._sess = algorithm.upper().endswith("-SESS")
        self._h = _HASHES[algorithm.upper().removesuffix("-SESS")]
        qops = [q.strip() for q in p["qop"].split(",")] if "qop" in p else []
        self.qop = "auth" if "auth" in qops else None
        self.user = user
        self.password = password
        self.nc = 0

    def _hx(self, text: str) -> str:
        return self._h(text.encode("utf-8"))

    def response(self, method: str, uri: str, cnonce: str, nc: int) -> str:
        """The ``response`` value for request *method* *uri* (§3.4.1)."""
        ha1 = self._hx(f"{self.user}:{self.realm}:{self.password}")
        if self._sess:
            ha1 = self._hx(f"{ha1}:{self.nonce}:{cnonce}")
        ha2 = self._hx(f"{method}:{uri}")
        if self.qop is None:
            return self._hx(f"{ha1}:{self.nonce}:{ha2}")
        return self._hx(f"{ha1}:{self.nonce}:{nc:08x}:{cnonce}:{self.qop}:{ha2}")

    def header(self, method: str, uri: str, cnonce: str) -> tuple[str, str]:
        """``Authorization: Digest ...`` for the next request (``nc`` counts up)."""
        self.nc += 1
        parts = [
            f"username={_quote(self.user)}",
            f"realm={_quote(self.realm)}",
            f"uri={_quote(uri)}",
            f"algorithm={self.algorithm}",
            f"nonce={_quote(self.nonce)}",
        ]
        if self.qop is not None:
            parts += [f"nc={self.nc:08x}", f"cnonce={_quote(cnonce)}", f"qop={self.qop}"]
        parts.append(f"response={_quote(self.response(method, uri, cnonce, self.nc))}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        return ("Authorization", "Digest " + ", ".join(parts))
