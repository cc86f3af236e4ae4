"""Membership-inference audit: the metrics, who counts as a member, and the attacks on known leaks and non-leaks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedcofit_lite.analysis import audit
from fedcofit_lite.tasks.data import Example, load_task_suite

# -- metrics --------------------------------------------------------------------


def test_auc_separated_chance_and_reversed():
    assert audit.roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert audit.roc_auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert audit.roc_auc(np.zeros(5), np.zeros(7)) == 0.5  # all tied: chance, not 0 or 1
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=400), rng.normal(size=400)
    assert abs(audit.roc_auc(a, b) - 0.5) < 0.06
    assert audit.roc_auc(a + 1.0, b) > 0.7


def test_tpr_at_low_fpr_takes_the_threshold_from_the_nonmembers():
    nonmembers = np.arange(100.0)  # 0..99: 1% FPR allows one non-member (99) above the threshold 98
    members = np.array([98.5, 99.5, 50.0, 10.0])
    assert audit.tpr_at_fpr(members, nonmembers, 0.01) == 0.5
    assert audit.tpr_at_fpr(members, nonmembers, 0.0) == 0.25  # above every non-member: only 99.5
    fpr, tpr = audit.roc_curve(members, nonmembers)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)


def test_intervals_cover_the_point_and_need_two_records_each():
    rng = np.random.default_rng(1)
    auc, tpr = audit.attack_intervals(rng.normal(0.5, 1, 60), rng.normal(0, 1, 60), n_boot=300)
    assert auc.lo <= auc.mean <= auc.hi and tpr.lo <= tpr.mean <= tpr.hi
    assert 0 < auc.hi - auc.lo < 0.4
    with pytest.raises(audit.AuditError, match="at least 2 members"):
        audit.attack_intervals(np.array([1.0]), np.array([0.0, 1.0]))


# -- members and non-members -------------------------------------------------------


def test_nonmembers_match_each_clients_families_and_were_never_trained_on():
    suite = load_task_suite(n_public=12, n_test_per_family=2)
    fam = suite.families
    a = [ex for ex in suite.train if ex.family == fam[0]][:6] + [ex for ex in suite.train if ex.family == fam[1]][:2]
    b = [ex for ex in suite.train if ex.family == fam[2]][:5]
    partition = {"c0": [ex.id for ex in a], "c1": [ex.id for ex in b]}
    sets = audit.membership_sets(suite.train, partition, seed=3)
    used = set(partition["c0"]) | set(partition["c1"])
    for client, (members, nonmembers) in sets.items():
        assert [ex.id for ex in members] == partition[client]
        assert sorted(ex.family for ex in nonmembers) == sorted(ex.family for ex in members)
        assert not used & {ex.id for ex in nonmembers}
    assert sets == audit.membership_sets(suite.train, partition, seed=3)
    assert sets != audit.membership_sets(suite.train, partition, seed=4)
    # a family the unused train records cannot cover takes non-members from the pool (e.g. the test split)
    scarce = [ex for ex in suite.train if ex.family == fam[3]]
    tight = {"c0": [ex.id for ex in scarce]}  # every train record of the family is a member
    members, nonmembers = audit.membership_sets(suite.train, tight, seed=0, pool=suite.test)["c0"]
    assert nonmembers and {ex.id for ex in nonmembers} <= {ex.id for ex in suite.test if ex.family == fam[3]}
    with pytest.raises(audit.AuditError, match="not in the task suite"):
        audit.membership_sets(suite.train, {"c0": ["no-such-record"]})


# -- known leaks and non-leaks -----------------------------------------------------


def _records(family: str, n: int, offset: int = 0) -> list[Example]:
    words = ["amber", "cobalt", "saffron", "teal", "umber", "violet", "ochre", "indigo", "scarlet", "jade"]
    return [
        Example(
            f"{family}-{i}",
            family,
            f"Name the colour for code {i * 7 + 3}.",
            response=f"{words[i % 10]} {words[(i * 3 + 1) % 10]} {i}",
        )
        for i in range(offset, offset + n)
    ]


def _tiny_pool(*overrides: str):
    from fedcofit_lite.config import load_config
    from fedcofit_lite.engine.pool import ModelPool

    cfg = load_config("ci", list(overrides))
    return ModelPool({"c0": "tiny-random"}, cfg.model, cfg.lora, seed=0), cfg


def test_record_losses_equal_each_records_own_full_logit_loss_in_the_given_order():
    """Length-sorted batches and answer-only logits change nothing but the cost: each record's loss equals its
    mean answer-token loss of the model's full forward, alone, in the order the records were given."""
    import torch

    from fedcofit_lite.engine.batching import IGNORE_INDEX, TrainRecord, collate, tokenize_records

    def per_example_loss(logits, labels):  # (B,) each example's mean next-token loss over its answer tokens
        tok = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2).float(), labels[:, 1:], ignore_index=IGNORE_INDEX, reduction="none"
        )  # (B, T-1)
        mask = (labels[:, 1:] != IGNORE_INDEX).float()
        return (tok * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    pool, cfg = _tiny_pool()
    bb = pool.backbone_of("c0")
    records = _records("colour", 5) + _records("capital", 6, offset=5) + _records("colour", 4, offset=20)
    got = audit.record_losses(bb.model, bb.tokenizer, records, "c0", cfg.train.max_length, batch_size=4)
    data = tokenize_records(
        bb.tokenizer, [TrainRecord(r.instruction, r.context, r.response) for r in records], cfg.train.max_length
    )
    assert len({len(ids) for ids, _ in data}) > 1  # lengths differ, so sorting reorders the records
    bb.model.set_adapter("c0")
    with torch.inference_mode():
        want = [
            float(per_example_loss(bb.model(**{k: v for k, v in b.items() if k != "labels"}).logits, b["labels"])[0])
            for b in (collate([d], bb.tokenizer.pad_token_id or 0) for d in data)
        ]
    scale = max(abs(w) for w in want)
    assert np.allclose(got, want, rtol=1e-2, atol=1e-3 * scale), (got, want)  # bf16 matmuls of other batch shapes


def test_loss_attacks_find_a_memorised_client_and_not_an_untrained_one():
    from dataclasses import replace

    from fedcofit_lite.engine.batching import TrainRecord

    # Rank 16: a client that can memorise its 8 records (at rank 4 the random 2-layer model barely moves their loss,
    # and the checks below then hold at some LoRA dropout draws only). 200 non-members: at 1% false positives two
    # may pass the threshold (with 40, "1%" allowed none: the single highest non-member decided it, draw by draw).
    pool, cfg = _tiny_pool("lora.r=16", "lora.alpha=32")
    members, nonmembers = _records("colour", 8), _records("colour", 200, offset=8)
    bb = pool.backbone_of("c0")

    def scores(adapter):
        losses = audit.record_losses(bb.model, bb.tokenizer, members + nonmembers, adapter, cfg.train.max_length)
        base = audit.record_losses(bb.model, bb.tokenizer, members + nonmembers, None, cfg.train.max_length)
        return {"loss": -losses, "loss_ref": base - losses}

    untrained = scores("c0")  # a fresh adapter: B = 0, so it is the base model
    assert np.allclose(untrained["loss_ref"], 0.0, atol=1e-5)
    for name, s in untrained.items():
        auc, _ = audit.attack_intervals(s[:8], s[8:], n_boot=500)
        assert auc.lo < 0.5 < auc.hi or auc.mean == 0.5, (name, auc)

    train_cfg = replace(cfg.train, lr=5e-2)  # 80 epochs on 8 records: memorised
    pool.train(
        "c0", [TrainRecord(ex.instruction, ex.context, ex.response) for ex in members], train_cfg, epochs=80, seed=0
    )
    memorised = scores("c0")
    for name, s in memorised.items():
        auc, tpr = audit.attack_intervals(s[:8], s[8:], n_boot=500)
        assert auc.mean > 0.9 and auc.lo > 0.75, (name, auc)
    assert audit.tpr_at_fpr(memorised["loss"][:8], memorised["loss"][8:]) >= 0.75


def test_text_attack_finds_echoed_responses_and_not_unrelated_answers(embedder):
    from fedcofit_lite.engine.embed import embed_texts

    def embed(texts):
        return embed_texts(embedder, texts, progress=False)

    records = _records("colour", 40)
    members, nonmembers = records[0::2], records[1::2]  # interleaved: the same distribution of codes
    echoed = {
        "colour": [ex.response for ex in members[:15]] + ["grey"]
    }  # a client whose shared answers repeat 15 of its records
    s = audit.text_attack(members + nonmembers, echoed, embed)
    assert audit.roc_auc(s[:20], s[20:]) > 0.8
    assert audit.tpr_at_fpr(s[:20], s[20:]) >= 0.7
    unrelated = {"colour": ["The meeting is on Tuesday.", "Paris", "a quiet river"]}
    s = audit.text_attack(members + nonmembers, unrelated, embed)
    auc, _ = audit.attack_intervals(s[:20], s[20:], n_boot=500)
    assert auc.lo < 0.5 < auc.hi
    assert np.all(audit.text_attack(members, {}, embed) == -1.0)  # nothing exposed for the family: no signal


# -- run folders and the command -----------------------------------------------------


@pytest.fixture(scope="module")
def ci_runs(tmp_path_factory):
    from fedcofit_lite.config import load_config
    from fedcofit_lite.federation.loop import run_federation

    root = tmp_path_factory.mktemp("audit")
    for method in ("fedavg", "consensus", "local"):
        run_federation(load_config("ci", ["federation.rounds=1"]), root / method, progress=False, method=method)
    return root


def test_privacy_audit_command_attacks_what_each_method_sends(ci_runs, capsys):
    from fedcofit_lite.cli import main

    assert (
        main(
            [
                "privacy-audit",
                str(ci_runs / "fedavg"),
                str(ci_runs / "consensus"),
                str(ci_runs / "local"),
                "--boot",
                "200",
                "--quiet",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "loss_ref" in out and "pseudo_labels" in out and "nothing leaves a client" in out
    fedavg = audit.Audit.load(ci_runs / "fedavg")
    assert [(r.attack, r.sent) for r in fedavg.results] == [("loss", True), ("loss_ref", True), ("query", True)]
    consensus = audit.Audit.load(ci_runs / "consensus")
    assert [(r.attack, r.sent) for r in consensus.results][:2] == [("answers", True), ("pseudo_labels", True)]
    assert {r.attack for r in consensus.results if not r.sent} == {"loss", "loss_ref", "query"}  # the adapter it keeps
    partition = json.loads((ci_runs / "fedavg" / "partition.json").read_text())
    n_members = sum(len(p["example_ids"]) for p in partition.values())
    for r in fedavg.results + consensus.results:
        assert len(r.members) == n_members and len(r.nonmembers) == n_members
        assert 0.0 <= r.auc.lo <= r.auc.hi <= 1.0 and 0.0 <= r.auc.mean <= 1.0


def test_privacy_audit_says_what_is_missing(ci_runs, tmp_path, capsys):
    import shutil

    from fedcofit_lite.cli import main

    copy = tmp_path / "fedavg"
    shutil.copytree(ci_runs / "fedavg", copy)
    shutil.rmtree(copy / "checkpoint")
    assert main(["privacy-audit", str(copy), "--quiet"]) == 2
    assert "compare folders keep no adapters" in capsys.readouterr().err
    assert main(["privacy-audit", str(tmp_path / "nowhere"), "--quiet"]) == 2
    assert "config.yaml is missing" in capsys.readouterr().err
    assert main(["privacy-audit", str(ci_runs / "fedavg"), "--attacks", "guess", "--quiet"]) == 2
    assert "unknown attack" in capsys.readouterr().err
    assert main(["privacy-audit", str(ci_runs / "fedavg"), "--boot", "0", "--quiet"]) == 2
    assert "n_boot must be >= 1" in capsys.readouterr().err
    no_rounds = tmp_path / "consensus"
    shutil.copytree(ci_runs / "consensus", no_rounds)
    shutil.rmtree(no_rounds / "answers")
    assert main(["privacy-audit", str(no_rounds), "--quiet"]) == 2
    assert "holds no round_R.jsonl" in capsys.readouterr().err
