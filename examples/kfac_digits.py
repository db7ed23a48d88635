"""K-FAC against SGD on the 8x8 digits: epochs until the held-out accuracy reaches a target.

What it shows: ``cr.optim.KFAC`` takes the model (it hooks the ``Linear`` layers to
collect ``E[a a^T]`` and ``E[g g^T]``) and is otherwise stepped like SGD: ``zero_grad``,
forward, ``backward``, ``step``. Both optimizers use momentum 0.9 and try the same
learning rates; for each rate the script reports the first epoch whose test accuracy
reaches ``--target`` (``-`` if none does within ``--epochs``), then the best per optimizer.

Run it (needs scikit-learn, which ships the digits data)::

    python examples/kfac_digits.py                  # MLP 64-64-10, target 95%
    python examples/kfac_digits.py --target 0.97 --epochs 30
    python examples/kfac_digits.py --tiny           # a seconds-long smoke run
"""

from __future__ import annotations

import argparse

import chainrule as cr
import chainrule.datasets
import chainrule.nn.functional as F
from chainrule import nn


def split(x: cr.Tensor, y: cr.Tensor, test_fraction: float, seed: int):
    """Shuffle once and hold out the last ``test_fraction`` of the samples."""
    perm = cr.randperm(len(x), generator=cr.Generator().manual_seed(seed))
    n_test = int(len(x) * test_fraction)
    train, test = perm[n_test:], perm[:n_test]
    return (x[train], y[train]), (x[test], y[test])


def make_model(hidden: int, seed: int) -> nn.Module:
    """The same initial MLP for every run with the same seed."""
    cr.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def accuracy(model: nn.Module, x: cr.Tensor, y: cr.Tensor) -> float:
    """Fraction of ``x`` classified correctly (eval mode, no graph, no K-FAC statistics)."""
    model.eval()
    with cr.no_grad():
        acc = float((model(x).argmax(dim=1) == y).float().mean().item())
    model.train()
    return acc


def run(name: str, lr: float, args, data) -> tuple[int | None, float]:
    """Train one model; return (first epoch reaching the target or None, final accuracy)."""
    (x_train, y_train), (x_test, y_test) = data
    model = make_model(args.hidden, args.seed)
    if name == "kfac":
        opt = cr.optim.KFAC(model, lr=lr, momentum=0.9, damping=args.damping,
                            stat_decay=0.95, inv_update_freq=args.inv_update_freq)
    else:
        opt = cr.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    gen = cr.Generator().manual_seed(args.seed)
    n = len(x_train)
    reached = None
    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        perm = cr.randperm(n, generator=gen)
        for start in range(0, n, args.batch_size):
            idx = perm[start:start + args.batch_size]
            opt.zero_grad()
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
        acc = accuracy(model, x_test, y_test)
        if acc != acc:  # diverged (NaN)
            break
        if reached is None and acc >= args.target:
            reached = epoch
            if not args.full:
                break
    if name == "kfac":
        opt.remove_hooks()
    return reached, acc


def main(argv: list[str] | None = None) -> float:
    """Run the comparison; return the held-out accuracy of K-FAC's fastest run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--lrs", type=float, nargs="+",
                        default=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3])
    parser.add_argument("--damping", type=float, default=1e-2)
    parser.add_argument("--inv-update-freq", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full", action="store_true", help="train all epochs every run")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args(argv)
    if args.tiny:
        args.epochs, args.hidden, args.lrs = 2, 16, [0.03]

    x, y = cr.datasets.load_digits()
    data = split(x, y, 0.2, args.seed)
    best: dict = {}
    kfac_runs = []
    print(f"epochs until test accuracy >= {args.target:.0%} (momentum 0.9, batch "
          f"{args.batch_size}, MLP 64-{args.hidden}-10, at most {args.epochs} epochs)")
    print(f"{'optimizer':>9} {'lr':>7} {'epochs':>7} {'final acc':>10}")
    for name in ("sgd", "kfac"):
        for lr in args.lrs:
            reached, acc = run(name, lr, args, data)
            shown = "-" if reached is None else str(reached)
            print(f"{name:>9} {lr:>7g} {shown:>7} {acc:>10.4f}")
            if reached is not None and (best.get(name) is None or reached < best[name]):
                best[name] = reached
            if name == "kfac":
                kfac_runs.append((args.epochs + 1 if reached is None else reached, -acc, lr))
        best.setdefault(name, None)
    for name, epochs in best.items():
        print(f"best {name}: {'not reached' if epochs is None else f'{epochs} epochs'}")
    _, neg_acc, lr = min(kfac_runs)
    print(f"test accuracy of the fastest K-FAC run (lr {lr:g}): {-neg_acc:.4f}")
    return -neg_acc


if __name__ == "__main__":
    main()
