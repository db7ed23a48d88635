"""Newton / Levenberg-Marquardt: logistic regression against NumPy IRLS, CG, damping, errors."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule.optim.newton import cg_direction, newton_direction

ALPHA = 0.1  # L2 penalty: keeps the optimum finite even for separable data


def _data(n: int = 80, d: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w_true = rng.normal(size=d) * 2
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ w_true + 0.5)))).astype(np.float64)
    return X, y


def _irls(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Reference optimum of mean BCE + ALPHA/2 |w|^2 (bias unpenalised) by plain Newton."""
    n, d = X.shape
    Xb = np.hstack([X, np.ones((n, 1))])
    reg = np.diag([ALPHA] * d + [0.0])
    theta = np.zeros(d + 1)
    for _ in range(50):
        p = 1 / (1 + np.exp(-(Xb @ theta)))
        g = Xb.T @ (p - y) / n + reg @ theta
        H = (Xb * (p * (1 - p))[:, None]).T @ Xb / n + reg
        theta -= np.linalg.solve(H, g)
    return theta


def _logreg(**kwargs):
    X, y = _data()
    w = cr.zeros(X.shape[1], dtype=cr.float64, requires_grad=True)
    b = cr.zeros(1, dtype=cr.float64, requires_grad=True)
    xt, yt = cr.tensor(X), cr.tensor(y)
    opt = cr.optim.Newton([w, b], **kwargs)

    def closure():
        opt.zero_grad()
        z = xt @ w + b
        return F.binary_cross_entropy_with_logits(z, yt) + 0.5 * ALPHA * (w * w).sum()

    return X, y, w, b, opt, closure


def test_logistic_regression_matches_irls_in_few_steps():
    X, y, w, b, opt, closure = _logreg()
    ref = _irls(X, y)
    losses = [opt.step(closure).item() for _ in range(10)]
    got = np.concatenate([w.detach().numpy(), b.detach().numpy()])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-8)
    assert all(b2 <= b1 + 1e-15 for b1, b2 in zip(losses, losses[1:]))
    assert opt.state[w]["n_iter"] == 10
    assert opt.state[w]["damping"] < 1e-3  # accepted steps shrink the damping


def test_logistic_regression_cg_variant():
    X, y, w, b, opt, closure = _logreg(hvp=True, cg_iters=20, cg_tol=1e-12)
    ref = _irls(X, y)
    for _ in range(10):
        opt.step(closure)
    got = np.concatenate([w.detach().numpy(), b.detach().numpy()])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-8)


def test_fixed_undamped_step_solves_a_quadratic_exactly():
    rng = np.random.default_rng(1)
    M = rng.normal(size=(4, 4))
    A = M @ M.T + 4 * np.eye(4)
    c = rng.normal(size=4)
    x = cr.zeros(4, dtype=cr.float64, requires_grad=True)
    At, ct = cr.tensor(A), cr.tensor(c)
    opt = cr.optim.Newton([x], damping=0.0, adaptive=False)

    def closure():
        opt.zero_grad()
        return 0.5 * (x @ (At @ x)) - (ct * x).sum()

    opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), np.linalg.solve(A, c), atol=1e-12)


def test_indefinite_hessian_raises_damping_and_still_descends():
    # f(x) = x^4 - x^2 at x = 0.1 has f'' < 0: plain Newton would climb to the maximum 0.
    x = cr.tensor([0.1], dtype=cr.float64, requires_grad=True)
    opt = cr.optim.Newton([x], damping=1e-3)

    def closure():
        opt.zero_grad()
        return (x ** 4 - x ** 2).sum()

    first = opt.step(closure).item()
    assert opt.state[x]["damping"] > 1e-3
    assert closure().item() < first
    for _ in range(30):
        opt.step(closure)
    assert x.item() == pytest.approx(np.sqrt(0.5), abs=1e-10)


def test_rosenbrock_adaptive_damping_is_monotone():
    x = cr.tensor([-1.2, 1.0], dtype=cr.float64, requires_grad=True)
    opt = cr.optim.Newton([x], damping=1.0)

    def closure():
        opt.zero_grad()
        return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2

    losses = [opt.step(closure).item() for _ in range(60)]
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    np.testing.assert_allclose(x.detach().numpy(), [1.0, 1.0], atol=1e-8)


def test_float32_parameters_and_state_dict_round_trip():
    w = cr.tensor([2.0, -1.0], requires_grad=True)
    opt = cr.optim.Newton([w])

    def closure():
        opt.zero_grad()
        return ((w - 0.5) ** 2).sum()

    opt.step(closure)  # damping 1e-3 leaves ~1e-3 of the way to go
    opt.step(closure)  # damping 1e-4: within 1e-6
    assert w.dtype == cr.float32
    np.testing.assert_allclose(w.detach().numpy(), [0.5, 0.5], atol=1e-5)
    sd = opt.state_dict()
    other = cr.optim.Newton([cr.zeros(2, requires_grad=True)])
    other.load_state_dict(sd)
    assert other.state[other.param_groups[0]["params"][0]]["damping"] == \
        pytest.approx(opt.state[w]["damping"])


def test_parameter_limit_suggests_lbfgs():
    w = cr.zeros(50, requires_grad=True)
    with pytest.raises(ValueError, match="LBFGS") as info:
        cr.optim.Newton([w], max_params=10)
    assert "hvp=True" in str(info.value)
    with pytest.raises(ValueError, match="LBFGS"):
        cr.optim.Newton([{"params": [w]}], max_params=10, hvp=True)
    model = cr.nn.Linear(40, 40)
    with pytest.raises(ValueError, match="1640 values.*LBFGS"):
        cr.optim.Newton(model.parameters())


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.0), dict(lr=-1.0), dict(damping=-1e-3), dict(damping_increase=1.0),
    dict(damping_decrease=0.0), dict(damping_decrease=2.0), dict(max_params=0),
    dict(cg_iters=0), dict(cg_tol=-1.0), dict(hvp=1), dict(adaptive="yes"),
    dict(max_tries=2.5), dict(damping=float("nan")),
])
def test_invalid_hyper_parameters(kwargs):
    w = cr.tensor([1.0], requires_grad=True)
    with pytest.raises((ValueError, TypeError), match="Newton"):
        cr.optim.Newton([w], **kwargs)
    assert w.grad is None and w.item() == 1.0


def test_step_errors_leave_parameters_alone():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    opt = cr.optim.Newton([w])
    with pytest.raises(RuntimeError, match="closure is required"):
        opt.step()
    with pytest.raises(TypeError, match="one-element loss"):
        opt.step(lambda: w * 2)
    with pytest.raises(RuntimeError, match="does not depend"):
        opt.step(lambda: cr.tensor(1.0))
    assert w.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="parameter groups"):
        opt.add_param_group({"params": [cr.zeros(1, requires_grad=True)]})
    with pytest.raises(ValueError, match="parameter groups"):
        cr.optim.Newton([{"params": [w]}, {"params": [cr.zeros(1, requires_grad=True)]}])


def test_solvers_agree():
    rng = np.random.default_rng(3)
    M = rng.normal(size=(6, 6))
    H = M @ M.T + np.eye(6)
    g = rng.normal(size=6)
    d1 = newton_direction(H, g, 0.5)
    d2 = cg_direction(lambda v: H @ v, g, 0.5, 50, 1e-14)
    np.testing.assert_allclose(d1, d2, atol=1e-10)
    np.testing.assert_allclose((H + 0.5 * np.eye(6)) @ d1, -g, atol=1e-10)
    assert newton_direction(-H, g, 0.0) is None
    assert cg_direction(lambda v: -H @ v, g, 0.0, 50, 1e-14) is None
