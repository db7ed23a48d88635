"""One LSTM training step against every installed peer.

Workload: ``nn.LSTM(32, 128)`` over a sequence of 50 steps, batch 32, full
backpropagation through time; the last hidden state goes through ``nn.Linear(128, 10)``
into cross-entropy; one step is zero_grad, forward, backward and a plain SGD update
(lr 0.01, no momentum). Every library starts from the same NumPy weights (PyTorch's
default init range) and the losses of two steps are cross-checked before the interleaved
timing (see :mod:`benchmarks.peers`). Target: chainrule at most 1.2x PyTorch's time.

How each library expresses it:

- chainrule and PyTorch: their ``nn.LSTM`` and ``nn.Linear`` modules.
- JAX, HIPS autograd and MyGrad: one functional LSTM, :func:`lstm_loss`, written once
  against their NumPy-like modules: one cell, :func:`lstm_cell`, with PyTorch's gate
  order (i, f, g, o) and its two biases, in a Python loop over the time steps for
  autograd and MyGrad; JAX runs the same cell under ``lax.scan`` with the whole step
  under ``jax.jit`` (compile time reported apart). The Python loop traced by ``jax.jit``
  (50 steps unrolled) measured about 170 ms per step against 32 ms for ``lax.scan``.
- tinygrad: the same loop with ``Tensor`` methods; ``tinygrad`` runs the step under
  ``TinyJit``, ``tinygrad-eager`` schedules it anew every step.
- numpy: no engine; the backward written out by hand in NumPy (one GEMM for the input
  projection of all time steps, one each for the gate-matrix gradients), see
  :mod:`benchmarks.manual`. Always run, also in smoke mode.

Run: ``python -m benchmarks.run lstm`` (or ``python -m benchmarks.lstm``). The per-step
GEMMs are small (32 x 128 x 512); on a loaded machine, BLAS worker threads that spin
while waiting for a core distort every library, so
``OPENBLAS_NUM_THREADS=1 python -m benchmarks.lstm`` runs NumPy's BLAS single-threaded and
gives PyTorch the same thread count. The table also shows process CPU time, which a
shared machine disturbs less than wall time.
"""

from __future__ import annotations

import sys

import numpy as np

from . import common, manual, peers
from .cnn import tinygrad_step

NAME = "lstm"
DESCRIPTION = "LSTM(32, 128), seq 50, batch 32, linear to 10 classes: full training step"
LR, MOMENTUM = 0.01, 0.0  # plain SGD
TINYGRAD_OFF = (
    "tinygrad: installed but not run by default (python -m benchmarks.lstm --tinygrad runs "
    "it): on its CPU device the first two jitted steps of a 6-time-step LSTM already take "
    "about 50 s (kernel cache warm), growing with the sequence, and an eager step "
    "schedules the whole graph again, 1.8 s per step at 6 time steps (about 15 s at 50)")
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)


def init_weights(n_in: int, hidden: int, classes: int, seed: int = 0) -> list[np.ndarray]:
    """``[weight_ih, weight_hh, bias_ih, bias_hh, head.weight, head.bias]`` in PyTorch's
    layout, uniform(+-1/sqrt(hidden)) for the LSTM and +-1/sqrt(fan_in) for the head."""
    rng = np.random.default_rng(seed)

    def u(shape, fan):
        b = 1.0 / np.sqrt(fan)
        return rng.uniform(-b, b, shape).astype(np.float32)

    g = 4 * hidden
    return [u((g, n_in), hidden), u((g, hidden), hidden), u(g, hidden), u(g, hidden),
            u((classes, hidden), hidden), u(classes, hidden)]


def data(seq: int, batch: int, n_in: int, classes: int,
         seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A float32 sequence ``(seq, batch, n_in)`` and integer labels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((seq, batch, n_in)).astype(np.float32)
    return x, rng.integers(0, classes, batch)


def _sigmoid(xp, x):
    """The logistic function as ``0.5 * tanh(x / 2) + 0.5`` (stable, float32 constants)."""
    return _HALF * xp.tanh(_HALF * x) + _HALF


def lstm_cell(xp, ps, h, c, xt):
    """One LSTM time step, PyTorch's gate order (i, f, g, o) and its two biases."""
    w_ih, w_hh, b_ih, b_hh = ps[:4]
    hidden = w_hh.shape[1]
    z = peers.linear(xp, xt, w_ih, b_ih) + peers.linear(xp, h, w_hh, b_hh)
    i = _sigmoid(xp, z[:, :hidden])
    f = _sigmoid(xp, z[:, hidden:2 * hidden])
    g = xp.tanh(z[:, 2 * hidden:3 * hidden])
    o = _sigmoid(xp, z[:, 3 * hidden:])
    c = f * c + i * g
    return o * xp.tanh(c), c


def lstm_loss(xp, ps, x, target):
    """One LSTM layer (zero initial state) over ``x``, the head on the last hidden state,
    mean cross-entropy to one-hot targets.

    The time loop is a Python loop, except under JAX, where it is ``lax.scan`` over the
    same :func:`lstm_cell` (XLA runs the 50-step unrolled loop about 5x slower).
    """
    h = c = np.zeros((x.shape[1], ps[1].shape[1]), np.float32)
    if xp.__name__ == "jax.numpy":
        from jax import lax

        def body(carry, xt):
            return lstm_cell(xp, ps, *carry, xt), None

        (h, c), _ = lax.scan(body, (xp.asarray(h), xp.asarray(c)), x)
    else:
        for t in range(x.shape[0]):
            h, c = lstm_cell(xp, ps, h, c, x[t])
    return peers.cross_entropy(xp, peers.linear(xp, h, ps[4], ps[5]), target)


def _module_factory(lib, n_in, hidden, classes, weights, x, y):
    """chainrule or PyTorch: ``nn.LSTM`` + ``nn.Linear`` and an in-place plain SGD update."""
    conv = lib.from_numpy
    lstm = lib.nn.LSTM(n_in, hidden)
    head = lib.nn.Linear(hidden, classes)
    lstm.load_state_dict({k: conv(w.copy()) for k, w in zip(lstm.state_dict(), weights)})
    head.load_state_dict({"weight": conv(weights[4].copy()),
                          "bias": conv(weights[5].copy())})
    params = list(lstm.parameters()) + list(head.parameters())
    xx, yy = conv(x), conv(y)

    def step():
        for p in params:
            p.grad = None
        _, (h, _) = lstm(xx)
        loss = lib.nn.functional.cross_entropy(head(h[-1]), yy)
        loss.backward()
        peers.sgd_in_place(lib, params, LR)
        return loss.item()

    return step


def _tinygrad_factory(weights, x, y, jit: bool, info: dict | None = None):
    """tinygrad's LSTM step (the loop of :func:`lstm_loss` with ``Tensor`` methods).

    The LSTM weights are held as one tensor per gate (the rows of PyTorch's stacked
    matrices, split up front): the same numbers and the same elementwise SGD update, but
    no slicing of the stacked gate product, whose kernels tinygrad's CPU device takes
    minutes to compile.
    """
    from tinygrad import Tensor, TinyJit
    from tinygrad.nn.optim import SGD

    hidden = weights[1].shape[1]
    split = [w[k * hidden:(k + 1) * hidden] for w in weights[:4] for k in range(4)]
    ps = [Tensor(w.copy()).realize() for w in split + list(weights[4:])]
    # one input tensor per time step: every step's kernels are then alike (no offset into
    # one big buffer), so tinygrad compiles them once instead of once per step
    xs = [Tensor(x[t].copy()).realize() for t in range(x.shape[0])]
    yy = Tensor(y.astype(np.int32)).realize()
    opt = SGD(ps, lr=LR, momentum=MOMENTUM)
    w_ih, w_hh, b_ih, b_hh = ps[0:4], ps[4:8], ps[8:12], ps[12:16]
    w_o, b_o = ps[16:]
    batch = x.shape[1]

    def one_step():
        opt.zero_grad()
        h = c = Tensor.zeros(batch, hidden)
        for xt in xs:
            i, f, g, o = (xt.linear(w_ih[k].T, b_ih[k]) + h.linear(w_hh[k].T, b_hh[k])
                          for k in range(4))
            c = f.sigmoid() * c + i.sigmoid() * g.tanh()
            h = o.sigmoid() * c.tanh()
        loss = h.linear(w_o.T, b_o).sparse_categorical_crossentropy(yy)
        loss.backward()
        return loss.realize(*opt.schedule_step())

    return tinygrad_step(TinyJit(one_step) if jit else one_step, info if jit else None)


def factories(n_in, hidden, classes, weights, x, y, libs: dict, info: dict) -> dict:
    """One factory per library for the LSTM step (see :mod:`benchmarks.peers`)."""
    import chainrule as cr

    out = {"chainrule": lambda: _module_factory(cr, n_in, hidden, classes, weights, x, y)}
    if "torch" in libs:
        torch = libs["torch"]
        out["torch"] = lambda: _module_factory(torch, n_in, hidden, classes, weights, x, y)
    out["numpy"] = lambda: manual.lstm_step_factory(weights, x, y, LR, MOMENTUM)
    out.update(peers.xp_factories(lstm_loss, weights, x, peers.onehot(y, classes), LR,
                                  MOMENTUM, libs, info))
    if "tinygrad" in libs:
        out["tinygrad"] = lambda: _tinygrad_factory(weights, x, y, jit=True, info=info)
        out["tinygrad-eager"] = lambda: _tinygrad_factory(weights, x, y, jit=False)
    return out


def step_flops(seq: int, batch: int, n_in: int, hidden: int, classes: int) -> float:
    """FLOPs of one step: forward GEMMs (both gate products each time step, the head)
    times three."""
    return 3 * 2 * batch * (seq * 4 * hidden * (n_in + hidden) + hidden * classes)


def run(smoke: bool = False, seq: int = 50, batch: int = 32, n_in: int = 32,
        hidden: int = 128, classes: int = 10, repeats: int = 12,
        tinygrad: bool = False) -> dict:
    """Cross-check, then time the LSTM step in every installed library.

    Args:
        smoke: tiny sizes, two samples and the fast peers only; checks that it runs.
        seq, batch, n_in, hidden, classes: the workload.
        repeats: samples per library.
        tinygrad: also run the two tinygrad rows (off by default: see :data:`TINYGRAD_OFF`).
    """
    if smoke:
        seq, batch, n_in, hidden, repeats = 3, 2, 4, 8, 2
    libs, notes = peers.load_peers(smoke)
    if not tinygrad and libs.pop("tinygrad", None) is not None:
        notes.append(TINYGRAD_OFF)
    weights = init_weights(n_in, hidden, classes)
    x, y = data(seq, batch, n_in, classes)
    info: dict = {}
    facs = factories(n_in, hidden, classes, weights, x, y, libs, info)
    result = peers.run_workload(
        NAME, facs, repeats=repeats, warmup=1 if smoke else 3,
        params={"seq": seq, "batch": batch, "input": n_in, "hidden": hidden,
                "classes": classes, "repeats": repeats, "smoke": smoke, "lr": LR,
                "momentum": MOMENTUM, "dtype": "float32"},
        flops=step_flops(seq, batch, n_in, hidden, classes), notes=notes, info=info)
    extra = []
    if "jax" in libs:
        extra.append("jax: the time loop is lax.scan over one LSTM cell, the whole step "
                     "under jax.jit")
    if "tinygrad" in libs:
        from .cnn import TINYGRAD_NOTE

        extra.append(TINYGRAD_NOTE)
    return peers.finish_result(result, libs, 1.2, extra)


def format_result(result: dict) -> str:
    """The table of ms per step and ratios to torch, then the CPU-time minimums."""
    lines = [peers.format_steps(result)]
    cpu = {r["lib"]: r["cpu_min"] for r in result["rows"] if "cpu_min" in r}
    if cpu:
        parts = [f"{lib} {v * 1e3:.2f}" for lib, v in cpu.items()]
        if "torch" in cpu and "chainrule" in cpu:
            parts.append(f"chainrule/torch {cpu['chainrule'] / cpu['torch']:.2f}")
        lines.append("\nprocess CPU time, min ms/step: " + ", ".join(parts))
    return "\n".join(lines)


if __name__ == "__main__":
    common.ensure_malloc_env()
    print(common.describe_machine())
    print(format_result(run(tinygrad="--tinygrad" in sys.argv)))
