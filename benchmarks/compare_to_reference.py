"""A multi-seed comparison against the shipped reference of its preset: are the scores unchanged within noise?

    python benchmarks/compare_to_reference.py RUN_DIR [--reference notebooks/reference/cpu/seeds]

RUN_DIR is a finished ``compare --seeds`` folder (e.g. ``compare --config cpu --seeds 0,1,2 --run-dir RUN_DIR``).
For each method of both, at the final stage: exact match and ROUGE-L with 95% paired bootstrap intervals over
test items, and the paired difference RUN_DIR - reference (the same seeds give the same test items). A
difference marked * has zero outside its interval; "overlap" says whether the two intervals overlap.
"""

from __future__ import annotations

import argparse

from fedcofit_lite.analysis import stats
from fedcofit_lite.analysis.compare import summarize_seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--reference", default="notebooks/reference/cpu/seeds")
    args = parser.parse_args()
    new, ref = summarize_seeds(args.run_dir), summarize_seeds(args.reference)
    stage = new.final_stage()
    if stage != ref.final_stage() or len(new.seeds) != len(ref.seeds):
        raise SystemExit(f"not comparable: {stage}/{new.seeds} against {ref.final_stage()}/{ref.seeds}")
    for metric in ("exact_match", "rouge_l"):
        a, b = new.scores[metric][stage], ref.scores[metric][stage]
        print(
            f"\n{metric} at {stage}, {len(new.seeds)} seeds, paired over test items: {args.run_dir} against {args.reference}"
        )
        print(f"{'method':18s} {'run':>22s} {'reference':>22s} {'run - reference':>26s}  overlap")
        for m in (m for m in a if m in b):
            scores = {"run": a[m], "ref": b[m]}
            iv, d = stats.score_intervals(scores), stats.difference(scores, "run", "ref")
            overlap = iv["run"].lo <= iv["ref"].hi and iv["ref"].lo <= iv["run"].hi
            star = " *" if d.lo > 0 or d.hi < 0 else "  "
            print(
                f"{m:18s} {iv['run'].mean:.3f} [{iv['run'].lo:.3f}, {iv['run'].hi:.3f}]   "
                f"{iv['ref'].mean:.3f} [{iv['ref'].lo:.3f}, {iv['ref'].hi:.3f}]   "
                f"{d.mean:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}]{star}  {'yes' if overlap else 'NO'}"
            )


if __name__ == "__main__":
    main()
