"""Gradient checkpointing and activation compression: memory saved, time paid.

A 64-layer MLP (Linear + ReLU, width 256, batch 128, float64) trained for one step
(forward, backward of ``sum``) four ways:

- plain;
- ``checkpoint_sequential(net, 'sqrt', x)`` (8 segments, the last one kept);
- a plan from ``plan_checkpoints(net, x, budget)`` with the budget a third of the plain
  peak;
- ``compress_saved('float16')`` and ``compress_saved('8bit')``.

For each it reports the step CPU time (min and median over interleaved repeats, and the
ratio to the plain step; target for checkpointing: at most 1.4x), the peak bytes saved
for backward measured by ``chainrule.diagnostics.memory_report`` in a separate untimed
pass, and the relative gradient error against the plain step.

Run: ``python -m benchmarks.run checkpoint`` (or ``python -m benchmarks.checkpoint``).
"""

from __future__ import annotations

import time

import numpy as np

from . import common

NAME = "checkpoint"
DESCRIPTION = "checkpointing / activation compression: peak saved bytes and step time"

FULL = {"depth": 64, "width": 256, "batch": 128, "repeats": 12, "budget_fraction": 1 / 3}
SMOKE = {"depth": 6, "width": 8, "batch": 4, "repeats": 2, "budget_fraction": 2 / 3}


def _mlp(cr, depth: int, width: int):
    mods = []
    for i in range(depth):
        mods.append(cr.nn.Linear(width, width, dtype=cr.float64))
        if i < depth - 1:
            mods.append(cr.nn.ReLU())
    return cr.nn.Sequential(*mods)


def _steps(cr, net, plan):
    from chainrule.utils.checkpoint import checkpoint_sequential

    def plain(x):
        return net(x).sum()

    def sqrt(x):
        return checkpoint_sequential(net, "sqrt", x).sum()

    def budget(x):
        return checkpoint_sequential(net, plan, x).sum()

    def compressed(mode):
        def step(x):
            with cr.autograd.graph.compress_saved(mode):
                return net(x).sum()
        return step

    return {"plain": plain, "checkpoint sqrt": sqrt, "checkpoint budget": budget,
            "compress float16": compressed("float16"), "compress 8bit": compressed("8bit")}


def _grads(net) -> np.ndarray:
    g = np.concatenate([p.grad.numpy().ravel() for p in net.parameters()])
    net.zero_grad()
    return g


def run(smoke: bool = False) -> dict:
    """Measure every variant on the MLP; returns the result dict for ``benchmarks.run``."""
    import chainrule as cr
    from chainrule.diagnostics import memory_report
    from chainrule.utils.checkpoint import plan_checkpoints

    p = SMOKE if smoke else FULL
    cr.manual_seed(0)
    net = _mlp(cr, p["depth"], p["width"])
    x = cr.randn(p["batch"], p["width"], dtype=cr.float64)

    plain_rep = memory_report(lambda x: net(x).sum(), x)
    g_plain = _grads(net)
    plan = plan_checkpoints(net, x, int(plain_rep.peak_bytes * p["budget_fraction"]))
    steps = _steps(cr, net, plan)

    memory = {}
    errors = {}
    for name, fn in steps.items():
        rep = memory_report(fn, x)
        memory[name] = rep.peak_bytes
        g = _grads(net)
        errors[name] = float(np.linalg.norm(g - g_plain) / np.linalg.norm(g_plain))

    def timed(fn):
        def call():
            fn(x).backward()
            net.zero_grad()
        return call

    # CPU time: on a shared machine wall time mostly measures the neighbours; every case
    # runs the same BLAS, so the ratios compare the work done
    times = common.interleave({k: timed(f) for k, f in steps.items()}, p["repeats"],
                              clock=time.process_time)
    base = times["plain"]
    rows = []
    for name in steps:
        t = times[name]
        rows.append({
            "case": name, "min": t["min"], "median": t["median"],
            "ratio_min": t["min"] / base["min"], "ratio_median": t["median"] / base["median"],
            "peak_bytes": memory[name], "peak_ratio": memory[name] / memory["plain"],
            "grad_rel_error": errors[name],
        })
    return {
        "name": NAME,
        "params": {**p, "smoke": smoke, "dtype": "float64",
                   "budget_bytes": plan.budget_bytes},
        "rows": rows,
        "plan": str(plan),
        "notes": [common.ENV_NOTE,
                  "peak = most bytes saved for backward at once (memory_report; weights "
                  "and the input batch not counted), measured in an untimed pass",
                  "step times are CPU time (time.process_time), interleaved",
                  "target: checkpointed step at most 1.4x the plain step"],
    }


def format_result(result: dict) -> str:
    """The result as a Markdown table (milliseconds per step, MiB saved)."""
    rows = []
    for r in result["rows"]:
        rows.append([
            r["case"], f"{r['min'] * 1e3:.1f}", f"{r['median'] * 1e3:.1f}",
            f"{r['ratio_min']:.2f}x / {r['ratio_median']:.2f}x",
            f"{r['peak_bytes'] / 2**20:.2f}", f"{r['peak_ratio']:.3f}",
            f"{r['grad_rel_error']:.1e}",
        ])
    text = common.format_table(
        ["case", "step min ms", "step median ms", "time vs plain (min / median)",
         "peak saved MiB", "peak vs plain", "grad rel. error"], rows)
    return text + "\n\n" + result["plan"]


if __name__ == "__main__":
    common.ensure_malloc_env()
    print(common.describe_machine())
    print(format_result(run()))
