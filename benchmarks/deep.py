"""A deep MLP training step against every installed peer: time and peak memory.

Workload: 64 ``Linear`` layers (63 of width 256 with ReLU, the last 256 -> 10), batch 128,
float32, cross-entropy, SGD momentum 0.9 with lr 0.001 (see ``LR``); He-uniform weights
from NumPy so activations keep their scale through the depth. Timing and the loss cross-check as in
:mod:`benchmarks.mlp`.

Peak memory, measured the same way for every library: each library runs in a fresh
child process with the timing malloc settings (no mmap, no trim: the heap never gives
memory back), builds its step (JAX compiles here), reads ``VmRSS`` from
``/proc/self/status``, runs two steps and reports ``VmHWM`` minus that: the most extra
resident memory a step needed (activations, gradients, momentum buffers, temporaries;
weights and inputs already resident are not counted). For
chainrule the bytes saved for backward (``chainrule.diagnostics.memory_report``) are
reported too.

Run: ``python -m benchmarks.run deep``.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import numpy as np

from . import common, mlp, peers

NAME = "deep"
DESCRIPTION = "64-layer ReLU MLP, width 256, batch 128: full step time and peak memory"
DEPTH, WIDTH, CLASSES = 64, 256, 10
GAIN = float(np.sqrt(6.0))
# 64 layers amplify float32 rounding: at lr 0.01 the loss after one update differs by
# ~1.2e-4 between float32 libraries (torch's agrees with float64), so a smaller step
LR = 0.001


def sizes_for(depth: int, width: int, classes: int) -> tuple[int, ...]:
    """Layer sizes: ``depth`` Linear layers, the last one to ``classes``."""
    return (width,) * depth + (classes,)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"deep: no {field} in /proc/self/status")


def measure_peak(lib: str, depth: int, width: int, batch: int) -> dict:
    """In this process: the resident memory two steps add, with freed memory kept.

    Run with the timing malloc settings (no mmap, no trim), the heap never shrinks, so
    the RSS high-water mark after two steps minus the RSS before them is the most memory
    a step held at once (momentum buffers included; weights and inputs already there).
    """
    sizes = sizes_for(depth, width, CLASSES)
    libs = {}
    if lib not in ("chainrule", "numpy"):  # the hand-written NumPy step needs no import
        libs[lib] = peers._import(lib)
    weights = mlp.init_weights(sizes, gain=GAIN)
    x, y = mlp.data(sizes, batch)
    step = mlp.factories(sizes, weights, x, y, libs, {}, lr=LR)[lib]()  # JAX compiles here
    gc.collect()
    rss0 = _status_kib("VmRSS")
    step()
    step()
    peak = _status_kib("VmHWM") - rss0
    return {"peak_mib": peak / 1024}


def peak_in_child(lib: str, depth: int, width: int, batch: int) -> dict:
    """:func:`measure_peak` in a fresh interpreter with the timing malloc settings."""
    env = dict(os.environ)
    env.update(common.MALLOC_ENV)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"import json; from benchmarks.deep import measure_peak; "
            f"print(json.dumps(measure_peak({lib!r}, {depth}, {width}, {batch})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1][:160] if out.stderr else "?"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def saved_bytes(sizes, weights, x, y) -> int:
    """chainrule: peak bytes saved for backward in one forward+backward of the loss."""
    import chainrule as cr
    from chainrule.diagnostics import memory_report

    net = mlp._sequential(cr.nn, sizes)
    net.load_state_dict({k: w.copy() for k, w in mlp._state(net, weights).items()})
    xx, yy = cr.tensor(x), cr.tensor(y)
    rep = memory_report(lambda inp: cr.nn.functional.cross_entropy(net(inp), yy), xx,
                        modules=[])
    return rep.peak_bytes


def run(smoke: bool = False, batch: int = 128, repeats: int = 8,
        memory: bool | None = None) -> dict:
    """Cross-check, time the deep step in every installed library, then measure memory.

    Args:
        smoke: tiny sizes and the fast peers only; checks that the benchmark runs.
        batch: rows per step.
        repeats: samples per library.
        memory: measure peak RSS in child processes (default: not in smoke mode).
    """
    depth, width = DEPTH, WIDTH
    if smoke:
        depth, width, batch, repeats = 4, 8, 4, 2
    if memory is None:
        memory = not smoke
    sizes = sizes_for(depth, width, CLASSES)
    libs, notes = peers.load_peers(smoke)
    weights = mlp.init_weights(sizes, gain=GAIN)
    x, y = mlp.data(sizes, batch)
    info: dict = {}
    facs = mlp.factories(sizes, weights, x, y, libs, info, lr=LR)
    result = peers.run_workload(NAME, facs, repeats=repeats, warmup=1 if smoke else 2,
                                params={"depth": depth, "width": width, "batch": batch,
                                        "repeats": repeats, "smoke": smoke,
                                        "dtype": "float32"},
                                flops=mlp.step_flops(sizes, batch), notes=notes, info=info)
    saved = saved_bytes(sizes, weights, x, y)
    result["chainrule_saved_mib"] = saved / 2 ** 20
    result["notes"].append(f"chainrule saves {saved / 2 ** 20:.2f} MiB for backward at "
                           f"its peak (memory_report)")
    if memory:
        for row in result["rows"]:
            if row["lib"].startswith("tinygrad"):
                # a fresh process compiles its kernels again (tens of seconds each)
                result["notes"].append(f"{row['lib']}: memory not measured (its kernels "
                                       f"would compile again in a fresh process)")
                continue
            m = peak_in_child(row["lib"], depth, width, batch)
            if "peak_mib" in m:
                row["peak_mib"] = m["peak_mib"]
            else:
                result["notes"].append(f"{row['lib']}: memory not measured: {m['error']}")
        result["notes"].append(
            "peak MiB = RSS high-water mark over two steps minus RSS before them, each "
            "library in a fresh process with the malloc settings (weights, inputs and "
            "JAX's compilation not counted)")
    return peers.finish_result(result, libs, 0.9, [])


def format_result(result: dict) -> str:
    """The table of ms per step, GFLOP/s, peak memory and ratios to torch."""
    return peers.format_steps(result)


if __name__ == "__main__":
    common.ensure_malloc_env()
    print(common.describe_machine())
    print(format_result(run()))
