"""Run reports: training curves, a confusion matrix and an ``index.html`` that shows them.

Plots use matplotlib with the Agg backend, imported lazily: install the extra with
``pip install 'chainrule[plot]'``.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence

import numpy as np


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'chainrule[plot]'") from None
    return plt


def confusion_matrix(pred, target, num_classes: int | None = None) -> np.ndarray:
    """Counts ``m[true, predicted]`` for integer class labels."""
    p = np.asarray(getattr(pred, "_data", pred)).astype(np.int64).ravel()
    t = np.asarray(getattr(target, "_data", target)).astype(np.int64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"confusion_matrix: {p.shape[0]} predictions but {t.shape[0]} "
                         f"targets")
    k = num_classes or int(max(p.max(initial=0), t.max(initial=0)) + 1)
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def plot_history(history, path: str | os.PathLike) -> str:
    """Loss (and accuracy, when logged) per epoch, train and validation, as a PNG."""
    plt = _plt()
    records = history.records if hasattr(history, "records") else list(history)
    if not records:
        raise ValueError("plot_history: the history is empty")
    epochs = np.arange(1, len(records) + 1)
    has_acc = any("train_accuracy" in r or "val_accuracy" in r for r in records)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5.5, 4))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        vals = [r.get(key) for r in records]
        if any(v is not None for v in vals):
            ax.plot(epochs, vals, marker="o", ms=3, label=label)
    ax.set(title="Loss per epoch", xlabel="epoch", ylabel="loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    if has_acc:
        ax = axes[1]
        for key, label in (("train_accuracy", "train"), ("val_accuracy", "validation")):
            vals = [r.get(key) for r in records]
            if any(v is not None for v in vals):
                ax.plot(epochs, [100 * v for v in vals], marker="o", ms=3, label=label)
        ax.set(title="Accuracy per epoch", xlabel="epoch", ylabel="accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    path = os.fspath(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion(matrix: np.ndarray, path: str | os.PathLike,
                   labels: Sequence[str] | None = None, title: str = "Confusion matrix") -> str:
    """A confusion matrix as an annotated heat map (rows: true class, columns: predicted)."""
    plt = _plt()
    m = np.asarray(matrix)
    k = m.shape[0]
    labels = list(labels) if labels is not None else [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(1.0 + 0.5 * k, 0.8 + 0.5 * k))
    ax.imshow(m, cmap="Blues")
    thresh = m.max() / 2 if m.size else 0
    for i in range(k):
        for j in range(k):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if m[i, j] > thresh else "black")
    ax.set_xticks(range(k), labels)
    ax.set_yticks(range(k), labels)
    ax.set(title=title, xlabel="predicted", ylabel="true")
    fig.tight_layout()
    path = os.fspath(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_index(folder: str | os.PathLike, title: str, metrics: dict,
                images: Sequence[tuple[str, str]], notes: Sequence[str] = ()) -> str:
    """Write ``index.html`` showing the metrics table and the images (file, caption)."""
    folder = os.fspath(folder)
    rows = "\n".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in metrics.items()
    )
    figs = "\n".join(
        f'<figure><img src="{html.escape(f)}" alt="{html.escape(c)}">'
        f"<figcaption>{html.escape(c)}</figcaption></figure>"
        for f, c in images
    )
    note_html = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; }}
figure {{ display: inline-block; margin: 0 1em 1.5em 0; vertical-align: top; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
figcaption {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{note_html}
<table>{rows}</table>
{figs}
</body></html>
"""
    path = os.path.join(folder, "index.html")
    tmp = path + ".part"
    with open(tmp, "w") as f:
        f.write(page)
    os.replace(tmp, path)
    return path


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)
