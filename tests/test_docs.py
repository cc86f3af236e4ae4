"""The documentation: its numbers match the run folders, the site builds offline with every link resolving.

The build here does not execute the notebooks (``make docs`` does, cached); it
is the same Sphinx build as ``make docs-fast``, with warnings as errors.
"""

from __future__ import annotations

import html.parser
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_rendered_page_matches_the_run_folders(capsys):
    """No number is typed by hand: the committed pages are what the renderer makes of the shipped runs."""
    rc = _tool("render_docs").main(["--check"])
    assert rc == 0, "a page differs from its run folders:\n" + capsys.readouterr().out


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.remote: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        for key in ("src", "href"):
            url = a.get(key) or ""
            if tag in ("script", "link", "img", "iframe") and url.startswith(("http:", "https:", "//")):
                self.remote.append(url)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {"FEDCOFIT_DOCS_EXECUTE": "off", "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **env},
    )
    assert proc.returncode == 0, f"the site does not build cleanly (make docs-fast):\n{proc.stderr[-6000:]}"
    return out


def test_the_site_builds_and_every_internal_link_resolves(site):
    pages = {p: _parse(p) for p in site.rglob("*.html")}
    broken = []
    for page, parsed in pages.items():
        for href in parsed.links:
            parts = urlsplit(href)
            if parts.scheme or href.startswith(("mailto:", "//")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {href} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: {href} (no such anchor)")
    assert not broken, "broken links:\n" + "\n".join(sorted(set(broken))[:40])


def test_the_site_loads_nothing_from_the_network(site):
    remote = {url for p in site.rglob("*.html") for url in _parse(p).remote}
    assert not remote, f"pages load from the network (the site must work offline): {sorted(remote)[:10]}"
    assert (site / "_static" / "plotly.min.js").exists(), "plotly.js ships with the site (from the plotly package)"


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_the_readme_is_a_front_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 200, "the README is a front page: at most 200 lines; the rest goes to docs/"
    for must in ("Beyond Parameter Aggregation", "Abourayya", "Kleesiek", "Kamp", "2605.11857", "make lab", "make run"):
        assert must in text, f"the README names {must!r}"
    for target in re.findall(r"\]\(((?:docs|notebooks)/[^)#\s]+)", text):
        assert (ROOT / target).exists(), f"the README links to {target}, which does not exist"


TRACKER = re.compile(r"(?<![\w&#/])#\d{1,3}\b(?!-)|\b[Ii]ssues? #?\d+")


def test_no_tracker_numbers_in_what_users_read():
    files = subprocess.run(
        ["git", "ls-files", "README.md", "docs", "configs", "notebooks/*.ipynb", "notebooks/*.md", "notebooks/*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    found = []
    for name in files:
        path = ROOT / name
        if path.suffix not in (".md", ".ipynb", ".yaml", ".py", ".json") or path.is_symlink() or not path.is_file():
            continue
        for m in TRACKER.finditer(path.read_text(encoding="utf-8")):
            found.append(f"{name}: {m.group(0)!r}")
    assert not found, "tracker numbers belong in CHANGELOG.md, not in what users read:\n" + "\n".join(found[:20])


def test_citation_and_licence():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"].startswith("1.2")
    assert cff["license"] == "Apache-2.0"
    text = (ROOT / "CITATION.cff").read_text()
    assert "2605.11857" in text and "Little is Enough" in text, "cite the paper and Federated Co-Training"
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License"), "LICENSE holds the Apache-2.0 text"


def test_the_study_commands_are_portable_and_wrapped_between_whole_options(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tools"))  # as render_docs imports it
    import docpages

    recorded = "sweep --run-dir=/w/runs/study/cpu --reuse /home/u/runs/study/budget --out /d/myruns/study/z"
    assert (
        docpages._portable(recorded)
        == "sweep --run-dir=runs/study/cpu --reuse runs/study/budget --out /d/myruns/study/z"
    )
    command = "python -m fedcofit_lite sweep " + " ".join(f"--option{i} value{i}" for i in range(12))
    lines = docpages._wrapped(command, 60).split(" \\\n")
    assert len(lines) > 1 and all(len(line) <= 60 for line in lines)
    assert " ".join(line.strip() for line in lines) == command  # nothing lost, nothing added
    assert all(any(f"--option{i} value{i}" in line for line in lines) for i in range(12))  # an option keeps its value


def test_the_findings_stop_at_a_study_part_with_fewer_seeds_than_a_headline_needs(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    import docpages

    parts = [part for part, _ in docpages.FINDINGS]
    assert docpages.HEADLINE_SEEDS == 5 and "rounds" in parts
    complete = {part: docpages._complete_seeds(part) for part in parts}
    assert min(complete.values()) >= docpages.HEADLINE_SEEDS, complete  # what the README's findings read today
    monkeypatch.setattr(docpages, "_complete_seeds", lambda part: 3 if part == "rounds" else complete[part])
    with pytest.raises(SystemExit, match="rounds has 3: run each one's next slices"):
        docpages._findings.__wrapped__()  # not the cached findings of the shipped folders
    # what reads a part is in the table the check runs over: taking its entry out takes its findings out
    said = []
    table = tuple((part, lambda part: said.append(part) or []) for part in parts if part != "rounds")
    monkeypatch.setattr(docpages, "FINDINGS", table)
    assert docpages._findings.__wrapped__() == () and "rounds" not in said and len(said) == len(parts) - 1
