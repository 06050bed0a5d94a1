"""Download rate policy: a token bucket with injected time (pure; docs/design.md §11).

aria2 caps the download rate per download (``--max-download-limit``) and for all downloads
together (``--max-overall-download-limit``), in bytes per second, ``0`` meaning unlimited
(aria2 manual, "Advanced Options").  Both are changeable at run time over RPC
(``aria2.changeOption`` / ``aria2.changeGlobalOption``), so :attr:`SpeedLimit.rate` is a plain
mutable attribute: the next read obeys the new value.

Theory of operation
-------------------
One :class:`SpeedLimit` is shared by every connection it governs (all connections of a
download, or all downloads of the engine).  A connection that wants to read asks, in this
order and at one instant ``now``:

1. :meth:`SpeedLimit.read_size` — how many bytes to ask the socket for: the bucket's current
   allowance, but never less than :func:`min_read` (16 KiB, or one second's worth at very low
   rates: tiny reads waste more CPU than they save accuracy) and never more than wanted;
2. :meth:`SpeedLimit.delay_for` — how long to sleep before those bytes may be read;
3. :meth:`SpeedLimit.consume` — reserve them at once, *before* sleeping, so connections that
   ask while this one sleeps queue up behind it instead of all waking into the same tokens
   (the bucket goes into debt; the debt is the queue);
4. after the read, :meth:`SpeedLimit.refund` gives back what the socket did not deliver.

Reads therefore never overshoot: a read is never larger than the bytes it already paid for.
The bucket holds at most :func:`burst` tokens (a quarter second's worth, at least one
:func:`min_read`), so an idle period does not turn into a long burst later; over any window
of ``T`` seconds at most ``rate * T + burst`` bytes are read.

The driver (``trioaria.engine.group``) passes ``trio.current_time()`` as ``now`` and does the
sleeping; nothing here reads a clock.
"""

from __future__ import annotations

__all__ = ["BURST_SECONDS", "MIN_READ", "SpeedLimit", "burst", "min_read"]

#: The smallest read a throttled connection makes (unless a second's worth is less).
MIN_READ = 16 * 1024
#: The bucket holds at most this many seconds' worth of tokens.
BURST_SECONDS = 0.25


def min_read(rate: int) -> int:
    """The read-size floor at ``rate`` bytes/s: 16 KiB, or one second's worth if smaller."""
    return max(1, min(MIN_READ, rate))


def burst(rate: int) -> float:
    """The bucket's capacity at ``rate`` bytes/s."""
    return max(rate * BURST_SECONDS, float(min_read(rate)))


class SpeedLimit:
    """A token bucket of ``rate`` bytes/s shared by the connections it governs.

    Attributes:
        rate: bytes per second; ``0`` (or less) means unlimited.  May be assigned at any time
            (RPC ``changeOption``); the refill since the last call uses the new rate.
    """

    __slots__ = ("_stamp", "_tokens", "rate")

    def __init__(self, rate: int = 0) -> None:
        self.rate = rate
        self._tokens = 0.0
        self._stamp: float | None = None  # the bucket starts full on first use

    def __repr__(self) -> str:
        return f"SpeedLimit(rate={self.rate})"

    @property
    def limited(self) -> bool:
        """Whether a rate is set (``False`` makes every method a no-op)."""
        return self.rate > 0

    def _refill(self, now: float) -> None:
        cap = burst(self.rate)
        if self._stamp is None:
            self._tokens, self._stamp = cap, now
            return
        if now > self._stamp:
            self._tokens = min(cap, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        elif self._tokens > cap:  # the rate was lowered
            self._tokens = cap

    def tokens(self, now: float) -> float:
        """Bytes that may be read at ``now`` without waiting (negative: queued debt)."""
        if not self.limited:
            return float("inf")
        self._refill(now)
        return self._tokens

    def read_size(self, want: int, now: float) -> int:
        """How many bytes the next read may ask for (``want`` when unlimited).

        Args:
            want: the most the caller would read (its buffer or what is left of its segment).
            now: the current time in seconds.

        Returns:
            ``min(want, max(allowance, min_read(rate)))``, at least 1 when ``want`` is.
        """
        if not self.limited or want <= 0:
            return want
        self._refill(now)
        return min(want, max(int(self._tokens), min_read(self.rate)))

    def delay_for(self, nbytes: int, now: float) -> float:
        """Seconds to wait at ``now`` before ``nbytes`` may be read (0 when unlimited)."""
        if not self.limited or nbytes <= 0:
            return 0.0
        self._refill(now)
        deficit = nbytes - self._tokens
        return deficit / self.rate if deficit > 0 else 0.0

    def consume(self, nbytes: int, now: float) -> None:
        """Take ``nbytes`` tokens at ``now``; the bucket may go into debt (the queue)."""
        if not self.limited:
            return
        self._refill(now)
        self._tokens -= nbytes

    def refund(self, nbytes: int, now: float) -> None:
        """Give back ``nbytes`` reserved by :meth:`consume` but not read."""
        if not self.limited or nbytes <= 0:
            return
        self._refill(now)
        self._tokens = min(burst(self.rate), self._tokens + nbytes)
