"""DP-SGD utility against epsilon (issue #17): the local stage of the cpu preset under several adapter setups.

Runs (``--run``) or reads the run folders of each (setup, epsilon) pair under ``ROOT`` and prints
exact match and ROUGE-L of the local stage with 95% paired bootstrap intervals over the test items
(:mod:`fedcofit_lite.analysis.stats`), the epsilon each client spent, and the difference to the same setup
without DP. One seed; ``federation.rounds=0``, so the score is DP-SGD on private data alone.

    python benchmarks/dp_utility.py --root runs/dp --run       # about 45 min on 2 cores
    python benchmarks/dp_utility.py --root runs/dp             # the table of existing folders
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from fedcofit_lite.analysis.compare import item_scores
from fedcofit_lite.analysis.stats import difference, score_intervals
from fedcofit_lite.runlog import read_jsonl, read_predictions

SETUPS = {  # name -> the --set overrides of the cpu preset
    "default": [],  # LoRA r16 on q,k,v,o (1.84 M trainable), 48 records, batch 8, 3 epochs
    "small": [
        "train.only_b=true",
        "lora.r=4",
        "lora.target_modules=[q_proj,v_proj]",
        "data.max_train_per_client=128",
        "train.batch_size=32",
        "train.epochs=4",
        "train.lr=0.003",
    ],  # 92 k trainable (B only)
    "more_records": [
        "train.only_b=true",
        "lora.r=4",
        "lora.target_modules=[q_proj,v_proj]",
        "data.max_train_per_client=256",
        "train.batch_size=64",
        "train.epochs=4",
        "train.lr=0.003",
    ],  # the same adapter, twice the records and batch
}
EPSILONS = {"default": [0, 8], "small": [0, 8, 3, 1], "more_records": [0, 8, 3, 1]}


def folder(root: Path, setup: str, eps: float) -> Path:
    return root / f"{setup}_{'nodp' if eps == 0 else f'eps{eps:g}'}"


def run(root: Path) -> None:
    for setup, epsilons in EPSILONS.items():
        for eps in epsilons:
            if (folder(root, setup, eps) / "summary.json").exists():
                continue  # finished earlier
            sets = [*SETUPS[setup], "federation.rounds=0", *([f"train.dp_epsilon={eps}"] if eps else [])]
            cmd = [
                sys.executable,
                "-m",
                "fedcofit_lite",
                "run",
                "--config",
                "cpu",
                "--quiet",
                "--run-dir",
                str(folder(root, setup, eps)),
            ]
            subprocess.run([*cmd, *[x for s in sets for x in ("--set", s)]], check=True)


def table(root: Path) -> str:
    lines = []
    for metric in ("exact_match", "rouge_l"):
        lines.append(f"\n{metric} of the local stage [95% CI]; difference to the same setup without DP")
        for setup, epsilons in EPSILONS.items():
            dirs = {
                eps: folder(root, setup, eps)
                for eps in epsilons
                if (folder(root, setup, eps) / "predictions" / "local.jsonl").exists()
            }
            if 0 not in dirs:
                continue
            preds = {eps: read_predictions(d, "local") for eps, d in dirs.items()}
            ids = sorted(item_scores(preds[0], metric))
            scores = {str(eps): [np.array([item_scores(p, metric)[i] for i in ids])] for eps, p in preds.items()}
            iv = score_intervals(scores)
            for eps, d in dirs.items():
                rows = read_jsonl(d / "metrics.jsonl")
                spent = next((r["dp_epsilon"] for r in rows if r["stage"] == "local" and r.get("dp_epsilon")), None)
                what = f"epsilon {max(spent.values()):.2f}" if spent else "no DP"
                diff = "" if eps == 0 else f"  diff {difference(scores, str(eps), '0').format()}"
                lines.append(f"  {setup:13s} {what:14s} {iv[str(eps)].format()}{diff}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="runs/dp", help="folder of the run folders [runs/dp]")
    parser.add_argument("--run", action="store_true", help="run the missing setups first")
    args = parser.parse_args()
    root = Path(args.root)
    if args.run:
        run(root)
    print(table(root))


if __name__ == "__main__":
    main()
