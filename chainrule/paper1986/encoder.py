"""The 8-3-8 encoder: eight one-hot patterns squeezed through three logistic hidden units.

Each of the eight input patterns has a single unit on, and the target is the input itself;
with three hidden units the network has to invent a (near) binary code for the eight
cases. The PDP chapter reports that the hidden units usually settle on such a code and
that sometimes one of them uses an intermediate value (about 0.5) for some patterns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import chainrule as cr

from ._core import EnsembleMLP, Report, sweep_stats, train_full_batch, within


def run_encoder(seeds: Sequence[int] = range(20), sweeps: int = 10000, lr: float = 0.1,
                momentum: float = 0.9, init_range: float = 0.3, tol: float = 0.1,
                show: int = 2) -> Report:
    """Train an 8-3-8 network per seed; report sweeps to learn and the hidden codes.

    Args:
        seeds: one network per seed.
        sweeps: the most sweeps per seed.
        lr: eps.
        momentum: alpha.
        init_range: initial weights and biases uniform in ``[-init_range, init_range]``.
        tol: learned = every output within ``tol`` of its target.
        show: print the hidden codes of this many learned seeds.

    Returns:
        A :class:`Report`; ``metrics`` holds ``solved_at``, ``codes`` (the 8x3 hidden
        activations of each learned seed), ``binary_fraction`` (the share of hidden
        activations below 0.1 or above 0.9, over learned seeds) and ``distinct_codes``
        (per learned seed: how many different codes the hidden units give after
        rounding to 0/1).
    """
    seeds = list(seeds)
    eye = np.eye(8)
    x = cr.tensor(eye[None])
    net = EnsembleMLP([8, 3, 8], seeds, init_range)
    res = train_full_batch(net, lambda: net(x), x, seeds=seeds, sweeps=sweeps,
                           schedule=lambda t: (lr, momentum), criterion=within(tol, eye))
    codes = {}
    for s, snap in sorted(res.snapshots.items()):
        h = 1.0 / (1.0 + np.exp(-(eye @ snap["layers.0.weight"].T + snap["layers.0.bias"])))
        codes[seeds[s]] = h
    lines = [
        f"8-3-8 encoder, logistic units, {len(seeds)} seeds, eps={lr}, alpha={momentum}, "
        f"initial weights U(-{init_range}, {init_range})",
        f"learned = every output within {tol} of its target (budget {sweeps} sweeps)",
        f"learned: {res.solved.sum()}/{len(seeds)} seeds; sweeps: {sweep_stats(res.solved_at)}",
    ]
    if not res.solved.all():
        lines.append(f"not learned: final E {np.round(res.final_error[~res.solved], 2).tolist()}")
    binary, distinct = None, {}
    if codes:
        allh = np.stack(list(codes.values()))
        binary = float(((allh < 0.1) | (allh > 0.9)).mean())
        distinct = {k: len({tuple(r) for r in np.round(h).astype(int).tolist()})
                    for k, h in codes.items()}
        n8 = sum(v == 8 for v in distinct.values())
        lines += [
            f"hidden activations below 0.1 or above 0.9: {100 * binary:.1f}% "
            f"(of {allh.size} over the learned seeds)",
            f"seeds whose hidden codes, rounded to 0/1, are 8 distinct binary codes: "
            f"{n8}/{len(codes)}",
        ]
    for k in list(codes)[:show]:
        lines.append(f"hidden code of seed {k} at sweep {res.solved_at[seeds.index(k)]} "
                     f"(pattern: h1 h2 h3):")
        for i, row in enumerate(codes[k]):
            lines.append(f"  {i + 1}: " + " ".join(f"{v:.2f}" for v in row))
    metrics = {"seeds": seeds, "solved_at": res.solved_at.tolist(),
               "codes": {k: v.tolist() for k, v in codes.items()},
               "binary_fraction": binary, "distinct_codes": distinct}
    return Report("encoder", lines, metrics)
