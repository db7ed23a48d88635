"""The recorded graph: nodes, shape-only placeholders and saved-tensor hooks.

A node is created for each primitive call that needs a gradient. It holds the edges to
the producers of its inputs (another node, or the leaf tensor itself), the values its
vector-Jacobian product needs (and nothing more), and the version of every saved tensor
so that an in-place change after saving is caught in backward.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Meta:
    """Shape and dtype of an input whose values the backward rule does not need."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple, dtype) -> None:
        self.shape = shape
        self.dtype = dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"Meta(shape={self.shape}, dtype={self.dtype})"


class Node:
    """One recorded operation: the backward rule of a primitive and what it saved.

    Attributes:
        prim: the primitive whose VJP table this node uses.
        edges: per positional input, the node (or leaf tensor) its gradient flows to,
            or ``None`` when that input needs no gradient.
        args: per positional input, what a plain backward passes to the rule: the raw
            array of a saved tensor (or its packed form under saved-tensor hooks), a
            :class:`Meta` when only its shape is needed, or the non-tensor argument
            itself. ``None`` once freed.
        out: the saved forward result (raw array) when the rule needs it.
        vers: ``None`` when nothing is saved, else one ``(position, version box,
            version, tensor)`` per saved tensor (position -1 and tensor ``None`` for the
            result; tensor ``None`` once packed by a hook), checked in backward; the
            tensors serve ``create_graph``. Custom-function nodes keep their own layout.
        shape, dtype: the forward result's shape and dtype.
    """

    # NOTE: ops/_registry.py builds primitive nodes field by field (no __init__ call, it
    # is the hot path): a new slot must be set there too.
    __slots__ = (
        "prim", "edges", "args", "out", "out_box", "vers", "shape", "dtype",
        "hooks", "packed", "trace", "freed", "__weakref__",
    )

    def __init__(self, prim, edges, args, out, out_box, vers, shape, dtype) -> None:
        self.prim = prim
        self.edges = edges
        self.args = args
        self.out = out
        self.out_box = out_box
        self.vers = vers
        self.shape = shape
        self.dtype = dtype
        self.hooks = None
        self.packed = None
        self.trace = None
        self.freed = False

    @property
    def name(self) -> str:
        """The forward operation's name, e.g. ``mul``."""
        return self.prim.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} shape={self.shape}>"

    def next_functions(self) -> tuple:
        """The edges as PyTorch names them: the nodes or leaf tensors inputs came from."""
        return self.edges

    def register_prehook(self, fn: Callable) -> None:
        """Call ``fn(grad)`` on this node's output gradient before its rule runs."""
        if self.hooks is None:
            self.hooks = []
        self.hooks.append(fn)


class _HookState(threading.local):
    def __init__(self) -> None:
        self.stack: list[tuple[Callable, Callable]] = []
        self.saving: str | None = None


_hooks = _HookState()
# How many saved_tensors_hooks contexts are open in any thread: recording reads this
# plain list first and looks at the thread-local stack only when it is non-zero.
_hooks_on = [0]
_hooks_on_lock = threading.Lock()


def current_saved_hooks() -> tuple[Callable, Callable] | None:
    """The innermost active (pack, unpack) pair, or None."""
    stack = _hooks.stack
    return stack[-1] if stack else None


class saved_tensors_hooks:
    """Context manager giving pack/unpack hooks for every tensor saved for backward.

    ``pack_hook(tensor)`` runs when an operation saves a tensor and may return any
    object; ``unpack_hook(packed)`` runs in backward and must give back a tensor of the
    same shape. Used for activation compression and offloading.

    >>> import chainrule as cr
    >>> seen = []
    >>> def pack(t):
    ...     seen.append(t.shape)
    ...     return t
    >>> x = cr.ones(3, requires_grad=True)
    >>> with cr.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
    ...     y = (x * x).sum()
    >>> y.backward()
    >>> seen
    [(3,), (3,)]
    """

    def __init__(self, pack_hook: Callable[[Any], Any], unpack_hook: Callable[[Any], Any]):
        self.pack_hook = pack_hook
        self.unpack_hook = unpack_hook

    def __enter__(self):
        with _hooks_on_lock:
            _hooks_on[0] += 1
        _hooks.stack.append((self.pack_hook, self.unpack_hook))
        return self

    def __exit__(self, *exc) -> None:
        _hooks.stack.pop()
        with _hooks_on_lock:
            _hooks_on[0] -= 1


class disable_saved_tensors_hooks:
    """Context manager under which no saved-tensor hooks apply."""

    def __enter__(self):
        self._saved = _hooks.stack
        _hooks.stack = []
        return self

    def __exit__(self, *exc) -> None:
        _hooks.stack = self._saved


from .compress import compress_saved  # noqa: E402,F401  (activation compression hooks)


def saving_op() -> str | None:
    """Inside a saved-tensor pack hook: the name of the operation saving the tensor.

    Lets tools attribute saved memory to operations (``diagnostics.memory_report``)
    without reaching into the engine; ``None`` outside a pack hook.
    """
    return _hooks.saving


class saving_as:
    """Context manager naming the saver for pack hooks that run inside it.

    Code that saves tensors outside a recorded operation (e.g. checkpointing storing its
    inputs) uses it so that ``saving_op()`` reports a meaningful name.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self):
        self._prev = _hooks.saving
        _hooks.saving = self.name
        return self

    def __exit__(self, *exc) -> None:
        _hooks.saving = self._prev
