"""The round explorer and the notebook widgets, on hand-made answers whose consensus is known.

Two prompts, four clients, 2-D unit embeddings placed by angle (cosine
distance between angles a and b is ``1 - cos(a - b)``):

- ``p1`` (``fam_a-public-0001``): three answers at 0, 0.1 and 0.2 rad ("42", right) and one at 1.5 rad.
  At distance threshold 0.15 the three merge (agreement 0.75, kept, right);
  at 0.01 only the first two merge (0.005 apart; the third is 0.0125 from
  them on average), agreement 0.5, dropped by ``min_agreement=0.75``.
- ``p2`` (``fam_b-public-0002``): all four within 0.12 rad, all "17" while the reference is "5":
  kept at any threshold, and wrong (the confident-wrong case).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

import fedcofit_lite as flt
from fedcofit_lite.analysis.replay import RoundAnswers, consensus_quality, fit_consensus
from fedcofit_lite.ui.explorer import ClusterExplorer, cluster_explorer


def _unit(angles: list[float]) -> np.ndarray:
    a = np.asarray(angles)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


@pytest.fixture
def ra() -> RoundAnswers:
    clients = ["client0", "client1", "client2", "client3"] * 2
    prompt_ids = ["fam_a-public-0001"] * 4 + ["fam_b-public-0002"] * 4
    texts = ["42", "42", "42", "seven"] + ["17"] * 4
    references = ["42"] * 4 + ["5"] * 4
    X = np.vstack([_unit([0.0, 0.1, 0.2, 1.5]), _unit([2.0, 2.05, 2.1, 2.12])])
    prompts = {"fam_a-public-0001": "What is six times seven?", "fam_b-public-0002": "What is two plus <b>three</b>?"}
    return RoundAnswers(
        round=1, clients=clients, prompt_ids=prompt_ids, texts=texts, references=references, prompts=prompts, X=X
    )


def test_consensus_quality_counts_kept_and_correct(ra):
    loose = consensus_quality(ra, fit_consensus(ra, "agglomerative", 0.75, distance_threshold=0.15))
    assert loose["kept"] == 2 and loose["n_prompts"] == 2
    assert loose["correct_kept"] == 1 and loose["pseudo_label_accuracy"] == 0.5
    assert loose["consensus_accuracy_all"] == 0.5
    tight = consensus_quality(ra, fit_consensus(ra, "agglomerative", 0.75, distance_threshold=0.01))
    assert tight["kept"] == 1 and tight["pseudo_label_accuracy"] == 0.0  # only the confident-wrong prompt survives
    assert flt.analysis.replay.format_quality(loose).startswith("kept 2 of 2 prompts as pseudo-labels, 1 right (50%)")
    none = consensus_quality(ra, fit_consensus(ra, "agglomerative", 1.0, distance_threshold=0.0001))
    assert "kept 0 of 2 prompts as pseudo-labels, none to score" in flt.analysis.replay.format_quality(none)


def test_an_empty_consensus_is_dropped_not_kept(ra):
    """As at the server: four clients agreeing on '' (or whitespace) give no pseudo-label, and the sentence says so."""
    ra.texts[4:] = ["", " ", "", "\n"]  # p2: all four agree, on nothing
    q = consensus_quality(ra, fit_consensus(ra, "agglomerative", 0.75, distance_threshold=0.15))
    assert q["kept"] == 1 and q["dropped_empty"] == 1 and q["pseudo_label_accuracy"] == 1.0
    assert "(1 more agreed on an empty answer and were dropped)" in flt.analysis.replay.format_quality(q)
    ex = cluster_explorer(ra, min_agreement=0.75)
    assert ex.quality["kept"] == 1 and ex.quality["dropped_empty"] == 1
    assert (
        flt.ui.explorer._verdict(True, " ") == "dropped: the consensus is an empty answer"
    )  # the explorer's line for p2
    assert flt.ui.explorer._verdict(True, "17") == "kept" and flt.ui.explorer._verdict(False, "17") == "dropped"


def test_threshold_sweep_matches_single_fits(ra):
    rows = flt.analysis.replay.threshold_sweep(ra, "agglomerative", values=[0.01, 0.15], min_agreement=0.75)
    assert [r["distance_threshold"] for r in rows] == [0.01, 0.15]
    assert [r["kept"] for r in rows] == [1, 2]
    fig = flt.ui.roundplots.fig_threshold_sweep(rows, current=0.15)
    assert list(fig.data[1].y) == [0.5, 1.0]  # share of prompts kept


def test_fit_consensus_needs_embeddings(ra):
    ra.X = None
    with pytest.raises(ValueError, match="embed the answers first"):
        fit_consensus(ra)


def test_cluster_explorer_recomputes_when_controls_move(ra):
    ex = cluster_explorer(ra, "agglomerative", min_agreement=0.75)
    assert isinstance(ex, ClusterExplorer) and ex.n_draws == 1
    assert ex.params() == {"distance_threshold": 0.15}
    assert ex.quality["kept"] == 2

    ex.controls["knob"].value = 0.01  # the threshold slider: p1 splits and is dropped
    assert ex.n_draws == 2 and ex.quality["kept"] == 1
    assert ex.estimator.consensus_for("fam_a-public-0001").kept is False

    ex.controls["min_agreement"].value = 0.5  # p1's two-of-four cluster passes again
    assert ex.n_draws == 3 and ex.quality["kept"] == 2

    ex.controls["algorithm"].value = "dbscan"  # one redraw, with the new algorithm's knob
    assert ex.n_draws == 4
    assert ex.controls["knob"].description == "eps" and ex.params() == {"eps": 0.15}

    ex.controls["algorithm"].value = "hdbscan"  # a knob range above the previous one (2..6 after 0.01..0.6)
    assert ex.params() == {"min_cluster_size": 2}
    ex.controls["algorithm"].value = "agglomerative"  # and back below it
    assert ex.params() == {"distance_threshold": 0.15} and ex.controls["knob"].max == 0.6

    quality = dict(ex.quality)
    ex.controls["prompt"].value = "fam_b-public-0002"  # another prompt: same fit over the round, redrawn
    assert ex.n_draws == 7 and ex.quality == quality


def test_the_explorer_summary_names_every_control_so_each_move_changes_it(ra):
    """A move that keeps the same labels still changes the line a student (and the browser check) reads."""
    ex = cluster_explorer(ra, "agglomerative", min_agreement=0.0)
    before = ex.summary
    assert before.startswith("agglomerative, distance_threshold 0.15, min_agreement 0.00.") and "All prompts:" in before
    ex.controls["algorithm"].value = "kmeans"
    assert ex.summary.startswith("kmeans, min_silhouette ") and ex.summary != before


def test_cluster_explorer_rejects_bad_input(ra):
    with pytest.raises(ValueError, match="choose one of agglomerative"):
        cluster_explorer(ra, "spectral")
    ra.X = None
    with pytest.raises(ValueError, match="embed the answers first"):
        cluster_explorer(ra)


def test_fig_embedding_groups_and_3d(ra):
    coords = flt.ui.roundplots.project(ra.X, "pca", 2, seed=0)
    assert coords.shape == (8, 2)
    by_client = flt.ui.roundplots.fig_embedding(ra, coords, color_by="client")
    assert [t.name for t in by_client.data] == ["client0", "client1", "client2", "client3"]
    by_prompt = flt.ui.roundplots.fig_embedding(ra, coords, color_by="prompt")
    assert [len(t.x) for t in by_prompt.data] == [4, 4]
    by_correct = flt.ui.roundplots.fig_embedding(ra, coords, color_by="correct")
    assert {t.name: len(t.x) for t in by_correct.data} == {"correct": 3, "wrong": 5}
    with pytest.raises(ValueError, match="needs est="):
        flt.ui.roundplots.fig_embedding(ra, coords, color_by="cluster")
    est = fit_consensus(ra, "agglomerative", 0.75, distance_threshold=0.15)
    by_cluster = flt.ui.roundplots.fig_embedding(ra, coords, color_by="cluster", est=est)
    assert {t.name: len(t.x) for t in by_cluster.data} == {"dominant cluster": 7, "other cluster": 1}
    coords3 = flt.ui.roundplots.project(ra.X, "pca", 2, seed=0)
    assert isinstance(flt.ui.roundplots.fig_embedding(ra, np.hstack([coords3, coords3[:, :1]])).data[0], go.Scatter3d)


def test_tsne_projection_is_seeded(ra):
    a = flt.ui.roundplots.project(ra.X, "tsne", 2, seed=3)
    b = flt.ui.roundplots.project(ra.X, "tsne", 2, seed=3)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="choose 'pca' or 'tsne'"):
        flt.ui.roundplots.project(ra.X, "umap")


def test_load_round_names_what_the_folder_has(tmp_path):
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "round_1.jsonl").write_text("")
    with pytest.raises(FileNotFoundError, match=r"round_2.jsonl does not exist; this run folder has rounds \[1\]"):
        flt.analysis.replay.load_round(tmp_path, 2)


def test_cost_explorer_follows_its_controls():
    ex = flt.ui.cost_explorer.cost_explorer()
    assert ex.model.value == "llama-3.1-405b" and ex.protocol().rank == 32
    before = ex.summary.value
    ratio_32 = flt.analysis.costmodel.ratios(ex.arch, ex.protocol())["lora_over_consensus"]
    ex.rank.value = 64  # LoRA bytes double, consensus bytes stay: the ratio doubles
    assert ex.summary.value != before
    assert flt.analysis.costmodel.ratios(ex.arch, ex.protocol())["lora_over_consensus"] == pytest.approx(2 * ratio_32)
    ex.model.value = "smollm2-135m"
    assert "smollm2-135m" in ex.summary.value
    ex.both_directions.value = True
    assert ex.protocol().directions == ("up", "down")
    assert list(ex.figure.data[0].x) == list(ex.rank.options)


def test_cost_explorer_rejects_unknown_model():
    with pytest.raises(ValueError, match="is not among archs: use one of"):
        flt.ui.cost_explorer.cost_explorer(model="gpt-5")
    with pytest.raises(ValueError, match="archs is empty"):
        flt.ui.cost_explorer.cost_explorer(archs={})


def test_answers_at_one_point_get_fixed_axes_not_nano_ticks(ra):
    # every client answered '' (the tiny model): nothing to project, and the plot says so
    import dataclasses

    same = dataclasses.replace(ra, texts=[""] * 8, X=np.tile(_unit([0.3]), (8, 1)) + 1e-9 * np.arange(8)[:, None])
    coords = flt.ui.roundplots.project(same.X, "pca")
    assert coords.shape == (8, 2) and not coords.any()
    fig = flt.ui.roundplots.fig_embedding(same, coords, color_by="client")
    assert (
        tuple(fig.layout.xaxis.range) == (-1, 1)
        and "all 8 answers at one point (1 distinct text(s))" in fig.layout.title.text
    )
