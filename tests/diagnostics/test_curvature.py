"""hessian_eigs / hessian_trace on quadratics with a known spectrum."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.diagnostics import hessian_eigs, hessian_trace


def quadratic(spectrum, seed=0):
    rng = np.random.default_rng(seed)
    n = len(spectrum)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = q @ np.diag(spectrum) @ q.T
    x = cr.tensor(rng.standard_normal(n), dtype=cr.float64, requires_grad=True)
    At = cr.tensor(A, dtype=cr.float64)

    def loss_fn():
        return 0.5 * (x * (At @ x)).sum()

    return A, x, loss_fn


def test_top_eigenvalues_of_known_quadratic():
    spectrum = [10.0, -6.0, 3.0, 1.0, 0.5, 0.1]
    _, x, loss_fn = quadratic(spectrum)
    eig = hessian_eigs(loss_fn, [x], k=3, tol=1e-7)
    assert eig.dtype == np.float64 and eig.shape == (3,)
    np.testing.assert_allclose(eig.numpy(), [10.0, -6.0, 3.0], atol=1e-6)


def test_eigenvectors_and_split_params():
    spectrum = [5.0, 2.0, 1.0, 0.25]
    A, _, _ = quadratic(spectrum, seed=1)
    a = cr.tensor([0.3, -0.2], dtype=cr.float64, requires_grad=True)
    b = cr.tensor([1.0, 0.5], dtype=cr.float64, requires_grad=True)
    At = cr.tensor(A, dtype=cr.float64)

    def loss_fn():
        x = cr.cat([a, b])
        return 0.5 * (x * (At @ x)).sum()

    eig, vecs = hessian_eigs(loss_fn, [a, b], k=2, iters=500, tol=1e-12,
                             return_eigenvectors=True)
    np.testing.assert_allclose(eig.numpy(), [5.0, 2.0], atol=1e-6)
    v = np.concatenate([vecs[0][0].numpy(), vecs[0][1].numpy()])
    np.testing.assert_allclose(A @ v, 5.0 * v, atol=1e-5)


def test_trace_exact_for_diagonal():
    d = cr.tensor([4.0, -1.0, 2.5, 0.5], dtype=cr.float64)
    x = cr.ones(4, dtype=cr.float64, requires_grad=True)
    tr = hessian_trace(lambda: 0.5 * (d * x * x).sum(), [x], samples=3)
    assert tr == pytest.approx(6.0, abs=1e-12)


def test_trace_estimates_dense():
    spectrum = [3.0, 2.0, 1.0, 1.0, 0.5]
    A, x, loss_fn = quadratic(spectrum, seed=2)
    tr = hessian_trace(loss_fn, [x], samples=2000, seed=1)
    assert tr == pytest.approx(np.trace(A), rel=0.05)


def test_float32_params_and_model_like_input():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    c = cr.tensor([2.0, 8.0])

    class Model:
        def parameters(self):
            return iter([w])

    eig = hessian_eigs(lambda: 0.5 * (c * w * w).sum(), Model(), k=2)
    np.testing.assert_allclose(eig.numpy(), [8.0, 2.0], rtol=1e-5)


def test_bad_input():
    w = cr.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match="no parameters"):
        hessian_eigs(lambda: w.sum(), [])
    with pytest.raises(ValueError, match="does not require grad"):
        hessian_eigs(lambda: w.sum(), [cr.ones(3)])
    with pytest.raises(ValueError, match="scalar"):
        hessian_trace(lambda: w * 2, [w])
    with pytest.raises(TypeError, match="callable"):
        hessian_eigs(w.sum(), [w])
    with pytest.raises(ValueError, match="exceeds"):
        hessian_eigs(lambda: (w * w).sum(), [w], k=4)
    with pytest.raises(ValueError, match="does not require grad"):
        hessian_trace(lambda: cr.ones(1).sum(), [w])


def test_linear_loss_has_zero_curvature():
    w = cr.ones(3, requires_grad=True)
    eig = hessian_eigs(lambda: (w * 2).sum(), [w])
    assert eig.numpy()[0] == 0.0
