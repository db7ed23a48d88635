"""A small convolutional network with residual blocks on the 8x8 digit images, trained
with ``chainrule.train.fit``.

What it shows: writing your own ``nn.Module`` (``ResidualBlock``: conv-bn-relu-conv-bn
plus a skip connection, with a 1x1 projection when the shape changes), composing modules
with ``nn.Sequential``, batch norm's train/eval behaviour, and the ``fit`` loop with
validation data, a learning-rate schedule and an accuracy metric.

Run it (needs scikit-learn, which ships the digits data)::

    python examples/cnn_residual.py              # ~99% validation accuracy
    python examples/cnn_residual.py --epochs 15 --width 32
    python examples/cnn_residual.py --tiny       # a seconds-long smoke run
"""

from __future__ import annotations

import argparse

import chainrule as cr
import chainrule.datasets
from chainrule import nn
from chainrule.train import fit


class ResidualBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + skip(x))``.

    The skip path is the identity when input and output shapes agree, otherwise a
    strided 1x1 convolution with batch norm that projects ``x`` to the output shape.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.skip = nn.Identity()

    def forward(self, x: cr.Tensor) -> cr.Tensor:
        """Residual branch plus skip, then ReLU."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.skip(x))


def make_model(width: int, blocks: int) -> nn.Module:
    """Stem conv, ``blocks`` residual blocks at 8x8, a max-pool, one wider block at 4x4,
    global average pooling and a linear classifier."""
    layers: list[nn.Module] = [
        nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
    ]
    layers += [ResidualBlock(width, width) for _ in range(blocks)]
    layers += [
        nn.MaxPool2d(2),                                   # 8x8 -> 4x4
        ResidualBlock(width, 2 * width),                   # projection on the skip path
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(2 * width, 10),
    ]
    return nn.Sequential(*layers)


def main(argv: list[str] | None = None) -> float:
    """Train the residual CNN and return its final validation accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--width", type=int, default=16, help="channels of the first stage")
    parser.add_argument("--blocks", type=int, default=1, help="residual blocks at 8x8")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args(argv)
    n_samples = None
    if args.tiny:
        args.epochs, args.width, args.batch_size, n_samples = 2, 8, 16, 600

    cr.manual_seed(args.seed)
    x, y = cr.datasets.load_digits(images=True)          # (1797, 1, 8, 8), (1797,)
    perm = cr.randperm(len(x), generator=cr.Generator().manual_seed(0))[:n_samples]
    x, y = x[perm], y[perm]
    n_val = len(x) // 5
    train, val = (x[n_val:], y[n_val:]), (x[:n_val], y[:n_val])

    model = make_model(args.width, args.blocks)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params} parameters")
    optimizer = cr.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = cr.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(args.epochs, 1))
    history = fit(model, nn.CrossEntropyLoss(), optimizer, train, val=val,
                  epochs=args.epochs, batch_size=args.batch_size, scheduler=scheduler,
                  metrics=["accuracy"], progress=args.progress,
                  generator=cr.Generator().manual_seed(args.seed))
    for logs in history.records:
        print(f"epoch {logs['epoch'] + 1:2d}  train loss {logs['train_loss']:.4f}  "
              f"val loss {logs['val_loss']:.4f}  val accuracy {logs['val_accuracy']:.4f}  "
              f"({logs['time']:.1f}s)")
    acc = history["val_accuracy"][-1]
    print(f"validation accuracy: {acc:.4f}")
    return acc


if __name__ == "__main__":
    main()
