"""The shipped ``trioaria/trioaria.1`` is the page the option table generates, and ships.

``--help`` ends with "Refer to man page for more information.": the page must exist, say what
``--help`` says, render without roff warnings, and be in what setuptools packages.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from trioaria.cli.manpage import render_manpage
from trioaria.cli.option_table import OPTIONS

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "trioaria" / "trioaria.1"
SETUP = [sys.executable, "-c", "import setuptools; setuptools.setup()"]
REGENERATE = "python -m trioaria.cli.manpage > trioaria/trioaria.1"


def test_shipped_page_is_the_generated_one() -> None:
    assert SHIPPED.is_file(), f"missing; run: {REGENERATE}"
    assert SHIPPED.read_text(encoding="utf-8") == render_manpage(), f"stale; run: {REGENERATE}"


def _rendered() -> str:
    groff = shutil.which("groff")
    assert groff, "groff is needed to render the page (apt-get install groff-base)"
    out = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww", "-rLL=200n", str(SHIPPED)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
    )
    assert out.stderr == "", out.stderr  # -ww: every roff warning shows up here
    return re.sub(r".\x08", "", out.stdout)  # drop overstrike bold/underline


def test_page_renders_every_visible_option_with_its_status() -> None:
    text = _rendered()
    for name, spec in OPTIONS.items():
        flag = f"--{name}"
        if spec.hidden:
            continue
        assert re.search(rf"^\s+(-\w, )?{re.escape(flag)}\b", text, re.M), flag
    block = text[text.index("--interface=INTERFACE") :].split("\n\n", 1)[0]
    assert "(not implemented) Refused" in block
    proxy = text[text.index("--all-proxy=PROXY") :].split("\n\n", 1)[0]
    assert "not implemented" not in proxy
    split = text[text.index("-s, --split=N") :].split("\n\n", 1)[0]
    assert "not implemented" not in split and "Default: 5" in split
    assert "EXIT STATUS" in text and re.search(r"^\s+28\s+An option was unknown", text, re.M)


def test_page_is_package_data(tmp_path: Path) -> None:
    """setuptools' build_py (what a wheel is made of) copies the page into the package."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "trioaria", src / "trioaria", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [*SETUP, "-q", "build_py", "--build-lib", str(tmp_path / "lib")],
        cwd=src,
        check=True,
        capture_output=True,
        timeout=120,
    )
    built = tmp_path / "lib" / "trioaria" / "trioaria.1"
    assert built.is_file(), sorted(p.name for p in (tmp_path / "lib" / "trioaria").iterdir())
    assert built.read_bytes() == SHIPPED.read_bytes()
