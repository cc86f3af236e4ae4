"""Progress bars honour TQDM_DISABLE, also in a kernel, so long cells under nbval do not flood iopub."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat

from fedcofit_lite.progress import bar, bars_disabled


def test_bars_follow_tqdm_disable(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert bars_disabled() and bar(range(3)).disable
    for off in ("", "0", "false"):
        monkeypatch.setenv("TQDM_DISABLE", off)
        assert not bars_disabled()
    monkeypatch.delenv("TQDM_DISABLE")
    assert not bar(range(3), file=open(os.devnull, "w")).disable


def test_a_cell_with_thousands_of_bar_updates_passes_nbval(tmp_path):
    """Widget bars ignore TQDM_DISABLE; ours do not, so this cell sends no widget messages and nbval sees its end."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from fedcofit_lite.progress import bar\nfor _ in bar(range(5000), mininterval=0):\n    pass\nprint('done')"
        ),
        nbformat.v4.new_code_cell("print('next cell')"),
    ]
    nbformat.write(nb, tmp_path / "flood.ipynb")
    env = {**os.environ, "TQDM_DISABLE": "1"}
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--nbval-lax",
        "--nbval-current-env",
        "flood.ipynb",
    ]
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
