"""The import graph of tunelab has no cycle, follows the layers of docs/architecture.md, and no
module imports the root package (``tunelab/__init__`` imports the subpackages).

The graph is read from the source with ``ast``: every ``import`` of a tunelab module, at module
level or inside a function (those run too, later), except under ``if TYPE_CHECKING:``. A name
taken from a package whose ``__init__`` exports it lazily (``_EXPORTS`` and ``_PLUMBING``, see
``_lazy.py``) is an edge to the private module that defines it, so a cycle through a lazy
package is found too.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# docs/architecture.md, "Imports", bottom up; a module may import its own layer or lower ones.
# The plug-in modules (tunelab.plugins._load.BUILTIN_MODULES) sit below the spec, which is
# assembled from them, whatever package holds them.
LAYERS = [
    {"tunelab.errors", "tunelab._lazy", "tunelab._version", "tunelab._disk"},
    {"tunelab.plugins"},
    {"PLUGIN MODULES", "tunelab.data", "tunelab.models", "tunelab.evaluate"},
    {"tunelab.spec"},
    {"tunelab.runs"},
    {"tunelab.train"},
    {"tunelab.sklearn"},
    {"tunelab.compress"},
    {"tunelab.tune"},
    {"tunelab.report"},
    {"tunelab.track"},
    {"tunelab.cli", "tunelab.__main__"},
]
# documented exceptions (docs/architecture.md): the listing of plug-ins shows each one's options
# from the spec tree; the splitter reads its spec node; the grid sampler's builder enumerates
# the search space (imported when a study builds its sampler), the noise pruner's builder
# builds its class (when a study builds its pruner); `Run.predict` calls the
# predictor of the train package (imported when it is called).
ALLOWED_UPWARD = {
    ("tunelab.plugins._describe", "tunelab.spec"),
    ("tunelab.data._splits", "tunelab.spec"),
    ("tunelab.tune._samplers", "tunelab.tune._space"),
    ("tunelab.tune._samplers", "tunelab.tune._noise"),
    ("tunelab.runs", "tunelab.train._predict"),
}


@functools.cache
def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in (SRC / "tunelab").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


def _lazy_exports(modules) -> dict[str, dict[str, str]]:
    lazy = {}
    for name, (path, package) in modules.items():
        if not package:
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target = getattr(node.targets[0], "id", "") if isinstance(node, ast.Assign) else ""
            if target in ("_EXPORTS", "_PLUMBING"):  # the public names and the plumbing
                lazy.setdefault(name, {}).update(ast.literal_eval(node.value))
    return lazy


def _imports(
    name: str, path: Path, package: bool, modules, lazy, *, in_functions: bool = True
) -> set[str]:
    """The tunelab modules ``name`` imports (the root package as ``tunelab``); with
    ``in_functions=False`` only those imported when the module itself is imported."""
    here = name if package else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if not in_functions and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.split(".")[0] == "tunelab")
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    kept = here.split(".")[: len(here.split(".")) - child.level + 1]
                    base = ".".join(kept + ([child.module] if child.module else []))
                if base.split(".")[0] != "tunelab":
                    continue
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    if full in modules:
                        found.add(full)
                    elif alias.name in lazy.get(base, {}):
                        found.add(f"{base}.{lazy[base][alias.name]}")
                    else:
                        found.add(base)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(name)
    return found


@functools.cache
def _graph() -> dict[str, set[str]]:
    modules = _modules()
    lazy = _lazy_exports(modules)
    return {name: _imports(name, p, pkg, modules, lazy) for name, (p, pkg) in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target in graph and target not in state:
                found = walk(target)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state:
            found = walk(start)
            if found:
                return found
    return None


def _plugin_modules() -> set[str]:
    tree = ast.parse((SRC / "tunelab" / "plugins" / "_load.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        targets = getattr(node, "targets", None) or [getattr(node, "target", None)]
        if any(getattr(t, "id", "") == "BUILTIN_MODULES" for t in targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError("tunelab.plugins._load defines no BUILTIN_MODULES")


def _layer(module: str, plugins: set[str]) -> int:
    key = "PLUGIN MODULES" if module in plugins else module
    for depth, layer in enumerate(LAYERS):
        if any(key == top or key.startswith(top + ".") for top in layer):
            return depth
    raise AssertionError(f"{module} is in no layer of docs/architecture.md: add it there")


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    assert "tunelab.tune._run" in graph and graph["tunelab.tune._nested"]  # the graph is read
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_imports_the_root_package():
    """Module-level imports (a function-level ``import tunelab`` in the CLI runs after start)."""
    modules = _modules()
    lazy = _lazy_exports(modules)
    offenders = [
        name
        for name, (path, package) in modules.items()
        if "tunelab" in _imports(name, path, package, modules, lazy, in_functions=False)
    ]
    assert offenders == [], f"these modules import the root package `tunelab`: {offenders}"


def test_imports_follow_the_documented_layers():
    plugins = _plugin_modules()
    upward = []
    for source, targets in _graph().items():
        if source == "tunelab":  # the root package gathers the public names of every layer
            continue
        for target in targets:
            if target == "tunelab" or any(
                source == a and (target == b or target.startswith(b + "."))
                for a, b in ALLOWED_UPWARD
            ):
                continue
            if _layer(target, plugins) > _layer(source, plugins):
                upward.append(f"{source} -> {target}")
    assert upward == [], "imports against the layers of docs/architecture.md: " + ", ".join(
        sorted(upward)
    )


def test_report_and_cli_use_only_the_public_names_of_tune():
    graph = _graph()
    reaching = [
        f"{source} -> {target}"
        for source, targets in graph.items()
        if source.startswith(("tunelab.report", "tunelab.cli"))
        for target in targets
        if target.startswith("tunelab.tune.") and _direct(source, target)
    ]
    assert reaching == [], f"private tune modules imported by name: {reaching}"


def _direct(source: str, target: str) -> bool:
    """Whether ``source`` names the private module ``target`` in its own text (an edge made by
    a lazy public name, ``from tunelab.tune import open_storage``, is fine)."""
    path, _ = _modules()[source]
    return target in path.read_text(encoding="utf-8")
