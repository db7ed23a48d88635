"""Public linear-algebra functions (PyTorch names) over the matmul and einsum primitives."""

from __future__ import annotations

from .. import backend
from ..tensor import Tensor
from .elementwise import mul
from .linalg import einsum_, parse_einsum
from .linalg import matmul as _matmul
from .shape import expand, reshape


def _shape(x):
    return tuple(x.shape) if hasattr(x, "shape") else ()


def _same_dtype(op: str, a, b) -> None:
    da = getattr(a, "dtype", None)
    db = getattr(b, "dtype", None)
    if da is not None and db is not None and da != db:
        raise TypeError(
            f"{op}: expected both operands to have the same dtype, got "
            f"{backend.dtype_name(da)} and {backend.dtype_name(db)}; convert one first, "
            f"e.g. b.to(a.dtype)"
        )


def matmul(input, other):
    """Matrix product with broadcasting of batch dimensions (1-d operands are vectors).

    Like PyTorch, both operands must have the same dtype.

    >>> import chainrule as cr
    >>> (cr.ones(2, 3) @ cr.ones(3)).tolist()
    [3.0, 3.0]
    """
    _same_dtype("matmul", input, other)
    return _matmul(input, other)


def mm(input, mat2):
    """Matrix product of two 2-d tensors."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ValueError(f"mm: expects 2-d tensors, got shapes {_shape(input)} and "
                         f"{_shape(mat2)}")
    _same_dtype("mm", input, mat2)
    return _matmul(input, mat2)


def bmm(input, mat2):
    """Batched matrix product of two 3-d tensors with equal batch sizes."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise ValueError(f"bmm: expects 3-d tensors with the same batch size, got shapes "
                         f"{_shape(input)} and {_shape(mat2)}")
    _same_dtype("bmm", input, mat2)
    return _matmul(input, mat2)


def mv(input, vec):
    """Matrix-vector product."""
    if input.ndim != 2 or vec.ndim != 1:
        raise ValueError(f"mv: expects a 2-d and a 1-d tensor, got shapes {_shape(input)} "
                         f"and {_shape(vec)}")
    _same_dtype("mv", input, vec)
    return _matmul(input, vec)


def dot(input, other):
    """Inner product of two 1-d tensors."""
    if input.ndim != 1 or other.ndim != 1:
        raise ValueError(f"dot: expects 1-d tensors, got shapes {_shape(input)} and "
                         f"{_shape(other)}")
    if input.shape[0] != other.shape[0]:
        raise ValueError(f"dot: the vectors must have the same length, got shapes "
                         f"{_shape(input)} and {_shape(other)}")
    _same_dtype("dot", input, other)
    return _matmul(input, other)


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
    # letters standing for '...' dims (chosen among those the equation doesn't use)
    # broadcast like PyTorch: sizes equal or 1; named subscripts must match exactly
    ell = set("".join(ins)) - {c for c in equation if c.isalpha()}
    sizes: dict = {}
    for s, o in zip(ins, operands):
        for c, n in zip(s, o.shape):
            m = sizes.get(c, n)
            if m != n and not (c in ell and 1 in (m, n)):
                what = "a dimension under '...'" if c in ell else f"subscript '{c}'"
                raise ValueError(
                    f"einsum: {what} has size {m} in one operand and {n} in another "
                    f"('{equation}'); sizes must match"
                    + (" or be 1" if c in ell else "")
                )
            sizes[c] = n if m == 1 else m
    dts = {o.dtype for o in operands}
    if len(dts) > 1:
        raise TypeError(f"einsum: operands must share one dtype, got "
                        f"{sorted(backend.dtype_name(d) for d in dts)}")
    if ell:
        operands = tuple(
            o if all(sizes[c] == n for c, n in zip(s, o.shape))
            else expand(o, tuple(sizes[c] for c in s))
            for s, o in zip(ins, operands)
        )
    return einsum_((ins, rhs), *operands)
