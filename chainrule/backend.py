"""The array module and the dtype table.

Every array call in chainrule goes through ``xp`` (NumPy today). Dtypes are NumPy dtype
objects, so ``t.dtype == chainrule.float32`` compares without conversion.
"""

from __future__ import annotations

import numpy as np

xp = np
ndarray = np.ndarray

float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int8 = np.dtype("int8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
uint8 = np.dtype("uint8")
bool_ = np.dtype("bool")

_default_dtype = [float32]

_DTYPE_NAMES = {
    float16: "float16",
    float32: "float32",
    float64: "float64",
    int8: "int8",
    int16: "int16",
    int32: "int32",
    int64: "int64",
    uint8: "uint8",
    bool_: "bool",
}


def get_default_dtype() -> np.dtype:
    """Return the dtype that float data gets when none is given (float32 at start)."""
    return _default_dtype[0]


def set_default_dtype(dtype) -> None:
    """Set the dtype given to float data when none is asked for (float32 or float64)."""
    d = np.dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {d}")
    _default_dtype[0] = d


def dtype_name(dtype) -> str:
    """The name chainrule prints for a dtype, e.g. ``chainrule.float32``."""
    d = np.dtype(dtype)
    return "chainrule." + _DTYPE_NAMES.get(d, d.name)


def is_floating(dtype) -> bool:
    """True for float16/32/64."""
    return dtype.kind == "f"


def to_dtype(dtype) -> np.dtype:
    """Normalise a dtype spec (chainrule dtype, NumPy dtype, Python type or name)."""
    if dtype is None:
        return _default_dtype[0]
    if dtype is float:
        return _default_dtype[0]
    if dtype is int:
        return int64
    if dtype is bool:
        return bool_
    if isinstance(dtype, str) and dtype.startswith("chainrule."):
        dtype = dtype[len("chainrule."):]
    return np.dtype(dtype)



_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def result_type(a, b) -> np.dtype:
    """PyTorch's type promotion for two operands (arrays or Python scalars).

    Categories rank bool < integer < float. A Python scalar or a 0-d array only decides
    the result when its category is higher than the other operand's; then a Python float
    gives the default float dtype and a Python int gives int64. Within a category the
    larger dtype wins, and an integer array meeting a float array takes the float's dtype
    (NumPy would widen to float64 instead).
    """
    a_dim = isinstance(a, np.ndarray) and a.ndim > 0
    b_dim = isinstance(b, np.ndarray) and b.ndim > 0
    da = _dtype_of(a)
    db = _dtype_of(b)
    ra = _KIND_RANK[da.kind]
    rb = _KIND_RANK[db.kind]
    if a_dim != b_dim:
        # one side is "scalar-like": it only matters if its category is higher
        dim_d, dim_r, sc, sc_d, sc_r = (da, ra, b, db, rb) if a_dim else (db, rb, a, da, ra)
        if sc_r <= dim_r:
            return dim_d
        return _scalar_dtype(sc, sc_d)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not isinstance(a, np.ndarray):
            return db if ra <= rb else _scalar_dtype(a, da)
        if not isinstance(b, np.ndarray):
            return da if rb <= ra else _scalar_dtype(b, db)
    if ra != rb:
        return da if ra > rb else db
    return np.promote_types(da, db)


def _scalar_dtype(s, d):
    if isinstance(s, np.ndarray):
        return d
    if d.kind == "f":
        return _default_dtype[0]
    return d


def _dtype_of(x) -> np.dtype:
    if isinstance(x, (np.ndarray, np.generic)):
        return x.dtype
    if isinstance(x, bool):
        return bool_
    if isinstance(x, int):
        return int64
    if isinstance(x, float):
        return float64
    raise TypeError(f"expected a tensor or a Python number, got {type(x).__name__}")


_consts: dict = {}


def const(v: float, dtype: np.dtype):
    """``v`` as a read-only 0-d array of float dtype ``dtype``, cached.

    NumPy takes a slower path for a Python-float operand than for an array one (about
    0.4 us more per call on a 16-element array); a float tensor combined with a Python
    float computes in the tensor's dtype either way, so the results are the same. Zero
    and NaN are returned as given (the cache keys on ``==``, which would merge -0.0
    with 0.0).
    """
    c = _consts.get((v, dtype))
    if c is None:
        if v == 0 or v != v:
            return v
        if len(_consts) > 256:
            _consts.clear()
        c = np.array(v, dtype=dtype)
        c.flags.writeable = False
        _consts[(v, dtype)] = c
    return c
