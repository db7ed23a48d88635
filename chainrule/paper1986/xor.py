"""XOR with two hidden units (a 2-2-1 logistic network), as in the PDP chapter.

Four cases, targets 0/1, error summed over the four cases, full-batch sweeps with
eps = 0.5 and alpha = 0.9. The chapter notes that this network sometimes gets stuck in a
local minimum; here each seed is trained until every output is within ``tol`` of its target
(solved) or ``sweeps`` run out (stuck).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import chainrule as cr

from ._core import EnsembleMLP, Report, sweep_stats, train_full_batch, within

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
TARGETS = np.array([[0], [1], [1], [0]], dtype=np.float64)


def run_xor(seeds: Sequence[int] = range(100), sweeps: int = 5000, lr: float = 0.5,
            momentum: float = 0.9, init_range: float = 0.3, tol: float = 0.1) -> Report:
    """Train one 2-2-1 network per seed and report sweeps to solve and how many got stuck.

    Args:
        seeds: one network per seed.
        sweeps: the budget; a seed not solved within it counts as stuck.
        lr: eps, the learning rate.
        momentum: alpha.
        init_range: initial weights and biases are uniform in ``[-init_range, init_range]``.
        tol: solved = every output within ``tol`` of its target.

    Returns:
        A :class:`Report`; ``metrics`` holds ``solved_at`` (sweeps per seed, -1 = stuck),
        ``stuck_fraction``, ``median_sweeps`` and ``mean_sweeps``.

    >>> rep = run_xor(seeds=[0], sweeps=3000)
    >>> rep.metrics["stuck_fraction"]
    0.0
    """
    seeds = list(seeds)
    x = cr.tensor(INPUTS[None])
    d = cr.tensor(TARGETS[None])
    net = EnsembleMLP([2, 2, 1], seeds, init_range)
    res = train_full_batch(net, lambda: net(x), d, seeds=seeds, sweeps=sweeps,
                           schedule=lambda t: (lr, momentum), criterion=within(tol, TARGETS))
    done = res.solved_at[res.solved]
    stuck = float(1.0 - res.solved.mean())
    lines = [
        f"XOR, 2-2-1 logistic network, {len(seeds)} seeds, eps={lr}, alpha={momentum}, "
        f"initial weights U(-{init_range}, {init_range})",
        f"solved = every output within {tol} of its target; stuck = not solved in "
        f"{sweeps} sweeps",
        f"solved: {res.solved.sum()}/{len(seeds)} seeds; sweeps to solve: "
        f"{sweep_stats(res.solved_at)}",
        f"stuck: {100 * stuck:.1f}% of seeds"
        + ("" if stuck == 0 else f" (seeds {[s for s, a in zip(seeds, res.solved_at) if a < 0]}"
           f"; their final E: {np.round(res.final_error[~res.solved], 3).tolist()})"),
    ]
    metrics = {"seeds": seeds, "solved_at": res.solved_at.tolist(), "stuck_fraction": stuck,
               "median_sweeps": float(np.median(done)) if done.size else None,
               "mean_sweeps": float(done.mean()) if done.size else None}
    return Report("xor", lines, metrics)
