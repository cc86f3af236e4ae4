"""Typed run configuration: dataclasses with help text, YAML presets, validation.

Every option is a dataclass field whose ``metadata["help"]`` says what it does. Presets live in ``configs/*.yaml``
(``ci`` for tests, ``cpu`` the default, ...) and are loaded by :func:`load_config`; ``--set section.field=value``
overrides are applied by :func:`apply_overrides`. Values are checked in :meth:`RunConfig.validate` and raise
:class:`ConfigError` with the dotted field name and the fix. A name that a registry declares (clusterer, rule, method,
task family) is a plain string here, the lowest layer, and is checked against its registry by
:func:`fedcofit_lite.federation.methods.check_names` before any training.
"""

from __future__ import annotations

import copy
import dataclasses
import operator
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

Partition = Literal["iid", "dirichlet", "by_family"]
DType = Literal["auto", "float32", "bfloat16", "float16"]
Attention = Literal["auto", "eager", "sdpa"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Behaviour = Literal["honest", "random_text", "constant", "echo", "colluder"]  # federation.adversary implements each


class ConfigError(ValueError):
    """A configuration value is missing, unknown, mistyped or impossible."""


def _f(default: Any, help: str) -> Any:
    """Dataclass field with help text (mutable defaults are copied)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


option = _f  # a registry's own parameter dataclass (a clusterer's, say) declares its fields with it


@dataclass
class ModelConfig:
    # fmt: off
    name: str = _f("smollm2-135m", "Registry name (smollm2-135m, gemma3-270m, tiny-random), hub id or local path.")
    dtype: DType = _f("auto", "Compute dtype of the frozen base (its weights are stored in it; LoRA weights and optimizer state stay float32); auto = bfloat16 where the hardware has it natively (a bf16 GPU, a CPU with AVX-512 BF16 or AMX), float32 otherwise.")
    device: Device = _f("auto", "Where the model runs; auto = cuda if available, else cpu.")
    attention: Attention = _f("auto", "Attention kernel: auto = eager on CPU (faster for these short sequences), sdpa on GPU.")
    trust_remote_code: bool = _f(False, "Allow code from the model repository to run. Off unless you trust it.")
    # fmt: on


@dataclass
class LoraConfig:
    # fmt: off
    r: int = _f(16, "LoRA rank.")
    alpha: int = _f(32, "LoRA scaling numerator (scale = alpha / r).")
    dropout: float = _f(0.05, "Dropout on the LoRA input.")
    target_modules: list[str] = _f(["q_proj", "k_proj", "v_proj", "o_proj"], "Module names that get adapters.")
    # fmt: on


@dataclass
class TrainConfig:
    # fmt: off
    lr: float = _f(1e-3, "AdamW learning rate for the adapter.")
    epochs: int = _f(3, "Epochs over the private data in the first (local) round.")
    round_epochs: int = _f(1, "Epochs over private data + pseudo-labels in each consensus round.")
    batch_size: int = _f(8, "Examples per optimizer step.")
    max_length: int = _f(128, "Token limit of prompt + answer; longer examples are truncated from the left.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm (0 disables).")
    prox_mu: float = _f(0.01, "FedProx proximal weight mu (method fedprox only).")
    dp_noise_multiplier: float = _f(0.0, "DP-SGD noise multiplier sigma; 0 = no differential privacy.")
    dp_max_grad_norm: float = _f(1.0, "DP-SGD per-example gradient clipping norm C (noise std = sigma x C).")
    dp_delta: float = _f(1e-5, "Delta of the reported (epsilon, delta); keep it below 1 / (records per client).")
    dp_epsilon: float = _f(0.0, "DP-SGD by target: each client's noise multiplier is set so that its planned training (epochs + rounds x round_epochs over its private records) spends this epsilon at dp_delta; 0 = use dp_noise_multiplier as given.")
    only_b: bool = _f(False, "Train only the LoRA B factors (A stays at its seeded random start, as in FFA-LoRA): half the trainable parameters, so DP-SGD's noise spreads over half as many dimensions.")
    group_by_length: bool = _f(True, "Batch records of similar length together (within random windows of 4 batches): less padding.")
    share_prefix: bool = _f(True, "Run the prompt prefix that every record of a batch shares (the chat template's system turn) once per batch, its KV cache repeated for the rows.")
    together: bool = _f(True, "Train the clients of one architecture together: one forward and backward per step over every client's batch, each row through its own adapter, each client with its own optimizer (DP-SGD trains each client alone). Same updates as one client at a time, up to float rounding and LoRA dropout draws.")
    # fmt: on


@dataclass
class GenerationConfig:
    # fmt: off
    max_new_tokens: int = _f(24, "Answer length limit in tokens.")
    do_sample: bool = _f(False, "Sample instead of greedy decoding.")
    temperature: float = _f(0.7, "Sampling temperature (only with do_sample).")
    top_p: float = _f(0.9, "Nucleus sampling mass (only with do_sample).")
    batch_size: int = _f(32, "Sequences per batch (prompts grouped by length).")
    share_prefix: bool = _f(True, "Compute the prompt prefix every prompt of a batch shares (the chat template's system turn) once per adapter, not once per prompt.")
    adapter_batches: Literal["mixed", "per_adapter"] = _f("mixed", "mixed = one batch may hold several clients' adapters (peft mixed-adapter batch); per_adapter = each batch holds one adapter's prompts.")
    # fmt: on


@dataclass
class DataConfig:
    # fmt: off
    path: str = _f("data/tasks", "Folder of the task suite (train/public/public_references/test JSONL).")
    families: list[str] = _f([], "Task families to use (names of tasks.families.REGISTRY, or data.source's categories); empty = all.")
    partition: Partition = _f("dirichlet", "How the private training pool is split across clients.")
    dirichlet_alpha: float = _f(0.5, "Dirichlet concentration (small = skewed), partition=dirichlet only.")
    max_train_per_client: int = _f(64, "Cap on each client's private examples (0 = no cap).")
    n_public: int = _f(48, "Public unlabelled prompts answered per round (0 = all).")
    n_test_per_family: int = _f(8, "Held-out test examples per family (0 = all).")
    source: str = _f("", "Instruction data instead of data.path: a Dolly/Alpaca-style .json/.jsonl file, or a hub dataset name (online), e.g. databricks/databricks-dolly-15k; families are its categories.")
    source_limit: int = _f(0, "data.source: read only the first N records (0 = all).")
    max_response_words: int = _f(0, "data.source: drop records whose response is longer than this many words (0 = keep all).")
    # fmt: on


@dataclass
class ConsensusConfig:
    # fmt: off
    embedder: str = _f("all-MiniLM-L6-v2", "Sentence embedder: the packaged all-MiniLM-L6-v2, a sentence-transformers id or a path.")
    clusterer: str = _f("agglomerative", "Per-prompt clustering algorithm: a name of protocol.cluster.REGISTRY.")
    clusterer_params: dict[str, Any] = _f({}, "The named clusterer's own parameters, checked by its spec (`options` lists each clusterer's), e.g. {distance_threshold: 0.2} for agglomerative; one left out takes the spec's default.")
    min_agreement: float = _f(0.5, "Drop prompts whose agreement (dominant-cluster share) is below this.")
    rule: str = _f("medoid", "Consensus rule: a name of protocol.consensus.RULES (medoid: the largest semantic cluster's medoid; vote: exact-string majority; guarded: medoid with guard=numbers; ...).")
    # benchmarks/min_cohesion.py measures a floor of 0.7 as safe: every group of right phrasings of one free-form
    # reference is >= 0.755 under MiniLM, while 72% of the groups of all-different answers of the cpu reference are
    # below 0.7. The shipped reference runs (notebooks/reference/build.py) are built with it.
    min_cohesion: float = _f(0.7, "A group of answers whose mean pairwise cosine is below this is split into single answers, so no large group of unrelated answers (k-means' one-cluster fallback, a DBSCAN/HDBSCAN chain) wins a prompt; 0.7 is the measured safe floor; 0 = off.")
    min_confidence: float = _f(0.0, "rule=confidence: keep a prompt only if an answer of its winning group is at least this confident.")
    guard: Literal["none", "numbers"] = _f("none", "numbers: answers whose numbers (in order) or capitals differ never share a semantic group, however close their embeddings (MiniLM puts 12/06/1963 next to 06/12/1963); none = the embedding alone decides.")
    reliability_by: Literal["client", "family"] = _f("client", "rule=reliability: one weight per client, or per client and task family.")
    dp_sigma: float = _f(0.0, "Private consensus (needs rule=vote): std of the Gaussian noise on each normalized answer's vote count; a label is released only when its noisy count passes a threshold set by dp_delta (replaces min_agreement). Client-level DP of the released labels; 0 = off.")
    dp_delta: float = _f(1e-5, "Private consensus: delta of the release threshold and of the epsilon conversion (the reported total delta is twice this).")
    dp_seed: int = _f(-1, "Private consensus: seed of the vote's noise; -1 = a secret one from the OS (the guarantee needs the clients not to know it, and on Flower every client receives the config), not reproducible; >= 0 = a reproducible experiment.")
    # fmt: on


@dataclass
class CompetenceConfig:
    # fmt: off
    record: list[str] = _f(["closeness"], "Competence signals every client computes and the run records beside its answers (answers/round_R.jsonl), so replay and the rule benchmark can refit any rule on them; names of protocol.competence.SIGNALS. A signal is sent (and counted on the wire) only when the consensus rule reads it. In-process engine only; on Flower a client computes only what it sends.")
    samples: int = _f(5, "consistency signal: sampled answers per public prompt (k), at generation.temperature and generation.top_p; costs k more generations per round, only under a rule that reads it.")
    holdout: int = _f(0, "calibrated signal: each client holds this many of its private records out of training, answers them every round and maps its confidence to the chance of being right on them (Platt scaling); 0 = off (a rule that reads it asks for it).")
    # fmt: on


@dataclass
class ClientConfig:
    # fmt: off
    accumulate: bool = _f(False, "Keep pseudo-labels across rounds (the newest per prompt) instead of replacing them every round.")
    weight_by_score: bool = _f(False, "Weight each pseudo-label's loss by the agreement score the server sent with it.")
    skip_own: bool = _f(False, "Skip pseudo-labels equal to the client's own answer (they teach it nothing new).")
    pseudo_repeats: int = _f(1, "Times each pseudo-label appears per epoch: the mix of public and private records per step.")
    # fmt: on


@dataclass
class FederationConfig:
    # fmt: off
    method: str = _f("consensus", "What clients exchange each round: a name of federation.methods.METHODS (consensus: answers; fedavg, fedprox, ffa: LoRA tensors; local: nothing; centralized: the data), or consensus@RULE.")
    n_clients: int = _f(4, "Number of clients.")
    rounds: int = _f(2, "Communication rounds after the local round.")
    client_models: list[str] = _f([], "Per-client model names (mixed architectures); empty = model.name for all.")
    max_answer_chars: int = _f(2000, "Server rejects answers longer than this.")
    min_clients: int = _f(1, "A round needs at least this many clients' messages accepted; with fewer it fails cleanly (then run --resume).")
    behaviours: list[Behaviour] = _f([], "Per-client simulated behaviour: honest, random_text, constant, echo, colluder (empty = all honest); under fedavg/fedprox the analogous parameter fault is sent.")
    dropout: float = _f(0.0, "Simulated faults: probability that a client drops out of a round (seeded, consensus/fedavg/fedprox).")
    black_box_clients: list[int] = _f([], "Clients (by index) that only answer, with their frozen base model, and never train: consensus runs with them, parameter methods refuse them.")
    send_changed: bool = _f(False, "Adaptive communication: from its second message on, a client sends only the answers (and confidences) that changed since the ones the server holds of it, and the server completes the message with those; the consensus is the one of full messages, the bytes up fewer (bytes_up_saved in the metrics row). In-process engine only (run, compare, sweep); Flower refuses it.")
    timeout_s: float = _f(1800.0, "Flower engine: seconds the server waits for the clients' replies to one request; a client that has not replied by then is a dropout of that round.")
    # fmt: on


@dataclass
class CompareConfig:
    # fmt: off
    methods: list[str] = _f(["consensus", "fedavg", "ffa", "local", "centralized"], "Methods run by the compare command, on one partition and seed (names as federation.method; consensus@vote: consensus under the vote rule).")
    n_test_per_family: int = _f(0, "Test items per family scored in a comparison (0 = all 25; replaces data.n_test_per_family there).")
    metric: Literal["exact_match", "correct"] = _f("exact_match", "Score of the multi-seed table: exact_match, or correct (content-checked on free-form families, equal to exact match elsewhere).")
    # fmt: on


@dataclass
class EvalConfig:
    # fmt: off
    embedding_similarity: bool = _f(True, "Also score answers by embedder cosine similarity to the reference.")
    every_round: bool = _f(True, "Evaluate after every round (else only base, local and last).")
    rounds: list[int] = _f([], "Evaluate after these rounds only (base, local and the last round always); empty = eval.every_round decides. A sweep sets it to the rounds it reports.")
    energy: Literal["auto", "rapl", "estimate"] = _f("auto", "Energy of each stage in its metrics row (energy_j, energy_source): auto = the CPU's RAPL counters where readable (the whole package: other processes count too; on Flower the server's machine only), else an estimate; rapl = the counters, or an error; estimate = this process's CPU seconds x eval.watts_per_core.")
    watts_per_core: float = _f(10.0, "The estimate's power per busy core in watts (about a server CPU's rated power / its cores); stated in every estimated row.")
    # fmt: on

    def scores(self, round_index: int, last_round: int) -> bool:
        """True when the stage of ``round_index`` is scored on the test set (base -1, local 0 and the last always)."""
        if round_index <= 0 or round_index == last_round:
            return True
        return round_index in self.rounds if self.rounds else self.every_round


@dataclass
class RunConfig:
    # fmt: off
    name: str = _f("run", "Run name; the run folder is <output_dir>/<name>-<timestamp>.")
    seed: int = _f(0, "Seed for partitioning, initialisation, dropout, sampling.")
    output_dir: str = _f("runs", "Where run folders are written.")
    # fmt: on
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    data: DataConfig = field(default_factory=DataConfig)
    consensus: ConsensusConfig = field(default_factory=ConsensusConfig)
    competence: CompetenceConfig = field(default_factory=CompetenceConfig)
    client: ClientConfig = field(default_factory=ClientConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)

    def validate(self) -> RunConfig:
        """Reject impossible values with the field name and the fix; return self."""
        # fmt: off
        checks: list[tuple[bool, str, str]] = [
            (self.seed >= 0, "seed", "must be >= 0 (numpy generators reject negative seeds)"),
            (self.federation.n_clients >= 1, "federation.n_clients", "must be >= 1"),
            (self.federation.rounds >= 0, "federation.rounds", "must be >= 0 (0 = local training only)"),
            (self.federation.max_answer_chars >= 1, "federation.max_answer_chars", "must be >= 1"),
            (0.0 <= self.federation.dropout < 1.0, "federation.dropout", "must be in [0, 1)"),
            (self.federation.timeout_s > 0, "federation.timeout_s", "must be > 0 seconds"),
            (self.lora.r >= 1, "lora.r", "LoRA rank must be >= 1"),
            (self.lora.alpha > 0, "lora.alpha", "must be > 0"),
            (0.0 <= self.lora.dropout < 1.0, "lora.dropout", "must be in [0, 1)"),
            (len(self.lora.target_modules) > 0, "lora.target_modules", "name at least one module, e.g. [q_proj, v_proj]"),
            (self.train.lr > 0, "train.lr", "must be > 0"),
            (self.train.epochs >= 0, "train.epochs", "must be >= 0"),
            (self.train.round_epochs >= 0, "train.round_epochs", "must be >= 0"),
            (self.train.batch_size >= 1, "train.batch_size", "must be >= 1"),
            (self.train.max_length >= 16, "train.max_length", "must be >= 16 tokens"),
            (self.train.max_grad_norm >= 0, "train.max_grad_norm", "must be >= 0 (0 disables clipping)"),
            (self.train.prox_mu >= 0, "train.prox_mu", "must be >= 0"),
            (self.train.dp_noise_multiplier >= 0, "train.dp_noise_multiplier", "must be >= 0 (0 disables DP-SGD)"),
            (self.train.dp_max_grad_norm > 0, "train.dp_max_grad_norm", "must be > 0"),
            (0 < self.train.dp_delta < 1, "train.dp_delta", "must be in (0, 1), typically 1e-5"),
            (self.train.dp_epsilon >= 0, "train.dp_epsilon", "must be >= 0 (0 = set train.dp_noise_multiplier instead)"),
            (self.generation.max_new_tokens >= 1, "generation.max_new_tokens", "must be >= 1"),
            (self.generation.batch_size >= 1, "generation.batch_size", "must be >= 1"),
            (self.generation.temperature > 0, "generation.temperature", "must be > 0"),
            (0 < self.generation.top_p <= 1, "generation.top_p", "must be in (0, 1]"),
            (self.data.dirichlet_alpha > 0, "data.dirichlet_alpha", "must be > 0"),
            (self.data.max_train_per_client >= 0, "data.max_train_per_client", "must be >= 0 (0 = no cap)"),
            (self.data.n_public >= 0, "data.n_public", "must be >= 0 (0 = all)"),
            (self.data.n_test_per_family >= 0, "data.n_test_per_family", "must be >= 0 (0 = all)"),
            (self.compare.n_test_per_family >= 0, "compare.n_test_per_family", "must be >= 0 (0 = all)"),
            (0 <= self.consensus.min_agreement <= 1, "consensus.min_agreement", "must be in [0, 1]"),
            (self.competence.samples >= 2, "competence.samples", "must be >= 2 (semantic entropy needs several samples)"),
            (self.competence.holdout >= 0, "competence.holdout", "must be >= 0 records (0 = no calibration set)"),
            (0 <= self.consensus.min_cohesion <= 1, "consensus.min_cohesion", "is a mean cosine similarity in [0, 1] (0 = off)"),
            (0 <= self.consensus.min_confidence <= 1, "consensus.min_confidence", "must be in [0, 1]"),
            (self.consensus.dp_sigma >= 0, "consensus.dp_sigma", "must be >= 0 (0 = no private consensus)"),
            (0 < self.consensus.dp_delta < 1, "consensus.dp_delta", "must be in (0, 1), typically 1e-5"),
            (self.consensus.dp_seed >= -1, "consensus.dp_seed", "must be -1 (a secret seed from the OS) or >= 0"),
            (self.client.pseudo_repeats >= 1, "client.pseudo_repeats", "must be >= 1"),
            (self.eval.watts_per_core > 0, "eval.watts_per_core", "must be > 0 watts per busy core, e.g. 10"),
        ] + self._cross_field_checks()
        # fmt: on
        for ok, name, fix in checks:
            if not ok:
                raise ConfigError(f"{name} = {operator.attrgetter(name)(self)!r}: {fix}.")
        return self

    def _cross_field_checks(self) -> list[tuple[bool, str, str]]:
        """The checks of one field against another (the method, the rule, the client count)."""
        n, methods, dp_sgd = self.federation.n_clients, self.compare.methods, self.train.dp_noise_multiplier > 0
        fedprox = "fedprox" in [*methods, self.federation.method]  # the run's method, or one it compares
        # fmt: off
        return [
            (len(self.federation.behaviours) in (0, n), "federation.behaviours",
             f"give one behaviour per client (federation.n_clients = {n}), or an empty list for all honest"),
            (len(self.federation.client_models) in (0, n), "federation.client_models",
             f"give one model per client (federation.n_clients = {n}), or an empty list to use model.name for all"),
            (1 <= self.federation.min_clients <= n, "federation.min_clients", f"must be in [1, federation.n_clients = {n}]"),
            (all(0 <= i < n for i in self.federation.black_box_clients), "federation.black_box_clients",
             f"client indices must be in [0, federation.n_clients = {n})"),
            (self.train.dp_epsilon == 0 or not dp_sgd, "train.dp_epsilon",
             "and train.dp_noise_multiplier both set the noise: keep one (the other 0)"),
            (not fedprox or self.train.prox_mu > 0, "train.prox_mu", "must be > 0 with method fedprox (0 is plain fedavg)"),
            (not fedprox or not (dp_sgd or self.train.dp_epsilon > 0), "train.dp_noise_multiplier", "DP-SGD with fedprox is not supported: drop fedprox or set it to 0"),
            (len(methods) > 0, "compare.methods", "name at least one method, e.g. [consensus, fedavg]"),
            (len(set(methods)) == len(methods), "compare.methods", "each method may appear once"),
        ]
        # fmt: on

    def behaviour_of_client(self, i: int) -> str:
        """Simulated behaviour of client ``i`` (``honest`` unless ``federation.behaviours`` says otherwise)."""
        return self.federation.behaviours[i] if self.federation.behaviours else "honest"

    def model_of_client(self, i: int) -> str:
        """Model name of client ``i`` (mixed architectures or the common one)."""
        return self.federation.client_models[i] if self.federation.client_models else self.model.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# -- building from dicts -------------------------------------------------------
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints accepted as floats)."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where} = {value!r}: choose one of {list(choices)}.")
        return value
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where} = {value!r}: expected {_type_name(tp)}.")
    if origin is dict or dataclasses.is_dataclass(tp):  # a mapping: free-form, or a section's fields
        if not isinstance(value, dict):
            raise ConfigError(f"{where} = {value!r}: expected a mapping, e.g. {{name: value}}.")
        return dict(value) if origin is dict else from_dict(tp, value, where)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where} = {value!r}: expected a list, e.g. [a, b].")
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:  # an int; or YAML 1.1's "1e-4" (no dot), read as a string: what float() accepts
            return float(value)
        except ValueError:
            pass
    if tp in (int, float) and isinstance(value, bool) or not isinstance(value, tp):
        raise ConfigError(f"{where} = {value!r}: expected {_type_name(tp)}, got {type(value).__name__}.")
    return value


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """An instance of the dataclass ``cls`` from a mapping, each value checked against its field's type; an unknown
    key, or a value of the wrong type, is a :class:`ConfigError` that names ``where.key``."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        dotted = f"{where}.{unknown[0]}" if where else unknown[0]
        if dotted in GONE:
            raise ConfigError(f"{dotted} is no longer a key: {GONE[dotted]}; delete it.")
        if cls is ConsensusConfig and unknown[0] in RETIRED:
            key, clusterer = unknown[0], RETIRED[unknown[0]][0]
            raise ConfigError(
                f"consensus.{key} is no longer a key: each clusterer's parameters sit under consensus.clusterer_params; "
                f"write consensus.clusterer_params.{key} (a parameter of clusterer {clusterer}), "
                f"e.g. --set consensus.clusterer_params.{key}={data[key]}."
            )
        raise ConfigError(f"unknown config key {dotted!r}; valid keys{' of ' + where if where else ''}: {names}.")
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()})


# The clusterer keys of ConsensusConfig before each clusterer owned its parameters: key -> (its clusterer, its default
# then). A configuration you write is told the new key; a run folder's recorded config.yaml is read by upgrade().
RETIRED: dict[str, tuple[str, Any]] = {
    "distance_threshold": ("agglomerative", 0.15),
    "linkage": ("agglomerative", "average"),
    "eps": ("dbscan", 0.15),
    "min_samples": ("dbscan", 2),
    "min_cluster_size": ("hdbscan", 2),
    "k_max": ("kmeans", 4),
    "min_silhouette": ("kmeans", 0.2),
}
# The engine's switches of earlier releases that chose the path before the speed work, gone with that path.
GONE: dict[str, str] = {
    "train.dp_engine": "DP-SGD has one engine (per-example gradients from hooks on the LoRA layers, the former fast)",
    "train.answer_logits_only": "the loss runs the output head at the answer positions only (the former true)",
    "generation.decoder": "generation has one decoder (the KV-cache loop, the former fast)",
}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A run folder's config.yaml of an earlier release, as this release writes it: the recorded clusterer's retired
    keys that differ from their default then move under ``consensus.clusterer_params`` (the defaults are its spec's
    now); the other clusterers' retired keys and the engine switches of :data:`GONE` are dropped."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for dotted in GONE:
        section, key = dotted.split(".")
        data.get(section, {}).pop(key, None)
    consensus = data.get("consensus") or {}
    old = {k: consensus.pop(k) for k in list(consensus) if k in RETIRED}
    if old:
        name = consensus.get("clusterer", "agglomerative")
        moved = {k: v for k, v in old.items() if RETIRED[k][0] == name and v != RETIRED[k][1]}
        consensus["clusterer_params"] = {**moved, **(consensus.get("clusterer_params") or {})}
    return data


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Build and validate a :class:`RunConfig` from a nested dict (unknown keys are errors)."""
    return from_dict(RunConfig, data or {}).validate()


def preset_path(name_or_path: str | Path) -> Path:
    """Resolve a preset name (``cpu``) or a YAML path to an existing file."""
    for path in (Path(name_or_path), CONFIG_DIR / f"{name_or_path}.yaml"):
        if path.suffix in (".yaml", ".yml") and path.exists():
            return path
    presets = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"no config file {str(name_or_path)!r}; give a YAML path or one of the presets {presets}.")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of the nested dict with each ``a.b=value`` override set (the value read as YAML: ``1e-4``)."""
    data = copy.deepcopy(data or {})
    for text in overrides:
        if "=" not in text:
            raise ConfigError(f"override {text!r} is not of the form section.field=value, e.g. train.lr=1e-4.")
        key, raw = text.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key!r}: {part!r} is a value, not a section.")
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return data


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader where PyYAML has it: 5-10x faster


def load_config(
    name_or_path: str | Path = "cpu", overrides: list[str] | None = None, *, recorded: bool = False
) -> RunConfig:
    """Load a preset or YAML file, apply ``--set`` overrides, validate.

    ``recorded``: the file is a run folder's config.yaml, written by this or an earlier release
    (:func:`upgrade` reads the keys an earlier release wrote); a file you write must use today's keys.

    Examples
    --------
    >>> cfg = load_config("ci", ["federation.rounds=1"])
    >>> cfg.federation.rounds
    1
    """
    path = preset_path(name_or_path)
    try:
        data = yaml.load(path.read_text(), Loader=_LOADER) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}).") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}.")
    if recorded:
        data = upgrade(data)
    try:
        return config_from_dict(apply_overrides(data, overrides or []))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def describe(cls: type = RunConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """Every option as (dotted name, default, help), for docs and ``--help``."""
    rows = []
    default = cls()
    for f in dataclasses.fields(cls):
        value = getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            rows += describe(type(value), f"{prefix}{f.name}.")
        else:
            rows.append((f"{prefix}{f.name}", repr(value), f.metadata.get("help", "")))
    return rows
