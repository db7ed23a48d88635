"""Learning to learn by gradient descent: an LSTM optimizer meta-trained on quadratics.

A small LSTM (one layer, 20 units) is applied to every coordinate of the optimizee on its
own, with shared weights: it reads that coordinate's gradient and writes its update,
``theta <- theta + 0.1 * head(lstm(preprocess(grad)))`` (Andrychowicz et al., 2016). The
gradient enters preprocessed as ``(log|g| / p, sign g)`` (or ``(-1, e^p g)`` for tiny
``g``, with ``p = 10``), so the network sees scale and direction separately.

Meta-training unrolls the optimizer on random quadratics ``f(theta) = ||W theta - y||^2``
(``W`` 10x10, ``y`` and ``theta_0`` standard normal) for ``--horizon`` steps, cut into
truncations of ``--unroll`` steps. The meta-loss is the sum of ``f`` over a truncation;
its gradient w.r.t. the LSTM flows back through every update ``theta_t`` (truncated
BPTT). As in the paper, the optimizee gradient ``grad f(theta_t)`` that feeds the LSTM is
treated as a constant (detached), which drops the second derivatives of ``f`` and keeps
a step cheap; ``f(theta_t)`` itself stays in the graph.

The learned optimizer is then compared with SGD and Adam, each with its learning rate
picked from a grid on *training* quadratics, on held-out quadratics and on a problem it
never saw: a small tanh MLP fitting a random teacher network. The LSTM is not told the
problem changed, and its gradients there have other scales; the MLP numbers are reported
as they come (it may do worse than the tuned baselines there).

What it shows: a meta-optimisation through an unrolled inner loop, ``nn.LSTMCell`` on a
batch of coordinates, ``cr.autograd.grad`` on a non-leaf tensor with ``retain_graph``,
detaching the state between truncations, and ``cr.optim.SGD``/``Adam`` on plain tensors.

Run it::

    python examples/learned_optimizer.py               # ~25 s: final losses of all three
    python examples/learned_optimizer.py --meta-iterations 200 --horizon 200
    python examples/learned_optimizer.py --tiny        # a seconds-long smoke run

``main`` returns the learned optimizer's relative improvement over tuned SGD on the
held-out quadratics, ``1 - final loss(learned) / final loss(SGD)`` (0: no better).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np

import chainrule as cr
from chainrule import nn

# A problem: per-problem losses (shape (B,)) of a list of parameter tensors, and the
# initial parameters. B independent problems are run side by side.
LossFn = Callable[[list[cr.Tensor]], cr.Tensor]


def quadratics(rng: np.random.Generator, n: int, dim: int = 10):
    """``n`` random quadratics ``||W theta - y||^2`` and their initial ``theta``."""
    w = cr.from_numpy(rng.standard_normal((n, dim, dim)).astype(np.float32))
    y = cr.from_numpy(rng.standard_normal((n, dim, 1)).astype(np.float32))
    theta = cr.from_numpy(rng.standard_normal((n, dim, 1)).astype(np.float32))

    def loss(params: list[cr.Tensor]) -> cr.Tensor:
        return ((w @ params[0] - y) ** 2).sum(dim=(1, 2))

    return loss, [theta]


def mlp_problems(rng: np.random.Generator, n: int, n_in: int = 4, hidden: int = 16,
                 samples: int = 64):
    """``n`` regressions: a 4-16-1 tanh MLP fitting a random 4-16-1 tanh teacher."""
    def layer(fan_in, fan_out):
        w = rng.uniform(-1, 1, (n, fan_in, fan_out)) / math.sqrt(fan_in)
        return cr.from_numpy(w.astype(np.float32)), cr.zeros(n, 1, fan_out)

    x = cr.from_numpy(rng.standard_normal((n, samples, n_in)).astype(np.float32))
    tw1, _ = layer(n_in, hidden)
    tw2, _ = layer(hidden, 1)
    target = (x @ tw1 * 3.0).tanh() @ tw2 * 3.0              # a sharper random teacher

    def loss(params: list[cr.Tensor]) -> cr.Tensor:
        w1, b1, w2, b2 = params
        out = (x @ w1 + b1).tanh() @ w2 + b2
        return ((out - target) ** 2).mean(dim=(1, 2))

    return loss, [*layer(n_in, hidden), *layer(hidden, 1)]


def preprocess(g: np.ndarray, p: float = 10.0) -> cr.Tensor:
    """The paper's gradient preprocessing, ``(N,)`` -> ``(N, 2)``: log-scale and sign."""
    a = np.abs(g)
    big = a >= math.exp(-p)
    scale = np.where(big, np.log(np.maximum(a, 1e-30)) / p, -1.0)
    sign = np.where(big, np.sign(g), math.exp(p) * g)
    return cr.from_numpy(np.stack([scale, sign], axis=1).astype(np.float32))


class LSTMOptimizer(nn.Module):
    """A coordinate-wise LSTM: one shared cell, every coordinate a row of the batch."""

    def __init__(self, hidden: int = 20, out_scale: float = 0.1) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(2, hidden)
        self.head = nn.Linear(hidden, 1)
        self.hidden = hidden
        self.out_scale = out_scale

    def init_state(self, n: int) -> tuple[cr.Tensor, cr.Tensor]:
        """Zero ``(h, c)`` for ``n`` coordinates."""
        return cr.zeros(n, self.hidden), cr.zeros(n, self.hidden)

    def forward(self, grad: cr.Tensor, state):
        """Updates ``(N,)`` for the gradients ``(N,)`` (constants), and the new state."""
        h, c = self.cell(preprocess(grad.numpy()), state)
        return self.head(h).reshape(-1) * self.out_scale, (h, c)


def _flat(ts: list[cr.Tensor]) -> cr.Tensor:
    return cr.cat([t.reshape(-1) for t in ts])


def _unflat(v: cr.Tensor, like: list[cr.Tensor]) -> list[cr.Tensor]:
    out, start = [], 0
    for t in like:
        n = t.numel()
        out.append(v[start:start + n].reshape(t.shape))
        start += n
    return out


def learned_step(net: LSTMOptimizer, loss_fn: LossFn, params, state):
    """One optimizee step; returns ``(new params, state, f(params) per problem)``.

    The gradient is taken with ``retain_graph`` (the loss is also part of the meta-loss)
    and detached: the LSTM sees it as data, as in the paper.
    """
    f = loss_fn(params)
    grads = cr.autograd.grad(f.sum(), params, retain_graph=True)
    update, state = net(_flat(grads).detach(), state)
    params = [p + u for p, u in zip(params, _unflat(update, params))]
    return params, state, f


def _leaves(params: list[cr.Tensor]) -> list[cr.Tensor]:
    return [p.detach().clone().requires_grad_() for p in params]


def meta_train(net: LSTMOptimizer, rng: np.random.Generator, args) -> None:
    """Truncated BPTT through unrolled optimisations of fresh random quadratics."""
    opt = cr.optim.Adam(net.parameters(), lr=args.meta_lr)
    # The meta-gradients are noisy (fresh quadratics each run): anneal the meta-lr to 0.
    truncations = args.horizon // args.unroll
    sched = cr.optim.lr_scheduler.CosineAnnealingLR(opt, args.meta_iterations * truncations)
    for it in range(args.meta_iterations):
        loss_fn, params = quadratics(rng, args.batch)
        params = _leaves(params)
        state = net.init_state(_flat(params).numel())
        total = 0.0
        for _ in range(truncations):
            meta_loss = 0.0
            for _ in range(args.unroll):
                params, state, _ = learned_step(net, loss_fn, params, state)
                meta_loss = meta_loss + loss_fn(params).mean()   # f(theta_t), t = 1..T
            meta_loss = meta_loss / args.unroll
            opt.zero_grad()
            meta_loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            total += meta_loss.item()
            # Next truncation: the optimizee and the LSTM state go on, their history is cut.
            params = _leaves(params)
            state = (state[0].detach(), state[1].detach())
        if (it + 1) % max(1, args.meta_iterations // 5) == 0:
            print(f"  meta-iteration {it + 1:4d}  mean f over the run "
                  f"{total / truncations:.4f}")


def run_learned(net: LSTMOptimizer, loss_fn: LossFn, params, steps: int) -> np.ndarray:
    """Final per-problem losses after ``steps`` steps of the learned optimizer."""
    params = _leaves(params)
    state = net.init_state(_flat(params).numel())
    for _ in range(steps):
        grads = cr.autograd.grad(loss_fn(params).sum(), params)
        with cr.no_grad():                          # no graph into the LSTM at test time
            update, state = net(_flat(grads), state)
            params = [p + u for p, u in zip(params, _unflat(update, params))]
        params = _leaves(params)
    with cr.no_grad():
        return loss_fn(params).numpy()


def run_baseline(kind: str, lr: float, loss_fn: LossFn, params, steps: int) -> np.ndarray:
    """Final per-problem losses after ``steps`` steps of ``cr.optim.SGD`` or ``Adam``.

    The problems are independent, so a step on the sum of their losses is a step on each.
    """
    params = _leaves(params)
    opt = (cr.optim.SGD if kind == "SGD" else cr.optim.Adam)(params, lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(params).sum().backward()
        opt.step()
    with cr.no_grad():
        out = loss_fn(params).numpy()
    return np.where(np.isfinite(out), out, np.inf)


def tune(kind: str, grid: list[float], problem, steps: int) -> float:
    """The learning rate from ``grid`` with the lowest mean final loss on ``problem``."""
    scores = {}
    with np.errstate(over="ignore", invalid="ignore"):
        for lr in grid:
            scores[lr] = float(np.mean(run_baseline(kind, lr, *problem, steps)))
    best = min(scores, key=scores.get)
    shown = "  ".join(f"{lr:g}: {s:.3g}" for lr, s in scores.items())
    print(f"  {kind:4s} mean final loss by lr  {shown}  -> lr {best:g}")
    return best


def compare(name: str, net, lrs: dict, problem, steps: int) -> dict:
    """Mean final loss of the three optimizers on ``problem``; prints one row each
    (with the median, and how many problems ended non-finite)."""
    with np.errstate(over="ignore", invalid="ignore"):
        finals = {"learned": run_learned(net, *problem, steps)}
        for kind in ("SGD", "Adam"):
            finals[kind] = run_baseline(kind, lrs[kind], *problem, steps)
    print(f"{name}: final loss after {steps} steps")
    print(f"  {'':8s} {'mean':>10s} {'median':>10s}  diverged")
    res = {}
    for kind, v in finals.items():
        res[kind] = float(np.mean(v))
        lr = f"  (lr {lrs[kind]:g})" if kind in lrs else ""
        bad = int((~np.isfinite(v)).sum())
        print(f"  {kind:8s} {res[kind]:10.4g} {float(np.median(v)):10.4g}  "
              f"{bad:3d}/{len(v)}{lr}")
    return res


def main(argv: list[str] | None = None) -> float:
    """Meta-train the LSTM optimizer and compare it with tuned SGD and Adam."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meta-iterations", type=int, default=50,
                        help="training optimisations (each of --horizon steps)")
    parser.add_argument("--batch", type=int, default=64, help="quadratics per optimisation")
    parser.add_argument("--horizon", type=int, default=100, help="optimizee steps per run")
    parser.add_argument("--unroll", type=int, default=20, help="steps per truncation")
    parser.add_argument("--hidden", type=int, default=20, help="LSTM units")
    parser.add_argument("--meta-lr", type=float, default=1e-2)
    parser.add_argument("--test-problems", type=int, default=100)
    parser.add_argument("--tune-problems", type=int, default=500,
                        help="training quadratics the baselines' learning rates are tuned on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args(argv)
    if args.tiny:
        args.meta_iterations, args.batch, args.horizon, args.unroll = 10, 16, 40, 10
        args.test_problems, args.tune_problems = 20, 100
    if args.horizon % args.unroll:
        parser.error("--horizon must be a multiple of --unroll")

    cr.manual_seed(args.seed)
    net = LSTMOptimizer(args.hidden)
    start = time.perf_counter()
    print("meta-training the LSTM optimizer on random quadratics:")
    meta_train(net, np.random.default_rng(args.seed), args)
    print(f"  done in {time.perf_counter() - start:.1f} s")

    steps = args.horizon
    grid = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
    print("tuning the baselines on training quadratics:")
    train_q = quadratics(np.random.default_rng(args.seed + 1), args.tune_problems)
    lrs = {kind: tune(kind, grid, train_q, steps) for kind in ("SGD", "Adam")}
    test_q = quadratics(np.random.default_rng(args.seed + 2), args.test_problems)
    quad = compare("held-out quadratics", net, lrs, test_q, steps)

    print("tuning the baselines on a training MLP problem:")
    train_mlp = mlp_problems(np.random.default_rng(args.seed + 3), args.test_problems // 4)
    mlp_lrs = {kind: tune(kind, grid, train_mlp, steps) for kind in ("SGD", "Adam")}
    test_mlp = mlp_problems(np.random.default_rng(args.seed + 4), args.test_problems // 4)
    compare("held-out MLP regressions (never seen in meta-training)", net, mlp_lrs,
            test_mlp, steps)

    gain = 1.0 - quad["learned"] / quad["SGD"]
    print(f"learned vs tuned SGD on held-out quadratics: {quad['learned']:.4f} vs "
          f"{quad['SGD']:.4f}, relative improvement {gain:.4f}")
    return gain


if __name__ == "__main__":
    main()
