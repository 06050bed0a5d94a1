"""Sans-IO layering (STYLE.md §2.1): pure cores import no trio, socket, os, time or asyncssh.

The list below is the one place that says which modules are pure; mypy's strict override list in
pyproject.toml names the same modules.  A module listed here that does not exist fails the test,
so the list cannot silently rot.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "trioaria"

PURE_MODULES = [
    "errors",
    "stats",
    "checksum",
    "options",
    "option_table",
    "help",
    "console",
    "policy",
    "storage/bitfield",
    "storage/pieces",
    "storage/picker",
    "storage/layout",
    "storage/control_file",
    "http/proto",
    "http/chunked",
    "ftp/proto",
    "netrc",
    "sftp/hostkey",
    "http/gzip",
    "uri_selector",
    "uri_expand",
    "input_file",
]

FORBIDDEN = {"trio", "socket", "os", "time", "asyncssh", "asyncio", "threading", "selectors", "ssl"}


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_io(module):
    path = ROOT / f"{module}.py"
    assert path.exists(), f"{path} is listed as pure but does not exist"
    bad = _imports(ast.parse(path.read_text(), str(path))) & FORBIDDEN
    assert not bad, f"pure module trioaria/{module}.py imports {sorted(bad)}"


def test_every_module_has_all_and_docstring():
    for path in ROOT.rglob("*.py"):
        if path.name in ("__main__.py",):
            continue
        tree = ast.parse(path.read_text(), str(path))
        assert ast.get_docstring(tree), f"{path} has no module docstring"
        if path.name != "__init__.py" or path.stat().st_size > 200:
            has_all = any(
                isinstance(n, (ast.Assign, ast.AnnAssign))
                and any(
                    isinstance(t, ast.Name) and t.id == "__all__"
                    for t in getattr(n, "targets", [getattr(n, "target", None)])
                )
                for n in tree.body
            )
            assert has_all, f"{path} has no __all__"
