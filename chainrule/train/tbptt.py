"""Truncated backpropagation through time for ``fit(..., tbptt=k)``.

The protocol for a stateful (recurrent) model:

- each batch is ``(x, y)`` with ``x`` of shape ``(batch, time, *features)`` and ``y`` of
  shape ``(batch, time, *)``: one target per time step, time on dim 1 for both;
- the model is called as ``model(x_chunk, state)`` and returns ``(output, new_state)``;
  ``state`` is ``None`` at the start of every batch (each batch holds fresh sequences),
  and may be any tensor or nested tuple/list/dict of tensors (``nn.LSTM(...,
  batch_first=True)`` itself follows this protocol);
- each batch is cut into chunks of ``k`` time steps (the last may be shorter). For each
  chunk: ``zero_grad``, forward from the carried state, ``loss_fn(output, y_chunk)``,
  backward, optional clipping, ``step``. The new state is then detached
  (:func:`chainrule.nn.utils.detach_state`) and carried into the next chunk: values flow
  across the whole sequence, gradients only within a chunk, so memory and backward cost
  per step stay the same however long the sequences are.

Logged losses and metrics are means over time steps (each chunk weighted by its number
of sequence-steps); ``samples_per_s`` counts sequences.
"""

from __future__ import annotations

import time

from ..nn.utils.detach import detach_state
from ..tensor import Tensor

__all__ = ["tbptt_epoch", "tbptt_evaluate"]


def check_tbptt(tbptt, accumulate: int) -> int:
    """Validate ``fit``'s ``tbptt`` argument (before anything runs)."""
    if isinstance(tbptt, bool) or not isinstance(tbptt, int) or tbptt < 1:
        raise ValueError(f"fit: tbptt must be a positive int (time steps per chunk), got "
                         f"{tbptt!r}")
    if accumulate != 1:
        raise ValueError(f"fit: tbptt={tbptt} steps once per chunk; it cannot be combined "
                         f"with accumulate={accumulate}")
    return tbptt


def _check_batch(x, y) -> int:
    if not isinstance(x, Tensor) or x.ndim < 2:
        raise ValueError(f"fit(tbptt=...): inputs must be (batch, time, *features), got "
                         f"shape {tuple(getattr(x, 'shape', ()))}")
    if not isinstance(y, Tensor) or y.ndim < 2 or tuple(y.shape[:2]) != tuple(x.shape[:2]):
        raise ValueError(f"fit(tbptt=...): targets must be (batch, time, *) with the inputs' "
                         f"batch and time sizes {tuple(x.shape[:2])}, got shape "
                         f"{tuple(getattr(y, 'shape', ()))}")
    return int(x.shape[1])


def _forward(model, x, state):
    res = model(x, state)
    if not isinstance(res, (tuple, list)) or len(res) != 2:
        raise TypeError(f"fit(tbptt=...): the model must return (output, new_state) when "
                        f"called as model(x_chunk, state); got {type(res).__name__}")
    return res[0], res[1]


def _chunks(n_steps: int, k: int):
    for t0 in range(0, n_steps, k):
        yield t0, min(t0 + k, n_steps)


def tbptt_epoch(trainer, loader, fns: dict, cbs: list, k: int, clip, params, progress: bool,
                epochs: int) -> dict:
    """One training epoch with truncated BPTT: an optimizer step per chunk of ``k`` steps."""
    from ..nn.utils import clip_grad_norm_
    from .loop import _progress, _split_batch

    model = trainer.model
    opt = trainer.optimizer
    model.train()
    for cb in cbs:
        cb.on_epoch_begin(trainer)
    t0 = time.perf_counter()
    seqs = 0
    weight = 0
    sums = {"loss": 0.0, **{name: 0.0 for name in fns}}
    bar, it = _progress(loader, progress, len(loader), f"epoch {trainer.epoch + 1}/{epochs}")
    try:
        for batch in it:
            x, y = _split_batch(batch)
            n_steps = _check_batch(x, y)
            n = int(x.shape[0])
            state = None
            for a, b in _chunks(n_steps, k):
                xc = x[:, a:b]
                yc = y[:, a:b]
                opt.zero_grad()
                out, state = _forward(model, xc, state)
                loss = trainer.loss_fn(out, yc)
                if not isinstance(loss, Tensor) or loss.numel() != 1:
                    raise ValueError(f"fit: loss_fn must return a scalar tensor, got shape "
                                     f"{getattr(loss, 'shape', None)}")
                loss.backward()
                for cb in cbs:
                    cb.on_after_backward(trainer)
                if clip is not None:
                    clip_grad_norm_(params, clip)
                opt.step()
                trainer.step += 1
                for cb in cbs:
                    cb.on_after_step(trainer)
                state = detach_state(state)
                w = n * (b - a)
                val = float(loss.item())
                trainer.last_loss = val
                sums["loss"] += val * w
                for name, f in fns.items():
                    sums[name] += float(f(out, yc)) * w
                weight += w
            seqs += n
            if bar is not None:
                post = {"loss": f"{sums['loss'] / max(weight, 1):.4f}"}
                post["seq/s"] = f"{seqs / max(time.perf_counter() - t0, 1e-9):.0f}"
                bar.set_postfix(post, refresh=False)
    finally:
        if bar is not None:
            bar.close()
    if weight == 0:
        raise ValueError("fit: the training data has no samples")
    logs = {f"train_{name}": v / weight for name, v in sums.items()}
    logs["epoch"] = trainer.epoch
    logs["time"] = time.perf_counter() - t0
    logs["samples_per_s"] = seqs / max(logs["time"], 1e-9)
    return logs


def tbptt_evaluate(model, loss_fn, data, metrics, k: int, batch_size: int = 256) -> dict:
    """Loss and metrics of a stateful model on ``data``, run in chunks of ``k`` steps with
    the state carried (eval mode, ``no_grad``); means over time steps."""
    from .loop import _weighted_eval

    def terms(x, y):
        n_steps = _check_batch(x, y)
        n = int(x.shape[0])
        state = None
        for a, b in _chunks(n_steps, k):
            out, state = _forward(model, x[:, a:b], state)
            yield out, y[:, a:b], n * (b - a)

    return _weighted_eval(model, loss_fn, data, metrics, batch_size, terms)
