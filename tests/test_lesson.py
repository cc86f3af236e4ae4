"""The notebooks' helpers (flt.ui.lesson, flt.analysis.markdown) and the documentation's renderer (tools/docpages.py), on shipped runs."""

from __future__ import annotations

import numpy as np
import pytest

import fedcofit_lite as flt
from fedcofit_lite.analysis import markdown, stats
from fedcofit_lite.ui import lesson, workshop

SMALL = workshop.REFERENCE_ROOT / "small"


def _docpages():
    """tools/docpages.py, the documentation's own code (not part of the package)."""
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    try:
        return importlib.import_module("docpages")
    finally:
        sys.path.pop(0)


def test_a_difference_reads_as_its_interval_says():
    assert markdown.versus(stats.Interval(0.02, -0.01, 0.05), "local") == "not distinguishable from local"
    assert markdown.versus(stats.Interval(0.04, 0.01, 0.07), "local") == "above local"
    assert markdown.versus(stats.Interval(-0.04, -0.07, -0.01), "local") == "below local"


def test_wall_times_read_as_a_person_says_them():
    assert [markdown.format_minutes(s) for s in (48, 479, 6299)] == ["48 s", "8 min", "1 h 45 min"]


def test_a_markdown_table_has_one_row_per_record():
    table = markdown.md_table(["a", "b"], [[1, 2], [3, 4]])
    assert table.splitlines() == ["| a | b |", "|---|--:|", "| 1 | 2 |", "| 3 | 4 |"]


def test_the_seed_table_text_reads_back_into_the_numbers_it_printed():
    text = (workshop.REFERENCE_ROOT / "small" / "seeds" / "comparison_seeds.txt").read_text()
    summary = flt.analysis.compare.summarize_seeds(SMALL / "seeds")
    rows, _ = flt.analysis.compare.seed_table(summary)
    parsed = markdown.parse_seed_table(text)
    for r in rows:
        assert parsed["scores"][r["method"]].mean == pytest.approx(r["em"].mean, abs=5e-4)
    em = summary.scores["exact_match"][summary.final_stage()]
    d = stats.difference(em, "fedavg", "local")
    assert parsed["differences"][("fedavg", "local")].mean == pytest.approx(d.mean, abs=5e-4)


def test_a_manifest_says_where_its_numbers_came_from():
    p = _docpages().Provenance.from_manifest(SMALL / "reference.json", "seeds")
    assert p.command.startswith("python -m fedcofit_lite compare --config small")
    assert p.wall_s and p.date[:4].isdigit() and "CPU" in p.machine
    assert p.command in p.markdown() and p.commit in p.markdown()


def test_the_lesson_helpers_read_a_run_folder():
    run = SMALL / "quickstart"
    files = lesson.run_folder(run)
    assert "metrics.jsonl" in files.index and files.loc["metrics.jsonl", "holds"]
    table = lesson.stages(flt.runlog.RunLog(run).read_metrics())
    assert list(table.index[:2]) == ["base", "local"]
    decisions = lesson.decisions(run, 1)
    assert {"consensus", "agreement", "kept", "right", "answers"} <= set(decisions.columns)
    diff, reads = lesson.last_round_against_local(run)
    assert diff.lo <= diff.mean <= diff.hi and "the local stage" in reads
    shown = lesson.what_this_showed("one", "two")._repr_markdown_()
    assert shown.startswith("**What this showed**") and shown.count("\n- ") == 2


def test_a_notebook_states_its_measured_time():
    shown = lesson.notebook_time("01", "small").text
    measured = [t for t in lesson.timings() if t.get("notebook") == "01" and t.get("preset") == "small"]
    if measured:  # the time measure_times wrote for this notebook on this preset, not another's
        assert lesson.timing_words(measured[0]) in shown
    else:
        assert "not measured" in shown
    assert "not measured" in lesson.notebook_time("01", "no-such-preset").text


@pytest.mark.slow
def test_the_cluster_explorer_recomputes_when_a_control_moves():
    """Moving a control from code does what the mouse does (notebook 05's explorer, on the small reference)."""
    cfg = flt.config.load_config("small")
    ra = flt.analysis.replay.load_round(SMALL / "quickstart", 1)
    embedder = flt.engine.models.load_embedder(cfg.consensus.embedder, device="cpu")
    ra.embed(lambda texts: flt.engine.embed.embed_texts(embedder, texts, progress=False))
    explorer = flt.ui.explorer.cluster_explorer(
        ra, algorithm="agglomerative", min_agreement=cfg.consensus.min_agreement
    )
    draws, kept = explorer.n_draws, explorer.quality["kept"]
    explorer.controls["knob"].value = 0.3
    assert explorer.n_draws > draws
    explorer.controls["min_agreement"].value = 0.0
    assert explorer.quality["kept"] >= kept
    explorer.controls["algorithm"].value = "dbscan"
    assert "eps" in explorer.params() and np.isfinite(explorer.quality["n_prompts"])


def test_the_study_table_reads_the_shipped_cells_scores():
    """Each row's point is the mean over finished seeds of the cell's own summary (its last round, test exact match)."""
    import json

    table, caption = lesson.study_case("expert")
    root = workshop.REFERENCE_ROOT / "study" / "expert" / "clients_4"
    n = int(caption.split(" of ")[0])
    seeds = sorted(root.glob("seed_*"), key=lambda p: int(p.name.split("_")[1]))[:n]
    assert n >= 1 and f"{n} of the " in caption

    def last_score(cell):
        rows = json.loads((cell / "summary.json").read_text())["rows"]
        return [r for r in rows if r["stage"].startswith("round_")][-1]["exact_match"]

    for label, sub in (
        ("consensus (medoid)", "public_48/consensus"),
        ("consensus, rule closest", "public_48/consensus@closest"),
    ):
        expected = np.mean([last_score(s / sub) for s in seeds])
        assert float(table.loc[label, "exact match"].split()[0]) == pytest.approx(expected, abs=6e-4)
    assert table.loc["local", "minus local"] == "-" and table.loc["fedavg", "minus FedAvg-LoRA"] == "-"
    assert int(table.loc["fedavg", "bytes a run moved"].replace(",", "")) > 1000 * int(
        table.loc["consensus, rule closest", "bytes a run moved"].replace(",", "")
    )


def test_the_clients_table_pairs_each_count_with_the_fewest_over_the_seeds_both_ran():
    """Each step of the shipped clients part is, at its point, the mean over the seeds both counts finished of the
    difference of the cells' own summaries (last round, test exact match): the same seeds and items on both sides."""
    import json

    docpages = _docpages()
    res = docpages._loaded("clients")
    counts = [n for n in sorted(res.plan.clients) if res.seeds[n]]
    assert len(counts) >= 2, "the clients part ships at least two client counts with a finished seed"

    def last_score(n, seed, method):
        rows = json.loads((res.root / f"clients_{n}" / f"seed_{seed}" / method / "summary.json").read_text())["rows"]
        return [r for r in rows if r["stage"].startswith("round_")][-1]["exact_match"]

    steps = docpages._client_steps("clients", counts)
    assert ("local", None) in steps and ("consensus@closest", 48) in steps
    for i, n in enumerate(counts[1:]):
        both = [s for s in res.seeds[counts[0]] if s in res.seeds[n]]
        for (method, budget), folder in (
            (("local", None), "local"),
            (("consensus@closest", 48), "public_48/consensus@closest"),
        ):
            expected = np.mean([last_score(n, s, folder) - last_score(counts[0], s, folder) for s in both])
            d = steps[(method, budget)][i]
            assert d.mean == pytest.approx(expected, abs=6e-4) and d.lo <= d.mean <= d.hi
    assert "More clients on the Dirichlet split" in docpages.clients_findings()[0].text


def test_the_architecture_table_scores_each_models_clients_on_their_own_answers():
    """On the shipped mixed-architecture part, an architecture's local score is the share of its clients' own test
    answers that match, mean over the finished seeds; each rule's gain is its score minus that, on the same clients;
    the page's table and ``sweep --summarize`` show those rows."""
    import json

    from fedcofit_lite.analysis import sweepreport
    from fedcofit_lite.config import load_config
    from fedcofit_lite.tasks.evaluate import exact_match

    docpages = _docpages()
    res, sc, _ = docpages._study("mixed")
    rows = {(r.entry, r.budget, r.model): r for r in docpages._by_architecture("mixed")}
    models = {k[2] for k in rows}
    assert models == {"smollm2-135m", "gemma3-270m"}

    def share(model: str, cell: str) -> float:
        """The share of the model's clients' own test answers in ``cell`` that match, mean over the seeds."""
        shares = []
        for s in sc.seeds:
            group = res.root / f"clients_{sc.clients}" / f"seed_{s}"
            config = load_config(group / "config.yaml", recorded=True)
            mine = {f"client{i}" for i in range(sc.clients) if config.model_of_client(i) == model}
            answers = [json.loads(x) for x in (group / cell / "predictions" / f"round_{res.last_round}.jsonl").open()]
            hits = [exact_match(a["prediction"], a["reference"]) for a in answers if a["client"] in mine]
            assert hits
            shares.append(np.mean(hits))
        return float(np.mean(shares))

    for model in models:
        local = rows[("local", None, model)]
        assert local.gain_over_local is None and local.score.mean == pytest.approx(share(model, "local"), abs=1e-9)
        assert 0 < local.clients < sc.clients
        rules = [r for (method, _, m), r in rows.items() if m == model and method != "local"]
        assert rules, "a consensus rule is scored on every architecture's clients"
        for r in rules:
            assert r.score.mean == pytest.approx(share(model, f"public_{r.budget}/{r.entry}"), abs=1e-9)
            assert r.gain_over_local.lo <= r.score.mean - local.score.mean <= r.gain_over_local.hi
    assert sum(rows[("local", None, m)].clients for m in models) == sc.clients
    table = "\n".join(docpages._architecture_markdown("mixed"))
    assert all(f"`{m}` ({rows[('local', None, m)].clients} of {sc.clients} clients)" in table for m in models)
    text = sweepreport.sweep_report(res, n_boot=200)
    assert "gemma3-270m (1 client)" in text and "smollm2-135m (3 clients)" in text


def test_the_answer_is_the_first_budget_where_the_rule_is_not_below_either_fedavg_and_its_bytes_ratio():
    """On the shipped expert budget part: the answer's budget is the smallest at which the best rule's paired
    differences from FedAvg-LoRA's clients and global model both reach zero or above, every smaller budget has one
    below; its byte ratio is FedAvg-LoRA's bytes over the rule's, summed from the cells' metrics and averaged over seeds."""
    import json

    from fedcofit_lite.analysis import frontier

    res = frontier.load_sweep(workshop.REFERENCE_ROOT / "study" / "expert-budget")
    sc = frontier.sweep_scores(res, res.plan.clients[0])
    a = frontier.answer(res, sc)
    v, last = a.verdict, f"round_{res.last_round}"
    assert v.reached and set(a.minus) == {"fedavg", "fedavg (global)"} and v.budget in res.plan.budgets
    for budget in (b for b in sorted(res.plan.budgets) if b <= v.budget):
        rules = [e for e, b in res.entries(sc.clients) if b == budget and sc.has((e, b, last))]
        best = max(rules, key=lambda e: sc.point[(e, budget, last)])
        below = [sc.difference((best, budget, last), (r, None, last)).hi < 0 for r in ("fedavg", "fedavg (global)")]
        assert any(below) == (budget < v.budget), budget  # below one of them before, below neither there
        if budget == v.budget:
            assert best == v.rule and [a.minus[r] for r in a.minus] == [
                sc.difference((best, budget, last), (r, None, last)) for r in ("fedavg", "fedavg (global)")
            ]
    assert res.last_round == v.round  # so the bytes below, summed over every stage, are those up to the verdict's round

    def sent(cell: str) -> float:
        per_seed = []
        for s in sc.seeds:
            rows = (res.root / f"clients_{sc.clients}" / f"seed_{s}" / cell / "metrics.jsonl").read_text().splitlines()
            per_seed.append(sum(r["bytes_up"] + r["bytes_down"] for r in map(json.loads, rows)))
        return float(np.mean(per_seed))

    assert sent(f"public_{v.budget}/{v.rule}") > 0  # answers did cross the wire
    assert a.fewer_bytes == pytest.approx(sent("fedavg") / sent(f"public_{v.budget}/{v.rule}"), rel=1e-9)


def test_across_architectures_the_answer_is_held_against_local_training_and_saves_no_bytes_against_fedavg():
    """Where FedAvg-LoRA cannot run (the shipped mixed part), the answer beats local training or is not reached, and
    has no byte ratio; its text row says so."""
    from fedcofit_lite.analysis import frontier, sweepreport

    res = frontier.load_sweep(workshop.REFERENCE_ROOT / "study" / "mixed")
    sc = frontier.sweep_scores(res, res.plan.clients[0])
    a = frontier.answer(res, sc)
    assert a.verdict.reference == ["local"] and a.fewer_bytes is None
    assert set(a.minus) == ({"local"} if a.verdict.reached else set())
    if a.verdict.reached:
        assert a.minus["local"].lo > 0  # above local training, paired over seeds and items
    row = sweepreport.answer_table({"mixed": a}).splitlines()[-1]
    assert "local training" in row and row.rstrip().endswith("-")
