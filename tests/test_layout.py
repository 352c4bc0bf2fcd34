"""The package's shape: no import cycle, every module small, the README's map matches the tree.

Imports are read from the source (``ast``), not by importing: every ``import`` of a ``tlreg`` module
counts, wherever it is written — at the top, inside a function (a deferred import is still a
dependency), or under ``if TYPE_CHECKING:`` (a cycle in the types is a cycle in the design).
``from pkg import Name`` depends on the module that defines ``Name`` when ``pkg`` names it in its
lazy ``_EXPORTS`` table, as ``tlreg.registry.lazy`` resolves it at run time.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"registry": "tlreg.registry", "advisor": "tlreg.advisor", "cli": "tlreg.cli"}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _lazy_exports(module: str) -> dict[str, str]:
    """A package's ``_EXPORTS`` table ({name: relative module}), made absolute."""
    path = MODULES[module]
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_EXPORTS" for t in node.targets):
            table = ast.literal_eval(node.value)
            return {name: _absolute(module, True, rel) for name, rel in table.items()}
    return {}


def _absolute(module: str, is_package: bool, relative: str) -> str:
    level = len(relative) - len(relative.lstrip("."))
    base = module if is_package else module.rpartition(".")[0]
    for _ in range(level - 1):
        base = base.rpartition(".")[0]
    rest = relative[level:]
    return f"{base}.{rest}" if rest else base


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    is_package = MODULES[module].name == "__init__.py"
    target = (
        _absolute(module, is_package, "." * node.level + (node.module or "")) if node.level else node.module
    )
    out = []
    for alias in node.names:
        if f"{target}.{alias.name}" in MODULES:  # `from pkg import submodule`
            out.append(f"{target}.{alias.name}")
        elif target in MODULES and alias.name in _lazy_exports(target):
            out.append(_lazy_exports(target)[alias.name])
        else:
            out.append(target)
    return out


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges |= {t for t in _targets(module, node) if t in MODULES and t != module}
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(_path_through(sorted(group), graph))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _path_through(group: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest way from the group's first module back to itself (breadth first, inside the group)."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    return group


def test_the_graph_sees_deferred_and_type_only_imports() -> None:
    """The walker itself: it must find the imports a cycle can hide behind."""
    graph = import_graph()
    assert "tlreg.advisor.recommend" in graph["tlreg.advisor"]  # a TYPE_CHECKING import of a lazy export
    assert "tlreg.registry.store" in graph["tlreg.cli.state"]  # `from tlreg.registry import Registry`
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_imports_go_cli_advisor_registry() -> None:
    graph = import_graph()
    upward = [
        f"{m} -> {t}"
        for m, targets in graph.items()
        for t in targets
        if (m.startswith("tlreg.registry") and not t.startswith("tlreg.registry"))
        or (m.startswith("tlreg.advisor") and t.startswith("tlreg.cli"))
    ]
    assert not upward


@pytest.mark.parametrize("module", sorted(MODULES), ids=lambda m: m.removeprefix("tlreg."))
def test_every_module_is_under_400_lines(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines < MAX_LINES, f"{MODULES[module].relative_to(ROOT)} has {lines} lines: split it by job"


def test_the_readme_map_matches_the_tree() -> None:
    """Every path the README's "Development" section names exists, and every module is named there,
    by its own path or by a folder that holds it (``advisor/estimators/``)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Development", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`((?:registry|advisor|cli)/[\w/]*?(?:\.py|/))`", section))
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert not missing, f"the README names paths that do not exist: {missing}"
    folders = tuple(n for n in named if n.endswith("/"))
    modules = {p.relative_to(ROOT).as_posix() for p in MODULES.values() if p.name != "__init__.py"}
    unnamed = sorted(m for m in modules if m not in named and not m.startswith(folders))
    assert not unnamed, f"modules the README's map does not name: {unnamed}"


def test_ci_runs_the_readme_test_command_word_for_word() -> None:
    """CI's test command and the README's second set-up command are one string: .ci/run holds nothing
    else (an earlier .ci/run added a check of its own that the README did not show)."""
    section = (ROOT / "README.md").read_text().split("\n## Set up and run", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)
    assert len(blocks) == 2, "Set up and run holds the two commands, each in its own bash block"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line.strip() and not line.startswith("#")]
    assert commands == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', blocks[1]]
