"""Mirror symmetry: a 6-2-1 logistic network on all 64 binary vectors of length 6.

The output should be 1 when the vector is symmetric about its centre (8 of the 64) and 0
otherwise. The Nature paper trains with eps = 0.1, alpha = 0.9 and initial weights uniform
in [-0.3, 0.3], one update per sweep through the 64 cases, and describes the solution it
found: each hidden unit's weights are symmetric about the middle of the input vector with
opposite signs on the two sides, in the ratio 1:2:4 from the centre outwards (or the
reverse), and the two hidden units have the same pattern with opposite signs; any
asymmetric vector then turns on one of the hidden units, which turns the output off.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import chainrule as cr

from ._core import EnsembleMLP, Report, fmt_row, sweep_stats, train_full_batch, within


def symmetry_data() -> tuple[np.ndarray, np.ndarray]:
    """All 64 binary vectors ``(64, 6)`` and their targets ``(64, 1)`` (1 = symmetric)."""
    x = ((np.arange(64)[:, None] >> np.arange(5, -1, -1)) & 1).astype(np.float64)
    d = (x == x[:, ::-1]).all(axis=1, keepdims=True).astype(np.float64)
    return x, d


def describe_weights(hidden_w: np.ndarray) -> dict:
    """How close a converged net's input->hidden weights ``(2, 6)`` are to the paper's picture.

    Returns ``antisymmetry`` (the largest ``|w_i + w_{5-i}|`` over ``max |w|``, per hidden
    unit; 0 for a perfect mirror with opposite signs), ``ratio`` (the three mirror pairs'
    mean ``|w|``, sorted and divided by the smallest: the paper's 1:2:4 is [1, 2, 4]),
    ``order`` (which pair, numbered from the edge 0..2, carries the largest, middle and
    smallest weight) and ``opposite`` (the correlation of the two hidden units' weight
    vectors; -1 for opposite patterns).
    """
    w = np.asarray(hidden_w)
    scale = np.abs(w).max(axis=1)
    anti = np.abs(w + w[:, ::-1]).max(axis=1) / scale
    pair = ((np.abs(w[:, :3]) + np.abs(w[:, 3:][:, ::-1])) / 2).mean(axis=0)  # edge..centre
    ratio = np.sort(pair) / pair.min()
    opposite = float(np.corrcoef(w[0], w[1])[0, 1])
    return {"antisymmetry": anti.tolist(), "ratio": ratio.tolist(),
            "order": np.argsort(-pair).tolist(), "opposite": opposite}


def run_symmetry(seeds: Sequence[int] = range(20), sweeps: int = 10000, lr: float = 0.1,
                 momentum: float = 0.9, init_range: float = 0.3, tol: float = 0.1,
                 show: int = 3) -> Report:
    """Train a 6-2-1 network per seed on the 64 vectors; report sweeps and learned weights.

    Args:
        seeds: one network per seed.
        sweeps: the most sweeps per seed.
        lr: eps.
        momentum: alpha.
        init_range: initial weights and biases uniform in ``[-init_range, init_range]``.
        tol: converged = every output within ``tol`` of its target; also reported: the
            sweeps until every output is on the right side of 0.5.
        show: print the full weights of this many converged seeds.

    Returns:
        A :class:`Report`; ``metrics`` holds ``solved_at``, ``correct_at`` (sweeps to all
        64 right side of 0.5), ``weights`` (per converged seed, at convergence) and
        ``structure`` (:func:`describe_weights` of each).
    """
    seeds = list(seeds)
    x_np, d_np = symmetry_data()
    x = cr.tensor(x_np[None])
    d = cr.tensor(d_np[None])
    net = EnsembleMLP([6, 2, 1], seeds, init_range)
    correct_at = np.full(len(seeds), -1)

    def criterion(y: np.ndarray) -> np.ndarray:
        right = (np.abs(y - d_np) < 0.5).reshape(len(seeds), -1).all(axis=1)
        correct_at[right & (correct_at < 0)] = crit_sweep[0]
        crit_sweep[0] += 1
        return within(tol, d_np)(y)

    crit_sweep = [0]
    res = train_full_batch(net, lambda: net(x), d, seeds=seeds, sweeps=sweeps,
                           schedule=lambda t: (lr, momentum), criterion=criterion)
    lines = [
        f"Mirror symmetry, 6-2-1 logistic network on all 64 vectors, {len(seeds)} seeds, "
        f"eps={lr}, alpha={momentum}, initial weights U(-{init_range}, {init_range})",
        f"converged = every output within {tol} of its target (budget {sweeps} sweeps)",
        f"converged: {res.solved.sum()}/{len(seeds)} seeds; sweeps: "
        f"{sweep_stats(res.solved_at)}",
        f"all 64 on the right side of 0.5: {sweep_stats(correct_at)}",
        f"per seed (sweeps to converge, -1 = not in budget): "
        f"{dict(zip(seeds, res.solved_at.tolist()))}",
    ]
    if not res.solved.all():
        lines.append(f"not converged: final E {np.round(res.final_error[~res.solved], 3).tolist()}"
                     f", of which all 64 on the right side of 0.5: "
                     f"{int((correct_at[~res.solved] >= 0).sum())}")
    weights, structure = {}, {}
    for s in sorted(res.snapshots):
        snap = res.snapshots[s]
        weights[seeds[s]] = {k: v.tolist() for k, v in snap.items()}
        structure[seeds[s]] = describe_weights(snap["layers.0.weight"])
    if structure:
        anti = np.array([max(v["antisymmetry"]) for v in structure.values()])
        opp = np.array([v["opposite"] for v in structure.values()])
        ratios = np.array([v["ratio"] for v in structure.values()])
        lines += [
            "structure of the converged nets (input->hidden weights):",
            f"  mirror with opposite signs (max |w_i + w_(5-i)| / max |w| < 0.1): "
            f"{(anti < 0.1).sum()}/{len(anti)}; median of that measure {np.median(anti):.3f}",
            f"  |w| of the three mirror pairs, sorted, relative to the smallest (median "
            f"over seeds): {fmt_row(np.median(ratios, axis=0), 5, 2)}",
            f"  pair with the largest |w| (0 = outermost, 2 = centre), per seed: "
            f"{[v['order'][0] for v in structure.values()]}",
            f"  correlation of the two hidden units' weights: median {np.median(opp):+.3f}",
        ]
    for s in sorted(res.snapshots)[:show]:
        snap = res.snapshots[s]
        lines.append(f"weights of seed {seeds[s]} at convergence (sweep {res.solved_at[s]}):")
        for j in range(2):
            lines.append(f"  hidden {j}: inputs 1..6 [{fmt_row(snap['layers.0.weight'][j])} ]"
                         f"  bias {snap['layers.0.bias'][j]:7.2f}")
        lines.append(f"  output: from hidden 0, 1 [{fmt_row(snap['layers.1.weight'][0])} ]"
                     f"  bias {snap['layers.1.bias'][0]:7.2f}")
    metrics = {"seeds": seeds, "solved_at": res.solved_at.tolist(),
               "correct_at": correct_at.tolist(), "weights": weights, "structure": structure}
    return Report("symmetry", lines, metrics)
