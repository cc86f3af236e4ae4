"""The notebooks are committed clean and follow the series' conventions.

Clean: no widget state, and no outputs or execution counts except in cells
marked ``# NBVAL_CHECK_OUTPUT``. Those keep their printed output and an
execution count: it is what ``pytest --nbval-lax`` compares against, and nbval
silently skips the comparison of a cell stored without them. Conventions: one import alias, the preset read through
``flt.ui.workshop``, a "What you will learn" cell with prerequisites and the measured time at the
top, exercises with hints and executed solutions, and a closing "What this showed" rendered from the
notebook's own numbers.
These checks read JSON only; executing the notebooks is nbval's job.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
CHECK = "# NBVAL_CHECK_OUTPUT"
TEXT_ONLY = {"stream"}  # checked cells print; rich outputs (figures, widgets) vary and are large


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _code(path: Path) -> str:
    return "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "code")


def _markdown(path: Path) -> str:
    return "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "markdown")


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/*.ipynb found"
    for path in NOTEBOOKS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), f"{path.name}: name notebooks NN_topic.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_a_unique_id(path):
    """nbformat 4.5 requires cell ids; a cell pasted in without one warns now and will fail to load later."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    if (nb["nbformat"], nb["nbformat_minor"]) < (4, 5):
        return
    ids = [c.get("id") for c in nb["cells"]]
    missing = [k for k, i in enumerate(ids) if not i]
    assert not missing, f"{path.name}: cells {missing} have no id (add one, e.g. 'cell-NN')"
    assert len(set(ids)) == len(ids), f"{path.name}: cell ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_or_widget_state(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: strip metadata.widgets (saved widget state)"
    for k, cell in enumerate(nb["cells"]):
        where = f"{path.name} cell {k}"
        assert "widgets" not in cell.get("metadata", {}), f"{where}: strip the cell's widget metadata"
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        if _source(cell).lstrip().startswith(CHECK):
            # nbval compares a cell only when it has a stored output AND an execution count
            assert outputs and cell.get("execution_count") is not None, (
                f"{where}: a {CHECK} cell must be stored with its expected output and an execution count, "
                "or nbval skips the check"
            )
            kinds = {o["output_type"] for o in outputs}
            assert kinds <= TEXT_ONLY, f"{where}: a {CHECK} cell should only print, got outputs {sorted(kinds)}"
        else:
            assert not outputs, f"{where}: clear its outputs (only {CHECK} cells keep theirs)"
            assert cell.get("execution_count") is None, f"{where}: execution_count must be null (clear it)"
        for o in outputs:
            assert "execution_count" not in o or o["execution_count"] is None, (
                f"{where}: clear the output's execution_count"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_follows_the_series_conventions(path):
    code, text = _code(path), _markdown(path)
    assert "import fedcofit_lite as flt" in code, f"{path.name}: import the package as `import fedcofit_lite as flt`"
    assert "flt.ui.workshop.notebook_config(" in code, (
        f"{path.name}: read the preset with flt.ui.workshop.notebook_config()"
    )
    assert "what you will learn" in text.lower(), f"{path.name}: state what the reader will learn at the top"
    assert "## exercises" in text.lower(), f"{path.name}: have an Exercises section"
    assert "<summary>hint</summary>" in text.lower(), f"{path.name}: give the exercises hints"
    assert re.search(r"^# Solution \d", code, re.M), f"{path.name}: give the exercises executed solutions"
    assert "**prerequisites**" in _source(_cells(path)[0]).lower(), f"{path.name}: state the prerequisites at the top"
    assert "flt.ui.lesson.notebook_time(" in code, f"{path.name}: state the measured time at the top"
    last_md = next(_source(c) for c in reversed(_cells(path)) if c["cell_type"] == "markdown")
    assert last_md.rstrip().endswith("## What this showed"), f"{path.name}: end with a 'What this showed' section"
    last = _source(_cells(path)[-1])
    assert "flt.ui.lesson.what_this_showed(" in last, (
        f"{path.name}: the last cell renders 'What this showed' from the notebook's numbers"
    )
    assert not re.search(r"^\s*(import|from)\s+fedcofit_lite\.", code, re.M), (
        f"{path.name}: use flt.<module>, not a submodule import"
    )
    assert ".show()" not in code, f"{path.name}: leave a figure as a cell's last expression instead of .show()"


def _notebook_conftest():
    """notebooks/conftest.py as a module (it is nbval's, not ours; imported here by path)."""
    import importlib.util

    path = NOTEBOOKS[0].parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("notebooks_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("preset", "given", "expected"),
    [
        ("ci", 2000, 2000),
        ("small", 2000, 2000),
        ("cpu", 2000, 4 * 3600),
        ("cpu", "600", "600"),
        ("gpu", 2000, 4 * 3600),
    ],
)
def test_real_model_presets_get_a_longer_cell_timeout(monkeypatch, preset, given, expected):
    """On `cpu` one cell trains a 30-min comparison: nbval's default 2000 s is raised, an explicit value kept."""
    from types import SimpleNamespace

    conftest = _notebook_conftest()
    monkeypatch.setenv("FEDCOFIT_PRESET", preset)
    config = SimpleNamespace(option=SimpleNamespace(nbval_cell_timeout=given, nbval_sanitize_with=None))
    conftest.pytest_configure(config)
    assert config.option.nbval_cell_timeout == expected
