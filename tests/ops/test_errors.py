"""Op-level bad input: each error names the op, what it got, and what would be valid."""

import re

import numpy as np
import pytest

import chainrule as cr


def raises(exc, *fragments):
    """``pytest.raises`` matching every fragment (plain text, in order) in the message."""
    return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


# ---------------------------------------------------------------- broadcasting
@pytest.mark.parametrize("op,name", [
    (lambda a, b: a + b, "add"), (lambda a, b: a - b, "sub"), (lambda a, b: a * b, "mul"),
    (lambda a, b: a / b, "div"), (lambda a, b: a ** b, "pow"),
    (cr.maximum, "maximum"), (cr.minimum, "minimum"), (cr.logaddexp, "logaddexp"),
    (lambda a, b: a == b, "eq"), (lambda a, b: a < b, "lt"),
    (lambda a, b: cr.lerp(a, b, 0.5), "lerp"),
    (lambda a, b: cr.where(cr.ones(2, 3) > 0, a, b), "where"),
])
def test_broadcast_mismatch(op, name):
    a = cr.ones(2, 3, requires_grad=True)
    b = cr.ones(4)
    with raises(ValueError, f"{name}: shapes", "(2, 3)", "(4,)", "not broadcastable",
                "trailing dimensions must be equal or 1"):
        op(a, b)


def test_broadcast_mismatch_in_place_and_masks():
    x = cr.ones(2, 3)
    with raises(ValueError, "add_: shape (4,)", "(2, 3)"):
        x.add_(cr.ones(4))
    with raises(ValueError, "masked_fill: mask of shape (2,)", "input of shape (2, 3)",
                "trailing dimensions must be equal or 1"):
        x.masked_fill(cr.tensor([True, False]), 0.0)
    with raises(ValueError, "masked_select: mask of shape (2,)", "(2, 3)"):
        x.masked_select(cr.tensor([True, False]))
    with raises(ValueError, "expand: the shape (2, 3) can't be expanded to (3, 3)",
                "must match or be 1"):
        x.expand(3, 3)
    assert x._version == 0


# ---------------------------------------------------------------- matmul family
@pytest.mark.parametrize("a,b,fragments", [
    ((2, 3), (4, 5), ["matmul: shapes (2, 3) and (4, 5) cannot be multiplied (3 != 4)",
                      "last dimension of the first must equal the second-to-last"]),
    ((3,), (4,), ["matmul: shapes (3,) and (4,)", "(3 != 4)"]),
    ((2, 3), (4,), ["matmul: shapes (2, 3) and (4,)", "(3 != 4)"]),
    ((), (4,), ["matmul: both arguments need at least 1 dimension", "()", "(4,)"]),
    ((2, 2, 3), (3, 3, 4), ["matmul: batch dimensions of shapes (2, 2, 3) and (3, 3, 4)",
                            "each must be equal or 1"]),
])
def test_matmul_shape_errors(a, b, fragments):
    with raises(ValueError, *fragments):
        cr.ones(*a) @ cr.ones(*b)


def test_mm_bmm_mv_dot_outer_einsum_errors():
    with raises(ValueError, "mm: expects 2-d tensors", "(3,) and (3, 3)"):
        cr.mm(cr.ones(3), cr.ones(3, 3))
    with raises(ValueError, "bmm: expects 3-d tensors with the same batch size",
                "(2, 2, 3) and (3, 3, 4)"):
        cr.bmm(cr.ones(2, 2, 3), cr.ones(3, 3, 4))
    with raises(ValueError, "mv: expects a 2-d and a 1-d tensor", "(2, 3) and (3, 1)"):
        cr.mv(cr.ones(2, 3), cr.ones(3, 1))
    with raises(ValueError, "dot: the vectors must have the same length", "(3,) and (4,)"):
        cr.dot(cr.ones(3), cr.ones(4))
    with raises(ValueError, "outer: expects 1-d tensors", "(3, 1) and (4,)"):
        cr.outer(cr.ones(3, 1), cr.ones(4))
    with raises(ValueError, "einsum: subscript 'j' has size 3 in one operand and 4"):
        cr.einsum("ij,jk", cr.ones(2, 3), cr.ones(4, 5))
    with raises(ValueError, "einsum: a dimension under '...' has size 2 in one operand and 3",
                "must match or be 1"):
        cr.einsum("...i,...i", cr.ones(2, 4), cr.ones(3, 4))
    with raises(ValueError, "einsum: the equation 'ij,jk' names 2 operands but 1"):
        cr.einsum("ij,jk", cr.ones(2, 3))
    with raises(ValueError, "einsum: subscripts 'ijk' do not match an operand with 2",
                "(2, 3)"):
        cr.einsum("ijk->i", cr.ones(2, 3))


@pytest.mark.parametrize("op", ["matmul", "mm", "dot", "einsum"])
def test_matmul_family_dtype_mismatch(op):
    a = cr.ones(3, 3) if op in ("matmul", "mm") else cr.ones(3)
    b = a.double()
    call = {"matmul": lambda: a @ b, "mm": lambda: cr.mm(a, b), "dot": lambda: cr.dot(a, b),
            "einsum": lambda: cr.einsum("i,i->", a, b)}[op]
    with raises(TypeError, f"{op}:", "chainrule.float32", "chainrule.float64"):
        call()


# ---------------------------------------------------------------- joining, reshaping
def test_cat_and_stack_errors():
    with raises(ValueError, "cat: tensors must have the same shape except in dimension 0",
                "(2, 3), (2, 4)"):
        cr.cat([cr.ones(2, 3), cr.ones(2, 4)])
    with raises(ValueError, "cat: tensor 1 has 1 dimensions (shape (3,))",
                "tensor 0 has 2 (shape (2, 3))"):
        cr.cat([cr.ones(2, 3), cr.ones(3)])
    with raises(IndexError, "cat: dimension out of range", "[-2, 1]", "got 2"):
        cr.cat([cr.ones(2, 3), cr.ones(2, 3)], dim=2)
    with raises(ValueError, "cat: zero-dimensional tensors cannot be concatenated",
                "use stack"):
        cr.cat([cr.ones(()), cr.ones(())])
    with raises(TypeError, "cat: expected a list or tuple of tensors, got Tensor"):
        cr.cat(cr.ones(2, 3))
    with raises(ValueError, "stack: expects each tensor to be equal size", "(2, 3)",
                "(3, 2) at entry 1"):
        cr.stack([cr.ones(2, 3), cr.ones(3, 2)])


@pytest.mark.parametrize("call,fragments", [
    (lambda x: x.reshape(4, 2), ["reshape: shape (4, 2) is invalid for input of size 6",
                                 "(input shape (2, 3))", "must multiply to 6"]),
    (lambda x: x.reshape(4, -1), ["reshape: shape (4, -1)", "6 is not a multiple of 4"]),
    (lambda x: x.reshape(-1, -1), ["reshape: only one dimension can be -1"]),
    (lambda x: x.view(5), ["view: shape (5,) is invalid for input of size 6"]),
    (lambda x: x.unflatten(1, (4, 2)), ["unflatten: shape (4, 2)", "must multiply to 3"]),
    (lambda x: x.permute(0, 0), ["permute: dims (0, 0) are not a permutation of (0, 1)"]),
    (lambda x: x.permute(0), ["permute: expected 2 dims for shape (2, 3)"]),
    (lambda x: x.flatten(1, 0), ["flatten: start_dim 1 comes after end_dim 0"]),
    (lambda x: x.split([2, 2], 1), ["split: sizes [2, 2] sum to 4", "size 3"]),
    (lambda x: x.narrow(1, 2, 2), ["narrow: start (2) + length (2) exceeds dimension 1 of "
                                   "size 3"]),
    (lambda x: x.repeat(2), ["repeat: number of repeats (1)", "number of dimensions (2)"]),
    (lambda x: cr.tril(x[0]), ["tril: input tensor must have at least 2 dimensions",
                               "(3,)"]),
])
def test_shape_errors(call, fragments):
    with raises(ValueError, *fragments):
        call(cr.ones(2, 3))


def test_reshape_of_empty_with_minus_one_is_ambiguous():
    with raises(ValueError, "reshape: shape (2, -1, 0)", "ambiguous"):
        cr.ones(0, 4).reshape(2, -1, 0)


@pytest.mark.parametrize("call,op", [
    (lambda x: x.sum(2), "sum"), (lambda x: x.softmax(-3), "softmax"),
    (lambda x: x.squeeze(3), "squeeze"), (lambda x: x[0].unsqueeze(2), "unsqueeze"),
    (lambda x: x.transpose(0, 2), "transpose"), (lambda x: cr.cumsum(x, 5), "cumsum"),
    (lambda x: x.max(2), "max"), (lambda x: x.amax(-3), "amax"), (lambda x: x.size(2), "size"),
])
def test_dimension_out_of_range(call, op):
    with raises(IndexError, f"{op}: dimension out of range (expected to be in range of "
                "[-2, 1]"):
        call(cr.ones(2, 3))


def test_reduce_empty_dimension():
    with raises(RuntimeError, "amax: can't reduce over dimension 0 of size 0",
                "input shape (0, 3)"):
        cr.ones(0, 3).amax(0)
    with raises(RuntimeError, "amin: can't reduce over dimension 0 of size 0"):
        cr.ones(0, 3).min()
    with raises(RuntimeError, "max: can't reduce over dimension 0 of size 0",
                "only non-empty dimensions"):
        cr.ones(0, 3).max(0)
    with raises(RuntimeError, "argmin: can't reduce over dimension 0 of size 0"):
        cr.ones(0, 3).argmin()
    assert cr.ones(0, 3).max(1).values.shape == (0,)


# ---------------------------------------------------------------- indexing
@pytest.mark.parametrize("idx,fragments", [
    (5, ["getitem: index 5 is out of bounds for axis 0 with size 2", "tensor shape (2, 3)"]),
    ((0, 0, 0), ["getitem: too many indices", "tensor shape (2, 3)"]),
    ([0, 5], ["getitem: index 5 is out of bounds", "array(shape=(2,), dtype=int64)"]),
    (np.array([True, False, True]), ["getitem: boolean index did not match",
                                     "tensor shape (2, 3)"]),
])
def test_getitem_errors(idx, fragments):
    with raises(IndexError, *fragments):
        cr.ones(2, 3)[idx]


def test_index_dtype_errors():
    x = cr.ones(2, 3)
    with raises(IndexError, "indexing: tensors used as indices must be integer or bool",
                "chainrule.float32"):
        x[cr.tensor([0.0])]
    with raises(IndexError, "indexing: lists used as indices must hold integers or bools"):
        x[[0.5]]
    assert x[[]].shape == (0, 3)
    with raises(TypeError, "index_select: index must be an integer tensor",
                "chainrule.float32"):
        x.index_select(0, cr.tensor([0.5]))
    with raises(TypeError, "gather: index must be an integer tensor, got chainrule.float32"):
        x.gather(1, cr.tensor([[0.0]]))
    with raises(TypeError, "masked_fill: mask must be a bool tensor, got chainrule.int64"):
        x.masked_fill(cr.tensor([1, 0, 1]), 0.0)
    with raises(TypeError, "masked_select: mask must be a bool tensor"):
        x.masked_select(cr.tensor([1, 0, 1]))


def test_gather_family_shape_errors():
    x = cr.ones(2, 3)
    with raises(ValueError, "gather: index must have as many dimensions as the input (2)",
                "index shape (2,)"):
        x.gather(1, cr.tensor([0, 1]))
    with raises(IndexError, "gather: index out of range for dimension 1 with size 3"):
        x.gather(1, cr.tensor([[3]]))
    with raises(ValueError, "take_along_dim: input shape (2, 3) and indices shape (3, 1)",
                "except dim 1"):
        cr.take_along_dim(x, cr.tensor([[0], [1], [1]]), 1)
    with raises(ValueError, "scatter_add: index shape (1, 2)", "src (shape (1, 1))"):
        cr.scatter_add(x, 0, cr.tensor([[0, 1]]), cr.ones(1, 1))
    with raises(ValueError, "index_select: index must be 1-d, got shape (1, 1)"):
        x.index_select(0, cr.tensor([[0]]))


def test_setitem_errors_leave_tensor_unchanged():
    x = cr.zeros(2, 3)
    with raises(ValueError, "setitem: value of shape (4,)", "tensor of shape (2, 3)"):
        x[0] = cr.ones(4)
    with raises(IndexError, "setitem:", "out of bounds", "(2, 3)"):
        x[7] = 1.0
    y = cr.zeros(2, 3, requires_grad=True) * 1.0
    with raises(ValueError, "setitem: value of shape (4,)", "(2, 3)"):
        y[0] = cr.ones(4)
    assert x._version == 0 and y._version == 0
    np.testing.assert_array_equal(x.numpy(), np.zeros((2, 3)))


# ---------------------------------------------------------------- dtypes
@pytest.mark.parametrize("make", [
    lambda: cr.tensor([1, 2], requires_grad=True),
    lambda: cr.tensor([1, 2]).requires_grad_(),
    lambda: cr.zeros(2, dtype=cr.int64, requires_grad=True),
    lambda: cr.ones(2, dtype=cr.bool, requires_grad=True),
    lambda: cr.arange(3, requires_grad=True),
    lambda: cr.Tensor([1, 2], requires_grad=True),
])
def test_requires_grad_on_integer_tensor(make):
    with raises(RuntimeError, "requires_grad: only floating point tensors can require "
                "gradients, got dtype chainrule.", "x.float()"):
        make()


def test_in_place_dtype_errors():
    i = cr.tensor([1, 2])
    with raises(TypeError, "add_: result type chainrule.float32 can't be cast to the "
                "tensor's dtype chainrule.int64", "out-of-place"):
        i.add_(cr.tensor([0.5, 0.5]))
    with raises(TypeError, "mul_: result type chainrule.float32", "chainrule.int64"):
        i.mul_(0.5)
    with raises(TypeError, "div_: result type chainrule.float32", "chainrule.int64"):
        i.div_(2)
    assert i.tolist() == [1, 2] and i._version == 0


def test_other_dtype_errors():
    with raises(TypeError, "mean: could not infer output dtype",
                "chainrule.int64 is not floating", "dtype="):
        cr.tensor([1, 2]).mean()
    with raises(TypeError, "bitwise_and: only integer and bool tensors are supported",
                "chainrule.float32", "logical_and"):
        cr.ones(2) & cr.ones(2)
    with raises(TypeError, "bitwise_not: only integer and bool tensors", "logical_not"):
        ~cr.ones(2)
    with raises(TypeError, "neg: negation, the `-` operator, on a bool tensor",
                "logical_not"):
        -cr.tensor([True, False])
    with raises(TypeError, "where: expected condition to be a bool tensor",
                "chainrule.int64", "x > 0"):
        cr.where(cr.tensor([1, 0]), cr.ones(2), cr.zeros(2))
    with raises(ValueError, "pow: integers to negative integer powers are not allowed"):
        cr.tensor([2]) ** cr.tensor([-1])


def test_clamp_and_pad_argument_errors():
    with raises(ValueError, "clamp: at least one of min and max must not be None"):
        cr.ones(2).clamp()
    from chainrule.ops.shape_api import pad

    with raises(ValueError, "pad: padding length must be even and at most 2*ndim (2)",
                "got 3"):
        pad(cr.ones(2), (1, 2, 3))
    with raises(ValueError, "chunk: chunks must be positive, got 0"):
        cr.ones(2).chunk(0)
