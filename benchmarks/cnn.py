"""One LeNet-5 training step: chainrule against PyTorch CPU.

Workload: a batch of 64 images ``1x28x28``; ``Conv2d(1, 6, 5)``, ReLU, ``MaxPool2d(2)``,
``Conv2d(6, 16, 5)``, ReLU, ``MaxPool2d(2)``, flatten (256), ``Linear(256, 120)``, ReLU,
``Linear(120, 84)``, ReLU, ``Linear(84, 10)``, cross-entropy; one step is zero_grad,
forward, loss, backward and a plain SGD update. Both libraries run the same float32
workload with the same initial weights in the same process, interleaved (see
:mod:`benchmarks.common`). Target: chainrule at most 1.5x PyTorch's time.

Run: ``python -m benchmarks.run cnn`` (or ``python -m benchmarks.cnn``). On a loaded
machine, BLAS worker threads that spin while waiting for a core distort both libraries;
``OPENBLAS_NUM_THREADS=1 python -m benchmarks.cnn`` runs NumPy's BLAS single-threaded and
then gives PyTorch the same thread count.
"""

from __future__ import annotations

import os

import numpy as np

from . import common

NAME = "cnn"
DESCRIPTION = "LeNet-5 on 64 x 1x28x28, conv/pool/linear, cross-entropy: full training step"


def _lenet(nn):
    """The same LeNet-5 in either library (``nn`` is ``torch.nn`` or ``chainrule.nn``)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def _cases(batch: int, torch) -> dict:
    import chainrule as cr

    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y_np = rng.integers(0, 10, batch)
    cr.manual_seed(0)
    net = _lenet(cr.nn)
    params = list(net.parameters())
    x = cr.tensor(x_np)
    y = cr.tensor(y_np)
    lr = 0.01

    def cr_step():
        for p in params:
            p.grad = None
        loss = cr.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        with cr.no_grad():
            for p in params:
                p._data -= lr * p.grad._data

    cases = {"chainrule": cr_step}
    if torch is not None:
        t_net = _lenet(torch.nn)
        t_params = list(t_net.parameters())
        with torch.no_grad():
            for tp, cp in zip(t_params, params):
                tp.copy_(torch.from_numpy(cp.detach().numpy().copy()))
        tx = torch.from_numpy(x_np)
        ty = torch.from_numpy(y_np)

        def th_step():
            for p in t_params:
                p.grad = None
            loss = torch.nn.functional.cross_entropy(t_net(tx), ty)
            loss.backward()
            with torch.no_grad():
                for p in t_params:
                    p -= lr * p.grad

        cases["torch"] = th_step
    return cases


def run(smoke: bool = False, batch: int = 64, repeats: int = 30,
        torch: bool | None = None) -> dict:
    """Time the training step; returns the result dict (seconds per step).

    Args:
        smoke: tiny counts, only to check that the benchmark runs.
        batch: images per step.
        repeats: samples per library.
        torch: compare against PyTorch (default: when installed, except in smoke mode).
    """
    if smoke:
        batch, repeats = 2, 2
    if torch is None:
        torch = not smoke
    blas_threads = os.environ.get("OPENBLAS_NUM_THREADS")
    threads = int(blas_threads) if blas_threads and blas_threads.isdigit() else None
    torch = common.try_import_torch(threads) if torch else None
    cases = _cases(batch, torch)
    res = common.interleave(cases, repeats, warmup=1 if smoke else 5)
    rows = [{"lib": k, "min": v["min"], "median": v["median"], "n": v["n"]}
            for k, v in res.items()]
    ratios = {}
    if "torch" in res:
        ratios["chainrule/torch"] = {
            "min": res["chainrule"]["min"] / res["torch"]["min"],
            "median": res["chainrule"]["median"] / res["torch"]["median"],
        }
    return {
        "name": NAME,
        "params": {"batch": batch, "image": (1, 28, 28), "repeats": repeats,
                   "smoke": smoke},
        "rows": rows,
        "ratios": ratios,
        "targets": {"chainrule/torch": 1.5},
        "notes": [common.ENV_NOTE,
                  "torch not installed: no comparison" if torch is None else
                  f"torch threads = {torch.get_num_threads()} (OPENBLAS_NUM_THREADS="
                  f"{blas_threads or 'unset'})"],
    }


def format_result(result: dict) -> str:
    """The result as a Markdown table of milliseconds per training step plus the ratio."""
    rows = [[r["lib"], f"{r['min'] * 1e3:.2f}", f"{r['median'] * 1e3:.2f}"]
            for r in result["rows"]]
    lines = [common.format_table(["library", "min ms/step", "median ms/step"], rows), ""]
    lines += common.ratio_lines(result)
    return "\n".join(lines)


if __name__ == "__main__":
    common.ensure_malloc_env()
    print(common.describe_machine())
    print(format_result(run()))
