#!/usr/bin/env python
"""Benchmark one consensus round of a preset: the engine against the engine before the speed work.

Every figure is a ratio measured in one run. Two engines run the same round
of the same preset, each in a fresh subprocess (so its peak RSS is its own):

``new``
    the package as configured (``model.dtype=auto``: bf16 where the CPU or GPU
    has it; eager attention on CPU; batches grouped by length; the output head
    only at answer positions; the KV-cache decoder that drops finished rows);
``alone``
    the package with ``train.together=false``: every client trains in its
    own steps, one after the other (the engine before joint training);
``old``
    the engine before the speed work, which the package no longer carries: the
    child runs from a pinned earlier release (``--old-release``, default
    :data:`PINNED_RELEASE`, unpacked from this repository's history with
    ``git archive``) with that release's ``LEGACY_ENGINE`` set: float32, SDPA
    attention, random batches, logits at every position, transformers'
    ``generate()``.

Each subprocess builds a :class:`~fedcofit_lite.federation.loop.Federation` of the
preset (same seed, partition, adapters) and runs:

``warm-up`` (not part of the round)
    one epoch of local training on private data, so that the adapters answer
    like trained ones (short answers that end) rather than like the base;
``round``
    ``Consensus().round(fed.ctx, 1)`` (generate -> server -> train on private
    data + pseudo-labels) and the evaluation of every client on the test set:
    the four phases of a round in ``metrics.jsonl``.

The new engine also answers the public prompts a second time with the other
``generation.adapter_batches`` setting (mixed-adapter batches against
per-adapter batches), times one epoch of DP-SGD on every client's private
records against one plain epoch of the same records (the machine's bound: a
DP step cannot be cheaper than a plain one), and runs with 1 and 8 clients for
peak RSS.

The report names the machine: the CPU model, its bf16 instructions (AMX,
AVX-512 BF16 or none) and the torch thread count.

The parent measures the machine's matmul peak (fp32 and bf16) in the same run
and prints achieved training FLOP/s as a share of the peak of the dtype each
engine computes in. Training FLOPs count useful work only (non-pad tokens, the
output head at answer positions), with the formula in ``benchmarks/README.md``.

Example::

    python benchmarks/bench_engine.py --config ci                  # under a minute, overheads only
    python benchmarks/bench_engine.py --config cpu --out bench.json  # about 8 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fedcofit_lite.config import RunConfig, load_config

ENGINES = ("new", "alone", "old")
ENGINE_OVERRIDES = {"new": (), "alone": ("train.together=false",)}  # old: the pinned release's LEGACY_ENGINE
# The last commit whose package carries the engine before the speed work (config.LEGACY_ENGINE, the generate()
# decoder, Opacus' DP-SGD path): the old engine runs from it.
PINNED_RELEASE = "ac78af1"
ROOT = Path(__file__).resolve().parents[1]
ROUND = 1

# figure -> (unit, direction): +1 higher is better, -1 lower is better
FIGURES: dict[str, tuple[str, int]] = {
    "train_tokens_per_s": ("tok/s", +1),
    "train_share_of_peak": ("", +1),
    "generated_tokens_per_s": ("tok/s", +1),
    "eval_answers_per_s": ("ans/s", +1),
    "generate_s": ("s", -1),
    "server_s": ("s", -1),
    "train_s": ("s", -1),
    "eval_s": ("s", -1),
    "round_s": ("s", -1),
    "warmup_train_s": ("s", -1),
    "peak_rss_mib": ("MiB", -1),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", default="cpu", help="preset name (ci, cpu, gpu, large) or YAML path [cpu]")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="config override for both engines, repeatable"
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="run both engines this many times (order alternated), report medians [1]"
    )
    p.add_argument(
        "--rss-clients",
        default="1,8",
        help="extra client counts run with the new engine for peak RSS [1,8]; '' for none",
    )
    p.add_argument("--no-old", action="store_true", help="only the new engine (no ratios; quick look at the new one)")
    p.add_argument(
        "--old-release", default=PINNED_RELEASE, help=f"git commit the old engine runs from [{PINNED_RELEASE}]"
    )
    p.add_argument("--no-dp", action="store_true", help="skip the DP-SGD timing")
    p.add_argument("--out", type=Path, help="write every figure as JSON here")
    p.add_argument("--progress", action="store_true", help="show the package's progress bars in the subprocesses")
    # internal: one engine in this process
    p.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)
    p.add_argument("--clients", type=int, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def engine_config(args: argparse.Namespace, engine: str, clients: int | None = None) -> RunConfig:
    overrides = [*args.set, *ENGINE_OVERRIDES[engine]]
    if clients:
        overrides.append(f"federation.n_clients={clients}")
    return load_config(args.config, overrides)


# -- measurements -------------------------------------------------------------------


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class PhaseClock:
    """Wall and CPU seconds per phase; CPU / wall near the torch thread count means nothing competed for the cores."""

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


def matmul_peak(dtype_name: str, seconds: float = 1.0) -> float:
    """Best GFLOP/s of plain square-ish matmuls in ``dtype_name`` on this machine (torch's threads)."""
    import torch

    dtype = getattr(torch, dtype_name)
    best = 0.0
    for m, k, n in ((512, 576, 576), (1024, 1024, 1024), (2048, 2048, 2048)):
        a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
        a @ b  # warm-up
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            a @ b
            reps += 1
        best = max(best, 2 * m * k * n * reps / (time.perf_counter() - start) / 1e9)
    return best


def model_shape(pool: Any) -> dict[str, int]:
    """What the FLOPs formula needs: frozen linear weights in the decoder, LoRA weights, widths, layers, vocabulary."""
    import torch

    bb = next(iter(pool.backbones.values()))
    base = bb.model.get_base_model()
    head = base.get_output_embeddings()
    frozen = sum(
        m.weight.numel()
        for n, m in base.get_decoder().named_modules()
        if isinstance(m, torch.nn.Linear) and "lora_" not in n and m.weight.dim() == 2
    )
    lora = sum(p.numel() for n, p in bb.model.named_parameters() if f".{bb.adapters[0]}." in n)
    cfg = base.config
    heads, head_dim = (
        cfg.num_attention_heads,
        getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads,
    )
    return {
        "frozen_linear": frozen,
        "lora": lora,
        "hidden": head.weight.shape[1],
        "vocab": head.weight.shape[0],
        "layers": cfg.num_hidden_layers,
        "attn_width": heads * head_dim,
    }


def train_flops(stats: dict[str, int], shape: dict[str, int]) -> float:
    """Useful training FLOPs (see benchmarks/README.md): frozen base, LoRA, attention, output head at answer positions."""
    per_token = 4 * shape["frozen_linear"] + 6 * shape["lora"]
    attention = 12 * shape["layers"] * shape["attn_width"] * stats["sum_len_sq"]
    head = 4 * shape["hidden"] * shape["vocab"] * stats["answer_tokens"]
    return per_token * stats["tokens"] + attention + head


def dp_timing(fed: Any) -> dict[str, Any]:
    """One epoch of every client's private records with DP-SGD (sigma 1) and without (the bound): seconds, steps, epsilon."""
    import dataclasses

    from fedcofit_lite.engine.privacy import epsilon, new_accountant

    out: dict[str, Any] = {}
    start_tensors = {c.client_id: c.model.get_tensors() for c in fed.clients if c.trainable}
    for kind, sigma in (("dp", 1.0), ("plain", 0.0)):
        cfg = dataclasses.replace(fed.cfg.train, dp_noise_multiplier=sigma)
        seconds, steps, eps = 0.0, 0, []
        for c in fed.clients:
            if not c.trainable:
                continue
            c.model.set_tensors(start_tensors[c.client_id])  # both start from the same adapters
            accountant = new_accountant() if sigma else None
            start = time.perf_counter()
            losses = c.model.train(c.private_records(), cfg, 1, seed=1, accountant=accountant)
            seconds += time.perf_counter() - start
            steps += sum(h[2] for h in accountant.history) if accountant else len(losses)
            eps.append(epsilon(accountant, fed.cfg.train.dp_delta) if accountant else 0.0)
        out[kind] = {"seconds": seconds, "steps": steps, "s_per_step": seconds / max(steps, 1), "epsilon": eps}
    return out


def run_engine(engine: str, cfg: RunConfig, with_generation_variant: bool, with_dp: bool = False) -> dict[str, Any]:
    """One round of ``cfg`` in this process; returns its figures."""
    import torch

    from fedcofit_lite.engine.collect import GenerationStats
    from fedcofit_lite.engine.finetune import TrainStats
    from fedcofit_lite.engine.precision import compute_dtype_of
    from fedcofit_lite.federation.cohort import TrainPlan
    from fedcofit_lite.federation.loop import Federation
    from fedcofit_lite.federation.methods import Consensus
    from fedcofit_lite.runlog import RunLog

    clock = PhaseClock()
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        with clock("load"):
            fed = Federation(cfg, runlog=RunLog(Path(tmp) / "run"), progress=False)
        pool = fed.pool
        with clock("warmup_train"):
            fed.cohort.train(0, fed.cohort.ids, TrainPlan(1))
        warm = asdict(pool.train_stats)
        pool.train_stats, pool.generation_stats = TrainStats(), GenerationStats()
        method = Consensus()
        fed.prepare(method)
        row = method.round(fed.ctx, ROUND)  # generate, server, train; timed inside
        gen_stats = asdict(pool.generation_stats)
        train_stats = asdict(pool.train_stats)
        pool.generation_stats = GenerationStats()
        with clock("eval"):
            fed.evaluate("round_1")
        eval_stats = asdict(pool.generation_stats)
        variant = {}
        if with_generation_variant:  # the same answers with the other adapter batching
            import dataclasses

            other = "per_adapter" if cfg.generation.adapter_batches == "mixed" else "mixed"
            times, answers = {}, {}  # the trained adapters answer the public prompts both ways, back to back
            for batching in (cfg.generation.adapter_batches, other):
                fed.cohort.cfg = dataclasses.replace(
                    fed.cfg, generation=dataclasses.replace(fed.cfg.generation, adapter_batches=batching)
                )
                start = time.perf_counter()
                msgs = fed.cohort.answer(ROUND + 1, fed.cohort.ids, False).messages
                times[batching] = time.perf_counter() - start
                answers[batching] = [a for m in msgs for a in m.answers]
            variant = {
                "batching": list(times),
                "generate_s": times,
                "same_answers": sum(x == y for x, y in zip(*answers.values())),
                "answers": len(next(iter(answers.values()))),
            }
        dp = dp_timing(fed) if with_dp else {}
        shape = model_shape(pool)
        dtype = str(compute_dtype_of(next(iter(pool.backbones.values())).model)).replace("torch.", "")
    s = row["seconds"]
    n_answers = len(fed.suite.test) * len(fed.clients)
    return {
        "engine": engine,
        "clients": len(fed.clients),
        "compute_dtype": dtype,
        "attention": next(iter(pool.backbones.values())).model.get_base_model().config._attn_implementation,
        "seconds": {**clock.wall, **{k: v for k, v in s.items()}},
        "cores_busy": {k: clock.cpu[k] / w for k, w in clock.wall.items() if w},
        "generate_s": s["generate"],
        "server_s": s["server"],
        "train_s": s["train"],
        "eval_s": clock.wall["eval"],
        "round_s": s["generate"] + s["server"] + s["train"] + clock.wall["eval"],
        "warmup_train_s": clock.wall["warmup_train"],
        "warmup_train_stats": warm,
        "train_stats": train_stats,
        "generation_stats": gen_stats,
        "eval_generation_stats": eval_stats,
        "shape": shape,
        "train_flops": train_flops(train_stats, shape),
        "train_tokens_per_s": train_stats["tokens"] / s["train"],
        "generated_tokens_per_s": gen_stats["generated_tokens"] / s["generate"],
        "eval_answers_per_s": n_answers / clock.wall["eval"],
        "generate_answers_per_s": len(fed.public) * len(fed.clients) / s["generate"],
        "kept": row["kept"],
        "pseudo_label_accuracy": row["pseudo_label_accuracy"],
        "adapter_batching": variant,
        "dp": dp,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
    }


# -- the parent ------------------------------------------------------------------------


def old_release(ref: str, tmp: Path) -> Path:
    """The source tree of commit ``ref`` of this repository, unpacked under ``tmp`` (its package and this script)."""
    tree = tmp / f"release-{ref}"
    if not tree.exists():
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def spawn(args: argparse.Namespace, engine: str, clients: int | None, tmp: Path) -> dict[str, Any]:
    result = tmp / f"{engine}-{clients}.json"
    tree = old_release(args.old_release, tmp) if engine == "old" else ROOT  # the old engine: the pinned release's
    cmd = [
        sys.executable,
        str(tree / "benchmarks" / "bench_engine.py"),
        "--config",
        str(args.config),
        "--engine",
        engine,
        "--result",
        str(result),
    ]
    for s in args.set:
        cmd += ["--set", s]
    if args.no_dp:
        cmd.append("--no-dp")
    if clients:
        cmd += ["--clients", str(clients)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join([str(tree), *filter(None, [os.environ.get("PYTHONPATH")])])
    if not args.progress:
        env["TQDM_DISABLE"] = "1"
    label = f"{engine} engine" + (f", {clients} clients" if clients else "")
    print(f"[bench] {label} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    print(f"[bench] {label}: {time.perf_counter() - start:.0f} s wall with imports", file=sys.stderr, flush=True)
    return json.loads(result.read_text())


def median_of(values: list[Any]) -> Any:
    first = values[0]
    if isinstance(first, dict):
        return {k: median_of([v[k] for v in values]) for k in first}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return statistics.median(values)
    return first


def add_peak_share(res: dict[str, Any], peaks: dict[str, float]) -> None:
    peak = peaks.get(res["compute_dtype"], peaks["float32"])
    res["train_gflops_per_s"] = res["train_flops"] / res["train_s"] / 1e9
    res["train_share_of_peak"] = res["train_gflops_per_s"] / peak


def machine() -> dict[str, Any]:
    """The CPU model, its bf16 matrix instructions and the torch threads: what every figure depends on."""
    import torch

    flags, model = set(), platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:  # not Linux: the model from platform, the instructions unknown
        pass
    bf16 = (
        "AMX" if "amx_bf16" in flags else "AVX-512 BF16" if "avx512_bf16" in flags else "none" if flags else "unknown"
    )
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": model, "bf16_instructions": bf16, "torch_threads": torch.get_num_threads(), "gpu": gpu}


def _cell(key: str, value: float) -> str:
    return f"{value:>11.3g}" if key == "train_share_of_peak" else f"{value:>11.2f}"


def format_report(
    cfg: RunConfig, args: argparse.Namespace, med: dict[str, dict], peaks: dict[str, float], rss: dict[int, float]
) -> str:
    new = med["new"]
    refs = [e for e in med if e != "new"]
    m = machine()
    lines = [
        "",
        f"machine: {m['cpu']}, bf16 instructions: {m['bf16_instructions']}, torch threads {m['torch_threads']}"
        + (f", GPU {m['gpu']}" if m["gpu"] else ""),
        f"One consensus round, preset {args.config!r} ({cfg.model.name}), {new['clients']} clients, "
        f"{cfg.data.n_public} public prompts, {len(cfg.data.families) or 'all'} families"
        + (f"; median of {args.repeat} repeats (order alternated)" if args.repeat > 1 else ""),
        f"matmul peak on this machine (same run): fp32 {peaks['float32']:.0f} GFLOP/s, bf16 {peaks['bfloat16']:.0f} GFLOP/s",
        f"engines: new = {new['compute_dtype']}, {new['attention']} attention, clients trained together, "
        f"adapter batches {cfg.generation.adapter_batches}"
        + ("; alone = new, each client trained in its own steps" if "alone" in med else "")
        + (
            f"; old = release {args.old_release}'s LEGACY_ENGINE: {med['old']['compute_dtype']}, "
            f"{med['old']['attention']} attention, transformers generate()"
            if "old" in med
            else ""
        ),
        "",
        f"{'figure':<30}" + "".join(f"{e:>11}" for e in med) + "".join(f"{'new/' + e:>11}" for e in refs),
        "-" * (30 + 11 * (len(med) + len(refs))),
    ]
    for key, (unit, direction) in FIGURES.items():
        line = f"{key + (f' ({unit})' if unit else ''):<30}" + "".join(_cell(key, med[e][key]) for e in med)
        for e in refs:
            ratio = med["new"][key] / med[e][key] if med[e][key] else float("nan")
            line += f"{(ratio if direction > 0 else 1 / ratio):>10.2f}x"
        lines.append(line)
    lines += ["-" * (30 + 11 * (len(med) + len(refs))), "new/x: how many times better new is (> 1 favours new).", ""]
    for name, res in med.items():
        t, g, e = res["train_stats"], res["generation_stats"], res["eval_generation_stats"]
        lines += [
            f"{name}: train {t['steps']} steps, {t['tokens']} tokens ({t['answer_tokens']} answer), padding "
            f"{1 - t['tokens'] / t['positions']:.1%} of {t['positions']} positions; "
            f"{res['train_flops'] / 1e12:.2f} TFLOP useful -> {res['train_gflops_per_s']:.0f} GFLOP/s",
            f"{name}: generate {g['generated_tokens']} new tokens in {g['batches']} batches, {g['decode_positions']} decode "
            f"positions ({g['decode_positions'] - g['generated_tokens']} spent on rows that had ended), "
            f"{g['prompt_tokens']} prompt tokens ({1 - g['prompt_tokens'] / g['prompt_positions']:.1%} padding); "
            f"eval {e['generated_tokens']} new tokens, {e['decode_positions']} positions",
            f"{name}: round 1 kept {res['kept']} pseudo-labels at accuracy "
            + (f"{res['pseudo_label_accuracy']:.2f}" if res["pseudo_label_accuracy"] is not None else "-")
            + "; cores busy "
            + ", ".join(f"{k} {v:.2f}" for k, v in res["cores_busy"].items()),
        ]
    v = new["adapter_batching"]
    if v:
        (a, b), ts = v["batching"], v["generate_s"]
        lines.append(
            f"adapter batching (new engine, trained adapters, the same prompts): {a} {ts[a]:.2f} s, {b} {ts[b]:.2f} s; "
            f"identical answers {v['same_answers']}/{v['answers']}"
        )
    dp = new.get("dp")
    if dp:
        priv, plain = dp["dp"], dp["plain"]
        lines.append(
            f"DP-SGD, one epoch of every client's private records (sigma 1): {priv['seconds']:.1f} s "
            f"({priv['s_per_step']:.3f} s/step, {priv['steps']} steps, epsilon {max(priv['epsilon']):.3f}); the same "
            f"records without DP (the bound: a DP step is never cheaper) {plain['seconds']:.1f} s "
            f"({plain['s_per_step']:.3f} s/step): a DP step costs {priv['s_per_step'] / plain['s_per_step']:.2f}x the bound"
        )
    if rss:
        base = rss[min(rss)]
        lines.append(
            "peak RSS of the new engine by clients: "
            + ", ".join(f"{n}: {mib:.0f} MiB ({mib / base:.2f}x)" for n, mib in sorted(rss.items()))
        )
    lines.append(
        "FLOPs per training token: 4 x frozen linear + 6 x LoRA weights, "
        "+ 12 x layers x attention width x length^2 per record, + 4 x hidden x vocab per answer token"
    )
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
        **versions,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.engine:  # child
        cfg = engine_config(args, args.engine, args.clients)
        main_run = args.engine == "new" and not args.clients
        result = run_engine(args.engine, cfg, with_generation_variant=main_run, with_dp=main_run and not args.no_dp)
        args.result.write_text(json.dumps(result))
        return 0
    if args.repeat < 1:
        raise SystemExit(f"--repeat = {args.repeat}: must be >= 1.")
    cfg = engine_config(args, "new")

    peaks = {"float32": matmul_peak("float32"), "bfloat16": matmul_peak("bfloat16")}
    engines = ("new",) if args.no_old else ENGINES
    runs: list[dict[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="bench_engine-") as tmp:
        for rep in range(args.repeat):
            order = engines if rep % 2 == 0 else engines[::-1]
            run = {e: spawn(args, e, None, Path(tmp)) for e in order}
            runs.append({e: run[e] for e in engines})
        rss_counts = [int(c) for c in args.rss_clients.split(",") if c.strip()]
        extra = {n: spawn(args, "new", n, Path(tmp)) for n in rss_counts if n != cfg.federation.n_clients}
    med = {e: median_of([r[e] for r in runs]) for e in engines}
    for res in [*med.values(), *(r[e] for r in runs for e in engines)]:
        add_peak_share(res, peaks)
    rss = {cfg.federation.n_clients: med["new"]["peak_rss_mib"], **{n: r["peak_rss_mib"] for n, r in extra.items()}}
    print(format_report(cfg, args, med, peaks, rss))
    if args.out:
        payload = {
            "command": " ".join(["python", *sys.argv]),
            "config": args.config,
            "overrides": args.set,
            "old_release": None if args.no_old else args.old_release,
            "environment": {**environment(), **machine()},
            "matmul_peak_gflops": peaks,
            "median": med,
            "runs": runs,
            "rss_by_clients": rss,
            "extra_client_runs": extra,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2))
        print(f"\nfigures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
