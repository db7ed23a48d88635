"""Charts of a :class:`~chainrule.diagnostics.GradientMonitor`'s records, as PNG files.

matplotlib is an optional dependency (``pip install 'chainrule[plot]'``), imported only
when a chart is drawn. Figures are rendered with the Agg canvas directly, so drawing
never touches pyplot's global state or the user's chosen backend.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .monitor import GradientMonitor


def _figure(op: str, size: tuple[float, float]):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"{op} needs matplotlib, which is not installed; install the "
                          f"plotting extra: pip install 'chainrule[plot]'") from None
    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> str:
    path = os.fspath(path)
    fig.savefig(path, format="png")
    return path


def _need_records(op: str, monitor: GradientMonitor) -> None:
    if not monitor.records:
        raise ValueError(f"{op}: no step recorded yet; call monitor.record() after "
                         f"loss.backward() (or train with fit(..., monitor=monitor)) first")


def _positive(values: np.ndarray) -> np.ndarray:
    """Replace zeros and non-finite values by NaN so a log axis can show the rest."""
    v = np.asarray(values, dtype=np.float64).copy()
    v[~np.isfinite(v) | (v <= 0)] = np.nan
    return v


def plot_flow(monitor: GradientMonitor, path: str | os.PathLike,
              step: int | None = None) -> str:
    """Gradient flow: per-layer mean and max ``|grad|`` as bars, forward order, log scale.

    Args:
        monitor: a monitor with at least one recorded step.
        path: the PNG file to write.
        step: a recorded step index, or None to average over all recorded steps.

    Returns:
        ``path`` as a string.
    """
    op = "GradientMonitor.plot_flow"
    _need_records(op, monitor)
    if step is None:
        recs = monitor.records
        title_step = (f"mean over {len(recs)} steps" if len(recs) > 1
                      else f"step {recs[0]['step']}")
    else:
        if not -len(monitor.records) <= step < len(monitor.records):
            raise IndexError(f"{op}: step {step} out of range; {len(monitor.records)} "
                             f"step(s) recorded")
        recs = [monitor.records[step]]
        title_step = f"step {recs[0]['step']}"
    layers = [n for n in monitor.layers if any(n in r["layers"] for r in recs)]
    if not layers:
        raise ValueError(f"{op}: no layer had a gradient in the recorded steps; call "
                         f"record() after loss.backward()")

    def avg(layer: str, key: str) -> float:
        vals = [r["layers"][layer][key] for r in recs if layer in r["layers"]]
        return float(np.mean(vals)) if vals else math.nan

    mean = _positive([avg(n, "grad_mean") for n in layers])
    peak = _positive([avg(n, "grad_max") for n in layers])
    n = len(layers)
    fig = _figure(op, (max(6.0, 0.45 * n + 2.5), 4.8))
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(n)
    ax.bar(x, peak, width=0.8, color="#9ecae1", label="max |grad|", zorder=2)
    ax.bar(x, mean, width=0.5, color="#08519c", label="mean |grad|", zorder=3)
    ax.set_yscale("log")
    ax.set_xticks(x)
    crowded = sum(len(name) + 2 for name in layers) > 60
    ax.set_xticklabels(layers, rotation=60 if crowded else 0,
                       ha="right" if crowded else "center", rotation_mode="anchor",
                       fontsize=8 if n > 12 else 9)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_xlabel("layer (forward order: input \u2192 output)")
    ax.set_ylabel("|gradient| (log scale)")
    ax.set_title(f"Gradient flow ({title_step})")
    ax.grid(axis="y", which="major", alpha=0.4, zorder=0)
    ax.legend(loc="best", fontsize=9)
    missing = [layers[i] for i in range(n) if np.isnan(mean[i]) and np.isnan(peak[i])]
    if missing:
        ax.text(0.01, 0.98, "zero or non-finite gradient: " + ", ".join(missing[:5]),
                transform=ax.transAxes, va="top", fontsize=8, color="#a50f15")
    return _save(fig, path)


def plot_norms(monitor: GradientMonitor, path: str | os.PathLike) -> str:
    """Per-layer gradient norm and update-to-weight ratio over steps, log scale.

    The top panel shows each layer's gradient norm per step, the bottom one each
    layer's update-to-weight ratio (the root-mean of its parameters' ratios; empty
    when :meth:`~GradientMonitor.after_step` was not called). Lines are coloured from
    the first layer (dark) to the last (light).

    Returns:
        ``path`` as a string.
    """
    op = "GradientMonitor.plot_norms"
    _need_records(op, monitor)
    hist = monitor.history
    steps = hist["step"]
    layers = monitor.layers
    params_of: dict[str, list[str]] = {}
    for name, _ in monitor._params:
        layer = name.rpartition(".")[0] or "(root)"
        params_of.setdefault(layer, []).append(name)
    fig = _figure(op, (9.0, 7.0))
    top = fig.add_subplot(2, 1, 1)
    bottom = fig.add_subplot(2, 1, 2, sharex=top)
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    # viridis without its palest end, which is hard to see on white
    cmap = ListedColormap(colormaps["viridis"](np.linspace(0.0, 0.88, 256)))
    n = len(layers)
    any_update = False
    for i, layer in enumerate(layers):
        color = cmap(i / max(n - 1, 1))
        marker = "o" if len(steps) < 30 else None
        top.plot(steps, _positive(hist[f"layer_grad_norm/{layer}"]), color=color, lw=1.4,
                 marker=marker, ms=3, label=layer)
        ratios = np.array([hist[f"update_ratio/{p}"] for p in params_of.get(layer, [])])
        if ratios.size and np.isfinite(ratios).any():
            any_update = True
            finite = np.isfinite(ratios)
            sq = np.where(finite, ratios, 0.0) ** 2
            count = finite.sum(axis=0)
            r = np.full(count.shape, np.nan)
            np.sqrt(sq.sum(axis=0) / np.maximum(count, 1), out=r, where=count > 0)
            bottom.plot(steps, _positive(r), color=color, lw=1.4, marker=marker, ms=3,
                        label=layer)
    top.set_yscale("log")
    top.set_ylabel("gradient norm (log)")
    top.set_title(f"Per-layer gradient norms over {len(steps)} step(s)")
    top.grid(alpha=0.35, which="major")
    if any_update:
        bottom.set_yscale("log")
        bottom.axhline(1e-3, color="grey", ls="--", lw=1)
    else:
        bottom.text(0.5, 0.5, "no updates measured: call monitor.after_step() after "
                    "optimizer.step()", ha="center", va="center", transform=bottom.transAxes,
                    fontsize=9, color="grey")
    from matplotlib.ticker import MaxNLocator

    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylabel("update / weight (log)\ndashed: 1e-3 rule of thumb" if any_update
                      else "update / weight")
    bottom.set_xlabel("step")
    bottom.set_title("Update-to-weight ratio ||\u0394w|| / ||w||")
    bottom.grid(alpha=0.35, which="major")
    if n <= 12:
        top.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, title="layer")
    else:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        sm = ScalarMappable(norm=Normalize(0, n - 1), cmap=cmap)
        bar = fig.colorbar(sm, ax=[top, bottom], pad=0.02)
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
        bar.set_label(f"layer, forward order (0: '{layers[0]}' ... {n - 1}: '{layers[-1]}')")
    return _save(fig, path)
