"""Recurrent layers as functions: single cells and whole multi-layer sequences.

The names and signatures follow PyTorch's ``torch.lstm_cell`` / ``torch.lstm`` family
(``params`` is the flat weight list ``w_ih, w_hh[, b_ih, b_hh][, w_hr]`` per layer and
direction, in the order ``nn.LSTM._flat_weights`` holds them).

How a layer runs: the input-to-hidden projection of every time step is ONE matmul before
the time loop; each step then records a handful of nodes (LSTM: the fused step with its
hidden GEMM, and the slice of ``h``; GRU / Elman: the hidden GEMM and a fused or pointwise
cell); the step outputs are joined by one ``cat``, and ``W_hh``'s gradient is one GEMM
over all steps (``rnn_weight_tap``).

>>> import chainrule as cr
>>> x = cr.randn(5, 2, 3)
>>> w_ih, w_hh = cr.randn(16, 3), cr.randn(16, 4)
>>> h0 = c0 = cr.zeros(1, 2, 4)
>>> out, h_n, c_n = lstm(x, (h0, c0), [w_ih, w_hh], False, 1, 0.0, False, False, False)
>>> out.shape, h_n.shape
((5, 2, 4), (1, 2, 4))
"""

from __future__ import annotations

from collections.abc import Sequence

from ...ops import nn as P
from ...ops.elementwise import relu, tanh
from ...ops.indexing import getitem
from ...ops.linalg import matmul
from ...ops.shape import cat_, permute, reshape
from ...tensor import Tensor

__all__ = [
    "gru",
    "gru_cell",
    "lstm",
    "lstm_cell",
    "rnn_relu",
    "rnn_relu_cell",
    "rnn_tanh",
    "rnn_tanh_cell",
]


def _t(w):
    return permute(w, (1, 0))


def _proj(x, w, b):
    """``x @ w^T + b`` over the last dimension, one GEMM for all leading dims."""
    lead = tuple(x.shape[:-1])
    if len(lead) != 1:
        x = reshape(x, (_prod(lead), x.shape[-1]))
    y = matmul(x, _t(w))
    if b is not None:
        y = y + b
    if len(lead) != 1:
        y = reshape(y, lead + (y.shape[-1],))
    return y


def _prod(s) -> int:
    n = 1
    for v in s:
        n *= v
    return n


# ------------------------------------------------------------------------------ cells
def rnn_tanh_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor,
                  b_ih: Tensor | None = None, b_hh: Tensor | None = None) -> Tensor:
    """One Elman step: ``tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    return tanh(_proj(input, w_ih, b_ih) + _proj(hx, w_hh, b_hh))


def rnn_relu_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor,
                  b_ih: Tensor | None = None, b_hh: Tensor | None = None) -> Tensor:
    """One Elman step with ReLU: ``relu(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    return relu(_proj(input, w_ih, b_ih) + _proj(hx, w_hh, b_hh))


def lstm_cell(input: Tensor, hx: Sequence[Tensor], w_ih: Tensor, w_hh: Tensor,
              b_ih: Tensor | None = None, b_hh: Tensor | None = None) -> tuple:
    """One LSTM step; ``hx = (h, c)``; returns ``(h', c')`` (gate order i, f, g, o)."""
    h, c = hx
    xg = _proj(input, w_ih, _sum_bias(b_ih, b_hh))
    out = P.lstm_cell(xg, _proj(h, w_hh, None), c)
    return getitem(out, (0,)), getitem(out, (1,))


def gru_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor,
             b_ih: Tensor | None = None, b_hh: Tensor | None = None) -> Tensor:
    """One GRU step (gate order r, z, n; ``r`` multiplies ``h W_hn^T + b_hn``)."""
    return P.gru_cell(_proj(input, w_ih, b_ih), _proj(hx, w_hh, None), b_hh, hx)


def _sum_bias(b_ih, b_hh):
    if b_ih is None:
        return b_hh
    if b_hh is None:
        return b_ih
    return b_ih + b_hh


# -------------------------------------------------------------------- one direction
def _run(mode: str, x, h0, c0, w: tuple, reverse: bool):
    """One layer, one direction over ``x`` (T, B, I); returns (output, h_T, c_T)."""
    w_ih, w_hh, b_ih, b_hh, w_hr = w
    steps = x.shape[0]
    whT = _t(w_hh)
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    outs = [None] * steps
    h = h0
    c = None
    if mode == "GRU":
        xs = P.unbind_steps(_proj(x, w_ih, b_ih))
        for t in order:
            h = P.gru_cell(xs[t], matmul(h, whT), b_hh, h)
            outs[t] = h
    else:
        # W_hh's gradient: one GEMM in rnn_weight_tap's backward instead of one per step
        held = P.StepInputs(steps)
        xg = P.rnn_weight_tap(_proj(x, w_ih, _sum_bias(b_ih, b_hh)), w_hh, held)
        xs = P.unbind_steps(xg)
        hold = held.items
        hh = P.rnn_hh
        if mode == "LSTM" and w_hr is None:
            # the fused step, two nodes per time step (see chainrule.ops.nn.lstm_step)
            held.slot0 = True
            state = _stack([h0, c0])
            for t in order:
                hold[t] = state
                state = P.lstm_step(xs[t], state, whT)
                outs[t] = getitem(state, (0,))
            h = outs[order[-1]]
            c = getitem(state, (1,))
        elif mode == "LSTM":
            whrT = _t(w_hr)
            state = c0
            for t in order:
                hold[t] = h
                state = P.lstm_cell(xs[t], hh(h, whT), state)
                h = matmul(getitem(state, (0,)), whrT)
                outs[t] = h
            c = getitem(state, (1,))
        else:
            act = tanh if mode == "RNN_TANH" else relu
            for t in order:
                hold[t] = h
                h = act(xs[t] + hh(h, whT))
                outs[t] = h
    out = reshape(cat_(0, *outs), (steps,) + tuple(outs[0].shape))
    return out, h, c


_NAMES = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu"}


def _stack(ts: list):
    return reshape(cat_(0, *ts), (len(ts),) + tuple(ts[0].shape))


def _layers(mode: str, input, hx, cx, params, has_biases: bool, num_layers: int,
            dropout: float, train: bool, bidirectional: bool, batch_first: bool):
    dirs = 2 if bidirectional else 1
    per = 4 if has_biases else 2
    proj = mode == "LSTM" and len(params) == num_layers * dirs * (per + 1)
    if proj:
        per += 1
    if len(params) != num_layers * dirs * per:
        raise ValueError(
            f"{_NAMES[mode]}: expected {num_layers * dirs * per} weight tensors for "
            f"{num_layers} layer(s), {dirs} direction(s), has_biases={has_biases}; got "
            f"{len(params)}"
        )
    if input.shape[1 if batch_first else 0] == 0:
        raise ValueError(f"{_NAMES[mode]}: the input sequence is empty (length 0)")
    x = permute(input, (1, 0, 2)) if batch_first else input
    hs = []
    cs = []
    for layer in range(num_layers):
        if layer > 0 and dropout > 0 and train:
            from .dropout import dropout as dropout_fn

            x = dropout_fn(x, p=dropout, training=True)
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            ws = params[k * per: (k + 1) * per]
            w_ih, w_hh = ws[0], ws[1]
            b_ih, b_hh = (ws[2], ws[3]) if has_biases else (None, None)
            w_hr = ws[-1] if proj else None
            h0 = getitem(hx, (k,))
            c0 = None if cx is None else getitem(cx, (k,))
            out, h, c = _run(mode, x, h0, c0, (w_ih, w_hh, b_ih, b_hh, w_hr), d == 1)
            outs.append(out)
            hs.append(h)
            cs.append(c)
        x = outs[0] if dirs == 1 else cat_(2, *outs)
    if batch_first:
        x = permute(x, (1, 0, 2))
    return x, _stack(hs), (_stack(cs) if mode == "LSTM" else None)


def lstm(input: Tensor, hx: Sequence[Tensor], params: Sequence[Tensor], has_biases: bool,
         num_layers: int, dropout: float, train: bool, bidirectional: bool,
         batch_first: bool) -> tuple:
    """A multi-layer LSTM over a batched sequence; returns ``(output, h_n, c_n)``.

    Args:
        input: (T, B, I), or (B, T, I) when ``batch_first``.
        hx: ``(h_0, c_0)``, each (num_layers * directions, B, hidden) (``h_0`` has the
            projection size when ``params`` carries ``w_hr`` weights).
        params: per layer and direction ``w_ih, w_hh[, b_ih, b_hh][, w_hr]``.
        has_biases, num_layers, dropout, train, bidirectional, batch_first: as in
            :class:`chainrule.nn.LSTM`; dropout applies between layers when ``train``.
    """
    h0, c0 = hx
    return _layers("LSTM", input, h0, c0, params, has_biases, num_layers, dropout, train,
                   bidirectional, batch_first)


def gru(input: Tensor, hx: Tensor, params: Sequence[Tensor], has_biases: bool,
        num_layers: int, dropout: float, train: bool, bidirectional: bool,
        batch_first: bool) -> tuple:
    """A multi-layer GRU; returns ``(output, h_n)`` (arguments as in :func:`lstm`)."""
    out, h, _ = _layers("GRU", input, hx, None, params, has_biases, num_layers, dropout,
                        train, bidirectional, batch_first)
    return out, h


def rnn_tanh(input: Tensor, hx: Tensor, params: Sequence[Tensor], has_biases: bool,
             num_layers: int, dropout: float, train: bool, bidirectional: bool,
             batch_first: bool) -> tuple:
    """A multi-layer Elman RNN with tanh; returns ``(output, h_n)``."""
    out, h, _ = _layers("RNN_TANH", input, hx, None, params, has_biases, num_layers,
                        dropout, train, bidirectional, batch_first)
    return out, h


def rnn_relu(input: Tensor, hx: Tensor, params: Sequence[Tensor], has_biases: bool,
             num_layers: int, dropout: float, train: bool, bidirectional: bool,
             batch_first: bool) -> tuple:
    """A multi-layer Elman RNN with ReLU; returns ``(output, h_n)``."""
    out, h, _ = _layers("RNN_RELU", input, hx, None, params, has_biases, num_layers,
                        dropout, train, bidirectional, batch_first)
    return out, h
