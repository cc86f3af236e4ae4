"""Shared fixtures: loaded once per session, small and CPU-only."""

from __future__ import annotations

import os
from pathlib import Path

# Tests never touch the network: without this, an uncached hub id spends a
# minute in connection retries before failing. Set before transformers loads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402

# FEDCOFIT_TEST_SET="model.dtype=float32" runs the tests with these overrides added to every config they
# load (';'-separated), e.g. to check that an equivalence test holds with bf16 off. The package modules
# import load_config after this file, so they see the wrapped one.
_EXTRA = [s.strip() for s in os.environ.get("FEDCOFIT_TEST_SET", "").split(";") if s.strip()]
if _EXTRA:
    import fedcofit_lite.config as _config

    _load_config = _config.load_config

    def _load_with_extra(name_or_path="cpu", overrides=None):
        return _load_config(name_or_path, [*_EXTRA, *(overrides or [])])

    _config.load_config = _load_with_extra


@pytest.fixture(scope="session")
def embedder():
    from fedcofit_lite.engine.models import load_embedder

    return load_embedder(device="cpu")


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer) of the tiny-random Llama."""
    from fedcofit_lite.engine.models import load_model

    return load_model("tiny-random", device="cpu", seed=0)


@pytest.fixture(scope="session")
def generate_script():
    """``data/generate.py`` as a module (it is a script, not part of the package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "generate", Path(__file__).resolve().parent.parent / "data" / "generate.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- end-to-end runs whose consensus keeps labels and trains on them -----------------------------------
# tiny-random answers whitespace (its random output head repeats the prompt's last token, a newline): in a
# `ci` run no pseudo-label is ever kept, so a test that compares two such runs compares runs in which the
# consensus and the label training did nothing. The answering model is tiny-random trained briefly (every
# weight, answer tokens only) on the shipped suite's private pool: it answers in each family's format, in a
# few words, mostly wrong, and the clients (one base, small LoRA updates) agree on most answers, so most
# public prompts get a label. It is a local `save_pretrained` folder, so a run in another process (the
# command line, a killed run, a sweep) loads it with `--set model.name=FOLDER`.
ANSWERING_STEPS = 150  # AdamW steps of 32 records, lr 3e-3: answer loss 6.6 -> about 1.5 (over the suite's tokens)


def _train_answering_model(folder: Path, steps: int = ANSWERING_STEPS, seed: int = 0) -> None:
    """tiny-random trained on the ci suite's private pool, saved with its tokenizer in ``folder`` (about 10 CPU-seconds).

    The softmax runs over the tokens of the suite's records only (about 750 of 49,152: over all of them
    it took two thirds of the time), and every other token's embedding is zeroed after training: with the
    output head tied to the embeddings, their logit is 0, below the trained answer tokens'.
    """
    import torch

    from fedcofit_lite.config import load_config
    from fedcofit_lite.engine.batching import IGNORE_INDEX, TrainRecord, collate, tokenize_records
    from fedcofit_lite.engine.models import load_model
    from fedcofit_lite.tasks.data import build_suite

    cfg = load_config("ci")
    model, tok = load_model(cfg.model.name, device="cpu", dtype="float32", seed=seed)
    records = [TrainRecord(e.instruction, e.context, e.response) for e in build_suite(cfg).train]
    data = tokenize_records(tok, records, cfg.train.max_length)
    vocab = torch.tensor(sorted({t for ids, _ in data for t in ids}))  # (V,) the suite's token ids
    position = torch.full((len(tok),), -1, dtype=torch.long)
    position[vocab] = torch.arange(len(vocab))  # token id -> its column among the suite's tokens
    embeddings = model.get_input_embeddings().weight  # (vocab, hidden), tied to the output head
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        rows = torch.randint(len(data), (32,), generator=gen).tolist()
        batch = collate([data[i] for i in rows], tok.pad_token_id)
        hidden = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        target = batch["labels"][:, 1:]  # (B, T-1): position t predicts token t+1
        answer = target != IGNORE_INDEX
        logits = hidden[:, :-1][answer] @ embeddings[vocab].T  # (answer tokens, V)
        loss = torch.nn.functional.cross_entropy(logits, position[target[answer]])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        unseen = torch.ones(len(embeddings), dtype=torch.bool)
        unseen[vocab] = False
        embeddings[unseen] = 0.0
    tmp = folder.with_name(folder.name + ".tmp")
    model.eval().save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(folder)


@pytest.fixture(scope="session")
def answering_model(tmp_path_factory, worker_id) -> str:
    """Folder of the answering model (above), trained once per test session, for every xdist worker."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    root = root.parent if worker_id != "master" else root  # the session's folder, shared by the workers
    folder = root / "answering-model"
    with FileLock(str(root / "answering-model.lock")):
        if not (folder / "config.json").exists():
            _train_answering_model(folder)
    return str(folder)


@pytest.fixture(scope="session")
def answering(answering_model) -> list[str]:
    """The overrides that make a `ci` run answer with the answering model."""
    return [f"model.name={answering_model}"]


def _labels_kept_and_trained(run_dir: str | Path) -> dict[int, int]:
    """Round -> pseudo-labels kept, after asserting that every round kept some and every client trained on them.

    Read from the run folder alone (a run of another process or engine too). A client trains on its
    private examples plus the labels it holds (the round's; with ``client.accumulate`` every round's so
    far), each ``client.pseudo_repeats`` times, in batches of ``train.batch_size``, ``train.round_epochs``
    times: its step count says how many labels its records held.
    """
    import json
    import math

    from fedcofit_lite.config import load_config
    from fedcofit_lite.runlog import read_jsonl, read_pseudo_labels, rounds_of

    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    assert not cfg.client.skip_own and cfg.train.dp_noise_multiplier == cfg.train.dp_epsilon == 0, "steps unknown"
    # a comparison's or a sweep's method folder shares the partition of the folder above it
    partition = next(p / "partition.json" for p in (run_dir, *run_dir.parents) if (p / "partition.json").exists())
    n_private = {c: p["n_examples"] for c, p in json.loads(partition.read_text()).items()}
    rows = {m["round"]: m for m in read_jsonl(run_dir / "metrics.jsonl")}
    held: dict[str, set[str]] = {c: set() for c in n_private}
    kept_by_round = {}
    for r in rounds_of(run_dir, "pseudo_labels"):
        kept = {x.prompt_id for x in read_pseudo_labels(run_dir, r) if x.kept}
        assert kept, f"{run_dir}: round {r} kept no pseudo-label"
        assert rows[r]["kept"] == len(kept), (r, rows[r]["kept"], len(kept))
        assert rows[r]["train_steps"], f"{run_dir}: nobody trained in round {r}"
        for c, steps in rows[r]["train_steps"].items():
            held[c] = held[c] | kept if cfg.client.accumulate else kept
            n_records = n_private[c] + len(held[c]) * cfg.client.pseudo_repeats
            expected = math.ceil(n_records / cfg.train.batch_size) * cfg.train.round_epochs
            assert steps == expected, f"{run_dir}: {c} trained {steps} steps in round {r}, {expected} with its labels"
        kept_by_round[r] = len(kept)
    assert kept_by_round, f"{run_dir}: no consensus round"
    return kept_by_round


@pytest.fixture(scope="session")
def labels_kept_and_trained():
    """:func:`_labels_kept_and_trained`, for the tests: call it on a run folder before comparing it with another."""
    return _labels_kept_and_trained


@pytest.fixture(scope="session")
def extra_overrides() -> list[str]:
    """FEDCOFIT_TEST_SET's overrides, for a test that starts the package in another process (it passes them with --set)."""
    return list(_EXTRA)


# The files (xdist scopes) that take longest, longest first, measured from a fresh clone
# (`make test PYTEST_ARGS="--durations=0"`). `make test` runs with --no-loadscope-reorder, so the workers
# take the scopes in this order: the slowest start at once instead of ending the run alone.
SLOW_FIRST = (
    "tests/test_flower.py",  # a Flower deployment: SuperLink, SuperNodes and a ClientApp process per message
    "notebooks/11_privacy_audit.ipynb",
    "notebooks/10_flower_engine.ipynb",
    "notebooks/01_quickstart.ipynb",
    "tests/test_privacy.py",
    "tests/test_docs.py",
    "tests/test_compare.py",
    "tests/test_smollm2.py",
    "tests/test_audit.py",
    "tests/test_faults.py",
)


def pytest_collection_modifyitems(config, items):
    """Put the items of :data:`SLOW_FIRST` first, in its order; everything else keeps the collection order."""
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
