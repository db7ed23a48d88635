"""What the four 1986 experiments share: logistic layers, the summed squared error, and
full-batch training with the paper's momentum rule, run for many seeds at once.

Many seeds in one graph
-----------------------
These networks are tiny (a few dozen weights), so a training step costs the Python
overhead of a dozen ops, not arithmetic. To run 100 XOR networks in the time of one, every
parameter carries a leading *seed* axis: ``weight`` has shape ``(S, out, in)`` and network
``s`` only ever reads slice ``s``. The total error is the sum of the ``S`` networks' errors,
so the gradient with respect to slice ``s`` is exactly network ``s``'s own gradient, and the
optimizer's update is elementwise: each slice follows the same trajectory it would follow
alone (``tests/test_paper1986.py`` checks this against one ``nn.Linear`` network).
Each seed's initial weights come from its own ``numpy`` generator, so seed 7 starts from
the same weights whether it runs alone or beside 99 others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

import chainrule as cr
from chainrule import nn

__all__ = ["EnsembleLinear", "EnsembleMLP", "Report", "TrainResult", "residual",
           "squared_error", "train_full_batch"]


class EnsembleLinear(nn.Module):
    """``S`` independent linear layers applied side by side: ``y[s] = x[s] W[s]^T + b[s]``.

    Args:
        in_features: inputs per unit.
        out_features: units.
        seeds: one integer per network; network ``s`` draws its initial weights and biases
            uniformly from ``[-init_range, init_range]`` with ``numpy.random.default_rng``
            seeded by ``(seeds[s], salt)``.
        init_range: half-width of the uniform initial weights (the paper's 0.3).
        salt: distinguishes the layers of one network, so they draw different weights.

    Shapes: input ``(S, N, in)`` or ``(1, N, in)`` (shared data), output ``(S, N, out)``;
    ``weight`` is ``(S, out, in)`` like a stack of ``nn.Linear`` weights, ``bias`` ``(S, out)``.

    >>> layer = EnsembleLinear(2, 3, seeds=[0, 1])
    >>> layer(cr.zeros(1, 4, 2, dtype=cr.float64)).shape
    (2, 4, 3)
    """

    def __init__(self, in_features: int, out_features: int, seeds: Sequence[int],
                 init_range: float = 0.3, salt: int = 0) -> None:
        super().__init__()
        if len(seeds) == 0:
            raise ValueError("EnsembleLinear: needs at least one seed, got an empty list")
        w = np.empty((len(seeds), out_features, in_features))
        b = np.empty((len(seeds), out_features))
        for i, seed in enumerate(seeds):
            rng = np.random.default_rng([int(seed), int(salt)])
            w[i] = rng.uniform(-init_range, init_range, (out_features, in_features))
            b[i] = rng.uniform(-init_range, init_range, out_features)
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(cr.tensor(w))
        self.bias = nn.Parameter(cr.tensor(b))

    def forward(self, x: cr.Tensor) -> cr.Tensor:
        """Apply every network's layer to its slice of ``x`` (or to a shared ``x``)."""
        return x @ self.weight.mT + self.bias.unsqueeze(1)


class EnsembleMLP(nn.Module):
    """A stack of logistic layers (every unit, output included, is logistic), per seed.

    >>> net = EnsembleMLP([2, 2, 1], seeds=[0, 1, 2])
    >>> net(cr.zeros(1, 4, 2, dtype=cr.float64)).shape
    (3, 4, 1)
    """

    def __init__(self, sizes: Sequence[int], seeds: Sequence[int],
                 init_range: float = 0.3) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
            EnsembleLinear(a, b, seeds, init_range, salt=i)
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))])

    def forward(self, x: cr.Tensor, keep_hidden: bool = False):
        """Outputs ``(S, N, out)``; with ``keep_hidden`` also the list of hidden states."""
        hidden = []
        for layer in self.layers:
            x = cr.sigmoid(layer(x))
            hidden.append(x)
        return (x, hidden[:-1]) if keep_hidden else x


def residual(y, d, mask=None, dead_zone: tuple[float, float] | None = None):
    """``y - d`` (tensors or arrays), zero where ``mask`` is 0.

    With ``dead_zone = (low, high)`` the targets ``d`` are 0/1 and an output counts as
    right, with no error, once an "on" unit is above ``high`` or an "off" unit below
    ``low``; short of that, the error is its distance to ``high`` (or ``low``). This is the
    family-tree paper's "the error was considered to be zero if output units that should
    be on had activities above 0.8 and output units that should be off had activities
    below 0.2".
    """
    if dead_zone is None:
        diff = y - d
    else:
        low, high = dead_zone
        if isinstance(y, cr.Tensor):
            diff = d * cr.clamp(y - high, max=0.0) + (1 - d) * cr.clamp(y - low, min=0.0)
        else:
            diff = d * np.minimum(y - high, 0.0) + (1 - d) * np.maximum(y - low, 0.0)
    return diff if mask is None else diff * mask


def squared_error(y: cr.Tensor, d: cr.Tensor, mask: cr.Tensor | None = None,
                  dead_zone: tuple[float, float] | None = None) -> cr.Tensor:
    """The paper's error ``E = 1/2 sum_cases sum_outputs (y - d)^2``, also summed over seeds.

    ``mask`` (``(S, N, 1)`` of 0/1) leaves out the cases a seed does not train on;
    ``dead_zone``: see :func:`residual`.
    """
    diff = residual(y, d, mask, dead_zone)
    return 0.5 * (diff * diff).sum()


@dataclass
class TrainResult:
    """Per-seed outcome of :func:`train_full_batch` (arrays indexed by seed position).

    ``solved_at[s]``: the number of sweeps (weight updates) after which seed ``s`` first
    met the criterion, or -1 if it never did; ``snapshots[s]``: its parameters at that
    moment (``{name: array}``); ``final_error[s]``: its E after the last sweep;
    ``error_curve``: E per seed, one row per sweep (before that sweep's update).
    """

    seeds: list[int]
    sweeps_run: int
    solved_at: np.ndarray
    final_error: np.ndarray
    snapshots: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    error_curve: np.ndarray | None = None

    @property
    def solved(self) -> np.ndarray:
        """Boolean mask of the seeds that met the criterion."""
        return self.solved_at >= 0


def _params_of(model: nn.Module, s: int) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy()[s].copy() for k, v in model.state_dict().items()}


def train_full_batch(model: nn.Module, forward: Callable[[], cr.Tensor], targets: cr.Tensor,
                     *, seeds: Sequence[int], sweeps: int,
                     schedule: Callable[[int], tuple[float, float]],
                     criterion: Callable[[np.ndarray], np.ndarray],
                     mask: cr.Tensor | None = None, decay: float = 0.0,
                     dead_zone: tuple[float, float] | None = None,
                     stop_when_solved: bool = True) -> TrainResult:
    """Full-batch gradient descent with momentum on ``E``, for all seeds at once.

    One sweep = one forward pass over every training case, one backward pass, one update
    ``Dw(t) = -eps dE/dw(t) + alpha Dw(t-1)``, then (if ``decay``) every weight shrinks by
    the fraction ``decay`` (the paper's "decrementing every weight by 0.2%").

    Args:
        model: the network; its parameters are what gets trained.
        forward: returns the outputs ``(S, N, out)`` for every case.
        targets: desired outputs, broadcastable to the outputs.
        seeds: the seed of each network (for the record).
        sweeps: the most sweeps to run.
        schedule: ``sweep index (0-based) -> (eps, alpha)``.
        criterion: ``outputs array (S, N, out) -> bool array (S,)``: solved or not.
        mask: which cases each seed trains on (``(S, N, 1)``), or all of them.
        decay: fraction of every weight removed after each update.
        dead_zone: ``(low, high)``: no error below ``low`` / above ``high`` (see
            :func:`residual`).
        stop_when_solved: stop as soon as every seed has met the criterion.

    Returns:
        A :class:`TrainResult`.
    """
    params = list(model.parameters())
    eps, alpha = schedule(0)
    # PyTorch's SGD keeps a velocity v <- mu v + g and steps p <- p - lr v. Since the step
    # is Dw = -lr v, this is Dw(t) = -lr g(t) + mu Dw(t-1): the paper's rule with
    # eps = lr and alpha = mu (and the first step, v = g, is the paper's Dw(1) = -eps g).
    opt = cr.optim.SGD(params, lr=eps, momentum=alpha)
    n = len(seeds)
    solved_at = np.full(n, -1)
    snapshots: dict[int, dict[str, np.ndarray]] = {}
    curve = []
    d_np = targets.numpy()
    m_np = None if mask is None else mask.numpy()
    t = 0
    for t in range(sweeps + 1):
        y = forward()
        y_np = y.detach().numpy()
        diff = residual(y_np, d_np, m_np, dead_zone)
        curve.append(0.5 * (diff * diff).reshape(n, -1).sum(axis=1))
        ok = criterion(y_np)
        for s in np.flatnonzero(ok & (solved_at < 0)):
            solved_at[s] = t
            snapshots[int(s)] = _params_of(model, int(s))
        if t == sweeps or (stop_when_solved and (solved_at >= 0).all()):
            break
        new_eps, new_alpha = schedule(t)
        if new_eps != eps:
            # The paper's rule carries Dw(t-1) over unchanged when eps changes; PyTorch's
            # carries v = -Dw/lr, which the new lr would rescale. Rescale v to match.
            for p in params:
                buf = opt.state[p].get("momentum_buffer")
                if buf is not None:
                    with cr.no_grad():
                        buf.mul_(eps / new_eps)
        for group in opt.param_groups:
            group["lr"], group["momentum"] = new_eps, new_alpha
        eps, alpha = new_eps, new_alpha
        opt.zero_grad()
        squared_error(y, targets, mask, dead_zone).backward()
        opt.step()
        if decay:
            with cr.no_grad():
                for p in params:
                    p.mul_(1.0 - decay)
    return TrainResult(seeds=list(seeds), sweeps_run=t, solved_at=solved_at,
                       final_error=curve[-1], snapshots=snapshots,
                       error_curve=np.stack(curve))


def within(tol: float, d: np.ndarray, mask: np.ndarray | None = None):
    """Criterion: every output of every (unmasked) case within ``tol`` of its target."""
    def criterion(y: np.ndarray) -> np.ndarray:
        err = np.abs(y - d)
        if mask is not None:
            err = err * mask
        return err.reshape(err.shape[0], -1).max(axis=1) < tol
    return criterion


@dataclass
class Report:
    """An experiment's printed report: text lines plus the numbers behind them."""

    name: str
    lines: list[str]
    metrics: dict

    def __str__(self) -> str:
        return "\n".join(self.lines)


def sweep_stats(solved_at: np.ndarray) -> str:
    """``median / mean / min / max`` of the sweeps of the seeds that solved, as text."""
    done = solved_at[solved_at >= 0]
    if done.size == 0:
        return "no seed solved"
    return (f"median {np.median(done):.0f}, mean {done.mean():.0f}, "
            f"min {done.min()}, max {done.max()} sweeps")


def fmt_row(values, width: int = 7, digits: int = 2) -> str:
    """Numbers right-aligned in fixed-width columns."""
    return " ".join(f"{v:{width}.{digits}f}" for v in values)
