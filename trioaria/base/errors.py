"""The one exception tree of trioaria, mapped to aria2's exit codes.

Every error a user can see derives from :class:`TrioariaError` and carries an
``exit_code`` equal to aria2's (``src/error_code.h``), so scripts written for
aria2c keep working.  Cores raise only these types; drivers translate
``OSError``/``ssl``/trio errors at the seam (see ``trioaria.net.connect``).
"""

from __future__ import annotations

import enum

__all__ = [
    "AuthError",
    "CannotResumeError",
    "ChecksumError",
    "ConnectError",
    "ContentRangeMismatchError",
    "ExitCode",
    "FileExistsError_",
    "FtpProtocolError",
    "HttpProtocolError",
    "LocalProtocolError",
    "MetalinkError",
    "NameResolveError",
    "NetworkError",
    "NotFoundError",
    "OptionError",
    "PieceLengthChangedError",
    "ProtocolError",
    "RangesIgnoredError",
    "ReadTimeoutError",
    "RemoteProtocolError",
    "RestRefusedError",
    "ResumeFileError",
    "ServiceUnavailableError",
    "StorageError",
    "TimeoutError_",
    "TooManyRedirectsError",
    "TooSlowError",
    "TrioariaError",
    "UnreliableSourceError",
]


class ExitCode(enum.IntEnum):
    """aria2's exit status values (aria2 ``src/error_code.h``; manual "EXIT STATUS")."""

    FINISHED = 0
    UNKNOWN_ERROR = 1
    TIME_OUT = 2
    RESOURCE_NOT_FOUND = 3
    MAX_FILE_NOT_FOUND = 4
    TOO_SLOW_DOWNLOAD_SPEED = 5
    NETWORK_PROBLEM = 6
    IN_PROGRESS = 7
    CANNOT_RESUME = 8
    NOT_ENOUGH_DISK_SPACE = 9
    PIECE_LENGTH_CHANGED = 10
    DUPLICATE_DOWNLOAD = 11
    DUPLICATE_INFO_HASH = 12
    FILE_ALREADY_EXISTS = 13
    FILE_RENAMING_FAILED = 14
    FILE_OPEN_ERROR = 15
    FILE_CREATE_ERROR = 16
    FILE_IO_ERROR = 17
    DIR_CREATE_ERROR = 18
    NAME_RESOLVE_ERROR = 19
    METALINK_PARSE_ERROR = 20
    FTP_PROTOCOL_ERROR = 21
    HTTP_PROTOCOL_ERROR = 22
    HTTP_TOO_MANY_REDIRECTS = 23
    HTTP_AUTH_FAILED = 24
    BENCODE_PARSE_ERROR = 25
    BITTORRENT_PARSE_ERROR = 26
    MAGNET_PARSE_ERROR = 27
    OPTION_ERROR = 28
    HTTP_SERVICE_UNAVAILABLE = 29
    JSON_PARSE_ERROR = 30
    REMOVED = 31
    CHECKSUM_ERROR = 32


class TrioariaError(Exception):
    """Root of every trioaria error.

    Attributes:
        exit_code: the aria2 exit status this error maps to.
        retryable: whether a source that raised it may be tried again
            (network hiccups yes; 404 or a checksum mismatch no).
    """

    exit_code: ExitCode = ExitCode.UNKNOWN_ERROR
    retryable: bool = False
    status: int | None = None  # the protocol status code behind the error (HTTP 404, FTP 550...)

    def __init__(
        self, message: str, *, exit_code: ExitCode | None = None, retryable: bool | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message


class OptionError(TrioariaError):
    """An option has an invalid value or is unknown (exit 28)."""

    exit_code = ExitCode.OPTION_ERROR


# --- protocol errors (h11 style: abstract base, Local / Remote) ---------------------------


class ProtocolError(TrioariaError):
    """A peer or server broke the protocol, or we were asked to.  Abstract."""

    def __init__(
        self, message: str, *, exit_code: ExitCode | None = None, retryable: bool | None = None
    ) -> None:
        if type(self) is ProtocolError:
            raise TypeError("ProtocolError is abstract; raise a Local or Remote subclass")
        super().__init__(message, exit_code=exit_code, retryable=retryable)


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol forbids (a bug or bad input on our side)."""


class RemoteProtocolError(ProtocolError):
    """The remote side sent something that violates the protocol."""

    retryable = True


class HttpProtocolError(RemoteProtocolError):
    """Malformed or unexpected HTTP response (exit 22)."""

    exit_code = ExitCode.HTTP_PROTOCOL_ERROR


class FtpProtocolError(RemoteProtocolError):
    """Malformed or unexpected FTP reply, refused login or command (exit 21, aria2's
    FTP_PROTOCOL_ERROR)."""

    exit_code = ExitCode.FTP_PROTOCOL_ERROR


class UnreliableSourceError(RemoteProtocolError):
    """A mirror cannot serve byte ranges, or lies about them.  Never raised itself.

    The mirror's other answers may still be good (its first connection may be streaming the
    whole file), so an engine retires the mirror (no new ranges from it, its server
    statistics noted) instead of failing the download; ``exit_code`` is what the download
    ends with when no source is left (aria2c drops such connections and finishes).
    """

    retryable = False  # not on this mirror: another one should take the range


class ContentRangeMismatchError(UnreliableSourceError, HttpProtocolError):
    """A 206 whose ``Content-Range`` (or ``Content-Length``) is not the range asked for
    (exit 8, aria2 ``EX_INVALID_RANGE_HEADER``)."""

    exit_code = ExitCode.CANNOT_RESUME


class RangesIgnoredError(UnreliableSourceError, HttpProtocolError):
    """A ``200`` with the whole body to a request for a later range, the file unchanged
    (same validator): the server ignores ``Range`` (exit 22)."""


class RestRefusedError(UnreliableSourceError, FtpProtocolError):
    """An FTP server refused ``REST`` to a non-zero offset: it cannot serve ranges (exit 21)."""


class TooManyRedirectsError(HttpProtocolError):
    """More redirects than allowed (exit 23)."""

    exit_code = ExitCode.HTTP_TOO_MANY_REDIRECTS
    retryable = False


class AuthError(HttpProtocolError):
    """The server refused our credentials (401/407, exit 24)."""

    exit_code = ExitCode.HTTP_AUTH_FAILED
    retryable = False
    #: the ``WWW-Authenticate`` values of a 401 (Digest needs the challenge; RFC 7616 §3.3)
    challenges: tuple[str, ...] = ()
    #: the URL that answered 401 (after redirects): a Digest answer names its target
    url: str | None = None


class NotFoundError(TrioariaError):
    """The resource does not exist (404/410 or FTP 550, exit 3)."""

    exit_code = ExitCode.RESOURCE_NOT_FOUND


class ServiceUnavailableError(TrioariaError):
    """503 from the server (exit 29); retried with Retry-After / --retry-wait."""

    exit_code = ExitCode.HTTP_SERVICE_UNAVAILABLE
    retryable = True
    retry_after: float | None = None  # seconds from Retry-After, honoured before the next try


# --- network ----------------------------------------------------------------------------


class NetworkError(TrioariaError):
    """A connection failed, was reset or closed early (exit 6)."""

    exit_code = ExitCode.NETWORK_PROBLEM
    retryable = True


class ConnectError(NetworkError):
    """Could not connect (refused, unreachable).

    aria2 reports a failed connection establishment as errorCode=1, not 6
    (``AbstractCommand.cc``: "Failed to establish connection"); so do we.
    """

    exit_code = ExitCode.UNKNOWN_ERROR


class NameResolveError(NetworkError):
    """The host name did not resolve (exit 19)."""

    exit_code = ExitCode.NAME_RESOLVE_ERROR


class TimeoutError_(NetworkError):
    """A connect or read took longer than its timeout (exit 2)."""

    exit_code = ExitCode.TIME_OUT


class ReadTimeoutError(TimeoutError_):
    """No bytes arrived within ``--timeout``."""


class TooSlowError(NetworkError):
    """Slower than ``--lowest-speed-limit`` (exit 5)."""

    exit_code = ExitCode.TOO_SLOW_DOWNLOAD_SPEED


# --- storage and resume -----------------------------------------------------------------


class StorageError(TrioariaError):
    """Opening, creating or writing a local file failed (exit 15-18, 9)."""

    exit_code = ExitCode.FILE_IO_ERROR


class FileExistsError_(StorageError):
    """The target exists and neither -c, --allow-overwrite nor renaming applies (exit 13)."""

    exit_code = ExitCode.FILE_ALREADY_EXISTS


class ResumeFileError(TrioariaError):
    """A ``.aria2`` control file is malformed (exit 1, as aria2's DlAbortEx)."""

    exit_code = ExitCode.UNKNOWN_ERROR


class CannotResumeError(TrioariaError):
    """The remote file changed since the control file was written (exit 8)."""

    exit_code = ExitCode.CANNOT_RESUME


class PieceLengthChangedError(TrioariaError):
    """The control file's piece length differs and progress exists (exit 10)."""

    exit_code = ExitCode.PIECE_LENGTH_CHANGED


class ChecksumError(TrioariaError):
    """The downloaded data does not match ``--checksum`` or a Digest header (exit 32)."""

    exit_code = ExitCode.CHECKSUM_ERROR


class MetalinkError(TrioariaError):
    """A Metalink document is malformed, hostile or unsafe (exit 20, nothing downloaded)."""

    exit_code = ExitCode.METALINK_PARSE_ERROR
