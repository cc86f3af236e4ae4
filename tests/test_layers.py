"""The package's shape is checked, not hoped for: the layer contracts, no import cycles, ruff."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed: `make setup` installs it with the dev extra.")
        return found
    return str(path)


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_import_contracts_of_pyproject_hold():
    """Layers import only downwards, protocol/tasks import no model library, analysis no widget or plot library."""
    done = _run(_tool("lint-imports"), "--no-cache")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_the_import_graph_has_no_cycle_and_no_upward_import():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import import_graph
    finally:
        sys.path.pop(0)
    g = import_graph.graph(ROOT / "fedcofit_lite")
    assert [c for c in import_graph.strongly_connected(g) if len(c) > 1] == []
    flat = [m for m in g if import_graph.layer_of(m) < 0]
    assert flat == [], f"modules outside the layer map of tools/import_graph.py: {flat}"
    up = [(a, b) for a, deps in g.items() for b in deps if import_graph.layer_of(b) > import_graph.layer_of(a)]
    assert up == []


def test_a_contract_breach_is_caught(tmp_path):
    """The checker is live: a protocol module that imports torch, and an analysis module that trains, break contracts."""
    pkg = tmp_path / "fedcofit_lite"
    shutil.copytree(ROOT / "fedcofit_lite", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "protocol" / "leak.py").write_text("import torch\n")
    (pkg / "analysis" / "trains.py").write_text("from ..federation.loop import run_federation\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    done = subprocess.run(
        [_tool("lint-imports"), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(tmp_path), "PATH": str(BIN)},
    )
    assert done.returncode != 0
    assert "fedcofit_lite.protocol.leak -> torch" in done.stdout
    assert "The analysis does not train" in done.stdout and "BROKEN" in done.stdout
    assert "fedcofit_lite.analysis.trains -> fedcofit_lite.federation.loop" in done.stdout


def test_ruff_check_and_format_pass_on_the_whole_repository():
    lint = _run(_tool("ruff"), "check", ".")
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = _run(_tool("ruff"), "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout[-3000:]


def _definitions():
    for path in sorted((ROOT / "fedcofit_lite").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                yield path.relative_to(ROOT), node, node.end_lineno - node.lineno + 1


def test_no_function_is_longer_than_80_lines():
    """A function a newcomer reads in one screen or two; longer ones split into named steps."""
    long = [
        f"{path}:{node.lineno} {node.name} ({n} lines)"
        for path, node, n in _definitions()
        if n > 80 and not isinstance(node, ast.ClassDef)
    ]
    assert long == []


def test_the_federation_loop_stays_under_250_lines():
    (n,) = [n for path, node, n in _definitions() if node.name == "Federation" and path.name == "loop.py"]
    assert n < 250, f"Federation is {n} lines: move a stage into its own module (checkpoint.py shows how)"
