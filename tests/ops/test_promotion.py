"""Type promotion follows PyTorch: categories bool < int < float, Python scalars and 0-d
tensors only decide the result when their category is higher, int / int is float32."""

import numpy as np
import pytest

import chainrule as cr


def f32(data):
    return cr.tensor(data, dtype=cr.float32)


def f64(data):
    return cr.tensor(data, dtype=cr.float64)


def i32(data):
    return cr.tensor(data, dtype=cr.int32)


def i64(data):
    return cr.tensor(data, dtype=cr.int64)


def b(data):
    return cr.tensor(data, dtype=cr.bool)


CASES = [
    # (a, b, op, expected dtype)
    (lambda: i64([1, 2]), lambda: f32([1.0, 2.0]), "add", cr.float32),
    (lambda: i64([1, 2]), lambda: f64([1.0, 2.0]), "add", cr.float64),
    (lambda: f32([1.0]), lambda: f64([1.0]), "mul", cr.float64),
    (lambda: cr.tensor([1.0], dtype=cr.float16), lambda: f32([1.0]), "add", cr.float32),
    (lambda: i32([1]), lambda: i64([1]), "add", cr.int64),
    (lambda: b([True]), lambda: i32([1]), "add", cr.int32),
    (lambda: b([True]), lambda: i64([1]), "mul", cr.int64),
    (lambda: b([True]), lambda: f32([1.0]), "add", cr.float32),
    (lambda: b([True]), lambda: b([False]), "add", cr.bool),
    # Python scalars don't upcast within a category
    (lambda: f32([1.0]), lambda: 2.5, "add", cr.float32),
    (lambda: cr.tensor([1.0], dtype=cr.float16), lambda: 2.5, "mul", cr.float16),
    (lambda: i32([1]), lambda: 3, "add", cr.int32),
    (lambda: i32([1]), lambda: 2.5, "add", cr.float32),
    (lambda: i64([1]), lambda: 2.5, "mul", cr.float32),
    (lambda: b([True]), lambda: 1, "add", cr.int64),
    (lambda: b([True]), lambda: 1.5, "add", cr.float32),
    (lambda: f64([1.0]), lambda: 2, "sub", cr.float64),
    (lambda: 2, lambda: f32([1.0]), "sub", cr.float32),
    (lambda: 2.5, lambda: i32([1]), "mul", cr.float32),
    # 0-d tensors behave like scalars when their category is not higher
    (lambda: f32([1.0]), lambda: f64(2.0), "add", cr.float32),
    (lambda: i32([1]), lambda: i64(2), "add", cr.int32),
    (lambda: i64([1]), lambda: f64(2.0), "add", cr.float64),
    (lambda: cr.tensor([1.0], dtype=cr.float16), lambda: f64(2.0), "mul", cr.float16),
    (lambda: f64(1.0), lambda: f32(2.0), "add", cr.float64),
    (lambda: i64(1), lambda: f32(2.0), "add", cr.float32),
    # true division of integers gives the default float dtype
    (lambda: i64([1, 2]), lambda: i64([2, 4]), "div", cr.float32),
    (lambda: i32([1, 2]), lambda: 2, "div", cr.float32),
    (lambda: 1, lambda: i64([2]), "div", cr.float32),
    (lambda: b([True]), lambda: b([True]), "div", cr.float32),
    (lambda: f64([1.0]), lambda: i64([2]), "div", cr.float64),
    (lambda: i64([3]), lambda: 2, "pow", cr.int64),
    (lambda: i64([3]), lambda: 0.5, "pow", cr.float32),
    (lambda: f32([3.0]), lambda: f64(2.0), "pow", cr.float32),
    (lambda: i64([3]), lambda: f32([2.0]), "maximum", cr.float32),
    (lambda: i64([3]), lambda: 2.5, "minimum", cr.float32),
]

OPS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: a ** b,
    "maximum": lambda a, b: cr.maximum(a, b), "minimum": lambda a, b: cr.minimum(a, b),
}


@pytest.mark.parametrize("case", range(len(CASES)))
def test_binary_promotion(case):
    make_a, make_b, op, expected = CASES[case]
    a, other = make_a(), make_b()
    out = OPS[op](a, other)
    assert out.dtype == expected, f"{op}({a!r}, {other!r}) gave {out.dtype}"
    ra = a.numpy() if isinstance(a, cr.Tensor) else a
    rb = other.numpy() if isinstance(other, cr.Tensor) else other
    ref = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
           "pow": np.power, "maximum": np.maximum, "minimum": np.minimum}[op](
        np.asarray(ra, dtype=np.float64), np.asarray(rb, dtype=np.float64))
    np.testing.assert_allclose(out.numpy().astype(np.float64), ref, rtol=1e-3)


def test_int_division_values():
    out = cr.tensor([1, 7, -7]) / cr.tensor([2, 2, 2])
    assert out.dtype == cr.float32
    np.testing.assert_allclose(out.numpy(), [0.5, 3.5, -3.5])


def test_division_rounding_modes_keep_integer_dtype():
    a = cr.tensor([7, -7])
    assert cr.div(a, 2, rounding_mode="floor").tolist() == [3, -4]
    assert cr.div(a, 2, rounding_mode="trunc").tolist() == [3, -3]
    assert cr.div(a, 2, rounding_mode="floor").dtype == cr.int64
    assert (a // 2).tolist() == [3, -4]


def test_float_functions_of_integers_give_default_float():
    x = cr.tensor([1, 2, 3])
    for fn in (cr.exp, cr.log, cr.sqrt, cr.sin, cr.tanh, cr.sigmoid):
        assert fn(x).dtype == cr.float32
    assert cr.relu(x).dtype == cr.int64
    assert cr.abs(cr.tensor([-1, 2])).dtype == cr.int64
    assert cr.neg(x).dtype == cr.int64


def test_reductions_of_integers():
    x = cr.tensor([[1, 2], [3, 4]], dtype=cr.int32)
    assert x.sum().dtype == cr.int64
    assert cr.tensor([True, True, False]).sum().item() == 2
    assert cr.tensor([True, True, False]).sum().dtype == cr.int64
    assert x.amax().dtype == cr.int32
    assert x.mean(dtype=cr.float32).dtype == cr.float32
    assert cr.softmax(x, dim=1).dtype == cr.float32


def test_where_promotes_branches():
    cond = cr.tensor([True, False])
    assert cr.where(cond, cr.tensor([1, 2]), 0.5).dtype == cr.float32
    assert cr.where(cond, f32([1.0, 2.0]), f64([3.0, 4.0])).dtype == cr.float64
    assert cr.where(cond, f32([1.0, 2.0]), 0.0).dtype == cr.float32
    assert cr.where(cond, i64([1, 2]), 0).dtype == cr.int64


def test_clamp_dtype():
    assert cr.clamp(cr.tensor([1, 5, 9]), 2, 6).dtype == cr.int64
    assert cr.clamp(cr.tensor([1, 5, 9]), 2, 6).tolist() == [2, 5, 6]
    out = cr.clamp(cr.tensor([1, 5, 9]), 2.5)
    assert out.dtype == cr.float32
    np.testing.assert_allclose(out.numpy(), [2.5, 5, 9])
    assert cr.clamp(f32([1.0, 5.0]), f64(2.0)).dtype == cr.float32


def test_matmul_does_not_promote():
    # like PyTorch, matmul needs equal dtypes (see test_errors) instead of promoting
    with pytest.raises(TypeError, match="matmul: expected both operands to have the same"):
        cr.ones(2, 2) @ cr.ones(2, 2, dtype=cr.float64)
    assert (cr.ones(2, 2, dtype=cr.int64) @ cr.ones(2, 2, dtype=cr.int64)).dtype == cr.int64
    assert (cr.ones(2, 2, dtype=cr.float64) @ cr.ones(2, dtype=cr.float64)).dtype == cr.float64


def test_gradient_has_input_dtype_after_promotion():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    out = x * y
    assert out.dtype == cr.float64
    out.sum().backward()
    assert x.grad.dtype == cr.float32
    assert y.grad.dtype == cr.float64
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 2.0])


def test_python_scalar_result_of_float16():
    x = cr.tensor([1.0], dtype=cr.float16, requires_grad=True)
    y = (x * 2.0 + 1) / 3
    assert y.dtype == cr.float16
    y.sum().backward()
    assert x.grad.dtype == cr.float16


FLOAT_FNS = [
    cr.exp, cr.expm1, cr.log, cr.log1p, cr.sqrt, cr.rsqrt, cr.abs, cr.sin, cr.cos, cr.tan,
    cr.atan, cr.sinh, cr.cosh, cr.tanh, cr.sigmoid, cr.relu, cr.erf, cr.square,
    cr.reciprocal, cr.softplus, lambda x: cr.clamp(x, 0.2, 0.8), lambda x: x ** 2,
    lambda x: 2 ** x, lambda x: 1 / x, lambda x: cr.maximum(x, 0.5),
    lambda x: cr.logaddexp(x, x), lambda x: cr.lerp(x, x * 2, 0.3),
    lambda x: cr.where(x > 0.5, x, 0.0), lambda x: x.sum(0), lambda x: x.mean(),
    lambda x: x.var(1), lambda x: x.std(), lambda x: x.amax(1), lambda x: x.max(0).values,
    lambda x: cr.logsumexp(x, 1), lambda x: cr.softmax(x, 1), lambda x: cr.log_softmax(x, 0),
    lambda x: cr.cumsum(x, 1), lambda x: cr.norm(x), lambda x: cr.norm(x, 1, 0),
    lambda x: x @ x.T, lambda x: cr.einsum("ij,ij->i", x, x), lambda x: x[[0, 0]],
]


@pytest.mark.parametrize("dtype", [cr.float32, cr.float16])
@pytest.mark.parametrize("k", range(len(FLOAT_FNS)))
def test_float_dtype_is_kept_by_values_and_gradients(k, dtype):
    x = cr.tensor([[0.3, 0.6, 0.9], [0.4, 0.5, 0.7]], dtype=dtype, requires_grad=True)
    out = FLOAT_FNS[k](x)
    assert out.dtype == dtype
    out.sum().backward()
    assert x.grad.dtype == dtype
    assert np.all(np.isfinite(x.grad.numpy()))


def test_python_float_operands_match_numpy_bitwise():
    # the dispatcher passes Python floats to NumPy as cached 0-d arrays of the
    # tensor's dtype: same results as NumPy's own scalar handling, signed zeros kept
    from chainrule.backend import const

    for dt in (np.float16, np.float32, np.float64):
        a = np.array([-1.5, -0.0, 0.0, 3.25, 250.0], dtype=dt)
        t = cr.tensor(a, requires_grad=True)
        for v in (0.5, -0.0, 0.0, 1e-3, float("nan"), 7.0):
            np.testing.assert_array_equal((t * v).detach().numpy(), a * v)
            np.testing.assert_array_equal((v - t).detach().numpy(), v - a)
            assert (t * v).dtype == t.dtype
        got = (t * -0.0).detach().numpy()
        assert np.signbit(got[0]) == np.signbit(np.float64(-1.5) * -0.0)
    c = const(0.5, np.dtype(np.float32))
    assert c is const(0.5, np.dtype(np.float32)) and not c.flags.writeable
    assert const(-0.0, np.dtype(np.float32)) == 0.0 and np.signbit(const(-0.0, np.float32))
