"""Functional transforms: grad, vjp, jvp, jacrev, jacfwd, hessian, hvp."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import func


def f_vec(x):
    return x.sin() * x.exp() + (x * x).sum()


def test_grad_argnums_and_aux():
    def f(a, b):
        return (a * b).sum(), "aux"

    a = cr.tensor([1.0, 2.0])
    b = cr.tensor([3.0, 4.0])
    (ga, gb), aux = func.grad(f, argnums=(0, 1), has_aux=True)(a, b)
    np.testing.assert_allclose(ga.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(gb.numpy(), [1.0, 2.0])
    assert aux == "aux"


def test_grad_rejects_non_scalar():
    with pytest.raises(ValueError, match=r"scalar.*\(2,\)"):
        func.grad(lambda x: x * 2)(cr.ones(2))


def test_hessian_equals_analytic():
    # f(x) = sum(x_i^2 x_j) over i,j = (sum x^2)(sum x): H_ij = 2 delta_ij S1 + 2 x_i + 2 x_j
    x = cr.tensor([0.5, -1.0, 2.0], dtype=cr.float64)

    def f(t):
        return (t * t).sum() * t.sum()

    h = func.hessian(f)(x).numpy()
    xv = x.numpy()
    expected = 2 * np.eye(3) * xv.sum() + 2 * xv[:, None] + 2 * xv[None, :]
    np.testing.assert_allclose(h, expected, rtol=1e-12)


def test_jvp_equals_jacrev_times_v():
    x = cr.tensor([0.3, -0.7, 1.1], dtype=cr.float64)
    v = cr.tensor([1.0, 2.0, -1.0], dtype=cr.float64)
    out, jv = func.jvp(f_vec, (x,), (v,))
    j = func.jacrev(f_vec)(x)
    np.testing.assert_allclose(jv.numpy(), j.numpy() @ v.numpy(), rtol=1e-12)
    np.testing.assert_allclose(out.numpy(), f_vec(x).numpy())


def test_jacfwd_equals_jacrev():
    x = cr.tensor([[0.3, -0.7], [1.1, 0.2]], dtype=cr.float64)

    def g(t):
        return (t @ t).tanh()

    np.testing.assert_allclose(func.jacfwd(g)(x).numpy(), func.jacrev(g)(x).numpy(),
                               rtol=1e-12)
    assert func.jacrev(g)(x).shape == (2, 2, 2, 2)


def test_vjp_matches_jacobian_transpose():
    x = cr.tensor([0.3, -0.7, 1.1], dtype=cr.float64)
    u = cr.tensor([1.0, -2.0, 0.5], dtype=cr.float64)
    out, vjp_fn = func.vjp(f_vec, x)
    (g,) = vjp_fn(u)
    np.testing.assert_allclose(g.numpy(), u.numpy() @ func.jacrev(f_vec)(x).numpy(),
                               rtol=1e-12)


def test_hvp_equals_hessian_times_v():
    x = cr.tensor([0.3, -0.7, 1.1], dtype=cr.float64)
    v = cr.tensor([1.0, 2.0, -1.0], dtype=cr.float64)

    def f(t):
        return (t.sin() * t * t).sum()

    _, (hv,) = func.hvp(f, (x,), (v,))
    h = func.hessian(f)(x)
    np.testing.assert_allclose(hv.numpy(), h.numpy() @ v.numpy(), rtol=1e-12)


def test_nested_grad_third_derivative():
    d3 = func.grad(func.grad(func.grad(lambda t: t ** 4)))
    assert d3(cr.tensor(2.0, dtype=cr.float64)).item() == pytest.approx(48.0)


def test_transform_results_are_detached_for_plain_inputs():
    g = func.grad(lambda t: (t ** 2).sum())(cr.ones(2))
    assert not g.requires_grad


def test_grad_through_transform_when_input_requires_grad():
    # d/dx of (d/dx x^3) = 6x, through func.grad used inside an outer backward
    x = cr.tensor(2.0, dtype=cr.float64, requires_grad=True)
    g = func.grad(lambda t: t ** 3)(x)
    g.backward()
    assert x.grad.item() == pytest.approx(12.0)


def test_vmap_loops_over_batch():
    x = cr.randn(4, 3)
    out = func.vmap(lambda r: (r * r).sum())(x)
    np.testing.assert_allclose(out.numpy(), (x.numpy() ** 2).sum(1), rtol=1e-6)
