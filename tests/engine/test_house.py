"""The house's rules, measured from the code: no import cycles, a small top level, rooms that ship, the
import paths plugin authors are promised."""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"toptune": ROOT / "engine", "toptune.plugins": ROOT / "plugins", "toptune.dashboard": ROOT / "dashboard"}
MAX_TOP_LEVEL = 15


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            found[".".join([package, *parts])] = path
    return found


def imports(name: str, path: Path, known: dict) -> set[str]:
    """Every toptune module ``name`` imports, at the top or inside functions; a submodule brings its packages."""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            target = ".".join([*base[:len(base) - node.level + 1], *([node.module] if node.module else [])]) \
                if node.level else node.module or ""
            out |= {f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    for module in list(out):  # importing a.b.c runs a/__init__ and a/b/__init__ first
        parts = module.split(".")
        out |= {".".join(parts[:i]) for i in range(2, len(parts))}
    return {m for m in out if m in known and m != name and not name.startswith(m + ".")}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_deferred_imports_included():
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert cycles(graph) == []


def test_the_engine_never_imports_the_dashboard():
    known = modules()
    engine = {n: p for n, p in known.items() if not n.startswith(("toptune.dashboard", "toptune.plugins"))}
    offenders = {n for n, p in engine.items() if any(m.startswith("toptune.dashboard") for m in imports(n, p, known))}
    assert offenders == set()


def test_the_engine_keeps_a_small_top_level():
    top = [p.stem for p in (ROOT / "engine").glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= MAX_TOP_LEVEL, sorted(top)


def test_every_package_folder_ships():
    """A folder with an __init__.py that pyproject does not list would be missing from a built wheel."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {name for name, path in modules().items() if path.name == "__init__.py"}
    assert folders <= listed, sorted(folders - listed)


def test_every_import_path_docs_promise_plugin_authors_works():
    text = (ROOT / "docs" / "plugins.md").read_text()
    promised = set(re.findall(r"from (toptune[\w.]*) import ([\w, ]+)", text))
    promised |= {(m.rpartition(".")[0], m.rpartition(".")[2]) for m in re.findall(r"`(toptune\.[\w.]+)`", text)
                 if m.count(".") > 1}
    assert ("toptune.params", "Param") in promised and ("toptune.plugin_check", "check_plugins") in promised
    for module, names in promised:
        loaded = importlib.import_module(module)
        for name in (n.strip() for n in names.split(",")):
            assert hasattr(loaded, name) or importlib.util.find_spec(f"{module}.{name}"), f"{module}.{name}"
