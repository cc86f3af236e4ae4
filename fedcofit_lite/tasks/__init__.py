"""The tasks: what clients learn and how an answer is scored. Standard library and numpy only.

* :mod:`.data` - the example schema, JSONL loaders, suites (train / public / test) and partitions over clients;
* :mod:`.families` - the auto-checkable exact-answer families (dates, arithmetic, capitals, ...);
* :mod:`.freeform` - free-form families: sentence answers in many phrasings, with content checkers;
* :mod:`.capitals` - the country/capital table both kinds of family share;
* :mod:`.evaluate` - exact match, content correctness, ROUGE-L, and the answer key (normalization).

May import: ``config``, ``runlog``, ``progress``. Never a model, the protocol or anything above.
"""

from .._lazy import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, __path__)
