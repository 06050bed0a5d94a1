"""The peer wire's block arithmetic (``Swarm.block_requests``, ``Swarm.block_geometry``) against
the storage's own (``PieceStorage.block_span``, ``block_of``), for any piece and file length."""

from __future__ import annotations

import tempfile

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from trioaria.bt.swarm import Swarm
from trioaria.storage.session import StorageSession

KiB = 1024


@settings(max_examples=60, deadline=None)
@given(
    piece_length=st.sampled_from([1000, 16 * KiB, 16 * KiB + 1, 40 * KiB, 256 * KiB]),
    total=st.integers(1, 1024 * KiB),
)
def test_requests_and_block_numbers_match_the_storage(piece_length: int, total: int) -> None:
    trio.run(_check, piece_length, total)


async def _check(piece_length: int, total: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        session = StorageSession(
            d, [("a.bin", total)], piece_length=piece_length, control_path=d + "/a.aria2"
        )
        swarm = Swarm(b"i" * 20, b"p" * 20, meta=None, session=session)
        st_ = session.storage
        blocks = list(range(st_.num_blocks))
        expected = []
        for block in blocks:
            start, end = st_.block_span(block)
            expected.append((start // piece_length, start % piece_length, end - start))
        assert swarm.block_requests(blocks) == expected
        bpp, bl = swarm.block_geometry()
        for block, (index, begin, _) in zip(blocks, expected, strict=True):
            assert index * bpp + begin // bl == block == swarm.block_index(index, begin)


def test_geometry_before_the_metadata() -> None:
    async def main() -> None:
        assert Swarm(b"i" * 20, b"p" * 20, meta=None).block_geometry() == (0, 1)

    trio.run(main)
