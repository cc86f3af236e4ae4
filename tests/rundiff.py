"""Comparing two run folders, for the tests: where they differ, file by file, floats within a tolerance."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fedcofit_lite.runlog import read_records

# Floats agree when |a - b| <= FLOAT_RTOL * max(|a|, |b|) (+ the file's rounding step, below). The
# same seed reproduces text, integers and choices exactly, but the last digits of a float depend
# on the thread count and the CPU's instruction set (a sum reduced in another order): seen in
# the 7th-8th significant digit of embedding similarities between 1 and 2 threads.
FLOAT_RTOL = 1e-6
# Fields that measure the machine, not the run: never compared.
VOLATILE_FIELDS = frozenset({"seconds", "seconds_total", "wall_s", "wall_seconds", "cpu_seconds", "energy_j"})
# Files whose floats were rounded before writing (confidence to 3 decimals, agreement to 4): two
# raw values a hair apart can round one step apart, so one step is tolerated there.
ROUNDING_STEP = {"answers": 1e-3, "pseudo_labels": 1e-4}


def differences(
    a: Any,
    b: Any,
    *,
    rtol: float = FLOAT_RTOL,
    atol: float = 0.0,
    ignore: Iterable[str] = VOLATILE_FIELDS,
    where: str = "",
) -> list[str]:
    """Where two JSON values differ: structure, text, integers and booleans exactly, floats within a tolerance.

    Floats agree when ``|a - b| <= atol + rtol * max(|a|, |b|)`` (NaN equals NaN); keys in ``ignore``
    (default: wall-clock fields) are skipped at any depth; ``where`` prefixes the paths. One line per
    difference (``round_1.test.all.embedding_sim: 0.4487 != 0.4488``); empty when equal.

    Examples
    --------
    >>> differences({"n": 3, "x": 0.1234567}, {"n": 3, "x": 0.12345671})
    []
    >>> differences({"n": 3}, {"n": 4})
    ['n: 3 != 4']
    """
    skip = frozenset(ignore)
    out: list[str] = []

    def walk(x: Any, y: Any, path: str) -> None:
        here = path or "(top)"
        if isinstance(x, float) or isinstance(y, float):
            if (
                isinstance(x, bool)
                or isinstance(y, bool)
                or not isinstance(x, (int, float))
                or not isinstance(y, (int, float))
            ):
                out.append(f"{here}: {x!r} != {y!r}")
            elif not (math.isnan(x) and math.isnan(y)) and not abs(x - y) <= atol + rtol * max(abs(x), abs(y)):
                out.append(f"{here}: {x!r} != {y!r}")
        elif isinstance(x, dict) and isinstance(y, dict):
            keys = [k for k in dict.fromkeys([*x, *y]) if k not in skip]
            for k in keys:
                if k not in x or k not in y:
                    out.append(f"{path + '.' if path else ''}{k}: only in {'the first' if k in x else 'the second'}")
                else:
                    walk(x[k], y[k], f"{path}.{k}" if path else str(k))
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                out.append(f"{here}: {len(x)} items != {len(y)} items")
            for i, (u, v) in enumerate(zip(x, y)):
                walk(u, v, f"{path}[{i}]")
        elif type(x) is not type(y) or x != y:
            out.append(f"{here}: {x!r} != {y!r}")

    walk(a, b, where)
    return out


def compare_runs(
    first: str | Path,
    second: str | Path,
    files: Sequence[str] | None = None,
    *,
    rtol: float = FLOAT_RTOL,
    ignore: Iterable[str] = VOLATILE_FIELDS,
    fields: Sequence[str] | None = None,
) -> list[str]:
    """Where two run folders disagree, file by file, in the sense of :func:`differences`.

    ``files`` are paths relative to the folders (default: ``metrics.jsonl`` and every ``answers/``,
    ``pseudo_labels/`` and ``predictions/`` file of either); files of :data:`ROUNDING_STEP` add their
    rounding step to ``rtol``; ``fields`` keeps only those top-level keys of each row. Lines like
    ``metrics.jsonl: [2].test.all.rouge_l: 0.31 != 0.32``; empty when the runs agree.
    """
    first, second = Path(first), Path(second)
    if files is None:
        found = {"metrics.jsonl"}
        for folder in (first, second):
            for sub in ("answers", "pseudo_labels", "predictions"):
                found.update(str(p.relative_to(folder)) for p in (folder / sub).glob("*.jsonl"))
        files = sorted(found)
    out: list[str] = []
    for name in files:
        a, b = first / name, second / name
        if not (a.exists() and b.exists()):
            out.append(
                f"{name}: only in {first if a.exists() else second}"
                if a.exists() or b.exists()
                else f"{name}: in neither"
            )
            continue
        ra, rb = read_records(a), read_records(b)
        if fields is not None:
            ra, rb = _only(ra, fields), _only(rb, fields)
        atol = ROUNDING_STEP.get(Path(name).parts[0], 0.0) * (1 + 1e-9)
        out += [f"{name}: {d}" for d in differences(ra, rb, rtol=rtol, atol=atol, ignore=ignore)]
    return out


def _only(
    records: list[dict[str, Any]] | dict[str, Any], fields: Sequence[str]
) -> list[dict[str, Any]] | dict[str, Any]:
    """``records`` with only ``fields`` in each row (or in the one object)."""
    if isinstance(records, dict):
        return {k: records[k] for k in fields if k in records}
    return [{k: r[k] for k in fields if k in r} for r in records]
