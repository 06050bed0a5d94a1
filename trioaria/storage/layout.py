"""FileLayout: the files of one download laid end to end in one global byte space (pure).

Theory of operation
-------------------
Every protocol addresses a download as one contiguous byte range ``[0, total_length)``:
HTTP/FTP/SFTP segments are ranges of it, BitTorrent pieces are ``piece_length`` slices of it
(BEP 3: "the files are concatenated in the order they appear in the files list"), and Metalink
multi-file downloads reuse the same layout.  :class:`FileLayout` maps a global ``(offset, length)``
to per-file spans so the disk driver can ``pwrite`` each span into the right file.  Zero-length
files own no bytes and never appear in a span (aria2 still creates them; see ``disk.py``).

:func:`safe_relative_path` turns protocol-supplied path components (torrent ``path`` lists,
Metalink ``name`` attributes) into a relative POSIX path and refuses directory traversal the way
aria2's ``util::detectDirTraversal`` does ("Detected directory traversal directory path").

This module is pure: it imports no trio, socket, os or time.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from trioaria.base.errors import StorageError

__all__ = ["FileEntry", "FileLayout", "safe_relative_path"]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a download.

    Attributes:
        path: path relative to the download directory as the protocol gives it (torrent path
            components joined with ``/``) or a plain file name.
        length: size in bytes (``>= 0``).
        offset: global offset of the file's first byte.
        selected: whether the user wants this file (``--select-file``); unselected files still
            receive the bytes of pieces they share with selected files.
    """

    path: str
    length: int
    offset: int
    selected: bool = True

    @property
    def end(self) -> int:
        """Global offset one past the file's last byte."""
        return self.offset + self.length


class FileLayout:
    """Files of one download laid end to end (BEP 3 order).

    Args:
        files: ``(path, length)`` pairs or :class:`FileEntry` values.  Offsets are always
            recomputed from the order and lengths; a ``FileEntry``'s ``selected`` flag is kept.

    Raises:
        ValueError: a length is negative or a path is empty.
    """

    __slots__ = ("_ends", "_nonempty", "_starts", "files", "total_length")

    files: tuple[FileEntry, ...]
    total_length: int

    def __init__(self, files: Sequence[tuple[str, int]] | Sequence[FileEntry]) -> None:
        entries: list[FileEntry] = []
        offset = 0
        for item in files:
            if isinstance(item, FileEntry):
                path, length, selected = item.path, item.length, item.selected
            else:
                path, length = item
                selected = True
            if not path:
                raise ValueError("file path must not be empty")
            if length < 0:
                raise ValueError(f"negative file length {length} for {path!r}")
            entries.append(FileEntry(path, length, offset, selected))
            offset += length
        self.files = tuple(entries)
        self.total_length = offset
        # Only non-empty files own bytes; bisect over their starts.
        self._nonempty: list[int] = [i for i, f in enumerate(entries) if f.length > 0]
        self._starts: list[int] = [entries[i].offset for i in self._nonempty]
        self._ends: list[int] = [entries[i].end for i in self._nonempty]

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"FileLayout({len(self.files)} files, total_length={self.total_length})"

    def _check_range(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.total_length:
            raise ValueError(
                f"range [{offset}, {offset + length}) outside [0, {self.total_length})"
            )

    def locate(self, offset: int, length: int) -> list[tuple[int, int, int, int]]:
        """Split a global range into per-file spans.

        Args:
            offset: global offset of the first byte.
            length: number of bytes.

        Returns:
            ``(file_index, file_offset, buf_offset, n)`` tuples in order: ``n`` bytes at
            ``file_offset`` of file ``file_index`` correspond to ``buf[buf_offset:buf_offset+n]``.
            Zero-length files are skipped; ``length == 0`` gives ``[]``.

        Raises:
            ValueError: the range is not inside ``[0, total_length)``.
        """
        self._check_range(offset, length)
        spans: list[tuple[int, int, int, int]] = []
        if length == 0:
            return spans
        k = bisect.bisect_right(self._starts, offset) - 1
        pos = offset
        end = offset + length
        while pos < end:
            index = self._nonempty[k]
            file_end = self._ends[k]
            n = min(end, file_end) - pos
            spans.append((index, pos - self._starts[k], pos - offset, n))
            pos += n
            k += 1
        return spans

    def file_range(self, index: int) -> tuple[int, int]:
        """Global ``[start, end)`` of file ``index``."""
        entry = self.files[index]
        return entry.offset, entry.end

    def files_in_range(self, offset: int, length: int) -> list[int]:
        """Indices of the non-empty files that overlap a global range (e.g. one piece)."""
        return [span[0] for span in self.locate(offset, length)]

    def with_selection(self, selected: Iterable[int]) -> FileLayout:
        """Return a copy where exactly the files with these (0-based) indices are selected."""
        chosen = set(selected)
        for i in chosen:
            if not 0 <= i < len(self.files):
                raise ValueError(f"file index {i} out of range")
        return FileLayout(
            [FileEntry(f.path, f.length, f.offset, i in chosen) for i, f in enumerate(self.files)]
        )


def _escape_controls(text: str) -> str:
    # aria2 util::escapePath: bytes 0x00-0x1f and 0x7f become %XX; '\\' is kept on POSIX.
    return "".join(f"%{ord(c):02X}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)


def safe_relative_path(components: Sequence[str]) -> str:
    """Join protocol-supplied path components into a safe relative POSIX path.

    aria2 joins torrent path elements with ``/`` and rejects the result when
    ``detectDirTraversal`` matches; we do the same, component by component:

    * a component may itself contain ``/`` (aria2 nests such files); the pieces are checked
      one by one;
    * ``..`` or ``.`` anywhere, or a leading ``/`` (absolute path), raises
      :class:`~trioaria.base.errors.StorageError`;
    * empty pieces (``a//b``) are dropped; a path with nothing left raises;
    * control characters including NUL are percent-escaped (``%00``) as aria2's
      ``util::escapePath`` does, instead of failing the download;
    * a backslash is an ordinary file-name character on POSIX and is kept.

    Args:
        components: e.g. ``[info.name, *file.path]`` of a multi-file torrent.

    Returns:
        The relative path, e.g. ``"dir/sub/file.bin"``.

    Raises:
        StorageError: traversal (``..``/``.``), an absolute path, or an empty path.
    """
    joined = "/".join(components)
    if joined.startswith("/"):
        raise StorageError(f"Detected directory traversal (absolute path): {joined!r}")
    parts: list[str] = []
    for piece in joined.split("/"):
        if piece in ("..", "."):
            raise StorageError(f"Detected directory traversal directory path: {joined!r}")
        if piece:
            parts.append(_escape_controls(piece))
    if not parts:
        raise StorageError("Path is empty.")
    return "/".join(parts)
