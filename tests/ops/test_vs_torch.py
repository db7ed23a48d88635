"""Optional cross-check against PyTorch (skipped when torch is absent): values, dtypes and
gradients at the awkward points (zeros, ties, +-inf, 0-d and empty tensors)."""

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

SPECIAL = np.array([0.0, 1.0, -1.0, 2.0, 2.0, -2.0, 0.5, 1e-3])
TIES = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])


def _lib(x):
    return torch if isinstance(x, torch.Tensor) else cr


UNARY = {
    "abs": lambda x: x.abs(), "relu": lambda x: x.relu(), "sigmoid": lambda x: x.sigmoid(),
    "tanh": lambda x: x.tanh(), "erf": lambda x: x.erf(), "expm1": lambda x: x.expm1(),
    "sign": lambda x: x.sign(), "floor": lambda x: x.floor(),
    "clamp": lambda x: x.clamp(-1.0, 1.0), "clamp_min": lambda x: x.clamp(min=0.0),
    "pow0": lambda x: x ** 0, "pow2": lambda x: x ** 2, "pow3": lambda x: x ** 3,
    "norm": lambda x: x.norm(), "norm1": lambda x: x.norm(1), "norm3": lambda x: x.norm(3),
    "norm_inf": lambda x: x.norm(float("inf")), "amax": lambda x: x.amax(),
    "max": lambda x: x.max(), "min": lambda x: x.min(), "std": lambda x: x.std(),
    "var": lambda x: x.var(), "mean": lambda x: x.mean(), "sum": lambda x: x.sum(),
    "logsumexp": lambda x: x.logsumexp(-1), "softmax": lambda x: x.softmax(-1),
    "log_softmax": lambda x: x.log_softmax(-1), "cumsum": lambda x: x.cumsum(-1),
    "maximum0": lambda x: _lib(x).maximum(x, _lib(x).zeros_like(x)),
    "logaddexp": lambda x: _lib(x).logaddexp(x, x.flip(-1)),
    "softplus": lambda x: (torch.nn.functional.softplus(x) if isinstance(x, torch.Tensor)
                           else cr.softplus(x)),
    "amax_dim": lambda x: x.amax(-1), "max_dim": lambda x: x.max(-1)[0],
    "std_dim": lambda x: x.std(-1), "norm_dim": lambda x: x.norm(dim=-1),
}


def _compare(fn, arrays, grad=True):
    xs_c = [cr.tensor(a, requires_grad=grad) for a in arrays]
    xs_t = [torch.tensor(a, requires_grad=grad) for a in arrays]
    out_c = fn(*xs_c)
    out_t = fn(*xs_t)
    assert out_c.shape == tuple(out_t.shape)
    assert str(out_c.dtype) == str(out_t.dtype).replace("torch.", "")
    np.testing.assert_allclose(out_c.detach().numpy(), out_t.detach().numpy(), rtol=1e-6,
                               atol=1e-12, equal_nan=True)
    if not grad:
        return
    go = np.random.default_rng(0).standard_normal(out_t.shape)
    gs_t = torch.autograd.grad(out_t, xs_t, torch.tensor(go), allow_unused=True)
    gs_c = cr.autograd.grad(out_c, xs_c, cr.tensor(go), allow_unused=True)
    for gc, gt, x in zip(gs_c, gs_t, arrays):
        a = np.zeros(x.shape) if gc is None else gc.numpy()
        b = np.zeros(x.shape) if gt is None else gt.numpy()
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12, equal_nan=True)


# 0-d inputs of the dim reductions and var/std are covered in test_reduction (torch warns
# on one-element var), so those pairs are left out here.
_NO_0D = ("max_dim", "amax_dim", "std_dim", "norm_dim", "std", "var")
_DATA = {"special": SPECIAL, "ties": TIES, "zero_0d": np.array(0.0), "0d": np.array(0.7)}
_CASES = [(n, k) for n in sorted(UNARY) for k, d in _DATA.items()
          if not (d.ndim == 0 and n in _NO_0D)]


@pytest.mark.parametrize("name,kind", _CASES)
def test_unary_matches_torch(name, kind):
    data = _DATA[kind]
    with np.errstate(divide="ignore", invalid="ignore"):
        _compare(UNARY[name], [data.copy()])


@pytest.mark.parametrize("op", ["maximum", "minimum", "mul", "div", "lerp", "clamp"])
def test_binary_ties_match_torch(op):
    a, b = TIES.copy(), TIES[::-1].copy() + np.array([0.0, 0.0, 1.0])
    fns = {
        "maximum": lambda x, y: _lib(x).maximum(x, y),
        "minimum": lambda x, y: _lib(x).minimum(x, y),
        "mul": lambda x, y: x * y, "div": lambda x, y: x / (y + 5),
        "lerp": lambda x, y: _lib(x).lerp(x, y, x), "clamp": lambda x, y: x.clamp(y, y + 0.5),
    }
    _compare(fns[op], [a, b])


PROMOTIONS = [
    (np.array([1, 2]), np.array([1.5, 2.5], dtype=np.float32)),
    (np.array([1, 2], dtype=np.int32), np.array(2.5)),
    (np.array([True, False]), np.array([2, 3], dtype=np.int8)),
    (np.array([1, 2]), np.array([3, 4])),
    (np.array(3), np.array([1.0], dtype=np.float16)),
    (np.array([1.0], dtype=np.float16), np.array(3.0)),
    (np.array([1.0], dtype=np.float32), np.array(3.0)),
]


@pytest.mark.parametrize("op", ["add", "mul", "div", "maximum", "lt"])
@pytest.mark.parametrize("k", range(len(PROMOTIONS)))
def test_tensor_promotion_matches_torch(op, k):
    a, b = PROMOTIONS[k]
    fn = {"add": lambda x, y: x + y, "mul": lambda x, y: x * y, "div": lambda x, y: x / y,
          "maximum": lambda x, y: _lib(x).maximum(x, y), "lt": lambda x, y: x < y}[op]
    _compare(fn, [a.copy(), b.copy()], grad=False)


@pytest.mark.parametrize("scalar", [2, 2.5, True])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.float16, np.float32])
def test_scalar_promotion_matches_torch(dtype, scalar):
    a = np.array([1, 0, 1], dtype=dtype)
    for fn in (lambda x: x + scalar, lambda x: scalar * x, lambda x: x / scalar,
               lambda x: scalar - x if dtype is not np.bool_ and scalar is not True else x,
               lambda x: x > scalar):
        _compare(fn, [a.copy()], grad=False)
