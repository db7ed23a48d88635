"""gradcheck/gradgradcheck: pass on correct rules, short per-input reports on wrong ones."""

import pytest

import chainrule as cr


class WrongSin(cr.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.cos() * 1.1  # deliberately wrong by 10%


def test_passes_on_correct_function_full_and_fast_mode():
    x = cr.randn(3, 2, dtype=cr.float64, requires_grad=True)
    w = cr.randn(2, 4, dtype=cr.float64, requires_grad=True)
    fn = lambda a, b: (a @ b).tanh()  # noqa: E731
    assert cr.autograd.gradcheck(fn, (x, w))
    assert cr.autograd.gradcheck(fn, (x, w), fast_mode=True)


def test_reports_worst_element_without_jacobian_dump():
    x = cr.randn(5, dtype=cr.float64, requires_grad=True)
    with pytest.raises(cr.autograd.GradcheckError) as e:
        cr.autograd.gradcheck(WrongSin.apply, (x,))
    msg = str(e.value)
    assert "input 0 (shape (5,))" in msg and "relative error" in msg
    assert msg.count("\n") < 5


def test_fast_mode_detects_wrong_gradient():
    x = cr.randn(50, dtype=cr.float64, requires_grad=True)
    assert not cr.autograd.gradcheck(WrongSin.apply, (x,), fast_mode=True,
                                     raise_exception=False)


def test_gradgradcheck_detects_wrong_second_derivative():
    class WrongSecond(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            # right value, wrong dependence on x for the second derivative
            return g * 3 * (x.detach() * x)

    x = cr.tensor([0.5, 1.5], dtype=cr.float64, requires_grad=True)
    assert cr.autograd.gradcheck(WrongSecond.apply, (x,))
    assert not cr.autograd.gradgradcheck(WrongSecond.apply, (x,), raise_exception=False)


def test_rejects_float32_inputs():
    x = cr.randn(3, requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        cr.autograd.gradcheck(lambda t: t * 2, (x,))


def test_anomaly_mode_names_the_op_and_the_line():
    x = cr.tensor([0.0, 1.0], requires_grad=True)
    with cr.autograd.detect_anomaly():
        y = (x.sqrt() * 0).sum()  # sqrt'(0) = inf, times 0 -> nan in backward
        with pytest.raises(FloatingPointError, match=r"(?s)backward of '(mul|sqrt)'.*"
                                                     r"test_gradcheck.py"):
            import numpy as np

            with np.errstate(all="ignore"):
                y.backward()
