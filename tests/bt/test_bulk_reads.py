"""The peer reader's rules (docs/performance.md §9): whole-buffer reads (``bulk_read_size``):
wait for a whole buffer only while the peer owes two, and not for a while after such a wait
ran out of patience; the buffer's growth for a fast peer (``next_buffer_size``)."""

from __future__ import annotations

import pytest

from trioaria.bt.peer_task import (
    BULK_BACKOFF,
    GROW_AFTER,
    MAX_RECV_BUFFER,
    RECV_BUFFER,
    bulk_read_size,
    next_buffer_size,
)

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


@pytest.mark.parametrize(
    ("size", "full", "n", "expected"),
    [
        (RECV_BUFFER, 0, RECV_BUFFER, (RECV_BUFFER, 1)),  # filled once: count it
        (RECV_BUFFER, GROW_AFTER - 1, RECV_BUFFER, (2 * RECV_BUFFER, 0)),  # doubles
        (RECV_BUFFER, GROW_AFTER - 1, RECV_BUFFER - 1, (RECV_BUFFER, 0)),  # not full: again
        (MAX_RECV_BUFFER, GROW_AFTER - 1, MAX_RECV_BUFFER, (MAX_RECV_BUFFER, GROW_AFTER)),
    ],
)
def test_next_buffer_size(size: int, full: int, n: int, expected: tuple[int, int]) -> None:
    assert next_buffer_size(size, full, n) == expected


def test_a_fast_peer_grows_the_buffer_to_the_cap() -> None:
    """Every read fills the buffer: 256 KiB -> 512 KiB -> 1 MiB, each after GROW_AFTER reads."""
    size, full, sizes = RECV_BUFFER, 0, []
    for _ in range(4 * GROW_AFTER):
        size, full = next_buffer_size(size, full, size)
        sizes.append(size)
    assert sizes[GROW_AFTER - 1] == 2 * RECV_BUFFER
    assert sizes[2 * GROW_AFTER - 1] == MAX_RECV_BUFFER == 4 * RECV_BUFFER
    assert sizes[-1] == MAX_RECV_BUFFER
