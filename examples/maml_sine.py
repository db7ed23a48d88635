"""MAML on sinusoid regression: meta-learning an initialisation that adapts in one step.

Each task is a sine wave ``y = A sin(x - phase)`` with ``A ~ U[0.1, 5]``,
``phase ~ U[0, pi]`` and ``x ~ U[-5, 5]``; a learner sees K=10 points of a new task, takes
a few gradient steps (lr 0.01) on them, and is scored on fresh points of the same task
(the setting of Finn et al., 2017, with a 1-40-40-1 ReLU network). Three initialisations
are compared on the same held-out tasks, adapted with the same inner steps:

* **MAML** (second order): the meta-loss is the query loss *after* the inner steps, and
  its gradient flows back through them. The inner update
  ``params' = params - lr * grad L(params)`` is built with
  ``cr.autograd.grad(..., create_graph=True)``, so the meta-gradient contains the
  Hessian-vector products of the inner loss (gradients of gradients through
  ``matmul`` and ``relu``).
* **FOMAML** (first order): the same, but the inner gradients are detached, so the
  meta-gradient is just the query gradient at the adapted parameters.
* **pretrained**: the same network fitted by plain regression to the mixture of tasks,
  then fine-tuned like the others. On the mixture the best single function is the
  average wave, so it has learned nothing about amplitude or phase that a small step on
  ten points could use.

What it shows: a network written functionally (its parameters a list of tensors), a
meta-batch of tasks run as one batched matmul per layer (the parameters are expanded to
one copy per task, so one ``grad`` call gives every task its own inner gradient),
gradients of gradients through an optimisation step, and ``cr.optim.Adam`` on a plain
list of tensors. ``tests/test_maml.py`` gradchecks ``maml_meta_loss`` in float64.

Run it::

    python examples/maml_sine.py               # ~25 s: post-adaptation MSE of all three
    python examples/maml_sine.py --iterations 6000 --inner-steps 1
    python examples/maml_sine.py --tiny        # a seconds-long smoke run

``main`` returns MAML's relative improvement over the pretrained baseline,
``1 - mse(MAML) / mse(pretrained)`` after the inner steps on held-out tasks (0: no better).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import chainrule as cr


def sample_tasks(rng: np.random.Generator, n_tasks: int, k_support: int, k_query: int,
                 dtype=np.float32) -> tuple[cr.Tensor, ...]:
    """``n_tasks`` random sine tasks: support and query sets, each ``(n_tasks, K, 1)``.

    Returns ``(x_support, y_support, x_query, y_query)``.
    """
    amp = rng.uniform(0.1, 5.0, size=(n_tasks, 1, 1))
    phase = rng.uniform(0.0, math.pi, size=(n_tasks, 1, 1))
    x = rng.uniform(-5.0, 5.0, size=(n_tasks, k_support + k_query, 1))
    y = amp * np.sin(x - phase)
    x, y = x.astype(dtype), y.astype(dtype)
    return (cr.from_numpy(x[:, :k_support]), cr.from_numpy(y[:, :k_support]),
            cr.from_numpy(x[:, k_support:]), cr.from_numpy(y[:, k_support:]))


def init_params(sizes: tuple[int, ...], rng: np.random.Generator,
                dtype=np.float32) -> list[cr.Tensor]:
    """Weights ``(fan_in, fan_out)`` and biases ``(1, fan_out)`` per layer, leaves."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)              # nn.Linear's default range
        w = rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(dtype)
        b = rng.uniform(-bound, bound, size=(1, fan_out)).astype(dtype)
        params += [cr.from_numpy(w).requires_grad_(), cr.from_numpy(b).requires_grad_()]
    return params


def forward(params: list[cr.Tensor], x: cr.Tensor) -> cr.Tensor:
    """The ReLU MLP, functionally: ``x`` is ``(tasks, K, in)``; weights are shared
    ``(in, out)`` or per task ``(tasks, in, out)`` (both broadcast in ``@``)."""
    h = x
    n_layers = len(params) // 2
    for i in range(n_layers):
        h = h @ params[2 * i] + params[2 * i + 1]
        if i < n_layers - 1:
            h = h.relu()
    return h


def task_losses(params: list[cr.Tensor], x: cr.Tensor, y: cr.Tensor) -> cr.Tensor:
    """Mean squared error of each task, shape ``(tasks,)``."""
    return ((forward(params, x) - y) ** 2).mean(dim=(1, 2))


def adapt(params: list[cr.Tensor], x: cr.Tensor, y: cr.Tensor, inner_lr: float,
          steps: int, create_graph: bool) -> list[cr.Tensor]:
    """``steps`` gradient steps on each task's support loss; per-task parameters out.

    The shared parameters are first expanded to one copy per task, so the gradient of the
    *sum* of the task losses w.r.t. the copies is each task's own gradient. With
    ``create_graph`` the steps stay in the graph (second-order MAML); otherwise the
    gradients are constants, and ``d params' / d params`` is the identity (first order).
    """
    n_tasks = x.shape[0]
    fast = [p.expand(n_tasks, *p.shape) for p in params]
    for _ in range(steps):
        loss = task_losses(fast, x, y).sum()
        grads = cr.autograd.grad(loss, fast, create_graph=create_graph)
        fast = [p - inner_lr * (g if create_graph else g.detach())
                for p, g in zip(fast, grads)]
    return fast


def maml_meta_loss(params: list[cr.Tensor], tasks: tuple[cr.Tensor, ...], inner_lr: float,
                   steps: int, first_order: bool = False) -> cr.Tensor:
    """The MAML objective: mean query loss after ``steps`` inner steps on each support set.

    Args:
        params: the shared initial parameters (leaves with ``requires_grad``).
        tasks: ``(x_support, y_support, x_query, y_query)``, each ``(tasks, K, 1)``.
        inner_lr: the inner (adaptation) learning rate.
        steps: number of inner gradient steps.
        first_order: detach the inner gradients (FOMAML) instead of differentiating
            through them.

    Returns:
        A scalar; its gradient w.r.t. ``params`` is the (first- or second-order)
        meta-gradient.
    """
    xs, ys, xq, yq = tasks
    fast = adapt(params, xs, ys, inner_lr, steps, create_graph=not first_order)
    return task_losses(fast, xq, yq).mean()


def meta_train(params, rng, args, first_order: bool) -> None:
    """Adam on the MAML objective over fresh meta-batches of tasks."""
    opt = cr.optim.Adam(params, lr=args.outer_lr)
    for it in range(args.iterations):
        tasks = sample_tasks(rng, args.meta_batch, args.shots, args.shots)
        loss = maml_meta_loss(params, tasks, args.inner_lr, args.inner_steps, first_order)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (it + 1) % max(1, args.iterations // 4) == 0:
            print(f"  iteration {it + 1:5d}  meta-loss {loss.item():.4f}")


def pretrain(params, rng, args) -> None:
    """Plain regression on the mixture: every task's points pooled into one loss."""
    opt = cr.optim.Adam(params, lr=args.outer_lr)
    for it in range(args.iterations):
        xs, ys, _, _ = sample_tasks(rng, args.meta_batch, args.shots, 0)
        loss = task_losses(params, xs, ys).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (it + 1) % max(1, args.iterations // 4) == 0:
            print(f"  iteration {it + 1:5d}  loss {loss.item():.4f}")


def evaluate(params, tasks, inner_lr: float, steps: int) -> float:
    """Mean query MSE over the held-out tasks after ``steps`` steps on their supports."""
    xs, ys, xq, yq = tasks
    fast = adapt(params, xs, ys, inner_lr, steps, create_graph=False)
    with cr.no_grad():
        return float(task_losses(fast, xq, yq).mean().item())


def main(argv: list[str] | None = None) -> float:
    """Meta-train MAML and FOMAML, pretrain a baseline, compare them after adaptation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000, help="outer steps per method")
    parser.add_argument("--meta-batch", type=int, default=25, help="tasks per outer step")
    parser.add_argument("--shots", type=int, default=10, help="K: points per support set")
    parser.add_argument("--inner-lr", type=float, default=0.01)
    parser.add_argument("--inner-steps", type=int, default=1, help="inner steps in training")
    parser.add_argument("--outer-lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=40, help="width of both hidden layers")
    parser.add_argument("--eval-tasks", type=int, default=500)
    parser.add_argument("--eval-steps", type=int, nargs="+", default=[0, 1, 10],
                        help="inner steps to report at test time (the first > 0 is scored)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args(argv)
    if args.tiny:
        args.iterations, args.meta_batch, args.eval_tasks = 200, 10, 100

    sizes = (1, args.hidden, args.hidden, 1)
    init_rng = np.random.default_rng(args.seed)
    init = [p.detach().numpy() for p in init_params(sizes, init_rng)]
    test_tasks = sample_tasks(np.random.default_rng(args.seed + 1000), args.eval_tasks,
                              args.shots, 100)

    results = {}
    for name in ("MAML", "FOMAML", "pretrained"):
        # Same initial weights and the same stream of training tasks for every method.
        params = [cr.from_numpy(a.copy()).requires_grad_() for a in init]
        rng = np.random.default_rng(args.seed + 1)
        start = time.perf_counter()
        print(f"{name}:")
        if name == "pretrained":
            pretrain(params, rng, args)
        else:
            meta_train(params, rng, args, first_order=(name == "FOMAML"))
        print(f"  trained in {time.perf_counter() - start:.1f} s")
        results[name] = [evaluate(params, test_tasks, args.inner_lr, s)
                         for s in args.eval_steps]

    print(f"\nheld-out query MSE ({args.eval_tasks} tasks, K={args.shots}, "
          f"inner lr {args.inner_lr}) after n steps:")
    print("  " + f"{'':12s}" + "".join(f"{f'n={s}':>10s}" for s in args.eval_steps))
    for name, row in results.items():
        print("  " + f"{name:12s}" + "".join(f"{v:10.4f}" for v in row))

    col = next((i for i, s in enumerate(args.eval_steps) if s > 0), 0)
    steps = args.eval_steps[col]
    gain = 1.0 - results["MAML"][col] / results["pretrained"][col]
    print(f"MAML vs pretrained after {steps} step(s): MSE {results['MAML'][col]:.4f} vs "
          f"{results['pretrained'][col]:.4f}, relative improvement {gain:.4f}")
    return gain


if __name__ == "__main__":
    main()
