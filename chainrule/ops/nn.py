"""Fused neural-network primitives: the pointwise parts of the LSTM and GRU cells.

Why fused: a recurrent layer runs its cell once per time step in a Python loop, so each
recorded op costs per-step overhead (a node, its saved values, a VJP call) on arrays of
only ``batch x hidden`` elements. Written as composites an LSTM step is ~15 nodes; fused
it is one, and ``benchmarks/lstm.py`` measures the difference. The gate GEMMs stay
``matmul``s (BLAS-bound; nothing to gain by fusing them).

Each VJP has two paths computing the same formulas: raw NumPy arrays (plain backward, the
hot path, with in-place arithmetic) and tensors in the dual ops (``create_graph=True``,
so double backward is recorded like any other op). ``tests/ops/test_nn_ops.py`` checks
both with gradcheck and gradgradcheck.

Also here: :func:`unbind_steps`, the time-step split whose backward stacks once instead
of scattering each step's gradient into a full-size buffer (which would cost O(T^2)).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd.function import Function
from ..tensor import Tensor
from ._registry import primitive
from .elementwise import sigmoid, tanh
from .indexing import getitem
from .linalg import matmul
from .shape import cat_, pad_, permute, reshape

xp = backend.xp
_nd = np.ndarray


def _gate(x, k: int, n: int, h: int):
    """Gate ``k`` of ``n`` (each of width ``h``) along the last dimension (a view)."""
    return getitem(x, (Ellipsis, slice(k * h, (k + 1) * h)))


def _check_cell(op: str, xg, hg, n: int) -> int:
    if xg.shape != hg.shape:
        raise ValueError(f"{op}: the input gates and hidden gates must have the same shape, "
                         f"got {tuple(xg.shape)} and {tuple(hg.shape)}")
    if xg.shape[-1] % n:
        raise ValueError(f"{op}: the gate dimension must be a multiple of {n}, got shape "
                         f"{tuple(xg.shape)}")
    return xg.shape[-1] // n


# ------------------------------------------------------------------------------- LSTM
# Outputs: the registry records one differentiable output per primitive, so h, c and the
# values backward needs share one array ``out`` of shape (*batch, 7 * hidden), laid out
# [h | c | i f g o | tanh(c)] along the last dimension (the gate activations in the same
# order and layout as the pre-activations). One primitive with a stacked output beats two
# primitives sharing work (two nodes, the activations computed twice), and keeping the
# activations in ``out`` spares backward the transcendentals (exp is most of a step's
# pointwise cost); the activations are computed in place inside ``out``, with no copy.
# ``h = out[..., :H]`` is a row-strided view that BLAS takes as is for the next step's
# GEMM, and the next cell takes ``out`` itself as its state (it reads only ``c``), so a
# step records three nodes: the hidden GEMM, the cell, and ``h``.
#
# NOTE: tanh and sigmoid are computed through exp: NumPy's float32 tanh runs ~2x slower
# than its exp here (83 us vs 41 us on 32 x 512), and those dominated the step.
# ``1 / (1 + exp(-x))`` overflows to inf for x < -88 (float32) and gives the right limit 0,
# so the overflow warning is silenced; tanh(x) = 2 sigmoid(2x) - 1.
LSTM_SLOTS = 7
_SCALES: dict = {}


def _gate_scale(n: int, h: int, tanh_gate: int, dtype):
    key = (n, h, tanh_gate, dtype)
    s = _SCALES.get(key)
    if s is None:
        s = xp.full(n * h, -1.0, dtype=dtype)
        s[tanh_gate * h: (tanh_gate + 1) * h] = -2.0
        _SCALES[key] = s
    return s


def _sigmoid_inplace(a):
    """``a = 1 / (1 + exp(a))`` in place: the sigmoid of ``-a``."""
    with np.errstate(over="ignore"):
        xp.exp(a, out=a)
    a += 1
    xp.reciprocal(a, out=a)
    return a


def _tanh_raw(x, out=None):
    t = xp.multiply(x, -2.0, out=out)
    _sigmoid_inplace(t)
    t *= 2
    t -= 1
    return t


def _slot(x, k: int, h: int):
    """Slot ``k`` (width ``h``) of the last dimension: a view (raw or recorded)."""
    return getitem(x, (Ellipsis, slice(k * h, (k + 1) * h)))


def _cell_state(state, h: int):
    """``c_prev`` from a state: the previous output (slot 1) or ``c_prev`` itself."""
    return _slot(state, 1, h) if state.shape[-1] == LSTM_SLOTS * h else state


@primitive(saves=("state", "out"))
def lstm_cell(xg, hg, state):
    """The pointwise LSTM step on gate pre-activations (PyTorch's gate order i, f, g, o).

    Args:
        xg: input gates ``x @ W_ih^T + b_ih (+ b_hh)``, shape (*batch, 4 * hidden).
        hg: hidden gates ``h_prev @ W_hh^T``, same shape.
        state: ``c_prev`` (*batch, hidden), or the previous step's output (its slot 1 is
            the cell state).

    Returns:
        shape (*batch, 7 * hidden): ``[h | c | i f g o | tanh(c)]`` with
        ``c = f * c_prev + i * g`` and ``h = o * tanh(c)``; slots 0 and 1 are the results,
        the others the gate activations backward reuses.
    """
    h = _check_cell("lstm_cell", xg, hg, 4)
    c_prev = _cell_state(state, h)
    if c_prev.shape != xg.shape[:-1] + (h,):
        raise ValueError(f"lstm_cell: the state must be c_prev of shape "
                         f"{xg.shape[:-1] + (h,)} or a previous output, got "
                         f"{tuple(state.shape)}")
    out = xp.empty(xg.shape[:-1] + (LSTM_SLOTS * h,), dtype=xp.result_type(xg, hg))
    a = out[..., 2 * h: 6 * h]
    # a = -(xg + hg), with -2x for the tanh gate: sigmoid(-a) everywhere, then
    # g = 2 sigmoid(2x) - 1
    xp.add(xg, hg, out=a)
    xp.negative(a, out=a)
    gg = out[..., 4 * h: 5 * h]
    gg *= 2
    _sigmoid_inplace(a)
    gg *= 2
    gg -= 1
    c = out[..., h: 2 * h]
    xp.multiply(out[..., 3 * h: 4 * h], c_prev, out=c)
    tc = out[..., 6 * h:]
    xp.multiply(out[..., 2 * h: 3 * h], gg, out=tc)
    c += tc
    xp.tanh(c, out=tc)
    xp.multiply(out[..., 5 * h: 6 * h], tc, out=out[..., :h])
    return out


def _lstm_vjp(g, out, xg, hg, state):
    h = xg.shape[-1] // 4
    if isinstance(g, _nd):
        return _lstm_vjp_raw(g, out, state, h)
    c_prev = _cell_state(state, h)
    i, f, gg, o, tc = (_slot(out, k, h) for k in range(2, 7))
    g_h = _slot(g, 0, h)
    gt = _slot(g, 6, h) + g_h * o
    gc = _slot(g, 1, h) + gt * (1 - tc * tc)
    da = cat_(
        len(xg.shape) - 1,
        (_slot(g, 2, h) + gc * gg) * i * (1 - i),
        (_slot(g, 3, h) + gc * c_prev) * f * (1 - f),
        (_slot(g, 4, h) + gc * i) * (1 - gg * gg),
        (_slot(g, 5, h) + g_h * tc) * o * (1 - o),
    )
    dc = gc * f
    if state.shape[-1] == LSTM_SLOTS * h:
        dc = pad_(dc, ((0, 0),) * (len(dc.shape) - 1) + ((h, 5 * h),), 0.0)
    return [da, da, dc]


def _lstm_vjp_raw(g, out, state, h):
    # the same formulas as the recorded path, in few whole-array passes
    c_prev = _cell_state(state, h)
    f = out[..., 3 * h: 4 * h]
    gg = out[..., 4 * h: 5 * h]
    o = out[..., 5 * h: 6 * h]
    tc = out[..., 6 * h:]
    acts = out[..., 2 * h: 6 * h]
    g_h = g[..., :h]
    # gc = g_c + (g_tanh(c) + g_h * o) * (1 - tanh(c)^2)
    gt = g_h * o
    gt += g[..., 6 * h:]
    gc = tc * tc
    xp.subtract(1, gc, out=gc)
    gc *= gt
    gc += g[..., h: 2 * h]
    # upstream of each activation: [gc*g, gc*c_prev, gc*i, g_h*tanh(c)] + their own grads
    da = xp.empty(_xg_shape(out, h), dtype=gc.dtype)
    xp.multiply(gc, gg, out=da[..., :h])
    xp.multiply(gc, c_prev, out=da[..., h: 2 * h])
    xp.multiply(gc, out[..., 2 * h: 3 * h], out=da[..., 2 * h: 3 * h])
    xp.multiply(g_h, tc, out=da[..., 3 * h:])
    da += g[..., 2 * h: 6 * h]
    # times the activation derivatives: s (1 - s) for sigmoids, 1 - g^2 for tanh
    d = xp.subtract(1, acts)
    d *= acts
    dg = d[..., 2 * h: 3 * h]
    xp.multiply(gg, gg, out=dg)
    xp.subtract(1, dg, out=dg)
    da *= d
    if state.shape[-1] == LSTM_SLOTS * h:
        dstate = xp.zeros(state.shape, dtype=gc.dtype)
        xp.multiply(gc, f, out=dstate[..., h: 2 * h])
    else:
        dstate = gc * f
    return [da, da, dstate]


def _xg_shape(out, h: int) -> tuple:
    """The gate shape (*batch, 4 * hidden) matching an LSTM cell output."""
    return out.shape[:-1] + (4 * h,)


lstm_cell.defvjp_all(_lstm_vjp)


# -------------------------------------------------------------------------------- GRU
@primitive(saves=("xg", "hg", "b_hh", "h_prev", "out"))
def gru_cell(xg, hg, b_hh, h_prev):
    """The pointwise GRU step (PyTorch's gate order r, z, n).

    ``r = sigmoid(x_r + h_r)``, ``z = sigmoid(x_z + h_z)``, ``n = tanh(x_n + r * h_n)``,
    ``h = (1 - z) * n + z * h_prev``, where ``h_* = (h_prev @ W_hh^T + b_hh)_*``: the
    reset gate multiplies the hidden projection *with* its bias, so ``b_hh`` comes in
    here rather than folded into ``xg``.

    Args:
        xg: ``x @ W_ih^T + b_ih``, shape (*batch, 3 * hidden).
        hg: ``h_prev @ W_hh^T`` (no bias), same shape.
        b_hh: the hidden bias (3 * hidden,) or None.
        h_prev: the previous hidden state (*batch, hidden).
    """
    h = _check_cell("gru_cell", xg, hg, 3)
    if h_prev.shape != xg.shape[:-1] + (h,):
        raise ValueError(f"gru_cell: h_prev must have shape {xg.shape[:-1] + (h,)}, got "
                         f"{tuple(h_prev.shape)}")
    hb = hg if b_hh is None else hg + b_hh
    rz = xg[..., : 2 * h] + hb[..., : 2 * h]
    rz *= -1
    _sigmoid_inplace(rz)
    n = hb[..., 2 * h:] * rz[..., :h]
    n += xg[..., 2 * h:]
    n = _tanh_raw(n)
    # h = n + z * (h_prev - n)
    out = h_prev - n
    out *= rz[..., h:]
    out += n
    return out


def _gru_vjp(g, out, xg, hg, b_hh, h_prev):
    h = xg.shape[-1] // 3
    if isinstance(g, _nd):
        return _gru_vjp_raw(g, out, xg, hg, b_hh, h_prev, h)
    hb = hg if b_hh is None else hg + b_hh
    r = sigmoid(_gate(xg, 0, 3, h) + _gate(hb, 0, 3, h))
    z = sigmoid(_gate(xg, 1, 3, h) + _gate(hb, 1, 3, h))
    hn = _gate(hb, 2, 3, h)
    n = tanh(_gate(xg, 2, 3, h) + r * hn)
    dn = g * (1 - z) * (1 - n * n)
    dr = dn * hn * r * (1 - r)
    dz = g * (h_prev - n) * z * (1 - z)
    last = xg.ndim - 1
    dxg = cat_(last, dr, dz, dn)
    dhb = cat_(last, dr, dz, dn * r)
    return [dxg, dhb, None if b_hh is None else dhb, g * z]


def _gru_vjp_raw(g, out, xg, hg, b_hh, h_prev, h):
    hb = hg if b_hh is None else hg + b_hh
    rz = xg[..., : 2 * h] + hb[..., : 2 * h]
    rz *= -1
    _sigmoid_inplace(rz)
    r = rz[..., :h]
    z = rz[..., h:]
    hn = hb[..., 2 * h:]
    # recover n from the output: h = n + z (h_prev - n)  =>  n = (h - z h_prev) / (1 - z)
    # is unstable as z -> 1, so recompute it
    n = hn * r
    n += xg[..., 2 * h:]
    n = _tanh_raw(n)
    dxg = xp.empty_like(xg)
    dn = dxg[..., 2 * h:]
    xp.subtract(1, z, out=dn)
    dn *= g
    dn *= 1 - n * n
    dr = dxg[..., :h]
    xp.multiply(dn, hn, out=dr)
    dr *= r
    dr *= 1 - r
    dz = dxg[..., h: 2 * h]
    xp.subtract(h_prev, n, out=dz)
    dz *= g
    dz *= z
    dz *= 1 - z
    dhb = dxg.copy()
    dhb[..., 2 * h:] *= r
    return [dxg, dhb, None if b_hh is None else dhb, g * z]


gru_cell.defvjp_all(_gru_vjp)


# ---------------------------------------------------------- hidden-to-hidden weights
# The hidden GEMM ``h_{t-1} @ W_hh^T`` runs once per step, but its weight gradient
# ``sum_t dgates_t^T h_{t-1}`` is one GEMM over all steps when the per-step gate gradients
# are known together. For LSTM and Elman cells ``dgates_t`` is also the gradient of the
# step's input gates, which :func:`unbind_steps` collects into one (T, B, G) array; so the
# per-step product (:func:`rnn_hh`) returns no weight gradient, and
# :func:`rnn_weight_tap`, an identity on the input gates recorded before the loop, turns
# their gradient into the weight gradient with one GEMM. Measured on the LSTM benchmark
# (B=32, H=128, T=50): it replaces 50 small GEMMs and 50 gradient accumulations.
class StepInputs:
    """The hidden states each step multiplies by ``W_hh^T``, filled in during the loop."""

    __slots__ = ("items",)

    def __init__(self, steps: int) -> None:
        self.items: list = [None] * steps

    def stacked(self, raw: bool):
        """The states as one (T, *batch, H) array (raw) or tensor (recorded)."""
        if raw:
            return xp.stack([h._data if isinstance(h, Tensor) else h for h in self.items])
        shape = (len(self.items),) + tuple(self.items[0].shape)
        return reshape(cat_(0, *self.items), shape)


@primitive(saves=("w_t",), nin=2)
def rnn_hh(h, w_t):
    """``h @ w_t`` (``w_t = W_hh^T``) whose weight gradient comes from
    :func:`rnn_weight_tap`; only ``h`` gets a gradient here (the VJP still uses ``w_t``
    as a tensor, so second derivatives through ``h``'s gradient are complete)."""
    return xp.matmul(h, w_t)


rnn_hh.defvjp(lambda g, out, h, w_t: matmul(g, permute(w_t, (1, 0))),
              lambda g, out, h, w_t: None)


@primitive(saves=("xg", "hs"), view=True)
def rnn_weight_tap(xg, w_hh, hs):
    """Identity on ``xg`` (T, *batch, G); backward adds ``W_hh``'s gradient
    ``g^T @ hs`` (``hs`` a :class:`StepInputs`, complete by the time backward runs).

    ``xg`` is saved only so that the engine frees this node's arguments after backward,
    which drops the step states ``hs`` holds (they reference the graph: a cycle)."""
    return xg


def _tap_vjp(g, out, xg, w_hh, hs):
    hp = hs.stacked(isinstance(g, _nd))
    g2 = reshape(g, (-1, g.shape[-1]))
    hp2 = reshape(hp, (-1, hp.shape[-1]))
    return [g, matmul(permute(g2, (1, 0)), hp2), None]


rnn_weight_tap.defvjp_all(_tap_vjp)


# ------------------------------------------------------------------------ time steps
class _UnbindSteps(Function):
    """Split along dim 0 into views; backward stacks the step gradients with one cat."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = tuple(x.shape)
        return tuple(getitem(x, (t,)) for t in range(x.shape[0]))

    @staticmethod
    def backward(ctx, *grads):
        flat = cat_(0, *grads)
        return reshape(flat, ctx.shape)


def unbind_steps(x: Tensor) -> tuple:
    """``x.unbind(0)`` for a sequence: one node, and a backward linear in the length.

    >>> import chainrule as cr
    >>> xs = unbind_steps(cr.ones(3, 2, requires_grad=True))
    >>> len(xs), xs[0].shape
    (3, (2,))
    """
    if not (isinstance(x, Tensor) and x.requires_grad):
        return tuple(getitem(x, (t,)) for t in range(x.shape[0]))
    if x.shape[0] == 1:
        return (getitem(x, (0,)),)
    return _UnbindSteps.apply(x)
