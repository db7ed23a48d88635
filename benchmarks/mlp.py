"""One MLP training step against every installed peer, with achieved and GEMM GFLOP/s.

Workload: ``784-1024-1024-10`` with ReLU, batch 256, float32, cross-entropy, SGD with
momentum 0.9 (PyTorch's rule: the buffer starts as the first gradient). One step is
zero_grad, forward, loss, backward and the optimizer update. Every library starts from
the same NumPy weights; the losses of two steps are cross-checked before timing (see
:mod:`benchmarks.peers`); the ``numpy`` row is the same step with the backward written
out by hand and no engine (:mod:`benchmarks.manual`, always run). The run also times
NumPy float32 GEMMs of exactly the step's sizes (each layer's forward, input-gradient and
weight-gradient products), so achieved GFLOP/s (``3 x`` the forward GEMM FLOPs per step)
can be set against what this machine's BLAS reaches in the same run.

Run: ``python -m benchmarks.run mlp``.
"""

from __future__ import annotations

import numpy as np

from . import common, manual, peers

NAME = "mlp"
DESCRIPTION = "MLP 784-1024-1024-10 ReLU, batch 256, cross-entropy, SGD momentum: full step"
SIZES = (784, 1024, 1024, 10)
SMOKE_SIZES = (8, 16, 16, 4)
LR, MOMENTUM = 0.01, 0.9


def init_weights(sizes, seed: int = 0, gain: float = 1.0) -> list[np.ndarray]:
    """``[W0, b0, W1, b1, ...]`` in PyTorch's layout, uniform(+-gain/sqrt(fan_in))."""
    rng = np.random.default_rng(seed)
    out = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = gain / np.sqrt(n_in)
        out.append(rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32))
        out.append(rng.uniform(-bound, bound, n_out).astype(np.float32))
    return out


def data(sizes, batch: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A float32 input batch and integer labels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    return x, rng.integers(0, sizes[-1], batch)


def mlp_loss(xp, ps, x, target):
    """The functional MLP (ReLU between layers) and its mean cross-entropy."""
    h = x
    n = len(ps) // 2
    for i in range(n):
        h = peers.linear(xp, h, ps[2 * i], ps[2 * i + 1])
        if i < n - 1:
            h = peers.relu(xp, h)
    return peers.cross_entropy(xp, h, target)


def _sequential(nn, sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _state(net, weights):
    keys = list(net.state_dict().keys())
    return dict(zip(keys, weights))


def _module_step(lib, sizes, weights, x, y, lr: float, momentum: float):
    """The step with ``lib.nn`` / ``lib.optim.SGD`` (PyTorch and chainrule share the API)."""
    net = _sequential(lib.nn, sizes)
    net.load_state_dict({k: lib.from_numpy(w.copy()) for k, w in _state(net, weights).items()})
    opt = lib.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    xx, yy = lib.from_numpy(x), lib.from_numpy(y)

    def step():
        opt.zero_grad()
        loss = lib.nn.functional.cross_entropy(net(xx), yy)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def factories(sizes, weights, x, y, libs: dict, info: dict, lr: float = LR,
              momentum: float = MOMENTUM) -> dict:
    """One factory per library for the MLP step (see :mod:`benchmarks.peers`)."""
    import chainrule as cr

    out = {"chainrule": lambda: _module_step(cr, sizes, weights, x, y, lr, momentum)}
    if "torch" in libs:
        torch = libs["torch"]
        out["torch"] = lambda: _module_step(torch, sizes, weights, x, y, lr, momentum)
    out["numpy"] = lambda: manual.mlp_step_factory(weights, x, y, lr, momentum)
    target = peers.onehot(y, sizes[-1])
    out.update(peers.xp_factories(mlp_loss, weights, x, target, lr, momentum, libs, info))
    if peers.has_tinygrad(libs):
        n = len(weights) // 2

        def tinygrad_loss(ps, xx, yy):
            h = xx
            for i in range(n):
                h = h.linear(ps[2 * i].T, ps[2 * i + 1])
                if i < n - 1:
                    h = h.relu()
            return h.sparse_categorical_crossentropy(yy)

        out.update(peers.tinygrad_factories(tinygrad_loss, weights, x, y, lr, momentum, info))
    return out


def gemm_gflops(sizes, batch: int, repeats: int) -> dict:
    """NumPy float32 GEMM GFLOP/s over the step's own products, and one square 1024 GEMM."""
    rng = np.random.default_rng(2)
    mats = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        x = rng.standard_normal((batch, a)).astype(np.float32)
        w = rng.standard_normal((b, a)).astype(np.float32)
        g = rng.standard_normal((batch, b)).astype(np.float32)
        mats.append((x, w, g))
    flops = 3 * 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    def step_gemms():
        for x, w, g in mats:
            x @ w.T
            g @ w
            g.T @ x

    n = 256 if max(sizes) < 1024 else 1024
    sq = rng.standard_normal((n, n)).astype(np.float32)
    res = common.interleave({"step": step_gemms, "square": lambda: sq @ sq}, repeats,
                            warmup=2)
    return {"step_sizes": flops / res["step"]["min"] / 1e9,
            "square": 2 * n ** 3 / res["square"]["min"] / 1e9, "square_n": n}


def step_flops(sizes, batch: int) -> float:
    """FLOPs of one step: forward GEMMs times three (forward, input and weight grads)."""
    return 3 * 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def run(smoke: bool = False, batch: int = 256, repeats: int = 10) -> dict:
    """Cross-check, then time the MLP step in every installed library.

    Args:
        smoke: tiny sizes and the fast peers only; checks that the benchmark runs.
        batch: rows per step.
        repeats: samples per library.
    """
    sizes = SIZES
    if smoke:
        sizes, batch, repeats = SMOKE_SIZES, 4, 2
    libs, notes = peers.load_peers(smoke)
    weights = init_weights(sizes)
    x, y = data(sizes, batch)
    info: dict = {}
    facs = factories(sizes, weights, x, y, libs, info)
    flops = step_flops(sizes, batch)
    result = peers.run_workload(NAME, facs, repeats=repeats, warmup=1 if smoke else 2,
                                params={"sizes": sizes, "batch": batch, "repeats": repeats,
                                        "smoke": smoke, "dtype": "float32"},
                                flops=flops, notes=notes, info=info)
    result["gemm_gflops"] = gemm_gflops(sizes, batch, 3 if smoke else 10)
    g = result["gemm_gflops"]
    extra = [f"NumPy float32 GEMM in this run: {g['step_sizes']:.1f} GFLOP/s over the step's "
             f"own products, {g['square']:.1f} GFLOP/s for one {g['square_n']}^2 product; a "
             f"step counts {flops / 1e9:.3f} GFLOP (3 x forward GEMMs)"]
    if peers.has_tinygrad(libs):
        extra.append(peers.TINYGRAD_NOTE)
    return peers.finish_result(result, libs, 0.85, extra)


def format_result(result: dict) -> str:
    """The table of ms per step, GFLOP/s and ratios to torch."""
    return peers.format_steps(result)


if __name__ == "__main__":
    common.ensure_malloc_env()
    print(common.describe_machine())
    print(format_result(run()))
