"""The glossary's words in the notebooks: each notebook links a word to ``glossary.md`` where it first uses it.

``docs/glossary.md`` is the page; ``notebooks/glossary.md`` links to it, so that the link resolves both in
JupyterLab (rooted in ``notebooks/``) and on the site (where the notebooks are ``docs/notebooks/``).

python tools/glossary.py           # add the missing links (the first use of each word in each notebook)
python tools/glossary.py --check   # exit 1 and name the first uses that are not links (tests/test_workshop.py)

The first use is the first match in the notebook's markdown cells, in order, outside headings, code
and other links. ``TERMS`` maps each heading's anchor in the glossary to the words that use it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "docs" / "glossary.md"
LINK_TARGET = "glossary.md#{anchor}"  # relative to the notebooks: JupyterLab's root and the site's notebooks/

# anchor -> the words that use it (case-sensitive where an abbreviation is meant, as written in the notebooks)
TERMS: dict[str, str] = {
    "adapter": r"\b[Aa]dapters?\b",
    "agreement": r"\b[Aa]greement\b",
    "centralized": r"\b[Cc]entralized\b",
    "clusterer": r"\b[Cc]lusterers?\b",
    "cohesion": r"\b[Cc]ohesion\b",
    "competence-signal": r"\b[Cc]ompetence signals?\b",
    "consensus-rule": r"\b[Cc]onsensus rules?\b",
    "embedding": r"\b[Ee]mbeddings?\b",
    "exact-match": r"\b[Ee]xact match\b",
    "fedavg": r"\bFedAvg\b(?!-LoRA)",
    "fedavg-lora": r"\bFedAvg-LoRA\b",
    "ffa-lora": r"\bFFA-LoRA\b",
    "gap-closed": r"\bgap closed\b",
    "interval": r"\b95% (?:bootstrap )?intervals?\b|\b[Ii]ntervals?\b",
    "local-stage": r"\blocal stage\b",
    "lora": r"(?<![-\w])LoRA\b(?!-)",
    "medoid": r"\b[Mm]edoids?\b",
    "membership-inference": r"\b[Mm]embership inference\b",
    "paired-difference": r"\bpaired differences?\b",
    "preset": r"\b[Pp]resets?\b",
    "pseudo-label": r"\b[Pp]seudo-labels?\b",
    "public-prompt": r"\b[Pp]ublic(?:, unlabelled)? prompts?\b",
    "reference-run": r"\breference runs?\b",
    "round": r"\b[Rr]ounds?\b",
    "run-folder": r"\brun folders?\b",
    "seed": r"\b[Ss]eeds?\b",
}
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
_SKIP = re.compile(r"(?m:^#{1,6} [^\n]*$)|(?s:```.*?```)|`[^`\n]*`|<[^>\n]+>")  # headings, code, HTML tags


def anchors(glossary: Path = GLOSSARY) -> set[str]:
    """The anchors of the glossary's word headings (``## FedAvg-LoRA`` -> ``fedavg-lora``)."""
    heads = re.findall(r"^## (.+)$", glossary.read_text(), re.M)
    return {re.sub(r"[^\w-]", "", h.strip().lower().replace(" ", "-")) for h in heads}


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        chars[a:b] = " " * (b - a)
    return "".join(chars)


def first_uses(cells: list[str]) -> dict[str, tuple[int, int, int, bool]]:
    """Per anchor: (cell, start, end, linked) of the word's first use in the cells, outside headings and code."""
    found: dict[str, tuple[int, int, int, bool]] = {}
    for k, text in enumerate(cells):
        links = list(_LINK.finditer(text))
        hidden = [m.span() for m in _SKIP.finditer(text)]
        hidden += [(m.start(2) - 2, m.end()) for m in links]  # a link's target: "](...)"
        plain = _blank(text, hidden)
        for anchor, pattern in TERMS.items():
            if anchor in found:
                continue
            m = re.search(pattern, plain)
            if not m:
                continue
            link = next((L for L in links if L.start(1) <= m.start() < L.end(1)), None)
            if link is not None and link.group(2) != LINK_TARGET.format(anchor=anchor):
                continue  # inside another link (another word's, or a page's): the first use is further on
            found[anchor] = (k, m.start(), m.end(), link is not None)
    return found


def markdown_cells(path: Path) -> tuple[dict, list[int], list[str]]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    idx = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"]
    return nb, idx, ["".join(nb["cells"][i]["source"]) for i in idx]


def unlinked(path: Path) -> list[str]:
    """The words whose first use in the notebook at ``path`` is not a link to the glossary."""
    _, _, cells = markdown_cells(path)
    return [
        f"{path.name}: {cells[k][a:b]!r} (cell {k} of the markdown) -> {LINK_TARGET.format(anchor=anchor)}"
        for anchor, (k, a, b, linked) in first_uses(cells).items()
        if not linked
    ]


def link(path: Path) -> int:
    """Link the first use of every word in the notebook at ``path``; the number of links added."""
    nb, idx, cells = markdown_cells(path)
    added = 0
    while True:  # one link at a time: each changes the offsets of the words after it
        todo = [(k, a, b, anchor) for anchor, (k, a, b, linked) in first_uses(cells).items() if not linked]
        if not todo:
            break
        k, a, b, anchor = min(todo)
        text = cells[k]
        cells[k] = f"{text[:a]}[{text[a:b]}]({LINK_TARGET.format(anchor=anchor)}){text[b:]}"
        added += 1
    for i, text in zip(idx, cells):
        nb["cells"][i]["source"] = text.splitlines(keepends=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return added


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 when a first use is not a link")
    p.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    args = p.parse_args(argv)
    missing = sorted(set(TERMS) - anchors())
    if missing:
        print(f"the glossary has no heading for {missing}", file=sys.stderr)
        return 1
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.check:
        problems = [line for p_ in paths for line in unlinked(p_)]
        print("\n".join(problems))
        return 1 if problems else 0
    for p_ in paths:
        print(f"{p_.name}: {link(p_)} links")
    return 0


if __name__ == "__main__":
    sys.exit(main())
