"""Per-op overhead: a chain of small ops on a 16-element tensor.

The chain repeats ``y * w``, ``y + b``, ``tanh(y)``, ``y * 0.5`` (``w`` and ``b`` require
grad, so the leaves accumulate 50 gradient contributions each). Two modes:

- forward + backward (``chain(...).sum().backward()``), chainrule against PyTorch CPU;
- forward under ``no_grad``, chainrule against bare NumPy (and PyTorch).

Each sample runs the chain ``inner`` times; the result is microseconds per op (the sum
and the backward call are counted in, divided by the chain length). Targets: chainrule's
forward+backward per op at most half of PyTorch's, no-grad ops within 1.5x of NumPy.

Run: ``python -m benchmarks.run overhead`` (or ``python -m benchmarks.overhead``).
"""

from __future__ import annotations

import numpy as np

from . import common

NAME = "overhead"
DESCRIPTION = "chain of 200 small ops on a 16-element tensor: forward+backward and no_grad"


def chain(lib, y, w, b, n: int):
    """Apply ``n`` small ops (a repeating cycle of four) to ``y`` with module ``lib``."""
    tanh = lib.tanh
    for _ in range(n // 4):
        y = y * w
        y = y + b
        y = tanh(y)
        y = y * 0.5
    return y


def _chainrule_cases(cr, xs: list, n_ops: int):
    cx, cw, cb = (cr.tensor(a.copy(), requires_grad=True) for a in xs)

    def cr_fb():
        cx.grad = cw.grad = cb.grad = None
        chain(cr, cx, cw, cb, n_ops).sum().backward()

    def cr_ng():
        with cr.no_grad():
            chain(cr, cx, cw, cb, n_ops)

    return cr_fb, cr_ng


def _cases(n_ops: int, size: int, torch, baseline=None) -> tuple[dict, dict]:
    import chainrule as cr

    rng = np.random.default_rng(0)
    xs = [rng.uniform(0.5, 1.5, size).astype(np.float32) for _ in range(3)]
    x_np, w_np, b_np = xs
    cr_fb, cr_ng = _chainrule_cases(cr, xs, n_ops)

    def np_fwd():
        chain(np, x_np, w_np, b_np, n_ops)

    fb = {"chainrule": cr_fb}
    ng = {"chainrule": cr_ng, "numpy": np_fwd}
    if baseline is not None:
        fb["baseline"], ng["baseline"] = _chainrule_cases(baseline, xs, n_ops)
    if torch is not None:
        tx, tw, tb = (torch.tensor(a.copy(), requires_grad=True) for a in xs)

        def th_fb():
            tx.grad = tw.grad = tb.grad = None
            chain(torch, tx, tw, tb, n_ops).sum().backward()

        def th_ng():
            with torch.no_grad():
                chain(torch, tx, tw, tb, n_ops)

        fb["torch"] = th_fb
        ng["torch"] = th_ng
    return fb, ng


def run(smoke: bool = False, n_ops: int = 200, size: int = 16, repeats: int = 15,
        inner: int = 10, torch: bool | None = None, baseline: str | None = None) -> dict:
    """Measure the chain; returns the result dict (times in seconds per op).

    Args:
        smoke: tiny sizes and counts, only to check that the benchmark runs.
        n_ops: chain length (a multiple of 4).
        size: elements per tensor.
        repeats: samples per library and mode.
        inner: chains per sample.
        torch: compare against PyTorch (default: when installed, except in smoke mode).
        baseline: a directory holding another ``chainrule`` checkout (e.g. before a
            change), measured alongside as library ``baseline``.
    """
    if smoke:
        n_ops, repeats, inner = 8, 2, 1
    if torch is None:
        torch = not smoke
    torch = common.try_import_torch() if torch else None
    base = common.import_baseline(baseline) if baseline else None
    fb, ng = _cases(n_ops, size, torch, base)
    cases = {f"fwd+bwd/{k}": v for k, v in fb.items()}
    cases.update({f"no_grad/{k}": v for k, v in ng.items()})
    res = common.interleave(cases, repeats, warmup=1 if smoke else 3, inner=inner,
                            per=n_ops)
    rows = []
    for key, st in res.items():
        mode, lib = key.split("/")
        rows.append({"mode": mode, "lib": lib, "min": st["min"], "median": st["median"],
                     "n": st["n"], "cpu_min": st["cpu"]["min"],
                     "cpu_median": st["cpu"]["median"]})
    ratios = {}
    if "fwd+bwd/torch" in res:
        ratios["fwd+bwd chainrule/torch"] = _ratio(res, "fwd+bwd/chainrule", "fwd+bwd/torch")
    ratios["no_grad chainrule/numpy"] = _ratio(res, "no_grad/chainrule", "no_grad/numpy")
    if "no_grad/torch" in res:
        ratios["no_grad chainrule/torch"] = _ratio(res, "no_grad/chainrule", "no_grad/torch")
    if base is not None:
        ratios["fwd+bwd chainrule/baseline"] = _ratio(res, "fwd+bwd/chainrule",
                                                      "fwd+bwd/baseline")
        ratios["no_grad chainrule/baseline"] = _ratio(res, "no_grad/chainrule",
                                                      "no_grad/baseline")
    return {
        "name": NAME,
        "params": {"n_ops": n_ops, "size": size, "repeats": repeats, "inner": inner,
                   "smoke": smoke, "baseline": baseline},
        "rows": rows,
        "ratios": ratios,
        "targets": {"fwd+bwd chainrule/torch": 0.5, "no_grad chainrule/numpy": 1.5},
        "notes": [common.ENV_NOTE, "torch threads = cores" if torch is not None
                  else "torch not installed: no comparison"],
    }


def _ratio(res: dict, a: str, b: str) -> dict:
    return {"min": res[a]["min"] / res[b]["min"],
            "median": res[a]["median"] / res[b]["median"],
            "cpu_min": res[a]["cpu"]["min"] / res[b]["cpu"]["min"],
            "cpu_median": res[a]["cpu"]["median"] / res[b]["cpu"]["median"]}


def format_result(result: dict) -> str:
    """The result as a Markdown table of microseconds per op plus the ratios."""
    rows = [[r["mode"], r["lib"], common.us(r["min"]), common.us(r["median"]),
             common.us(r["cpu_min"]), common.us(r["cpu_median"])] for r in result["rows"]]
    text = common.format_table(["mode", "library", "min us/op", "median us/op",
                                "CPU min us/op", "CPU median"], rows)
    lines = [text, ""]
    targets = result.get("targets", {})
    for name, r in result["ratios"].items():
        tgt = f" (target <= {targets[name]})" if name in targets else ""
        lines.append(f"ratio {name}: min {r['min']:.2f}, median {r['median']:.2f}; CPU time "
                     f"min {r['cpu_min']:.2f}, median {r['cpu_median']:.2f}{tgt}")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    common.ensure_malloc_env()
    p = argparse.ArgumentParser(prog="python -m benchmarks.overhead")
    p.add_argument("--baseline", metavar="DIR",
                   help="also measure the chainrule package in DIR (an older checkout)")
    p.add_argument("--repeats", type=int, default=15)
    a = p.parse_args()
    res = run(repeats=a.repeats, baseline=a.baseline)
    print(common.describe_machine())
    print(format_result(res))
