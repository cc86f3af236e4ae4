"""Example schema, JSONL I/O, the task-suite loader and client partitioners.

Everything that flows through the federation is an :class:`Example`. A task suite is four JSONL files
(``data/DATA_CARD.md``): ``train`` (labelled, split among clients), ``public`` (unlabelled prompts every client
answers), ``public_references`` (the evaluator's only) and ``test`` (held out). Partitioners split examples among
clients (iid, Dirichlet skew over families, one family per client), deterministically, never losing or duplicating
one. External instruction data (Dolly- or Alpaca-style) is read by :func:`load_instruction_dataset`.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import numbers
import os
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Partition, RunConfig

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "tasks"
SUITE_FILES: dict[str, str] = {k: f"{k}.jsonl" for k in ("train", "public", "public_references", "test")}
SCHEMES: tuple[str, ...] = typing.get_args(Partition)

_REGENERATE_HINT = "run `python data/generate.py` from the repository root to create it"


class DataFormatError(ValueError):
    """A data file or record does not have the expected format."""


# --- schema ----------------------------------------------------------------
@dataclass(frozen=True)
class Example:
    """One instruction example: ``id`` (unique and stable, e.g. ``date_rewrite-train-0007``), ``family`` (a
    task family or category), ``instruction``, optional ``context``, and the reference ``response`` (``""``
    for an unlabelled public prompt).

    Examples
    --------
    >>> ex = Example("a-0", "arithmetic", "What is 2 + 3?", response="5")
    >>> Example.from_dict(ex.to_dict()) == ex
    True
    """

    id: str
    family: str
    instruction: str
    context: str = ""
    response: str = ""

    def to_dict(self) -> dict[str, str]:
        """Return the fields as a dict, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Example:
        """Build an example from a dict: a :class:`DataFormatError` names an unknown, missing, non-string or empty field."""
        if not isinstance(d, Mapping):
            raise DataFormatError(f"expected a JSON object, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = ", ".join(repr(k) for k in d if k not in names)
        problems = [f"unknown field(s) {unknown}; an Example has the fields {', '.join(names)}"] if unknown else []
        problems += [f"missing required field {n!r}" for n in ("id", "family", "instruction") if n not in d]
        problems += [
            f"field {n!r} must be a string, got {type(v).__name__}" for n, v in d.items() if not isinstance(v, str)
        ]
        problems = problems or [f"field {n!r} must not be empty" for n in ("id", "family") if not d[n].strip()]
        if problems:
            raise DataFormatError(problems[0])
        return cls(**d)


# --- JSONL I/O -------------------------------------------------------------
def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line (1-based)."""
    with open(path, encoding="utf-8") as f:
        lineno = 0
        try:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataFormatError(
                        f"{path}, line {lineno}: invalid JSON ({e.msg} at column {e.colno})"
                    ) from None
                if not isinstance(obj, dict):
                    raise DataFormatError(f"{path}, line {lineno}: expected a JSON object, got {type(obj).__name__}")
                yield lineno, obj
        except UnicodeDecodeError as e:
            raise DataFormatError(f"{path}, line {lineno + 1}: not valid UTF-8 ({e.reason})") from None


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON Lines file (blank lines skipped); a line that is not a JSON object is a :class:`DataFormatError`
    naming the file and the line."""
    return [obj for _, obj in _iter_jsonl(Path(path))]


def write_jsonl(path: str | Path, records: Iterable[Mapping[str, Any] | Example]) -> None:
    """Write records as JSON Lines (UTF-8, ``ensure_ascii=False``, ``\\n``; keys in each record's own order, so equal
    inputs give byte-identical files), creating the parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for record in records:
            obj = record.to_dict() if isinstance(record, Example) else dict(record)
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")


def load_examples(path: str | Path) -> list[Example]:
    """Read a JSONL file of :class:`Example` records; a :class:`DataFormatError` names the file, line and field of
    the first invalid record, or the line of a duplicate id."""
    path = Path(path)
    examples: list[Example] = []
    first_line: dict[str, int] = {}
    for lineno, obj in _iter_jsonl(path):
        try:
            example = Example.from_dict(obj)
        except DataFormatError as e:
            raise DataFormatError(f"{path}, line {lineno}: {e}") from None
        if example.id in first_line:
            raise DataFormatError(
                f"{path}, line {lineno}: duplicate id {example.id!r} (first seen on line {first_line[example.id]})"
            )
        first_line[example.id] = lineno
        examples.append(example)
    return examples


# --- the task suite --------------------------------------------------------
def _families_of(*groups: Iterable[Example]) -> tuple[str, ...]:
    """Families in order of first appearance."""
    return tuple(dict.fromkeys(ex.family for group in groups for ex in group))


@dataclass
class TaskSuite:
    """The task suite, as each party of the protocol may see it.

    ``train`` is split among clients; every client answers the unlabelled ``public`` prompts;
    ``public_references`` (public prompt id -> reference) is the evaluator's alone, to measure
    pseudo-label accuracy, never given to clients or the server; ``test`` is held out.
    """

    train: list[Example]
    public: list[Example]
    public_references: dict[str, str]
    test: list[Example]

    def __post_init__(self) -> None:
        labelled = [ex.id for ex in self.public if ex.response]
        if labelled:
            raise DataFormatError(
                f"public prompts must be unlabelled, but {len(labelled)} have a "
                f"response (first: {labelled[0]!r}); put references in public_references"
            )
        stray = [i for i in self.public_references if i not in {ex.id for ex in self.public}]
        if stray:
            raise DataFormatError(
                f"public_references has {len(stray)} id(s) that are not public prompts (first: {stray[0]!r})"
            )

    @property
    def families(self) -> tuple[str, ...]:
        """Families present, in order of first appearance (train, public, test)."""
        return _families_of(self.train, self.public, self.test)


def _load_references(path: Path) -> dict[str, str]:
    """Read ``{"id", "response"}`` records into a dict."""
    references: dict[str, str] = {}
    for lineno, obj in _iter_jsonl(path):
        if set(obj) != {"id", "response"}:
            raise DataFormatError(
                f"{path}, line {lineno}: expected exactly the fields 'id' and "
                f"'response', got {', '.join(map(repr, obj))}"
            )
        wrong = next((n for n in ("id", "response") if not isinstance(obj[n], str)), None)
        if wrong:
            raise DataFormatError(
                f"{path}, line {lineno}: field {wrong!r} must be a string, got {type(obj[wrong]).__name__}"
            )
        if obj["id"] in references:
            raise DataFormatError(f"{path}, line {lineno}: duplicate id {obj['id']!r}")
        references[obj["id"]] = obj["response"]
    return references


def _round_robin_quota(sizes: Mapping[str, int], total: int) -> dict[str, int]:
    """Spread ``total`` as evenly as possible over groups capped at ``sizes``."""
    quota = dict.fromkeys(sizes, 0)
    while total > 0:
        for key, size in sizes.items():
            if total > 0 and quota[key] < size:
                quota[key] += 1
                total -= 1
    return quota


def _proportional_quota(sizes: Mapping[str, int], total: int) -> dict[str, int]:
    """Split ``total`` proportionally to ``sizes`` (largest remainder)."""
    n = sum(sizes.values())
    exact = {key: total * size / n for key, size in sizes.items()}
    quota = {key: math.floor(value) for key, value in exact.items()}
    by_remainder = sorted(sizes, key=lambda key: quota[key] - exact[key])  # stable
    for key in by_remainder[: total - sum(quota.values())]:
        quota[key] += 1
    return quota


def _stratified_sample(
    examples: Sequence[Example], quota: Mapping[str, int], rng: np.random.Generator
) -> list[Example]:
    """Draw ``quota[family]`` examples per family, keeping the input order."""
    keep: list[int] = []
    for family, indices in _group_indices(examples).items():
        chosen = rng.choice(len(indices), size=quota.get(family, 0), replace=False)
        keep.extend(indices[i] for i in chosen)
    return [examples[i] for i in sorted(keep)]


_READ: dict[tuple, tuple] = {}  # the suite folders read last, by their files' paths, inodes, sizes and times


def _read_suite_files(directory: Path) -> tuple[list[Example], list[Example], list[Example], dict[str, str]]:
    """The four files of a task suite folder, checked: (train, public, test, public references)."""
    if not directory.is_dir():
        raise FileNotFoundError(f"task suite folder {directory} does not exist; {_REGENERATE_HINT}")
    files = {key: directory / name for key, name in SUITE_FILES.items()}
    for file in files.values():
        if not file.is_file():
            raise FileNotFoundError(f"task suite file {file} is missing; {_REGENERATE_HINT}")

    stats = [(str(f.resolve()), os.stat(f)) for f in files.values()]
    key = tuple((p, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) for p, st in stats)  # ctime: cp -p too
    read = _READ.get(key)
    if read is None:  # analysing a sweep builds every cell's suite: hundreds of reads of the same few folders
        splits = [load_examples(files[k]) for k in ("train", "public", "test")]  # TaskSuite refuses a labelled prompt
        read = _READ[key] = (*splits, _load_references(files["public_references"]))
        while len(_READ) > 4:
            _READ.pop(next(iter(_READ)), None)
    train, public, test, references = read
    missing = [ex.id for ex in public if ex.id not in references]
    if missing or len(references) != len(public):
        raise DataFormatError(
            f"{files['public_references']} does not match {files['public']}: {len(references)} references for "
            f"{len(public)} prompts, {len(missing)} prompt(s) without one; {_REGENERATE_HINT}"
        )
    return list(train), list(public), list(test), dict(references)  # copies: the callers cut them


def load_task_suite(
    path: str | Path = DEFAULT_DATA_DIR,
    families: Sequence[str] | None = None,
    n_public: int | None = None,
    n_test_per_family: int | None = None,
    seed: int = 0,
) -> TaskSuite:
    """Load the task suite in ``path`` (the four files ``data/generate.py`` writes), subsampled.

    ``families`` keeps only those; ``n_public`` keeps that many public prompts, balanced across families (the first
    in file order get the remainder); ``n_test_per_family`` caps each family's test items; ``seed`` seeds the
    subsampling; kept examples keep their file order. Errors: ``FileNotFoundError`` (saying how to create the suite),
    ``DataFormatError`` (a malformed file or public prompt), ``ValueError`` (an unknown family, a size out of range).
    """
    directory = Path(path)
    train, public, test, references = _read_suite_files(directory)
    available = _families_of(train, public, test)
    if families is not None:
        unknown = [f for f in families if f not in available]
        if unknown or not families:
            what = f"unknown family {', '.join(map(repr, unknown))}" if unknown else "no family"
            raise ValueError(f"{what} requested; available in {directory}: {', '.join(available)}")
        train, public, test = ([ex for ex in split if ex.family in families] for split in (train, public, test))

    if n_public is not None:
        if not 1 <= n_public <= len(public):
            raise ValueError(
                f"n_public must be between 1 and the {len(public)} public prompts available, got {n_public}"
            )
        quota = _round_robin_quota(_group_sizes(public), n_public)
        public = _stratified_sample(public, quota, np.random.default_rng([seed, 0]))
    if n_test_per_family is not None:
        if n_test_per_family < 1:
            raise ValueError(f"n_test_per_family must be >= 1, got {n_test_per_family}")
        quota = {f: min(n, n_test_per_family) for f, n in _group_sizes(test).items()}
        test = _stratified_sample(test, quota, np.random.default_rng([seed, 1]))

    suite = TaskSuite(train, public, {ex.id: references[ex.id] for ex in public}, test)
    logger.info(
        "loaded task suite from %s: %d train, %d public, %d test, families %s",
        directory, len(train), len(public), len(test), ", ".join(suite.families),
    )  # fmt: skip
    return suite


# --- partitioners ----------------------------------------------------------
def _group_indices(examples: Sequence[Example]) -> dict[str, list[int]]:
    """Family -> indices into ``examples``, families in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(ex.family, []).append(i)
    return groups


def _group_sizes(examples: Sequence[Example]) -> dict[str, int]:
    return {family: len(ix) for family, ix in _group_indices(examples).items()}


def _check_n_clients(examples: Sequence[Example], n_clients: int) -> None:
    whole = isinstance(n_clients, numbers.Integral) and not isinstance(n_clients, bool)  # numpy integers too
    if not (whole and 1 <= n_clients <= len(examples)):
        raise ValueError(
            f"n_clients must be an integer between 1 and the number of examples ({len(examples)}), got {n_clients!r}"
        )


def _check_alpha(alpha: float) -> None:
    if not (isinstance(alpha, numbers.Real) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(
            f"alpha must be a finite number > 0 (Dirichlet concentration: "
            f"0.1 is very skewed, 100 is near-iid), got {alpha!r}"
        )


def _materialize(
    examples: Sequence[Example], buckets: list[list[int]], rng: np.random.Generator
) -> list[list[Example]]:
    # Shuffle within each client so that a training loop that does not shuffle still sees the families mixed.
    return [[examples[i] for i in rng.permutation(np.asarray(b, dtype=int))] for b in buckets]


def partition_iid(examples: Sequence[Example], n_clients: int, seed: int = 0) -> list[list[Example]]:
    """Split examples uniformly at random into ``n_clients`` parts whose sizes differ by at most one, each in a
    seeded random order."""
    _check_n_clients(examples, n_clients)
    order = np.random.default_rng(seed).permutation(len(examples))
    return [[examples[i] for i in chunk] for chunk in np.array_split(order, n_clients)]


def partition_dirichlet(
    examples: Sequence[Example], n_clients: int, alpha: float, seed: int = 0
) -> list[list[Example]]:
    """Split examples with Dirichlet label skew over families.

    Each family's shuffled examples are cut in proportions drawn from ``Dirichlet(alpha, ..., alpha)``: small
    ``alpha`` (0.1) gives each client a few dominant families, large ``alpha`` (100) approaches iid. A client left
    empty gets one example of the largest client's most frequent family.
    """
    _check_n_clients(examples, n_clients)
    _check_alpha(alpha)
    rng = np.random.default_rng(seed)
    buckets: list[list[int]] = [[] for _ in range(n_clients)]
    for indices in _group_indices(examples).values():
        shuffled = rng.permutation(indices)
        proportions = rng.dirichlet(np.full(n_clients, float(alpha)))
        cuts = np.round(np.cumsum(proportions)[:-1] * len(shuffled)).astype(int)
        pieces = np.split(shuffled, np.clip(cuts, 0, len(shuffled)))
        for bucket, chunk in zip(buckets, pieces, strict=True):
            bucket.extend(int(i) for i in chunk)

    for bucket in [b for b in buckets if not b]:
        donor = max(buckets, key=len)  # first largest; has >= 2 by pigeonhole
        families = [examples[i].family for i in donor]
        top = max(dict.fromkeys(families), key=families.count)
        bucket.append(donor.pop(len(families) - 1 - families[::-1].index(top)))
    return _materialize(examples, buckets, rng)


def partition_by_family(examples: Sequence[Example], n_clients: int, seed: int = 0) -> list[list[Example]]:
    """Give each client whole families (extreme label skew), assigned round-robin in order of appearance; with more
    clients than families, client ``i`` shares family ``i % n_families`` evenly with its other clients (a
    ``ValueError`` if it has too few)."""
    _check_n_clients(examples, n_clients)
    rng = np.random.default_rng(seed)
    groups = list(_group_indices(examples).items())
    buckets: list[list[int]] = [[] for _ in range(n_clients)]
    for f, (family, indices) in enumerate(groups):
        if n_clients <= len(groups):
            buckets[f % n_clients].extend(indices)
            continue
        clients = list(range(f, n_clients, len(groups)))
        if len(indices) < len(clients):
            raise ValueError(
                f"n_clients={n_clients}: family {family!r} has {len(indices)} "
                f"example(s) for {len(clients)} clients; use fewer clients"
            )
        for c, chunk in zip(clients, np.array_split(rng.permutation(indices), len(clients)), strict=True):
            buckets[c].extend(int(i) for i in chunk)
    return _materialize(examples, buckets, rng)


def partition(
    examples: Sequence[Example], scheme: Partition, n_clients: int, alpha: float = 0.5, seed: int = 0
) -> list[list[Example]]:
    """Split examples among ``n_clients`` clients (1 to ``len(examples)``) with the named scheme.

    The schemes are :func:`partition_iid`, :func:`partition_dirichlet` (concentration ``alpha``, validated always) and
    :func:`partition_by_family`. None loses or duplicates an example; equal arguments give equal partitions, each
    client's list in a seeded random order.

    Examples
    --------
    >>> exs = [Example(f"x-{i}", "f", f"q{i}") for i in range(10)]
    >>> [len(p) for p in partition(exs, "iid", n_clients=3)]
    [4, 3, 3]
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown partition scheme {scheme!r}; choose from {', '.join(SCHEMES)}")
    _check_alpha(alpha)
    if scheme == "iid":
        return partition_iid(examples, n_clients, seed)
    if scheme == "dirichlet":
        return partition_dirichlet(examples, n_clients, alpha, seed)
    return partition_by_family(examples, n_clients, seed)


def cap_per_client(parts: Sequence[Sequence[Example]], max_examples: int, seed: int = 0) -> list[list[Example]]:
    """Subsample each client's examples to at most ``max_examples``, each family keeping a share proportional to its
    size (largest remainder); clients under the cap are unchanged, kept examples keep their order."""
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be an integer >= 1, got {max_examples!r}")
    capped: list[list[Example]] = []
    for c, part in enumerate(parts):
        if len(part) <= max_examples:
            capped.append(list(part))
            continue
        quota = _proportional_quota(_group_sizes(part), max_examples)
        capped.append(_stratified_sample(part, quota, np.random.default_rng([seed, c])))
    return capped


def family_histogram(parts: Sequence[Sequence[Example]], families: Sequence[str] | None = None) -> list[dict[str, int]]:
    """Examples per family for each client, zeros included: the same keys in every dict (``families``, then the
    families present but not listed, sorted), ready for ``pandas.DataFrame`` or a heatmap."""
    keys = list(dict.fromkeys([*(families or ()), *sorted(_families_of(*parts))]))
    return [{k: sum(ex.family == k for ex in part) for k in keys} for part in parts]


# --- external instruction datasets -----------------------------------------


def _record_to_example(record: Mapping[str, Any], example_id: str, family_field: str | None) -> Example:
    """Map a Dolly- or Alpaca-style record to an :class:`Example`."""
    if "instruction" in record and "response" in record:
        context_key, response_key, default_family = "context", "response", record.get("category")
    elif "instruction" in record and "output" in record:
        context_key, response_key, default_family = "input", "output", None
    else:
        raise DataFormatError(
            "record matches neither the Dolly schema (fields instruction, context, response, category) nor the Alpaca "
            f"schema (fields instruction, input, output); it has the fields {', '.join(map(repr, record))}"
        )
    context, response = record.get(context_key) or "", record[response_key]
    values = {"instruction": record["instruction"], "context": context, "response": response}
    if family_field is not None:
        if family_field not in record:
            raise DataFormatError(f"family_field {family_field!r} is not a field of the record")
        default_family = record[family_field]
    values["family"] = default_family or "general"
    for name, value in values.items():
        if not isinstance(value, str):
            raise DataFormatError(f"field {name!r} must be a string, got {type(value).__name__}")
    return Example(id=example_id, **values)


def _hub_records(name: str, split: str) -> Iterable[Mapping[str, Any]]:
    """Load a Hugging Face hub dataset split, with errors that say what to do."""
    try:
        import datasets
    except ImportError as e:
        raise ImportError(
            f"{name!r} is not a local file, so it is read from the Hugging Face hub, which needs the `datasets` "
            "package: pip install datasets (or pass the path of a local .json/.jsonl file instead)"
        ) from e
    try:
        return datasets.load_dataset(name, split=split)
    except Exception as e:
        flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
        offline = any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"} for v in flags)
        why = (
            "Hugging Face offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)"
            if offline
            else "the hub could not be reached or has no such dataset/split"
        )
        detail = f"{type(e).__name__}: {e}"[:300]
        raise RuntimeError(
            f"could not load the Hugging Face dataset {name!r} (split {split!r}): {why} [{detail}]. To use it, go "
            "online once so that `datasets` caches it, or download it as a .json (list of records) or .jsonl file "
            "and pass that file's path instead."
        ) from e


def _looks_like_path(source: str | Path) -> bool:
    text = str(source)
    return isinstance(source, Path) or text.endswith((".json", ".jsonl")) or text.startswith(("/", "./", "../", "~"))


def _local_records(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield ``(location, record)`` from a local ``.json`` or ``.jsonl`` file."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from ((f"line {lineno}", obj) for lineno, obj in _iter_jsonl(path))
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{path}, line {e.lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(data, list):
            raise DataFormatError(f"{path}: a .json file must hold a list of records, got {type(data).__name__}")
        yield from ((f"record {i}", obj) for i, obj in enumerate(data, start=1))
    else:
        raise DataFormatError(f"{path}: expected a .json (list of records) or .jsonl file")


def load_instruction_dataset(
    source: str | Path, split: str = "train", limit: int | None = None, family_field: str | None = None
) -> list[Example]:
    """Load Dolly- or Alpaca-style instruction data as examples.

    Each record's schema is detected on its own: Dolly (``instruction``, ``context``, ``response``, ``category`` ->
    family) or Alpaca (``instruction``, ``input``, ``output``; family ``general``), unless ``family_field`` names the
    family's field. ``source`` is a local ``.json`` (a list) or ``.jsonl`` file, or else a Hugging Face hub dataset
    name (``databricks/databricks-dolly-15k``, its ``split``); ``limit`` keeps the first records. Ids are
    ``{stem}-{index:05d}``. Errors: ``DataFormatError`` (naming file and line), ``FileNotFoundError``, and for a hub
    dataset ``ImportError`` (no ``datasets``) or ``RuntimeError`` (offline: how to provide the data instead).
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    path = Path(source).expanduser()
    if path.is_file():
        stem, origin = path.stem, str(path)
        located: Iterable[tuple[str, Any]] = _local_records(path)
    elif _looks_like_path(source):
        raise FileNotFoundError(
            f"instruction data file {path} does not exist; pass an existing .json/.jsonl file or a Hugging Face hub dataset name"
        )
    else:
        name = str(source)
        stem, origin = name.rstrip("/").rsplit("/", 1)[-1], f"hub dataset {name!r}"
        located = ((f"record {i}", r) for i, r in enumerate(_hub_records(name, split), start=1))

    examples: list[Example] = []
    for index, (where, record) in enumerate(itertools.islice(located, limit)):
        if not isinstance(record, Mapping):
            raise DataFormatError(f"{origin}, {where}: expected a JSON object, got {type(record).__name__}")
        try:
            examples.append(_record_to_example(record, f"{stem}-{index:05d}", family_field))
        except DataFormatError as e:
            raise DataFormatError(f"{origin}, {where}: {e}") from None
    logger.info("loaded %d examples from %s", len(examples), origin)
    return examples


def resolve_data_path(path: str) -> Path:
    """A relative ``data.path`` is tried from the working directory, then from the repository."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    repo_relative = DEFAULT_DATA_DIR.parent.parent / p
    return repo_relative if repo_relative.exists() else p


def instruction_suite(
    examples: Sequence[Example],
    families: Sequence[str] | None = None,
    n_public: int = 48,
    n_test_per_family: int = 8,
    seed: int = 0,
    max_response_words: int = 0,
) -> TaskSuite:
    """A task suite cut from instruction data (Dolly/Alpaca records): per family (category), test, public and train.

    Records whose response is longer than ``max_response_words`` words go first (0 = keep all). Each family's records
    are shuffled with ``seed``: the first ``n_test_per_family`` are test items, the next its share of the ``n_public``
    public prompts (their responses the hidden references), the rest train. An unknown family, or one with too few
    records, is a ``ValueError``.
    """
    pool = [e for e in examples if not max_response_words or len(e.response.split()) <= max_response_words]
    available = _families_of(pool)
    if families:
        unknown = [f for f in families if f not in available]
        if unknown:
            raise ValueError(
                f"data.families {unknown} not in the instruction data (after max_response_words={max_response_words}); "
                f"its categories are {', '.join(available)}"
            )
        pool = [e for e in pool if e.family in set(families)]
    groups = _group_indices(pool)
    if not groups:
        raise ValueError("the instruction data holds no record to use; check data.source and data.max_response_words")
    small = {f: len(ix) for f, ix in groups.items() if len(ix) < n_test_per_family + 1}
    if small:
        raise ValueError(
            f"families {small} have too few records for n_test_per_family={n_test_per_family} and one train record; "
            "lower data.n_test_per_family or leave them out of data.families"
        )
    spare = {f: max(0, len(ix) - n_test_per_family - 1) for f, ix in groups.items()}  # after test and one train record
    if n_public > sum(spare.values()):
        raise ValueError(
            f"n_public={n_public} public prompts, but the {len(pool)} usable records of families "
            f"{', '.join(groups)} leave only {sum(spare.values())} after {n_test_per_family} test and one train record "
            "per family; lower data.n_public / data.n_test_per_family or use more data (data.source_limit, data.max_response_words)"
        )
    quota = _round_robin_quota(spare, n_public)
    rng = np.random.default_rng([seed, 2])
    train, public, references, test = [], [], {}, []
    for family, indices in groups.items():
        order = [pool[i] for i in rng.permutation(indices)]
        test += order[:n_test_per_family]
        for e in order[n_test_per_family : n_test_per_family + quota[family]]:
            public.append(Example(e.id, e.family, e.instruction, e.context, ""))
            references[e.id] = e.response
        train += order[n_test_per_family + quota[family] :]
    return TaskSuite(train=train, public=public, public_references=references, test=test)


def build_suite(cfg: RunConfig) -> TaskSuite:
    """The task suite a ``RunConfig`` selects: cut from ``data.source`` (:func:`instruction_suite`) when set, else
    the project's suite in ``data.path``, with its families, public and test sizes and seed."""
    d = cfg.data
    if d.source:
        if not (d.n_public and d.n_test_per_family):
            raise ValueError(
                "data.source cuts public and test splits from the records: data.n_public and data.n_test_per_family "
                f"must be numbers (0 = all means nothing there), got {d.n_public} and {d.n_test_per_family}"
            )
        source = resolve_data_path(d.source) if _looks_like_path(d.source) else d.source
        records = load_instruction_dataset(source, limit=d.source_limit or None)
        return instruction_suite(
            records, d.families or None, d.n_public, d.n_test_per_family, cfg.seed, d.max_response_words
        )
    path, families = resolve_data_path(d.path), d.families or None
    return load_task_suite(path, families, d.n_public or None, d.n_test_per_family or None, cfg.seed)
