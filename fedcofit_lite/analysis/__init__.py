"""The analysis: what can be learned from run folders, with no widget and no plotting library.

* :mod:`.compare` - several methods on one partition and budget; several seeds and their paired table;
* :mod:`.stats` - two-level paired bootstrap intervals (seeds, then test items);
* :mod:`.replay` - refit clusterers and rules on a run's saved answers (no model), private-vote trade-offs;
* :mod:`.robustness` - sweeps of the share of bad clients;
* :mod:`.sweep` - public budget x rounds x clients, run cell by cell; :mod:`.frontier` - what a sweep folder
  says (curves with intervals, time to accuracy, the verdict); :mod:`.sweepreport` - the same as text;
* :mod:`.costmodel` - analytic bytes per round (standard library only); :mod:`.accounting` - measured against it;
* :mod:`.audit` - membership inference on what each method sends.

May import every layer below (``federation`` to run comparisons, ``engine`` for losses and embeddings).
Never ``ui``, ipywidgets or plotly.
"""

from .._lazy import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, __path__)
