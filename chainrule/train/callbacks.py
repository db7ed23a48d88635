"""Callbacks for :func:`chainrule.train.fit`: early stopping, checkpoints, loggers.

A callback is any object with some of the methods of :class:`Callback`; each receives the
running :class:`~chainrule.train.loop.Trainer` (model, optimizer, scheduler, epoch, step,
history and a ``stop_training`` flag).
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile

import numpy as np


class Callback:
    """Base class: override the hooks you need (all default to doing nothing)."""

    def on_train_begin(self, trainer) -> None:
        """Before the first epoch (after a resume has been applied)."""

    def on_epoch_begin(self, trainer) -> None:
        """At the start of each epoch."""

    def on_after_backward(self, trainer) -> None:
        """After the backward pass of each optimizer step, before clipping and stepping."""

    def on_after_step(self, trainer) -> None:
        """After each optimizer step."""

    def on_epoch_end(self, trainer, logs: dict) -> None:
        """After validation, with the epoch's logs (train_loss, val_loss, metrics, lr)."""

    def on_train_end(self, trainer) -> None:
        """After the last epoch (or an early stop)."""


def _better(mode: str, value: float, best: float, min_delta: float) -> bool:
    if mode == "min":
        return value < best - min_delta
    return value > best + min_delta


def _check_mode(name: str, mode: str) -> None:
    if mode not in ("min", "max"):
        raise ValueError(f"{name}: mode must be 'min' or 'max', got {mode!r}")


def _snapshot(model) -> dict:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Args:
        monitor: a key of the epoch logs, e.g. ``'val_loss'`` or ``'val_accuracy'``.
        patience: epochs without improvement before stopping.
        min_delta: the smallest change that counts as an improvement.
        mode: ``'min'`` or ``'max'``.
        restore_best: load the best epoch's weights back into the model at the end.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "min", restore_best: bool = True) -> None:
        _check_mode("EarlyStopping", mode)
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = abs(min_delta)
        self.mode = mode
        self.restore_best = restore_best
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self.wait = 0
        self.stopped_epoch = None
        self._best_state = None

    def on_epoch_end(self, trainer, logs: dict) -> None:
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: '{self.monitor}' is not in the epoch logs "
                           f"{sorted(logs)}; pass val= to fit or monitor a train metric")
        value = float(logs[self.monitor])
        if _better(self.mode, value, self.best, self.min_delta):
            self.best = value
            self.best_epoch = trainer.epoch
            self.wait = 0
            if self.restore_best:
                self._best_state = _snapshot(trainer.model)
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.stop_training = True
            self.stopped_epoch = trainer.epoch

    def on_train_end(self, trainer) -> None:
        if self.restore_best and self._best_state is not None:
            from ..creation import from_numpy

            trainer.model.load_state_dict({k: from_numpy(v) for k, v in
                                           self._best_state.items()})


class ModelCheckpoint(Callback):
    """Save ``last`` (every epoch) and ``best`` (by ``monitor``) checkpoints atomically.

    Each file holds the model, optimizer and scheduler state, the RNG states and the
    epoch, so ``fit(..., resume=path)`` continues exactly where the run stopped.

    Args:
        dirpath: folder for ``last.safetensors`` and ``best.safetensors``.
        monitor: key of the epoch logs deciding the best epoch.
        mode: ``'min'`` or ``'max'``.
        save_best, save_last: which files to keep.
    """

    def __init__(self, dirpath: str | os.PathLike, monitor: str = "val_loss",
                 mode: str = "min", save_best: bool = True, save_last: bool = True) -> None:
        _check_mode("ModelCheckpoint", mode)
        self.dirpath = os.fspath(dirpath)
        self.monitor = monitor
        self.mode = mode
        self.save_best = save_best
        self.save_last = save_last
        self.best = math.inf if mode == "min" else -math.inf
        self.best_path = os.path.join(self.dirpath, "best.safetensors")
        self.last_path = os.path.join(self.dirpath, "last.safetensors")

    def on_train_begin(self, trainer) -> None:
        os.makedirs(self.dirpath, exist_ok=True)
        if not os.access(self.dirpath, os.W_OK):
            raise PermissionError(f"ModelCheckpoint: can't write to {self.dirpath}")

    def on_epoch_end(self, trainer, logs: dict) -> None:
        if self.save_last:
            trainer.save_checkpoint(self.last_path)
        if self.save_best and self.monitor in logs:
            value = float(logs[self.monitor])
            if _better(self.mode, value, self.best, 0.0):
                self.best = value
                trainer.save_checkpoint(self.best_path)


def _atomic_write_text(path: str, text: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _plain(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


class CSVLogger(Callback):
    """Write the epoch logs as CSV rows (rewritten atomically each epoch)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)

    def on_epoch_end(self, trainer, logs: dict) -> None:
        rows = trainer.history.records
        keys = list(dict.fromkeys(k for r in rows for k in r))
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: _plain(r.get(k, "")) for k in keys})
        _atomic_write_text(self.path, buf.getvalue())


class JSONLogger(Callback):
    """Write the whole history as JSON (rewritten atomically each epoch)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)

    def on_epoch_end(self, trainer, logs: dict) -> None:
        data = [{k: _plain(v) for k, v in r.items()} for r in trainer.history.records]
        _atomic_write_text(self.path, json.dumps(data, indent=1))


class LambdaCallback(Callback):
    """Build a callback from functions: ``LambdaCallback(on_epoch_end=f, ...)``."""

    def __init__(self, **hooks) -> None:
        for name, fn in hooks.items():
            if not hasattr(Callback, name):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)
