"""The comparison on tiny presets: same start for every method, bytes measured vs analytic, mixed architectures."""

from __future__ import annotations

import json

import pytest

from fedcofit_lite.accounting import measured_vs_analytic
from fedcofit_lite.cli import main
from fedcofit_lite.compare import load_comparison, run_comparison
from fedcofit_lite.config import load_config
from fedcofit_lite.fedavg import IncompatibleAdaptersError
from fedcofit_lite.federation import run_federation
from fedcofit_lite.messages import safetensors_overhead


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    return run_comparison(load_config("ci"), run_dir=tmp_path_factory.mktemp("cmp") / "run", progress=False)


def test_every_method_has_rows_table_and_figures(comparison):
    cfg = load_config("ci")
    assert list(comparison.metrics) == cfg.compare.methods == ["consensus", "fedavg", "local", "centralized"]
    for method, rows in comparison.metrics.items():
        assert [r["stage"] for r in rows] == ["base", "local", "round_1", "round_2"], method
        assert all(r["method"] == method for r in rows)
    d = comparison.run_dir
    for name in ["comparison.json", "comparison.txt", "models.json", "figures/plotly.min.js"]:
        assert (d / name).is_file(), name
    assert sorted(p.name for p in comparison.figures) == [
        "cumulative_bytes.html", "score_by_round.html", "score_vs_bytes.html", "wall_time.html"
    ]
    assert load_comparison(d).keys() == comparison.metrics.keys()
    assert "x consensus" in (d / "comparison.txt").read_text()


def test_methods_start_from_the_same_local_stage(comparison):
    local_rows = [rows[1] for m, rows in comparison.metrics.items() if m != "centralized"]
    assert all(r["test"] == local_rows[0]["test"] for r in local_rows)
    central = comparison.metrics["centralized"]
    assert list(central[1]["test_per_client"]) == ["central"]  # its own model, trained on the pooled data


def test_consensus_in_a_comparison_equals_a_standalone_run(comparison, tmp_path):
    alone = run_federation(load_config("ci"), run_dir=tmp_path / "alone", progress=False)
    for a, b in zip(alone.metrics, comparison.metrics["consensus"]):
        assert (a["stage"], a["test"], a["bytes_up"], a["bytes_down"]) == (b["stage"], b["test"], b["bytes_up"], b["bytes_down"])
    for r in (1, 2):
        assert (alone.run_dir / f"answers/round_{r}.jsonl").read_text() == (
            comparison.run_dir / f"consensus/answers/round_{r}.jsonl"
        ).read_text()


def test_bytes_per_method(comparison):
    rows = {r["method"]: r for r in comparison.rows}
    assert rows["local"]["bytes_total"] == rows["centralized"]["bytes_total"] == 0
    assert rows["consensus"]["bytes_total"] > 0
    assert rows["fedavg"]["bytes_total"] > rows["consensus"]["bytes_total"]
    assert rows["fedavg"]["bytes_vs_consensus"] == pytest.approx(rows["fedavg"]["bytes_total"] / rows["consensus"]["bytes_total"])
    weights = comparison.metrics["fedavg"][2]["fedavg_weights"]
    assert sorted(weights) == ["client0", "client1", "client2"] and sum(weights.values()) == pytest.approx(1.0)


def test_measured_consensus_bytes_equal_the_analytic_model_plus_json_framing(comparison):
    rows = measured_vs_analytic(comparison.run_dir / "consensus")
    assert {(r["round"], r["direction"]) for r in rows} == {(1, "up"), (1, "down"), (2, "up"), (2, "down")}
    # the only difference the framing formula leaves out is JSON escaping of answer text
    answers = [json.loads(x)["answer"] for r in (1, 2) for x in (comparison.run_dir / f"consensus/answers/round_{r}.jsonl").read_text().splitlines()]
    escapes = sum(json.dumps(a, ensure_ascii=False).count("\\") for a in answers)
    for r in rows:
        assert 0 <= r["overhead"] + 1e-6 and r["overhead"] <= escapes + 1e-6, r


def test_measured_fedavg_bytes_are_analytic_plus_safetensors_headers(comparison):
    from fedcofit_lite.messages import AdapterMessage, GlobalAdapterMessage, encode
    from fedcofit_lite.pool import ModelPool

    rows = measured_vs_analytic(comparison.run_dir / "fedavg")
    assert len(rows) == 4
    # the header of one message, rebuilt from the adapter's real names and shapes
    cfg = load_config("ci")
    pool = ModelPool({"client0": "tiny-random"}, cfg.model, cfg.lora, seed=0)
    tensors = pool.get_tensors("client0")
    up_header = safetensors_overhead(encode(AdapterMessage(1, "client0", 16, tensors)))
    down_header = safetensors_overhead(encode(GlobalAdapterMessage(1, tensors)))
    n = cfg.federation.n_clients
    for r in rows:
        header = up_header if r["direction"] == "up" else down_header
        # client ids and example counts of one digit/two digits keep the header length fixed here
        assert r["overhead"] == pytest.approx(n * header, abs=n * 2), r


def test_mixed_architectures_run_consensus_and_fedavg_refuses(tmp_path):
    cfg = load_config("ci-mixed")
    comp = run_comparison(cfg, ["consensus", "local"], run_dir=tmp_path / "mixed", progress=False, figures=False)
    rows = comp.metrics["consensus"]
    assert rows[-1]["stage"] == "round_1" and rows[-1]["bytes_up"] > 0
    models = json.loads((comp.run_dir / "models.json").read_text())
    assert sorted(models) == ["tiny-random", "tiny-random-b"]
    with pytest.raises(IncompatibleAdaptersError, match=r"client0 \(tiny-random\).*client2 \(tiny-random-b\)|client2 \(tiny-random-b\)"):
        run_comparison(cfg, ["consensus", "fedavg"], run_dir=tmp_path / "refused", progress=False, figures=False)
    # refused before any training: nothing but the set-up files was written
    assert not (tmp_path / "refused" / "metrics.jsonl").exists()


def test_cli_compare_and_fedavg_refusal(tmp_path, capsys):
    assert main(["compare", "--config", "ci-mixed", "--methods", "consensus", "--no-figures", "--quiet", "--run-dir", str(tmp_path / "c")]) == 0
    assert "consensus" in (tmp_path / "c" / "comparison.txt").read_text()
    assert main(["run", "--config", "ci-mixed", "--method", "fedavg", "--quiet", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "FedAvg averages adapter tensors element-wise" in err and "consensus" in err
    assert main(["compare", "--config", "ci", "--methods", "consensus,bogus", "--quiet"]) == 2


def test_cli_cost_prints_the_paper_setting_and_rejects_bad_numbers(capsys):
    assert main(["cost", "--models", "llama-3.1-405b"]) == 0
    out = capsys.readouterr().out
    assert "llama-3.1-405b" in out and "809.2 MB" in out and "804.0 KB" in out and "1,006.5" in out
    assert main(["cost", "--rank", "0"]) == 2
    assert "Protocol.rank" in capsys.readouterr().err
    assert main(["cost", "--models", "gpt-17"]) == 2
    assert "llama-3.1-8b" in capsys.readouterr().err  # the error lists what exists


def test_figures_command_regenerates_every_figure_from_the_folder(comparison, tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["figures", str(comparison.run_dir), "--out", str(out)]) == 0
    names = {p.name for p in out.glob("*.html")}
    assert {"compare_score_by_round.html", "compare_score_vs_bytes.html", "round1_embedding_correct.html", "round1_embedding_cluster.html",
            "round1_threshold_sweep.html", "bytes_measured_vs_analytic.html", "cost_bytes_vs_model_size.html"} <= names
    assert (out / "plotly.min.js").exists()  # one copy of plotly.js for all pages: offline and small
    first = {p.name: p.read_bytes() for p in out.glob("*.html")}
    assert main(["figures", str(comparison.run_dir), "--out", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in out.glob("*.html")} == first  # same run, same bytes: figures diff cleanly
    assert main(["figures", str(tmp_path / "nowhere")]) == 2
