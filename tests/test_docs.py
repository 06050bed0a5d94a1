"""The ``docs/`` pages and the places that cite them (docs/README.md).

* Every ``docs/<name>.md`` cited in ``trioaria/``, ``tests/``, ``interop/``, ``bench/``,
  ``README.md``, ``pyproject.toml`` (and in ``docs/`` itself) exists.
* A citation that quotes words (``docs/decisions.md "SFTP"``) finds them in the page, and one that
  names a numbered section (``docs/performance.md §4``) finds a heading with that number.
* Links between the pages (``[design.md](design.md)``) resolve.
* Nothing there points outside the repository: no absolute path into the machine the project
  was started on, no sibling ``shared`` folder, no name of the internal guides the pages
  replaced.  The patterns are assembled from pieces so this file can be scanned too.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"

SCANNED_DIRS = ("trioaria", "tests", "interop", "bench", "docs")
SCANNED_FILES = ("README.md", "pyproject.toml")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".sh", ".txt", ".json", ".cfg", ".ini", ".rst", ".yml"}

CITATION = re.compile(r"docs/([\w-]+)\.md")
QUOTED = re.compile(r'docs/([\w-]+)\.md,?[ \t]+"([^"\n]+)"')
SECTION = re.compile(r"docs/([\w-]+)\.md\s*§\s*(\d+)")
LINK = re.compile(r"\]\(([\w-]+\.md)(?:#[\w-]*)?\)")

_OLD_GUIDES = ("DECISIONS", "STYLE", "PERF", "SPIKES", "PEERS", "ARIA2")
FORBIDDEN = re.compile(
    "|".join(
        (
            re.escape("/" + "work" + "/"),
            re.escape(".." + "/" + "shared"),
            r"\b(?:" + "|".join(_OLD_GUIDES) + r")\.md\b",
        )
    )
)


def _text_files() -> list[Path]:
    files = [REPO / name for name in SCANNED_FILES]
    for top in SCANNED_DIRS:
        for path in sorted((REPO / top).rglob("*")):
            rel = path.relative_to(REPO).parts
            if any(part == "__pycache__" or part.startswith(".") for part in rel):
                continue
            if path.is_file() and path.suffix in TEXT_SUFFIXES:
                files.append(path)
    return files


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def _scanned() -> list[tuple[str, str]]:
    out = []
    for path in _text_files():
        text = _read(path)
        if text is not None:
            out.append((str(path.relative_to(REPO)), text))
    return out


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _normalise(text: str) -> str:
    return " ".join(text.replace("`", "").split()).lower()


def test_docs_folder_has_an_index() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in sorted(DOCS.glob("*.md")):
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not list {page.name}"


def test_every_cited_page_exists() -> None:
    missing = [
        f"{name}:{_line(text, m.start())}: docs/{m.group(1)}.md"
        for name, text in _scanned()
        for m in CITATION.finditer(text)
        if not (DOCS / f"{m.group(1)}.md").is_file()
    ]
    assert not missing, "cited pages that do not exist:\n" + "\n".join(missing)


def test_quoted_words_and_numbered_sections_are_in_the_cited_page() -> None:
    problems = []
    for name, text in _scanned():
        for m in QUOTED.finditer(text):
            page = DOCS / f"{m.group(1)}.md"
            if page.is_file() and _normalise(m.group(2)) not in _normalise(page.read_text()):
                problems.append(
                    f'{name}:{_line(text, m.start())}: "{m.group(2)}" not in {page.name}'
                )
        for m in SECTION.finditer(text):
            page = DOCS / f"{m.group(1)}.md"
            heading = re.compile(rf"^#+\s*{m.group(2)}\.\s", re.MULTILINE)
            if page.is_file() and not heading.search(page.read_text()):
                problems.append(
                    f"{name}:{_line(text, m.start())}: {page.name} has no §{m.group(2)}"
                )
    assert not problems, "citations that do not match their page:\n" + "\n".join(problems)


def test_signals_are_the_last_row_of_the_departures_table() -> None:
    # tests/test_signals.py cites "docs/decisions.md's last table row".
    rows = [
        line for line in (DOCS / "decisions.md").read_text().splitlines() if line.startswith("|")
    ]
    assert rows, "docs/decisions.md has no table"
    assert "SIGINT" in rows[-1], rows[-1]


def test_links_between_pages_resolve() -> None:
    broken = [
        f"docs/{page.name}:{_line(text, m.start())}: {m.group(1)}"
        for page in sorted(DOCS.glob("*.md"))
        for text in [page.read_text(encoding="utf-8")]
        for m in LINK.finditer(text)
        if not (DOCS / m.group(1)).is_file()
    ]
    assert not broken, "broken links in docs/:\n" + "\n".join(broken)


def test_nothing_points_outside_the_repository() -> None:
    found = [
        f"{name}:{_line(text, m.start())}: {m.group(0)}"
        for name, text in _scanned()
        for m in FORBIDDEN.finditer(text)
    ]
    assert not found, "citations of paths or guides outside the repository:\n" + "\n".join(found)
