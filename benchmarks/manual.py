"""Reference rows with no engine: training steps whose backward is written out by hand.

Each factory here takes the same NumPy weights as the other libraries of its workload and
returns a zero-argument ``step`` that runs one full training step (forward, mean
cross-entropy, hand-written backward, optimizer update) and returns the loss computed
before the update as a Python float. Everything is float32 NumPy; no autodiff library is
involved. The code is written for speed the way backprop is usually hand-coded: every
buffer is allocated once when the step is built, products go straight into them with
``out=``, elementwise work runs in place, one GEMM per product, and the optimizer updates
the weights in place with PyTorch's SGD rule.

- :func:`mlp_step_factory`: ``Linear`` layers with ReLU between them (the ``mlp`` and
  ``deep`` workloads).
- :func:`lstm_step_factory`: one LSTM layer, the last hidden state through a ``Linear``
  head (the ``lstm`` workload). The input projection of all time steps is one GEMM
  before the loop, and the gradients of both gate matrices are one GEMM each after the
  backward loop, over all time steps at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_F32 = np.float32


def _softmax_xent(logits: np.ndarray, y: np.ndarray, rows: np.ndarray) -> float:
    """Mean cross-entropy of ``logits`` (batch, classes) against integer labels ``y``.

    Stable log-sum-exp form. ``logits`` is overwritten with the loss's gradient with
    respect to the logits, ``(softmax - onehot) / batch``. Returns the loss.
    """
    batch = logits.shape[0]
    logits -= logits.max(axis=1, keepdims=True)
    picked = logits[rows, y]
    np.exp(logits, out=logits)
    total = logits.sum(axis=1)
    picked -= np.log(total)
    loss = -float(picked.sum()) / batch
    total *= batch
    np.reciprocal(total, out=total)
    logits *= total[:, None]
    logits[rows, y] -= _F32(1.0 / batch)
    return loss


class _SGD:
    """PyTorch's SGD update in place: with momentum ``m`` the buffer starts as the first
    gradient and then becomes ``m * buf + grad``; the parameter moves by ``-lr * buf``
    (``-lr * grad`` without momentum). Gradients are used as scratch space."""

    def __init__(self, params: list[np.ndarray], lr: float, momentum: float):
        self.params = params
        self.lr = _F32(lr)
        self.momentum = _F32(momentum)
        self.bufs = [np.empty_like(p) for p in params] if momentum else None
        self.started = False

    def step(self, grads: list[np.ndarray]) -> None:
        """Apply one update from ``grads`` (one array per parameter, overwritten)."""
        if self.bufs is None:
            for p, g in zip(self.params, grads):
                g *= self.lr
                p -= g
            return
        for p, g, buf in zip(self.params, grads, self.bufs):
            if self.started:
                buf *= self.momentum
                buf += g
            else:
                np.copyto(buf, g)
            np.multiply(buf, self.lr, out=g)
            p -= g
        self.started = True


def mlp_step_factory(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, lr: float,
                     momentum: float) -> Callable[[], float]:
    """A hand-written MLP training step on copies of ``weights``.

    ``weights`` is ``[W0, b0, W1, b1, ...]`` in PyTorch's layout (``W`` is (out, in)),
    ReLU between the layers, none after the last; ``x`` is (batch, in) float32 and ``y``
    the integer labels. The step is forward, mean cross-entropy, backward and PyTorch's
    SGD with ``momentum`` at ``lr``; it returns the loss before the update.
    """
    params = [np.array(w, dtype=_F32) for w in weights]
    ws, bs = params[0::2], params[1::2]
    n = len(ws)
    x = np.ascontiguousarray(x, dtype=_F32)
    y = np.asarray(y, dtype=np.intp)
    batch = x.shape[0]
    rows = np.arange(batch)
    acts = [x] + [np.empty((batch, w.shape[0]), _F32) for w in ws]  # layer outputs
    deltas = [None] + [np.empty((batch, w.shape[1]), _F32) for w in ws[1:]]  # d acts[i]
    grads = [np.empty_like(p) for p in params]
    gws, gbs = grads[0::2], grads[1::2]
    opt = _SGD(params, lr, momentum)

    def step() -> float:
        for i in range(n):
            out = acts[i + 1]
            np.matmul(acts[i], ws[i].T, out=out)
            out += bs[i]
            if i < n - 1:
                np.maximum(out, 0, out=out)
        loss = _softmax_xent(acts[n], y, rows)  # acts[n] now holds d loss / d logits
        d = acts[n]
        for i in range(n - 1, -1, -1):
            np.matmul(d.T, acts[i], out=gws[i])
            np.add.reduce(d, axis=0, out=gbs[i])
            if i:
                dh = deltas[i]
                np.matmul(d, ws[i], out=dh)
                np.multiply(dh, acts[i] > 0, out=dh)  # through the ReLU
                d = dh
        opt.step(grads)
        return loss

    return step


def lstm_step_factory(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, lr: float,
                      momentum: float = 0.0) -> Callable[[], float]:
    """A hand-written LSTM training step on copies of ``weights``.

    ``weights`` is ``[weight_ih, weight_hh, bias_ih, bias_hh, head.weight, head.bias]``
    in PyTorch's layout (gate rows in the order i, f, g, o); ``x`` is (seq, batch, n_in)
    float32, the initial state is zero, and the last hidden state goes through the head
    into mean cross-entropy against the integer labels ``y``. The update is PyTorch's
    SGD with ``momentum`` at ``lr``; the step returns the loss before the update.

    Internally the gate rows are held in the order i, f, o, g (rows permuted once, here),
    so the three sigmoid gates are one contiguous block; the loss and the update are the
    same as in PyTorch's order.
    """
    w_ih, w_hh, b_ih, b_hh, w_o, b_o = (np.array(w, dtype=_F32) for w in weights)
    hid = w_hh.shape[1]
    perm = np.r_[0:2 * hid, 3 * hid:4 * hid, 2 * hid:3 * hid]  # i, f, g, o -> i, f, o, g
    w_ih, w_hh = np.ascontiguousarray(w_ih[perm]), np.ascontiguousarray(w_hh[perm])
    b_ih, b_hh = b_ih[perm], b_hh[perm]
    params = [w_ih, w_hh, b_ih, b_hh, w_o, b_o]
    x = np.ascontiguousarray(x, dtype=_F32)
    y = np.asarray(y, dtype=np.intp)
    seq, batch, n_in = x.shape
    rows = np.arange(batch)
    x2 = x.reshape(seq * batch, n_in)
    s3 = 3 * hid  # sigmoid gates [0, 3H), tanh gate [3H, 4H)

    gates = np.empty((seq, batch, 4 * hid), _F32)  # activated gates i, f, o, g
    cells = np.empty((seq, batch, hid), _F32)
    tcells = np.empty((seq, batch, hid), _F32)  # tanh(c_t)
    hs = np.empty((seq, batch, hid), _F32)
    dgates = np.empty((seq, batch, 4 * hid), _F32)  # d loss / d gate pre-activations
    bias = np.empty(4 * hid, _F32)
    zh = np.empty((batch, 4 * hid), _F32)
    tmp = np.empty((batch, hid), _F32)
    tmp3 = np.empty((batch, s3), _F32)
    dh = np.empty((batch, hid), _F32)
    dc = np.empty((batch, hid), _F32)
    logits = np.empty((batch, w_o.shape[0]), _F32)
    grads = [np.empty_like(p) for p in params]
    g_ih, g_hh, gb_ih, gb_hh, g_o, gb_o = grads
    half = _F32(0.5)
    opt = _SGD(params, lr, momentum)

    def step() -> float:
        # forward: the input projection of every time step in one GEMM
        np.add(b_ih, b_hh, out=bias)
        np.matmul(x2, w_ih.T, out=gates.reshape(seq * batch, 4 * hid))
        np.add(gates, bias, out=gates)
        for t in range(seq):
            z = gates[t]
            if t:
                np.matmul(hs[t - 1], w_hh.T, out=zh)
                z += zh
            sg = z[:, :s3]
            sg *= half
            np.tanh(sg, out=sg)
            sg *= half
            sg += half
            gg = z[:, s3:]
            np.tanh(gg, out=gg)
            c = cells[t]
            np.multiply(z[:, :hid], gg, out=c)  # i * g
            if t:
                np.multiply(z[:, hid:2 * hid], cells[t - 1], out=tmp)
                c += tmp
            np.tanh(c, out=tcells[t])
            np.multiply(z[:, 2 * hid:s3], tcells[t], out=hs[t])
        np.matmul(hs[-1], w_o.T, out=logits)
        np.add(logits, b_o, out=logits)
        loss = _softmax_xent(logits, y, rows)  # logits now hold d loss / d logits

        # backward through the head, then through time
        np.matmul(logits.T, hs[-1], out=g_o)
        np.add.reduce(logits, axis=0, out=gb_o)
        np.matmul(logits, w_o, out=dh)
        dc.fill(0)
        for t in range(seq - 1, -1, -1):
            z, dz = gates[t], dgates[t]
            i, f, o, g = (z[:, k * hid:(k + 1) * hid] for k in range(4))
            tc = tcells[t]
            np.multiply(dh, tc, out=dz[:, 2 * hid:s3])  # d o
            np.multiply(tc, tc, out=tmp)  # dc += dh * o * (1 - tanh(c)^2)
            np.subtract(1, tmp, out=tmp)
            np.multiply(tmp, o, out=tmp)
            np.multiply(tmp, dh, out=tmp)
            np.add(dc, tmp, out=dc)
            np.multiply(dc, g, out=dz[:, :hid])  # d i
            if t:
                np.multiply(dc, cells[t - 1], out=dz[:, hid:2 * hid])  # d f
            else:
                dz[:, hid:2 * hid] = 0
            np.multiply(dc, i, out=dz[:, s3:])  # d g
            sg = z[:, :s3]  # through the sigmoids: s * (1 - s)
            np.multiply(sg, sg, out=tmp3)
            np.subtract(sg, tmp3, out=tmp3)
            dz[:, :s3] *= tmp3
            np.multiply(g, g, out=tmp)  # through the tanh: 1 - g^2
            np.subtract(1, tmp, out=tmp)
            dz[:, s3:] *= tmp
            if t:
                np.multiply(dc, f, out=dc)
                np.matmul(dz, w_hh, out=dh)
        dz2 = dgates.reshape(seq * batch, 4 * hid)
        np.matmul(dz2.T, x2, out=g_ih)
        np.matmul(dz2[batch:].T, hs[:-1].reshape((seq - 1) * batch, hid), out=g_hh)
        np.add.reduce(dz2, axis=0, out=gb_ih)
        np.copyto(gb_hh, gb_ih)
        opt.step(grads)
        return loss

    return step
