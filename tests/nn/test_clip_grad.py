"""clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    parameters_to_vector,
    vector_to_parameters,
)


def _params_with_grads(grads, dtype=cr.float64):
    ps = []
    for g in grads:
        p = cr.zeros(*np.shape(g), dtype=dtype, requires_grad=True)
        p.grad = cr.tensor(np.array(g, dtype=float), dtype=dtype)
        ps.append(p)
    return ps


GRADS = [[[3.0, -4.0], [1.0, 2.0]], [12.0, -0.5, 0.25]]


def _flat():
    return np.concatenate([np.ravel(g) for g in GRADS])


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, 0.5, math.inf, -math.inf])
def test_clip_grad_norm_returns_total_norm_and_scales(norm_type):
    ps = _params_with_grads(GRADS)
    flat = _flat()
    if norm_type == math.inf:
        expected = np.abs(flat).max()
    elif norm_type == -math.inf:
        expected = np.abs(flat).min()
    else:
        expected = (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    total = clip_grad_norm_(ps, max_norm=1.0, norm_type=norm_type)
    assert isinstance(total, cr.Tensor) and total.shape == ()
    assert total.item() == pytest.approx(expected, rel=1e-12)
    coef = min(1.0, 1.0 / (expected + 1e-6))
    got = np.concatenate([p.grad.numpy().ravel() for p in ps])
    np.testing.assert_allclose(got, flat * coef, rtol=1e-12)


def test_clip_grad_norm_below_max_leaves_grads_unchanged():
    ps = _params_with_grads(GRADS)
    total = clip_grad_norm_(ps, max_norm=100.0)
    assert total.item() == pytest.approx(np.linalg.norm(_flat()))
    np.testing.assert_array_equal(ps[1].grad.numpy(), GRADS[1])


def test_clip_grad_norm_single_tensor_skips_missing_grads_and_keeps_dtype():
    p = _params_with_grads([[6.0, 8.0]], dtype=cr.float32)[0]
    q = cr.zeros(3, requires_grad=True)
    total = clip_grad_norm_([p, q], 5.0)
    assert total.dtype == cr.float32 and total.item() == pytest.approx(10.0)
    np.testing.assert_allclose(p.grad.numpy(), [3.0, 4.0], rtol=1e-5)
    assert q.grad is None
    assert clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0, rel=1e-5)
    assert clip_grad_norm_([q], 1.0).item() == 0.0


def test_clip_grad_norm_nonfinite():
    ps = _params_with_grads([[1.0, math.inf]])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    assert ps[0].grad.numpy()[0] == 1.0  # unchanged by the failed call
    ps = _params_with_grads([[1.0, math.nan]])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    total = clip_grad_norm_(ps, 1.0)
    assert math.isnan(total.item())


def test_clip_grad_norm_bad_input():
    with pytest.raises(TypeError, match="expected tensors"):
        clip_grad_norm_([np.zeros(2)], 1.0)


def test_clip_grad_value():
    ps = _params_with_grads(GRADS)
    assert clip_grad_value_(ps, 2.0) is None
    np.testing.assert_array_equal(ps[0].grad.numpy(), [[2.0, -2.0], [1.0, 2.0]])
    np.testing.assert_array_equal(ps[1].grad.numpy(), [2.0, -0.5, 0.25])


def test_clip_after_backward():
    w = cr.tensor([1.0, 2.0, 2.0], requires_grad=True)
    (w * 10).sum().backward()
    total = clip_grad_norm_([w], 1.0)
    assert total.item() == pytest.approx(math.sqrt(300), rel=1e-6)
    assert np.linalg.norm(w.grad.numpy()) == pytest.approx(1.0, rel=1e-5)


def test_parameters_to_vector_and_back():
    a = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = cr.tensor([5.0], requires_grad=True)
    vec = parameters_to_vector([a, b])
    assert vec.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    (vec * cr.arange(5).float()).sum().backward()  # differentiable
    assert a.grad.tolist() == [[0.0, 1.0], [2.0, 3.0]] and b.grad.tolist() == [4.0]
    vector_to_parameters(cr.tensor([9.0, 8.0, 7.0, 6.0, 5.5]), [a, b])
    assert a.tolist() == [[9.0, 8.0], [7.0, 6.0]] and b.tolist() == [5.5]
    assert a.requires_grad and a.shape == (2, 2)


def test_vector_to_parameters_errors():
    a = cr.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match="expected a Tensor"):
        vector_to_parameters([1.0, 2.0], [a])
    with pytest.raises(ValueError, match="3 values"):
        vector_to_parameters(cr.zeros(3), [a])
    with pytest.raises(ValueError, match="1-d"):
        vector_to_parameters(cr.zeros(1, 2), [a])
    assert a.tolist() == [0.0, 0.0]
