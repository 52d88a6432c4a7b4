"""The module graph of the three Libs and ``sirt``, read from the source with ``ast`` (nothing is imported).

Every import counts, at module level or inside a function: the layers are Dosimetry < Dosiomics <
Response < ``sirt``, and no module imports one of a higher layer; no MRML adapter imports a CLI
module; and no chain of imports comes back to where it started.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS: dict[str, tuple[int, Path]] = {
    "SIRTDosimetryLib": (0, ROOT / "SIRTDosimetry" / "SIRTDosimetryLib"),
    "SIRTDosiomicsLib": (1, ROOT / "SIRTDosiomics" / "SIRTDosiomicsLib"),
    "SIRTResponseLib": (2, ROOT / "SIRTResponse" / "SIRTResponseLib"),
    "sirt": (3, ROOT / "sirt"),
}


def _modules() -> dict[str, Path]:
    modules = {}
    for package, (_, folder) in LAYERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The longest known module that ``name`` (a module or a name inside one) lies in."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    is_package = path.name == "__init__.py"
    here = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            prefix = ".".join([*base, *(node.module.split(".") if node.module else [])])
            targets = [f"{prefix}.{alias.name}" for alias in node.names] or [prefix]
        else:
            continue
        for target in targets:
            resolved = _resolve(target)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[0]][0]


def test_the_graph_sees_the_known_edges():
    """The walker finds real edges (a walker that found none would pass everything below)."""
    assert "SIRTDosimetryLib.dose.engine" in GRAPH["SIRTDosimetryLib.cli.dose_command"]
    assert "SIRTDosimetryLib.dose.parameters" in GRAPH["SIRTDosimetryLib.mrml.logic"]
    assert any(target.startswith("SIRTDosimetryLib.") for target in GRAPH["SIRTDosiomicsLib.dvc"])
    assert len(MODULES) > 80


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    upward = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets if _layer(t) > _layer(m))
    assert upward == []


def test_no_mrml_adapter_imports_a_command_line_module():
    bad = sorted(f"{m} -> {t}" for m, targets in GRAPH.items() if ".mrml" in m for t in targets if ".cli" in t or t.startswith("sirt"))
    assert bad == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_cycle_finder_finds_a_planted_circle():
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(planted) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", list(LAYERS))
def test_no_import_circle(package):
    circles = [c for c in _cycles(GRAPH) if c[0].split(".")[0] == package]
    assert circles == []
