"""Layering rules (docs/design.md, "Layers"), checked on the source tree itself.

* The sans-IO cores are the modules mypy checks strictly: pyproject.toml's strict override list is
  the one source of truth, read here with tomllib.  A pure core imports no trio, socket, os, time,
  ssl or asyncssh, and every trioaria module it imports (relative or absolute) is pure as well.
* No protocol driver imports the engine's ``group`` or ``transfer``: drivers talk to the storage
  session and the range-source protocol only.
* Imports form no cycle, function-local (lazy) ones included; only imports under
  ``TYPE_CHECKING`` do not count.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROOT = REPO / "trioaria"

FORBIDDEN = {"trio", "socket", "os", "time", "asyncssh", "asyncio", "threading", "selectors", "ssl"}
DRIVER_PACKAGES = ("trioaria.http", "trioaria.ftp", "trioaria.sftp", "trioaria.bt", "trioaria.dht")
ENGINE_PRIVATE = {"trioaria.engine.group", "trioaria.engine.transfer"}


def _pure_modules() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    for override in config["tool"]["mypy"]["overrides"]:
        if override.get("strict"):
            return list(override["module"])
    raise AssertionError("pyproject.toml has no strict mypy override")


PURE = _pure_modules()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _path_of(module: str) -> Path:
    base = REPO / module.replace(".", "/")
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, *, top_level_only: bool) -> set[str]:
    """Every module `module` imports, as absolute names (``from . import x`` resolved to ``pkg.x``)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                found.add(target)
                for alias in node.names:
                    if f"{target}.{alias.name}" in MODULES:
                        found.add(f"{target}.{alias.name}")
            if top_level_only:
                if isinstance(node, (ast.If, ast.Try, ast.With)):
                    for block in ("body", "orelse", "finalbody", "handlers"):
                        inner = getattr(node, block, [])
                        for item in inner:
                            visit(item.body if isinstance(item, ast.ExceptHandler) else [item])
            else:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        visit([child])

    visit(tree.body)
    return found


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_io(module):
    assert module in MODULES, f"{module} is listed as pure in pyproject.toml but does not exist"
    imported = _imports(module, top_level_only=False)
    bad = {name.split(".")[0] for name in imported} & FORBIDDEN
    assert not bad, f"pure module {module} imports {sorted(bad)}"
    impure = {
        name
        for name in imported
        if name.startswith("trioaria.")
        and name in MODULES
        and name not in PURE
        and MODULES[name].name != "__init__.py"
    }
    assert not impure, f"pure module {module} imports non-pure trioaria modules {sorted(impure)}"


def test_drivers_do_not_import_the_engine_internals():
    for module in MODULES:
        if module.startswith(DRIVER_PACKAGES):
            bad = _imports(module, top_level_only=False) & ENGINE_PRIVATE
            assert not bad, f"driver {module} imports {sorted(bad)}"


def test_no_import_cycles():
    graph = {
        module: {
            name
            for name in _imports(module, top_level_only=False)
            if name in MODULES and name != module
        }
        for module in MODULES
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            walk(module)


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
