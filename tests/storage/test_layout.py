"""FileLayout.locate / file_range and safe_relative_path (trioaria/storage/layout.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.errors import StorageError
from trioaria.storage.layout import FileEntry, FileLayout, safe_relative_path

# --- FileLayout -------------------------------------------------------------------------


def test_offsets_and_ranges() -> None:
    layout = FileLayout([("a", 10), ("b", 0), ("c", 5), ("d", 7)])
    assert layout.total_length == 22
    assert [f.offset for f in layout.files] == [0, 10, 10, 15]
    assert layout.file_range(0) == (0, 10)
    assert layout.file_range(1) == (10, 10)
    assert layout.file_range(3) == (15, 22)
    assert len(layout) == 4


def test_locate_spans_across_boundaries_and_skips_empty_files() -> None:
    layout = FileLayout([("a", 10), ("empty", 0), ("c", 5), ("d", 7)])
    assert layout.locate(8, 10) == [(0, 8, 0, 2), (2, 0, 2, 5), (3, 0, 7, 3)]
    assert layout.locate(10, 5) == [(2, 0, 0, 5)]
    assert layout.locate(0, 22) == [(0, 0, 0, 10), (2, 0, 10, 5), (3, 0, 15, 7)]
    assert layout.locate(21, 1) == [(3, 6, 0, 1)]
    assert layout.locate(10, 0) == []
    assert layout.locate(22, 0) == []
    assert layout.files_in_range(9, 2) == [0, 2]


@pytest.mark.parametrize(("offset", "length"), [(-1, 1), (0, 23), (22, 1), (5, -1), (30, 0)])
def test_locate_out_of_range(offset: int, length: int) -> None:
    layout = FileLayout([("a", 10), ("b", 12)])
    with pytest.raises(ValueError, match="outside"):
        layout.locate(offset, length)


def test_file_entry_input_keeps_selection_and_recomputes_offsets() -> None:
    layout = FileLayout([FileEntry("x", 4, 99, False), FileEntry("y", 6, 0)])
    assert layout.files == (FileEntry("x", 4, 0, False), FileEntry("y", 6, 4, True))
    chosen = layout.with_selection([0])
    assert [f.selected for f in chosen.files] == [True, False]
    with pytest.raises(ValueError):
        layout.with_selection([2])


def test_bad_entries() -> None:
    with pytest.raises(ValueError):
        FileLayout([("a", -1)])
    with pytest.raises(ValueError):
        FileLayout([("", 1)])
    empty = FileLayout([])
    assert empty.total_length == 0
    assert empty.locate(0, 0) == []


@st.composite
def layouts_and_ranges(draw: st.DrawFn) -> tuple[list[int], int, int]:
    lengths = draw(st.lists(st.integers(0, 50), min_size=1, max_size=12))
    total = sum(lengths)
    offset = draw(st.integers(0, total))
    length = draw(st.integers(0, total - offset))
    return lengths, offset, length


@given(layouts_and_ranges())
def test_locate_covers_exactly_the_range(case: tuple[list[int], int, int]) -> None:
    lengths, offset, length = case
    layout = FileLayout([(f"f{i}", n) for i, n in enumerate(lengths)])
    spans = layout.locate(offset, length)
    # Reconstruct the global offsets and check contiguity, bounds and no zero-length spans.
    pos = offset
    buf_pos = 0
    for index, file_offset, buf_offset, n in spans:
        start, end = layout.file_range(index)
        assert n > 0
        assert lengths[index] > 0
        assert buf_offset == buf_pos
        assert start + file_offset == pos
        assert file_offset >= 0
        assert file_offset + n <= end - start
        pos += n
        buf_pos += n
    assert pos == offset + length
    # Each file appears at most once and in order.
    indices = [s[0] for s in spans]
    assert indices == sorted(set(indices))


@given(layouts_and_ranges())
def test_locate_matches_a_byte_map(case: tuple[list[int], int, int]) -> None:
    lengths, offset, length = case
    layout = FileLayout([(f"f{i}", n) for i, n in enumerate(lengths)])
    owner = [(i, k) for i, n in enumerate(lengths) for k in range(n)]  # global byte -> (file, off)
    got = [
        (index, file_offset + j)
        for index, file_offset, _b, n in layout.locate(offset, length)
        for j in range(n)
    ]
    assert got == owner[offset : offset + length]


# --- safe_relative_path -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("components", "expected"),
    [
        (["name"], "name"),
        (["dir", "sub", "file.bin"], "dir/sub/file.bin"),
        (["dir", "a/b"], "dir/a/b"),  # aria2 nests a '/' inside a component
        (["dir", "", "f"], "dir/f"),
        (["d", "nul\x00x"], "d/nul%00x"),
        (["d", "tab\tand\x7f"], "d/tab%09and%7F"),
        (["d", "back\\slash"], "d/back\\slash"),
        (["d", "..."], "d/..."),
        (["d", "..hidden"], "d/..hidden"),
    ],
)
def test_safe_relative_path_ok(components: list[str], expected: str) -> None:
    assert safe_relative_path(components) == expected


@pytest.mark.parametrize(
    "components",
    [
        ["..", "etc"],
        ["dir", "..", "x"],
        ["dir", "a/../../x"],
        ["/etc", "passwd"],
        ["/"],
        ["dir", "."],
        ["./x"],
        [],
        [""],
        ["", ""],
    ],
)
def test_safe_relative_path_rejects(components: list[str]) -> None:
    with pytest.raises(StorageError) as info:
        safe_relative_path(components)
    assert "\n" not in str(info.value)


@given(st.lists(st.text(max_size=8), max_size=5))
def test_safe_relative_path_never_escapes(components: list[str]) -> None:
    try:
        result = safe_relative_path(components)
    except StorageError:
        return
    assert result
    assert not result.startswith("/")
    parts = result.split("/")
    assert all(p not in ("", ".", "..") for p in parts)
    assert all(ord(c) >= 0x20 and c != "\x7f" for c in result)
