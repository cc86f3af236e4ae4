"""The package's one face, ``import fedcofit_lite as flt``: every module is reachable from it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import fedcofit_lite as flt


def test_every_module_is_an_attribute_of_the_package_in_a_fresh_interpreter():
    names = sorted(m.name for m in pkgutil.iter_modules(flt.__path__) if not m.name.startswith("_"))
    assert {"progress", "roundplots", "runlog", "flower"} <= set(names)
    code = "import fedcofit_lite as flt\n" + "".join(f"flt.{n}\n" for n in names) + "flt.progress.bar\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert set(names) <= set(dir(flt))


def test_an_unknown_attribute_says_so():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        flt.nope  # noqa: B018
