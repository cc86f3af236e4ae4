#!/usr/bin/env python
"""Where a training step's time goes: torch's profiler over one epoch of a preset's clients trained together.

Prints the operators that took the most time (self CPU time, calls, calls per
step) and a summary by kind: matrix products, attention, the rest. The
matmul share against the useful FLOPs tells whether arithmetic or per-call
overhead bounds the step.

    python benchmarks/profile_train.py --config cpu                  # the 4 clients together
    python benchmarks/profile_train.py --config cpu --set train.together=false
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_engine import machine, matmul_peak, model_shape, train_flops  # noqa: E402

MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear")
KINDS = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm"),
    "softmax, norms, activations": (
        "aten::_softmax",
        "aten::softmax",
        "aten::rsqrt",
        "aten::silu",
        "aten::pow",
        "aten::mean",
    ),
    "copies and casts": ("aten::copy_", "aten::to", "aten::_to_copy", "aten::cat", "aten::contiguous", "aten::clone"),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="cpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args(argv)

    import tempfile
    from dataclasses import asdict

    import torch
    from torch.profiler import ProfilerActivity, profile

    from fedcofit_lite.config import load_config
    from fedcofit_lite.engine.finetune import TrainStats
    from fedcofit_lite.federation.cohort import TrainPlan
    from fedcofit_lite.federation.loop import Federation
    from fedcofit_lite.runlog import RunLog

    cfg = load_config(args.config, args.set)
    with tempfile.TemporaryDirectory() as tmp:
        fed = Federation(cfg, runlog=RunLog(Path(tmp) / "run"), progress=False)
    fed.cohort.train(0, fed.cohort.ids, TrainPlan(1))  # warm-up: allocator, kernels, lazy inits
    pool = fed.pool
    pool.train_stats = TrainStats()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        fed.cohort.train(0, fed.cohort.ids, TrainPlan(1))
        wall = time.perf_counter() - start
    stats = asdict(pool.train_stats)
    steps = stats["steps"]
    flops = train_flops(stats, model_shape(pool))
    dtype = (
        "bfloat16"
        if cfg.model.dtype != "float32"
        and "bfloat16" in str(next(iter(pool.backbones.values())).model.get_base_model().dtype)
        else "float32"
    )
    peak = matmul_peak(dtype)
    m = machine()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    print(f"machine: {m['cpu']}, bf16 instructions: {m['bf16_instructions']}, torch threads {m['torch_threads']}")
    print(
        f"preset {args.config} {' '.join(args.set)}: one epoch, {steps} steps, {stats['tokens']} tokens, "
        f"{wall:.2f} s wall ({wall / steps * 1000:.0f} ms/step); useful {flops / wall / 1e9:.0f} GFLOP/s = "
        f"{flops / wall / 1e9 / peak:.1%} of the {dtype} matmul peak ({peak:.0f} GFLOP/s, same run)"
    )
    calls = sum(e.count for e in events if e.key.startswith("aten::"))
    print(f"aten calls: {calls} ({calls / steps:.0f} per step); profiled self time {total:.2f} s\n")
    print(f"{'operator':<36}{'self s':>9}{'share':>8}{'calls/step':>12}{'us/call':>10}")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.top]:
        s = e.self_cpu_time_total / 1e6
        print(
            f"{e.key[:35]:<36}{s:>9.2f}{s / total:>8.1%}{e.count / steps:>12.0f}{e.self_cpu_time_total / e.count:>10.0f}"
        )
    print()
    for kind, names in KINDS.items():
        s = sum(e.self_cpu_time_total for e in events if e.key in names) / 1e6
        n = sum(e.count for e in events if e.key in names)
        print(f"{kind:<30}{s:>8.2f} s {s / total:>6.1%}  {n / steps:>6.0f} calls/step")
    mm = sum(e.self_cpu_time_total for e in events if e.key in KINDS["matrix products"]) / 1e6
    print(
        f"{'everything else':<30}{total - sum(sum(e.self_cpu_time_total for e in events if e.key in n) for n in KINDS.values()) / 1e6:>8.2f} s"
    )
    print(
        f"\nmatrix products alone run at {flops / mm / 1e9:.0f} GFLOP/s of useful work ({flops / mm / 1e9 / peak:.0%} of peak)"
    )
    del torch
    return 0


if __name__ == "__main__":
    sys.exit(main())
