"""The reference run shipped with the notebooks (notebooks/reference/cpu): current, readable, picked up, never stale.

When a test here fails because the package or the cpu preset changed, rebuild the reference
with the command in its manifest (``python notebooks/reference/build.py --preset cpu``,
about 40 min on 2 cores) and commit it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import fedcofit_lite as flt
from fedcofit_lite.ui import workshop

REF = workshop.reference_for("cpu")
SHIPPED = ["cpu", "small", "small-mixed"]  # the workshop's presets; small-mixed: notebook 08 in CI


@pytest.mark.parametrize("preset", SHIPPED)
def test_the_reference_ships_and_stands_for_the_preset_as_configured_now(preset):
    ref = workshop.reference_for(preset)
    assert ref is not None, (
        f"notebooks/reference/{preset}/reference.json is missing: python notebooks/reference/build.py --preset {preset}"
    )
    problems = workshop.reference_problems(ref)
    assert not problems, f"the shipped reference is stale ({'; '.join(problems)}); rebuild it: {ref.commands[-1]}"
    cfg = flt.config.load_config(preset)
    assert (ref.seeds, ref.methods) == workshop.comparison_plan(cfg)  # what notebook 06 asks for
    assert ref.package_version == flt.__version__ and ref.format == workshop.REFERENCE_FORMAT


@pytest.mark.parametrize("preset", SHIPPED)
def test_the_reference_is_small_and_holds_no_weights(preset):
    files = [f for f in (workshop.REFERENCE_ROOT / preset).rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in files) < 12e6
    assert not [f for f in files if f.suffix in {".safetensors", ".bin", ".pt", ".npz", ".html"}]


def test_the_package_reads_every_part_of_it_and_the_answers_are_real():
    quick = REF.root / "quickstart"
    rows = flt.runlog.RunLog(quick).read_metrics()
    assert [r["stage"] for r in rows] == ["base", "local", "round_1", "round_2"]
    for r in flt.runlog.rounds_of(quick):
        ra = flt.analysis.replay.load_round(quick, r)
        assert len(ra.texts) == 4 * 48
        assert sum(bool(t.strip()) for t in ra.texts) / len(ra.texts) > 0.95  # a real model answers
        assert len(set(ra.texts)) > 40
    labels = flt.tasks.data.load_jsonl(quick / "pseudo_labels" / "round_1.jsonl")
    assert any(x["kept"] for x in labels) and not any(x["kept"] and not x["consensus"].strip() for x in labels)
    summary = flt.analysis.compare.summarize_seeds(REF.root / "seeds")
    table_rows, table = flt.analysis.compare.seed_table(summary, n_boot=200)
    assert {r["method"] for r in table_rows} >= set(REF.methods)
    centralized = next(r for r in table_rows if r["method"] == "centralized")
    local = next(r for r in table_rows if r["method"] == "local")
    assert centralized["em"].mean > local["em"].mean > 0.05  # real learning, not a random model's zeros
    assert "paired differences" in table


@pytest.fixture
def workshop_dir(tmp_path, monkeypatch):
    """An empty workshop (its runs/ in a scratch folder) where training would fail loudly."""
    monkeypatch.chdir(tmp_path)

    def no_training(*args, **kwargs):
        raise AssertionError("trained although the reference could stand in")

    monkeypatch.setattr(flt.federation.loop, "run_federation", no_training)
    monkeypatch.setattr(flt.experiments.compare, "run_seeds", no_training)
    return tmp_path


def test_notebooks_open_on_the_reference_when_the_student_has_no_run(workshop_dir):
    cfg = flt.config.load_config("cpu")
    run_dir = workshop.ensure_run(cfg)
    assert run_dir == workshop.WORKSHOP_DIR / "cpu-reference" / "quickstart"
    assert "reference run shipped for preset cpu" in workshop.describe_run(run_dir)
    seeds, methods = workshop.comparison_plan(cfg)
    cmp_dir = workshop.ensure_seed_comparison(cfg, seeds, methods)
    assert cmp_dir == workshop.WORKSHOP_DIR / "cpu-reference" / "seeds"
    assert not (REF.root / "quickstart" / "embeddings").exists()  # what a notebook writes lands in the copy


def test_an_override_or_reference_false_trains_instead(workshop_dir, monkeypatch):
    calls = []
    monkeypatch.setattr(
        flt.federation.loop, "run_federation", lambda cfg, run_dir, progress: calls.append(cfg.train.lr)
    )
    workshop.ensure_run(flt.config.load_config("cpu", ["train.lr=0.002"]))
    workshop.ensure_run(flt.config.load_config("cpu"), reference=False)
    assert calls == [0.002, 0.001]


def test_a_stale_reference_is_refused_with_the_reason(tmp_path):
    copy = tmp_path / "cpu"
    shutil.copytree(REF.root, copy)
    meta = json.loads((copy / workshop.REFERENCE_MANIFEST).read_text())
    meta["package_version"] = "0.0.1"
    (copy / workshop.REFERENCE_MANIFEST).write_text(json.dumps(meta))
    stale = workshop.Reference.read(copy)
    problems = workshop.reference_problems(stale, flt.config.load_config("cpu", ["consensus.min_agreement=0.5"]))
    assert any("0.0.1" in p for p in problems)
    assert any("quickstart" in p for p in problems) and any("seeds [0, 1, 2]" in p for p in problems)


def test_describe_run_names_a_run_made_here(tmp_path):
    assert workshop.describe_run(tmp_path / "x") == f"{Path(tmp_path / 'x')}: a run made on this machine."


def test_fewer_seeds_than_the_reference_read_the_reference_and_keep_your_other_seeds(workshop_dir, monkeypatch):
    cfg = flt.config.load_config("cpu")
    _, methods = workshop.comparison_plan(cfg)
    one = workshop.ensure_seed_comparison(cfg, [0], methods)  # the reference holds seed 0: no 12-minute retraining
    assert one == workshop.WORKSHOP_DIR / "cpu-reference" / "seeds"
    assert flt.analysis.compare.summarize_seeds(one, [0]).seeds == ["seed_0"]
    mine = workshop.run_dir_for(cfg, "seeds")  # now the student has all three seeds of their own
    for s in (0, 1, 2):
        shutil.copytree(REF.root / "seeds" / f"seed_{s}", mine / f"seed_{s}")
    monkeypatch.setattr(
        flt.experiments.compare, "run_seeds", lambda cfg, seeds, names, run_dir, progress: None
    )  # seed 0 is done: no training
    assert workshop.ensure_seed_comparison(cfg, [0], methods) == mine
    assert sorted(p.name for p in mine.glob("seed_*")) == ["seed_0", "seed_1", "seed_2"]  # nothing of theirs deleted


def test_the_fedavg_run_of_notebook_7_is_found_in_the_comparison_of_notebook_6(workshop_dir):
    cfg = flt.config.load_config("cpu")
    fedavg = workshop.comparison_run(cfg, "fedavg")
    assert fedavg is not None and flt.analysis.accounting.measured_vs_analytic(fedavg)[0]["method"] == "fedavg"
    assert workshop.comparison_run(cfg, "no-such-method") is None
    source = (Path(__file__).parents[1] / "notebooks" / "07_communication_costs.ipynb").read_text()
    assert 'comparison_run(cfg, \\"fedavg\\")' in source  # the notebook asks for it the same way
