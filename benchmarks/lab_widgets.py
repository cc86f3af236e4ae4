"""Open a notebook in a real JupyterLab, in a real (headless) Chromium, and check that its widgets respond.

What it does, step by step:

1. copy ``notebooks/*.ipynb`` to a scratch folder (JupyterLab autosaves, and the
   committed notebooks must stay without outputs) and link ``runs/`` into it, so
   the workshop's finished runs are reused exactly as in a lab session;
2. start ``jupyter lab`` on that folder with ``$FEDCOFIT_PRESET`` set;
3. open the notebook in Chromium, "Run All Cells", wait for the kernel to go
   idle, and fail on any error output;
4. count the plotly figures the page drew (at least one per plotly output of
   the cells) and the ipywidgets it shows;
5. move every widget with the mouse: in the cluster explorer (notebook 05)
   drag the ``min_agreement`` slider (the kept count must change on the run's
   real answers) and the threshold slider, pick another prompt and another
   algorithm; in the cost explorer (07) pick another model, drag the rank,
   prompts and answer-length sliders and tick the directions checkbox. Each
   time, wait for what that move changes (a kept count, the knob's value, the
   algorithm the summary names) and report how long the redraw took;
6. save (the scratch copy) and shut the kernel down, then the next notebook.

It prints those figures as JSON (``--out`` also writes them, after each
notebook) and exits non-zero when a step of any notebook failed. It needs a
Chromium or Chrome (``--chromium``, default: the first of chromium,
chromium-browser, google-chrome on PATH) and the ``lab`` and ``browser``
extras (``make lab-check`` installs them). Not part of ``make test``: a clean
CI machine has no browser.

    make lab-check                                    # notebook 05, preset $FEDCOFIT_PRESET (default cpu)
    FEDCOFIT_PRESET=small make lab-check ARGS="--notebook all --out lab.json --screenshots shots"
    .venv/bin/python benchmarks/lab_widgets.py --preset small --notebook 07
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(ROOT))
from fedcofit_lite.protocol.cluster import REGISTRY  # noqa: E402

# A clean headless Chromium on a machine without outside network: no GPU, no QUIC, no background traffic (playwright
# gives each launch a fresh profile and runs it without the sandbox).
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# JavaScript run in the page; `app` is JupyterLab's application object
# (exposed by --LabApp.expose_app_in_browser).
JS_NOTEBOOK_READY = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!(w && w.content && w.content.widgets && k && k.status === 'idle');
}"""
JS_RUN_STATE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  const errors = [];
  let plotly = 0;
  cells.forEach((c, i) => {
    const outs = c.model.outputs.toJSON();
    outs.filter(o => o.output_type === 'error').forEach(o => errors.push(`cell ${i + 1}: ${o.ename}: ${o.evalue}`));
    plotly += outs.filter(o => o.data && o.data['application/vnd.plotly.v1+json']).length;
  });
  return {
    idle: w.sessionContext.session.kernel.status === 'idle',
    executed: cells.filter(c => c.model.executionCount !== null).length,
    n_code: cells.length,
    errors: errors,
    plotly_outputs: plotly,  // figures in cell outputs (those inside widgets are not counted here)
  };
}"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--notebook",
        action="append",
        default=None,
        help="notebook in notebooks/ to open and run: its number (05), its name, or 'all' (repeatable; default 05)",
    )
    p.add_argument(
        "--preset",
        default=os.environ.get("FEDCOFIT_PRESET") or "cpu",
        help="$FEDCOFIT_PRESET for the kernels (small, cpu, ...); default: $FEDCOFIT_PRESET, else cpu",
    )
    p.add_argument("--chromium", default=None, help="Chromium/Chrome executable (default: found on PATH)")
    p.add_argument(
        "--timeout", type=float, default=4 * 3600.0, help="seconds allowed for Run All Cells of one notebook"
    )
    p.add_argument("--screenshots", type=Path, default=None, help="folder for before/after PNG screenshots")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    return p.parse_args(argv)


def find_chromium(given: str | None) -> str:
    """The browser executable, or a clear error saying how to provide one."""
    candidates = [given] if given else ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
    for name in candidates:
        path = shutil.which(name) or (name if name and Path(name).is_file() else None)
        if path:
            return path
    sys.exit(
        f"lab_widgets: no Chromium/Chrome found (tried {candidates}). Install one (e.g. `apt install chromium`) "
        "or pass --chromium /path/to/chrome."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scratch_copy(workdir: Path) -> None:
    """The notebooks in ``workdir``, with ``runs/`` linked to the workshop's runs (reused, never copied)."""
    for nb in [*NOTEBOOKS.glob("*.ipynb"), NOTEBOOKS / "glossary.md"]:  # the glossary the notebooks link to
        shutil.copy(nb, workdir / nb.name)
    (NOTEBOOKS / "runs").mkdir(exist_ok=True)
    (workdir / "runs").symlink_to(NOTEBOOKS / "runs", target_is_directory=True)


def start_lab(workdir: Path, port: int, token: str, preset: str, log_path: Path) -> subprocess.Popen:
    """``jupyter lab`` on ``workdir``; returns once its REST API answers."""
    env = {**os.environ, "FEDCOFIT_PRESET": preset}
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--ServerApp.root_dir={workdir}",
        f"--IdentityProvider.token={token}",
        "--LabApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI runners often run as root; jupyter refuses that by default
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    for _ in range(120):
        if proc.poll() is not None:
            tail = "\n".join(log_path.read_text().splitlines()[-10:])
            sys.exit(f"lab_widgets: jupyter lab exited with {proc.returncode}; its log ends with:\n{tail}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    sys.exit(f"lab_widgets: jupyter lab did not answer within 60 s; its log ends with:\n{log_path.read_text()[-2000:]}")


def run_all(page, timeout: float) -> dict:
    """Run All Cells and wait for the kernel to finish; returns the final run state and its duration."""
    page.wait_for_function(JS_NOTEBOOK_READY, timeout=120_000)
    t0 = time.perf_counter()
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    time.sleep(1.0)  # let the first cell get queued before polling for idle
    deadline = t0 + timeout
    while True:
        state = page.evaluate(JS_RUN_STATE)
        if state["errors"] or (state["idle"] and state["executed"] == state["n_code"]):
            break
        if time.perf_counter() > deadline:
            raise TimeoutError(
                f"Run All Cells did not finish in {timeout:.0f} s ({state['executed']}/{state['n_code']} cells ran)"
            )
        time.sleep(0.5)
    state["seconds"] = time.perf_counter() - t0
    return state


def summary_text(page) -> str:
    """The cluster explorer's summary line ("kmeans, min_silhouette 0.1, min_agreement 0.00. All prompts: k/n kept, ...")."""
    return page.locator(".widget-output", has_text="All prompts:").last.locator("text=/All prompts:/").last.inner_text()


def named_fit(text: str) -> tuple[str, str, float]:
    """The algorithm, its knob and the knob's value the summary line names ("kmeans, min_silhouette 0.1, ...")."""
    m = re.match(r"\s*(\w+), (\w+) ([-\d.e+]+), min_agreement", text)
    if not m:
        raise RuntimeError(f"the explorer's summary does not name its fit: {text!r}")
    return m.group(1), m.group(2), float(m.group(3))


def cost_table_text(page) -> str:
    """The cost explorer's table of bytes per round."""
    return page.locator(".widget-html", has_text="bytes per round").last.inner_text()


def wait_for(read, done, what: str, before: str, timeout: float = 120.0) -> tuple[str, float]:
    """Block until ``done(read())`` holds; the settled text and the seconds it took.

    ``done`` states what the move must change (the kept count, the algorithm named, ...), so a check
    reads what the move changed and never waits on a part of the text the move cannot touch.
    """
    t0 = time.perf_counter()
    now = before
    while time.perf_counter() - t0 < timeout:
        try:
            now = read()
        except Exception:  # the output area is cleared while it redraws
            now = before
        if now != before and _holds(done, now):
            seconds = time.perf_counter() - t0
            return settled(read, now), seconds
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not seen within {timeout:.0f} s; the widget shows {now!r}")


def _holds(done, text: str) -> bool:
    try:
        return bool(done(text))
    except RuntimeError:  # a half-drawn line that does not parse yet
        return False


def wait_for_change(read, before: str, timeout: float = 120.0) -> tuple[str, float]:
    """Block until ``read()`` differs from ``before``; the settled new text and the seconds to the first change."""
    return wait_for(read, lambda _: True, "a redraw", before, timeout)


def settled(read, text: str, quiet: float = 1.0) -> str:
    """What ``read()`` shows once it stopped changing for ``quiet`` s (a drag redraws at every stop it passes)."""
    last_change = time.perf_counter()
    while time.perf_counter() - last_change < quiet:
        time.sleep(0.1)
        try:
            now = read()
        except Exception:
            continue
        if now != text:
            text, last_change = now, time.perf_counter()
    return text


def pick_option(page, label: str) -> str:
    """Choose the last option other than the current one in the ipywidgets dropdown described ``label``."""
    select = page.locator(".widget-dropdown", has=page.locator(".widget-label", has_text=label)).last.locator("select")
    select.scroll_into_view_if_needed()
    current = select.evaluate("s => s.options[s.selectedIndex].text")
    choice = [o for o in select.locator("option").all_inner_texts() if o != current][-1]
    select.select_option(label=choice)
    return choice


def drag_slider(page, label: str, fraction: float) -> None:
    """Drag the handle of the ipywidgets slider described ``label`` to ``fraction`` of its track, with the mouse."""
    slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=label)).last
    slider.scroll_into_view_if_needed()
    track = slider.locator(".noUi-target, .slider-container").first.bounding_box()
    handle = slider.locator(".noUi-handle").first.bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + fraction * track["width"], handle["y"] + handle["height"] / 2, steps=10)
    page.mouse.up()


def kept_count(text: str) -> int:
    """The kept count of the explorer's summary line ("... All prompts: 7/14 kept, ...")."""
    m = re.search(r"All prompts: (\d+)/(\d+) kept", text)
    if not m:
        raise RuntimeError(f"the explorer's summary has no 'All prompts: k/n kept': {text!r}")
    return int(m.group(1))


def click_checkbox(page, label: str) -> None:
    """Toggle the ipywidgets checkbox described ``label``, with the mouse."""
    box = page.locator(".widget-checkbox", has_text=label).last.locator("input[type=checkbox]")
    box.scroll_into_view_if_needed()
    box.click()


def check_cluster_explorer(page, shots: Path | None) -> dict:
    """Notebook 05: move every control of the explorer like a student would; each move must show what it changed.

    The ``min_agreement`` slider must change the kept count on the run's real answers: it is
    dragged to 0 (every prompt kept) when some prompts are dropped, else to 1 (only unanimous ones).
    The knob slider must change the knob's value the summary names, the prompt dropdown the prompt
    shown, the algorithm dropdown the algorithm the summary names and the knob's label. What each
    move leaves unchanged (the kept count after a switch of algorithm, say) is never waited for.
    """
    figures: dict = {}
    read = lambda: summary_text(page)  # noqa: E731
    before = read()
    if shots:
        page.locator(".widget-output", has_text="All prompts:").last.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "05_explorer_before.png"))
    n_prompts = int(re.search(r"All prompts: \d+/(\d+) kept", before).group(1))
    target = 0.0 if kept_count(before) < n_prompts else 1.0
    drag_slider(page, "min_agreement", target)
    after, seconds = wait_for(
        read, lambda t: kept_count(t) != kept_count(before), f"min_agreement -> {target}: a new kept count", before
    )
    figures["min_agreement slider"] = {
        "kept": f"{kept_count(before)} -> {kept_count(after)} of {n_prompts}",
        "redraw_s": round(seconds, 2),
    }
    before = after
    algorithm, knob, value = named_fit(before)  # the notebook's last cell may have left another algorithm
    drag_slider(page, knob, 0.9)
    after, seconds = wait_for(read, lambda t: named_fit(t)[2] != value, f"{knob} slider: a new value", before)
    figures[f"{knob} slider"] = {"before": before, "after": after, "redraw_s": round(seconds, 2)}
    header = lambda: page.locator(".widget-output b").last.inner_text()  # noqa: E731  (the prompt id, in bold)
    before = header()
    pick_option(page, "prompt")
    after, seconds = wait_for_change(header, before)
    figures["prompt dropdown"] = {"before": before, "after": after, "redraw_s": round(seconds, 2)}
    before = read()
    choice = pick_option(page, "algorithm")
    after, seconds = wait_for(
        read, lambda t: named_fit(t)[:2] == (choice, REGISTRY[choice].knob), f"algorithm -> {choice}", before
    )
    label = page.locator(".widget-slider .widget-label", has_text=REGISTRY[choice].knob)
    if not label.count():
        raise RuntimeError(f"algorithm -> {choice}: the knob slider is not labelled {REGISTRY[choice].knob}")
    figures["algorithm dropdown"] = {"chosen": choice, "after": after, "redraw_s": round(seconds, 2)}
    if shots:
        page.locator(".widget-output", has_text="All prompts:").last.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "05_explorer_after.png"))
    return figures


def check_cost_explorer(page, shots: Path | None) -> dict:
    """Notebook 07: every control of the cost explorer (model, three sliders, the checkbox); each must redraw the table."""
    figures: dict = {}
    read = lambda: cost_table_text(page)  # noqa: E731
    lora = lambda text: next(line for line in text.splitlines() if line.startswith("LoRA FedAvg"))  # noqa: E731
    before = read()
    pick_option(page, "model")
    after, seconds = wait_for_change(read, before)
    figures["model dropdown"] = {
        "before": before.splitlines()[0],
        "after": after.splitlines()[0],
        "redraw_s": round(seconds, 2),
    }
    for label in ("LoRA rank", "public prompts", "answer tokens"):
        before = after
        drag_slider(page, label, 0.95)
        after, seconds = wait_for_change(read, before)
        figures[f"{label} slider"] = {"before": lora(before), "after": lora(after), "redraw_s": round(seconds, 2)}
    before = after
    click_checkbox(page, "count down as well as up")
    after, seconds = wait_for_change(read, before)
    figures["directions checkbox"] = {"before": lora(before), "after": lora(after), "redraw_s": round(seconds, 2)}
    if shots:
        page.locator(".widget-html", has_text="bytes per round").last.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "07_cost_explorer_after.png"))
    return figures


INTERACTIONS = {"05_": check_cluster_explorer, "07_": check_cost_explorer}
JS_SAVE_AND_SHUTDOWN = """async () => {
  const w = window.jupyterapp.shell.currentWidget;
  await w.context.save();               // the scratch copy, so leaving the page asks nothing
  await w.sessionContext.shutdown();    // one kernel at a time, as a student closing the tab
}"""


def run_notebook(page, base: str, token: str, name: str, timeout: float, shots: Path | None) -> dict:
    """Open ``name``, run all cells, count what rendered, drive its widgets; the figures of that."""
    report: dict = {}
    t0 = time.perf_counter()
    page.goto(f"{base}/lab/tree/{name}?reset&token={token}")
    page.wait_for_function(JS_NOTEBOOK_READY, timeout=120_000)
    report["open_s"] = round(time.perf_counter() - t0, 2)
    state = run_all(page, timeout)
    report["run_all_s"] = round(state["seconds"], 1)
    report["cells"] = f"{state['executed']}/{state['n_code']}"
    report["plotly_outputs"] = state["plotly_outputs"]
    if state["errors"]:
        raise RuntimeError(f"{name}: error output: " + "; ".join(state["errors"]))
    page.wait_for_timeout(2000)  # let the last outputs render
    report["plotly_figures"] = page.locator(".js-plotly-plot").count()
    report["widgets"] = page.locator(".widget-hslider, .widget-dropdown, .widget-checkbox").count()  # controls shown
    if shots:
        page.screenshot(path=str(shots / f"{Path(name).stem}_run.png"))  # the view after Run All (the last cells)
    for prefix, check in INTERACTIONS.items():
        if name.startswith(prefix):
            report["interaction"] = check(page, shots)
    page.evaluate(JS_SAVE_AND_SHUTDOWN)
    return report


def resolve_notebooks(asked: list[str], folder: Path = NOTEBOOKS) -> list[str]:
    """File names of the notebooks asked for: ``all``, a full name, a stem, or its number (``05``)."""
    every = sorted(nb.name for nb in folder.glob("*.ipynb"))
    if "all" in asked:
        return every
    names = []
    for a in asked:
        found = [n for n in every if n == a or n == f"{a}.ipynb" or n.split("_", 1)[0] == a.zfill(2)]
        if len(found) != 1:
            raise ValueError(f"no notebook {a!r} in {folder}; give its number (05), its name, or all: {every}")
        names.append(found[0])
    return names


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("lab_widgets: playwright is missing; `make lab-check` installs it (pip install -e '.[lab,browser]').")
    chromium = find_chromium(args.chromium)
    try:
        names = resolve_notebooks(args.notebook or ["05"])
    except ValueError as err:
        sys.exit(f"lab_widgets: {err}")
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    report: dict = {"preset": args.preset, "browser": chromium, "notebooks": {}}
    failed = False
    with tempfile.TemporaryDirectory(prefix="lab_widgets_") as tmp:
        workdir = Path(tmp)
        scratch_copy(workdir)
        lab = start_lab(workdir, port, token, args.preset, workdir / "lab.log")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                for name in names:
                    print(f"lab_widgets: {name} ...", file=sys.stderr, flush=True)
                    try:
                        nb = run_notebook(page, f"http://127.0.0.1:{port}", token, name, args.timeout, args.screenshots)
                        if nb["plotly_figures"] < nb["plotly_outputs"]:
                            raise RuntimeError(
                                f"{name}: {nb['plotly_outputs']} plotly outputs but {nb['plotly_figures']} drawn "
                                "(is the jupyterlab-plotly extension installed?)"
                            )
                    except Exception as err:  # report it and go on with the next notebook
                        nb, failed = {"error": f"{type(err).__name__}: {err}"}, True
                        if args.screenshots:
                            page.screenshot(path=str(args.screenshots / f"{Path(name).stem}_failure.png"))
                    report["notebooks"][name] = nb
                    if args.out:  # written as it goes: a later failure loses nothing
                        args.out.write_text(json.dumps(report, indent=2))
                browser.close()
        finally:
            lab.terminate()
            lab.wait(timeout=30)
    print(json.dumps(report, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
