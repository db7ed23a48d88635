"""The training loop: ``fit`` runs forward, loss, backward, step, zero_grad per batch.

It shows a progress bar per epoch, evaluates on validation data in eval mode under
``no_grad``, accumulates gradients over micro-batches exactly like one big batch, steps
learning-rate schedules, calls callbacks, and can resume from a checkpoint to exactly the
weights an uninterrupted run reaches.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor, _wrap


class History:
    """Per-epoch logs of a run: ``history['val_loss']`` is a list over epochs."""

    def __init__(self, records: list | None = None) -> None:
        self.records: list[dict] = list(records or [])

    def append(self, logs: dict) -> None:
        """Add one epoch's logs."""
        self.records.append(dict(logs))

    def __getitem__(self, key: str) -> list:
        return [r[key] for r in self.records if key in r]

    def __len__(self) -> int:
        return len(self.records)

    def keys(self) -> list:
        """All log keys seen."""
        return list(dict.fromkeys(k for r in self.records for k in r))

    def __repr__(self) -> str:
        return f"History(epochs={len(self.records)}, keys={self.keys()})"


def accuracy(output: Tensor, target: Tensor) -> float:
    """Fraction of rows whose arg-max matches the class index in ``target``."""
    pred = output.detach().numpy().argmax(-1)
    return float((pred == target.detach().numpy()).mean())


_BUILTIN_METRICS = {"accuracy": accuracy, "acc": accuracy}


def _metric_fns(metrics) -> dict[str, Callable]:
    out = {}
    for m in metrics:
        if isinstance(m, str):
            if m not in _BUILTIN_METRICS:
                raise ValueError(f"fit: unknown metric {m!r}; known: {sorted(_BUILTIN_METRICS)}"
                                 f" or pass a function (output, target) -> float")
            out["accuracy" if m == "acc" else m] = _BUILTIN_METRICS[m]
        elif callable(m):
            out[getattr(m, "__name__", "metric")] = m
        else:
            raise TypeError(f"fit: a metric must be a name or a callable, got {type(m).__name__}")
    return out


def _as_loader(data, name: str, batch_size: int, shuffle: bool, generator):
    from ..utils.data import DataLoader, TensorDataset

    if isinstance(data, DataLoader):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        x = x if isinstance(x, Tensor) else _wrap(np.asarray(x))
        y = y if isinstance(y, Tensor) else _wrap(np.asarray(y))
        if len(x) != len(y):
            raise ValueError(f"fit: {name} x has {len(x)} samples but y has {len(y)}; "
                             f"they must be equal")
        return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle,
                          generator=generator)
    raise TypeError(f"fit: {name} must be a DataLoader or an (x, y) pair, got "
                    f"{type(data).__name__}")


def _split_batch(batch):
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError("fit: each batch must be an (inputs, targets) pair")


def _n(x) -> int:
    return int(x.shape[0]) if getattr(x, "ndim", 0) else 1


def _is_plateau(scheduler) -> bool:
    return type(scheduler).__name__ == "ReduceLROnPlateau"


class Trainer:
    """The state ``fit`` shares with callbacks: model, optimizer, epoch, step, history."""

    def __init__(self, model, loss_fn, optimizer, scheduler, loader) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.loader = loader
        self.epoch = 0
        self.step = 0
        self.history = History()
        self.stop_training = False
        self.last_loss = float("nan")

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Save model, optimizer, scheduler, RNG states, epoch and history atomically."""
        from .. import random as _random
        from ..serialization import save

        state = {
            "model": self.model.state_dict(),
            "model_class": type(self.model).__name__,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": _random.get_rng_state(),
            "loader_rng": _loader_rng_state(self.loader),
            "epoch": self.epoch,
            "step": self.step,
            "history": self.history.records,
        }
        save(state, path)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore everything :meth:`save_checkpoint` wrote (raises on a mismatch)."""
        from .. import random as _random
        from ..serialization import load

        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"fit: resume checkpoint {path} does not exist")
        state = load(path)
        if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
            raise ValueError(f"fit: {path} is not a training checkpoint (written by "
                             f"ModelCheckpoint or Trainer.save_checkpoint)")
        cls = type(self.model).__name__
        if state.get("model_class") not in (None, cls):
            raise ValueError(f"fit: resume checkpoint {path} is from a {state['model_class']}"
                             f" model, not a {cls}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        _random.set_rng_state(state["rng"])
        if state.get("loader_rng") is not None:
            gen = getattr(self.loader, "generator", None)
            if gen is not None:
                gen.set_state(state["loader_rng"])
        self.epoch = int(state["epoch"]) + 1
        self.step = int(state.get("step", 0))
        self.history = History(state.get("history") or [])


def _loader_rng_state(loader):
    gen = getattr(loader, "generator", None)
    return gen.get_state() if gen is not None else None


def _lr(optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def evaluate(model, loss_fn, data, metrics: Sequence = (), batch_size: int = 256) -> dict:
    """Loss and metrics of ``model`` on ``data`` in eval mode under ``no_grad``.

    Returns ``{'loss': ..., <metric>: ...}`` averaged over samples (assumes the loss is a
    mean over the batch).
    """
    return _weighted_eval(model, loss_fn, data, metrics, batch_size,
                         lambda x, y: [(model(x), y, _n(y))])


def _weighted_eval(model, loss_fn, data, metrics, batch_size: int, terms) -> dict:
    """The evaluation loop shared by :func:`evaluate` and TBPTT's: eval mode, ``no_grad``,
    and ``terms(x, y)`` yielding ``(output, target, weight)`` for each batch; returns the
    weighted means of the loss and the metrics."""
    loader = _as_loader(data, "val", batch_size, False, None)
    fns = _metric_fns(metrics)
    was_training = getattr(model, "training", False)
    model.eval()
    total = 0
    sums = {"loss": 0.0, **{k: 0.0 for k in fns}}
    try:
        with no_grad():
            for batch in loader:
                x, y = _split_batch(batch)
                for out, target, w in terms(x, y):
                    sums["loss"] += float(loss_fn(out, target).item()) * w
                    for k, f in fns.items():
                        sums[k] += float(f(out, target)) * w
                    total += w
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("evaluate: the data has no samples")
    return {k: v / total for k, v in sums.items()}


def _progress(iterable, enabled: bool, total: int, desc: str):
    if not enabled:
        return None, iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError("fit(progress=True) needs tqdm: pip install tqdm, or pass "
                          "progress=False") from None
    bar = tqdm(iterable, total=total, desc=desc, leave=True, dynamic_ncols=True)
    return bar, bar


def fit(model, loss_fn: Callable, optimizer, train, *, val=None, epochs: int = 1,
        batch_size: int = 32, shuffle: bool = True, scheduler=None,
        scheduler_monitor: str = "val_loss", metrics: Sequence = (),
        callbacks: Iterable = (), accumulate: int = 1, clip_grad_norm: float | None = None,
        monitor=None, progress: bool = True, resume: str | os.PathLike | None = None,
        generator=None, tbptt: int | None = None) -> History:
    """Train ``model`` for ``epochs`` epochs and return the per-epoch :class:`History`.

    Args:
        model: a module mapping a batch of inputs to outputs.
        loss_fn: ``loss_fn(output, target)`` returning a scalar mean over the batch.
        optimizer: a ``chainrule.optim`` optimizer over the model's parameters.
        train: a DataLoader or an ``(x, y)`` pair (batched with ``batch_size``).
        val: validation data, evaluated after each epoch in eval mode under no_grad.
        epochs: total number of epochs (a resumed run counts the epochs already done).
        scheduler: a learning-rate scheduler stepped once per epoch;
            ``ReduceLROnPlateau`` is stepped with ``scheduler_monitor`` from the logs.
        metrics: names (``'accuracy'``) or functions ``(output, target) -> float``.
        callbacks: :class:`Callback` objects (EarlyStopping, ModelCheckpoint, loggers).
        accumulate: micro-batches per optimizer step; the update equals one step on
            their union (each micro-batch loss is weighted by its share of samples).
        clip_grad_norm: clip the total gradient norm to this value before each step.
        monitor: a gradient monitor (any callback), attached for the run.
        progress: show a tqdm bar per epoch with loss, metrics and samples/s.
        resume: a checkpoint to continue from (model, optimizer, scheduler, RNG, epoch).
        generator: the ``chainrule.Generator`` shuffling ``(x, y)`` training data.
        tbptt: truncated backpropagation through time for a stateful model: batches are
            ``(x, y)`` with time on dim 1 of both, the model is called as
            ``model(x_chunk, state)`` and returns ``(output, new_state)``; each batch is
            cut into chunks of ``tbptt`` steps, with one loss/backward/step per chunk and
            the state carried (detached) from chunk to chunk, starting from ``None``.
            Validation runs the same chunks under no_grad. See ``chainrule.train.tbptt``.
    """
    if accumulate < 1:
        raise ValueError(f"fit: accumulate must be >= 1, got {accumulate}")
    if epochs < 0:
        raise ValueError(f"fit: epochs must be >= 0, got {epochs}")
    if clip_grad_norm is not None and clip_grad_norm <= 0:
        raise ValueError(f"fit: clip_grad_norm must be positive, got {clip_grad_norm}")
    if tbptt is not None:
        from .tbptt import check_tbptt, tbptt_epoch, tbptt_evaluate

        check_tbptt(tbptt, accumulate)
    loader = _as_loader(train, "train", batch_size, shuffle, generator)
    cbs = list(callbacks) + ([monitor] if monitor is not None else [])
    fns = _metric_fns(metrics)
    trainer = Trainer(model, loss_fn, optimizer, scheduler, loader)
    if resume is not None:
        trainer.load_checkpoint(resume)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for cb in cbs:
        cb.on_train_begin(trainer)
    while trainer.epoch < epochs and not trainer.stop_training:
        if tbptt is not None:
            logs = tbptt_epoch(trainer, loader, fns, cbs, tbptt, clip_grad_norm, params,
                               progress, epochs)
        else:
            logs = _train_epoch(trainer, loader, fns, cbs, accumulate, clip_grad_norm, params,
                                progress, epochs)
        if val is not None and tbptt is not None:
            v = tbptt_evaluate(model, loss_fn, val, list(fns), tbptt)
            logs.update({f"val_{k}": x for k, x in v.items()})
        elif val is not None:
            v = evaluate(model, loss_fn, val, list(fns))
            logs.update({f"val_{k}": x for k, x in v.items()})
        logs["lr"] = _lr(optimizer)
        if scheduler is not None:
            if _is_plateau(scheduler):
                if scheduler_monitor not in logs:
                    raise KeyError(f"fit: scheduler_monitor '{scheduler_monitor}' is not in "
                                   f"the logs {sorted(logs)}")
                scheduler.step(logs[scheduler_monitor])
            else:
                scheduler.step()
        trainer.history.append(logs)
        for cb in cbs:
            cb.on_epoch_end(trainer, logs)
        trainer.epoch += 1
    for cb in cbs:
        cb.on_train_end(trainer)
    return trainer.history


def _train_epoch(trainer, loader, fns, cbs, accumulate, clip, params, progress, epochs):
    model = trainer.model
    model.train()
    for cb in cbs:
        cb.on_epoch_begin(trainer)
    t0 = time.perf_counter()
    total = 0
    sums = {"loss": 0.0, **{k: 0.0 for k in fns}}
    bar, it = _progress(loader, progress, len(loader),
                        f"epoch {trainer.epoch + 1}/{epochs}")
    group: list = []
    try:
        for batch in it:
            group.append(_split_batch(batch))
            if len(group) == accumulate:
                total += _step_group(trainer, group, fns, sums, cbs, clip, params)
                group = []
                if bar is not None:
                    rate = total / max(time.perf_counter() - t0, 1e-9)
                    post = {"loss": f"{sums['loss'] / total:.4f}"}
                    post.update({k: f"{sums[k] / total:.4f}" for k in fns})
                    post["samples/s"] = f"{rate:.0f}"
                    bar.set_postfix(post, refresh=False)
        if group:
            total += _step_group(trainer, group, fns, sums, cbs, clip, params)
    finally:
        if bar is not None:
            bar.close()
    if total == 0:
        raise ValueError("fit: the training data has no samples")
    logs = {f"train_{k}" if k != "loss" else "train_loss": v / total for k, v in sums.items()}
    logs["epoch"] = trainer.epoch
    logs["time"] = time.perf_counter() - t0
    logs["samples_per_s"] = total / max(logs["time"], 1e-9)
    return logs


def _step_group(trainer, group, fns, sums, cbs, clip, params) -> int:
    """One optimizer step over micro-batches, weighted to equal their union."""
    opt = trainer.optimizer
    n_total = sum(_n(y) for _, y in group)
    opt.zero_grad()
    for x, y in group:
        out = trainer.model(x)
        loss = trainer.loss_fn(out, y)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError(f"fit: loss_fn must return a scalar tensor, got shape "
                             f"{getattr(loss, 'shape', None)}")
        n = _n(y)
        (loss * (n / n_total)).backward()
        val = float(loss.item())
        trainer.last_loss = val
        sums["loss"] += val * n
        for k, f in fns.items():
            sums[k] += float(f(out, y)) * n
    for cb in cbs:
        cb.on_after_backward(trainer)
    if clip is not None:
        from ..nn.utils import clip_grad_norm_

        clip_grad_norm_(params, clip)
    opt.step()
    trainer.step += 1
    for cb in cbs:
        cb.on_after_step(trainer)
    return n_total
