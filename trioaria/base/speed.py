"""Transfer-rate meter over a sliding window (time is a parameter: docs/design.md).

aria2 shows speeds averaged over the last few seconds (``SpeedCalc``); so do we.  Pure.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SpeedMeter"]


class SpeedMeter:
    """Bytes per second over the last ``window`` seconds, in ``slot``-second buckets."""

    __slots__ = ("_buckets", "_start", "slot", "total", "window")

    def __init__(self, now: float, window: float = 4.0, slot: float = 0.25) -> None:
        self.window = window
        self.slot = slot
        self.total = 0
        self._start = now
        self._buckets: deque[list[float]] = deque()  # [slot_start, bytes]

    def add(self, nbytes: int, now: float) -> None:
        self.total += nbytes
        key = now - (now % self.slot)
        if self._buckets and self._buckets[-1][0] == key:
            self._buckets[-1][1] += nbytes
        else:
            self._buckets.append([key, float(nbytes)])
        self._expire(now)

    def _expire(self, now: float) -> None:
        limit = now - self.window
        while self._buckets and self._buckets[0][0] + self.slot <= limit:
            self._buckets.popleft()

    @property
    def started(self) -> float:
        """When the meter was created."""
        return self._start

    def rate(self, now: float) -> int:
        self._expire(now)
        span = min(self.window, max(now - self._start, self.slot))
        return int(sum(b[1] for b in self._buckets) / span)

    def average(self, now: float) -> int:
        """Average over the whole life of the meter."""
        span = max(now - self._start, 1e-6)
        return int(self.total / span)
