"""Private consensus vote: the release rule, its determinism, and the client-level accounting, by hand and by simulation."""

from __future__ import annotations

import math
import warnings
from itertools import pairwise

import numpy as np
import pytest
from scipy.stats import norm

from fedcofit_lite.protocol import private_vote as pv


def opacus_epsilon(sigma: float, n_queries: int, delta: float) -> float:
    """The reference: Opacus' RDP accountant for ``n_queries`` Gaussian releases of sensitivity 1 (sample rate 1)."""
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(sigma, 1.0, n_queries)]  # (noise multiplier, sample rate, steps)
    return accountant.get_epsilon(delta)


def test_the_vote_epsilon_is_opacus_rdp_accountant_on_the_same_mechanism():
    from opacus.accountants import RDPAccountant

    assert pv.RDP_ORDERS.tolist() == [float(a) for a in RDPAccountant.DEFAULT_ALPHAS]
    for sigma in (0.3, 1.0, 4.0, 25.0):
        for q in (1, 24, 1000):
            for delta in (1e-3, 1e-5, 1e-8):
                with warnings.catch_warnings():  # outside the proven range for removal at large sigma: not checked here
                    warnings.simplefilter("ignore")
                    eps, _ = pv.client_epsilon(sigma, 1e9, q, delta)
                assert eps == pytest.approx(opacus_epsilon(sigma, q, delta), rel=1e-9, abs=1e-12), (sigma, q, delta)


def test_tiny_noise_releases_the_exact_majority_only_from_three_votes():
    votes = [
        ["lima", "lima", "lima", "quito"],  # 3 votes: released
        ["lima", "lima", "quito", "bogota"],  # 2 votes: below T = 2.5
        ["a", "b", "c"],  # 1 vote each
        ["x", "y", "y", "y", "y"],  # the winner need not be the first key
        [],  # nobody answered
    ]
    out = pv.NoisyVote(sigma=1e-6, threshold=2.5).release(votes, round_index=0)
    assert [r.key for r in out] == ["lima", None, None, "y", None]
    assert [r.top_count for r in out] == [3, 2, 1, 4, 0]
    assert [r.n_votes for r in out] == [4, 4, 3, 5, 0]
    assert out[0].noisy_top == pytest.approx(3.0, abs=1e-4)
    assert math.isnan(out[4].noisy_top)


def test_same_seed_and_round_repeat_and_another_round_draws_new_noise():
    votes = [["a", "a", "b"], ["c", "c", "c", "d"], ["e"]]
    vote = pv.NoisyVote(sigma=2.0, threshold=1.0, seed=7)
    first, again, later = vote.release(votes, 0), vote.release(votes, 0), vote.release(votes, 1)
    assert first == again
    assert all(a.noisy_top != b.noisy_top for a, b in zip(first, later))
    other_seed = pv.NoisyVote(sigma=2.0, threshold=1.0, seed=8).release(votes, 0)
    assert all(a.noisy_top != b.noisy_top for a, b in zip(first, other_seed))


def test_noise_has_the_stated_spread():
    # One key with 5 votes: its noisy count is 5 + N(0, sigma^2), one independent draw per prompt.
    out = pv.NoisyVote(sigma=3.0, threshold=0.0).release([["k"] * 5] * 4000, round_index=2)
    noisy = np.array([r.noisy_top for r in out])
    assert noisy.mean() == pytest.approx(5.0, abs=0.2)
    assert noisy.std() == pytest.approx(3.0, rel=0.05)


def test_a_string_instead_of_a_list_of_keys_is_rejected():
    with pytest.raises(TypeError, match=r"votes\[1\]"):
        pv.NoisyVote(1.0, 2.0).release([["a"], "lima"], 0)


def test_client_epsilon_grows_with_queries_and_shrinks_with_sigma():
    eps = [pv.client_epsilon(4.0, 100.0, q, 1e-5)[0] for q in (1, 10, 100)]
    assert 0 < eps[0] < eps[1] < eps[2]
    by_sigma = [pv.client_epsilon(s, 100.0, 10, 1e-5)[0] for s in (2.0, 4.0, 8.0)]
    assert by_sigma[0] > by_sigma[1] > by_sigma[2] > 0
    assert pv.client_epsilon(4.0, 10.0, 0, 1e-5) == (0.0, 0.0)


def test_one_query_beats_the_classic_gaussian_bound():
    sigma, delta = 6.0, 1e-5
    classic = math.sqrt(2 * math.log(1.25 / delta)) / sigma  # valid for epsilon < 1: here 0.81
    assert classic < 1
    eps, _ = pv.client_epsilon(sigma, 100.0, 1, delta)
    assert 0 < eps < classic


def test_total_delta_adds_the_selection_term():
    sigma, threshold, q, delta = 2.0, 9.0, 50, 1e-6
    _, total = pv.client_epsilon(sigma, threshold, q, delta)
    assert total == pytest.approx(delta + q * norm.sf(4.0))


def test_a_low_threshold_warns_that_the_removal_bound_is_unproven():
    with pytest.warns(UserWarning, match="delta_sel"):
        _, total = pv.client_epsilon(4.0, 3.0, 100, 1e-5)  # delta_sel = 100 * sf(0.5) = 31
    assert total > 1


def test_threshold_for_is_the_smallest_threshold_meeting_the_bound():
    for sigma, q, delta_sel in [(1.0, 1, 0.01), (3.0, 200, 1e-5), (0.5, 10_000, 1e-8)]:
        t = pv.threshold_for(sigma, q, delta_sel)
        assert q * norm.sf((t - 1) / sigma) <= delta_sel
        assert q * norm.sf((t - 1e-6 - 1) / sigma) > delta_sel
    assert pv.threshold_for(1.0, 1, 0.01) == pytest.approx(1 + norm.isf(0.01))


def test_threshold_for_a_loose_bound_is_clipped_at_zero():
    assert pv.threshold_for(2.0, 1, 0.9) == 0.0  # 1 + 2 * isf(0.9) < 0
    assert pv.threshold_for(2.0, 0, 1e-5) == 0.0


def test_sigma_for_hits_the_target_epsilon():
    sigmas = []
    for target in (0.5, 1.0, 4.0):
        sigma = pv.sigma_for(target, 20, 1e-5)
        eps = opacus_epsilon(sigma, 20, 1e-5)
        assert eps <= target and eps == pytest.approx(target, rel=0.01)
        assert opacus_epsilon(sigma * 0.99, 20, 1e-5) > target  # and no much smaller sigma does
        sigmas.append(sigma)
    assert sigmas[0] > sigmas[1] > sigmas[2]


def test_a_single_vote_key_is_released_no_more_often_than_delta_sel():
    # The selection bound is tight for one query: P(1 + N(0, 1) >= T) = 0.01 exactly.
    threshold = pv.threshold_for(1.0, 1, 0.01)
    vote = pv.NoisyVote(sigma=1.0, threshold=threshold, seed=3)
    share = np.mean([r.key is not None for r in vote.release([["only-me"]] * 20_000, round_index=0)])
    assert share <= 0.01 + 0.0025  # 3.5 standard errors
    assert share >= 0.01 - 0.0025  # and the noise really is N(0, 1)


# 2 rounds x 4 clients. With tiny noise the released labels are the prompts with >= 2 votes for one key:
# a, a, b (wrong), x, y (wrong) -> 5 released, 3 correct.
ROUNDS = {
    0: [["a", "a", "a", "a"], ["a", "a", "a", "b"], ["a", "b", "c", "d"], ["b", "b", "b", "a"]],
    1: [["x", "x", "y", "z"], ["y", "y", "y", "y"], ["p", "q", "r", "s"]],
}
TRUTH = {0: ["a", "a", "a", "a"], 1: ["x", "z", "p"]}


def _is_correct(r: int, p: int, key: str) -> bool:
    return TRUTH[r][p] == key


def test_tradeoff_releases_less_as_noise_grows_and_counts_precision():
    sigmas = [1e-6, 0.2, 0.4, 0.8, 5.0]
    rows = pv.tradeoff(ROUNDS, _is_correct, sigmas, delta=1e-3, seed=0)
    assert [r.sigma for r in rows] == sigmas
    tiny = rows[0]
    assert (tiny.released, tiny.correct, tiny.precision) == (5, 3, pytest.approx(0.6))
    released = [r.released for r in rows]
    assert all(a >= b for a, b in pairwise(released)) and released[-1] < released[0]
    assert rows[-1].released == 0 and rows[-1].precision is None
    for r in rows:
        assert r.n_queries == 7 and r.correct <= r.released
        # T: one vote passes it with probability delta_sel / Q (Gaussian tail); epsilon: Opacus' accountant
        assert r.threshold == pytest.approx(max(0.0, 1 + r.sigma * norm.isf(1e-3 / 7)), rel=1e-9, abs=1e-12)
        assert r.epsilon == pytest.approx(opacus_epsilon(r.sigma, 7, 1e-3), rel=1e-9)
        assert r.delta == pytest.approx(2e-3)  # delta_rdp + delta_sel, both 1e-3
        if r.released:
            assert r.precision == pytest.approx(r.correct / r.released)
    assert rows[1].epsilon > rows[2].epsilon > rows[3].epsilon


def test_format_tradeoff_has_one_line_per_row():
    rows = pv.tradeoff(ROUNDS, _is_correct, [1e-6, 5.0], delta=1e-3)
    text = pv.format_tradeoff(rows)
    lines = text.splitlines()
    assert len(lines) == 3 and lines[0].split() == ["sigma", "T", "epsilon", "delta", "released", "precision"]
    assert "5/7" in lines[1] and "0.600" in lines[1]
    assert "0/7" in lines[2] and lines[2].split()[-1] == "-"


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: pv.NoisyVote(sigma=0.0, threshold=1.0), "sigma"),
        (lambda: pv.NoisyVote(sigma=1.0, threshold=-1.0), "threshold"),
        (lambda: pv.NoisyVote(sigma=1.0, threshold=1.0, seed=-1), "seed"),
        (lambda: pv.NoisyVote(sigma=1.0, threshold=1.0).release([["a"]], -1), "round_index"),
        (lambda: pv.client_epsilon(-1.0, 1.0, 1, 1e-5), "sigma"),
        (lambda: pv.client_epsilon(1.0, float("nan"), 1, 1e-5), "threshold"),
        (lambda: pv.client_epsilon(1.0, 1.0, -1, 1e-5), "n_queries"),
        (lambda: pv.client_epsilon(1.0, 1.0, 1, 1.0), "delta"),
        (lambda: pv.threshold_for(1.0, 1, 0.0), "delta_sel"),
        (lambda: pv.threshold_for(1.0, -3, 1e-5), "n_queries"),
        (lambda: pv.sigma_for(0.0, 10, 1e-5), "target_epsilon"),
        (lambda: pv.sigma_for(1.0, 10, -1e-5), "delta"),
        (lambda: pv.sigma_for(1.0, 0, 1e-5), "n_queries"),
        (lambda: pv.tradeoff(ROUNDS, _is_correct, [1.0], delta=2.0), "delta"),
    ],
)
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        call()


# ---------------------------------------------------------------- in the federation


def test_private_consensus_needs_the_vote_rule():
    from fedcofit_lite.config import ConfigError, load_config
    from fedcofit_lite.federation.methods import check_names

    with pytest.raises(ConfigError, match="consensus.rule=vote"):
        check_names(load_config("ci", ["consensus.dp_sigma=1.0"]))
    with pytest.raises(ConfigError, match="consensus@vote"):
        check_names(
            load_config(
                "ci", ["consensus.dp_sigma=1.0", "consensus.rule=vote", "compare.methods=[consensus,consensus@medoid]"]
            )
        )
    assert check_names(load_config("ci", ["consensus.dp_sigma=1.0", "consensus.rule=vote"])).consensus.dp_sigma == 1.0


def test_private_consensus_releases_noisy_majorities_and_reports_epsilon(tmp_path, capsys):
    import json

    from fedcofit_lite.cli import main
    from fedcofit_lite.config import load_config
    from fedcofit_lite.federation.loop import run_federation

    def answerer(name):  # the three clients agree on prompts of even length and each says its own thing on the rest
        return lambda prompts: ["Lima." if len(p) % 2 == 0 else f"{name} thinks otherwise" for p in prompts]

    cfg = load_config(
        "ci",
        [
            "consensus.rule=vote",
            "consensus.dp_sigma=0.3",
            "consensus.dp_seed=0",
            "federation.black_box_clients=[0,1,2]",
        ],
    )
    run_federation(
        cfg, tmp_path / "private", progress=False, answerers={c: answerer(c) for c in ("client0", "client1", "client2")}
    )
    rows = [json.loads(x) for x in (tmp_path / "private" / "metrics.jsonl").read_text().splitlines()]
    assert (
        json.loads((tmp_path / "private" / "checkpoint" / "state.json").read_text())["vote_seed"] == 0
    )  # resume votes with it
    eps = [r["vote_dp_epsilon"] for r in rows if r["stage"].startswith("round_")]
    q = 2 * cfg.data.n_public  # every public prompt of both rounds
    assert len(eps) == 2 and 0 < eps[0] < eps[1]  # composition over rounds
    assert eps == pytest.approx([opacus_epsilon(0.3, q // 2, 1e-5), opacus_epsilon(0.3, q, 1e-5)], rel=1e-9)
    # T is set so that a key with one vote passes it with probability 1e-5 / q: delta_rdp + delta_sel = 2e-5
    assert rows[-1]["vote_dp_delta"] == pytest.approx(2e-5, rel=1e-6)
    assert norm.isf(1e-5 / q) > 4  # so one vote would need a 4-sigma draw: never here
    answers = [json.loads(x) for x in (tmp_path / "private" / "answers" / "round_1.jsonl").read_text().splitlines()]
    agreed = {a["prompt_id"] for a in answers if a["answer"] == "Lima."}
    labels = [
        json.loads(x) for x in (tmp_path / "private" / "pseudo_labels" / "round_1.jsonl").read_text().splitlines()
    ]
    released = {lab["prompt_id"] for lab in labels if lab["kept"]}
    assert released <= agreed and len(released) >= len(agreed) - 1  # three votes pass T up to noise; single votes never
    assert {lab["consensus"] for lab in labels if lab["kept"]} == {
        "lima"
    }  # the normalized key, not one client's raw text
    # the trade-off on the recorded answers, from the command line
    assert main(["replay", str(tmp_path / "private"), "--private-vote", "0.3,1,4", "--round", "1"]) == 0
    out = capsys.readouterr().out
    table = [line.split() for line in out.splitlines() if f"/{cfg.data.n_public} " in line]
    assert len(table) == 3 and int(table[0][4].split("/")[0]) >= len(agreed) - 1 and table[2][4].startswith("0/")
