"""The experiments: what trains several runs and writes their folders (comparisons, sweeps, robustness).

* :mod:`.compare` - several methods on one partition and budget, one model load, the shared stages once;
  several seeds (``compare --seeds``);
* :mod:`.sweep` - public budget x rounds x clients, run cell by cell, resumed and extended;
* :mod:`.robustness` - the methods trained with a growing share of bad clients.

Above ``federation`` (it builds federations and trains); :mod:`fedcofit_lite.analysis` reads what it writes.
"""

from .._lazy import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, __path__)
