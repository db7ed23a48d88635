"""The optimizer base class: parameter groups, per-parameter state, state dicts.

Each optimizer in this package is a class that validates its hyper-parameters and holds
state, plus a pure function beside it that applies the update to NumPy arrays in place.
The class gathers the arrays of the parameters that have gradients, calls the function,
and bumps each parameter's version counter (a graph that saved the old values then
refuses to backward through them, like PyTorch).

The state dict has PyTorch's layout::

    {"state": {0: {"step": 3, "exp_avg": Tensor, ...}, ...},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1, ...]}, ...]}

It holds only tensors, Python numbers, strings, bools, None and lists/dicts of them, so
it serialises with ``chainrule.save``.
"""

from __future__ import annotations

import math
import numbers
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import chain

import numpy as np

from ..autograd.grad_mode import enable_grad
from ..tensor import Tensor, _wrap


class _RequiredParameter:
    """Marks a hyper-parameter that each group must set (no default)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class of all optimizers.

    Args:
        params: an iterable of tensors, or of dicts defining parameter groups (each dict
            has ``"params"`` and may override any hyper-parameter).
        defaults: the hyper-parameters used by groups that don't set them.

    Subclasses set ``_state_keys`` (the names their per-parameter state may hold),
    implement ``_validate(group)`` (raise ``ValueError`` for a bad hyper-parameter) and
    ``step``.
    """

    _state_keys: frozenset = frozenset()
    _scalar_state_keys: frozenset = frozenset({"step", "mu_product"})

    def __init__(self, params, defaults: dict) -> None:
        name = type(self).__name__
        self._validate(defaults)
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name}: params should be an iterable of Tensors or dicts, but got a "
                f"Tensor; wrap it in a list: [tensor]"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(_set_msg(name))
        groups = list(params)
        if len(groups) == 0:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        # Validate every group before adding any, so a bad one leaves nothing half-built.
        prepared = []
        seen: set = set()
        for g in groups:
            group = self._prepare_group(g)
            ids = {id(p) for p in group["params"]}
            if ids & seen:
                raise ValueError(f"{name}: some parameters appear in more than one "
                                 "parameter group")
            seen |= ids
            prepared.append(group)
        self.param_groups.extend(prepared)

    # ------------------------------------------------------------------ groups
    def _validate(self, group: dict) -> None:
        """Raise ValueError for an invalid hyper-parameter in ``group`` (subclasses)."""

    def _prepare_group(self, param_group: dict) -> dict:
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{name}: a parameter group needs a 'params' entry")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_set_msg(name))
        else:
            params = list(params)
        if len(params) == 0:
            raise ValueError(f"{name}: got a parameter group with no parameters")
        ids = set()
        for k, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, but parameter {k} is a "
                                f"{type(p).__name__}")
            if p.grad_fn is not None:
                raise ValueError(
                    f"{name}: can't optimize a non-leaf Tensor (parameter {k}, shape "
                    f"{p.shape}, made by {p.grad_fn.name}); optimize the leaf it came from, "
                    f"or detach().requires_grad_() it"
                )
            if p.dtype.kind != "f":
                raise TypeError(f"{name}: can only optimize floating point tensors, but "
                                f"parameter {k} has dtype {p.dtype}")
            if id(p) in ids:
                raise ValueError(f"{name}: parameter {k} (shape {p.shape}) appears twice in "
                                 "one parameter group; pass each parameter once")
            ids.add(id(p))
        group = dict(param_group)
        group["params"] = params
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(f"{name}: parameter group didn't specify a value of the "
                                 f"required hyper-parameter {key!r}")
            group.setdefault(key, default)
        self._validate(group)
        return group

    def add_param_group(self, param_group: dict) -> None:
        """Add a parameter group (a dict with ``"params"`` and optional hyper-parameters).

        Useful for fine-tuning: unfreeze layers and hand them to the optimizer as training
        goes on. Raises before changing anything if a parameter is already optimized.
        """
        group = self._prepare_group(param_group)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if existing & {id(p) for p in group["params"]}:
            raise ValueError(f"{type(self).__name__}.add_param_group: some parameters "
                             "appear in more than one parameter group")
        self.param_groups.append(group)

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized tensors.

        Args:
            set_to_none: set ``.grad`` to None (default) instead of filling it with zeros;
                it saves memory and lets an optimizer skip parameters that got no gradient.
        """
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                    continue
                if g.grad_fn is not None:
                    g.detach_()
                g.requires_grad = False
                if g._data.flags.writeable:
                    g._data.fill(0)
                else:
                    p.grad = _wrap(np.zeros_like(g._data))

    def step(self, closure: Callable | None = None):
        """Perform one optimization step (subclasses implement it).

        Args:
            closure: a callable that re-evaluates the model and returns the loss; optional
                for most optimizers.
        """
        raise NotImplementedError(f"{type(self).__name__}.step is not implemented")

    @staticmethod
    def _eval_closure(closure: Callable | None):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _params_with_grad(self, group: dict) -> tuple[list, list, list]:
        """The parameters of ``group`` that have a gradient, their arrays and grad arrays."""
        ps, datas, grads = [], [], []
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            garr = g._data
            if garr.shape != p._data.shape:
                raise RuntimeError(
                    f"{type(self).__name__}.step: a gradient of shape {garr.shape} is set "
                    f"on a parameter of shape {p._data.shape}; they must match"
                )
            ps.append(p)
            datas.append(p._data)
            grads.append(garr)
        return ps, datas, grads

    def _bump(self, params: Iterable[Tensor]) -> None:
        op = f"{type(self).__name__}.step"
        for p in params:
            p._bump(op)

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict:
        """The optimizer's state as ``{"state": {...}, "param_groups": [...]}``.

        Parameters are replaced by their index in the order of the groups. The state
        tensors are the live ones (not copies), as in PyTorch.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                if id(p) not in index:
                    index[id(p)] = len(index)
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for p, s in self.state.items():
            if isinstance(p, Tensor) and id(p) in index:
                state[index[id(p)]] = s
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict made by ``state_dict()`` of the same optimizer class.

        Everything is checked first (group count and sizes, hyper-parameter names and
        values, state names and shapes); on any mismatch a ValueError is raised and the
        optimizer is left unchanged. Tensors are copied and cast to their parameter's dtype.
        """
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict) or "state" not in state_dict \
                or "param_groups" not in state_dict:
            raise ValueError(f"{name}: expected a dict with 'state' and 'param_groups' keys")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}: the loaded state dict has {len(saved_groups)} "
                             f"parameter groups but the optimizer has {len(self.param_groups)}")
        new_groups = []
        for k, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved.get("params", ())) != len(group["params"]):
                raise ValueError(
                    f"{name}: parameter group {k} of the loaded state dict has "
                    f"{len(saved.get('params', ()))} parameters but the optimizer's has "
                    f"{len(group['params'])}"
                )
            missing = [key for key in self.defaults if key not in saved]
            if missing:
                raise ValueError(
                    f"{name}: parameter group {k} lacks the hyper-parameters {missing}; the "
                    f"state dict is from another optimizer, not {type(self).__name__}"
                )
            new = {}
            for key, value in saved.items():
                if key == "params":
                    continue
                if isinstance(self.defaults.get(key), tuple) and isinstance(value, list):
                    value = tuple(value)  # a JSON round trip turns tuples into lists
                new[key] = value
            new["params"] = group["params"]
            self._validate(new)
            new_groups.append(new)
        id_map = {}
        saved_ids = chain.from_iterable(g["params"] for g in saved_groups)
        own = chain.from_iterable(g["params"] for g in self.param_groups)
        for old, p in zip(saved_ids, own):
            id_map[int(old)] = p
        new_state: dict = {}
        for key, entry in state_dict["state"].items():
            idx = _as_index(key, name)
            if idx not in id_map:
                raise ValueError(f"{name}: the state refers to parameter {idx}, which no "
                                 "parameter group lists")
            if not isinstance(entry, dict):
                raise ValueError(f"{name}: the state of parameter {idx} must be a dict, got "
                                 f"{type(entry).__name__}")
            unknown = sorted(set(entry) - self._state_keys)
            if unknown:
                raise ValueError(
                    f"{name}: the state of parameter {idx} has keys {unknown}, which "
                    f"{type(self).__name__} doesn't use (expected some of "
                    f"{sorted(self._state_keys)}); the state dict is from another optimizer"
                )
            p = id_map[idx]
            new_state[p] = {k: self._load_state_value(k, v, p, idx) for k, v in entry.items()}
        self.param_groups[:] = new_groups
        self.state = defaultdict(dict, new_state)

    def _load_state_value(self, key: str, value, param: Tensor, idx: int):
        """Check and copy one loaded state entry (a scalar or a tensor shaped like param)."""
        name = f"{type(self).__name__}.load_state_dict"
        if key in self._scalar_state_keys:
            return _as_number(value, f"{name}: state {key!r} of parameter {idx}")
        arr = _as_array(value, f"{name}: state {key!r} of parameter {idx}")
        if arr.shape != param.shape:
            raise ValueError(
                f"{name}: state {key!r} of parameter {idx} has shape {arr.shape} but the "
                f"parameter has shape {param.shape}"
            )
        return _wrap(np.array(arr, dtype=param.dtype, copy=True))

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


# ---------------------------------------------------------------------- validation helpers
def check_number(opt: str, label: str, value, lo: float | None = 0.0, hi: float | None = None,
                 lo_open: bool = False, hi_open: bool = False) -> None:
    """Raise ValueError unless ``value`` is a finite real number in the given range."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        rng = _range_text(lo, hi, lo_open, hi_open)
        raise ValueError(f"{opt}: invalid {label}: {value!r} (expected a finite number {rng})")


def check_betas(opt: str, betas) -> None:
    """Raise ValueError unless ``betas`` is a pair of numbers in [0, 1)."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{opt}: betas must be a pair (beta1, beta2), got {betas!r}")
    for k, b in enumerate(betas):
        check_number(opt, f"beta parameter at index {k}", b, 0.0, 1.0, hi_open=True)


def check_bool(opt: str, label: str, value) -> None:
    """Raise TypeError unless ``value`` is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{opt}: {label} must be a bool, got {value!r}")


def _range_text(lo, hi, lo_open, hi_open) -> str:
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo}"
    if lo is None:
        return f"{'<' if hi_open else '<='} {hi}"
    return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def _set_msg(name: str) -> str:
    return (f"{name}: parameters must be given in an ordered collection; the order of a "
            "set changes between runs. Use a list instead")


def _as_index(key, name: str) -> int:
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return int(key)
    if isinstance(key, str) and key.lstrip("-").isdigit():
        return int(key)
    raise ValueError(f"{name}: state keys must be parameter indices, got {key!r}")


def _as_array(value, what: str) -> np.ndarray:
    if isinstance(value, Tensor):
        return value._data
    if isinstance(value, np.ndarray):
        return value
    raise ValueError(f"{what} must be a tensor, got {type(value).__name__}")


def _as_number(value, what: str):
    if isinstance(value, Tensor):
        value = value._data
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"{what} must be a number, got an array of shape {value.shape}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a number, got {type(value).__name__}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value.item() if isinstance(value, np.generic) else value
