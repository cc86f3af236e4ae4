"""Execute notebooks and keep only the outputs of ``# NBVAL_CHECK_OUTPUT`` cells (``make notebooks-checked``).

nbval (``--nbval-lax``) compares a checked cell only when the notebook stores
its output and an execution count, so those cells keep their printed text;
every other cell is committed clean (no outputs, no count, no widget state).
Checked cells must print the same text on every preset (``ci``, ``small`` and ``cpu``):
check arithmetic, hand-made examples or the shipped reference runs (fixed files), never the
outputs of a model the notebook runs.

Usage: ``FEDCOFIT_PRESET=ci python notebooks/fill_checked_outputs.py notebooks/*.ipynb``
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CHECK = "# NBVAL_CHECK_OUTPUT"


def is_checked(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK)


def fill(path: Path, timeout: int = 900) -> None:
    """Run ``path`` (cwd = its folder) up to its last checked cell, then keep only the checked cells' text.

    Cells after the last checked one are not run: they cannot change a
    checked output, and nbclient mishandles ipywidgets ``Output`` traffic.
    """
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("FEDCOFIT_PRESET", "ci")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    last = max((i for i, c in enumerate(nb.cells) if is_checked(c)), default=-1)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        store_widget_state=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells[: last + 1]):
            if cell.cell_type == "code":
                client.execute_cell(cell, i)
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        count += 1
        if is_checked(cell):
            cell.outputs = [o for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"]
            cell.execution_count = count
        else:
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    print(f"{path}: {sum(is_checked(c) for c in nb.cells)} checked cell(s) stored")


if __name__ == "__main__":
    for arg in sys.argv[1:] or sorted(str(p) for p in Path(__file__).parent.glob("*.ipynb")):
        fill(Path(arg))
