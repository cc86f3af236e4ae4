"""What a new user installs: the Makefile, the conda file and the helper scripts agree, and nothing reinstalls per call."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _extras(text: str) -> set[str]:
    return {e for group in re.findall(r"-e \"?\.\[([a-z,]+)\]", text) for e in group.split(",")}


def test_conda_users_get_every_extra_that_make_setup_installs():
    setup = re.search(r"^\$\(STAMP\):.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.S | re.M).group(0)
    assert _extras(setup) <= _extras((ROOT / "environment.yml").read_text())  # flower too: notebook 10 needs it


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_installs_its_extras_once(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    stamps = [".installed", ".lab", ".browser"]
    for name in stamps:  # a set-up venv: every stamp newer than the Makefile and pyproject.toml
        (venv / name).touch()
    for target in ("lab", "lab-check"):
        plan = subprocess.run(
            ["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"], capture_output=True, text=True, check=True
        ).stdout
        assert "pip install" not in plan, f"make {target} reinstalls (needs the network) on every call:\n{plan}"
    (venv / ".lab").unlink()
    plan = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "lab", f"VENV={venv}"], capture_output=True, text=True, check=True
    ).stdout
    assert "[lab]" in plan  # the first call does install


def test_the_lab_check_takes_a_notebook_by_its_number():
    spec = importlib.util.spec_from_file_location("lab_widgets", ROOT / "benchmarks" / "lab_widgets.py")
    lab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lab)
    assert lab.resolve_notebooks(["05"]) == ["05_per_prompt_clustering.ipynb"]
    assert lab.resolve_notebooks(["5", "07_communication_costs"]) == [
        "05_per_prompt_clustering.ipynb",
        "07_communication_costs.ipynb",
    ]
    assert lab.resolve_notebooks(["all"])[0] == "01_quickstart.ipynb"
    with pytest.raises(ValueError, match="give its number"):
        lab.resolve_notebooks(["99"])


def test_the_readme_says_when_the_network_is_needed_and_shows_flower_on_real_answers():
    from fedcofit_lite.config import load_config

    readme = (ROOT / "README.md").read_text()
    assert "No network is needed" not in readme  # set-up downloads packages from the package index
    assert "package index" in readme
    commands = "\n".join(re.findall(r"```bash\n(.*?)```", readme, re.S))  # what a newcomer copies
    presets = re.findall(r"flower (?:simulate|deploy) --config ([\w-]+)", commands)
    assert presets, "the README shows the Flower commands"
    for name in presets:  # the random model of `ci` answers whitespace: zeros everywhere, nothing kept
        assert load_config(name).model.name != "tiny-random", f"flower --config {name} shows a random model's zeros"
