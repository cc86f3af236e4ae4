"""Lazy submodules for the package and its layer folders: ``flt.protocol.cluster`` imports on first use."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from typing import Any


def lazy_submodules(package: str, path: Iterable[str]) -> tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` for ``package``: every module found on ``path`` loads when first touched."""
    found = frozenset(m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_"))

    def __getattr__(name: str) -> Any:
        if name in found:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *found})

    return __getattr__, __dir__
