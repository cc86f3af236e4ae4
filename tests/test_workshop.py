"""The workshop as a class meets it: times from a measurement, an order that holds, words defined where first used.

Pure text checks of what users read (README, docs, notebooks' markdown, presets' comments) and of the
instructor's plan (``docs/_data/agenda.json``) against the notebooks' own prerequisite lines.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
AGENDA = json.loads((ROOT / "docs" / "_data" / "agenda.json").read_text())


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cells(path: Path, kind: str) -> list[str]:
    return [
        "".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == kind
    ]


# -- times: measured, never typed -----------------------------------------------------------------

# A duration a person wrote: a number with a unit of time, or a vague amount of minutes or hours.
DURATION = re.compile(
    r"\b\d+(?:[.,]\d+)?\s?(?:CPU[- ])?(?:s|secs?|seconds?|min|mins|minutes?|h|hrs?|hours?)\b"
    r"|\b(?:a few|several|tens of|a couple of|many)\s+(?:CPU[- ])?(?:seconds|minutes|hours)\b"
    r"|\b(?:an?|half an) (?:minute|hour)\b",
    re.I,
)
RENDERED = re.compile(r"<!-- rendered: [\w-]+ -->.*?<!-- /rendered -->", re.S)


def _user_text() -> dict[str, list[str]]:
    """Each user-facing file's texts: the README and docs pages, the notebooks' markdown, the presets' comments."""
    names = subprocess.run(
        ["git", "ls-files", "README.md", "docs/*.md", "configs/*.yaml", "notebooks/*.md", "notebooks/*.ipynb"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    out = {}
    for name in names:
        path = ROOT / name
        if path.is_symlink() or not path.is_file() or "_generated" in name:
            continue
        if path.suffix == ".ipynb":
            out[name] = _cells(path, "markdown")
        elif path.suffix == ".yaml":
            out[name] = ["\n".join(line.split("#", 1)[1] for line in path.read_text().splitlines() if "#" in line)]
        else:
            out[name] = [path.read_text()]
    return out


def test_no_time_is_typed_by_hand():
    """Every duration users read is rendered from a measurement (docs/_data/timings.json, a reference's manifest)."""
    texts = _user_text()
    if not texts:
        pytest.skip("not a git checkout")
    found = []
    for name, parts in texts.items():
        for text in parts:
            text = RENDERED.sub("", text)  # what tools/render_docs.py writes from the measurements
            for m in DURATION.finditer(text):
                line = text[: m.start()].count("\n") + 1
                found.append(f"{name}:{line}: {text[max(0, m.start() - 40) : m.end() + 10]!r}")
    assert not found, (
        "a time typed by hand: render it from docs/_data/timings.json (tools/measure_times.py measures it) or a "
        "reference's manifest, with a <!-- rendered: NAME --> block (tools/docpages.py), or say it without a "
        "number:\n" + "\n".join(found[:30])
    )


def test_the_duration_pattern_finds_what_people_type():
    typed = [
        "about 8 min",
        "2 min",
        "takes 36 min",
        "1,412 s",
        "3.5 h",
        "several minutes",
        "tens of minutes",
        "a minute",
    ]
    assert all(DURATION.search(t) for t in typed)
    fine = ["2 seeds", "16 heads", "1 Mbit/s", "a 3-hour agenda", "3 x 1", "r=16", "in minutes"]
    assert not any(DURATION.search(t) for t in fine)


def test_the_timings_file_says_where_and_how_each_time_was_measured():
    data = json.loads((ROOT / "docs" / "_data" / "timings.json").read_text())
    for t in data["timings"]:
        assert t["seconds"] > 0 and t["date"] and t["machine"], t["key"]
        if t.get("how") == "tools/measure_times.py":
            assert {"cpu", "cores", "bf16", "torch"} <= set(t["machine"]), t["key"]
            assert t["load_1min"] >= 0 and t["cpu_seconds"] >= 0 and t["commit"], t["key"]
        else:
            assert t.get("how") == "by hand", f"{t['key']}: a record says how it was measured"


# -- the order of the class ------------------------------------------------------------------------


def prerequisites(path: Path) -> list[str]:
    """The notebooks named in the first sentence after **Prerequisites** in the notebook's first cell."""
    first = _cells(path, "markdown")[0]
    m = re.search(r"\*\*Prerequisites\*\*:\s*(.*?)(?:\.\s|\.$|\n\n|$)", first, re.S)
    assert m, f"{path.name}: state the prerequisites at the top (**Prerequisites**: notebooks 01 and 02.)"
    return re.findall(r"\b(0[1-9]|1[0-2])\b", m.group(1))


CORE = [nb for slot in AGENDA["core"] for nb in slot["notebooks"]]
TAKE_HOME = [t["notebook"] for t in AGENDA["take_home"]]


def test_the_agenda_covers_every_notebook_once():
    every = [p.name[:2] for p in NOTEBOOKS]
    planned = CORE + TAKE_HOME
    assert sorted(planned) == sorted(every), (
        f"the agenda (docs/_data/agenda.json) must place every notebook once, on the core path or take-home: "
        f"missing {sorted(set(every) - set(planned))}, twice {sorted({n for n in planned if planned.count(n) > 1})}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_prerequisite_comes_earlier_on_the_core_path(path):
    nb = path.name[:2]
    for pre in prerequisites(path):
        assert pre in CORE, f"{path.name} builds on {pre}, which is not on the agenda's core path"
        if nb in CORE:
            assert CORE.index(pre) < CORE.index(nb), f"{path.name} builds on {pre}, which comes later on the core path"


def test_the_prerequisite_lines_are_read_as_written():
    by = {p.name[:2]: prerequisites(p) for p in NOTEBOOKS}
    assert by["01"] == [] and by["03"] == ["01", "02"] and by["12"] == ["05", "06"]


# -- words, and exercises --------------------------------------------------------------------------


def test_each_notebook_links_a_word_to_the_glossary_where_it_first_uses_it():
    glossary = _tool("glossary")
    assert set(glossary.TERMS) <= glossary.anchors(), "every linked word has a heading in notebooks/glossary.md"
    unlinked = [line for path in NOTEBOOKS for line in glossary.unlinked(path)]
    assert not unlinked, "run `python tools/glossary.py` to link these first uses:\n" + "\n".join(unlinked[:20])
    assert (ROOT / "docs" / "glossary.md").resolve() == (ROOT / "notebooks" / "glossary.md").resolve()


def test_the_glossary_finds_a_first_use_and_skips_code_and_headings():
    glossary = _tool("glossary")
    cells = ["# A medoid heading\n\nSee `medoid` in code.", "The medoid of a cluster, then another medoid."]
    k, start, end, linked = glossary.first_uses(cells)["medoid"]
    assert (k, cells[k][start:end], linked) == (1, "medoid", False)
    done = ["The [medoid](glossary.md#medoid) of a cluster."]
    assert glossary.first_uses(done)["medoid"][3] is True


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_an_executed_solution(path):
    text = "\n".join(_cells(path, "markdown"))
    exercises = text[text.lower().index("## exercises") :]
    asked = set(re.findall(r"^\*\*(\d+)\.\*\*", exercises, re.M)) | set(re.findall(r"^(\d+)\. \*\*", exercises, re.M))
    solved = {m for code in _cells(path, "code") for m in re.findall(r"^# Solution (\d+)", code, re.M)}
    assert asked and asked == solved, f"{path.name}: exercises {sorted(asked)}, executed solutions {sorted(solved)}"
    before = text[: text.lower().index("## exercises")]
    assert not re.search(r"\bExercise:", before), f"{path.name}: an exercise outside the Exercises section"
