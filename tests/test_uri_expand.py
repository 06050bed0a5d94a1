"""``trioaria.cli.uri_expand``: aria2's parameterized URIs (cases from aria2's ParamedStringTest)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioaria.base.errors import ExitCode, TrioariaError
from trioaria.cli.uri_expand import expand_uri, expand_uris, to_base26


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (
            "alpha:{01,02,03}:bravo:{001,002}",
            [
                "alpha:01:bravo:001", "alpha:01:bravo:002", "alpha:02:bravo:001",
                "alpha:02:bravo:002", "alpha:03:bravo:001", "alpha:03:bravo:002",
            ],
        ),
        ("alpha:[1-3]:bravo", ["alpha:1:bravo", "alpha:2:bravo", "alpha:3:bravo"]),
        ("alpha:[5-12:3]:bravo", ["alpha:5:bravo", "alpha:8:bravo", "alpha:11:bravo"]),
        ("alpha:[05-12:3]:bravo", ["alpha:05:bravo", "alpha:08:bravo", "alpha:11:bravo"]),
        ("alpha:[99-00]:bravo", ["alpha::bravo"]),
        ("alpha:[65535-65535:65535]:bravo", ["alpha:65535:bravo"]),
        ("alpha:[c-e]:bravo", ["alpha:c:bravo", "alpha:d:bravo", "alpha:e:bravo"]),
        ("alpha:[C-E]:bravo", ["alpha:C:bravo", "alpha:D:bravo", "alpha:E:bravo"]),
        ("alpha:[v-z:2]:bravo", ["alpha:v:bravo", "alpha:x:bravo", "alpha:z:bravo"]),
        ("alpha:[z-a]:bravo", ["alpha::bravo"]),
        ("alpha:[dsyo-dsyp]:bravo", ["alpha:dsyo:bravo", "alpha:dsyp:bravo"]),
        (
            "http://{jp,us}.mirror/image_cd[000-001].iso",
            [
                "http://jp.mirror/image_cd000.iso", "http://jp.mirror/image_cd001.iso",
                "http://us.mirror/image_cd000.iso", "http://us.mirror/image_cd001.iso",
            ],
        ),
        ("f[1-10:3].bin", ["f1.bin", "f4.bin", "f7.bin", "f10.bin"]),
        ("f[01-10:4]", ["f01", "f05", "f09"]),
        ("f[1-010]", [f"f{n}" for n in range(1, 11)]),  # different widths: no padding
        ("{ a , ,b }", ["a", "b"]),  # items stripped, empty ones dropped
        ("x{}y", []),
        ("", []),
        ("plain]text}", ["plain]text}"]),
    ],
)  # fmt: skip
def test_expand_golden(pattern: str, expected: list[str]) -> None:
    assert expand_uri(pattern) == expected


def test_base26_words() -> None:
    two = expand_uri("[aa-ba]")
    assert len(two) == 27 and two[0] == "aa" and two[25] == "az" and two[26] == "ba"
    one = expand_uri("[a-ba]")
    assert len(one) == 27 and one[0] == "a" and one[25] == "z" and one[26] == "ba"
    assert to_base26(0, "a", 0) == "a"
    assert to_base26(0, "A", 3) == "AAA"
    assert to_base26(27, "a", 0) == "bb"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("alpha:[1-]:bravo", "Invalid loop range."),
        ("alpha:[-1]:bravo", "Invalid loop range."),
        ("alpha:[1-3a]:bravo", "Invalid loop range."),
        ("alpha:[a-Z]:bravo", "Invalid loop range."),
        ("alpha:[1-2:]:bravo", "A step count must be a positive number."),
        ("alpha:[1-2:0]:bravo", "A step count must be a positive number."),
        ("alpha:[0-65536]:bravo", "Loop range overflow."),
        ("alpha:[0-1:65536]:bravo", "Loop step overflow."),
        ("alpha:[dsyo-dsyq]:bravo", "Loop range overflow."),
        ("alpha:[12]:bravo", "Loop range missing."),
        ("alpha:[1-2", "Missing ']' in the parameterized string."),
        ("alpha:{1,2", "Missing '}' in the parameterized string."),
    ],
)
def test_expand_errors(pattern: str, message: str) -> None:
    with pytest.raises(TrioariaError) as info:
        expand_uri(pattern)
    assert str(info.value) == message
    assert info.value.exit_code == ExitCode.UNKNOWN_ERROR


def test_expand_uris_concatenates() -> None:
    assert expand_uris(["a{1,2}", "b", "{}"]) == ["a1", "a2", "b"]


_literal = st.text(alphabet=st.characters(blacklist_characters="{}[]"), max_size=8)


@given(_literal)
def test_text_without_parameters_is_unchanged(text: str) -> None:
    assert expand_uri(text) == ([text] if text else [])


@given(
    st.lists(_literal, min_size=2, max_size=4),
    st.lists(st.integers(0, 300), min_size=1, max_size=3),
    st.integers(1, 50),
)
def test_product_of_choices_and_loops(pieces: list[str], bounds: list[int], step: int) -> None:
    """A choice and a loop multiply: the count is the product and every result parses back."""
    choices = [p.replace(",", "").strip() for p in pieces]
    choices = [c for c in choices if c]
    lo, hi = min(bounds), max(bounds)
    pattern = "pre{" + ",".join(choices) + "}mid[" + f"{lo}-{hi}:{step}" + "]post"
    out = expand_uri(pattern)
    numbers = list(range(lo, hi + 1, step))
    assert len(out) == len(choices) * len(numbers)
    assert out == [f"pre{c}mid{n}post" for c in choices for n in numbers]


@given(st.integers(0, 9999), st.integers(0, 9999))
def test_zero_padding_keeps_the_width(a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    out = expand_uri(f"[{lo:04d}-{hi:04d}]")
    assert out == [f"{n:04d}" for n in range(lo, hi + 1)]


@given(st.text(alphabet="ab1-:{},[]x", max_size=10))
def test_any_text_expands_or_raises_our_error(text: str) -> None:
    """Arbitrary patterns either expand to strings without parameters or raise our error."""
    try:
        out = expand_uri(text)
    except TrioariaError as exc:
        code = exc.exit_code
        assert code == ExitCode.UNKNOWN_ERROR
        return
    if "{" not in text and "[" not in text:
        assert out == ([text] if text else [])
