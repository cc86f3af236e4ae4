"""Schema, JSONL I/O, task-suite loader, partitioners, instruction datasets."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fedcofit_lite.tasks.data import (
    DEFAULT_DATA_DIR,
    SUITE_FILES,
    DataFormatError,
    Example,
    TaskSuite,
    cap_per_client,
    family_histogram,
    load_examples,
    load_instruction_dataset,
    load_jsonl,
    load_task_suite,
    partition,
    partition_by_family,
    write_jsonl,
)
from fedcofit_lite.tasks.families import FAMILIES, generate_suite

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    """30 examples in each of the task families."""
    return generate_suite(seed=0, n_train=30, n_public=0, n_test=0)["train"]


def ids(parts):
    return Counter(ex.id for part in parts for ex in part)


# --- schema and JSONL ------------------------------------------------------


def test_example_round_trip_and_validation():
    ex = Example("x-1", "arithmetic", "What is 2 + 3?", response="5")
    assert Example.from_dict(ex.to_dict()) == ex
    assert list(ex.to_dict()) == ["id", "family", "instruction", "context", "response"]
    assert Example.from_dict({"id": "a", "family": "f", "instruction": "q"}).response == ""
    with pytest.raises(DataFormatError, match="missing required field 'instruction'"):
        Example.from_dict({"id": "a", "family": "f"})
    with pytest.raises(DataFormatError, match="unknown field.*'label'"):
        Example.from_dict({"id": "a", "family": "f", "instruction": "q", "label": "x"})
    with pytest.raises(DataFormatError, match="field 'response' must be a string, got int"):
        Example.from_dict({"id": "a", "family": "f", "instruction": "q", "response": 5})


def test_write_then_load_jsonl(tmp_path):
    records = [Example("a", "f", "Traduis « café »", response="coffee"), {"id": "b", "n": 1}]
    path = tmp_path / "sub" / "x.jsonl"
    write_jsonl(path, records)
    assert "« café »" in path.read_text(encoding="utf-8")  # ensure_ascii=False
    assert load_jsonl(path) == [records[0].to_dict(), {"id": "b", "n": 1}]


def test_broken_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2,,}\n', encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_jsonl(path)
    assert str(path) in str(info.value) and "line 3" in str(info.value)
    path.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"line 2: expected a JSON object, got list"):
        load_jsonl(path)


def test_load_examples_names_file_line_and_field(tmp_path):
    path = tmp_path / "ex.jsonl"
    good = {"id": "a", "family": "f", "instruction": "q"}
    write_jsonl(path, [good, {**good, "id": "b", "response": None}])
    with pytest.raises(DataFormatError) as info:
        load_examples(path)
    message = str(info.value)
    assert str(path) in message and "line 2" in message and "'response'" in message
    write_jsonl(path, [good, good])
    with pytest.raises(DataFormatError, match="line 2: duplicate id 'a'"):
        load_examples(path)


# --- task suite ------------------------------------------------------------


def test_shipped_files_are_up_to_date():
    expected = generate_suite(seed=0)
    suite = load_task_suite()
    assert suite.train == expected["train"]
    assert suite.test == expected["test"]
    assert suite.public == [dataclasses.replace(ex, response="") for ex in expected["public"]]
    assert suite.public_references == {ex.id: ex.response for ex in expected["public"]}
    assert suite.families == FAMILIES


def test_generate_script_is_byte_identical(tmp_path, generate_script):
    generate_script.main(["--out", str(tmp_path)])
    for name in SUITE_FILES.values():
        assert (tmp_path / name).read_bytes() == (DEFAULT_DATA_DIR / name).read_bytes(), name


@pytest.mark.parametrize(
    ("suite", "argv", "per_family"), [("tasks", [], 160), ("freeform", ["--suite", "freeform"], 80)]
)
def test_the_public_pools_are_current_and_keep_the_suites_private_and_test_data(
    tmp_path, generate_script, suite, argv, per_family
):
    """data/<suite>_pool: the generator's bytes; the suite's train, test and public prompts, and more public ones."""
    pool = DEFAULT_DATA_DIR.parent / f"{suite}_pool"
    generate_script.main([*argv, "--extra-public", str(per_family - 40), "--out", str(tmp_path)])
    for name in SUITE_FILES.values():
        assert (tmp_path / name).read_bytes() == (pool / name).read_bytes(), name
    for name in ("train.jsonl", "test.jsonl"):
        assert (pool / name).read_bytes() == (DEFAULT_DATA_DIR.parent / suite / name).read_bytes(), name
    shipped, bigger = load_task_suite(DEFAULT_DATA_DIR.parent / suite), load_task_suite(pool)
    assert set(shipped.public_references.items()) < set(bigger.public_references.items())
    counts = Counter(e.family for e in bigger.public)
    assert set(counts.values()) == {per_family} and len(counts) == len(shipped.families)
    assert len({e.instruction for e in [*bigger.public, *bigger.train, *bigger.test]}) == sum(
        len(x) for x in (bigger.public, bigger.train, bigger.test)
    )  # no instruction in two places


def test_suite_restrict_and_subsample():
    suite = load_task_suite(families=["capital", "date_rewrite"], n_public=7, n_test_per_family=3)
    assert set(suite.families) == {"capital", "date_rewrite"}
    assert len(suite.train) == 400
    assert sorted(Counter(ex.family for ex in suite.public).values()) == [3, 4]
    assert Counter(ex.family for ex in suite.test) == {"capital": 3, "date_rewrite": 3}
    assert set(suite.public_references) == {ex.id for ex in suite.public}
    assert all(ex.response == "" for ex in suite.public)
    again = load_task_suite(families=["capital", "date_rewrite"], n_public=7, n_test_per_family=3)
    assert again == suite
    other = load_task_suite(n_public=70, seed=1)
    assert Counter(ex.family for ex in other.public) == dict.fromkeys(FAMILIES, 10)
    assert other.public != load_task_suite(n_public=70, seed=2).public


def test_suite_errors(tmp_path):
    with pytest.raises(ValueError, match="'poetry'.*date_rewrite.*capital"):
        load_task_suite(families=["poetry"])
    with pytest.raises(ValueError, match="n_public"):
        load_task_suite(n_public=10_000)
    with pytest.raises(FileNotFoundError, match="python data/generate.py"):
        load_task_suite(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="train.jsonl.*python data/generate.py"):
        load_task_suite(tmp_path)
    # A labelled public prompt must be refused: clients would see the answer.
    for name in SUITE_FILES.values():
        (tmp_path / name).write_bytes((DEFAULT_DATA_DIR / name).read_bytes())
    public = load_jsonl(tmp_path / "public.jsonl")
    public[0]["response"] = "leak"
    write_jsonl(tmp_path / "public.jsonl", public)
    with pytest.raises(DataFormatError, match="unlabelled"):
        load_task_suite(tmp_path)
    with pytest.raises(DataFormatError, match="unlabelled"):
        TaskSuite([], [Example("p", "f", "q", response="a")], {}, [])


def test_a_suite_folder_is_read_once_until_a_file_changes(tmp_path, monkeypatch):
    """Analysing a sweep builds every cell's suite: the files are parsed once, each caller gets lists of its own, and
    a rewritten file is read again."""
    from fedcofit_lite.tasks import data

    for name in SUITE_FILES.values():
        (tmp_path / name).write_bytes((DEFAULT_DATA_DIR / name).read_bytes())
    parsed = []
    n_train = len(load_task_suite().train)
    monkeypatch.setattr(data, "load_examples", lambda path: parsed.append(path) or load_examples(path))
    first = load_task_suite(tmp_path)
    first.train.clear()
    again = load_task_suite(tmp_path)
    assert len(parsed) == 3 and len(again.train) == n_train > 0  # not parsed again, not emptied by the first caller
    test = load_jsonl(tmp_path / "test.jsonl")
    write_jsonl(tmp_path / "test.jsonl", test[:5])
    assert len(load_task_suite(tmp_path).test) == 5 and len(parsed) == 6
    # the same size and modification time (as cp -p leaves them): read again all the same
    file, before = tmp_path / "test.jsonl", (tmp_path / "test.jsonl").stat()
    text = file.read_text()
    file.write_text(text.replace(test[0]["response"], test[0]["response"][::-1], 1))
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert file.stat().st_size == before.st_size and file.stat().st_mtime_ns == before.st_mtime_ns
    assert load_task_suite(tmp_path).test[0].response == test[0]["response"][::-1] and len(parsed) == 9


# --- partitioners ----------------------------------------------------------


@pytest.mark.parametrize("scheme", ["iid", "dirichlet", "by_family"])
@pytest.mark.parametrize("n_clients", [1, 3, 7, 10])
def test_partition_loses_and_duplicates_nothing(examples, scheme, n_clients):
    parts = partition(examples, scheme, n_clients, alpha=0.3, seed=5)
    assert len(parts) == n_clients
    assert all(parts)
    assert ids(parts) == ids([examples])
    assert partition(examples, scheme, n_clients, alpha=0.3, seed=5) == parts


def test_partition_seed_matters(examples):
    for scheme in ("iid", "dirichlet"):
        assert partition(examples, scheme, 4, seed=0) != partition(examples, scheme, 4, seed=1)


def test_iid_sizes_are_balanced(examples):
    sizes = [len(p) for p in partition(examples, "iid", 4)]
    assert max(sizes) - min(sizes) <= 1


def test_dirichlet_skew_grows_as_alpha_shrinks(examples):
    def mean_top_share(alpha):
        shares = []
        for seed in range(5):
            for counts in family_histogram(partition(examples, "dirichlet", 5, alpha, seed)):
                shares.append(max(counts.values()) / sum(counts.values()))
        return float(np.mean(shares))

    skewed, flat = mean_top_share(0.1), mean_top_share(100.0)
    assert skewed > 0.6 and flat < 0.3 and skewed - flat > 0.3, (skewed, flat)


def test_dirichlet_gives_every_client_an_example(examples):
    parts = partition(examples, "dirichlet", 40, alpha=0.01, seed=0)
    assert all(parts) and ids(parts) == ids([examples])


def test_by_family_assignment(examples):
    parts = partition_by_family(examples, len(FAMILIES))
    assert [{ex.family for ex in p} for p in parts] == [{f} for f in FAMILIES]
    parts = partition_by_family(examples, 3)
    assert {ex.family for ex in parts[0]} == {FAMILIES[0], FAMILIES[3], FAMILIES[6]}
    parts = partition_by_family(examples, 2 * len(FAMILIES))
    assert [{ex.family for ex in p} for p in parts] == [{f} for f in FAMILIES] * 2
    assert all(len(p) == 15 for p in parts)


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        (dict(scheme="iid", n_clients=0), "n_clients"),
        (dict(scheme="dirichlet", n_clients=10_000), "n_clients"),
        (dict(scheme="dirichlet", n_clients=3, alpha=0.0), "alpha"),
        (dict(scheme="dirichlet", n_clients=3, alpha=-1.0), "alpha"),
        (dict(scheme="round_robin", n_clients=3), "scheme.*iid, dirichlet, by_family"),
    ],
)
def test_partition_errors_name_the_parameter(examples, kwargs, parameter):
    with pytest.raises(ValueError, match=parameter):
        partition(examples, **kwargs)


def test_cap_per_client_keeps_proportions(examples):
    part = [ex for ex in examples if ex.family == FAMILIES[0]]
    part += [ex for ex in examples if ex.family == FAMILIES[1]][:15]
    small = examples[:5]
    capped = cap_per_client([part, small], max_examples=15, seed=0)
    assert capped[1] == small
    assert Counter(ex.family for ex in capped[0]) == {FAMILIES[0]: 10, FAMILIES[1]: 5}
    assert set(capped[0]) <= set(part)
    assert cap_per_client([part, small], 15, seed=0) == capped
    with pytest.raises(ValueError, match="max_examples"):
        cap_per_client([part], 0)


def test_family_histogram(examples):
    parts = partition(examples, "by_family", 3)
    histogram = family_histogram(parts, families=FAMILIES)
    assert [sum(h.values()) for h in histogram] == [len(p) for p in parts]
    assert all(list(h) == list(FAMILIES) for h in histogram)
    assert all(list(h) == sorted(FAMILIES) for h in family_histogram(parts))
    assert histogram[1][FAMILIES[0]] == 0 and histogram[1][FAMILIES[1]] == 30


# --- external instruction datasets -----------------------------------------


def test_dolly_and_alpaca_samples_load():
    dolly = load_instruction_dataset(SAMPLES / "dolly_sample.jsonl")
    assert len(dolly) >= 5 and dolly[0].id == "dolly_sample-00000"
    assert {"open_qa", "closed_qa", "summarization"} <= {ex.family for ex in dolly}
    assert any(ex.context for ex in dolly) and all(ex.response for ex in dolly)
    alpaca = load_instruction_dataset(str(SAMPLES / "alpaca_sample.json"), limit=3)
    assert [ex.id for ex in alpaca] == [f"alpaca_sample-0000{i}" for i in range(3)]
    assert {ex.family for ex in alpaca} == {"general"}
    assert alpaca[1].context and alpaca[1].response


def test_mixed_schemas_family_field_and_bad_record(tmp_path):
    path = tmp_path / "mixed.jsonl"
    records = [
        {"instruction": "a", "context": "", "response": "b", "category": "qa", "src": "x"},
        {"instruction": "c", "input": "d", "output": "e", "src": "y"},
    ]
    write_jsonl(path, records)
    loaded = load_instruction_dataset(path)
    assert [(ex.family, ex.context, ex.response) for ex in loaded] == [
        ("qa", "", "b"),
        ("general", "d", "e"),
    ]
    assert [ex.family for ex in load_instruction_dataset(path, family_field="src")] == ["x", "y"]
    write_jsonl(path, [*records, {"prompt": "p", "completion": "c"}])
    with pytest.raises(DataFormatError) as info:
        load_instruction_dataset(path)
    message = str(info.value)
    assert str(path) in message and "line 3" in message
    assert "instruction, context, response, category" in message and "input, output" in message


def test_missing_local_file_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_instruction_dataset(tmp_path / "nothing.jsonl")


def test_hub_without_datasets_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(ImportError, match="pip install datasets"):
        load_instruction_dataset("someone/some-dataset")


def test_hub_dataset_offline_gives_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import datasets  # installed by the set-up (the dev extra): missing, the test fails instead of skipping

    # The offline flags are read at import time; force them if imported earlier.
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    with pytest.raises(RuntimeError) as info:
        load_instruction_dataset("fedcofit-lite-tests/no-such-dataset", split="train")
    message = str(info.value)
    assert "fedcofit-lite-tests/no-such-dataset" in message
    assert "offline" in message and ".jsonl" in message and "path" in message
