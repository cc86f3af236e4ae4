"""Open the built documentation site in headless Chromium: every page loads, every link resolves, figures draw.

    python tools/check_site.py docs/_build/html --screenshots /tmp/docs-shots [--chromium /usr/bin/chromium]

Serves the folder on localhost, blocks every request that leaves it (the site must work offline),
visits every page, checks that each local link and anchor resolves and that every plotly figure on a
page was drawn (its SVG is there), and keeps screenshots of the pages a student reads first (the
index, the notebooks, the guide, the glossary, notebooks 01, 02 and 07), the results page and the
first notebook page that draws a figure; it prints how long each of those took to load and draw.
Needs the ``browser`` extra (playwright) and a Chromium.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--disable-sync",
    "--no-first-run",
]  # playwright gives every launch a fresh, empty profile (user data dir)
FIRST_READ = (
    "index.html",
    "notebooks.html",
    "workshop.html",
    "glossary.html",
    "notebooks/01_quickstart.html",
    "notebooks/02_local_finetuning.html",
    "notebooks/07_communication_costs.html",
    "results.html",
)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def check(site: Path, shots: Path | None, chromium: str) -> list[str]:
    from playwright.sync_api import sync_playwright

    server, base = serve(site)
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if "_static" not in p.parts)
    problems: list[str] = []
    blocked: set[str] = set()
    drawn_notebook = None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def route(r):
            if r.request.url.startswith(base):
                return r.continue_()
            blocked.add(r.request.url)
            return r.abort()

        page.route("**/*", route)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        for rel in pages:
            errors.clear()
            t0 = time.perf_counter()
            response = page.goto(base + rel, wait_until="load")
            if response is None or response.status != 200:
                problems.append(f"{rel}: status {response.status if response else 'none'}")
                continue
            figures = page.locator(".plotly-graph-div")
            n_fig = figures.count()
            if n_fig:
                try:
                    page.wait_for_function(
                        "n => document.querySelectorAll('.plotly-graph-div svg.main-svg').length >= n",
                        arg=n_fig,
                        timeout=20000,
                    )
                except Exception:
                    problems.append(f"{rel}: {n_fig} plotly figures, not all drawn")
            seconds = time.perf_counter() - t0
            problems += [f"{rel}: script error {e}" for e in errors]
            ids = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
            for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
                url, frag = urldefrag(href)
                if not url.startswith(base):
                    continue
                target = urlsplit(url).path.lstrip("/") or "index.html"
                if target == rel and frag and frag not in ids:
                    problems.append(f"{rel}: link to missing anchor #{frag}")
                elif not (site / target).exists():
                    problems.append(f"{rel}: link to missing {target}")
            if shots is not None:
                wanted = rel in FIRST_READ
                if drawn_notebook is None and rel.startswith("notebooks/") and n_fig:
                    drawn_notebook = rel
                    wanted = True
                if wanted:
                    shots.mkdir(parents=True, exist_ok=True)
                    if n_fig and rel not in FIRST_READ:  # a page read first is shown from its top
                        figures.first.scroll_into_view_if_needed()
                        page.wait_for_timeout(300)
                    page.screenshot(path=str(shots / (rel.replace("/", "_") + ".png")), full_page=False)
                    print(f"{rel}: loaded with its {n_fig} figures drawn in {seconds:.1f} s")
        browser.close()
    server.shutdown()
    problems += [f"request leaving the site blocked: {u}" for u in sorted(blocked)]
    if shots is not None and drawn_notebook is None:
        problems.append("no notebook page drew a plotly figure (was the site built with the notebooks executed?)")
    print(f"checked {len(pages)} pages; notebook page with a drawn figure: {drawn_notebook}")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("site", type=Path, nargs="?", default=Path("docs/_build/html"))
    p.add_argument("--screenshots", type=Path, default=None)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args(argv)
    problems = check(args.site, args.screenshots, args.chromium)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
