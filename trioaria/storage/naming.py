"""Output-path decisions: aria2's ``-d``, ``-o``, ``-c``, ``--allow-overwrite``, ``--auto-file-renaming``.

Theory of operation
-------------------
aria2 (``src/RequestGroup.cc``: ``adjustFilename``, ``shouldCancelDownloadForSafety``,
``tryAutoFileRenaming``, ``removeDefunctControlFile``, ``loadAndOpenFile``) decides where a
single-file download goes before any byte is written:

1. ``<file>.aria2`` exists: resume it (``-c`` is not needed).  If the data file itself is gone the
   control file is *defunct*: aria2 deletes it and starts afresh at the same path.
2. The file exists and ``-c`` is given (and it is not longer than the remote file, when the length
   is known): resume from the file's length.  Whether that is safe (a preallocated file is full of
   zeros) is the caller's decision (``DiskAdaptor.has_holes``).
3. The file exists and ``--allow-overwrite=true``: download again from zero over it.
4. The file exists and ``--auto-file-renaming=true`` (default): the first ``file.N.ext``,
   ``N = 1..9999``, that does not exist - or exists *with* a control file, which is then resumed.
   The number goes before the last extension (``a.tar.gz`` -> ``a.tar.1.gz``); a leading dot is
   not an extension (``.bashrc`` -> ``.bashrc.1``).  None free: exit 14 FILE_RENAMING_FAILED.
5. Otherwise exit 13 FILE_ALREADY_EXISTS with aria2's message.

``-o`` is always relative to ``-d`` (aria2 ``util::applyDir``: ``dir + "/" + out``; an empty
``-d`` means ``.``).  A name taken from a URL goes through :func:`name_from_url` (aria2
``util::createSafePath``) so a remote name can never climb out of ``-d``; ``-o`` is the user's own
and may contain ``..`` as in aria2.

:func:`decide_output` is pure apart from ``os.path`` string handling: existence checks are
injected so it is testable without a file system.  This is a driver-side helper, not a sans-IO core.
"""

from __future__ import annotations

import os.path
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from trioaria.base.errors import ExitCode, FileExistsError_, StorageError

__all__ = [
    "CONTROL_FILE_SUFFIX",
    "DEFAULT_FILE_NAME",
    "MAX_RENAME_ATTEMPTS",
    "OutputDecision",
    "apply_dir",
    "control_file_path",
    "decide_output",
    "name_from_url",
    "renamed_path",
]

CONTROL_FILE_SUFFIX: Final = ".aria2"
DEFAULT_FILE_NAME: Final = "index.html"  # aria2 Request::DEFAULT_FILE
MAX_RENAME_ATTEMPTS: Final = 9999  # aria2: for (i = 1; i < 10000; ++i)

_MSG_FILE_ALREADY_EXISTS: Final = (
    "File {} exists, but a control file(*.aria2) does not exist. Download was canceled in order "
    "to prevent your file from being truncated to 0. If you are sure to download the file all "
    "over again, then delete it or add --allow-overwrite=true option and restart aria2."
)


@dataclass(frozen=True, slots=True)
class OutputDecision:
    """Where a download goes and how to open it.

    Attributes:
        path: absolute final path of the data file.
        action: ``"new"`` (create/truncate), ``"resume"`` (load ``path.aria2``, or with ``-c``
            resume from the file's length when ``control_file`` is False), ``"overwrite"``
            (existing file, download again from zero), ``"renamed"`` (new download at a
            ``file.N.ext`` path).
        control_file: True when ``path + ".aria2"`` exists and should be loaded (``resume``).
        stale_control_file: True when ``path + ".aria2"`` exists but the data file does not:
            aria2 removes that defunct control file before starting afresh (``action == "new"``).
        renamed_from: the originally wanted path when auto-renaming chose ``path``.
    """

    path: str
    action: str
    control_file: bool = False
    stale_control_file: bool = False
    renamed_from: str | None = None


def control_file_path(path: str) -> str:
    """aria2's control file for a data file: ``path + ".aria2"``."""
    return path + CONTROL_FILE_SUFFIX


def renamed_path(path: str, number: int) -> str:
    """``path`` with ``.number`` inserted before its extension, as aria2's ``tryAutoFileRenaming``.

    ``"d/file.ext"`` -> ``"d/file.1.ext"``; ``"d/.hidden"`` -> ``"d/.hidden.1"``;
    ``"d.x/file"`` -> ``"d.x/file.1"``.
    """
    dot = path.rfind(".")
    slash = path.rfind("/")
    # A dot that starts the base name (".file") is not an extension separator.
    if dot > 0 and (slash == -1 or slash < dot - 1):
        return f"{path[:dot]}.{number}{path[dot:]}"
    return f"{path}.{number}"


def apply_dir(directory: str, name: str) -> str:
    """aria2 ``util::applyDir``: ``-o`` (or a name from the server) under ``-d``, as an
    absolute path; a leading ``/`` in the name never escapes ``-d``."""
    joined = os.path.join(directory or ".", name.lstrip("/"))
    return os.path.abspath(joined)


def decide_output(
    dir: str,  # noqa: A002 - aria2's option name, as the brief's signature
    name: str,
    *,
    exists: Callable[[str], bool],
    allow_overwrite: bool,
    auto_file_renaming: bool,
    continue_: bool,
    control_file_exists: Callable[[str], bool],
    file_size: Callable[[str], int] | None = None,
    total_length: int | None = None,
    in_use: Callable[[str], bool] | None = None,
) -> OutputDecision:
    """Decide the final path and open mode of a single-file download (aria2 rules above).

    Args:
        dir: ``--dir`` (``""`` means the current directory).
        name: ``--out`` or a name from :func:`name_from_url` / Content-Disposition (already
            sanitised); may contain sub-directories.
        exists: whether a data file exists at an absolute path.
        allow_overwrite: ``--allow-overwrite``.
        auto_file_renaming: ``--auto-file-renaming``.
        continue_: ``-c/--continue``.
        control_file_exists: called with a *data file's* absolute path; whether its control
            file (``control_file_path(path)``) exists, e.g.
            ``lambda p: os.path.exists(control_file_path(p))``.
        file_size: size of an existing data file; with ``total_length`` it enforces aria2's
            "``-c`` only if the local file is not longer than the remote one".
        total_length: remote length when known.
        in_use: whether another running download writes a path: such a path is never
            resumed, continued or overwritten; the download is renamed (aria2
            ``RequestGroup::shouldCancelDownloadForSafety``), or refused (exit 13) without
            ``--auto-file-renaming``.

    Returns:
        The :class:`OutputDecision`.

    Raises:
        FileExistsError_: the file exists and neither ``-c``, overwrite nor renaming applies
            (exit 13).
        StorageError: ``file.1.ext`` .. ``file.9999.ext`` are all taken (exit 14).
    """
    path = apply_dir(dir, name)
    busy = in_use or (lambda _: False)
    if busy(path):
        if not auto_file_renaming:
            raise FileExistsError_(_MSG_FILE_ALREADY_EXISTS.format(path))
        return _renamed(path, exists, control_file_exists, busy)
    if control_file_exists(path):
        if exists(path):
            return OutputDecision(path, "resume", control_file=True)
        return OutputDecision(path, "new", stale_control_file=True)
    if not exists(path):
        return OutputDecision(path, "new")
    if continue_ and (total_length is None or file_size is None or file_size(path) <= total_length):
        return OutputDecision(path, "resume")
    if allow_overwrite:
        return OutputDecision(path, "overwrite")
    if not auto_file_renaming:
        raise FileExistsError_(_MSG_FILE_ALREADY_EXISTS.format(path))
    return _renamed(path, exists, control_file_exists, busy)


def _renamed(
    path: str,
    exists: Callable[[str], bool],
    control_file_exists: Callable[[str], bool],
    busy: Callable[[str], bool],
) -> OutputDecision:
    for number in range(1, MAX_RENAME_ATTEMPTS + 1):
        candidate = renamed_path(path, number)
        if busy(candidate):
            continue
        if not exists(candidate):
            return OutputDecision(candidate, "renamed", renamed_from=path)
        if control_file_exists(candidate):
            return OutputDecision(candidate, "resume", control_file=True, renamed_from=path)
    raise StorageError(f"File renaming failed: {path}", exit_code=ExitCode.FILE_RENAMING_FAILED)


# --- names from URLs (aria2 Request::getFile + util::percentDecode + util::createSafePath) ---

_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")


def _percent_decode(text: str) -> bytes:
    # aria2's decoder is lenient: a '%' not followed by two hex digits stays literally.
    raw = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25 and i + 2 < len(raw) and raw[i + 1] in _HEX and raw[i + 2] in _HEX:
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def _escape_path(text: str) -> str:
    # aria2 util::escapePath (POSIX): control bytes 0x00-0x1f and 0x7f become %XX.
    return "".join(f"%{ord(c):02X}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)


def _safe_basename(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Not UTF-8: aria2 percent-encodes everything but RFC 3986 unreserved characters.
        return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in raw)
    # aria2 util::fixTaintedBasename: a decoded '/' must not create a directory.
    return _escape_path(text.replace("/", "%2F"))


def name_from_url(url: str) -> str:
    """The local file name aria2 derives from a URL.

    The last path segment (query and fragment removed; FTP ``;type=`` stripped) is
    percent-decoded and made safe: ``/`` from ``%2F`` becomes ``%2F`` again, control characters
    become ``%XX``, non-UTF-8 names are percent-encoded.  An empty segment, ``.`` or ``..`` (the
    latter two resolve to the directory itself under RFC 3986 §5.2.4) gives ``index.html``.

    Args:
        url: an absolute ``http``/``https``/``ftp``/``sftp`` URL (or a bare path).

    Returns:
        A single file name, never containing ``/`` and never ``.``/``..``.
    """
    rest = url.split("#", 1)[0].split("?", 1)[0]
    scheme, sep, after = rest.partition("://")
    if sep:
        slash = after.find("/")
        path = "" if slash == -1 else after[slash:]
        if scheme.lower() == "ftp":
            path = path.split(";type=", 1)[0]
    else:
        path = rest
    segment = path.rsplit("/", 1)[-1]
    raw = _percent_decode(segment)
    if raw in (b"", b".", b".."):
        return DEFAULT_FILE_NAME
    return _safe_basename(raw)
