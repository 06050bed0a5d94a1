"""``-o -``: a download streamed to standard output, in order, with bounded memory (driver).

Theory of operation
-------------------
aria2 cannot write to stdout (its issue #190).  trioaria downloads such a file through the
same :class:`~trioaria.storage.session.StorageSession` as any other, so ``-x``/``-s`` split it
across connections and mirrors as usual, with three differences:

* the session's file is a scratch file in a hidden directory under ``--dir``, removed at the
  end; there is no control file (a stream cannot be resumed);
* :class:`StdoutPump` copies the *contiguous* written prefix (verified pieces when there are
  piece hashes) from the scratch file to file descriptor 1, 1 MiB at a time, as it grows;
* the picker is fenced to a *window*: only pieces below ``delivered + window`` are handed out
  (``RangePicker.set_wanted``), so the download cannot run more than one window ahead of the
  reader.  A slow reader blocks the pump in its write, the window stops moving, and the
  connections wait for work: memory holds the connections' read buffers and the pump's one
  chunk, whatever the file's size;
* delivered bytes are released from the scratch file with ``fallocate(PUNCH_HOLE)`` (Linux;
  elsewhere the file keeps them until the end), so the disk holds about one window too.
  With ``--checksum`` they are kept: the whole file is hashed at the end.

A body of unknown length (chunked) has no ranges to split: :func:`copy_stream` writes it to
stdout as it arrives, under ``--timeout`` like any other body.
"""

from __future__ import annotations

import ctypes
import os
from typing import TYPE_CHECKING, Any

import trio

from ..base.errors import ExitCode, ReadTimeoutError, StorageError
from .bitfield import Bitfield

if TYPE_CHECKING:
    from ..base.sources import RangeStream
    from .session import StorageSession

__all__ = ["DEFAULT_WINDOW", "StdoutPump", "copy_stream", "open_stdout"]

#: How far (bytes) the download may run ahead of what stdout has taken.
DEFAULT_WINDOW = 16 << 20
_CHUNK = 1 << 20
#: How often the pump looks again when nothing moved (it also wakes on session changes).
_RECHECK = 0.05


def open_stdout() -> trio.lowlevel.FdStream:
    """A trio stream on a duplicate of fd 1 (put back to blocking mode by :func:`close_stdout`)."""
    return trio.lowlevel.FdStream(os.dup(1))


async def close_stdout(out: trio.lowlevel.FdStream) -> None:
    """Close the duplicate; fd 1 shares its O_NONBLOCK flag, so blocking mode is restored."""
    await out.aclose()
    try:
        os.set_blocking(1, True)
    except OSError:
        pass


class StdoutPump:
    """Delivers a session's bytes to *out* in order and moves the picker's window.

    Args:
        session: the download's storage session (one file).
        out: where the bytes go (``send_all``).
        window: bytes the picker may hand out beyond what was delivered.
    """

    def __init__(
        self,
        session: StorageSession,
        out: Any,
        *,
        window: int = DEFAULT_WINDOW,
        release: str | None = None,
    ) -> None:
        self._session = session
        self._out = out
        self._release = _HolePuncher(release) if release else None
        self._window = max(window, session.storage.piece_length)
        self.delivered = 0
        self._fence = -1  # first piece outside the window as last set
        self._done = trio.Event()
        self.move_window()

    def move_window(self) -> None:
        """Fence the picker to ``[delivered, delivered + window)`` (in whole pieces)."""
        st = self._session.storage
        pl = st.piece_length
        first = self.delivered // pl
        fence = min(st.num_pieces, (self.delivered + self._window + pl - 1) // pl)
        if fence == self._fence:
            return
        self._fence = fence
        if first == 0 and fence >= st.num_pieces:
            self._session.picker.set_wanted(None)
        else:
            wanted = Bitfield(st.num_pieces)
            for p in range(first, fence):
                wanted.set(p)
            self._session.picker.set_wanted(wanted)
        self._session.wake()  # idle connections look for work again

    def ready_end(self) -> int:
        """The end of the contiguous prefix that may be delivered now."""
        session = self._session
        st = session.storage
        if session.hashes is not None:
            p = self.delivered // st.piece_length
            while p < st.num_pieces and st.verified[p]:
                p += 1
            return min(st.total_length, p * st.piece_length)
        block = st.block_of(self.delivered)
        for a, _b in st.missing_runs(block):
            return st.block_start(a)
        return st.total_length

    async def wait_delivered(self) -> None:
        """Return once every byte was written to *out*."""
        await self._done.wait()

    async def run(self) -> None:
        """Copy the ready prefix to *out* until the whole file was delivered."""
        session = self._session
        total = session.storage.total_length
        while self.delivered < total:
            changed = session.changed_event()
            end = self.ready_end()
            if end <= self.delivered:
                with trio.move_on_after(_RECHECK):
                    await changed.wait()
                continue
            while self.delivered < end:
                n = min(_CHUNK, end - self.delivered)
                session.flush_cache()
                data = session.read(self.delivered, n)
                await _send(self._out, data)
                if self._release is not None:
                    self._release.punch(self.delivered, n)
                self.delivered += n
                # step the window by at least a quarter of it: rebuilding the mask per
                # chunk would cost O(pieces) each time
                st = session.storage
                ahead = self._fence * st.piece_length - self.delivered
                if ahead < self._window * 3 // 4 or self.delivered >= total:
                    self.move_window()
        self._done.set()
        if self._release is not None:
            self._release.close()


class _HolePuncher:
    """``fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length)``."""

    _MODE = 0x02 | 0x01

    def __init__(self, path: str) -> None:
        self._fd = -1
        self._call: Any = None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            call = libc.fallocate
            call.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
            call.restype = ctypes.c_int
            self._fd = os.open(path, os.O_WRONLY)
            self._call = call
        except (OSError, AttributeError):
            self.close()

    def punch(self, offset: int, length: int) -> None:
        if self._call is not None and self._call(self._fd, self._MODE, offset, length) != 0:
            self.close()  # not supported here: keep the bytes

    def close(self) -> None:
        self._call = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


async def copy_stream(
    stream: RangeStream, out: Any, progress: Any, *, timeout: float, what: str = "the body"
) -> int:
    """A body of unknown length, straight to *out*; returns its length.

    A read that brings nothing for ``timeout`` seconds (``--timeout``) raises
    :class:`~trioaria.base.errors.ReadTimeoutError`, as on every other body path.
    """
    buf = bytearray(_CHUNK)
    mv = memoryview(buf)
    total = 0
    while True:
        with trio.move_on_after(timeout) as cs:
            n = await stream.read_into(mv)
        if cs.cancelled_caught:
            raise ReadTimeoutError(f"no data from {what} for {timeout:g}s")
        if n == 0:
            break
        await _send(out, bytes(mv[:n]))
        total += n
        progress(total)
    await stream.finish(drained=True)
    return total


async def _send(out: Any, data: bytes) -> None:
    """Write to standard output; a reader that went away (``| head -c 100``) ends the
    download with one line (exit 17), not a broken-pipe traceback.

    Raises:
        StorageError: standard output was closed.
    """
    try:
        await out.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        raise StorageError(
            "standard output was closed (its reader went away)",
            exit_code=ExitCode.FILE_IO_ERROR,
        ) from None
