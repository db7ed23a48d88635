"""How many threads one operation may use (``torch.set_num_threads``'s counterpart).

chainrule's own loops run on the calling thread; what runs on several cores is NumPy's
BLAS (matrix products large enough for OpenBLAS to split). The count defaults to
``OMP_NUM_THREADS`` or ``OPENBLAS_NUM_THREADS`` when set (first found), else the number
of cores this process may run on; :func:`set_num_threads` changes it, for NumPy's
OpenBLAS too where it can be found (other BLAS builds keep their own setting).

Splitting chainrule's elementwise work, batched small products and optimizer updates over
a pool of Python threads was measured and left out: on the 2-core machines of
BENCHMARKS.md it ran no faster (waking a worker costs 70-200 us, and two threads on
memory-bound loops ran at the speed of one).

>>> import chainrule as cr
>>> n = cr.get_num_threads()
>>> cr.set_num_threads(1)
>>> cr.get_num_threads()
1
>>> cr.set_num_threads(n)
"""

from __future__ import annotations

import ctypes
import os

from . import _blas

__all__ = ["get_num_threads", "set_num_threads"]


def _default_threads() -> int:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        v = os.environ.get(var, "")
        if v.isdigit() and int(v) > 0:
            return int(v)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


_state = {"n": _default_threads()}


def get_num_threads() -> int:
    """The number of threads one operation may use (see the module docstring)."""
    return _state["n"]


def set_num_threads(n: int) -> None:
    """Let one operation use ``n`` threads (NumPy's OpenBLAS, where found).

    Args:
        n: a positive int.

    Raises:
        ValueError: when ``n`` is not a positive int.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    _state["n"] = n
    _set_blas_threads(n)


# ------------------------------------------------------------------ OpenBLAS
def _openblas(what: str):
    """NumPy's OpenBLAS ``set_num_threads`` / ``get_num_threads``, or None (other BLAS)."""
    fn = _blas.symbol(f"scipy_openblas_{what}64_", f"openblas_{what}64_", f"openblas_{what}")
    if fn is not None:
        fn.argtypes = [ctypes.c_int] if what.startswith("set") else []
        fn.restype = None if what.startswith("set") else ctypes.c_int
    return fn


def _set_blas_threads(n: int) -> bool:
    fn = _openblas("set_num_threads")
    if fn is None:
        return False
    fn(n)
    return True
