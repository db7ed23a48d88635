"""Tensor: an array, whether it requires grad, its gradient and the node that made it.

Operators and methods are thin aliases onto the primitives in ``chainrule.ops``; they are
attached by ``chainrule.ops.methods`` so that this file holds only the tensor itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import backend

_ndarray = np.ndarray
_new = object.__new__


class Tensor:
    """A multi-dimensional array that can record the operations applied to it.

    Create tensors with :func:`chainrule.tensor` or the creation functions. A tensor with
    ``requires_grad=True`` is a leaf of the graph; results of operations on it carry a
    ``grad_fn`` and ``backward()`` fills the leaves' ``.grad``.

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4., 6.])
    """

    __slots__ = ("_data", "requires_grad", "grad", "grad_fn", "_vbox", "_extra", "__weakref__")

    # NumPy must hand binary operators with a Tensor operand back to the Tensor.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, dtype=None) -> None:
        arr = _as_array(data, dtype)
        if requires_grad and arr.dtype.kind != "f":
            raise RuntimeError(_int_grad_msg(arr.dtype))
        self._data = arr
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.grad_fn = None
        self._vbox = None
        self._extra = None

    # ------------------------------------------------------------------ data access
    @property
    def data(self) -> Tensor:
        """A tensor sharing this one's values, detached from the graph (like PyTorch)."""
        return _wrap(self._data)

    @data.setter
    def data(self, value) -> None:
        arr = value._data if isinstance(value, Tensor) else np.asarray(value)
        self._data = arr

    @property
    def shape(self) -> tuple:
        """The shape as a tuple of ints."""
        return self._data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    @property
    def dtype(self):
        """The element dtype (a NumPy dtype object such as ``chainrule.float32``)."""
        return self._data.dtype

    @property
    def device(self) -> str:
        """Where the values live: always ``'cpu'`` for the NumPy backend."""
        return "cpu"

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded operation."""
        return self.grad_fn is None

    @property
    def _version(self) -> int:
        box = self._vbox
        return 0 if box is None else box[0]

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        """Bytes held by the values."""
        return self._data.nbytes

    def dim(self) -> int:
        """The number of dimensions (PyTorch's ``dim()``)."""
        return self._data.ndim

    def size(self, dim: int | None = None):
        """The shape, or the length of dimension ``dim``."""
        if dim is None:
            return self._data.shape
        return self._data.shape[_check_dim("size", dim, self._data.ndim)]

    def numel(self) -> int:
        """The number of elements."""
        return self._data.size

    def element_size(self) -> int:
        """Bytes per element."""
        return self._data.itemsize

    def numpy(self) -> np.ndarray:
        """The values as a NumPy array sharing memory (raises if grad is required)."""
        if self.requires_grad:
            raise RuntimeError(
                "numpy: can't call numpy() on a tensor that requires grad; "
                "use tensor.detach().numpy()"
            )
        return self._data

    def item(self):
        """The single value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(
                f"item: only one-element tensors can be converted to Python scalars, "
                f"got shape {self._data.shape}"
            )
        return self._data.item()

    def tolist(self):
        """The values as (nested) Python lists."""
        return self._data.tolist()

    def __array__(self, dtype=None, copy=None):
        arr = self._data
        if dtype is not None and arr.dtype != dtype:
            return arr.astype(dtype)
        return arr.copy() if copy else arr

    # ------------------------------------------------------------------ graph
    def detach(self) -> Tensor:
        """A tensor sharing these values with no history (shares the version counter)."""
        t = _wrap(self._data)
        t._vbox = self._get_vbox()
        return t

    def detach_(self) -> Tensor:
        """Cut this tensor from its history in place."""
        self.grad_fn = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place on a leaf; returns self."""
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError(
                "requires_grad_: you can only change requires_grad of leaf tensors; "
                "use detach() for a non-leaf"
            )
        if requires_grad and self._data.dtype.kind != "f":
            raise RuntimeError(_int_grad_msg(self._data.dtype))
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if self.grad_fn is None:
            if not self.requires_grad:
                raise RuntimeError("retain_grad: can't retain_grad on a tensor that "
                                   "doesn't require grad")
            return
        if self._get_extra().get("retains_grad"):
            return
        self._extra["retains_grad"] = True
        import weakref

        ref = weakref.ref(self)

        def _store(grad):
            t = ref()
            if t is not None:
                if t.grad is None:
                    t.grad = grad.detach() if isinstance(grad, Tensor) else _wrap(grad)
                else:
                    t.grad = _wrap(t.grad._data + _raw(grad))
            return None

        self.grad_fn.register_prehook(_store)

    @property
    def retains_grad(self) -> bool:
        """True when retain_grad() was called on this non-leaf tensor."""
        return bool(self._extra and self._extra.get("retains_grad"))

    def register_hook(self, hook: Callable) -> Callable:
        """Register ``hook(grad) -> Tensor | None`` called with this tensor's gradient.

        A returned tensor replaces the gradient. Returns a handle with ``remove()``.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook: can't register a hook on a tensor that "
                               "doesn't require grad")
        if self.grad_fn is not None:
            node = self.grad_fn
            node.register_prehook(hook)
            hooks = node.hooks
        else:
            hooks = self._get_extra().setdefault("hooks", [])
            hooks.append(hook)
        return _RemovableHandle(hooks, hook)

    def backward(self, gradient=None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs=None) -> None:
        """Accumulate the gradient of this tensor into the ``.grad`` of graph leaves.

        Args:
            gradient: the gradient of some scalar w.r.t. this tensor; required unless
                the tensor has one element.
            retain_graph: keep saved values so backward can run again (defaults to
                ``create_graph``).
            create_graph: record the backward pass so gradients can be differentiated.
            inputs: accumulate only into these tensors.
        """
        from .autograd.engine import backward

        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    # ------------------------------------------------------------------ helpers
    def _get_extra(self) -> dict:
        if self._extra is None:
            self._extra = {}
        return self._extra

    def _get_vbox(self) -> list:
        box = self._vbox
        if box is None:
            box = self._vbox = [0, None, False]
        return box

    def _bump(self, opname: str) -> None:
        box = self._vbox
        if box is None:
            box = self._vbox = [0, None, False]
        box[0] += 1
        box[1] = opname

    def __repr__(self) -> str:
        return _format(self)

    __hash__ = object.__hash__

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(self._data.shape[0]):
            yield self[i]

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"bool: a tensor with {self._data.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self._data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be an index")
        return int(self._data)

    def __complex__(self) -> complex:
        return complex(self.item())

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0 and spec:
            return format(self.item(), spec)
        return repr(self)

    def __deepcopy__(self, memo) -> Tensor:
        """``copy.deepcopy``: new values (and ``.grad``); only for graph leaves (PyTorch)."""
        if self.grad_fn is not None:
            raise RuntimeError(
                "deepcopy: only tensors created explicitly by the user (graph leaves) can be "
                "deep-copied; detach() it first"
            )
        if id(self) in memo:
            return memo[id(self)]
        t = _new(type(self))
        t._data = self._data.copy()
        t.requires_grad = self.requires_grad
        t.grad_fn = None
        t._vbox = None
        t._extra = None
        memo[id(self)] = t
        t.grad = None if self.grad is None else self.grad.__deepcopy__(memo)
        return t

    def __reduce_ex__(self, protocol):
        raise TypeError("chainrule tensors are not pickled; use chainrule.save / chainrule.load")


class _RemovableHandle:
    """Handle returned by hook registration; ``remove()`` unregisters the hook."""

    __slots__ = ("_hooks", "_hook")

    def __init__(self, hooks: list, hook) -> None:
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        """Unregister the hook (no error if already removed)."""
        try:
            self._hooks.remove(self._hook)
        except ValueError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _wrap(arr) -> Tensor:
    """A Tensor around a raw array, no grad (the fast constructor used by ops)."""
    if type(arr) is not _ndarray:
        arr = np.asarray(arr)
    t = _new(Tensor)
    t._data = arr
    t.requires_grad = False
    t.grad = None
    t.grad_fn = None
    t._vbox = None
    t._extra = None
    return t


def _raw(x):
    return x._data if isinstance(x, Tensor) else x


def _as_array(data, dtype=None) -> np.ndarray:
    if isinstance(data, Tensor):
        arr = data._data
        if dtype is not None:
            arr = arr.astype(backend.to_dtype(dtype), copy=False)
        return arr
    if dtype is not None:
        return np.asarray(data, dtype=backend.to_dtype(dtype))
    if isinstance(data, np.ndarray):
        return data
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        if arr.dtype == np.float64 and not _has_numpy_float(data):
            arr = arr.astype(backend.get_default_dtype())
    elif arr.dtype.kind in "iu" and arr.dtype != np.int64 and not isinstance(data, np.generic):
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "biuf":
        if arr.dtype == object:
            arr = _from_nested_tensors(data)
        else:
            raise TypeError(f"tensor: can't convert data of dtype {arr.dtype} "
                            "(expected numbers, bools or nested lists of them)")
    return arr


def _has_numpy_float(data) -> bool:
    return isinstance(data, np.generic)


def _from_nested_tensors(data) -> np.ndarray:
    def conv(x):
        if isinstance(x, Tensor):
            return x._data
        if isinstance(x, (list, tuple)):
            return [conv(v) for v in x]
        return x

    arr = np.asarray(conv(data))
    if arr.dtype == object:
        raise TypeError("tensor: expected a sequence of numbers of equal lengths")
    if arr.dtype == np.float64:
        arr = arr.astype(backend.get_default_dtype())
    return arr


def _int_grad_msg(dtype) -> str:
    return (
        f"requires_grad: only floating point tensors can require gradients, got dtype "
        f"{backend.dtype_name(dtype)}; convert first, e.g. x.float()"
    )


def _check_dim(op: str, dim: int, ndim: int) -> int:
    lo = -max(ndim, 1)
    hi = max(ndim, 1) - 1
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    if dim < lo or dim > hi:
        raise IndexError(
            f"{op}: dimension out of range (expected to be in range of [{lo}, {hi}], "
            f"but got {dim})"
        )
    return dim + max(ndim, 1) if dim < 0 else dim


def _format(t: Tensor) -> str:
    arr = t._data
    d = arr.dtype
    default = backend.get_default_dtype()
    if arr.size == 0:
        body = "[]"
    else:
        body = np.array2string(
            arr, separator=", ", prefix="tensor(", precision=4, threshold=1000,
            floatmode="maxprec_equal" if d.kind == "f" else "maxprec",
        )
    parts = [body]
    if arr.size == 0 and arr.shape != (0,):
        parts.append(f"size={arr.shape}")
    if not (d == default or d == np.int64 or d == np.bool_):
        parts.append(f"dtype={backend.dtype_name(d)}")
    if t.grad_fn is not None:
        parts.append(f"grad_fn=<{t.grad_fn.name}>")
    elif t.requires_grad:
        parts.append("requires_grad=True")
    return "tensor(" + ", ".join(parts) + ")"
