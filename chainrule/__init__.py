"""chainrule: reverse-mode automatic differentiation over NumPy, PyTorch-style.

>>> import chainrule as cr
>>> w = cr.tensor([[1.0, 2.0]], requires_grad=True)
>>> x = cr.tensor([[3.0], [4.0]])
>>> loss = (w @ x).sigmoid().sum()
>>> loss.backward()
>>> w.grad.shape
(1, 2)
"""

from . import amp, autograd, datasets, diagnostics, func, nn, optim, train, utils
from . import ops as _ops  # noqa: F401  (attaches Tensor methods)
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .autograd.anomaly import safe_where
from .backend import (
    bool_,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    set_default_dtype,
    uint8,
)
from .creation import (
    arange,
    as_tensor,
    bernoulli,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    logspace,
    multinomial,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .ops.elementwise import bitwise_and, bitwise_not, bitwise_or, bitwise_xor
from .ops.linalg_api import bmm, dot, einsum, ger, inner, matmul, mm, mv, outer
from .ops.math_api import (
    abs,
    add,
    addmm,
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    atan,
    ceil,
    clamp,
    clip,
    cos,
    cosh,
    count_nonzero,
    cumsum,
    dist,
    div,
    eq,
    erf,
    exp,
    expm1,
    floor,
    ge,
    gt,
    isfinite,
    isinf,
    isnan,
    le,
    lerp,
    log,
    log1p,
    log_softmax,
    logaddexp,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    logsumexp,
    lt,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    ne,
    neg,
    norm,
    pow,
    reciprocal,
    relu,
    round,
    rsqrt,
    sigmoid,
    sign,
    sin,
    sinh,
    softmax,
    softplus,
    sqrt,
    square,
    std,
    sub,
    sum,
    tan,
    tanh,
    true_divide,
    trunc,
    var,
    var_mean,
    where,
)
from .ops.methods import remainder
from .ops.shape import clone
from .ops.shape_api import (
    broadcast_to,
    cat,
    chunk,
    concat,
    concatenate,
    expand,
    flatten,
    flip,
    gather,
    hstack,
    index_select,
    masked_fill,
    masked_select,
    movedim,
    narrow,
    nonzero,
    permute,
    repeat,
    reshape,
    roll,
    scatter_add,
    split,
    squeeze,
    stack,
    swapaxes,
    swapdims,
    t,
    take_along_dim,
    tile,
    transpose,
    tril,
    triu,
    unbind,
    unflatten,
    unsqueeze,
    view_as,
    vstack,
)
from .random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from .serialization import load, save
from .tensor import Tensor
from .threads import get_num_threads, set_num_threads

bool = bool_  # noqa: A001 - mirrors torch.bool
half = float16
float = float32  # noqa: A001 - mirrors torch.float
double = float64
long = int64
int = int32  # noqa: A001 - mirrors torch.int
multiply = mul
subtract = sub
divide = div
negative = neg
absolute = abs
greater = gt
less = lt

__version__ = "0.1.0"


def is_tensor(obj) -> bool:
    """True if ``obj`` is a chainrule Tensor."""
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    """The number of elements of ``input``."""
    return input.numel()
