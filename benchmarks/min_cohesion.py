"""Choose ``consensus.min_cohesion`` from measured answers: how cohesive are groups of agreeing and of unrelated answers?

A clusterer may put answers that say different things into one group: k-means
keeps one cluster when no split is convincing (``min_silhouette``), DBSCAN and
HDBSCAN chain neighbours, a loose threshold merges everything. Such a group
can win a prompt with full agreement. ``min_cohesion`` splits any group whose
mean pairwise cosine is below it into single answers.

This script reads the real answers of a run (default: every consensus folder
of the shipped ``cpu`` reference), embeds them with the run's embedder, and
prints

1. the cohesion of the group of *all* of a prompt's answers (what a clusterer
   that lumps everything would send), split by how many distinct answers
   (after ``normalize_answer``) the prompt got: 1 distinct answer is full
   agreement, "all distinct" is a group of unrelated answers;
2. the cohesion of a group of answers that all say the same thing in other
   words: every right phrasing of each public reference of the free-form
   suite (``families.phrasings``), the groups a floor must never split;
3. for every registered clusterer at the run's settings, the kept labels and
   their precision without a floor and with each candidate floor.

    python benchmarks/min_cohesion.py                       # the shipped cpu reference
    python benchmarks/min_cohesion.py RUN_DIR [RUN_DIR ...] --floors 0,0.5,0.6,0.7
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fedcofit_lite import runlog  # noqa: E402
from fedcofit_lite.analysis import replay  # noqa: E402
from fedcofit_lite.config import load_config  # noqa: E402
from fedcofit_lite.protocol.cluster import REGISTRY, clusterer_from_config  # noqa: E402
from fedcofit_lite.protocol.consensus import SemanticConsensus, normalize_answer  # noqa: E402


def default_runs() -> list[Path]:
    ref = ROOT / "notebooks" / "reference" / "cpu"
    return [
        ref / "quickstart",
        *sorted(p for p in (ref / "seeds").glob("seed_*/consensus*") if (p / "answers").exists()),
    ]


def whole_prompt_cohesion(ra: replay.RoundAnswers) -> list[tuple[int, int, float]]:
    """Per prompt: (answers, distinct answers, mean pairwise cosine of all of them)."""
    out = []
    for p in ra.prompts:
        rows = ra.rows_of(p)
        if len(rows) < 2:
            continue
        X = ra.X[rows]  # (m, d), unit norm
        S = X @ X.T
        m = len(rows)
        cohesion = float((S.sum() - np.trace(S)) / (m * (m - 1)))
        distinct = len({normalize_answer(ra.texts[i]) for i in rows})
        out.append((m, distinct, cohesion))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", type=Path, help="consensus run folders (default: the shipped cpu reference)")
    p.add_argument("--floors", default="0,0.5,0.6,0.7,0.8", help="min_cohesion values to replay")
    args = p.parse_args(argv)
    runs = args.runs or default_runs()
    floors = [float(x) for x in args.floors.split(",")]
    rounds = [
        (
            run,
            replay.ensure_embedded(
                replay.load_round(run, r), load_config(run / "config.yaml", recorded=True).consensus.embedder
            ),
        )
        for run in runs
        for r in runlog.rounds_of(run)
    ]
    print(
        f"{len(runs)} run folders, {len(rounds)} rounds, {sum(len(ra.texts) for _, ra in rounds)} answers "
        f"({platform.processor() or platform.machine()})\n"
    )

    # 1. cohesion of the all-answers group, by how many different things the answers say
    by_distinct: dict[str, list[float]] = {}
    for _, ra in rounds:
        for m, distinct, c in whole_prompt_cohesion(ra):
            key = "1 (all agree)" if distinct == 1 else ("all distinct" if distinct == m else f"{distinct} of {m}")
            by_distinct.setdefault(key, []).append(c)
    print("cohesion of the group of ALL of a prompt's answers, by distinct answers (after normalize_answer)")
    print(f"{'distinct':>14s} {'prompts':>8s} {'p5':>6s} {'p25':>6s} {'median':>6s} {'p75':>6s} {'p95':>6s}")
    for key in sorted(by_distinct, key=lambda k: (k != "1 (all agree)", k == "all distinct", k)):
        v = np.array(by_distinct[key])
        q = np.percentile(v, [5, 25, 50, 75, 95])
        print(f"{key:>14s} {len(v):>8d} " + " ".join(f"{x:6.3f}" for x in q))
    for floor in floors[1:]:
        unrelated = np.array(by_distinct.get("all distinct", [np.nan]))
        print(f"  floor {floor:.2f}: splits {np.mean(unrelated < floor):.0%} of all-distinct groups")

    # 2. groups of right answers in other words (free-form): a floor must keep these whole
    from fedcofit_lite.engine.models import load_embedder
    from fedcofit_lite.tasks.data import load_task_suite
    from fedcofit_lite.tasks.families import phrasings

    suite = load_task_suite(ROOT / "data" / "freeform")
    embedder = load_embedder(load_config("freeform").consensus.embedder)
    paraphrase = []
    for e in suite.public:
        texts = phrasings(e.family, suite.public_references[e.id])
        X = embedder.encode(texts, normalize_embeddings=True)
        S = X @ X.T
        m = len(texts)
        paraphrase.append(float((S.sum() - np.trace(S)) / (m * (m - 1))))
    q = np.percentile(paraphrase, [0, 5, 25, 50])
    print(
        f"\nright phrasings of one free-form reference ({len(paraphrase)} references): "
        f"min {q[0]:.3f}, p5 {q[1]:.3f}, p25 {q[2]:.3f}, median {q[3]:.3f}"
    )
    for floor in floors[1:]:
        print(f"  floor {floor:.2f}: splits {np.mean(np.array(paraphrase) < floor):.0%} of them")

    # 3. kept labels and precision per clusterer and floor, on every round
    print("\nper clusterer at the runs' settings: kept labels (sum over rounds) and their precision")
    print(f"{'clusterer':>14s} " + " ".join(f"{'floor ' + format(f, '.2f'):>20s}" for f in floors))
    for name in REGISTRY:
        cells = []
        for floor in floors:
            kept = right = 0
            for run, ra in rounds:
                c = load_config(run / "config.yaml", recorded=True).consensus
                est = SemanticConsensus(
                    clusterer_from_config(c, name), min_agreement=c.min_agreement, min_cohesion=floor
                )
                q = replay.label_quality(ra, replay.fit_rule(ra, est))
                kept += q["kept"]
                right += round(q["precision"] * q["kept"]) if q["kept"] else 0
            cells.append(f"{kept:>5d} kept, {right / kept if kept else float('nan'):.3f}")
        print(f"{name:>14s} " + " ".join(f"{x:>20s}" for x in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
