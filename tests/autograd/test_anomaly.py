"""Anomaly mode: non-finite gradients name the rule, the op and the user's line."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import anomaly


@pytest.fixture(autouse=True)
def _quiet_numpy():
    # the cases below divide by zero on purpose; anomaly mode, not NumPy, reports them
    with np.errstate(all="ignore"):
        yield


def _error(fn) -> str:
    x = cr.tensor([0.0, 2.0], requires_grad=True)
    with cr.autograd.detect_anomaly():
        y = fn(x)  # the creating line
        with pytest.raises(FloatingPointError) as info:
            y.sum().backward()
    return str(info.value)


def test_log_of_zero_times_zero_names_log():
    msg = _error(lambda x: cr.log(x) * 0.0)
    assert "backward of 'log'" in msg
    assert "nan" in msg


def test_sqrt_at_zero_names_sqrt():
    msg = _error(lambda x: cr.sqrt(x))
    assert "backward of 'sqrt'" in msg
    assert "inf" in msg


def test_zero_over_zero_names_div():
    msg = _error(lambda x: x / x)
    assert "backward of 'div'" in msg


def test_norm_at_zero_is_safe_but_hand_written_norm_is_not():
    x = cr.zeros(3, requires_grad=True)
    with cr.autograd.detect_anomaly():
        cr.norm(x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)
    with cr.autograd.detect_anomaly():
        y = cr.sqrt((x * x).sum())
        with pytest.raises(FloatingPointError, match="backward of 'sqrt'"):
            y.backward()


def test_message_shows_the_users_line_last_and_marked():
    msg = _error(lambda x: cr.sqrt(x))
    assert "most recent call last" in msg
    marked = [ln for ln in msg.splitlines() if ln.startswith("> ")]
    assert len(marked) == 1
    assert "test_anomaly.py" in marked[0] and "<lambda>" in marked[0]
    assert "cr.sqrt(x)" in msg and "<-- this line created the op" in msg
    assert "chainrule/ops" not in msg  # library frames are dropped
    assert "(rule " in msg  # the backward rule is named


def test_custom_function_nodes_are_covered():
    class BadGrad(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * float("nan")

    x = cr.ones(3, requires_grad=True)
    with cr.autograd.detect_anomaly():
        y = BadGrad.apply(x)
        with pytest.raises(FloatingPointError, match=r"(?s)'BadGrad'.*BadGrad\.backward"
                                                     r".*test_anomaly\.py"):
            y.sum().backward()


def test_check_forward_catches_the_first_non_finite_forward():
    x = cr.tensor([0.0, 1.0], requires_grad=True)
    with cr.autograd.detect_anomaly(check_forward=True):
        with pytest.raises(FloatingPointError, match=r"forward of 'log' produced inf"):
            cr.log(x)

    class Inf(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x / 0.0

        @staticmethod
        def backward(ctx, g):
            return g

    with cr.autograd.detect_anomaly(check_forward=True):
        with pytest.raises(FloatingPointError, match="forward of 'Inf'"):
            Inf.apply(x)


def test_finite_backward_passes_and_mode_is_restored():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with cr.autograd.detect_anomaly():
        assert cr.autograd.is_anomaly_enabled()
        cr.sqrt(x).sum().backward()
    assert not cr.autograd.is_anomaly_enabled()
    np.testing.assert_allclose(x.grad.numpy(), 0.5 / np.sqrt([1.0, 2.0]), rtol=1e-6)
    with cr.autograd.set_detect_anomaly(True):
        assert cr.autograd.is_anomaly_enabled()
    assert not cr.autograd.is_anomaly_enabled()


def test_without_anomaly_mode_nan_passes_silently():
    x = cr.tensor([0.0], requires_grad=True)
    (cr.sqrt(x) * 0).sum().backward()
    assert np.isnan(x.grad.numpy()).all()


def test_check_nan_false_records_but_does_not_raise():
    x = cr.tensor([0.0], requires_grad=True)
    with cr.autograd.detect_anomaly(check_nan=False):
        y = cr.sqrt(x)
        assert y.grad_fn.trace  # the creation stack is still recorded
        y.sum().backward()
    assert np.isinf(x.grad.numpy()).all()


def test_missing_forward_trace_is_explained():
    x = cr.tensor([0.0], requires_grad=True)
    y = cr.sqrt(x)  # recorded outside anomaly mode
    with cr.autograd.detect_anomaly():
        with pytest.raises(FloatingPointError, match="no traceback recorded"):
            y.sum().backward()


# ---------------------------------------------------------------- the where trap
def test_where_with_inf_branch_leaks_nan_and_safe_where_does_not():
    x = cr.tensor([0.0, 4.0], requires_grad=True)
    cr.where(x > 0, cr.sqrt(x), 0.0).sum().backward()
    assert np.isnan(x.grad.numpy()[0])  # the trap: 0 * inf in sqrt's backward

    x.grad = None
    with cr.autograd.detect_anomaly():
        y = cr.safe_where(x > 0, cr.sqrt, x, 0.0)
        y.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), [0.0, 2.0])
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.25])


def test_safe_where_for_xlogx_and_tensor_fill():
    p = cr.tensor([0.0, 0.5, 1.0], requires_grad=True)
    ent = p * cr.safe_where(p > 0, cr.log, p, 0.0)
    ent.sum().backward()
    np.testing.assert_allclose(ent.detach().numpy(), [0.0, 0.5 * np.log(0.5), 0.0],
                               atol=1e-7)
    assert np.isfinite(p.grad.numpy()).all()
    fill = cr.tensor([7.0, 7.0, 7.0])
    out = anomaly.safe_where(p > 0.6, cr.sqrt, p, fill)
    np.testing.assert_allclose(out.detach().numpy(), [7.0, 7.0, 1.0])


def test_safe_where_gradcheck():
    x = cr.tensor([-1.0, 0.0, 0.3, 2.0], dtype=cr.float64, requires_grad=True)
    assert cr.autograd.gradcheck(lambda t: cr.safe_where(t > 0.1, cr.sqrt, t, 0.0), (x,))
