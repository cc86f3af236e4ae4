"""Sphinx configuration: the documentation site (MyST Markdown pages, the notebooks, the API from the docstrings).

make docs        build it with the notebooks executed (cached in docs/_build/.jupyter_cache)
make docs-fast   build it without executing anything (what make test checks, warnings as errors)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

# The notebooks that read finished runs execute on `cpu`'s shipped reference runs and the study's folders (which
# the README's findings read); those that must train (01, 08, 10, 11: notebook_config(trains=True)) on `small`, and
# say so at their top. Offline, without progress bars; plotly stores figures as JSON, which the plotly_offline
# extension draws with the plotly.js of the installed package (no CDN).
os.environ.setdefault("FEDCOFIT_PRESET", "cpu")
os.environ.setdefault("FEDCOFIT_TRAINING_PRESET", "small")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ["PLOTLY_RENDERER"] = "plotly_mimetype"

import fedcofit_lite  # noqa: E402

project = "fedcofit_lite"
author = "the fedcofit_lite authors"
copyright = "2026, the fedcofit_lite authors (Apache-2.0)"
release = version = fedcofit_lite.__version__

extensions = [
    "myst_nb",
    "sphinx_design",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "plotly_offline",
]

exclude_patterns = [
    "_build",
    "notebooks/README.md",
    "notebooks/glossary.md",  # a link to glossary.md, so that JupyterLab (rooted in notebooks/) opens it too
    "notebooks/reference/**",
    "notebooks/runs/**",
    "notebooks/**/.ipynb_checkpoints",
    "_generated/*.md",  # included into the pages, not pages of their own
]
# "more than one target" for a bare field name (n_answers) in a docstring: the reference is ambiguous, not broken
suppress_warnings = ["myst.header", "ref.python"]

# -- MyST and the notebooks --------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3
nb_execution_mode = os.environ.get("FEDCOFIT_DOCS_EXECUTE", "cache")
nb_execution_timeout = 1200  # a cell that trains (notebooks 01, 08, 10, 11) takes minutes on a busy 2-core machine
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# ipywidgets need a JupyterLab kernel; their text stands in for them on a static page (and no CDN is loaded).
nb_ipywidgets_js = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]

# -- the API reference from the docstrings (numpydoc style) ------------------------------------
autodoc_default_options = {
    "members": True,
    "undoc-members": False,
    # scikit-learn's metadata-routing methods, which every estimator inherits
    "exclude-members": "set_fit_request,set_predict_request,set_score_request,set_transform_request",
}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_mock_imports = [
    "torch",
    "transformers",
    "peft",
    "sentence_transformers",
    "opacus",
    "flwr",
    "safetensors",
    "gguf",
]
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_ivar = True  # a dataclass's "Attributes" section, not a second description of each field

# -- HTML --------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = f"fedcofit_lite {release}"
html_static_path = ["_static"]
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
    "navbar_persistent": [],  # the book theme puts its search field in the sidebar; without this a second one shows in the header
}
html_last_updated_fmt = None
