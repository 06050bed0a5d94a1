"""trioaria.bt.fast: BEP 6 allowed fast set, with the BEP's own test vectors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.bt.fast import allowed_fast_set

AA = b"\xaa" * 20


def test_bep6_test_vectors():
    assert allowed_fast_set("80.4.4.200", AA, 1313, 7) == [1059, 431, 808, 1217, 287, 376, 1188]
    assert allowed_fast_set("80.4.4.200", AA, 1313, 9) == [
        1059, 431, 808, 1217, 287, 376, 1188, 353, 508,
    ]  # fmt: skip


def test_same_slash24_same_set_and_small_torrents():
    assert allowed_fast_set("80.4.4.1", AA, 1313) == allowed_fast_set("80.4.4.254", AA, 1313)
    assert allowed_fast_set("80.4.5.1", AA, 1313) != allowed_fast_set("80.4.4.1", AA, 1313)
    assert sorted(allowed_fast_set("10.0.0.1", AA, 3, 10)) == [0, 1, 2]
    assert allowed_fast_set("10.0.0.1", AA, 0, 10) == []
    v6 = allowed_fast_set("2001:db8:1::1", AA, 1000)
    assert v6 == allowed_fast_set("2001:db8:1:ffff::2", AA, 1000) and len(v6) == 10
    with pytest.raises(ValueError):
        allowed_fast_set("host", AA, 10)
    with pytest.raises(ValueError):
        allowed_fast_set("1.2.3.4", AA[:5], 10)


@given(
    st.ip_addresses(v=4),
    st.binary(min_size=20, max_size=20),
    st.integers(1, 5000),
    st.integers(0, 20),
)
def test_distinct_in_range_and_prefix_stable(ip, info_hash, num_pieces, k):
    chosen = allowed_fast_set(str(ip), info_hash, num_pieces, k)
    assert len(chosen) == min(k, num_pieces) == len(set(chosen))
    assert all(0 <= i < num_pieces for i in chosen)
    assert allowed_fast_set(str(ip), info_hash, num_pieces, k + 3)[: len(chosen)] == chosen
