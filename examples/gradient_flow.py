"""Gradient flow through six 50-layer architectures on the 8x8 digits, side by side.

Six MLPs of the same depth (50 hidden blocks between an input layer and a classifier)
and width differ only in how a block passes the signal on:

- ``sigmoid``:  ``h = sigmoid(W h + b)``, Glorot (Xavier) init;
- ``relu``:     ``h = relu(W h + b)``, He (Kaiming) init;
- ``residual``: ``h = h + W relu(h) + b``, He init scaled by ``1/sqrt(depth)`` so the
  sum of 50 branches keeps its variance;
- ``highway``:  ``h = h + T(h) * (relu(W h + b) - h)`` with a sigmoid gate ``T`` whose
  bias starts at ``-log(depth - 1)``, so each block starts by transforming only
  ``1/depth`` of ``h`` and the carry path keeps ``(1 - 1/depth)**depth ~ 1/e`` of it;
- ``densenet``: every block sees the concatenation of all earlier outputs and adds
  ``--growth`` features; the classifier reads them all;
- ``selu``:     ``h = selu(W h + b)``, LeCun init (self-normalising).

What it shows: ``chainrule.diagnostics.GradientMonitor`` attached to ``chainrule.train.fit``
records every layer's gradient norm at every step. The first recorded step is the
gradient at initialisation; the script prints, per architecture, the ratio of the input
layer's gradient norm to the classifier's at init, what the monitor flagged (vanishing or
exploding gradients) during training, and the held-out accuracy after ``--epochs``
epochs. One figure (``--plot``, six panels, same log scale) draws the gradient norm of
every block against its depth, at init and at the end of training.

Run it (needs scikit-learn for the digits data and matplotlib for the figure:
``pip install 'chainrule[data,plot]'``)::

    python examples/gradient_flow.py                     # depth 50, width 32, 4 epochs
    python examples/gradient_flow.py --depth 100 --epochs 8 --plot flow.png
    python examples/gradient_flow.py --tiny              # a seconds-long smoke run
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import chainrule as cr
import chainrule.datasets
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.diagnostics import GradientMonitor

ARCHITECTURES = ("sigmoid", "relu", "residual", "highway", "densenet", "selu")
FLOOR = 1e-14  # lowest gradient norm the figure shows


class PlainBlock(nn.Module):
    """``act(W h + b)`` with the activation given as a module."""

    def __init__(self, width: int, act: nn.Module) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.act = act

    def forward(self, h: cr.Tensor) -> cr.Tensor:
        return self.act(self.linear(h))


class ResidualBlock(nn.Module):
    """Pre-activation residual block ``h + W relu(h) + b``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)

    def forward(self, h: cr.Tensor) -> cr.Tensor:
        return h + self.linear(F.relu(h))


class HighwayBlock(nn.Module):
    """``h + T(h) * (relu(W h + b) - h)``: a learned gate between transform and carry."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.transform = nn.Linear(width, width)
        self.gate = nn.Linear(width, width)

    def forward(self, h: cr.Tensor) -> cr.Tensor:
        t = cr.sigmoid(self.gate(h))
        return h + t * (F.relu(self.transform(h)) - h)


class DenseLayer(nn.Module):
    """``relu(W [h_0, ..., h_k] + b)``: new features from all earlier ones."""

    def __init__(self, in_features: int, growth: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, growth)

    def forward(self, h: cr.Tensor) -> cr.Tensor:
        return F.relu(self.linear(h))


class DeepNet(nn.Module):
    """``stem`` (64 -> width), ``depth`` blocks, ``head`` (-> 10 classes)."""

    def __init__(self, arch: str, depth: int, width: int, growth: int) -> None:
        super().__init__()
        self.arch = arch
        self.stem = nn.Linear(64, width)
        if arch == "sigmoid":
            blocks = [PlainBlock(width, nn.Sigmoid()) for _ in range(depth)]
        elif arch == "relu":
            blocks = [PlainBlock(width, nn.ReLU()) for _ in range(depth)]
        elif arch == "selu":
            blocks = [PlainBlock(width, nn.SELU()) for _ in range(depth)]
        elif arch == "residual":
            blocks = [ResidualBlock(width) for _ in range(depth)]
        elif arch == "highway":
            blocks = [HighwayBlock(width) for _ in range(depth)]
        elif arch == "densenet":
            blocks = [DenseLayer(width + i * growth, growth) for i in range(depth)]
        else:
            raise ValueError(f"DeepNet: unknown architecture {arch!r}; expected one of "
                             f"{', '.join(ARCHITECTURES)}")
        self.blocks = nn.ModuleList(blocks)
        out = width + depth * growth if arch == "densenet" else width
        self.head = nn.Linear(out, 10)
        self.initialise(depth)

    def initialise(self, depth: int) -> None:
        """The init each architecture is designed for; zero biases everywhere."""
        for name, m in self.named_modules():
            if not isinstance(m, nn.Linear):
                continue
            if self.arch == "sigmoid":
                nn.init.xavier_uniform_(m.weight)
            elif self.arch == "selu":
                nn.init.lecun_normal_(m.weight)
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
            if self.arch == "residual" and name.startswith("blocks."):
                with cr.no_grad():
                    m.weight.mul_(1.0 / math.sqrt(depth))
            if name.endswith(".gate"):
                nn.init.constant_(m.bias, -math.log(max(depth - 1, 1)))
        nn.init.xavier_uniform_(self.head.weight)

    def forward(self, x: cr.Tensor) -> cr.Tensor:
        h = self.stem(x)
        if self.arch == "densenet":
            feats = [h]
            for block in self.blocks:
                feats.append(block(cr.cat(feats, dim=1)))
            h = cr.cat(feats, dim=1)
        else:
            for block in self.blocks:
                h = block(h)
        return self.head(h)


def depth_of(param_name: str, depth: int) -> int:
    """Position of a parameter along the network: 0 stem, 1..depth blocks, depth+1 head."""
    if param_name.startswith("stem."):
        return 0
    if param_name.startswith("blocks."):
        return int(param_name.split(".")[1]) + 1
    return depth + 1


def norms_by_depth(record: dict, depth: int) -> np.ndarray:
    """Gradient norm per position (stem, blocks, head) from one monitor record."""
    sq = np.zeros(depth + 2)
    for name, stats in record["params"].items():
        g = stats["grad_norm"]
        if math.isfinite(g):
            sq[depth_of(name, depth)] += g * g
    return np.sqrt(sq)


def feature_similarity(model: DeepNet, x: cr.Tensor) -> float:
    """Mean cosine similarity between different samples' features entering the classifier.

    Near 1 means the blocks have mapped every input to almost the same direction, so
    the classifier has little to tell the classes apart by, whatever the gradients do.
    """
    seen = []
    handle = model.head.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with cr.no_grad():
        model(x)
    handle.remove()
    f = seen[0].numpy().astype(np.float64)
    f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-30)
    cos = f @ f.T
    n = len(f)
    return float((cos.sum() - np.trace(cos)) / (n * (n - 1)))


def run(arch: str, args, data) -> dict:
    """Train one architecture under a GradientMonitor; return its numbers for the table."""
    (x_train, y_train), (x_test, y_test) = data
    cr.manual_seed(args.seed)
    model = DeepNet(arch, args.depth, args.width, args.growth)
    similarity = feature_similarity(model, x_train[:256])
    if args.optimizer == "adam":
        optimizer = cr.optim.Adam(model.parameters(), lr=args.lr)
    else:
        optimizer = cr.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    # warn=False: the detections are read from monitor.issues and tabulated below.
    monitor = GradientMonitor(model, warn=False)
    cr.train.fit(model, nn.CrossEntropyLoss(), optimizer, (x_train, y_train),
                 epochs=args.epochs, batch_size=args.batch_size, monitor=monitor,
                 progress=False, generator=cr.Generator().manual_seed(args.seed))
    monitor.remove()
    init = monitor.records[0]
    first, last = monitor.layers[0], monitor.layers[-1]
    ratio = init["layers"][first]["grad_norm"] / init["layers"][last]["grad_norm"]
    tail = monitor.records[-args.tail_steps:]
    model.eval()
    with cr.no_grad():
        acc = float((model(x_test).argmax(dim=1) == y_test).float().mean().item())
    return {
        "arch": arch,
        "ratio": ratio,
        "similarity": similarity,
        "flags": sorted({i["kind"] for i in monitor.issues}),
        "acc": acc,
        "init": norms_by_depth(init, args.depth),
        "trained": np.mean([norms_by_depth(r, args.depth) for r in tail], axis=0),
        "steps": len(monitor.records),
    }


def epochs(n: int) -> str:
    """``'1 epoch'``, ``'4 epochs'``."""
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def plot(results: list[dict], path: str, args) -> None:
    """One panel per architecture: gradient norm against depth, at init and after training."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        print("(no figure: matplotlib is not installed; pip install 'chainrule[plot]')")
        return
    values = np.concatenate([np.concatenate([r["init"], r["trained"]]) for r in results])
    values = values[np.isfinite(values) & (values > 0)]
    # A floor keeps five panels readable when one (sigmoid) falls by 30 decades.
    lo = max(10 ** math.floor(math.log10(values.min())), FLOOR) if values.size else FLOOR
    hi = 10 ** math.ceil(math.log10(values.max())) if values.size else 1.0
    cols = min(3, len(results))
    rows = -(-len(results) // cols)
    fig = Figure(figsize=(4.4 * cols, 1.0 + 3.1 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for ax in axes.flat[len(results):]:
        ax.set_visible(False)
    pos = np.arange(args.depth + 2)
    for ax, r in zip(axes.flat, results):
        ax.plot(pos, np.where(r["init"] > 0, r["init"], np.nan), color="#08519c", lw=1.8,
                marker="o", ms=2.5, label="at initialisation")
        ax.plot(pos, np.where(r["trained"] > 0, r["trained"], np.nan), color="#e6550d",
                lw=1.6, ls="--", label=f"end of training (last {args.tail_steps} steps)")
        ax.set_yscale("log")
        ax.set_ylim(lo, hi)
        ax.grid(alpha=0.35, which="major")
        verdict = ("trains" if r["acc"] >= 0.5 else "does not train")
        flags = ", ".join(r["flags"]) if r["flags"] else "no alarm"
        smallest = np.nanmin(np.where(r["init"] > 0, r["init"], np.nan))
        if smallest < lo:
            ax.text(0.03, 0.04, f"off the chart: falls to {smallest:.1e}\nat the input layer",
                    transform=ax.transAxes, fontsize=9, color="#a50f15")
        ax.set_title(f"{r['arch']}: {verdict} ({100 * r['acc']:.0f}% test)\n"
                     f"monitor: {flags}; first/last at init {r['ratio']:.1e}", fontsize=10)
    for ax in axes[-1]:
        ax.set_xlabel(f"depth (0: input layer, 1-{args.depth}: blocks, "
                      f"{args.depth + 1}: classifier)")
    for ax in axes[:, 0]:
        ax.set_ylabel("gradient norm (log scale)")
    axes[0, 0].legend(loc="upper left", fontsize=8)
    opt = "Adam" if args.optimizer == "adam" else "SGD with momentum 0.9"
    fig.suptitle(f"Gradient norm per block vs depth\n{args.depth} blocks of width "
                 f"{args.width} on digits; {opt}, lr {args.lr}, {epochs(args.epochs)}")
    fig.savefig(path, format="png")
    print(f"figure written to {path}")


def main(argv: list[str] | None = None) -> float:
    """Train the six architectures, print the table, draw the figure; return the best accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=50, help="hidden blocks")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--growth", type=int, default=8, help="features per DenseNet layer")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                        help="SGD with momentum 0.9, or Adam")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--tail-steps", type=int, default=10,
                        help="steps averaged for the 'end of training' curve")
    parser.add_argument("--arch", nargs="+", choices=ARCHITECTURES, default=list(ARCHITECTURES))
    parser.add_argument("--plot", default=None,
                        help="PNG path of the figure (default gradient_flow.png, none with "
                             "--tiny; '' for none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args(argv)
    if args.tiny:
        args.depth, args.width, args.growth, args.epochs = 6, 16, 4, 1
    elif args.plot is None:
        args.plot = "gradient_flow.png"

    x, y = cr.datasets.load_digits()
    perm = cr.randperm(len(x), generator=cr.Generator().manual_seed(0))
    n_test = len(x) // 5
    x_train, y_train = x[perm[n_test:]], y[perm[n_test:]]
    x_test, y_test = x[perm[:n_test]], y[perm[:n_test]]
    mean, std = x_train.mean(dim=0), x_train.std(dim=0).clamp(min=0.1)
    data = ((x_train - mean) / std, y_train), ((x_test - mean) / std, y_test)

    results = []
    opt = "Adam" if args.optimizer == "adam" else "SGD (momentum 0.9)"
    print(f"{args.depth} blocks of width {args.width}, {epochs(args.epochs)} of {opt} at lr "
          f"{args.lr}; held-out accuracy on {n_test} digits")
    print(f"{'architecture':<14}{'first/last grad norm':>22}{'feature cos':>13}"
          f"{'monitor flagged':>20}{'accuracy':>10}")
    print(f"{'':<14}{'at init':>22}{'at init':>13}{'during training':>20}")
    for arch in args.arch:
        r = run(arch, args, data)
        results.append(r)
        flags = ", ".join(r["flags"]) if r["flags"] else "-"
        print(f"{arch:<14}{r['ratio']:>22.2e}{r['similarity']:>13.3f}{flags:>20}"
              f"{r['acc']:>10.4f}")
    if args.plot:
        plot(results, args.plot, args)
    best = max(results, key=lambda r: r["acc"])
    print(f"best held-out accuracy: {best['arch']} {best['acc']:.4f}")
    return best["acc"]


if __name__ == "__main__":
    main()
