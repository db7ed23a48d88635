"""One LSTM training step: chainrule against PyTorch CPU.

Workload: ``nn.LSTM(32, 128)`` over a sequence of 50 steps, batch 32; the last hidden
state goes through ``nn.Linear(128, 10)`` into cross-entropy; one step is zero_grad,
forward, backward and a plain SGD update. Both libraries run the same float32 workload
in the same process, interleaved (see :mod:`benchmarks.common`). Target: chainrule at
most 1.5x PyTorch's time (min and median).

Run: ``python -m benchmarks.run lstm`` (or ``python -m benchmarks.lstm``). The per-step
GEMMs are small (32 x 128 x 512); on a loaded machine, BLAS worker threads that spin
while waiting for a core distort both libraries, so
``OPENBLAS_NUM_THREADS=1 python -m benchmarks.lstm`` runs NumPy's BLAS single-threaded and
gives PyTorch the same thread count.
"""

from __future__ import annotations

import gc
import os
import time

import numpy as np

from . import common

NAME = "lstm"
DESCRIPTION = "LSTM(32, 128), seq 50, batch 32, linear to 10 classes: full training step"


def _cases(seq: int, batch: int, n_in: int, hidden: int, classes: int, torch) -> dict:
    import chainrule as cr

    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((seq, batch, n_in)).astype(np.float32)
    y_np = rng.integers(0, classes, batch)
    cr.manual_seed(0)
    lstm = cr.nn.LSTM(n_in, hidden)
    head = cr.nn.Linear(hidden, classes)
    params = list(lstm.parameters()) + list(head.parameters())
    x = cr.tensor(x_np)
    y = cr.tensor(y_np)
    lr = 0.01

    def cr_step():
        for p in params:
            p.grad = None
        _, (h, _) = lstm(x)
        loss = cr.nn.functional.cross_entropy(head(h[-1]), y)
        loss.backward()
        with cr.no_grad():
            for p in params:
                p._data -= lr * p.grad._data

    cases = {"chainrule": cr_step}
    if torch is not None:
        t_lstm = torch.nn.LSTM(n_in, hidden)
        t_head = torch.nn.Linear(hidden, classes)
        with torch.no_grad():
            for tp, cp in zip(list(t_lstm.parameters()) + list(t_head.parameters()), params):
                tp.copy_(torch.from_numpy(cp.detach().numpy().copy()))
        t_params = list(t_lstm.parameters()) + list(t_head.parameters())
        tx = torch.from_numpy(x_np)
        ty = torch.from_numpy(y_np)

        def th_step():
            for p in t_params:
                p.grad = None
            _, (h, _) = t_lstm(tx)
            loss = torch.nn.functional.cross_entropy(t_head(h[-1]), ty)
            loss.backward()
            with torch.no_grad():
                for p in t_params:
                    p -= lr * p.grad

        cases["torch"] = th_step
    return cases


def run(smoke: bool = False, seq: int = 50, batch: int = 32, n_in: int = 32,
        hidden: int = 128, classes: int = 10, repeats: int = 20,
        torch: bool | None = None) -> dict:
    """Time the training step; returns the result dict (seconds per step).

    Args:
        smoke: tiny sizes and counts, only to check that the benchmark runs.
        seq, batch, n_in, hidden, classes: the workload.
        repeats: samples per library.
        torch: compare against PyTorch (default: when installed, except in smoke mode).
    """
    if smoke:
        seq, batch, n_in, hidden, repeats = 3, 2, 4, 8, 2
    if torch is None:
        torch = not smoke
    blas_threads = os.environ.get("OPENBLAS_NUM_THREADS")
    threads = int(blas_threads) if blas_threads and blas_threads.isdigit() else None
    torch = common.try_import_torch(threads) if torch else None
    cases = _cases(seq, batch, n_in, hidden, classes, torch)
    res = common.interleave(cases, repeats, warmup=1 if smoke else 3)
    cpu = _cpu_times(cases, repeats)
    rows = [{"lib": k, "min": v["min"], "median": v["median"], "n": v["n"],
             "cpu_min": cpu[k]["min"], "cpu_median": cpu[k]["median"]}
            for k, v in res.items()]
    ratios = {}
    if "torch" in res:
        ratios["chainrule/torch"] = {
            "min": res["chainrule"]["min"] / res["torch"]["min"],
            "median": res["chainrule"]["median"] / res["torch"]["median"],
        }
        ratios["chainrule/torch (CPU time)"] = {
            "min": cpu["chainrule"]["min"] / cpu["torch"]["min"],
            "median": cpu["chainrule"]["median"] / cpu["torch"]["median"],
        }
    return {
        "name": NAME,
        "params": {"seq": seq, "batch": batch, "input": n_in, "hidden": hidden,
                   "classes": classes, "repeats": repeats, "smoke": smoke},
        "rows": rows,
        "ratios": ratios,
        "targets": {"chainrule/torch": 1.5},
        "notes": [common.ENV_NOTE,
                  "torch not installed: no comparison" if torch is None else
                  f"torch threads = {torch.get_num_threads()} (OPENBLAS_NUM_THREADS="
                  f"{blas_threads or 'unset'})"],
    }


def _cpu_times(cases: dict, repeats: int) -> dict:
    """Process CPU time per step, interleaved like the wall-clock samples.

    On a shared machine the wall clock also counts time spent waiting for a core; CPU
    time does not, so it is the steadier of the two for a single-threaded comparison.
    """
    out: dict = {k: [] for k in cases}
    names = list(cases)
    for r in range(repeats):
        k0 = r % len(names)
        for name in names[k0:] + names[:k0]:
            gc.collect()
            t0 = time.process_time()
            cases[name]()
            out[name].append(time.process_time() - t0)
    return {k: common.stats(v) for k, v in out.items()}


def format_result(result: dict) -> str:
    """The result as a Markdown table of milliseconds per training step plus the ratio."""
    rows = [[r["lib"], f"{r['min'] * 1e3:.2f}", f"{r['median'] * 1e3:.2f}",
             f"{r['cpu_min'] * 1e3:.2f}", f"{r['cpu_median'] * 1e3:.2f}"]
            for r in result["rows"]]
    headers = ["library", "min ms/step", "median ms/step", "CPU min ms", "CPU median ms"]
    lines = [common.format_table(headers, rows), ""]
    lines += common.ratio_lines(result)
    return "\n".join(lines)


if __name__ == "__main__":
    common.ensure_malloc_env()
    print(common.describe_machine())
    print(format_result(run()))
