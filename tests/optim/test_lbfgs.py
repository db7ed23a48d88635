"""LBFGS: Rosenbrock with strong Wolfe, a convex quadratic without line search, errors."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.optim.lbfgs import _cubic_interpolate


def _rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _closure(opt, x, f):
    def closure():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss
    return closure


def test_rosenbrock_strong_wolfe():
    x = cr.tensor([-1.5, 2.0], dtype=cr.float64, requires_grad=True)
    opt = cr.optim.LBFGS([x], lr=1, max_iter=100, tolerance_grad=1e-12,
                         tolerance_change=1e-15, line_search_fn="strong_wolfe")
    closure = _closure(opt, x, _rosenbrock)
    first = opt.step(closure)
    assert first.item() == pytest.approx(_rosenbrock(np.array([-1.5, 2.0])))
    for _ in range(4):
        opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), [1.0, 1.0], rtol=0, atol=1e-6)
    state = opt.state[x]
    assert state["n_iter"] > 10 and state["func_evals"] >= state["n_iter"]


def test_quadratic_without_line_search():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((5, 5))
    a_np = m @ m.T / 5 + np.eye(5)
    b_np = rng.standard_normal(5)
    a = cr.tensor(a_np, dtype=cr.float64)
    b = cr.tensor(b_np, dtype=cr.float64)
    x = cr.zeros(5, dtype=cr.float64, requires_grad=True)
    opt = cr.optim.LBFGS([x], lr=1, max_iter=50, history_size=10, tolerance_grad=1e-12,
                         tolerance_change=1e-15)

    def f(x):
        return 0.5 * (x @ (a @ x)) - b @ x

    closure = _closure(opt, x, f)
    for _ in range(3):
        opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), np.linalg.solve(a_np, b_np), atol=1e-6)
    assert len(opt.state[x]["old_dirs"]) <= 10  # history is bounded


def test_several_parameters_and_float32():
    w = cr.tensor([[3.0, -1.0]], requires_grad=True)
    c = cr.tensor([2.0], requires_grad=True)
    opt = cr.optim.LBFGS([w, c], line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((w - 0.5) ** 2).sum() + ((c + 1.0) ** 2).sum()
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    np.testing.assert_allclose(w.detach().numpy(), [[0.5, 0.5]], atol=1e-4)
    np.testing.assert_allclose(c.detach().numpy(), [-1.0], atol=1e-4)
    assert w.dtype == cr.float32


def test_closure_required():
    x = cr.zeros(2, requires_grad=True)
    opt = cr.optim.LBFGS([x])
    with pytest.raises(RuntimeError, match="closure is required"):
        opt.step()
    assert len(opt.state) == 0


@pytest.mark.parametrize("kw,msg", [
    (dict(lr=-1.0), "learning rate"),
    (dict(max_iter=0), "max_iter"),
    (dict(history_size=0), "history_size"),
    (dict(tolerance_grad=-1.0), "tolerance_grad"),
    (dict(line_search_fn="backtracking"), "line_search_fn"),
])
def test_bad_hyper_parameters(kw, msg):
    with pytest.raises(ValueError, match=msg):
        cr.optim.LBFGS([cr.zeros(2, requires_grad=True)], **kw)


def test_single_group_only():
    a, b = cr.zeros(1, requires_grad=True), cr.zeros(1, requires_grad=True)
    with pytest.raises(ValueError, match="parameter groups"):
        cr.optim.LBFGS([{"params": [a]}, {"params": [b]}])
    opt = cr.optim.LBFGS([a])
    with pytest.raises(ValueError, match="parameter groups"):
        opt.add_param_group({"params": [b]})


def test_state_dict_resume_is_exact():
    def make():
        x = cr.tensor([-1.5, 2.0], dtype=cr.float64, requires_grad=True)
        opt = cr.optim.LBFGS([x], max_iter=3, line_search_fn="strong_wolfe")
        return x, opt

    x, opt = make()
    for _ in range(4):
        opt.step(_closure(opt, x, _rosenbrock))
    ref = x.detach().numpy().copy()

    x1, opt1 = make()
    for _ in range(2):
        opt1.step(_closure(opt1, x1, _rosenbrock))
    sd = opt1.state_dict()
    assert set(sd["state"][0]) >= {"d", "t", "old_dirs", "old_stps", "ro", "H_diag",
                                   "prev_flat_grad", "prev_loss", "n_iter", "func_evals"}
    x2, opt2 = make()
    with cr.no_grad():
        x2.copy_(x1)
    opt2.load_state_dict(sd)
    for _ in range(2):
        opt2.step(_closure(opt2, x2, _rosenbrock))
    np.testing.assert_array_equal(x2.detach().numpy(), ref)


def test_load_rejects_wrong_sizes():
    x = cr.zeros(2, dtype=cr.float64, requires_grad=True)
    opt = cr.optim.LBFGS([x])
    opt.step(_closure(opt, x, _rosenbrock))
    sd = opt.state_dict()
    bad = {"state": {0: {**sd["state"][0], "d": cr.zeros(5)}},
           "param_groups": sd["param_groups"]}
    before = opt.state[x]["d"].numpy().copy()
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(bad)
    np.testing.assert_array_equal(opt.state[x]["d"].numpy(), before)


def test_cubic_interpolate_finds_the_cubic_minimum():
    # f(t) = (t - 1)**3 - 3 (t - 1): minimum at t = 2 on [0, 3].
    def f(t):
        return (t - 1) ** 3 - 3 * (t - 1)

    def g(t):
        return 3 * (t - 1) ** 2 - 3

    assert _cubic_interpolate(0.0, f(0.0), g(0.0), 3.0, f(3.0), g(3.0)) == pytest.approx(2.0)
    # Bounds clamp the result.
    assert _cubic_interpolate(0.0, f(0.0), g(0.0), 3.0, f(3.0), g(3.0),
                              bounds=(0.0, 1.5)) == 1.5
