"""Run an optimizer's in-place array update over the intra-op threads.

An update such as SGD's ``buf = m * buf + g; p -= lr * buf`` is elementwise, so a large
parameter can be cut into contiguous pieces updated on different threads with exactly
the same arithmetic per element (see :mod:`chainrule.threads`). Small parameters, and
any whose arrays are not C-contiguous, are updated whole on the calling thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..threads import get_num_threads, parallel_chunks

MIN_PIECE = 1 << 16  # elements per piece: below this a thread hand-off costs more


def foreach(update: Callable, arrays: Sequence[list], per_param: Sequence[list] = (),
            **kwargs) -> None:
    """Call ``update(*array_lists, *per_param_lists, **kwargs)`` piece by piece.

    Args:
        update: updates every parameter of the lists it is given, in place.
        arrays: per-parameter array lists (entries may be None); the first holds the
            parameters. Large parameters are passed as flat slices of all of them.
        per_param: per-parameter values (step counts, flags) passed unchanged.
        kwargs: the hyperparameters, passed unchanged.
    """
    n = len(arrays[0])
    split = get_num_threads() > 1
    whole, big = [], []
    for i in range(n):
        cols = [col[i] for col in arrays]
        if (split and cols[0].size >= 2 * MIN_PIECE
                and all(a is None or a.flags.c_contiguous for a in cols)):
            big.append(i)
        else:
            whole.append(i)
    if whole:
        update(*([col[i] for i in whole] for col in arrays),
               *([col[i] for i in whole] for col in per_param), **kwargs)
    for i in big:
        flats = [None if col[i] is None else col[i].reshape(-1) for col in arrays]
        extra = [[col[i]] for col in per_param]

        def piece(start: int, stop: int, flats=flats, extra=extra) -> None:
            update(*([None if f is None else f[start:stop]] for f in flats), *extra,
                   **kwargs)

        parallel_chunks(piece, flats[0].size, MIN_PIECE)
