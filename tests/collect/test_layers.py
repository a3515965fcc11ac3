"""collect/'s layers (collect/README.md): imports run downward only, the domain stays pure, and nothing is cyclic.

Every import counts, also one inside a function: a lazy import is still a dependency. Also
the suite's own rule: a test module imports helpers (tests/support/), never another test
module or a conftest.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLLECT = ROOT / "collect"
# Lowest first. A module imports from its own layer or a lower one; the command verbs are the top-level modules.
LAYERS = ("store", "domain", "services", "api", "app", "commands")
# Pure logic that lives beside the service it serves; it imports only what the domain may import.
PURE_IN_SERVICES = (
    "collect.services.arena.pairing",
    "collect.services.arena.ratings",
    "collect.services.export.majority",
    "collect.services.export.records",
)
NOT_IN_PURE = ("fastapi", "starlette", "gradio", "torch", "transformers", "trl", "sqlalchemy", "uvicorn")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every module `path` imports, anywhere in the file; `from pkg import name` counts as pkg.name when that is
    a module of `known`."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's package, `level` - 1 packages up
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return found


def collect_graph() -> dict[str, set[str]]:
    """{collect module: the collect modules it imports}, for every module under collect/."""
    paths = {module_name(path): path for path in COLLECT.rglob("*.py") if "migrations" not in path.parts}
    known = set(paths)
    return {name: {m for m in imports_of(path, known) if m in known} for name, path in paths.items()}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "commands"


def is_pure(module: str) -> bool:
    return layer_of(module) == "domain" or module in PURE_IN_SERVICES


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as [a, b, ..., a], or None when it is acyclic (depth-first search)."""
    state, stack = {}, []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


GRAPH = collect_graph()


def test_the_layers_are_where_the_readme_says():
    layers = {layer_of(module) for module in GRAPH}
    assert layers == set(LAYERS), layers
    assert all(module in GRAPH for module in PURE_IN_SERVICES)


def test_no_module_imports_from_a_higher_layer():
    upward = [
        f"{source} ({layer_of(source)}) imports {target} ({layer_of(target)})"
        for source, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(source))
    ]
    assert upward == [], "\n".join(upward)


def test_the_store_imports_only_the_store_and_pure_logic_imports_only_pure_logic():
    wrong = [
        f"{source} imports {target}"
        for source, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if (layer_of(source) == "store" and layer_of(target) != "store") or (is_pure(source) and not is_pure(target))
    ]
    assert wrong == [], "\n".join(wrong)


def test_pure_logic_imports_no_web_framework_database_or_model_library():
    paths = {module_name(path): path for path in COLLECT.rglob("*.py")}
    heavy = [
        f"{module} imports {name}"
        for module, path in sorted(paths.items())
        if is_pure(module)
        for name in sorted(imports_of(path, set()))
        if name.split(".")[0] in NOT_IN_PURE
    ]
    assert heavy == [], "\n".join(heavy)


def test_importing_pure_logic_and_the_store_loads_none_of_them():
    pure = sorted(module for module in GRAPH if is_pure(module))
    probe = (
        f"import importlib, sys\nfor name in {pure!r}:\n    importlib.import_module(name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(NOT_IN_PURE)!r}))\n"
        "import collect.store, collect.services.scheduling, collect.api.server\n"
        "print([m for m in ('gradio', 'torch', 'trl', 'transformers') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.splitlines() == ["[]", "[]"], result.stdout


def test_collect_has_no_import_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_test_module_imports_another_test_module_or_a_conftest():
    paths = {module_name(path): path for path in (ROOT / "tests").rglob("*.py")}
    known = set(paths)
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for module, path in sorted(paths.items())
        if path.name.startswith("test_")
        for name in sorted(imports_of(path, known))
        if name.rpartition(".")[2].startswith("test_") or name.rpartition(".")[2] == "conftest"
    ]
    assert wrong == [], "\n".join(wrong) + "\nmove what they share to tests/support/ or a fixture"
