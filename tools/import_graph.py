"""Count the package's import graph: modules, edges, levels, cycles and imports that point up a layer.

Every ``import``/``from ... import`` of a module of the package counts, at module level or inside a
function (a lazy import is still a dependency). Levels are the longest import chain after the
cycles are collapsed; an upward import is one into a higher layer of the import-linter contract in
``pyproject.toml`` (the one declaration of the layers).

    python tools/import_graph.py                 # the package beside this folder
    python tools/import_graph.py --edges         # and every edge
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "fedcofit_lite"


def layers(pyproject: Path = ROOT / "pyproject.toml") -> list[list[str]]:
    """The layer order of the import-linter contract in ``pyproject.toml``, lowest first (``a | b``: one layer)."""
    import tomllib

    contracts = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]["contracts"]
    (order,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    return [[m.strip().removeprefix(PACKAGE + ".") for m in layer.split("|")] for layer in reversed(order)]


LAYERS = layers()


def module_name(path: Path, pkg_dir: Path) -> str:
    rel = path.relative_to(pkg_dir).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """The package modules that ``path`` (module ``name``) imports."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()

    def resolve(dotted: str) -> None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        if dotted and dotted != name:
            found.add(dotted)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(PACKAGE + "."):
                    resolve(a.name[len(PACKAGE) + 1 :])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1] if node.level > 1 else here
                prefix = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
                prefix = node.module[len(PACKAGE) + 1 :]
            else:
                continue
            for a in node.names:
                full = f"{prefix}.{a.name}" if prefix else a.name
                if full in modules:
                    resolve(full)
                else:
                    resolve(prefix)
    return found


def layer_of(module: str) -> int:
    """Index of ``module``'s layer in :data:`LAYERS` (-1: outside every layer)."""
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return -1


def graph(pkg_dir: Path) -> dict[str, set[str]]:
    files = {module_name(p, pkg_dir): p for p in pkg_dir.rglob("*.py")}
    files.pop("__init__", None)
    modules = set(files)
    return {m: imports_of(p, m, modules) for m, p in sorted(files.items())}


def strongly_connected(g: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one module are the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in g:
        if v not in index:
            visit(v)
    return out


def levels(g: dict[str, set[str]], comps: list[list[str]]) -> int:
    """Length of the longest import chain, counting each cycle as one node."""
    comp_of = {m: i for i, c in enumerate(comps) for m in c}
    memo: dict[int, int] = {}

    def depth(c: int) -> int:
        if c not in memo:
            memo[c] = 0
            deps = {comp_of[w] for m in comps[c] for w in g[m]} - {c}
            memo[c] = 1 + max((depth(d) for d in deps), default=0)
        return memo[c]

    return max(depth(i) for i in range(len(comps)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--package", type=Path, default=ROOT / PACKAGE)
    p.add_argument("--edges", action="store_true", help="print every edge")
    args = p.parse_args(argv)
    g = graph(args.package)
    comps = strongly_connected(g)
    cycles = [c for c in comps if len(c) > 1]
    up = [(a, b) for a, deps in g.items() for b in sorted(deps) if layer_of(a) >= 0 and layer_of(b) > layer_of(a)]
    print(
        f"modules {len(g)}, edges {sum(map(len, g.values()))}, levels {levels(g, comps)}, cycles {len(cycles)}, upward imports {len(up)}"
    )
    for c in cycles:
        print("  cycle:", " <-> ".join(c))
    for a, b in up:
        print(f"  upward: {a} -> {b}")
    if args.edges:
        for a, deps in g.items():
            print(f"  {a} -> {', '.join(sorted(deps))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
