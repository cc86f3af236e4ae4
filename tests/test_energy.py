"""Energy per stage: RAPL counters when readable (a fake powercap folder here), else CPU seconds x a stated power."""

from __future__ import annotations

import time

import pytest

from fedcofit_lite.analysis.compare import TABLE_COLUMNS, comparison_rows, energy_total
from fedcofit_lite.energy import EnergyMeter, rapl_zones
from fedcofit_lite.experiments.compare import write_tables
from fedcofit_lite.runlog import RunLog, check_row


def _zone(root, name, uj, wrap=None):
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "energy_uj").write_text(f"{uj}\n")
    if wrap is not None:
        (zone / "max_energy_range_uj").write_text(f"{wrap}\n")
    return zone


def _burn(seconds: float = 0.05) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_rapl_counters_sum_the_packages_skip_subzones_and_unreadable_ones_and_wrap(tmp_path):
    p0 = _zone(tmp_path, "intel-rapl:0", 1_000_000, wrap=10_000_000)
    p1 = _zone(tmp_path, "intel-rapl:1", 5_000_000)
    _zone(tmp_path, "intel-rapl:0:0", 0)  # the cores of package 0: already inside its count
    (tmp_path / "intel-rapl:2").mkdir()  # a package whose counter is root-only or absent
    assert rapl_zones(tmp_path) == [p0, p1]
    meter = EnergyMeter("auto", root=tmp_path)
    (p0 / "energy_uj").write_text("3500000\n")  # +2.5 J
    (p1 / "energy_uj").write_text("5250000\n")  # +0.25 J
    row = meter.lap()
    assert row["energy_source"] == "rapl" and row["energy_j"] == pytest.approx(2.75)
    assert "watts_per_core" not in row and row["cpu_seconds"] >= 0
    (p0 / "energy_uj").write_text("500000\n")  # wrapped at 10 J: 3.5 -> 10 -> 0 -> 0.5 is +7 J
    assert meter.lap()["energy_j"] == pytest.approx(7.0)


def test_without_counters_the_energy_is_cpu_seconds_times_the_stated_power(tmp_path):
    meter = EnergyMeter("auto", watts_per_core=12.5, root=tmp_path / "no-powercap")
    _burn()
    row = meter.lap()
    assert row["energy_source"] == "estimate" and row["watts_per_core"] == 12.5
    assert row["cpu_seconds"] >= 0.04 and row["energy_j"] == pytest.approx(12.5 * row["cpu_seconds"])
    assert EnergyMeter("estimate", root=tmp_path).lap()["energy_source"] == "estimate"  # even where RAPL exists
    assert check_row({"stage": "local", "round": 0, **row}) == []  # the metrics row's schema has the fields


def test_asking_for_rapl_where_there_is_none_and_a_bad_power_are_refused(tmp_path):
    with pytest.raises(ValueError, match="eval.energy=auto or eval.energy=estimate"):
        EnergyMeter("rapl", root=tmp_path)
    with pytest.raises(ValueError, match="eval.watts_per_core"):
        EnergyMeter("estimate", watts_per_core=0)


def _rows(method, joules, source="estimate"):
    extra = {"watts_per_core": 10.0} if source == "estimate" else {}
    test = {"all": {"exact_match": 0.5, "rouge_l": 0.5}}
    return [
        {"stage": s, "round": r, "method": method, "test": test, "seconds": {"train": 1.0},
         "energy_j": j, "energy_source": source, "cpu_seconds": j / 10, **extra}
        for (s, r), j in zip([("base", -1), ("local", 0), ("round_1", 1)], joules)
    ]  # fmt: skip


def test_the_comparison_table_has_an_energy_column_that_says_where_it_comes_from(tmp_path):
    metrics = {"consensus": _rows("consensus", [1.0, 20.0, 5.0]), "local": _rows("local", [1.0, 20.0, 2.0])}
    rows = {r["method"]: r for r in comparison_rows(metrics)}
    assert rows["consensus"]["energy_j"] == 26.0 and rows["local"]["energy_j"] == 23.0
    assert rows["consensus"]["energy_source"] == "estimate at 10 W/core"
    assert ("energy J", "energy_j", "{:,.0f}") in TABLE_COLUMNS
    _, table = write_tables(RunLog(tmp_path), metrics)
    assert "energy J" in table and "energy: estimate at 10 W/core" in table
    assert energy_total(_rows("x", [1.0, 2.0, 3.0], "rapl"))["energy_source"] == "rapl"
    old = [{k: v for k, v in r.items() if not k.startswith(("energy", "watts"))} for r in _rows("old", [0, 0, 0])]
    assert energy_total(old) == {} and comparison_rows({"old": old})[0].get("energy_j") is None  # before energy
