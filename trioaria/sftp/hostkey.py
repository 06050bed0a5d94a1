"""SSH host-key checks for SFTP: ``--ssh-host-key-md`` pins and the known_hosts policy (pure).

aria2 (``src/SSHSession.cc``, manual ``--ssh-host-key-md=<TYPE>=<DIGEST>``) hashes the *raw
public-key blob* the server sent in its key exchange (RFC 4253 §6.6 ``K_S``: the
``string "ssh-ed25519" || string key`` wire form, i.e. asyncssh's ``SSHKey.public_data``) with
SHA-1 or MD5 and compares the hex digest; a mismatch aborts the download (exit 1).  trioaria also
accepts ``sha-256`` (docs/decisions.md "SFTP host keys").

Without a pin, docs/decisions.md departs from aria2 (which checks nothing): a host listed in
``~/.ssh/known_hosts`` must present one of the listed keys (OpenSSH's "REMOTE HOST
IDENTIFICATION HAS CHANGED" is a hard error), a revoked key is refused, and an unknown host is
accepted with a warning.  The known_hosts file itself is matched by asyncssh in the driver
(hashed names, patterns, ``[host]:port``); this module only takes the resulting key blobs and
decides.
"""

from __future__ import annotations

import base64
import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DIGESTS",
    "Decision",
    "HostKeyPin",
    "Verdict",
    "decide",
    "fingerprint",
    "key_digest",
    "parse_pin",
]

#: aria2 hash names accepted by ``--ssh-host-key-md`` -> hashlib names and hex lengths.
DIGESTS: dict[str, tuple[str, int]] = {
    "sha-1": ("sha1", 40),
    "md5": ("md5", 32),
    "sha-256": ("sha256", 64),
}


@dataclass(frozen=True, slots=True)
class HostKeyPin:
    """An expected host-key digest: ``algorithm`` is an aria2 name, ``hexdigest`` lowercase."""

    algorithm: str
    hexdigest: str

    def __post_init__(self) -> None:
        if self.algorithm not in DIGESTS:
            raise ValueError(
                f"unsupported host key digest {self.algorithm!r}; use one of {', '.join(DIGESTS)}"
            )
        want = DIGESTS[self.algorithm][1]
        if len(self.hexdigest) != want or not _is_hex(self.hexdigest):
            raise ValueError(f"{self.algorithm} host key digest needs {want} hex digits")

    def __str__(self) -> str:
        return f"{self.algorithm}={self.hexdigest}"


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdef" for c in text)


def parse_pin(value: str | tuple[str, str] | None) -> HostKeyPin | None:
    """Parse ``--ssh-host-key-md``: ``"sha-1=HEX"`` or the option parser's ``(type, hex)``.

    Raises:
        ValueError: an unknown digest type or a malformed digest.
    """
    if value is None or value == "":
        return None
    if isinstance(value, tuple):
        kind, digest = value
    else:
        kind, sep, digest = value.partition("=")
        if not sep:
            raise ValueError(f"expected TYPE=DIGEST, got {value!r}")
    return HostKeyPin(kind.strip().lower(), digest.strip().lower())


def key_digest(algorithm: str, blob: bytes) -> str:
    """The hex digest aria2 compares: ``algorithm`` (aria2 name) over the raw key blob."""
    return hashlib.new(DIGESTS[algorithm][0], blob).hexdigest()


def fingerprint(blob: bytes) -> str:
    """OpenSSH's ``SHA256:<base64>`` fingerprint of a key blob (for messages)."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


class Verdict(enum.Enum):
    """Why a host key was accepted or refused."""

    PINNED = "pinned"  # matches --ssh-host-key-md
    PIN_MISMATCH = "pin-mismatch"
    KNOWN = "known"  # listed for this host in known_hosts
    CHANGED = "changed"  # the host is listed with other keys
    REVOKED = "revoked"  # a @revoked known_hosts line names this key
    UNKNOWN = "unknown"  # not listed: accepted with a warning


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one presented host key."""

    verdict: Verdict
    message: str

    @property
    def accept(self) -> bool:
        return self.verdict in (Verdict.PINNED, Verdict.KNOWN, Verdict.UNKNOWN)

    @property
    def warn(self) -> bool:
        return self.verdict is Verdict.UNKNOWN


def decide(
    blob: bytes,
    host: str,
    *,
    pin: HostKeyPin | None,
    known: Sequence[bytes] = (),
    revoked: Sequence[bytes] = (),
) -> Decision:
    """Accept or refuse the host key ``blob`` presented by ``host`` (``"name:port"``).

    A pin decides alone (aria2's rule); otherwise the known_hosts keys matched for this host
    (``known``) and the ``@revoked`` ones do, and an unlisted host is accepted with a warning.
    """
    if pin is not None:
        actual = key_digest(pin.algorithm, blob)
        if actual == pin.hexdigest:
            return Decision(Verdict.PINNED, f"{host}: host key matches {pin.algorithm} pin")
        return Decision(
            Verdict.PIN_MISMATCH,
            f"{host}: unexpected SSH host key: expected {pin.algorithm}={pin.hexdigest},"
            f" actual {pin.algorithm}={actual}",
        )
    if blob in revoked:
        return Decision(Verdict.REVOKED, f"{host}: the SSH host key {fingerprint(blob)} is revoked")
    if blob in known:
        return Decision(Verdict.KNOWN, f"{host}: host key found in known_hosts")
    if known:
        return Decision(
            Verdict.CHANGED,
            f"{host}: SSH host key {fingerprint(blob)} does not match known_hosts"
            " (the host key has changed, or someone is intercepting the connection)",
        )
    return Decision(
        Verdict.UNKNOWN,
        f"{host}: host is not in known_hosts; accepting SSH host key {fingerprint(blob)}"
        f" (sha-1={key_digest('sha-1', blob)}); pin it with --ssh-host-key-md",
    )
