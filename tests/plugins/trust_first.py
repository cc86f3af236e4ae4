"""A consensus rule the package does not ship, entered on the leaderboard from outside (tests/test_leaderboard.py)."""

import numpy as np

from fedcofit_lite.protocol.consensus import RoundInputs, RuleSpec


def most_confident_twice(inputs: RoundInputs) -> np.ndarray:
    """Each answer weighs its confidence squared: a sure answer counts far more than a guess."""
    return np.asarray(inputs.confidence) ** 2


sure = RuleSpec(
    {"grouping": "semantic", "weighting": most_confident_twice, "min_confidence": 0.5},
    "weighted by confidence squared",
    "#000000",
)
