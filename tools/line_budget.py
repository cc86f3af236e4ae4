"""How many of the package's lines the features it had at a base commit take, and how many later work added.

    python tools/line_budget.py      # -v lists what is counted as added, -c checks that the lists are complete

Lines are ``wc -l`` of ``fedcofit_lite/**/*.py`` in ruff's layout; the base is ac78af1, the commit the layout
review read. What later issues added (the competence signals and rules, the rule benchmark, the two-level
intervals and the study's sweep tools, the workshop's helpers) is listed by hand below: whole modules the base
did not have, and functions, classes and methods added to modules it had. Everything else counts as the base's
features, including the names that restructure them (the typed specs, the one estimator builder, the family
type with its checker) and lines later work added inside a function the base had: the base's share is an
upper bound. ``-c`` lists every name the base did not define that the lists leave out, to be judged by hand.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = "ac78af1"
ADDED_MODULES = {"competence", "signals", "leaderboard", "leaderplots"}
# module stem -> functions and classes (Class.method for a method) that later issues added to a module the base had
ADDED = {
    "audit": {"family_inference"},
    "compare": {"family_gaps"},
    "frontier": {
        "Answer",
        "ArchitectureRow",
        "SweepScores.beats",
        "architecture_rows",
        "TransferRow",
        "_nanmean",
        "_paired",
        "_tags",
        "answer",
        "difference_rows",
        "transfer_rows",
    },
    "replay": {
        "_seed_folders",
        "answer_signals",
        "derive_closeness",
        "format_signal_power",
        "signal_power",
        "signal_power_of",
    },
    "stats": {"_mann_whitney", "probability_of_improvement", "resample"},
    "sweepreport": {"REFERENCE_NAMES", "answer_table", "architecture_table", "difference_table", "transfer_table"},
    "cli": {"_leaderboard"},
    "config": {"CompetenceConfig"},
    "sweep": {"_cells_in", "_pool_of_same_records", "reuse_cells"},
    "methods": {"_check_signals"},
    "models": {"device_name"},
    "server": {"ConsensusServer.asks"},
    "lesson": {"byte_ratios", "machine_words", "preset_caveat", "ratio_steps", "study_case", "timing_words"},
}


def _defined(src: str) -> set[str]:
    """Every function, class and module-level assignment name in ``src``."""
    names = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def base_names(rev: str = BASE) -> set[str]:
    """The names the package defined at ``rev``."""
    git = ["git", "-C", str(ROOT)]
    files = subprocess.run([*git, "ls-tree", "-r", "--name-only", rev, "fedcofit_lite"], capture_output=True, text=True)
    names: set[str] = set()
    for f in (f for f in files.stdout.split() if f.endswith(".py")):
        names |= _defined(subprocess.run([*git, "show", f"{rev}:{f}"], capture_output=True, text=True).stdout)
    return names


def definitions(path: Path) -> list[tuple[str, int]]:
    """(name, lines) of every function and class of a module, methods as ``Class.method``, decorators included."""
    out = []

    def walk(body: list[ast.stmt], owner: str = "") -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                start = min([d.lineno for d in node.decorator_list] + [node.lineno])
                out.append((owner + node.name, node.end_lineno - start + 1))
                if isinstance(node, ast.ClassDef):
                    walk(node.body, node.name + ".")

    walk(ast.parse(path.read_text()).body)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="list what is counted as added")
    parser.add_argument("-c", "--check", action="store_true", help="list new names the lists leave out")
    args = parser.parse_args()
    total, rows, folders, unlisted = 0, [], {}, []
    base = base_names() if args.check else set()
    for path in sorted((ROOT / "fedcofit_lite").rglob("*.py")):
        n = len(path.read_text().splitlines())
        total += n
        folder = path.parent.name if path.parent.name != "fedcofit_lite" else "(top level)"
        folders[folder] = folders.get(folder, 0) + n
        if path.stem in ADDED_MODULES:
            rows.append((n, f"{path.stem} (module)"))
            continue
        for name, lines in definitions(path):
            if name in ADDED.get(path.stem, ()):
                rows.append((lines, f"{path.stem}.{name}"))
            elif args.check and name.rpartition(".")[2] not in base:
                unlisted.append(f"{path.stem}.{name} ({lines} lines)")
    later = sum(n for n, _ in rows)
    print(f"package: {total:,} lines; " + ", ".join(f"{k} {v:,}" for k, v in sorted(folders.items())))
    print(f"added after {BASE}: {later:,} lines; {BASE}'s features: {total - later:,} lines")
    for n, name in sorted(rows, reverse=True) if args.verbose else ():
        print(f"{n:5d}  {name}")
    if unlisted:
        print("not defined at the base and not listed as added (counted as the base's):", ", ".join(unlisted))


if __name__ == "__main__":
    main()
