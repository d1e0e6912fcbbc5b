"""The import graph shows the flow (docs/architecture.md#imports).

Every import of a project module counts, at module level or inside a
function: a cycle hidden in function-level imports is still a cycle.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("runs", "streaming", "vizsite")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` refers to (a module, or the module defining a name)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    modules = _project_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - node.level + 1]
                        + ([base] if base else [])
                    )
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                found = _resolve(target, modules)
                if found and found != name and not name.startswith(found + "."):
                    graph[name].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_runs_never_imports_streaming():
    graph = import_graph()
    wrong = sorted(
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if a.split(".")[0] == "runs" and b.split(".")[0] == "streaming"
    )
    assert wrong == [], "runs must not depend on streaming (docs/architecture.md#imports)"


def test_the_two_streaming_directions_do_not_import_each_other():
    graph = import_graph()
    crossing = sorted(
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if {a.split(".")[:2][-1], b.split(".")[:2][-1]} == {"ingest", "live"}
        and a.startswith("streaming.")
        and b.startswith("streaming.")
    )
    assert crossing == []


def test_no_import_cycles_between_project_modules():
    assert _cycles(import_graph()) == []


def test_the_graph_sees_function_level_imports():
    # A check that cannot see what it is meant to forbid proves nothing.
    graph = import_graph()
    assert "runs.services.renditions" in graph["runs.apps"]  # imported inside ready()
    assert "runs.rendering.readback" in graph["vizsite.internal"]  # imported inside a function


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_webapp_origin_and_the_sandbox_task_reach_no_database_or_store_code():
    # They run where the network policy allows neither (docs/deploy.md#network-policy).
    graph = import_graph()
    forbidden = ("runs.models", "runs.storage", "runs.services", "runs.selectors", "runs.rendering")
    for module in ("runs.webapp", "runs.sandbox.task", "vizsite.webapp_asgi"):
        reached = _reachable(graph, module)
        assert module in graph and not [m for m in reached if m.startswith(forbidden)], (module, reached)
