"""Deep graphs: backward through chains of 10^3 ... 10^6 ops.

The chain alternates ``y * 1.0001`` (saves its input) and ``y + 1e-4`` (saves nothing) on
a 16-element tensor. For each length it reports:

- forward and backward time per op (backward must grow linearly: the per-op time should
  stay flat across sizes), min and median over repeats, in wall and in CPU time, plus
  one sample (CPU time) with Python's cyclic garbage collector off: its share grows
  with the number of live graph objects;
- that no RecursionError occurs (the engine is iterative);
- memory (tracemalloc, in a separate untimed pass): held by the graph after forward,
  still held after backward while the output tensor is alive (the saved values are
  freed; the nodes stay, as in PyTorch), and after the output is dropped.

Run: ``python -m benchmarks.run deep_chain`` (or ``python -m benchmarks.deep_chain``).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
import weakref

import numpy as np

from . import common

NAME = "deep_chain"
DESCRIPTION = "backward through chains of 1e3..1e6 ops: linear time, no recursion, memory"

SIZES = (1_000, 10_000, 100_000, 1_000_000)
# tracemalloc slows every allocation several times: above this the memory pass would take
# longer than the rest of the suite's workloads, and memory per op is flat from 10^4 on
MEMORY_MAX_OPS = 100_000
SMOKE_SIZES = (10, 100)


def build(cr, x, n: int):
    """A chain of ``n`` ops on ``x`` ending in a sum (the sum is not counted)."""
    y = x
    for _ in range(n // 2):
        y = y * 1.0001
        y = y + 1e-4
    return y.sum()


def _repeats_for(n: int, smoke: bool) -> int:
    if smoke:
        return 1
    return max(2, min(15, 100_000 // n))


def _time_size(cr, n: int, repeats: int) -> dict:
    fwd, bwd = [], []
    fwd_cpu, bwd_cpu = [], []
    fwd_nogc, bwd_nogc = [], []
    error = None
    for r in range(repeats + 1):
        # the last sample runs with Python's cyclic GC off, to show its share: the
        # collector re-traverses the live graph as it grows (tracked objects per op)
        gc_off = r == repeats
        x = cr.tensor(np.linspace(0.5, 1.5, 16, dtype=np.float32), requires_grad=True)
        gc.collect()
        time.sleep(0.005)
        if gc_off:
            gc.disable()
        c0 = time.process_time()
        t0 = time.perf_counter()
        s = build(cr, x, n)
        t1 = time.perf_counter()
        c1 = time.process_time()
        try:
            s.backward()
        except RecursionError as e:  # reported, never expected
            error = f"RecursionError: {e}"
            break
        finally:
            gc.enable()
        t2 = time.perf_counter()
        c2 = time.process_time()
        if gc_off:
            fwd_nogc.append((c1 - c0) / n)
            bwd_nogc.append((c2 - c1) / n)
        else:
            fwd.append((t1 - t0) / n)
            bwd.append((t2 - t1) / n)
            fwd_cpu.append((c1 - c0) / n)
            bwd_cpu.append((c2 - c1) / n)
        del s, x
    if error is not None:
        return {"error": error}
    return {"forward": common.stats(fwd), "backward": common.stats(bwd),
            "forward_cpu": common.stats(fwd_cpu), "backward_cpu": common.stats(bwd_cpu),
            "forward_cpu_gc_off": fwd_nogc[0], "backward_cpu_gc_off": bwd_nogc[0]}


def _memory_size(cr, n: int) -> dict:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        x = cr.tensor(np.linspace(0.5, 1.5, 16, dtype=np.float32), requires_grad=True)
        s = build(cr, x, n)
        after_fwd = tracemalloc.get_traced_memory()[0] - base
        s.backward()
        after_bwd = tracemalloc.get_traced_memory()[0] - base
        root = weakref.ref(s.grad_fn)
        del s
        gc.collect()
        after_del = tracemalloc.get_traced_memory()[0] - base
        freed = root() is None
        del x
    finally:
        tracemalloc.stop()
    return {"after_forward": after_fwd, "after_backward": after_bwd,
            "after_del_output": after_del, "graph_freed": freed}


def run(smoke: bool = False, sizes: tuple[int, ...] | None = None,
        memory: bool = True) -> dict:
    """Time and measure backward through chains of each length in ``sizes``."""
    import chainrule as cr

    sizes = tuple(sizes or (SMOKE_SIZES if smoke else SIZES))
    rows = []
    for n in sizes:
        row = {"ops": n, "repeats": _repeats_for(n, smoke)}
        row.update(_time_size(cr, n, row["repeats"]))
        row["recursion_error"] = "error" in row
        if memory and "error" not in row and n <= MEMORY_MAX_OPS:
            row["memory"] = _memory_size(cr, n)
        rows.append(row)
    ok = [r for r in rows if "backward" in r]
    growth = growth_cpu = None
    if len(ok) >= 2:
        growth = ok[-1]["backward"]["min"] / ok[0]["backward"]["min"]
        growth_cpu = ok[-1]["backward_cpu"]["min"] / ok[0]["backward_cpu"]["min"]
    return {
        "name": NAME,
        "params": {"sizes": list(sizes), "smoke": smoke, "memory": memory},
        "rows": rows,
        "ratios": {"backward per-op time, largest / smallest": growth,
                   "backward per-op CPU time, largest / smallest": growth_cpu},
        "notes": [common.ENV_NOTE, "memory by tracemalloc in a separate untimed pass"],
    }


def _mb(b: int) -> str:
    return f"{b / 1e6:.2f}"


def format_result(result: dict) -> str:
    """The result as a Markdown table (microseconds per op, megabytes)."""
    rows = []
    for r in result["rows"]:
        if "error" in r:
            rows.append([str(r["ops"]), r["error"], "", "", "", "", "", "", "", ""])
            continue
        m = r.get("memory", {})
        rows.append([
            f"{r['ops']:,}", common.us(r["forward"]["min"]), common.us(r["forward"]["median"]),
            common.us(r["backward"]["min"]), common.us(r["backward"]["median"]),
            f"{common.us(r['forward_cpu']['min'])} / {common.us(r['backward_cpu']['min'])}",
            f"{common.us(r['forward_cpu_gc_off'])} / {common.us(r['backward_cpu_gc_off'])}",
            _mb(m["after_forward"]) if m else "-", _mb(m["after_backward"]) if m else "-",
            (_mb(m["after_del_output"]) + (" (freed)" if m["graph_freed"] else " (LEAK)"))
            if m else "-",
        ])
    text = common.format_table(
        ["ops", "fwd min us/op", "fwd median", "bwd min us/op", "bwd median",
         "CPU fwd / bwd min", "CPU fwd / bwd, GC off", "MB after fwd", "MB after bwd",
         "MB after del"], rows)
    g = result["ratios"]["backward per-op time, largest / smallest"]
    gc_ = result["ratios"]["backward per-op CPU time, largest / smallest"]
    if g is not None:
        text += (f"\n\nbackward per-op time, largest / smallest size: {g:.2f} wall, "
                 f"{gc_:.2f} CPU (1.0 = linear)")
    if any("memory" not in r for r in result["rows"] if "error" not in r):
        text += f"\nmemory (tracemalloc) measured up to {MEMORY_MAX_OPS:,} ops"
    return text


if __name__ == "__main__":
    common.ensure_malloc_env()
    print(common.describe_machine())
    print(format_result(run()))
