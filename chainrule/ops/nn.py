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

Also here, for the time loop of ``chainrule.nn.functional.rnn``: :func:`unbind_steps`,
the time-step split whose backward stacks once instead of scattering each step's gradient
into a full-size buffer (which would cost O(T^2)), and :func:`rnn_hh` /
:func:`rnn_weight_tap`, which give ``W_hh`` its gradient with one GEMM over all steps.
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
# values backward needs share one array ``out`` of shape (7, *batch, hidden), slot-major:
# [h, c, i, f, g, o, tanh(c)]. One primitive with a stacked output beats two primitives
# sharing work (two nodes, the activations computed twice), and keeping the activations in
# ``out`` spares backward the transcendentals. Slot-major keeps every slot contiguous:
# NumPy's ufuncs run ~2x slower on row-strided slices (exp loses its SIMD loop), measured
# 78 us vs 38 us for the gate activations at batch 32, hidden 128; the (*batch, 4H) ->
# (4, *batch, H) transposition happens inside the first add (and the last multiply of
# backward). ``h = out[0]`` is a contiguous view for the next step's GEMM, and the next
# cell takes ``out`` itself as its state (it reads only ``c``), so a step records three
# nodes: the hidden GEMM, the cell, and ``h``.
#
# NOTE: sigmoid is computed through exp: NumPy's float32 tanh runs slower than its exp
# here. ``1 / (1 + exp(-x))`` overflows to inf for x < -88 (float32) and gives the right
# limit 0, so the overflow warning is silenced; the tanh gate uses 2 sigmoid(2x) - 1.
LSTM_SLOTS = 7


def _sigmoid_inplace(a):
    """``a = 1 / (1 + exp(a))`` in place: the sigmoid of ``-a``."""
    with np.errstate(over="ignore"):
        xp.exp(a, out=a)
    a += 1
    xp.reciprocal(a, out=a)
    return a


def _gates_view(x, h: int):
    """(*batch, 4H) seen as (4, *batch, H) (a strided view, raw arrays only)."""
    v = x.reshape(x.shape[:-1] + (4, h))
    n = v.ndim
    if n == 3:
        return v.transpose(1, 0, 2)
    return v.transpose((n - 2,) + tuple(range(n - 2)) + (n - 1,))


def _is_stacked(state, xg) -> bool:
    return len(state.shape) == len(xg.shape) + 1


@primitive(saves=("state", "out"))
def lstm_cell(xg, hg, state):
    """The pointwise LSTM step on gate pre-activations (PyTorch's gate order i, f, g, o).

    Args:
        xg: input gates ``x @ W_ih^T + b_ih (+ b_hh)``, shape (*batch, 4 * hidden).
        hg: hidden gates ``h_prev @ W_hh^T``, same shape.
        state: ``c_prev`` (*batch, hidden), or the previous step's output (its slot 1 is
            the cell state).

    Returns:
        shape (7, *batch, hidden): ``[h, c, i, f, g, o, tanh(c)]`` with
        ``c = f * c_prev + i * g`` and ``h = o * tanh(c)``; slots 0 and 1 are the results,
        the others the gate activations backward reuses.
    """
    h = _check_cell("lstm_cell", xg, hg, 4)
    c_prev = state[1] if _is_stacked(state, xg) else state
    if c_prev.shape != xg.shape[:-1] + (h,):
        raise ValueError(f"lstm_cell: the state must be c_prev of shape "
                         f"{xg.shape[:-1] + (h,)} or a previous output, got "
                         f"{tuple(state.shape)}")
    out = xp.empty((LSTM_SLOTS,) + c_prev.shape, dtype=xp.result_type(xg, hg))
    a = out[2:6]
    xp.add(_gates_view(xg, h), _gates_view(hg, h), out=a)
    # a = -x, and -2x for the tanh gate: then sigmoid(-a) everywhere
    xp.negative(a, out=a)
    gg = out[4]
    gg *= 2
    _sigmoid_inplace(a)
    gg *= 2
    gg -= 1
    c = out[1]
    tc = out[6]
    xp.multiply(out[3], c_prev, out=c)
    xp.multiply(out[2], gg, out=tc)
    c += tc
    xp.tanh(c, out=tc)
    xp.multiply(out[5], tc, out=out[0])
    return out


def _lstm_vjp(g, out, xg, hg, state):
    h = xg.shape[-1] // 4
    if isinstance(g, _nd):
        return _lstm_vjp_raw(g, out, xg, state, h)
    stacked = _is_stacked(state, xg)
    c_prev = getitem(state, (1,)) if stacked else state
    i, f, gg, o, tc = (getitem(out, (k,)) for k in range(2, 7))
    g_h = getitem(g, (0,))
    gt = getitem(g, (6,)) + g_h * o
    gc = getitem(g, (1,)) + gt * (1 - tc * tc)
    da = cat_(
        len(xg.shape) - 1,
        (getitem(g, (2,)) + gc * gg) * i * (1 - i),
        (getitem(g, (3,)) + gc * c_prev) * f * (1 - f),
        (getitem(g, (4,)) + gc * i) * (1 - gg * gg),
        (getitem(g, (5,)) + g_h * tc) * o * (1 - o),
    )
    dc = gc * f
    if stacked:
        pad = ((1, state.shape[0] - 2),) + ((0, 0),) * len(dc.shape)
        dc = pad_(reshape(dc, (1,) + tuple(dc.shape)), pad, 0.0)
    return [da, da, dc]


def _lstm_vjp_raw(g, out, xg, state, h):
    # the same formulas as the recorded path, in few whole-array passes
    stacked = _is_stacked(state, xg)
    c_prev = state[1] if stacked else state
    f, gg, o, tc = out[3], out[4], out[5], out[6]
    acts = out[2:6]
    g_h = g[0]
    # gc = g_c + (g_tanh(c) + g_h * o) * (1 - tanh(c)^2)
    gt = g_h * o
    gt += g[6]
    gc = tc * tc
    xp.subtract(1, gc, out=gc)
    gc *= gt
    gc += g[1]
    # upstream of each activation: [gc*g, gc*c_prev, gc*i, g_h*tanh(c)] + their own grads
    m = xp.empty(acts.shape, dtype=gc.dtype)
    xp.multiply(gc, gg, out=m[0])
    xp.multiply(gc, c_prev, out=m[1])
    xp.multiply(gc, out[2], out=m[2])
    xp.multiply(g_h, tc, out=m[3])
    m += g[2:6]
    # times the activation derivatives: s (1 - s) for sigmoids, 1 - g^2 for tanh
    d = xp.subtract(1, acts)
    d *= acts
    xp.multiply(gg, gg, out=d[2])
    xp.subtract(1, d[2], out=d[2])
    da = xp.empty(xg.shape, dtype=gc.dtype)
    xp.multiply(m, d, out=_gates_view(da, h))
    if stacked:
        dstate = xp.zeros(state.shape, dtype=gc.dtype)
        xp.multiply(gc, f, out=dstate[1])
    else:
        dstate = gc * f
    return [da, da, dstate]


lstm_cell.defvjp_all(_lstm_vjp)


# A layer step with the hidden GEMM inside the cell: the state (stacked, slot 0 = h, slot
# 1 = c) feeds both the GEMM and the cell, so a step records two nodes instead of three
# (no separate GEMM node), and backward writes ``dh`` straight into the state gradient
# instead of scattering it into a zero buffer and adding. Measured in one process, CPU
# time, 80 interleaved samples of a 50-step LSTM(32, 128) forward + backward: 8% faster
# (min), 10% (median). ``W_hh`` gets its gradient from rnn_weight_tap.
@primitive(saves=("state", "w_t", "out"))
def lstm_step(xg, state, w_t):
    """``lstm_cell(xg, state[0] @ w_t, state)``: one step of an LSTM layer.

    Args:
        xg: input gates (*batch, 4 * hidden), biases included.
        state: (k, *batch, hidden) with ``h`` in slot 0 and ``c`` in slot 1: ``[h0, c0]``
            stacked for the first step, then the previous step's output (k = 7).
        w_t: ``W_hh^T`` (hidden, 4 * hidden); its gradient comes from
            :func:`rnn_weight_tap` (none is returned here).
    """
    if len(state.shape) != len(xg.shape) + 1 or state.shape[0] < 2:
        raise ValueError(f"lstm_step: the state must stack h and c as (2 or 7, *batch, "
                         f"hidden), got {tuple(state.shape)}")
    return lstm_cell.prim.fwd(xg, xp.matmul(state[0], w_t), state)


def _lstm_step_vjp(g, out, xg, state, w_t):
    h = xg.shape[-1] // 4
    if isinstance(g, _nd):
        da, _, dstate = _lstm_vjp_raw(g, out, xg, state, h)
        xp.matmul(da, w_t.T, out=dstate[0])
        return [da, dstate, None]
    da, _, dstate = _lstm_vjp(g, out, xg, None, state)
    dh = matmul(da, permute(w_t, (1, 0)))
    pad = ((0, state.shape[0] - 1),) + ((0, 0),) * len(dh.shape)
    dstate = dstate + pad_(reshape(dh, (1,) + tuple(dh.shape)), pad, 0.0)
    return [da, dstate, None]


lstm_step.defvjp_all(_lstm_step_vjp)


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
    xp.negative(rz, out=rz)
    _sigmoid_inplace(rz)
    n = hb[..., 2 * h:] * rz[..., :h]
    n += xg[..., 2 * h:]
    xp.tanh(n, out=n)
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
    xp.negative(rz, out=rz)
    _sigmoid_inplace(rz)
    r = rz[..., :h]
    z = rz[..., h:]
    hn = hb[..., 2 * h:]
    # recover n from the output: h = n + z (h_prev - n)  =>  n = (h - z h_prev) / (1 - z)
    # is unstable as z -> 1, so recompute it
    n = hn * r
    n += xg[..., 2 * h:]
    xp.tanh(n, out=n)
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
    """The hidden states each step multiplies by ``W_hh^T``, filled in during the loop.

    Args:
        steps: the sequence length.
        slot0: the items are stacked LSTM states whose slot 0 is ``h`` (else ``h`` itself).
    """

    __slots__ = ("items", "slot0")

    def __init__(self, steps: int, slot0: bool = False) -> None:
        self.items: list = [None] * steps
        self.slot0 = slot0

    def stacked(self, raw: bool):
        """The states as one (T, *batch, H) array (raw) or tensor (recorded)."""
        if raw:
            arrs = [h._data if isinstance(h, Tensor) else h for h in self.items]
            return xp.stack([a[0] for a in arrs] if self.slot0 else arrs)
        hs = [getitem(h, (0,)) for h in self.items] if self.slot0 else self.items
        shape = (len(hs),) + tuple(hs[0].shape)
        return reshape(cat_(0, *hs), shape)


@primitive(saves=("w_t",), nin=2)
def rnn_hh(h, w_t):
    """``h @ w_t`` (``w_t = W_hh^T``) whose weight gradient comes from
    :func:`rnn_weight_tap`; only ``h`` gets a gradient here (the VJP still uses ``w_t``
    as a tensor, so second derivatives through ``h``'s gradient are complete)."""
    return xp.matmul(h, w_t)


def _rnn_hh_vjp_h(g, out, h, w_t):
    if isinstance(g, _nd):
        return xp.matmul(g, w_t.T)
    return matmul(g, permute(w_t, (1, 0)))


rnn_hh.defvjp(_rnn_hh_vjp_h, lambda g, out, h, w_t: None)


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
