"""Fused recurrent primitives: forward against NumPy, gradcheck and gradgradcheck."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import gradcheck, gradgradcheck
from chainrule.ops import nn as P


def _t(*shape, scale=1.0):
    return (cr.randn(*shape, dtype=cr.float64) * scale).requires_grad_()


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _lstm_ref(xg, hg, c_prev):
    a = xg + hg
    i, f, g, o = np.split(a, 4, axis=-1)
    i, f, g, o = _sig(i), _sig(f), np.tanh(g), _sig(o)
    c = f * c_prev + i * g
    return o * np.tanh(c), c, (i, f, g, o)


def _gru_ref(xg, hg, b_hh, h_prev):
    hb = hg if b_hh is None else hg + b_hh
    xr, xz, xn = np.split(xg, 3, axis=-1)
    hr, hz, hn = np.split(hb, 3, axis=-1)
    r, z = _sig(xr + hr), _sig(xz + hz)
    n = np.tanh(xn + r * hn)
    return (1 - z) * n + z * h_prev


@pytest.mark.parametrize("batch", [(3,), (2, 2), ()])
def test_lstm_cell_forward_matches_reference(batch):
    h = 4
    xg, hg = (np.random.randn(*batch, 4 * h) for _ in range(2))
    c_prev = np.random.randn(*batch, h)
    out = P.lstm_cell(cr.tensor(xg), cr.tensor(hg), cr.tensor(c_prev))
    assert out.shape == (P.LSTM_SLOTS, *batch, h)
    hr, cr_, acts = _lstm_ref(xg, hg, c_prev)
    ref = np.stack([hr, cr_, *acts, np.tanh(cr_)])
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)
    # a previous output works as the state: only its c slot is read
    out2 = P.lstm_cell(cr.tensor(xg), cr.tensor(hg), out)
    np.testing.assert_allclose(out2.numpy()[1], _lstm_ref(xg, hg, cr_)[1], atol=1e-12)


def test_lstm_cell_float32_saturates_without_warnings():
    # pre-activations of +-1000 overflow exp; results must be the exact limits
    xg = cr.tensor(np.array([[1000.0, -1000.0, 1000.0, -1000.0]], dtype=np.float32))
    out = P.lstm_cell(xg, cr.zeros(1, 4), cr.ones(1, 1))
    i, f, g, o = out.numpy()[2:6, 0, 0]
    assert (i, f, g, o) == (1.0, 0.0, 1.0, 0.0)
    assert out.numpy()[1, 0, 0] == 1.0
    assert np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("slots", [1, 2, P.LSTM_SLOTS])
def test_lstm_cell_gradcheck_and_gradgradcheck(slots):
    xg, hg = _t(2, 12), _t(2, 12)
    st = _t(2, 3) if slots == 1 else _t(slots, 2, 3)
    # weight every output slot, so the activation slots' VJP terms are checked too
    w = cr.randn(P.LSTM_SLOTS, 2, 3, dtype=cr.float64)

    def f(a, b, s):
        return (P.lstm_cell(a, b, s) * w).sum()

    assert gradcheck(P.lstm_cell, (xg, hg, st))
    assert gradgradcheck(P.lstm_cell, (xg, hg, st))
    assert gradgradcheck(f, (xg, hg, st))


def test_lstm_cell_chained_steps_gradgradcheck():
    xg, hg, st = _t(2, 8), _t(2, 8), _t(2, 2)

    def two_steps(a, b, s):
        return P.lstm_cell(a, b * 2, P.lstm_cell(a, b, s))

    assert gradcheck(two_steps, (xg, hg, st))
    assert gradgradcheck(two_steps, (xg, hg, st))


def test_lstm_cell_bad_shapes():
    with pytest.raises(ValueError, match=r"lstm_cell: .*\(2, 8\) and \(2, 4\)"):
        P.lstm_cell(cr.zeros(2, 8), cr.zeros(2, 4), cr.zeros(2, 2))
    with pytest.raises(ValueError, match="multiple of 4"):
        P.lstm_cell(cr.zeros(2, 6), cr.zeros(2, 6), cr.zeros(2, 2))
    with pytest.raises(ValueError, match=r"lstm_cell: the state must be c_prev of shape "
                                         r"\(2, 2\) .* got \(2, 3\)"):
        P.lstm_cell(cr.zeros(2, 8), cr.zeros(2, 8), cr.zeros(2, 3))


@pytest.mark.parametrize("bias", [True, False])
def test_gru_cell_forward_and_gradients(bias):
    xg, hg, hp = _t(3, 6), _t(3, 6), _t(3, 2)
    b = _t(6) if bias else None
    out = P.gru_cell(xg, hg, b, hp)
    ref = _gru_ref(xg.detach().numpy(), hg.detach().numpy(),
                   None if b is None else b.detach().numpy(), hp.detach().numpy())
    np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-12)
    if bias:
        args = (xg, hg, b, hp)
        fn = P.gru_cell
    else:
        args = (xg, hg, hp)

        def fn(a, c, d):
            return P.gru_cell(a, c, None, d)

    assert gradcheck(fn, args)
    assert gradgradcheck(fn, args)


def test_gru_cell_bad_shapes():
    with pytest.raises(ValueError, match=r"gru_cell: h_prev must have shape \(3, 2\)"):
        P.gru_cell(cr.zeros(3, 6), cr.zeros(3, 6), None, cr.zeros(3, 3))


def test_unbind_steps_gradients_and_views():
    x = _t(4, 3)
    steps = P.unbind_steps(x)
    assert len(steps) == 4 and steps[2].shape == (3,)
    np.testing.assert_array_equal(steps[1].detach().numpy(), x.detach().numpy()[1])

    def f(x):
        return cr.stack([s * s * (k + 1) for k, s in enumerate(P.unbind_steps(x))])

    assert gradcheck(f, (x,))
    assert gradgradcheck(f, (x,))


def test_unbind_steps_unused_steps_get_zero_gradient():
    x = _t(3, 2)
    steps = P.unbind_steps(x)
    (steps[1] * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0], [2, 2], [0, 0]])


def test_weight_tap_gives_hidden_weight_gradient():
    # an Elman loop written with rnn_hh + rnn_weight_tap must match plain matmuls
    xg, w, h0 = _t(3, 2, 4), _t(4, 4, scale=0.5), _t(2, 4)

    def tapped(xg, w, h0):
        held = P.StepInputs(3)
        xs = P.unbind_steps(P.rnn_weight_tap(xg, w, held))
        h, outs = h0, []
        for t in range(3):
            held.items[t] = h
            h = cr.tanh(xs[t] + P.rnn_hh(h, w.T))
            outs.append(h)
        return cr.stack(outs)

    def plain(xg, w, h0):
        h, outs = h0, []
        for t in range(3):
            h = cr.tanh(xg[t] + h @ w.T)
            outs.append(h)
        return cr.stack(outs)

    a = cr.autograd.grad(tapped(xg, w, h0).sum(), (xg, w, h0))
    b = cr.autograd.grad(plain(xg, w, h0).sum(), (xg, w, h0))
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-12)
    assert gradcheck(tapped, (xg, w, h0))
    assert gradgradcheck(tapped, (xg, w, h0))


@pytest.mark.parametrize("slots", [2, P.LSTM_SLOTS])
def test_lstm_step_matches_cell_and_gradchecks(slots):
    xg, st = _t(2, 8), _t(slots, 2, 2)
    w_t = cr.randn(2, 8, dtype=cr.float64)  # its gradient comes from rnn_weight_tap
    out = P.lstm_step(xg, st, w_t)
    ref = P.lstm_cell(xg, st[0] @ w_t, st)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-12)
    assert gradcheck(P.lstm_step, (xg, st, w_t))
    assert gradgradcheck(P.lstm_step, (xg, st, w_t))


def test_lstm_step_bad_state():
    with pytest.raises(ValueError, match=r"lstm_step: the state must stack h and c .* "
                                         r"got \(2, 2\)"):
        P.lstm_step(cr.zeros(2, 8), cr.zeros(2, 2), cr.zeros(2, 8))
