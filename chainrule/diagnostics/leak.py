"""Catch graphs kept alive across training steps (the ``running_loss += loss`` leak).

Adding a loss tensor into an accumulator keeps every step's graph reachable from the
accumulator: memory and time grow step over step. :class:`LeakWatch` measures the graph
reachable from the tensors it is shown each step and warns when it keeps growing.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from ..tensor import Tensor
from ._graph import count_nodes


class GraphLeakWarning(UserWarning):
    """Issued when the graph reachable from a tensor grows for several steps in a row."""


class LeakWatch:
    """Warn when the graph reachable from watched tensors grows step over step.

    Call :meth:`step` once per training step with a tensor, a list of tensors, or a
    mapping of names to values (``locals()`` works: non-tensors are ignored). The
    number of graph nodes reachable from them is measured without recursion; after
    ``k`` consecutive increases a :class:`GraphLeakWarning` names the growing tensors
    and the fix. It also works as a context manager.

    Args:
        k: consecutive growing steps before warning.
        warn: set False to only record (see :attr:`leaking`).

    >>> import chainrule as cr
    >>> w = cr.ones(2, requires_grad=True)
    >>> watch = cr.diagnostics.LeakWatch(k=3, warn=False)
    >>> running_loss = 0.0
    >>> for _ in range(5):
    ...     loss = (w * w).sum()
    ...     running_loss += loss          # the leak: keeps every graph alive
    ...     size = watch.step({"running_loss": running_loss})
    >>> watch.sizes, watch.leaking
    ([3, 6, 9, 12, 15], ['running_loss'])
    """

    def __init__(self, k: int = 3, warn: bool = True) -> None:
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"LeakWatch: k must be a positive int, got {k!r}")
        self.k = k
        self.warn = warn
        self.sizes: list[int] = []
        self.leaking: list[str] = []
        self._per_name: dict[str, list[int]] = {}
        self._warned = False

    def __enter__(self) -> LeakWatch:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def reset(self) -> None:
        """Forget the history (e.g. after fixing the leak or at an epoch boundary)."""
        self.sizes.clear()
        self._per_name.clear()
        self.leaking = []
        self._warned = False

    def step(self, tensor_or_locals) -> int:
        """Measure the graph reachable from the given tensors; returns its node count."""
        named = _named_tensors(tensor_or_locals)
        total_roots = []
        for name, ts in named.items():
            roots = [t.grad_fn for t in ts if t.grad_fn is not None]
            total_roots.extend(roots)
            self._per_name.setdefault(name, []).append(count_nodes(roots))
        size = count_nodes(total_roots)
        self.sizes.append(size)
        if self._growing(self.sizes):
            grew = [n for n, h in self._per_name.items() if self._growing(h)]
            self.leaking = grew or ["<watched tensors>"]
            if self.warn and not self._warned:
                self._warned = True
                warnings.warn(self._message(), GraphLeakWarning, stacklevel=2)
        return size

    __call__ = step

    def _growing(self, hist: list[int]) -> bool:
        k = self.k
        if len(hist) < k + 1:
            return False
        tail = hist[-(k + 1):]
        return all(b > a for a, b in zip(tail, tail[1:]))

    def _message(self) -> str:
        names = ", ".join(repr(n) for n in self.leaking)
        tail = " -> ".join(str(s) for s in self.sizes[-(self.k + 1):])
        return (
            f"LeakWatch: the autograd graph reachable from {names} grew for {self.k} "
            f"consecutive steps ({tail} nodes). A tensor that accumulates losses across "
            f"steps keeps every step's graph alive (the `running_loss += loss` pattern). "
            f"Accumulate a Python number instead: `running_loss += loss.item()` (or "
            f"`loss.detach()`)."
        )


GraphLeakDetector = LeakWatch


def _named_tensors(obj) -> dict[str, list[Tensor]]:
    if isinstance(obj, Tensor):
        return {"tensor": [obj]}
    if isinstance(obj, Mapping):
        out: dict[str, list[Tensor]] = {}
        for name, v in obj.items():
            ts = _tensors_in(v)
            if ts:
                out[str(name)] = ts
        return out
    if isinstance(obj, (list, tuple)):
        return {f"[{i}]": [t] for i, t in enumerate(obj) if isinstance(t, Tensor)}
    raise TypeError(f"LeakWatch.step: expected a tensor, a list of tensors or a mapping "
                    f"such as locals(), got {type(obj).__name__}")


def _tensors_in(v) -> list[Tensor]:
    if isinstance(v, Tensor):
        return [v]
    if isinstance(v, (list, tuple)):
        return [t for t in v if isinstance(t, Tensor)]
    return []
