"""The package's one face, ``import fedcofit_lite as flt``: every module is reachable from it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import fedcofit_lite as flt


def test_every_module_is_an_attribute_path_of_the_package_in_a_fresh_interpreter():
    names = sorted(
        m.name.removeprefix("fedcofit_lite.")
        for m in pkgutil.walk_packages(flt.__path__, "fedcofit_lite.")
        if not any(part.startswith("_") for part in m.name.split("."))
    )
    assert {"progress", "ui.roundplots", "runlog", "flower.client_app", "protocol.cluster", "engine.models"} <= set(
        names
    )
    code = "import fedcofit_lite as flt\n" + "".join(f"flt.{n}\n" for n in names) + "flt.progress.bar\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {n for n in names if "." not in n} <= set(dir(flt))
    assert {"cluster", "consensus", "server"} <= set(dir(flt.protocol))


def test_an_unknown_attribute_says_so():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        flt.nope  # noqa: B018
