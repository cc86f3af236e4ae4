"""Energy of a stage: the CPU's own energy counters where the machine exposes them, else a stated estimate.

Linux exposes Intel's RAPL (running average power limit) counters, and AMD's since Linux 5.8, under
``/sys/class/powercap/intel-rapl:N/energy_uj``: microjoules per CPU package since some point, wrapping at
``max_energy_range_uj``. They measure the whole package (every process on it, not this run alone), and are often absent
in VMs and containers or readable by root only (since CVE-2020-8694). Elsewhere the energy is this process's CPU
seconds (every thread, ``time.process_time``) times ``eval.watts_per_core``, labelled ``estimate``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import platform
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

POWERCAP = Path("/sys/class/powercap")
WATTS_PER_CORE = 10.0  # the default of eval.watts_per_core


@functools.cache
def cpu_name() -> str:
    """The CPU model (timings differ by CPU kind, and greedy answers with its arithmetic), else the architecture."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def _read_uj(path: Path) -> int | None:
    """The microjoules in a powercap file; None when it is absent, root-only or not a number."""
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def rapl_zones(root: str | Path = POWERCAP) -> list[Path]:
    """The readable package-level RAPL zones under ``root`` (``intel-rapl:0``, ``intel-rapl:1``; not their subzones)."""
    zones = sorted(Path(root).glob("intel-rapl:*")) if Path(root).is_dir() else []
    # intel-rapl:0:0 (cores, uncore, dram) is inside its package: counted there; an unreadable zone is skipped
    return [z for z in zones if z.name.count(":") == 1 and _read_uj(z / "energy_uj") is not None]


class EnergyMeter:
    """Energy and CPU seconds between two calls of :meth:`lap`.

    ``mode``: ``auto`` reads RAPL where readable and estimates elsewhere; ``rapl`` requires the
    counters (a ``ValueError`` naming the fix when there are none); ``estimate`` always estimates at
    ``watts_per_core`` per busy core. ``root`` is where the powercap zones live (default :data:`POWERCAP`).

    Examples
    --------
    >>> meter = EnergyMeter("estimate", watts_per_core=10.0)
    >>> row = meter.lap()
    >>> row["energy_source"], row["energy_j"] == 10.0 * row["cpu_seconds"]
    ('estimate', True)
    """

    def __init__(self, mode: str = "auto", watts_per_core: float = WATTS_PER_CORE, root: str | Path = POWERCAP):
        if watts_per_core <= 0:
            raise ValueError(f"eval.watts_per_core = {watts_per_core!r}: must be > 0 watts per busy core, e.g. 10.")
        self.zones = rapl_zones(root) if mode != "estimate" else []
        if mode == "rapl" and not self.zones:
            raise ValueError(
                f"eval.energy = 'rapl', but no RAPL counter under {root} can be read (absent in most VMs, root-only "
                "on recent kernels): set eval.energy=auto or eval.energy=estimate."
            )
        self.watts_per_core = watts_per_core
        self._cpu, self._uj = self._now()

    def _now(self) -> tuple[float, list[int] | None]:
        uj = [_read_uj(z / "energy_uj") for z in self.zones]
        if None in uj:  # a counter that stopped being readable: estimate from here on
            log.warning("RAPL counters under %s became unreadable; estimating energy from CPU seconds", self.zones)
            self.zones, uj = [], []
        return time.process_time(), uj or None

    def lap(self) -> dict[str, Any]:
        """``cpu_seconds``, ``energy_j`` and ``energy_source`` since the last lap (or since the meter was made)."""
        cpu, uj = self._now()
        cpu_seconds = cpu - self._cpu
        if uj is not None and self._uj is not None:
            wrap = [_read_uj(z / "max_energy_range_uj") or 0 for z in self.zones]  # 0: the kernel does not say
            deltas = [b - a if b >= a else b - a + w for w, a, b in zip(wrap, self._uj, uj)]
            row = {"energy_j": sum(deltas) / 1e6, "energy_source": "rapl"}
        else:
            row = {"energy_j": cpu_seconds * self.watts_per_core, "energy_source": "estimate"}
            row["watts_per_core"] = self.watts_per_core
        self._cpu, self._uj = cpu, uj
        return {"cpu_seconds": cpu_seconds, **row}
