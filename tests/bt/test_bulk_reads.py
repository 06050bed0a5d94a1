"""The peer reader's rule for whole-buffer reads (``bulk_read_size``; docs/performance.md §9):
wait for a whole buffer only while the peer owes two, and not for a while after such a wait
ran out of patience."""

from __future__ import annotations

import pytest

from trioaria.bt.peer_task import BULK_BACKOFF, bulk_read_size

BUF = 1 << 20


@pytest.mark.parametrize(
    ("owed", "now", "bulk_after", "expected"),
    [
        (2 * BUF, 5.0, 0.0, BUF),  # owes two buffers: wait for one
        (4 * BUF, 5.0, 5.0, BUF),  # the back-off is over
        (2 * BUF - 1, 5.0, 0.0, 1),  # owes less: read as the bytes come
        (0, 5.0, 0.0, 1),  # owes nothing (choked, or no requests yet)
        (4 * BUF, 5.0, 5.0 + BULK_BACKOFF, 1),  # a wait ran out of patience lately
    ],
)
def test_bulk_read_size(owed: int, now: float, bulk_after: float, expected: int) -> None:
    assert bulk_read_size(owed, BUF, now, bulk_after) == expected
