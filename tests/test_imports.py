"""No import cycle in the gateway package: the graph of its module-level imports has none, and no import made in a
function would close one at the top of its module.

A module's imports are the ones run when it is imported: at its top level, in its `if`/`try`/`with` blocks and
class bodies, never in a function, nor under `if TYPE_CHECKING:`. Importing `a.b.c` runs `a.b.c` and the packages
on its way (`a`, `a.b`) not yet running; the packages holding the importer always are, so they are no edge of its.
`from a.b import c` imports the module `a.b.c` when there is one (and `a.b` on its way), else reads c from `a.b`,
which must then have run. So `gateway/x/__init__.py` importing a submodule that reads a name from `gateway.x` is a
cycle; a submodule importing a sibling (`from gateway.x import sibling` or by its full name) is not.
"""

from __future__ import annotations

import ast
import graphlib
import itertools
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import gateway

ROOT = Path(gateway.__file__).parent


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    where: str  # path:line of the import statement


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package at root, by dotted name (a package by its own name, for its __init__.py)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(graph_of: dict[str, Path], name: str, in_functions: bool = False) -> list[Edge]:
    """The package's own modules that importing name runs at once (graph_of: modules()); in_functions: those its
    functions import when they run instead."""
    path = graph_of[name]
    top = path.parents[name.count(".") + (path.name == "__init__.py")]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    edges = []
    for node in _in_functions(tree) if in_functions else _module_level(tree.body):
        where = f"{path.relative_to(top)}:{node.lineno}"
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in graph_of else base for alias in node.names]
        for target in targets:
            for imported in _run_by(target, name):
                if imported in graph_of:
                    edges.append(Edge(name, imported, where))
    return edges


def _module_level(body: list[ast.stmt]):
    """The import statements run when a module is imported."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        elif isinstance(node, ast.If) and _type_checking(node.test):
            yield from _module_level(node.orelse)
        else:  # a block run at import time: if, try, with, for, class body...
            for field in ("body", "orelse", "finalbody"):
                yield from _module_level(getattr(node, field, []))
            for clause in [*getattr(node, "handlers", []), *getattr(node, "cases", [])]:
                yield from _module_level(clause.body)


def _in_functions(tree: ast.Module):
    """The import statements in functions (nested ones included), each once."""
    found: dict[int, ast.Import | ast.ImportFrom] = {}
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.update((id(node), node) for node in ast.walk(function)
                         if isinstance(node, (ast.Import, ast.ImportFrom)))
    return sorted(found.values(), key=lambda node: node.lineno)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _run_by(target: str, importer: str) -> list[str]:
    """target, and the packages on its way that do not hold importer (those are running already)."""
    parts = target.split(".")
    way = [".".join(parts[:i]) for i in range(1, len(parts))]
    running = {name for name in way if importer == name or importer.startswith(f"{name}.")}
    return [name for name in way if name not in running] + ([target] if target != importer else [])


def graph(root: Path) -> dict[str, dict[str, Edge]]:
    """importer -> {imported: the first import statement making that edge}."""
    found = modules(root)
    result: dict[str, dict[str, Edge]] = {name: {} for name in found}
    for name in found:
        for edge in imports(found, name):
            result[name].setdefault(edge.imported, edge)
    return result


def cycle(edges: dict[str, dict[str, Edge]]) -> list[Edge]:
    """One cycle of the graph, as the import statements making it; [] if there is none."""
    try:
        graphlib.TopologicalSorter({name: set(out) for name, out in edges.items()}).prepare()
    except graphlib.CycleError as error:
        # each module listed is imported by the one after it: read backwards, each imports the next
        names = error.args[1][::-1]
        return [edges[a][b] for a, b in itertools.pairwise(names)]
    return []


def way(edges: dict[str, dict[str, Edge]], start: str, goal: str) -> list[Edge]:
    """The shortest chain of imports from start to goal; [] if there is none."""
    came: dict[str, Edge | None] = {start: None}
    todo = deque([start])
    while todo and goal not in came:
        for imported, made_by in edges[todo.popleft()].items():
            if imported not in came:
                came[imported] = made_by
                todo.append(imported)
    chain: list[Edge] = []
    while goal in came and (edge := came[goal]) is not None:
        chain.insert(0, edge)
        goal = edge.importer
    return chain


def hidden_cycles(root: Path) -> list[list[Edge]]:
    """Each import made in a function that, made at the top of its module, would close a cycle: with the chain
    of module-level imports leading back."""
    edges, found = graph(root), modules(root)
    return [[edge, *back] for name in found for edge in imports(found, name, in_functions=True)
            if (back := way(edges, edge.imported, edge.importer))]


def told(found: list[Edge]) -> str:
    return "\n".join(f"  {edge.importer} -> {edge.imported}  ({edge.where})" for edge in found)


def test_the_gateway_has_no_import_cycle():
    edges = graph(ROOT)
    assert len(edges) > 100 and edges["gateway.engine.runner"], "the walk found the package's modules and their imports"
    found = cycle(edges)
    assert not found, f"import cycle:\n{told(found)}"


def test_no_import_in_a_function_hides_a_cycle():
    """An import is put in a function for a command's start-up time (`gateway flows list` never loads paramiko or
    the ORM: tests/test_cli_startup.py), never to dodge a cycle: made at the top of its module, none would close
    one."""
    found = hidden_cycles(ROOT)
    assert not found, "\n".join(f"an import in a function hides a cycle:\n{told(chain)}" for chain in found)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_a_cycle_through_a_package_init_is_found(tmp_path):
    """The cycle issue 17 found: a client importing a server's helper runs the server package's __init__, which
    imports the server, which imports the module holding the client."""
    root = write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/app.py": "from pkg.remote import Pool\n",
        "pkg/remote/__init__.py": "from pkg.remote.client import Pool\n",
        "pkg/remote/client.py": "from pkg.server.helpers import policy\n",
        "pkg/server/__init__.py": "from pkg.server.main import Server\n",
        "pkg/server/helpers.py": "policy = 1\n",
        "pkg/server/main.py": "import pkg.app\n",
    })
    found = cycle(graph(root))
    assert {(edge.importer, edge.imported) for edge in found} == {
        ("pkg.app", "pkg.remote"), ("pkg.remote", "pkg.remote.client"), ("pkg.remote.client", "pkg.server"),
        ("pkg.server", "pkg.server.main"), ("pkg.server.main", "pkg.app")}
    assert "  pkg.server.main -> pkg.app  (pkg/server/main.py:1)\n" in f"{told(found)}\n"


def test_a_submodule_importing_its_own_package_by_name_makes_a_cycle(tmp_path):
    """a reads B from pkg.x's __init__, which is still running a's import: B is not there yet."""
    root = write(tmp_path, {"pkg/__init__.py": "", "pkg/x/__init__.py": "from .a import A\nB = 1\n",
                            "pkg/x/a.py": "from pkg.x import B\nA = 1\n"})
    assert {(edge.importer, edge.imported) for edge in cycle(graph(root))} == {("pkg.x", "pkg.x.a"),
                                                                               ("pkg.x.a", "pkg.x")}


def test_imports_not_run_at_import_time_make_no_edge(tmp_path):
    """In a function, under TYPE_CHECKING, or of a sibling from within the package (by its full name, or as a
    module from the package: Python imports it without waiting for the package's __init__)."""
    root = write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/x/__init__.py": "from pkg.x.a import A\n",
        "pkg/x/a.py": "from pkg.x.b import B\nfrom pkg.x import c\nA = 1\n",
        "pkg/x/c.py": "",
        "pkg/x/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.x import A\nelse:\n"
                      "    import json\ndef f():\n    from pkg.x import A\nB = 1\n",
    })
    edges = graph(root)
    assert cycle(edges) == []
    assert set(edges["pkg.x.a"]) == {"pkg.x.b", "pkg.x.c"} and set(edges["pkg.x.b"]) == set()


def test_an_import_in_a_function_closing_a_cycle_is_found(tmp_path):
    """app imports the client in a function, the client imports a module importing app: a cycle app dodges; the
    cli's import in a function makes none."""
    root = write(tmp_path, {"pkg/__init__.py": "", "pkg/app.py": "def remote():\n    from pkg.client import C\n",
                            "pkg/client.py": "from pkg.server import S\nC = 1\n", "pkg/server.py": "import pkg.app\n",
                            "pkg/cli.py": "def main():\n    import pkg.app\n"})
    assert [[(edge.importer, edge.imported, edge.where) for edge in chain] for chain in hidden_cycles(root)] == [[
        ("pkg.app", "pkg.client", "pkg/app.py:2"), ("pkg.client", "pkg.server", "pkg/client.py:1"),
        ("pkg.server", "pkg.app", "pkg/server.py:1")]]
