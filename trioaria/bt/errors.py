"""BitTorrent error types, each mapped to aria2's exit status (pure).

aria2 (``src/error_code.h``) reports a malformed bencoded document as exit 25
(``BENCODE_PARSE_ERROR``), a well-formed but invalid ``.torrent`` (missing keys, directory
traversal, wrong number of piece hashes) as 26 (``BITTORRENT_PARSE_ERROR``) and a bad magnet URI as
27 (``MAGNET_PARSE_ERROR``).  Peer-wire and tracker violations end one connection or one announce,
not the download; they are :class:`~trioaria.base.errors.RemoteProtocolError` subclasses so a
driver can catch "the other side broke the protocol" in one place.

Every class carries the structured data a message or a test needs (torf's ``_errors.py`` shape):
:class:`BencodeError` the byte offset, :class:`TrackerFailure` the tracker's own reason text.
"""

from __future__ import annotations

from ..base.errors import ExitCode, RemoteProtocolError, TrioariaError

__all__ = [
    "BencodeError",
    "MagnetError",
    "MetainfoError",
    "PeerProtocolError",
    "TrackerError",
    "TrackerFailure",
]


class BencodeError(TrioariaError):
    """Input is not a valid (strict) bencoded value (exit 25, as aria2's "Bencode decoding failed").

    Attributes:
        offset: index of the offending byte in the input, or ``None`` when not positional.
        reason: the bare reason, without the offset.
    """

    exit_code = ExitCode.BENCODE_PARSE_ERROR

    def __init__(self, reason: str, offset: int | None = None) -> None:
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"Bencode decoding failed: {reason}{where}")
        self.reason = reason
        self.offset = offset


class MetainfoError(TrioariaError):
    """A ``.torrent`` (or an ``info`` dictionary from ut_metadata) is invalid (exit 26).

    Attributes:
        reason: what is wrong, e.g. ``"Detected directory traversal directive in x/../evil"``.
    """

    exit_code = ExitCode.BITTORRENT_PARSE_ERROR

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MagnetError(TrioariaError):
    """A magnet URI cannot be used (exit 27).

    Attributes:
        uri: the URI as given.
        reason: what is wrong with it.
    """

    exit_code = ExitCode.MAGNET_PARSE_ERROR

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"Bad magnet URI {uri!r}: {reason}")
        self.uri = uri
        self.reason = reason


class PeerProtocolError(RemoteProtocolError):
    """A peer broke the peer wire protocol (BEP 3/6/10): the connection is dropped.

    Not retryable: a peer that sent an oversized frame or a malformed message is not dialled again.
    """

    retryable = False


class TrackerError(RemoteProtocolError):
    """A tracker's response (HTTP body or UDP datagram) is malformed (BEP 3, BEP 15)."""


class TrackerFailure(TrackerError):
    """The tracker answered with ``failure reason`` (BEP 3) or a UDP error action (BEP 15).

    Attributes:
        reason: the tracker's text, decoded as UTF-8 with replacement.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"Tracker returned failure reason: {reason}")
        self.reason = reason
