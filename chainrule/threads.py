"""Intra-op threads: how many cores one large operation may use.

NumPy runs every elementwise loop on one core, and OpenBLAS hands each matrix product to
its own threads only when that product is large, so a batch of small products (the heads
of an attention layer) or an optimizer's update over millions of weights runs on one core
while the others idle. chainrule splits such work into contiguous pieces and runs them on
a small pool of worker threads (NumPy releases the GIL inside its loops and BLAS calls).
Each piece computes exactly what the whole would, element by element or matrix by
matrix, so results do not depend on the thread count.

The count mirrors ``torch.set_num_threads``: by default the number of cores this process
may run on, or ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` when set (first found);
:func:`set_num_threads` changes it for chainrule's own splitting and, where NumPy's
OpenBLAS can be found, for BLAS too.

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
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["get_num_threads", "parallel_chunks", "set_num_threads"]


def _default_threads() -> int:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        v = os.environ.get(var, "")
        if v.isdigit() and int(v) > 0:
            return int(v)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


_state = {"n": _default_threads(), "pool": None}
_lock = threading.Lock()


def _forget_pool() -> None:
    # a forked child has none of the parent's threads: start a fresh pool on first use
    _state["pool"] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def get_num_threads() -> int:
    """The number of threads one operation may use (see the module docstring)."""
    return _state["n"]


def set_num_threads(n: int) -> None:
    """Use ``n`` threads per operation in chainrule's own splitting and in OpenBLAS.

    Args:
        n: a positive int.

    Raises:
        ValueError: when ``n`` is not a positive int.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    with _lock:
        old = _state["pool"]
        _state["n"] = n
        _state["pool"] = None
    if old is not None:
        old.shutdown(wait=False)
    _set_blas_threads(n)


def _pool() -> ThreadPoolExecutor:
    pool = _state["pool"]
    if pool is None:
        with _lock:
            pool = _state["pool"]
            if pool is None:
                pool = ThreadPoolExecutor(max(1, _state["n"] - 1),
                                          thread_name_prefix="chainrule")
                _state["pool"] = pool
    return pool


def parallel_chunks(fn: Callable[[int, int], None], total: int, min_chunk: int) -> None:
    """Call ``fn(start, stop)`` over contiguous pieces covering ``range(total)``.

    The pieces run on the worker threads and the calling thread together; a piece is
    never smaller than ``min_chunk`` items, so small work stays on the calling thread
    (one call ``fn(0, total)``). Exceptions from any piece are re-raised here.
    """
    n = min(_state["n"], total // max(1, min_chunk))
    if n <= 1 or threading.current_thread().name.startswith("chainrule"):
        fn(0, total)
        return
    bounds = [total * i // n for i in range(n + 1)]
    pool = _pool()
    futures = [pool.submit(fn, bounds[i], bounds[i + 1]) for i in range(1, n)]
    try:
        fn(bounds[0], bounds[1])
    finally:
        for f in futures:
            f.result()


# ------------------------------------------------------------------ OpenBLAS
def _find_openblas():
    """NumPy's OpenBLAS thread setter, or None (other BLAS, or not found)."""
    try:
        import numpy  # noqa: F401  (loads the BLAS library into the process)

        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                     "openblas_set_num_threads"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                fn.restype = None
                return fn
    return None


def _set_blas_threads(n: int) -> bool:
    fn = _find_openblas()
    if fn is None:
        return False
    fn(n)
    return True
