"""Truncated BPTT: fit(tbptt=k) and nn.utils.detach_state."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F
from chainrule.train import Callback, fit


class DelayedCopy(nn.Module):
    """An LSTM + linear head following the tbptt protocol: ``(x, state) -> (y, state)``."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x, state=None):
        out, state = self.lstm(x, state)
        return self.head(out), state


def _copy_task(n: int, steps: int, delay: int = 2, seed: int = 0):
    """``y[t] = x[t - delay]`` for random +-1 inputs (0 for the first ``delay`` steps)."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=(n, steps, 1)).astype(np.float32)
    y = np.zeros_like(x)
    y[:, delay:] = x[:, :-delay]
    return cr.tensor(x), cr.tensor(y)


def test_tbptt_trains_an_lstm_on_a_delayed_copy():
    model = DelayedCopy()
    opt = cr.optim.Adam(model.parameters(), lr=2e-2)
    hist = fit(model, F.mse_loss, opt, _copy_task(64, 100), epochs=5, batch_size=32,
               tbptt=10, progress=False, val=_copy_task(32, 100, seed=1))
    # 2 of every 10 steps need the state carried over from the previous chunk: without
    # it the loss could not go below ~0.2
    assert hist["train_loss"][0] > 0.3
    assert hist["val_loss"][-1] < 0.05
    assert hist["train_loss"][-1] < hist["train_loss"][0] / 5


class _SavedBytes(Callback):
    """Peak bytes saved for backward by one chunk's graph (counted by a pack hook)."""

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0
        self.steps = 0

    def pack(self, t):
        self.live += t.numel() * t.dtype.itemsize
        self.peak = max(self.peak, self.live)
        return t

    def on_after_backward(self, trainer) -> None:
        self.live = 0
        self.steps += 1


def _peak_saved(steps: int, tbptt: int) -> tuple[int, int]:
    cr.manual_seed(0)
    model = DelayedCopy(hidden=8)
    opt = cr.optim.SGD(model.parameters(), lr=0.01)
    meter = _SavedBytes()
    with cr.autograd.graph.saved_tensors_hooks(meter.pack, lambda t: t):
        fit(model, F.mse_loss, opt, _copy_task(4, steps), epochs=1, batch_size=4,
            tbptt=tbptt, progress=False, callbacks=[meter])
    return meter.peak, meter.steps


def test_memory_per_step_stays_flat_as_the_sequence_grows():
    short, n_short = _peak_saved(100, tbptt=10)
    long, n_long = _peak_saved(400, tbptt=10)
    assert (n_short, n_long) == (10, 40)  # one step per chunk
    assert short == long > 0
    # without truncation the graph (and memory) grows with the length
    full_short, _ = _peak_saved(100, tbptt=100)
    full_long, _ = _peak_saved(400, tbptt=400)
    assert full_long > 3.5 * full_short > 3.5 * short


def test_fit_matches_a_hand_written_loop_with_detach_state():
    x, y = _copy_task(8, 25)
    cr.manual_seed(0)
    a = DelayedCopy(hidden=6)
    cr.manual_seed(0)
    b = DelayedCopy(hidden=6)
    opt_a = cr.optim.SGD(a.parameters(), lr=0.1)
    opt_b = cr.optim.SGD(b.parameters(), lr=0.1)
    fit(a, F.mse_loss, opt_a, (x, y), epochs=1, batch_size=8, shuffle=False, tbptt=10,
        progress=False)
    state = None
    for t0 in range(0, 25, 10):  # chunks of 10, 10, 5
        opt_b.zero_grad()
        out, state = b(x[:, t0:t0 + 10], state)
        F.mse_loss(out, y[:, t0:t0 + 10]).backward()
        opt_b.step()
        state = nn.utils.detach_state(state)
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(pa.detach().numpy(), pb.detach().numpy(), rtol=1e-6,
                                   atol=1e-7)


def test_tbptt_bad_input():
    model = DelayedCopy()
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    x, y = _copy_task(4, 10)
    with pytest.raises(ValueError, match="tbptt must be a positive int"):
        fit(model, F.mse_loss, opt, (x, y), tbptt=0, progress=False)
    with pytest.raises(ValueError, match="accumulate"):
        fit(model, F.mse_loss, opt, (x, y), tbptt=5, accumulate=2, progress=False)
    with pytest.raises(ValueError, match="targets must be"):
        fit(model, F.mse_loss, opt, (x, y[:, 0]), tbptt=5, progress=False)
    plain = nn.Linear(1, 1)
    with pytest.raises(TypeError):
        fit(plain, F.mse_loss, cr.optim.SGD(plain.parameters(), lr=0.1), (x, y), tbptt=5,
            progress=False)


def test_detach_state_keeps_structure():
    Pair = namedtuple("Pair", "h c")
    w = cr.ones(2, requires_grad=True)
    h = w * 2
    state = {"lstm": Pair(h, h + 1), "extra": [h, None, 3], "t": (h,)}
    out = nn.utils.detach_state(state)
    assert isinstance(out["lstm"], Pair) and isinstance(out["extra"], list)
    assert isinstance(out["t"], tuple)
    for t in (out["lstm"].h, out["lstm"].c, out["extra"][0], out["t"][0]):
        assert not t.requires_grad and t.grad_fn is None
    np.testing.assert_array_equal(out["lstm"].c.numpy(), [3.0, 3.0])
    assert out["extra"][1:] == [None, 3]
    assert nn.utils.detach_state(None) is None
    assert h.requires_grad  # the input is untouched
