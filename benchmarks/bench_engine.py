#!/usr/bin/env python
"""Benchmark one consensus round: the pooled engine against a naive one-model-per-client engine.

Both implementations do the same work on the same data, partition, seeds and
adapter initialisation, phase by phase:

``load``
    pooled: one :class:`~fedcofit_lite.pool.ModelPool` (one frozen base per
    architecture, every client a LoRA adapter on it); naive: ``load_model``
    once per client, each copy with its own single adapter, initialised to
    the same weights as that client's adapter in the pool. Both also load
    the sentence embedder (same cost on both sides).
``train``
    every client trains its adapter on its private records for
    ``train.round_epochs`` epochs with the package's ``train_adapter``
    (pooled through ``ModelPool.train``). Steps per client =
    ceil(records / train.batch_size) x round_epochs, identical on both sides.
``generate``
    every client answers every public prompt, greedy or as configured.
    pooled: ``ModelPool.generate`` (clients mixed in the same batches of
    ``generation.batch_size``); naive: ``generate_answers`` per client with
    ``batch_size=1`` (one prompt at a time).
``server``
    answers go through the wire (JSON encode/decode), are embedded and
    aggregated by :class:`~fedcofit_lite.server.ConsensusServer` with the
    preset's clusterer and agreement filter.

Each implementation runs in its own subprocess (this script re-invoked with
``--impl pooled|naive``) so that its peak RSS (``ru_maxrss``) is its own.
The parent prints one table with the ratio naive / pooled of every figure
(medians over ``--repeat`` runs, order alternated) and checks that both
produced the same adapters and answers. See ``benchmarks/README.md``.

Example::

    python benchmarks/bench_engine.py --config ci                 # seconds
    python benchmarks/bench_engine.py --config cpu --out bench.json  # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fedcofit_lite.config import RunConfig, load_config

IMPLS = ("pooled", "naive")
ROUND = 1  # the benchmarked round's index (seeds, wire messages)

# name -> (unit, direction): direction +1 = higher is better, -1 = lower is better
FIGURES: dict[str, tuple[str, int]] = {
    "load_s": ("s", -1),
    "train_s": ("s", -1),
    "generate_s": ("s", -1),
    "server_s": ("s", -1),
    "total_s": ("s", -1),
    "train_tokens_per_s": ("tok/s", +1),
    "generated_tokens_per_s": ("tok/s", +1),
    "peak_rss_mib": ("MiB", -1),
}


# -- configuration ---------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="cpu", help="preset name (ci, cpu, gpu, large) or YAML path [cpu]")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, repeatable, e.g. train.lr=1e-4")
    p.add_argument("--clients", type=int, default=4, help="federation.n_clients [4]")
    p.add_argument("--prompts", type=int, default=16, help="data.n_public: public prompts answered by every client [16]")
    p.add_argument(
        "--train-records", type=int, default=16, help="data.max_train_per_client: cap on each client's private records [16]"
    )
    p.add_argument("--repeat", type=int, default=1, help="run the pair this many times (order alternated), report medians [1]")
    p.add_argument("--out", type=Path, help="write all figures as JSON here")
    p.add_argument("--progress", action="store_true", help="show the package's tqdm bars in the subprocesses")
    # internal: run one implementation in this process and write its figures to --result
    p.add_argument("--impl", choices=IMPLS, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--dump-dir", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def bench_overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` overrides, then the size flags (which win over ``--set``)."""
    return [
        *args.set,
        f"federation.n_clients={args.clients}",
        f"data.n_public={args.prompts}",
        f"data.max_train_per_client={args.train_records}",
    ]


def bench_config(args: argparse.Namespace) -> RunConfig:
    return load_config(args.config, bench_overrides(args))


# -- one implementation, in its own process ----------------------------------------


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def steal_seconds() -> float:
    """CPU time the hypervisor gave to other guests, machine-wide, so far (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()  # cpu user nice system idle iowait irq softirq steal ...
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def current_rss_kib() -> int:
    """Resident set size now (VmRSS), KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class GenerationCounter:
    """Wraps ``model.generate`` to count exactly the tokens it generates.

    ``real`` counts, per row, the new tokens up to and including the first
    EOS (or all ``max_new_tokens`` when there is none): what a client really
    produced. ``slots`` counts every new position of every row, including the
    padding that rows which stopped early carry while their batch goes on.
    """

    def __init__(self) -> None:
        self.real = 0
        self.slots = 0
        self.calls = 0

    def instrument(self, model: Any) -> None:
        inner = model.generate

        def generate(*args: Any, **kwargs: Any) -> Any:
            out = inner(*args, **kwargs)
            new = out[:, kwargs["input_ids"].shape[1] :]  # (B, new)
            eos = kwargs.get("eos_token_id")
            eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
            for row in new.tolist():
                stop = next((j for j, t in enumerate(row) if t in eos_ids), None)
                self.real += len(row) if stop is None else stop + 1
            self.slots += new.numel()
            self.calls += 1
            return out

        model.generate = generate  # instance attribute: shadows the class method for this object only


class PhaseClock:
    """Wall and CPU seconds per phase: ``with clock("train"): ...``.

    CPU / wall is how many cores the phase kept busy; well below
    ``torch.get_num_threads()`` means the process waited (for other
    processes on the machine, or for memory).
    """

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), cpu_seconds()
        try:
            yield
        finally:
            self.wall[phase] = self.wall.get(phase, 0.0) + time.perf_counter() - wall
            self.cpu[phase] = self.cpu.get(phase, 0.0) + cpu_seconds() - cpu


def load_clients(impl: str, cfg: RunConfig, clients: list[Any]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(pool or None, client id -> peft model, client id -> tokenizer) for ``impl``."""
    from fedcofit_lite.finetune import attach_adapters
    from fedcofit_lite.models import load_model
    from fedcofit_lite.pool import ModelPool

    ids = [c.client_id for c in clients]
    if impl == "pooled":  # one base per architecture, every client an adapter on it
        pool = ModelPool({c.client_id: c.model_name for c in clients}, cfg.model, cfg.lora, seed=cfg.seed)
        return pool, {cid: pool.backbone_of(cid).model for cid in ids}, {cid: pool.backbone_of(cid).tokenizer for cid in ids}
    model_of, tok_of = {}, {}
    for i, c in enumerate(clients):  # naive: a full model copy per client
        model, tok = load_model(
            c.model_name, device=cfg.model.device, dtype=cfg.model.dtype, trust_remote_code=cfg.model.trust_remote_code, seed=cfg.seed
        )
        for p in model.parameters():
            p.requires_grad_(False)  # as ModelPool does: the base stays frozen
        # attach_adapters seeds the k-th adapter of its list with seed * 100_003 + k; to start
        # client i from exactly the pool's weights, attach ids[:i+1] and keep only ids[i].
        peft_model = attach_adapters(model, ids[: i + 1], cfg.lora, seed=cfg.seed)
        with warnings.catch_warnings():  # "adapter X was active which is now deleted": intended
            warnings.simplefilter("ignore", UserWarning)
            for other in ids[:i]:
                peft_model.delete_adapter(other)
        peft_model.eval()
        model_of[c.client_id], tok_of[c.client_id] = peft_model, tok
    return None, model_of, tok_of


def run_impl(impl: str, cfg: RunConfig, dump_dir: Path | None) -> dict[str, Any]:
    """Run one consensus round with ``impl``; return its figures (seconds, tokens, RSS)."""
    import torch
    import transformers

    from fedcofit_lite.cluster import make_clusterer
    from fedcofit_lite.collect import GenerationRequest, generate_answers
    from fedcofit_lite.consensus import SemanticConsensus
    from fedcofit_lite.embed import embed_texts
    from fedcofit_lite.federation import build_clients, build_suite, client_seed
    from fedcofit_lite.finetune import adapter_state, tokenize_records, train_adapter
    from fedcofit_lite.messages import Wire
    from fedcofit_lite.models import load_embedder
    from fedcofit_lite.server import ConsensusServer

    rss_baseline, steal_start = current_rss_kib(), steal_seconds()
    transformers.set_seed(cfg.seed)
    clock = PhaseClock()

    # 0. data: the same suite, partition and cap as a federation run
    suite = build_suite(cfg)
    clients = build_clients(cfg, suite)
    ids = [c.client_id for c in clients]
    records = {c.client_id: c.training_records() for c in clients}  # private records only (no pseudo-labels yet)
    public = suite.public
    prompt_ids = [e.id for e in public]
    epochs = cfg.train.round_epochs

    # 1. load: the models (one pool, or one copy per client), then the embedder
    with clock("load_models"):
        pool, model_of, tok_of = load_clients(impl, cfg, clients)
    rss_after_models = current_rss_kib()
    with clock("load_embedder"):
        embedder = load_embedder(cfg.consensus.embedder, device=cfg.model.device)
    init_checksum = {cid: float(sum(t.double().abs().sum() for t in adapter_state(model_of[cid], cid).values())) for cid in ids}

    # 2. train: same records, epochs, seeds and train_adapter on both sides
    train_tokens = train_steps = 0
    losses: dict[str, list[float]] = {}
    train_s_of: dict[str, float] = {}
    with clock("train"):
        for i, c in enumerate(clients):
            cid, seed = c.client_id, client_seed(cfg.seed, ROUND, i)
            start = time.perf_counter()
            if pool is not None:
                losses[cid] = pool.train(cid, records[cid], cfg.train, epochs, seed)
            else:
                losses[cid] = train_adapter(model_of[cid], cid, tok_of[cid], records[cid], cfg.train, epochs, seed)
            train_s_of[cid] = time.perf_counter() - start
    for c in clients:  # what train_adapter fed the model: non-pad tokens of every record, once per epoch
        data = tokenize_records(tok_of[c.client_id], records[c.client_id], cfg.train.max_length)
        train_tokens += epochs * sum(len(ids_) for ids_, _ in data)
        train_steps += len(losses[c.client_id])
        assert len(losses[c.client_id]) == epochs * math.ceil(len(data) / cfg.train.batch_size)

    # 3. generate: every client answers every public prompt
    counter = GenerationCounter()
    for model in {id(m): m for m in model_of.values()}.values():
        counter.instrument(model)
    gen_seed = cfg.seed + ROUND
    with clock("generate"):
        if pool is not None:
            requests = [GenerationRequest(cid, e.instruction, e.context) for cid in ids for e in public]
            flat = pool.generate(requests, cfg.generation, seed=gen_seed, desc="answer")
            answers = {cid: flat[k * len(public) : (k + 1) * len(public)] for k, cid in enumerate(ids)}
        else:
            one_at_a_time = dataclasses.replace(cfg.generation, batch_size=1)
            answers = {
                cid: generate_answers(
                    model_of[cid], tok_of[cid], [GenerationRequest(cid, e.instruction, e.context) for e in public], one_at_a_time, gen_seed
                )
                for cid in ids
            }

    # 4. server: wire, embed, cluster, filter (as Federation.consensus_round does)
    wire = Wire()
    consensus = SemanticConsensus(
        clusterer=make_clusterer(cfg.consensus.clusterer, **cfg.consensus.clusterer_params()), min_agreement=cfg.consensus.min_agreement
    )
    server = ConsensusServer(prompt_ids, lambda texts: embed_texts(embedder, texts, progress=False), consensus, cfg.federation.max_answer_chars)
    with clock("server"):
        received = [wire.send(c.answers_message(ROUND, prompt_ids, answers[c.client_id]), "up") for c in clients]
        pseudo, report = server.aggregate(ROUND, received)
        wire.send(pseudo, "down")

    if dump_dir is not None:  # trained adapters, for the parent's equality check
        dump_dir.mkdir(parents=True, exist_ok=True)
        for cid in ids:
            torch.save(adapter_state(model_of[cid], cid), dump_dir / f"{impl}-{cid}.pt")

    seconds = clock.wall
    load_s = seconds["load_models"] + seconds["load_embedder"]
    return {
        "impl": impl,
        "seconds": seconds,
        "cpu_seconds": clock.cpu,
        "cores_busy": {k: clock.cpu[k] / w if w else float("nan") for k, w in seconds.items()},
        "load_s": load_s,
        "train_s": seconds["train"],
        "generate_s": seconds["generate"],
        "server_s": seconds["server"],
        "total_s": load_s + seconds["train"] + seconds["generate"] + seconds["server"],
        "train_tokens": train_tokens,
        "train_steps": train_steps,
        "train_tokens_per_s": train_tokens / seconds["train"] if seconds["train"] else float("nan"),
        "generated_tokens": counter.real,
        "generated_slots": counter.slots,
        "generate_calls": counter.calls,
        "generated_tokens_per_s": counter.real / seconds["generate"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # ru_maxrss is KiB on Linux
        "rss_baseline_mib": rss_baseline / 1024,
        "rss_after_models_mib": rss_after_models / 1024,
        "train_s_per_client": train_s_of,
        "records_per_client": {cid: len(records[cid]) for cid in ids},
        "final_loss": {cid: (losses[cid][-1] if losses[cid] else None) for cid in ids},
        "adapter_init_checksum": init_checksum,
        "answers": answers,
        "pseudo_labels_kept": sum(report.kept),
        "wire_bytes": wire.totals(),
        "torch_threads": torch.get_num_threads(),
        "steal_s": steal_seconds() - steal_start,
        "loadavg_end": os.getloadavg(),
    }


# -- the parent: spawn, compare, print ----------------------------------------------


def spawn(impl: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Re-invoke this script with ``--impl`` in a fresh process; return its figures."""
    result = tmp / f"{impl}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--config", str(args.config), "--impl", impl, "--result", str(result)]
    cmd += ["--dump-dir", str(tmp / "adapters"), "--clients", str(args.clients), "--prompts", str(args.prompts)]
    cmd += ["--train-records", str(args.train_records)]
    for s in args.set:
        cmd += ["--set", s]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if not args.progress:
        env["TQDM_DISABLE"] = "1"
    print(f"[bench] running {impl} in a subprocess ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    print(f"[bench] {impl} done in {time.perf_counter() - start:.1f} s wall (including imports)", file=sys.stderr, flush=True)
    return json.loads(result.read_text())


def compare_runs(results: dict[str, dict[str, Any]], tmp: Path) -> dict[str, Any]:
    """Did both implementations start from, and end with, the same adapters and answers?"""
    import torch

    pooled, naive = results["pooled"], results["naive"]
    ids = list(pooled["answers"])
    max_diff = 0.0
    for cid in ids:
        a = torch.load(tmp / "adapters" / f"pooled-{cid}.pt")
        b = torch.load(tmp / "adapters" / f"naive-{cid}.pt")
        assert a.keys() == b.keys(), f"{cid}: adapter keys differ"
        max_diff = max(max_diff, max(float((a[k] - b[k]).abs().max()) for k in a))
    same = sum(x == y for cid in ids for x, y in zip(pooled["answers"][cid], naive["answers"][cid]))
    total = sum(len(pooled["answers"][cid]) for cid in ids)
    init_same = all(math.isclose(pooled["adapter_init_checksum"][c], naive["adapter_init_checksum"][c], rel_tol=1e-9) for c in ids)
    return {
        "adapter_init_identical": init_same,
        "trained_adapter_max_abs_diff": max_diff,
        "identical_answers": same,
        "answers": total,
        "same_train_tokens": pooled["train_tokens"] == naive["train_tokens"],
        "same_train_steps": pooled["train_steps"] == naive["train_steps"],
    }


def median_of(values: list[Any]) -> Any:
    """Element-wise median of same-shaped results (numbers); anything else is taken from the first."""
    first = values[0]
    if isinstance(first, dict):
        return {k: median_of([v[k] for v in values]) for k in first}
    if isinstance(first, (int, float)) and not isinstance(first, bool) and any(v != first for v in values):
        return statistics.median(values)  # each figure is the median of its own per-repeat values
    return first


def merge_checks(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """One verdict over all repeats: every check must hold in every repeat."""
    return {
        "adapter_init_identical": all(c["adapter_init_identical"] for c in checks),
        "trained_adapter_max_abs_diff": max(c["trained_adapter_max_abs_diff"] for c in checks),
        "identical_answers": sum(c["identical_answers"] for c in checks),
        "answers": sum(c["answers"] for c in checks),
        "same_train_tokens": all(c["same_train_tokens"] for c in checks),
        "same_train_steps": all(c["same_train_steps"] for c in checks),
    }


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """naive / pooled for every figure."""
    return {k: results["naive"][k] / results["pooled"][k] if results["pooled"][k] else float("nan") for k in FIGURES}


def format_report(
    cfg: RunConfig, args: argparse.Namespace, runs: list[dict[str, dict[str, Any]]], checks: dict[str, Any]
) -> str:
    results = {impl: median_of([run[impl] for run in runs]) for impl in IMPLS}
    p, n = results["pooled"], results["naive"]
    r = ratios(results)
    n_prompts = len(next(iter(p["answers"].values())))
    lines = [
        "",
        f"One consensus round, preset {args.config!r} ({cfg.model.name}), {args.clients} clients, {n_prompts} public prompts"
        + (f"; median of {len(runs)} repeats (order alternated)" if len(runs) > 1 else ""),
        f"  train: {p['train_steps']} steps in all (train.round_epochs={cfg.train.round_epochs}, "
        f"batch {cfg.train.batch_size}, <= {args.train_records} private records per client: {p['records_per_client']})",
        f"  generate: max_new_tokens={cfg.generation.max_new_tokens}, do_sample={cfg.generation.do_sample}; "
        f"pooled batch {cfg.generation.batch_size} mixed across clients, naive batch 1 per client",
        f"  server: {cfg.consensus.embedder} + {cfg.consensus.clusterer}, min_agreement={cfg.consensus.min_agreement}",
        "",
        f"{'figure':<32}{'pooled':>10}{'naive':>10}{'naive/pooled':>14}  pooled advantage",
        "-" * 84,
    ]
    for key, (unit, direction) in FIGURES.items():
        adv = r[key] if direction < 0 else 1 / r[key]
        lines.append(f"{key + ' (' + unit + ')':<32}{p[key]:>10.2f}{n[key]:>10.2f}{r[key]:>14.2f}  {adv:.2f}x")
    lines += [
        "-" * 84,
        "naive/pooled > 1 on s and MiB, < 1 on tok/s, means the pooled engine is better;",
        "'pooled advantage' is that factor oriented so that > 1 always favours pooled.",
        "",
    ]
    if len(runs) > 1:
        for key in ("train_s", "generate_s", "total_s"):
            per = "; ".join(f"{impl} " + " ".join(f"{run[impl][key]:.1f}" for run in runs) for impl in IMPLS)
            lines.append(f"{key} per repeat: {per}")
    lines += [
        f"train tokens (non-pad, all clients): pooled {p['train_tokens']}, naive {n['train_tokens']}",
        f"generated tokens (up to and incl. EOS): pooled {p['generated_tokens']} in {p['generate_calls']} generate() calls "
        f"({p['generated_slots']} positions incl. post-EOS padding), naive {n['generated_tokens']} in {n['generate_calls']} calls",
        f"load split (models + embedder): pooled {p['seconds']['load_models']:.2f} + {p['seconds']['load_embedder']:.2f} s, "
        f"naive {n['seconds']['load_models']:.2f} + {n['seconds']['load_embedder']:.2f} s",
        f"RSS after imports / after loading models (MiB): pooled {p['rss_baseline_mib']:.0f} / {p['rss_after_models_mib']:.0f}, "
        f"naive {n['rss_baseline_mib']:.0f} / {n['rss_after_models_mib']:.0f}",
        f"same adapters at start: {checks['adapter_init_identical']}; trained adapters max |diff|: "
        f"{checks['trained_adapter_max_abs_diff']:.3g}; identical answers: {checks['identical_answers']}/{checks['answers']}",
        "cores busy (CPU s / wall s; near the torch thread count = not starved by other processes):",
        *(f"  {impl:<7}" + ", ".join(f"{k} {v:.2f}" for k, v in results[impl]["cores_busy"].items()) for impl in IMPLS),
        f"torch threads: {p['torch_threads']}; CPU steal during the runs (s): "
        + ", ".join(f"{impl} {max(run[impl]['steal_s'] for run in runs):.1f}" for impl in IMPLS)
        + "; max 1-min load average at the end: "
        + ", ".join(f"{impl} {max(run[impl]['loadavg_end'][0] for run in runs):.2f}" for impl in IMPLS),
    ]
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "transformers", "peft", "sentence-transformers"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        **versions,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = bench_config(args)
    if args.impl:  # child
        result = run_impl(args.impl, cfg, args.dump_dir)
        args.result.write_text(json.dumps(result))
        return 0
    if args.repeat < 1:
        raise SystemExit(f"--repeat = {args.repeat}: must be >= 1.")
    env = environment()
    runs, checks = [], []
    for rep in range(args.repeat):
        order = IMPLS if rep % 2 == 0 else IMPLS[::-1]  # alternate who runs first (page cache, thermal drift)
        with tempfile.TemporaryDirectory(prefix="bench_engine-") as tmp:
            run = {impl: spawn(impl, args, Path(tmp)) for impl in order}
            checks.append(compare_runs(run, Path(tmp)))
        runs.append({impl: run[impl] for impl in IMPLS})
    verdict = merge_checks(checks)
    print(format_report(cfg, args, runs, verdict))
    if args.out:
        medians = {impl: median_of([run[impl] for run in runs]) for impl in IMPLS}
        strip = lambda res: {k: v for k, v in res.items() if k != "answers"}  # noqa: E731
        payload = {
            "command": " ".join(["python", *sys.argv]),
            "config": args.config,
            "overrides": bench_overrides(args),
            "repeats": args.repeat,
            "resolved_config": cfg.to_dict(),
            "environment": env,
            "median": {impl: strip(res) for impl, res in medians.items()},
            "ratios_naive_over_pooled": ratios(medians),
            "checks": verdict,
            "runs": [{impl: strip(res) for impl, res in run.items()} for run in runs],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2))
        print(f"\nfigures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
