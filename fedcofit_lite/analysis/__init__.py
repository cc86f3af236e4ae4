"""The analysis: what can be learned from run folders, with no widget and no plotting library; it trains nothing.

* :mod:`.compare` - a comparison folder's table; several seeds and their paired table;
* :mod:`.stats` - two-level paired bootstrap intervals (seeds, then test items);
* :mod:`.replay` - refit clusterers and rules on a run's saved answers (no model), private-vote trade-offs;
* :mod:`.robustness` - the server's view of a share of bad clients, on a run's recorded answers;
* :mod:`.sweep` - a sweep folder's plan and cells; :mod:`.frontier` - what it says (curves with intervals, time
  to accuracy, the verdict); :mod:`.sweepreport` - the same as text;
* :mod:`.costmodel` - analytic bytes per round (standard library only); :mod:`.accounting` - measured against it;
* :mod:`.audit` - membership inference on what each method sends, and what a competence signal says;
* :mod:`.leaderboard` - every consensus rule ranked on a shipped corpus of recorded answers.

The folders are written by :mod:`fedcofit_lite.experiments` and ``federation``. May import the layers below
(the registries of ``federation.methods``, ``engine`` for losses and embeddings), never the loop that trains
(an import contract of ``pyproject.toml``), ``ui``, ipywidgets or plotly.
"""

from .._lazy import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, __path__)
