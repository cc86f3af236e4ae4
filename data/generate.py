"""Regenerate the task suite in data/tasks/ (deterministic: same seed, same bytes).

Usage (from the repository root)::

    python data/generate.py              # seed 0 -> data/tasks/
    python data/generate.py --seed 1 --out /tmp/tasks_seed1

Writes train.jsonl, public.jsonl (responses blanked), public_references.jsonl
({"id", "response"}, for the evaluator only) and test.jsonl. See DATA_CARD.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Run as a script, the repository root is not on sys.path unless installed.
sys.path.insert(0, str(HERE.parent))

from fedcofit_lite.data import SUITE_FILES, write_jsonl  # noqa: E402
from fedcofit_lite.tasks import FAMILIES, generate_suite  # noqa: E402

logger = logging.getLogger("generate")


def write_suite(
    out: Path,
    seed: int = 0,
    n_train: int = 200,
    n_public: int = 40,
    n_test: int = 25,
    families: tuple[str, ...] = FAMILIES,
) -> dict[str, int]:
    """Generate the suite and write its four files; return lines per file."""
    suite = generate_suite(seed, n_train, n_public, n_test, families)
    records = {
        "train": suite["train"],
        "public": [dataclasses.replace(ex, response="") for ex in suite["public"]],
        "public_references": [{"id": ex.id, "response": ex.response} for ex in suite["public"]],
        "test": suite["test"],
    }
    for key, rows in records.items():
        write_jsonl(out / SUITE_FILES[key], rows)
    return {SUITE_FILES[key]: len(rows) for key, rows in records.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    parser.add_argument(
        "--out", type=Path, default=HERE / "tasks", help="output folder (default data/tasks)"
    )
    parser.add_argument("--n-train", type=int, default=200, help="train examples per family")
    parser.add_argument("--n-public", type=int, default=40, help="public prompts per family")
    parser.add_argument("--n-test", type=int, default=25, help="test examples per family")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    counts = write_suite(args.out, args.seed, args.n_train, args.n_public, args.n_test)
    for name, n in counts.items():
        logger.info("wrote %5d lines to %s", n, args.out / name)


if __name__ == "__main__":
    main()
