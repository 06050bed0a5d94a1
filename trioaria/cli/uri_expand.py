"""``-P/--parameterized-uri``: expand ``{a,b}`` choices and ``[START-END:STEP]`` loops (pure).

Implements aria2's parameterized URIs (manual, ``--parameterized-uri``; ``src/paramed_string.h``):

* **Choice** ``{C1,C2,...}``: one expansion per item.  Items are stripped of surrounding
  blanks and empty ones dropped, so ``{}`` expands to nothing.
* **Loop** ``[START-END]`` or ``[START-END:STEP]``: START and END are both decimal numbers, or
  both lowercase words, or both uppercase words (``[a-z]``, ``[aa-zz]``).  Both ends are
  included.  When START and END have the same number of characters the width is kept
  (``[01-10]`` gives ``01 ... 10``); words count in aria2's base 26 where ``a`` is zero, so
  ``[a-ba]`` runs ``a ... z, ba``.  START > END expands to nothing at that spot (the brackets
  vanish), as in aria2.  Numbers and the step are at most 65535.

Several parameters multiply, left to right: ``http://{jp,us}.mirror/cd[000-001].iso`` gives
``jp…000, jp…001, us…000, us…001``.  Whether the expansions are mirrors of one file (the
default) or separate downloads (``-Z``) is decided by the caller, as in aria2's
``createRequestGroupForUri``.

A malformed pattern raises :class:`~trioaria.base.errors.TrioariaError` with aria2's message and
exit status 1 (aria2 throws ``DL_ABORT_EX`` there).  Unlike aria2, a step of 0 is an error
rather than an endless loop, and more than :data:`MAX_URIS` expansions are an error rather
than memory exhausted.
"""

from __future__ import annotations

from collections.abc import Iterable

from trioaria.base.errors import ExitCode, TrioariaError

__all__ = ["MAX_URIS", "MAX_VALUE", "expand_uri", "expand_uris", "to_base26"]

#: The largest START, END or STEP aria2 accepts (``UINT16_MAX``).
MAX_VALUE = 65535
#: The most URIs one run expands to (aria2 sets no limit and runs out of memory):
#: ``[0-65535][0-65535]`` stands for 4.3e9 of them.
MAX_URIS = 1_000_000


def _fail(message: str) -> TrioariaError:
    return TrioariaError(message, exit_code=ExitCode.UNKNOWN_ERROR)


def to_base26(n: int, zero: str, width: int) -> str:
    """aria2 ``toBase26``: ``n`` in letters from ``zero`` (``'a'``/``'A'``), padded to ``width``."""
    digits: list[str] = []
    if n == 0 and width == 0:
        width = 1
    while n:
        n, rem = divmod(n, 26)
        digits.append(chr(ord(zero) + rem))
    digits.extend(zero * (width - len(digits)))
    return "".join(reversed(digits))


def _from_base26(word: str, zero: str) -> int:
    value = 0
    for ch in word:
        value = value * 26 + ord(ch) - ord(zero)
        if value > MAX_VALUE:
            raise _fail("Loop range overflow.")
    return value


def _is_digits(text: str) -> bool:
    return bool(text) and all("0" <= c <= "9" for c in text)


def _is_lower(text: str) -> bool:
    return bool(text) and all("a" <= c <= "z" for c in text)


def _is_upper(text: str) -> bool:
    return bool(text) and all("A" <= c <= "Z" for c in text)


def _choices(body: str) -> list[str]:
    return [part.strip() for part in body.split(",") if part.strip()]


def _loop(body: str) -> list[str]:
    """The strings one ``[...]`` stands for (``body`` is what is between the brackets)."""
    bounds, colon, step_text = body.partition(":")
    step = 1
    if colon:
        if not _is_digits(step_text) or len(step_text) > 10:
            raise _fail("A step count must be a positive number.")
        step = int(step_text)
        if step > MAX_VALUE:
            raise _fail("Loop step overflow.")
        if step == 0:
            raise _fail("A step count must be a positive number.")
    start_text, minus, end_text = bounds.partition("-")
    if not minus:
        raise _fail("Loop range missing.")
    same_width = len(start_text) == len(end_text)
    if _is_digits(start_text) and _is_digits(end_text):
        if len(start_text) > 10 or len(end_text) > 10:
            raise _fail("Loop range overflow.")
        start, end = int(start_text), int(end_text)
        if start > MAX_VALUE or end > MAX_VALUE:
            raise _fail("Loop range overflow.")
        width = len(start_text) if same_width else 0
        return [str(n).zfill(width) for n in range(start, end + 1, step)]
    if (_is_lower(start_text) and _is_lower(end_text)) or (
        _is_upper(start_text) and _is_upper(end_text)
    ):
        zero = "a" if start_text[0].islower() else "A"
        start, end = _from_base26(start_text, zero), _from_base26(end_text, zero)
        width = len(start_text) if same_width else 0
        return [to_base26(n, zero, width) for n in range(start, end + 1, step)]
    raise _fail("Invalid loop range.")


def expand_uri(pattern: str) -> list[str]:
    """Every string ``pattern`` stands for, in aria2's order.

    Text outside ``{...}`` and ``[...]`` is copied; a ``}`` or ``]`` without an opener is plain
    text.  An empty result (for example ``"{}"``) is an empty list.

    Raises:
        TrioariaError: a missing ``}``/``]``, a bad range or step (exit status 1).
    """
    results = [""]
    i = 0
    n = len(pattern)
    while i < n:
        j = i
        while j < n and pattern[j] not in "{[":
            j += 1
        if j > i:
            literal = pattern[i:j]
            results = [r + literal for r in results]
        if j == n:
            break
        closer = "}" if pattern[j] == "{" else "]"
        k = pattern.find(closer, j + 1)
        if k < 0:
            raise _fail(f"Missing '{closer}' in the parameterized string.")
        body = pattern[j + 1 : k]
        parts = _choices(body) if closer == "}" else _loop(body)
        if closer == "}" or parts:
            # an empty loop ([9-1]) leaves the strings as they are; an empty choice empties them
            if len(results) * len(parts) > MAX_URIS:
                raise _fail(f"Too many URIs from the parameterized string (over {MAX_URIS}).")
            results = [r + p for r in results for p in parts]
        i = k + 1
    if results == [""]:
        return []
    return results


def expand_uris(patterns: Iterable[str]) -> list[str]:
    """:func:`expand_uri` over several patterns, concatenated (aria2 ``unfoldURI``)."""
    out: list[str] = []
    for pattern in patterns:
        out.extend(expand_uri(pattern))
        if len(out) > MAX_URIS:
            raise _fail(f"Too many URIs from the parameterized strings (over {MAX_URIS}).")
    return out
