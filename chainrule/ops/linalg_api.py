"""Public linear-algebra functions (PyTorch names) over the matmul and einsum primitives."""

from __future__ import annotations

from .. import backend
from ..tensor import Tensor
from .elementwise import mul
from .linalg import einsum_, matmul, parse_einsum
from .shape import reshape


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else ()


def mm(input, mat2):
    """Matrix product of two 2-d tensors."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ValueError(f"mm: expects 2-d tensors, got shapes {_shape(input)} and "
                         f"{_shape(mat2)}")
    return matmul(input, mat2)


def bmm(input, mat2):
    """Batched matrix product of two 3-d tensors with equal batch sizes."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise ValueError(f"bmm: expects 3-d tensors with the same batch size, got shapes "
                         f"{_shape(input)} and {_shape(mat2)}")
    return matmul(input, mat2)


def mv(input, vec):
    """Matrix-vector product."""
    if input.ndim != 2 or vec.ndim != 1:
        raise ValueError(f"mv: expects a 2-d and a 1-d tensor, got shapes {_shape(input)} "
                         f"and {_shape(vec)}")
    return matmul(input, vec)


def dot(input, other):
    """Inner product of two 1-d tensors."""
    if input.ndim != 1 or other.ndim != 1:
        raise ValueError(f"dot: expects 1-d tensors, got shapes {_shape(input)} and "
                         f"{_shape(other)}")
    return matmul(input, other)


inner = dot


def outer(input, vec2):
    """Outer product of two 1-d tensors."""
    if input.ndim != 1 or vec2.ndim != 1:
        raise ValueError(f"outer: expects 1-d tensors, got shapes {_shape(input)} and "
                         f"{_shape(vec2)}")
    return mul(reshape(input, (input.shape[0], 1)), reshape(vec2, (1, vec2.shape[0])))


ger = outer


def einsum(equation: str, *operands):
    """Einstein summation, e.g. ``einsum('bij,bjk->bik', a, b)`` (``...`` allowed)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for k, o in enumerate(operands):
        if not isinstance(o, Tensor) and not hasattr(o, "shape"):
            raise TypeError(f"einsum: operand {k} is a {type(o).__name__}, expected a tensor")
    ins, rhs = parse_einsum(equation, [tuple(o.shape) for o in operands])
    sizes: dict = {}
    for s, o in zip(ins, operands):
        for c, n in zip(s, o.shape):
            if c in sizes and sizes[c] != n:
                raise ValueError(
                    f"einsum: subscript '{c}' has size {sizes[c]} in one operand and {n} in "
                    f"another ('{equation}')"
                )
            sizes[c] = n
    dts = {o.dtype for o in operands}
    if len(dts) > 1:
        raise TypeError(f"einsum: operands must share one dtype, got "
                        f"{sorted(backend.dtype_name(d) for d in dts)}")
    return einsum_((ins, rhs), *operands)
