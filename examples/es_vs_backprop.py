"""What gradients buy: the same MLP trained by backprop and by an evolution strategy.

The network is a 64-16-10 MLP (1,210 parameters) on the 8x8 digits; both methods start
from the same initial weights and see the same minibatches of ``--batch-size`` samples.

- **Backprop**: Adam on the exact minibatch gradient, one forward and one backward pass
  per step.
- **ES** (OpenAI-ES, Salimans et al., 2017): each generation draws ``--population / 2``
  Gaussian directions ``e`` and evaluates the loss at ``theta + sigma e`` and
  ``theta - sigma e`` (antithetic pairs), replaces the losses by their centred ranks
  (fitness shaping: only the order counts, in ``[-0.5, 0.5]``), and forms the gradient
  estimate ``sum_i rank_i e_i / (population * sigma)``, which Adam then follows. No
  backward pass; the whole population is evaluated as one batched forward pass, with the
  population as a leading batch dimension of the weights.

The cost is counted in **forward passes**: one network evaluated on one minibatch. A
backprop step counts as one (its backward pass costs about two more), an ES generation
as ``--population``. The script prints training loss and held-out accuracy against that
count and against training wall time (evaluation excluded), then the forward passes and
seconds each method needed to reach ``--target`` held-out accuracy (checked after every
step until reached).

Run it (needs scikit-learn, which ships the digits data)::

    python examples/es_vs_backprop.py                  # population 50, sigma 0.1
    python examples/es_vs_backprop.py --generations 4000 --population 100
    python examples/es_vs_backprop.py --tiny           # a seconds-long smoke run
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import chainrule as cr
import chainrule.datasets
import chainrule.nn.functional as F
from chainrule import nn


def make_model(hidden: int, seed: int) -> nn.Sequential:
    """The 64-hidden-10 MLP; the same initial weights for every call with the same seed."""
    cr.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def population_forward(model: nn.Sequential, thetas: cr.Tensor, x: cr.Tensor) -> cr.Tensor:
    """Logits of every parameter vector in ``thetas`` (population, n) on ``x``: (pop, B, C).

    The rows of ``thetas`` are laid out like ``parameters_to_vector(model.parameters())``;
    each ``Linear`` becomes one batched matrix product over the population.
    """
    pop = thetas.shape[0]
    h = x
    offset = 0
    for layer in model:
        if isinstance(layer, nn.Linear):
            w_size = layer.weight.numel()
            w = thetas[:, offset:offset + w_size].reshape(pop, *layer.weight.shape)
            offset += w_size
            b = thetas[:, offset:offset + layer.out_features].reshape(pop, 1, -1)
            offset += layer.out_features
            h = cr.matmul(h, w.transpose(1, 2)) + b
        elif isinstance(layer, nn.ReLU):
            h = F.relu(h)
        else:
            raise TypeError(f"population_forward: expected Linear and ReLU layers, got "
                            f"{type(layer).__name__}")
    return h


def centred_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks of ``values`` scaled to [-0.5, 0.5] (the smallest value gets -0.5)."""
    ranks = np.empty(len(values))
    ranks[np.argsort(values)] = np.arange(len(values))
    return ranks / (len(values) - 1) - 0.5


def evaluate(model: nn.Module, data, loss: bool = True) -> tuple[float, float]:
    """(training-set loss or NaN, held-out accuracy), both under no_grad."""
    (x_train, y_train), (x_test, y_test) = data
    with cr.no_grad():
        train_loss = F.cross_entropy(model(x_train), y_train).item() if loss else float("nan")
        acc = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    return float(train_loss), float(acc)


class Log:
    """Rows of (forward passes, train seconds, train loss, test accuracy) at checkpoints."""

    def __init__(self, checkpoints: list[int]) -> None:
        self.checkpoints = checkpoints
        self.next = 0
        self.rows: list[tuple[int, float, float, float]] = []
        self.hit: tuple[int, float] | None = None

    def due(self, evals: int) -> bool:
        """Whether ``evals`` reached the next checkpoint."""
        return self.next < len(self.checkpoints) and evals >= self.checkpoints[self.next]

    def add(self, evals: int, seconds: float, model: nn.Module, data) -> None:
        """Evaluate ``model`` and append a row; move past every checkpoint ``evals`` reached."""
        loss, acc = evaluate(model, data)
        self.rows.append((evals, seconds, loss, acc))
        while self.due(evals):
            self.next += 1

    def watch(self, evals: int, seconds: float, model: nn.Module, data, target: float) -> None:
        """Note the first (forward passes, seconds) at which test accuracy reaches target."""
        if self.hit is None and evaluate(model, data, loss=False)[1] >= target:
            self.hit = (evals, seconds)


def batches(n: int, batch_size: int, gen: cr.Generator):
    """Endless minibatch index tensors, reshuffled every epoch."""
    while True:
        perm = cr.randperm(n, generator=gen)
        for i in range(0, n - batch_size + 1, batch_size):
            yield perm[i:i + batch_size]


def train_backprop(args, data, checkpoints: list[int]) -> Log:
    """Adam on the minibatch gradient for ``--steps`` steps."""
    (x_train, y_train), _ = data
    model = make_model(args.hidden, args.seed)
    optimizer = cr.optim.Adam(model.parameters(), lr=args.lr)
    log = Log(checkpoints)
    log.add(0, 0.0, model, data)
    source = batches(len(x_train), args.batch_size, cr.Generator().manual_seed(args.seed))
    seconds = 0.0
    for step in range(1, args.steps + 1):
        t0 = time.perf_counter()
        idx = next(source)
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seconds += time.perf_counter() - t0
        log.watch(step, seconds, model, data, args.target)
        if log.due(step) or step == args.steps:
            log.add(step, seconds, model, data)
    return log


def train_es(args, data, checkpoints: list[int]) -> Log:
    """OpenAI-ES with antithetic sampling and rank shaping, Adam on the estimate."""
    (x_train, y_train), _ = data
    model = make_model(args.hidden, args.seed)
    params = list(model.parameters())
    theta = nn.Parameter(cr.nn.utils.parameters_to_vector(params).detach())
    optimizer = cr.optim.Adam([theta], lr=args.es_lr)
    half = args.population // 2
    rng = np.random.default_rng(args.seed)
    log = Log(checkpoints)
    log.add(0, 0.0, model, data)
    source = batches(len(x_train), args.batch_size, cr.Generator().manual_seed(args.seed))
    seconds = 0.0
    evals = 0
    for gen in range(1, args.generations + 1):
        t0 = time.perf_counter()
        idx = next(source)
        xb, yb = x_train[idx], y_train[idx]
        e = rng.standard_normal((half, theta.numel()), dtype=np.float32)
        eps = cr.from_numpy(np.concatenate([e, -e]))
        with cr.no_grad():
            logits = population_forward(model, theta + args.sigma * eps, xb)
            pop, batch, classes = logits.shape
            losses = F.cross_entropy(logits.reshape(pop * batch, classes), yb.repeat(pop),
                                     reduction="none").reshape(pop, batch).mean(dim=1)
        # Low loss = high fitness; ascent direction of fitness = descent of the loss.
        shaped = cr.from_numpy(-centred_ranks(losses.numpy()).astype(np.float32))
        theta.grad = -(shaped @ eps) / (pop * args.sigma)
        optimizer.step()
        evals += pop
        seconds += time.perf_counter() - t0
        due = log.due(evals) or gen == args.generations
        if due or log.hit is None:
            cr.nn.utils.vector_to_parameters(theta.detach().clone(), params)
            log.watch(evals, seconds, model, data, args.target)
        if due:
            log.add(evals, seconds, model, data)
    return log


def print_log(name: str, log: Log) -> None:
    """One line per checkpoint."""
    print(f"{name}\n  {'forward passes':>14}  {'train s':>8}  {'train loss':>10}  "
          f"{'test acc':>8}")
    for evals, seconds, loss, acc in log.rows:
        print(f"  {evals:>14,d}  {seconds:>8.2f}  {loss:>10.4f}  {acc:>8.4f}")


def main(argv: list[str] | None = None) -> float:
    """Train by backprop and by ES, print both curves; return the ES held-out accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=600, help="backprop steps")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam lr for backprop")
    parser.add_argument("--generations", type=int, default=1500, help="ES generations")
    parser.add_argument("--population", type=int, default=50, help="even: antithetic pairs")
    parser.add_argument("--sigma", type=float, default=0.1, help="ES perturbation scale")
    parser.add_argument("--es-lr", type=float, default=0.03, help="Adam lr for ES")
    parser.add_argument("--target", type=float, default=0.9,
                        help="held-out accuracy for the cost comparison")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args(argv)
    if args.population < 2 or args.population % 2:
        parser.error(f"--population must be an even number >= 2, got {args.population}")
    if args.tiny:
        args.steps, args.generations = 40, 60

    x, y = cr.datasets.load_digits()
    perm = cr.randperm(len(x), generator=cr.Generator().manual_seed(0))
    n_test = len(x) // 5
    x_train, y_train = x[perm[n_test:]], y[perm[n_test:]]
    x_test, y_test = x[perm[:n_test]], y[perm[:n_test]]
    mean, std = x_train.mean(dim=0), x_train.std(dim=0).clamp(min=0.1)
    data = ((x_train - mean) / std, y_train), ((x_test - mean) / std, y_test)

    checkpoints = [round(10 ** (k / 2)) for k in range(2, 14)]  # 10, 32, 100, ... 1e6
    n_params = sum(p.numel() for p in make_model(args.hidden, args.seed).parameters())
    print(f"64-{args.hidden}-10 MLP ({n_params} parameters), minibatches of "
          f"{args.batch_size}; held-out accuracy on {n_test} digits")
    bp = train_backprop(args, data, checkpoints)
    print_log(f"backprop (Adam, lr {args.lr}): 1 forward pass (+ 1 backward) per step", bp)
    es = train_es(args, data, checkpoints)
    print_log(f"ES (population {args.population}, sigma {args.sigma}, Adam lr {args.es_lr}):"
              f" {args.population} forward passes per generation", es)

    print(f"to reach {args.target:.0%} held-out accuracy:")
    for name, log in (("backprop", bp), ("ES", es)):
        hit = log.hit
        if hit is None:
            print(f"  {name:<9}not reached in {log.rows[-1][0]:,d} forward passes "
                  f"({log.rows[-1][1]:.2f} s)")
        else:
            print(f"  {name:<9}{hit[0]:>9,d} forward passes, {hit[1]:.2f} s")
    bp_acc, es_acc = bp.rows[-1][3], es.rows[-1][3]
    print(f"final held-out accuracy: backprop {bp_acc:.4f}, ES {es_acc:.4f}")
    return es_acc


if __name__ == "__main__":
    main()
