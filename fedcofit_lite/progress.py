"""Progress bars: ``tqdm.auto`` everywhere, off when ``TQDM_DISABLE`` is set.

tqdm's plain bars read ``TQDM_DISABLE``; its notebook (widget) bars do not. In a kernel every widget update is a
message on the iopub channel, and a long cell under nbval (which reads that channel only after the cell ends) can
overflow zmq's buffer: the kernel's final "idle" message is dropped and nbval fails the cell with "Timeout of 5
seconds exceeded waiting for output". So every bar of this package goes through :func:`bar`, which honours the
variable for both kinds (``notebooks/conftest.py`` sets it for nbval runs).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm


def bars_disabled() -> bool:
    """True when ``$TQDM_DISABLE`` is set to anything but empty, 0 or false."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")


def bar(iterable: Any = None, **kwargs: Any) -> tqdm:
    """A ``tqdm.auto`` bar that is off under ``TQDM_DISABLE`` and redraws at most twice a second."""
    return tqdm(iterable, **{"disable": bars_disabled(), "mininterval": 0.5, **kwargs})


class Timer:
    """Accumulates wall seconds per phase: ``with timer("train"): ...``."""

    def __init__(self, seconds: dict[str, float] | None = None) -> None:
        self.seconds: dict[str, float] = dict(seconds or {})

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start
