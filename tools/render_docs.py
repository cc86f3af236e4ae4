"""Write the documentation's rendered pages and the rendered blocks of the README, the docs and the presets from the shipped run folders and the measured times.

python tools/render_docs.py           # write docs/_generated/*.md and the <!-- rendered: NAME --> blocks
python tools/render_docs.py --check   # exit 1 and name the files that differ (what tests/test_docs.py runs)
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rendered() -> dict[Path, str]:
    """Path (relative to the repository) -> the text it should hold."""
    sys.path.insert(0, str(ROOT / "tools"))  # docpages.py beside this file: the documentation's own code
    import docpages

    out = docpages.render_pages()
    for rel in docpages.files_with_blocks():  # the README, docs pages and presets with <!-- rendered: NAME --> blocks
        out[rel] = docpages.render_blocks((ROOT / rel).read_text())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when a committed file differs")
    args = p.parse_args(argv)
    stale = []
    from fedcofit_lite.analysis import leaderboard  # the corpus's embeddings the leaderboard reads: recorded, or here

    leaderboard.USED.clear()  # what this rendering reads, not what earlier work in this process did
    for rel, text in rendered().items():
        path = ROOT / rel
        old = path.read_text() if path.exists() else ""
        if old == text:
            continue
        stale.append(rel)
        if args.check:
            diff = difflib.unified_diff(old.splitlines(), text.splitlines(), str(rel), "rendered", lineterm="", n=1)
            print("\n".join(list(diff)[:40]))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {rel}")
    if args.check and leaderboard.unshipped():
        stale.append(leaderboard.SHIPPED.relative_to(ROOT))
        print(f"the leaderboard embedded {len(leaderboard.unshipped())} rounds on this machine: ship them")
    elif not args.check:
        added, removed = leaderboard.ship_embeddings()
        for name in added + removed:
            print(f"{'wrote' if name in added else 'removed'} {leaderboard.SHIPPED.relative_to(ROOT) / name}")
    if args.check and stale:
        print(f"stale: {', '.join(map(str, stale))}; run `python tools/render_docs.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
