"""What a person looks at: plotly figures (returned, never shown), widgets and the notebooks' helpers.

* :mod:`.plots`, :mod:`.roundplots`, :mod:`.costplots` - figures of comparisons, of one round, of costs;
* :mod:`.sweepplots` - figures of a sweep folder: score against budget, bytes, round, wall-clock;
* :mod:`.explorer` - the cluster explorer widget; :mod:`.cost_explorer` - the cost-model widget;
* :mod:`.report` - every figure of a run folder, drawn from its files;
* :mod:`.workshop` - notebook helpers: the preset, finished runs to reuse, the shipped reference runs.

May import every layer below. Only ``cli`` sits above.
"""

from .._lazy import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, __path__)
