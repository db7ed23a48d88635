"""The ``chainrule`` command: ``demo``, ``explain``, ``gradcheck`` and ``bench``.

Every subcommand has ``--help``. Errors print one clear line and exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit status 1."""


def _writable_folder(path: str) -> str:
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise CLIError(f"can't write to the output folder {path!r}: {e.strerror or e}") from None
    return path


# ---------------------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    import numpy as np

    import chainrule as cr
    from chainrule import nn
    from chainrule.diagnostics import GradientMonitor, check_gradients
    from chainrule.diagnostics import report as rep
    from chainrule.models import digits_cnn, digits_mlp
    from chainrule.train import evaluate, fit

    out = _writable_folder(args.out)
    cr.manual_seed(args.seed)
    images = args.model == "cnn"
    x, y = cr.datasets.load_digits(images=images)
    perm = np.random.default_rng(args.seed).permutation(len(y))
    n_test = len(y) // 5
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    xtr, ytr = x[train_idx], y[train_idx]
    xte, yte = x[test_idx], y[test_idx]
    model = digits_cnn() if images else digits_mlp()
    loss_fn = nn.CrossEntropyLoss()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"chainrule demo: {args.model} with {n_params:,} parameters on the 8x8 digits "
          f"({len(ytr)} train / {len(yte)} held out), seed {args.seed}")

    print("\n1. Gradient check of every parameter (backprop vs float64 central "
          "differences; the model is left untouched):")
    check = check_gradients(model, loss_fn, xtr[:4], target=ytr[:4], check_inputs=False)
    print(check)
    if not check.passed:
        raise CLIError("the gradient check failed; not training")

    print("\n2. Training with the gradient monitor attached:")
    monitor = GradientMonitor(model)
    opt = cr.optim.Adam(model.parameters(), lr=args.lr)
    sched = cr.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(args.epochs, 1))
    gen = cr.Generator().manual_seed(args.seed)
    hist = fit(model, loss_fn, opt, (xtr, ytr), val=(xte, yte), epochs=args.epochs,
               batch_size=32, scheduler=sched, metrics=["accuracy"], monitor=monitor,
               progress=not args.quiet, generator=gen)
    res = evaluate(model, loss_fn, (xte, yte), ["accuracy"])
    with cr.no_grad():
        model.eval()
        pred = model(xte).numpy().argmax(-1)
    cm = rep.confusion_matrix(pred, yte, 10)

    print("\n3. Writing the report:")
    rep.plot_history(hist, os.path.join(out, "curves.png"))
    monitor.plot_flow(os.path.join(out, "gradient_flow.png"))
    monitor.plot_norms(os.path.join(out, "gradient_norms.png"))
    rep.plot_confusion(cm, os.path.join(out, "confusion.png"),
                       title="Confusion matrix (held-out digits)")
    cr.save(model.state_dict(), os.path.join(out, "model.safetensors"))
    metrics = {
        "model": args.model, "parameters": n_params, "epochs": len(hist),
        "seed": args.seed, "held_out_accuracy": res["accuracy"],
        "held_out_loss": res["loss"], "train_loss": hist["train_loss"][-1],
        "gradient_check_passed": bool(check.passed),
        "history": [{k: float(v) for k, v in r.items()} for r in hist.records],
    }
    tmp = os.path.join(out, "metrics.json.part")
    with open(tmp, "w") as f:
        json.dump(metrics, f, indent=1)
    os.replace(tmp, os.path.join(out, "metrics.json"))
    summary = {k: v for k, v in metrics.items() if k != "history"}
    rep.write_index(out, f"chainrule demo: {args.model} on digits", summary, [
        ("curves.png", "Loss and accuracy per epoch"),
        ("gradient_flow.png", "Gradient flow: mean and max |grad| per layer"),
        ("gradient_norms.png", "Gradient norms per layer over training steps"),
        ("confusion.png", "Confusion matrix on the held-out digits"),
    ], notes=[f"Gradient check before training: {'passed' if check.passed else 'FAILED'}."])
    for name in ("curves.png", "gradient_flow.png", "gradient_norms.png", "confusion.png",
                 "metrics.json", "model.safetensors", "index.html"):
        print(f"   {os.path.join(out, name)}")
    print(f"\nHeld-out accuracy: {100 * res['accuracy']:.2f}%")
    print(f"Report: {os.path.abspath(os.path.join(out, 'index.html'))}")
    return 0


# ---------------------------------------------------------------------------- explain
def cmd_explain(args) -> int:
    from chainrule.diagnostics import explain_two_layer

    print(explain_two_layer(seed=args.seed).text(width=args.width))
    return 0


# ---------------------------------------------------------------------------- gradcheck
def cmd_gradcheck(args) -> int:
    import chainrule as cr
    from chainrule import models, nn
    from chainrule.diagnostics import check_gradients

    cr.manual_seed(args.seed)
    cases = {
        "mlp": (models.digits_mlp(16), cr.randn(4, 64), cr.randint(0, 10, (4,))),
        "cnn": (models.digits_cnn(4), cr.randn(2, 1, 8, 8), cr.randint(0, 10, (2,))),
        "lstm": (models.SequenceClassifier(3, 4), cr.randn(2, 5, 3), cr.randint(0, 2, (2,))),
        "attention": (models.TinyAttention(4, 2), cr.randn(2, 3, 4), cr.randint(0, 2, (2,))),
    }
    names = args.models or list(cases)
    failed = []
    for name in names:
        if name not in cases:
            raise CLIError(f"unknown model {name!r}; choose from {', '.join(cases)}")
        model, x, y = cases[name]
        t0 = time.perf_counter()
        rep = check_gradients(model, nn.CrossEntropyLoss(), x, target=y)
        print(f"== {name} ({time.perf_counter() - t0:.1f} s)")
        print(rep)
        if not rep.passed:
            failed.append(name)
    if failed:
        print(f"gradient check FAILED for: {', '.join(failed)}")
        return 1
    print(f"all {len(names)} models passed")
    return 0


# ---------------------------------------------------------------------------- bench
def cmd_bench(args) -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(root, "benchmarks")):
        raise CLIError("the benchmarks folder ships with the source tree; run chainrule bench "
                       "from a checkout (pip install -e .)")
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks import run as bench_run

    argv = list(args.names)
    if args.json:
        argv += ["--json", args.json]
    if args.smoke:
        argv.append("--smoke")
    if args.list:
        argv.append("--list")
    return int(bench_run.main(argv) or 0)


# ---------------------------------------------------------------------------- paper1986
def cmd_paper1986(args) -> int:
    from chainrule.paper1986 import EXPERIMENTS, run

    out = _writable_folder(args.out) if args.out else None
    for name in EXPERIMENTS if args.experiment == "all" else [args.experiment]:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        print(run(name, tiny=args.tiny, seeds=args.seeds, first_seed=args.first_seed,
                  sweeps=args.sweeps, out=out, lr=args.lr, init_range=args.init,
                  **({"decay": args.decay} if name == "family" else {})))
        print(f"({time.perf_counter() - t0:.1f} s)\n", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``chainrule`` command."""
    p = argparse.ArgumentParser(prog="chainrule", description="Backpropagation you can see: "
                                "train, explain and check gradients.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    d = sub.add_parser("demo", help="gradcheck, train and report a small model on digits",
                       description="Gradient-check a small model, train it on the 8x8 "
                       "digits with the gradient monitor attached, and write a report.")
    d.add_argument("--model", choices=["cnn", "mlp"], default="cnn", help="model (cnn)")
    d.add_argument("--epochs", type=int, default=15, help="training epochs (15)")
    d.add_argument("--seed", type=int, default=0, help="random seed (0)")
    d.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (3e-3)")
    d.add_argument("--out", default="runs/demo", help="report folder (runs/demo)")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=cmd_demo)
    e = sub.add_parser("explain", help="step-by-step backward pass of a two-layer network",
                       description="Print the forward values and each backward step of "
                       "a two-layer sigmoid network, checked by finite differences.")
    e.add_argument("--seed", type=int, default=0, help="random seed for the numbers (0)")
    e.add_argument("--width", type=int, default=80, help="text width (80)")
    e.set_defaults(func=cmd_explain)
    g = sub.add_parser("gradcheck", help="check the built-in models' gradients",
                       description="Run check_gradients on the built-in models.")
    g.add_argument("models", nargs="*", help="mlp, cnn, lstm, attention (default: all)")
    g.add_argument("--seed", type=int, default=0, help="random seed (0)")
    g.set_defaults(func=cmd_gradcheck)
    b = sub.add_parser("bench", help="run the benchmarks against installed peers",
                       description="Run the benchmark suite (see BENCHMARKS.md).")
    b.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    b.add_argument("--json", metavar="PATH", help="also write results as JSON")
    b.add_argument("--smoke", action="store_true", help="tiny sizes, only checks it runs")
    b.add_argument("--list", action="store_true", help="list the benchmarks")
    b.set_defaults(func=cmd_bench)
    r = sub.add_parser("paper1986", help="the 1986 back-propagation experiments",
                       description="XOR, mirror symmetry, the 8-3-8 encoder and the family "
                       "trees from Rumelhart, Hinton & Williams (1986).")
    r.add_argument("experiment", nargs="?", default="all",
                   choices=["all", "xor", "symmetry", "encoder", "family"])
    r.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    r.add_argument("--seeds", type=int, help="number of seeds (experiment's default)")
    r.add_argument("--first-seed", type=int, default=0, help="first seed (0)")
    r.add_argument("--sweeps", type=int, help="sweep budget (experiment's default)")
    r.add_argument("--lr", type=float, help="eps (experiment's default)")
    r.add_argument("--init", type=float, help="initial weights U(-init, init) (per experiment)")
    r.add_argument("--decay", type=float, help="family: weight decay per sweep (0.002)")
    r.add_argument("--out", help="folder for the family-tree plot (none by default)")
    r.set_defaults(func=cmd_paper1986)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``chainrule`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CLIError as e:
        print(f"chainrule {args.command}: error: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        print(f"chainrule {args.command}: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # output piped into e.g. `head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
