"""Regenerate the task suites in data/ (deterministic: same seed, same bytes).

Usage (from the repository root)::

    python data/generate.py                   # seed 0, exact-answer families -> data/tasks/
    python data/generate.py --suite freeform  # seed 0, free-form families -> data/freeform/
    python data/generate.py --seed 1 --out /tmp/tasks_seed1
    python data/generate.py --suite freeform --dolly /tmp/freeform_dolly.jsonl  # also Dolly-style records
    python data/generate.py --extra-public 120 --out data/tasks_pool                 # the public-budget pools:
    python data/generate.py --suite freeform --extra-public 40 --out data/freeform_pool  # same train and test

The pools (``--extra-public N``: N more public prompts per family, drawn after the test split) keep
the suite's train, test and first 40 public prompts per family, so a run on a pool differs from one
on the suite only in the public prompts it may draw: 160 per family (1,120) in ``data/tasks_pool``,
80 per family (240; ``capital_sentence`` has 306 distinct instructions) in ``data/freeform_pool``.
They serve ``python -m fedcofit_lite sweep --budgets ...`` beyond the suite's 280 (120) prompts.

Writes train.jsonl, public.jsonl (responses blanked), public_references.jsonl
({"id", "response"}, for the evaluator only) and test.jsonl. See DATA_CARD.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Run as a script, the repository root is not on sys.path unless installed.
sys.path.insert(0, str(HERE.parent))

from fedcofit_lite.tasks.data import write_jsonl  # noqa: E402
from fedcofit_lite.tasks.families import FAMILIES, FREEFORM_FAMILIES, generate_suite, write_suite  # noqa: E402

SUITES = {"tasks": FAMILIES, "freeform": FREEFORM_FAMILIES}

logger = logging.getLogger("generate")


def write_dolly(path: Path, seed: int = 0, n: int = 20, families: tuple[str, ...] = FREEFORM_FAMILIES) -> int:
    """Write ``n`` training records per family in the Dolly schema (instruction, context, response, category).

    The records are the suite's own (category = family): a small file in the
    format of databricks-dolly-15k, for running the instruction-data preset
    offline and for its tests.
    """
    suite = generate_suite(seed, n_train=n, n_public=0, n_test=0, families=families)
    rows = [
        {"instruction": e.instruction, "context": e.context, "response": e.response, "category": e.family}
        for e in suite["train"]
    ]
    write_jsonl(path, rows)
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    parser.add_argument("--suite", choices=list(SUITES), default="tasks", help="which families (default tasks)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default data/<suite>)")
    parser.add_argument(
        "--dolly",
        type=Path,
        default=None,
        metavar="FILE.jsonl",
        help="also write 20 train records per family in the Dolly schema to this file",
    )
    parser.add_argument("--n-train", type=int, default=200, help="train examples per family")
    parser.add_argument("--n-public", type=int, default=40, help="public prompts per family")
    parser.add_argument("--n-test", type=int, default=25, help="test examples per family")
    parser.add_argument(
        "--extra-public", type=int, default=0, help="more public prompts per family, drawn after the test split"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out or HERE / args.suite
    counts = write_suite(
        out, args.seed, args.n_train, args.n_public, args.n_test, SUITES[args.suite], args.extra_public
    )
    for name, n in counts.items():
        logger.info("wrote %5d lines to %s", n, out / name)
    if args.dolly:
        n = write_dolly(args.dolly, args.seed, families=SUITES[args.suite])
        logger.info("wrote %5d Dolly-style records to %s", n, args.dolly)


if __name__ == "__main__":
    main()
