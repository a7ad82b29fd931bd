"""The import graph: layers point one way and no two files import each other, even lazily.

Read with ``ast`` from every file of the project, so function-local imports and imports under
``if TYPE_CHECKING:`` count as edges too: a circle hidden in a function is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tasks", "archs", "studies", "analysis")
#: layer of a module (longest matching prefix wins); an import may only point to a layer <= its own
#: (archs may use the task generator's tree utilities; the task generator uses nothing above it)
LAYERS = {
    "mesalab.tasks": 0,
    "mesalab.archs": 1,
    "mesalab.studies.policy": 2,
    "mesalab.studies": 3,
    "mesalab.analysis": 4,
}


def module_files() -> dict[str, Path]:
    """Every project module by dotted name (``mesalab.tasks.base``; a package by its own name)."""
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(("mesalab", *parts))] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported name lives in (``a.b.func`` -> ``a.b``), else None."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that ``module`` imports anywhere in its file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # ``from pkg import sub`` imports the submodule when there is one
            names = [f"{base}.{a.name}" for a in node.names]
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    modules = module_files()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def layer_of(module: str) -> tuple[str, int]:
    """(layer prefix, rank) of a module."""
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return prefix, LAYERS[prefix]


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path of modules, or None (iterative depth-first search)."""
    color = dict.fromkeys(edges, 0)  # 0 unseen, 1 on the stack, 2 done
    for start in edges:
        if color[start]:
            continue
        stack = [(start, iter(sorted(edges[start])))]
        color[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                stack.pop()
            elif color.get(nxt, 2) == 1:
                path = [n for n, _ in stack]
                return path[path.index(nxt) :] + [nxt]
            elif color.get(nxt) == 0:
                color[nxt] = 1
                stack.append((nxt, iter(sorted(edges[nxt]))))
    return None


def test_the_graph_is_read() -> None:
    """The reader sees known edges, function-local ones included (else the test is vacuous)."""
    g = graph()
    assert "mesalab.tasks.base" in g["mesalab.tasks.rollout"]
    assert "mesalab.studies.load" in g["mesalab.analysis.probes"]  # imported inside a function
    assert len(g) > 60


def test_no_import_points_to_a_higher_layer() -> None:
    """tasks < archs < studies.policy < studies < analysis."""
    bad = []
    for src, targets in graph().items():
        for dst in targets:
            if layer_of(dst)[1] > layer_of(src)[1]:
                bad.append(f"{src} -> {dst}")
    assert not bad, "imports against the layers:\n" + "\n".join(sorted(bad))


def test_no_import_cycle() -> None:
    """No module reaches itself through imports."""
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    "edges, has_cycle",
    [({"a": {"b"}, "b": {"c"}, "c": set()}, False), ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True)],
)
def test_find_cycle_known_answers(edges: dict[str, set[str]], has_cycle: bool) -> None:
    """The cycle finder finds a planted cycle and none in a chain."""
    assert (find_cycle(edges) is not None) == has_cycle
