"""Reductions: sum mean var std amax amin max min logsumexp softmax log_softmax cumsum norm,
swept over dims (None, positive, negative, tuples) and keepdim; ties and stability."""

import math
import warnings

import numpy as np
import pytest

import chainrule as cr
from tests.helpers import REDUCE_CASES, check_op, grads_of, t64

DIM_CASES = REDUCE_CASES


def _quiet(fn):
    """Run a NumPy reference that may warn on empty slices (chainrule gives nan there)."""
    def wrapped(*args, **kwargs):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)

    return wrapped


def _axis(dim, x=None):
    """NumPy's axis for PyTorch's dim (a 0-d tensor accepts dim 0 and -1, NumPy doesn't)."""
    if x is not None and x.ndim == 0:
        return None
    return tuple(dim) if isinstance(dim, (tuple, list)) else dim


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shape,dim", DIM_CASES)
@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_mean(name, shape, dim, keepdim):
    ref = _quiet(getattr(np, name))
    check_op(lambda x: getattr(cr, name)(x, dim, keepdim),
             lambda x: np.asarray(ref(x, axis=_axis(dim, x), keepdims=keepdim)), [shape])
    if dim is not None:
        check_op(lambda x: getattr(x, name)(dim=dim, keepdim=keepdim),
                 lambda x: np.asarray(ref(x, axis=_axis(dim, x), keepdims=keepdim)), [shape],
                 grad=False, gradgrad=False)


def test_sum_and_mean_of_everything_are_0d():
    x = t64(np.arange(6.0).reshape(2, 3))
    assert x.sum().shape == () and x.sum().item() == 15.0
    assert x.mean().item() == 2.5
    assert cr.sum(x, dim=(), keepdim=False).shape == ()
    assert cr.sum(cr.ones(0, 3)).item() == 0.0
    assert math.isnan(cr.mean(cr.ones(0, 3)).item())


@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("shape,dim", [((5,), None), ((3, 4), 1), ((3, 4), -2),
                                       ((2, 3, 4), (0, 2)), ((3, 4), None)])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std(name, shape, dim, correction):
    ref = getattr(np, name)
    check_op(lambda x: getattr(cr, name)(x, dim, correction=correction),
             lambda x: np.asarray(ref(x, axis=_axis(dim, x), ddof=correction)), [shape])
    check_op(lambda x: getattr(x, name)(dim, keepdim=True, correction=correction),
             lambda x: ref(x, axis=_axis(dim, x), ddof=correction, keepdims=True), [shape],
             grad=False, gradgrad=False)


def test_var_unbiased_flag_and_too_few_elements():
    x = t64([1.0, 2.0, 4.0])
    np.testing.assert_allclose(cr.var(x, unbiased=False).item(), np.var([1, 2, 4]))
    np.testing.assert_allclose(x.var(0, False).item(), np.var([1, 2, 4]))
    np.testing.assert_allclose(cr.std(x).item(), np.std([1, 2, 4], ddof=1))
    assert math.isnan(cr.var(t64([1.0])).item())
    v, m = cr.var_mean(x)
    np.testing.assert_allclose([v.item(), m.item()], [np.var([1, 2, 4], ddof=1), 7 / 3])


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shape,dim", [c for c in DIM_CASES if c[0] != (0, 3)])
@pytest.mark.parametrize("name", ["amax", "amin", "logsumexp"])
def test_amax_amin_logsumexp(name, shape, dim, keepdim):
    refs = {"amax": np.amax, "amin": np.amin,
            "logsumexp": lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis,
                                                                 keepdims=keepdims))}
    d = tuple(range(len(shape))) if dim is None and name == "logsumexp" else dim
    check_op(lambda x: getattr(cr, name)(x, d, keepdim),
             lambda x: np.asarray(refs[name](x, axis=_axis(dim, x), keepdims=keepdim)), [shape])


def test_amax_over_a_nonempty_dim_of_an_empty_tensor():
    x = cr.ones(0, 3)
    assert cr.amax(x, 1).shape == (0,)
    assert cr.amin(x, -1, keepdim=True).shape == (0, 1)
    with pytest.raises(RuntimeError, match="amax"):
        cr.amax(x, 0)
    with pytest.raises(RuntimeError, match="amax"):
        cr.amax(x)


def test_logsumexp_of_empty_is_minus_inf():
    out = cr.logsumexp(cr.ones(0, 3), 0)
    assert out.shape == (3,)
    assert np.all(out.numpy() == -np.inf)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shape,dim", [((4,), 0), ((2, 3), 1), ((2, 3), -2), ((2, 3, 2), 1)])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_along_dim(name, shape, dim, keepdim):
    npf = {"max": (np.amax, np.argmax), "min": (np.amin, np.argmin)}[name]
    check_op(lambda x: getattr(cr, name)(x, dim, keepdim).values,
             lambda x: npf[0](x, axis=dim, keepdims=keepdim), [shape])
    x = t64(np.random.default_rng(1).standard_normal(shape))
    res = getattr(x, name)(dim=dim, keepdim=keepdim)
    values, indices = res
    assert res.values is values and res.indices is indices
    assert indices.dtype == cr.int64
    np.testing.assert_array_equal(indices.numpy(), npf[1](x.numpy(), axis=dim,
                                                          keepdims=keepdim))


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_full_reduction(name):
    check_op(lambda x: getattr(cr, name)(x), getattr(np, "a" + name), [(), (4,), (2, 3)])
    check_op(lambda x: getattr(x, name)(), getattr(np, "a" + name), [(2, 3)], grad=False,
             gradgrad=False)


def test_max_of_0d_along_dim():
    x = t64(3.0, requires_grad=True)
    v, i = cr.max(x, 0)
    assert v.item() == 3.0 and i.item() == 0 and v.shape == ()


def test_argmax_argmin():
    x = cr.tensor([[1.0, 5.0, 5.0], [7.0, 0.0, 7.0]])
    assert cr.argmax(x).item() == 3
    assert cr.argmax(x, 1).tolist() == [1, 0]
    assert x.argmin(dim=1, keepdim=True).tolist() == [[0], [1]]
    assert not cr.argmax(x.requires_grad_()).requires_grad


# ---------------------------------------------------------------- ties
def test_full_max_ties_split_evenly():
    x = t64([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    for fn in (cr.max, cr.amax, lambda t: t.max(), lambda t: t.amax(0)):
        (g,) = grads_of(fn, x)
        np.testing.assert_array_equal(g, [0.0, 0.5, 0.5, 0.0])
    (g,) = grads_of(cr.min, t64([2.0, 1.0, 1.0, 1.0], requires_grad=True))
    np.testing.assert_allclose(g, [0.0, 1 / 3, 1 / 3, 1 / 3])


def test_amax_amin_along_dim_ties_split_evenly():
    x = t64([[1.0, 4.0, 4.0], [2.0, 2.0, 0.0]], requires_grad=True)
    (g,) = grads_of(lambda t: cr.amax(t, 1), x)
    np.testing.assert_array_equal(g, [[0.0, 0.5, 0.5], [0.5, 0.5, 0.0]])
    (g,) = grads_of(lambda t: cr.amin(t, 0, keepdim=True), x)
    np.testing.assert_array_equal(g, [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])


def test_max_along_dim_sends_gradient_to_returned_index_only():
    x = t64([[1.0, 4.0, 4.0], [2.0, 2.0, 0.0]], requires_grad=True)
    v, i = cr.max(x, 1)
    (g,) = cr.autograd.grad(v, x, cr.ones_like(v))
    expected = np.zeros((2, 3))
    expected[np.arange(2), i.numpy()] = 1.0
    np.testing.assert_array_equal(g.numpy(), expected)
    assert g.numpy().sum() == 2.0
    v, i = cr.min(x, 0, keepdim=True)
    (g,) = cr.autograd.grad(v, x, cr.ones_like(v))
    assert g.numpy().sum() == 3.0
    assert set(np.unique(g.numpy())) == {0.0, 1.0}


# ---------------------------------------------------------------- softmax family
@pytest.mark.parametrize("shape,dim", [((4,), 0), ((4,), -1), ((2, 3), 1), ((2, 3), 0),
                                       ((2, 3, 2), -2), ((), 0), ((0, 3), 1)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_log_softmax(name, shape, dim):
    def ref(x):
        e = np.exp(x - np.max(x, axis=dim, keepdims=True)) if x.size else x
        s = e / np.sum(e, axis=dim, keepdims=True) if x.size else x
        return s if name == "softmax" else np.log(s)

    check_op(lambda x: getattr(cr, name)(x, dim), ref, [shape])
    check_op(lambda x: getattr(x, name)(dim=dim), ref, [shape], grad=False, gradgrad=False)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_stable_at_1000(name):
    x = t64([[1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -1000.0]], requires_grad=True)
    out = getattr(cr, name)(x, 1)
    vals = out.detach().numpy()
    assert np.all(np.isfinite(vals))
    log2 = math.log(2.0)
    expected = {
        "softmax": [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]],
        "log_softmax": [[-log2, -log2, -2000 - log2], [-math.log(3)] * 3],
        "logsumexp": [1000 + log2, -1000 + math.log(3)],
    }[name]
    np.testing.assert_allclose(vals, expected, rtol=1e-12)
    (g,) = grads_of(lambda t: getattr(cr, name)(t, 1), x, grad_output=t64(
        np.arange(out.numel(), dtype=np.float64).reshape(out.shape) + 1))
    assert np.all(np.isfinite(g))
    if name == "logsumexp":
        np.testing.assert_allclose(g, [[0.5, 0.5, 0.0], [2 / 3, 2 / 3, 2 / 3]])


def test_softmax_dtype_argument():
    x = cr.tensor([1.0, 2.0])
    assert cr.softmax(x, 0, dtype=cr.float64).dtype == cr.float64
    assert cr.log_softmax(x, -1).dtype == cr.float32


# ---------------------------------------------------------------- cumsum, norm
@pytest.mark.parametrize("shape,dim", [((4,), 0), ((2, 3), 1), ((2, 3), -2), ((2, 3, 2), 2),
                                       ((), 0), ((0, 3), 1)])
def test_cumsum(shape, dim):
    check_op(lambda x: cr.cumsum(x, dim), lambda x: np.cumsum(x, axis=dim) if x.ndim else x,
             [shape])
    check_op(lambda x: x.cumsum(dim), lambda x: np.cumsum(x, axis=dim) if x.ndim else x,
             [shape], grad=False, gradgrad=False)


def test_cumsum_integer_dtype():
    out = cr.cumsum(cr.tensor([1, 2, 3], dtype=cr.int32), 0)
    assert out.dtype == cr.int64 and out.tolist() == [1, 3, 6]


@pytest.mark.parametrize("p", ["fro", 2, 1, 3, float("inf")])
@pytest.mark.parametrize("shape,dim", [((4,), None), ((2, 3), None), ((2, 3), 1),
                                       ((2, 3, 2), (0, 2))])
def test_norm(p, shape, dim):
    def ref(x):
        a = np.abs(x)
        if p == float("inf"):
            return np.amax(a, axis=_axis(dim, x))
        q = 2 if p == "fro" else p
        return np.sum(a ** q, axis=_axis(dim, x)) ** (1.0 / q)

    domain = (0.2, 2) if p in (1, 3, float("inf")) else (-2, 2)
    check_op(lambda x: cr.norm(x, p, dim), ref, [shape], domain)
    check_op(lambda x: x.norm(p, dim), ref, [shape], domain, grad=False, gradgrad=False)


def test_norm_zero_and_minus_inf_and_bad_p():
    x = t64([[0.0, -2.0, 3.0], [1.0, 0.0, 0.0]], requires_grad=True)
    np.testing.assert_array_equal(cr.norm(x, 0, 1).detach().numpy(), [2.0, 1.0])
    assert cr.norm(x, -float("inf")).item() == 0.0
    (g,) = grads_of(lambda t: cr.norm(t, 0), x)
    np.testing.assert_array_equal(g, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="norm: p must be 'fro', a number or inf, got 'nuc'"):
        cr.norm(x, "nuc")


@pytest.mark.parametrize("p", ["fro", 1, 3, float("inf")])
def test_norm_gradient_at_zero_is_zero(p):
    x = t64(np.zeros(3), requires_grad=True)
    (g,) = grads_of(lambda t: cr.norm(t, p), x)
    np.testing.assert_array_equal(g, np.zeros(3))
    y = t64([3.0, 4.0], requires_grad=True)
    (g,) = grads_of(cr.norm, y)
    np.testing.assert_allclose(g, [0.6, 0.8])


def test_std_gradient_where_std_is_zero_is_zero():
    x = t64([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    (g,) = grads_of(lambda t: cr.std(t, 1), x)
    np.testing.assert_array_equal(g[1], np.zeros(3))
    xv = x.detach().numpy()[0]
    expected = (xv - xv.mean()) / (2 * np.std(xv, ddof=1))
    np.testing.assert_allclose(g[0], expected)


def test_dist():
    check_op(cr.dist, lambda a, b: np.sqrt(np.sum((a - b) ** 2)), [((2, 3), (3,))])


def test_all_any_count_nonzero():
    x = cr.tensor([[True, False], [True, True]])
    assert cr.all(x).item() is False
    assert cr.all(x, 0).tolist() == [True, False]
    assert cr.any(x, 1).tolist() == [True, True]
    assert cr.count_nonzero(x).item() == 3
    assert x.count_nonzero(0).tolist() == [2, 1]
