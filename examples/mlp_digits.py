"""A multilayer perceptron on the 8x8 digits, trained with a plain PyTorch-style loop.

What it shows: the five lines at the heart of every training loop, written out by hand
(forward, loss, ``zero_grad``, ``backward``, ``step``), a ``DataLoader`` over a
``TensorDataset``, ``train()``/``eval()`` modes and evaluation under ``no_grad``, and a
``state_dict`` round trip through ``cr.save``/``cr.load``.

Run it (needs scikit-learn, which ships the digits data)::

    python examples/mlp_digits.py               # ~98% held-out accuracy in a few seconds
    python examples/mlp_digits.py --epochs 40 --hidden 256
    python examples/mlp_digits.py --tiny        # a 1-second smoke run
"""

from __future__ import annotations

import argparse
import os
import tempfile

import chainrule as cr
import chainrule.datasets
import chainrule.utils.data
from chainrule import nn


def split(x: cr.Tensor, y: cr.Tensor, test_fraction: float, generator: cr.Generator):
    """Shuffle once and cut off the last ``test_fraction`` of the samples as a test set."""
    perm = cr.randperm(len(x), generator=generator)
    n_test = int(len(x) * test_fraction)
    train, test = perm[n_test:], perm[:n_test]
    return (x[train], y[train]), (x[test], y[test])


def accuracy(model: nn.Module, x: cr.Tensor, y: cr.Tensor) -> float:
    """Fraction of ``x`` that ``model`` classifies correctly (eval mode, no graph)."""
    model.eval()
    with cr.no_grad():
        pred = model(x).argmax(dim=1)
    model.train()
    return float((pred == y).float().mean().item())


def main(argv: list[str] | None = None) -> float:
    """Train the MLP and return its held-out accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=128, help="width of both hidden layers")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args(argv)
    if args.tiny:
        args.epochs, args.hidden = 2, 32

    cr.manual_seed(args.seed)
    x, y = cr.datasets.load_digits()                      # (1797, 64) float32, (1797,) int64
    (x_train, y_train), (x_test, y_test) = split(x, y, 0.2, cr.Generator().manual_seed(0))
    loader = cr.utils.data.DataLoader(cr.utils.data.TensorDataset(x_train, y_train),
                                      batch_size=args.batch_size, shuffle=True)

    model = nn.Sequential(
        nn.Linear(64, args.hidden), nn.ReLU(), nn.Dropout(args.dropout),
        nn.Linear(args.hidden, args.hidden), nn.ReLU(), nn.Dropout(args.dropout),
        nn.Linear(args.hidden, 10),
    )
    loss_fn = nn.CrossEntropyLoss()
    optimizer = cr.optim.Adam(model.parameters(), lr=args.lr)

    for epoch in range(args.epochs):
        total, n = 0.0, 0
        for xb, yb in loader:
            logits = model(xb)                 # forward
            loss = loss_fn(logits, yb)         # loss
            optimizer.zero_grad()              # clear last step's gradients
            loss.backward()                    # backward: fill p.grad for every parameter
            optimizer.step()                   # update the parameters
            total += loss.item() * len(xb)
            n += len(xb)
        if epoch % 5 == 4 or epoch == args.epochs - 1:
            print(f"epoch {epoch + 1:3d}  train loss {total / n:.4f}  "
                  f"test accuracy {accuracy(model, x_test, y_test):.4f}")

    # Weights round-trip through a safetensors file, as a checkpoint would.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mlp.safetensors")
        cr.save(model.state_dict(), path)
        model.load_state_dict(cr.load(path))
    acc = accuracy(model, x_test, y_test)
    print(f"held-out accuracy: {acc:.4f}")
    return acc


if __name__ == "__main__":
    main()
