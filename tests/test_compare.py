"""The comparison on tiny presets: same start for every method, bytes measured vs analytic, mixed architectures."""

from __future__ import annotations

import json

import pytest
from rundiff import compare_runs

from fedcofit_lite.analysis.accounting import measured_vs_analytic
from fedcofit_lite.analysis.compare import load_comparison
from fedcofit_lite.cli import main
from fedcofit_lite.config import load_config
from fedcofit_lite.experiments.compare import run_comparison
from fedcofit_lite.federation.loop import run_federation
from fedcofit_lite.protocol.fedavg import IncompatibleAdaptersError
from fedcofit_lite.protocol.messages import safetensors_overhead


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, answering):
    """Every method on the ci preset, answering with the answering model (consensus keeps labels)."""
    return run_comparison(load_config("ci", answering), run_dir=tmp_path_factory.mktemp("cmp") / "run", progress=False)


def test_every_method_has_rows_table_and_figures(comparison):
    from fedcofit_lite.ui.plots import comparison_figures, write_figures

    cfg = load_config("ci")
    assert list(comparison.metrics) == cfg.compare.methods == ["consensus", "fedavg", "ffa", "local", "centralized"]
    for method, rows in comparison.metrics.items():
        assert [r["stage"] for r in rows] == ["base", "local", "round_1", "round_2"], method
        assert all(r["method"] == method for r in rows)
    d = comparison.run_dir
    figures = write_figures(comparison_figures(comparison.metrics), d / "figures")
    for name in ["comparison.json", "comparison.txt", "models.json", "figures/plotly.min.js"]:
        assert (d / name).is_file(), name
    assert sorted(p.name for p in figures) == [
        "cumulative_bytes.html",
        "score_by_round.html",
        "score_vs_bytes.html",
        "wall_time.html",
    ]
    assert load_comparison(d).keys() == comparison.metrics.keys()
    assert "x consensus" in (d / "comparison.txt").read_text()


def test_methods_start_from_the_same_local_stage(comparison):
    local_rows = [rows[1] for m, rows in comparison.metrics.items() if m not in ("centralized", "ffa")]
    assert all(r["test"] == local_rows[0]["test"] for r in local_rows)
    assert (
        comparison.metrics["ffa"][1]["train_steps"] == local_rows[0]["train_steps"]
    )  # its own local stage, same budget
    central = comparison.metrics["centralized"]
    assert list(central[1]["test_per_client"]) == ["central"]  # its own model, trained on the pooled data


def test_consensus_in_a_comparison_equals_a_standalone_run(comparison, tmp_path, answering, labels_kept_and_trained):
    alone = run_federation(load_config("ci", answering), run_dir=tmp_path / "alone", progress=False)
    inside = comparison.run_dir / "consensus"
    assert labels_kept_and_trained(inside) == labels_kept_and_trained(alone.run_dir)
    same = ["stage", "test", "test_per_client", "bytes_up", "bytes_down", "kept", "pseudo_label_accuracy"]
    same += ["train_steps"]
    assert compare_runs(alone.run_dir, inside, ["metrics.jsonl"], fields=same) == []
    files = [f"{d}/round_{r}.jsonl" for d in ("answers", "pseudo_labels", "predictions") for r in (1, 2)]
    assert compare_runs(alone.run_dir, inside, files) == []


def test_bytes_per_method(comparison):
    rows = {r["method"]: r for r in comparison.rows}
    assert rows["local"]["bytes_total"] == rows["centralized"]["bytes_total"] == 0
    assert rows["consensus"]["bytes_total"] > 0
    assert rows["fedavg"]["bytes_total"] > rows["consensus"]["bytes_total"]
    assert rows["fedavg"]["bytes_vs_consensus"] == pytest.approx(
        rows["fedavg"]["bytes_total"] / rows["consensus"]["bytes_total"]
    )
    weights = comparison.metrics["fedavg"][2]["fedavg_weights"]
    assert sorted(weights) == ["client0", "client1", "client2"] and sum(weights.values()) == pytest.approx(1.0)


def test_measured_consensus_bytes_equal_the_analytic_model_plus_json_framing(comparison):
    rows = measured_vs_analytic(comparison.run_dir / "consensus")
    sent = {  # a round sends pseudo-labels down only when one was kept (an empty consensus never is)
        r
        for r in (1, 2)
        if any(
            json.loads(x)["kept"]
            for x in (comparison.run_dir / f"consensus/pseudo_labels/round_{r}.jsonl").read_text().splitlines()
        )
    }
    assert {(r["round"], r["direction"]) for r in rows} == {(1, "up"), (2, "up")} | {(r, "down") for r in sent}
    # the only difference the framing formula leaves out is JSON escaping of answer text
    answers = [
        json.loads(x)["answer"]
        for r in (1, 2)
        for x in (comparison.run_dir / f"consensus/answers/round_{r}.jsonl").read_text().splitlines()
    ]
    escapes = sum(json.dumps(a, ensure_ascii=False).count("\\") for a in answers)
    for r in rows:
        assert 0 <= r["overhead"] + 1e-6 and r["overhead"] <= escapes + 1e-6, r


def test_measured_fedavg_bytes_are_analytic_plus_safetensors_headers(comparison):
    from fedcofit_lite.engine.pool import ModelPool
    from fedcofit_lite.protocol.messages import AdapterMessage, GlobalAdapterMessage, encode

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
        messages = (
            2 * n if (r["round"], r["direction"]) == (1, "down") else n
        )  # round 1 also broadcasts the shared start
        # client ids and example counts of one digit/two digits keep the header length fixed here
        assert r["overhead"] == pytest.approx(messages * header, abs=messages * 2), r


def test_ffa_sends_only_b_keeps_a_at_the_shared_start_and_its_global_model_is_scored(comparison):

    rows = {r["method"]: r for r in comparison.rows}
    assert 0.3 < rows["ffa"]["bytes_total"] / rows["fedavg"]["bytes_total"] < 0.7  # B only: about half
    # analytic: only the B factors, r x d_out per module and layer (tiny-random: q 64 -> 64, v 64 -> 32, r 4, 2 layers)
    b_bytes = 2 * 4 * (64 + 32) * 4
    for r in measured_vs_analytic(comparison.run_dir / "ffa"):
        messages = 6 if (r["round"], r["direction"]) == (1, "down") else 3
        assert r["analytic"] == messages * b_bytes and 0 < r["overhead"] < messages * 1000, r
    for method in ("fedavg", "ffa"):
        for row in comparison.metrics[method][2:]:
            assert row["test_global"]["all"]["n"] > 0  # the server's model, scored beside the clients'
        preds = (comparison.run_dir / method / "predictions" / "round_2_global.jsonl").read_text().splitlines()
        assert {json.loads(x)["client"] for x in preds} == {"global"}


def test_every_client_starts_from_one_adapter_and_ffa_never_moves_a(tmp_path):
    import numpy as np
    import safetensors.numpy

    from fedcofit_lite.engine.pool import ModelPool

    cfg = load_config("ci")
    pool = ModelPool({f"client{i}": "tiny-random" for i in range(3)}, cfg.model, cfg.lora, seed=cfg.seed)
    start = [pool.get_tensors(f"client{i}") for i in range(3)]
    for t in start[1:]:
        assert all(np.array_equal(t[k], start[0][k]) for k in t)
    assert any(np.abs(v).sum() > 0 for k, v in start[0].items() if "lora_A" in k)  # A is random, B is zero
    run = run_federation(load_config("ci", ["federation.method=ffa"]), run_dir=tmp_path / "ffa", progress=False)
    final = {
        p.stem: safetensors.numpy.load_file(str(p))
        for p in (run.run_dir / "checkpoint" / "adapters").glob("*.safetensors")
    }
    clients = [final[f"client{i}"] for i in range(3)]
    a_keys = [k for k in clients[0] if "lora_A" in k]
    b_keys = [k for k in clients[0] if "lora_B" in k]
    for t in (*clients, final["global"]):
        assert all(np.array_equal(t[k], start[0][k]) for k in a_keys)  # A never left the shared start...
    assert any(not np.array_equal(clients[0][k], start[0][k]) for k in b_keys)  # ...while B learnt
    # with one A, averaging B averages the update B @ A exactly
    k_a, k_b = a_keys[0], a_keys[0].replace("lora_A", "lora_B")
    w = np.full(3, 1 / 3)
    avg_update = sum(wi * c[k_b] @ c[k_a] for wi, c in zip(w, clients))
    np.testing.assert_allclose(
        sum(wi * c[k_b] for wi, c in zip(w, clients)) @ clients[0][k_a], avg_update, rtol=1e-5, atol=1e-7
    )


def test_several_seeds_give_a_paired_table_with_intervals(tmp_path, capsys):
    folder = tmp_path / "seeds"
    args = ["compare", "--config", "ci", "--seeds", "0,1", "--methods", "consensus,fedavg,local,centralized", "--quiet"]
    assert main([*args, "--run-dir", str(folder)]) == 0
    assert sorted(p.name for p in folder.glob("seed_*")) == ["seed_0", "seed_1"]
    table = (folder / "comparison_seeds.txt").read_text()
    for name in ("consensus", "fedavg", "fedavg (global)", "local", "centralized", "gap closed", "paired differences"):
        assert name in table, name
    assert "2 seed(s) x 14 test items" in table  # compare.n_test_per_family = 2 in ci: 7 families x 2
    assert {p.name for p in (folder / "figures").glob("*.html")} == {
        "seeds_score_by_round.html",
        "seeds_score_vs_bytes.html",
    }
    capsys.readouterr()
    assert (
        main(["compare", "--config", "ci", "--summarize", str(folder)]) == 0
    )  # the table again, from the folder alone
    assert capsys.readouterr().out.strip() == table.strip()


def test_mixed_architectures_run_consensus_and_fedavg_refuses(tmp_path):
    cfg = load_config("ci-mixed")
    comp = run_comparison(cfg, ["consensus", "local"], run_dir=tmp_path / "mixed", progress=False)
    rows = comp.metrics["consensus"]
    assert rows[-1]["stage"] == "round_1" and rows[-1]["bytes_up"] > 0
    models = json.loads((comp.run_dir / "models.json").read_text())
    assert sorted(models) == ["tiny-random", "tiny-random-b"]
    with pytest.raises(
        IncompatibleAdaptersError, match=r"client0 \(tiny-random\).*client2 \(tiny-random-b\)|client2 \(tiny-random-b\)"
    ):
        run_comparison(cfg, ["consensus", "fedavg"], run_dir=tmp_path / "refused", progress=False)
    # refused before any training: nothing but the set-up files was written
    assert not (tmp_path / "refused" / "metrics.jsonl").exists()


def test_cli_compare_and_fedavg_refusal(tmp_path, capsys):
    assert (
        main(
            [
                "compare",
                "--config",
                "ci-mixed",
                "--methods",
                "consensus",
                "--no-figures",
                "--quiet",
                "--run-dir",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
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
    assert {
        "compare_score_by_round.html",
        "compare_score_vs_bytes.html",
        "round1_embedding_correct.html",
        "round1_embedding_cluster.html",
        "round1_threshold_sweep.html",
        "bytes_measured_vs_analytic.html",
        "cost_bytes_vs_model_size.html",
    } <= names
    assert (out / "plotly.min.js").exists()  # one copy of plotly.js for all pages: offline and small
    first = {p.name: p.read_bytes() for p in out.glob("*.html")}
    assert main(["figures", str(comparison.run_dir), "--out", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in out.glob("*.html")} == first  # same run, same bytes: figures diff cleanly
    assert main(["figures", str(tmp_path / "nowhere")]) == 2


def test_extending_a_folder_written_before_a_metric_existed_compares_the_common_metrics():
    from fedcofit_lite.experiments.compare import _same_scores

    before = {"all": {"exact_match": 0.5, "rouge_l": 0.4, "n": 2}}
    assert _same_scores({"all": {"exact_match": 0.5, "correct": 0.5, "rouge_l": 0.4, "n": 2}}, before)
    assert not _same_scores({"all": {"exact_match": 0.6, "correct": 0.6, "rouge_l": 0.4, "n": 2}}, before)
    assert not _same_scores({"all": before["all"], "capital": before["all"]}, before)


def test_every_stage_of_every_method_records_its_cpu_seconds_and_energy(comparison):
    from fedcofit_lite.runlog import check_row

    for method, rows in comparison.metrics.items():
        for r in rows:
            assert r["energy_source"] in ("rapl", "estimate") and r["energy_j"] >= 0 and r["cpu_seconds"] >= 0, method
            assert check_row(r) == []
    assert all(r["energy_j"] > 0 for r in comparison.rows)
    assert "energy J" in (comparison.run_dir / "comparison.txt").read_text()
