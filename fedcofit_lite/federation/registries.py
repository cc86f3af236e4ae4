"""The names a configuration may use, each read from the one registry that declares it.

``config`` is the lowest layer and imports no registry, so a clusterer, a rule, a method or a task
family is a plain string there. :func:`check_names` holds those strings to the registries as they
are when it runs (when a :class:`~fedcofit_lite.federation.loop.Federation` is built, and when the
command line loads a config), before any training: a name registered from outside the package is as
good as a built-in one.
"""

from __future__ import annotations

import operator

from ..config import ConfigError, RunConfig
from ..protocol.cluster import REGISTRY as CLUSTERERS
from ..protocol.consensus import RULES
from ..tasks.families import REGISTRY as FAMILIES
from .methods import METHODS, method_choices, method_spec

# config field -> (the registry of its names, where a new name is registered)
REGISTRIES = {
    "consensus.clusterer": (CLUSTERERS, "fedcofit_lite.protocol.cluster.REGISTRY"),
    "consensus.rule": (RULES, "fedcofit_lite.protocol.consensus.RULES"),
    "federation.method": (METHODS, "fedcofit_lite.federation.methods.METHODS"),
    "compare.methods": (METHODS, "fedcofit_lite.federation.methods.METHODS"),
    "data.families": (FAMILIES, "fedcofit_lite.tasks.families.REGISTRY"),
}


def choices() -> dict[str, list[str]]:
    """Config field -> the names its registry holds now (what ``python -m fedcofit_lite options`` lists)."""
    return {name: list(registry) for name, (registry, _) in REGISTRIES.items()}


def check_names(cfg: RunConfig) -> RunConfig:
    """Refuse a name no registry holds, with the field, the value, the known names and the fix; return ``cfg``.

    ``data.families`` is checked for the project's suites only: instruction data (``data.source``)
    brings its own categories, which :func:`~fedcofit_lite.tasks.data.instruction_suite` checks.
    """
    for name, (registry, where) in REGISTRIES.items():
        value = operator.attrgetter(name)(cfg)
        known = method_spec if registry is METHODS else registry.__contains__
        unknown = [v for v in (value if isinstance(value, list) else [value]) if not known(v)]
        if unknown and not (name == "data.families" and cfg.data.source):
            choose = method_choices() if registry is METHODS else f"choose one of {list(registry)}"
            raise ConfigError(
                f"{name} = {value!r}: {unknown[0]!r} is not registered; {choose}, or register it in {where}."
            )
    return cfg
