"""Functional transforms on top of ``autograd.grad`` (PyTorch's ``torch.func`` names).

Each transform takes a function of tensors and returns a function. Gradients of gradients
work because ``grad`` is taken with ``create_graph=True`` whenever grad mode is on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .autograd.engine import grad as _autograd_grad
from .autograd.grad_mode import enable_grad, is_grad_enabled
from .tensor import Tensor, _wrap


def _argnums_tuple(argnums) -> tuple[tuple[int, ...], bool]:
    if isinstance(argnums, int):
        return (argnums,), True
    t = tuple(argnums)
    if not t:
        raise ValueError("argnums must name at least one argument")
    return t, False


def _prep(name: str, args: tuple, argnums: tuple) -> list:
    """Fresh leaves for the differentiated args that keep the outer graph connected."""
    args = list(args)
    for a in argnums:
        if a >= len(args) or a < -len(args):
            raise ValueError(f"{name}: argnums {a} is out of range for {len(args)} arguments")
        x = args[a]
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: argument {a} must be a tensor, got {type(x).__name__}")
        if x.dtype.kind != "f":
            raise TypeError(f"{name}: argument {a} must be floating point, got {x.dtype}")
        args[a] = _track(x)
    return args


def _track(x: Tensor) -> Tensor:
    """A tensor to differentiate w.r.t.: x itself routed through an identity if needed."""
    if x.requires_grad and is_grad_enabled():
        from .ops.elementwise import add

        return add(x, 0.0)
    t = x.detach()
    t.requires_grad = True
    return t


def _split_aux(name: str, out, has_aux: bool):
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError(f"{name}: with has_aux=True the function must return "
                             f"(output, aux)")
        return out[0], out[1]
    return out, None


def _check_scalar(name: str, out) -> None:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}: the function must return a tensor, got {type(out).__name__}")
    if out.numel() != 1:
        raise ValueError(f"{name}: the function must return a scalar (one element) tensor, "
                         f"got shape {tuple(out.shape)}; use vjp or jacrev for others")


def _attached(args) -> bool:
    """Results keep their graph only when grad mode is on and an argument needs grad.

    Nested transforms pass tracked tensors, so inner results stay differentiable.
    """
    return is_grad_enabled() and any(isinstance(a, Tensor) and a.requires_grad
                                     for a in args)


def _zeros_for(x: Tensor) -> Tensor:
    return _wrap(np.zeros(x.shape, dtype=x.dtype))


def _grads(outputs, inputs, grad_outputs=None):
    create = is_grad_enabled()
    gs = _autograd_grad(outputs, inputs, grad_outputs, create_graph=create,
                        retain_graph=True, allow_unused=True)
    return tuple(_zeros_for(x) if g is None else g for g, x in zip(gs, inputs))


def grad_and_value(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """``f -> (x -> (grad of f at x, f(x)))`` for scalar-valued ``f``.

    >>> import chainrule as cr
    >>> g, v = cr.func.grad_and_value(lambda x: (x ** 2).sum())(cr.tensor([1.0, 2.0]))
    >>> g, v
    (tensor([2., 4.]), tensor(5.))
    """
    nums, single = _argnums_tuple(argnums)

    def wrapper(*args, **kwargs):
        with enable_grad():
            a = _prep("grad", args, nums)
            out = func(*a, **kwargs)
            out, aux = _split_aux("grad", out, has_aux)
            _check_scalar("grad", out)
            if not out.requires_grad:
                gs = tuple(_zeros_for(a[n]) for n in nums)
            else:
                gs = _grads([out], [a[n] for n in nums])
        if not _attached(args):
            gs = tuple(g.detach() for g in gs)
            out = out.detach()
        res = gs[0] if single else gs
        if has_aux:
            return (res, (out, aux))
        return res, out

    return wrapper


def grad(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """``f -> (x -> grad of f at x)`` for scalar-valued ``f``; nests for higher orders.

    >>> import chainrule as cr
    >>> d2 = cr.func.grad(cr.func.grad(lambda x: x ** 3))
    >>> d2(cr.tensor(2.0))
    tensor(12.)
    """
    gv = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        res = gv(*args, **kwargs)
        if has_aux:
            g, (_, aux) = res
            return g, aux
        return res[0]

    return wrapper


def vjp(func: Callable, *primals, has_aux: bool = False):
    """Return ``(func(*primals), vjp_fn)``; ``vjp_fn(v)`` gives ``v^T J`` per primal.

    >>> import chainrule as cr
    >>> out, f = cr.func.vjp(lambda x: x * 3, cr.tensor([1.0, 2.0]))
    >>> f(cr.ones(2))
    (tensor([3., 3.]),)
    """
    with enable_grad():
        a = _prep("vjp", primals, tuple(range(len(primals))))
        out = func(*a)
        out, aux = _split_aux("vjp", out, has_aux)
    outs = out if isinstance(out, tuple) else (out,)

    def vjp_fn(*cotangents):
        cts = cotangents[0] if len(cotangents) == 1 and isinstance(out, tuple) else cotangents
        cts = tuple(cts) if isinstance(cts, (tuple, list)) else (cts,)
        if len(cts) != len(outs):
            raise ValueError(f"vjp: expected {len(outs)} cotangents, got {len(cts)}")
        for c, o in zip(cts, outs):
            if tuple(c.shape) != tuple(o.shape):
                raise ValueError(f"vjp: cotangent shape {tuple(c.shape)} does not match "
                                 f"output shape {tuple(o.shape)}")
        pairs = [(o, c) for o, c in zip(outs, cts) if o.requires_grad]
        if not pairs:
            return tuple(_zeros_for(x) for x in a)
        with enable_grad():
            gs = _grads([p[0] for p in pairs], list(a), [p[1] for p in pairs])
        if not _attached(primals):
            gs = tuple(g.detach() for g in gs)
        return gs

    shown = out if _attached(primals) else (
        tuple(o.detach() for o in outs) if isinstance(out, tuple) else out.detach())
    if has_aux:
        return shown, vjp_fn, aux
    return shown, vjp_fn


def jvp(func: Callable, primals: tuple, tangents: tuple, has_aux: bool = False):
    """Return ``(func(*primals), J @ tangents)`` by the double-vjp trick.

    The VJP is linear in its cotangent ``u``; differentiating ``u -> J^T u`` against
    ``tangents`` gives ``J v`` with two reverse passes.

    >>> import chainrule as cr
    >>> out, t = cr.func.jvp(lambda x: x ** 2, (cr.tensor([3.0]),), (cr.tensor([1.0]),))
    >>> t
    tensor([6.])
    """
    primals = tuple(primals)
    tangents = tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: got {len(primals)} primals but {len(tangents)} tangents")
    for p, t in zip(primals, tangents):
        if tuple(p.shape) != tuple(t.shape):
            raise ValueError(f"jvp: tangent shape {tuple(t.shape)} does not match primal "
                             f"shape {tuple(p.shape)}")
    outer = _attached(primals)
    with enable_grad():
        a = _prep("jvp", primals, tuple(range(len(primals))))
        out = func(*a)
        out, aux = _split_aux("jvp", out, has_aux)
        outs = out if isinstance(out, tuple) else (out,)
        us = [_wrap(np.zeros(o.shape, dtype=o.dtype)).requires_grad_() for o in outs]
        live = [(o, u) for o, u in zip(outs, us) if o.requires_grad]
        if not live:
            res = tuple(_zeros_for(o) for o in outs)
        else:
            gs = _autograd_grad([o for o, _ in live], list(a), [u for _, u in live],
                                create_graph=True, retain_graph=True, allow_unused=True)
            pairs = [(g, t) for g, t in zip(gs, tangents) if g is not None and g.requires_grad]
            if not pairs:
                res = tuple(_zeros_for(o) for o in outs)
            else:
                jv = _autograd_grad([g for g, _ in pairs], [u for _, u in live],
                                    [t for _, t in pairs], create_graph=outer,
                                    retain_graph=True, allow_unused=True)
                it = iter(jv)
                res = []
                for o in outs:
                    if o.requires_grad:
                        r = next(it)
                        res.append(_zeros_for(o) if r is None else r)
                    else:
                        res.append(_zeros_for(o))
                res = tuple(res)
    if not outer:
        res = tuple(r.detach() for r in res)
        outs = tuple(o.detach() for o in outs)
    shown = outs if isinstance(out, tuple) else outs[0]
    tan = res if isinstance(out, tuple) else res[0]
    if has_aux:
        return shown, tan, aux
    return shown, tan


def jacrev(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """``f -> (x -> Jacobian of f at x)`` by one VJP per output element.

    The result has shape ``out.shape + x.shape`` (a tuple for tuple ``argnums``).

    >>> import chainrule as cr
    >>> cr.func.jacrev(lambda x: x * x)(cr.tensor([1.0, 2.0]))
    tensor([[2., 0.],
            [0., 4.]])
    """
    nums, single = _argnums_tuple(argnums)

    def wrapper(*args, **kwargs):
        outer = _attached(args)
        with enable_grad():
            a = _prep("jacrev", args, nums)
            out = func(*a, **kwargs)
            out, aux = _split_aux("jacrev", out, has_aux)
            if not isinstance(out, Tensor):
                raise TypeError("jacrev: the function must return a single tensor")
            xs = [a[n] for n in nums]
            rows = [[] for _ in xs]
            n_out = out.numel()
            for i in range(n_out):
                e = np.zeros(n_out, dtype=out.dtype)
                e[i] = 1.0
                if out.requires_grad:
                    gs = _autograd_grad([out], xs, [_wrap(e.reshape(out.shape))],
                                        create_graph=outer, retain_graph=True,
                                        allow_unused=True)
                else:
                    gs = [None] * len(xs)
                for k, (g, x) in enumerate(zip(gs, xs)):
                    rows[k].append(_zeros_for(x) if g is None else g)
            from .ops.shape_api import reshape, stack

            jacs = []
            for k, x in enumerate(xs):
                if n_out == 0:
                    jacs.append(_wrap(np.zeros(tuple(out.shape) + tuple(x.shape), x.dtype)))
                    continue
                j = stack(rows[k], 0)
                jacs.append(reshape(j, tuple(out.shape) + tuple(x.shape)))
        if not outer:
            jacs = [j.detach() for j in jacs]
        res = jacs[0] if single else tuple(jacs)
        if has_aux:
            return res, aux
        return res

    return wrapper


def jacfwd(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """``f -> (x -> Jacobian)`` by one JVP per input element (same layout as jacrev)."""
    nums, single = _argnums_tuple(argnums)

    def wrapper(*args, **kwargs):
        from .ops.shape_api import reshape, stack

        jacs = []
        aux = None
        for n in nums:
            x = args[n]
            cols = []
            out = None
            for i in range(x.numel()):
                e = np.zeros(x.numel(), dtype=x.dtype)
                e[i] = 1.0
                tangents = tuple(_wrap(e.reshape(x.shape)) if k == n else _zeros_for(p)
                                 for k, p in enumerate(args))

                def f(*ps):
                    return func(*ps, **kwargs)

                res = jvp(f, tuple(args), tangents, has_aux=has_aux)
                out, col = res[0], res[1]
                if has_aux:
                    aux = res[2]
                cols.append(col)
            if out is None:
                out = func(*args, **kwargs)
                if has_aux:
                    out, aux = out
                jacs.append(_wrap(np.zeros(tuple(out.shape) + tuple(x.shape), x.dtype)))
                continue
            j = stack(cols, -1) if out.ndim else stack(cols, 0)
            jacs.append(reshape(j, tuple(out.shape) + tuple(x.shape)))
        res = jacs[0] if single else tuple(jacs)
        if has_aux:
            return res, aux
        return res

    return wrapper


def hessian(func: Callable, argnums=0) -> Callable:
    """``f -> (x -> Hessian of scalar f at x)``, shape ``x.shape + x.shape``.

    >>> import chainrule as cr
    >>> cr.func.hessian(lambda x: (x ** 3).sum())(cr.tensor([1.0, 2.0]))
    tensor([[ 6.,  0.],
            [ 0., 12.]])
    """
    return jacrev(jacrev(func, argnums), argnums)


def hvp(func: Callable, primals: tuple, tangents: tuple):
    """Return ``(func(*primals), H @ tangents)`` for scalar ``func`` (two reverse passes).

    >>> import chainrule as cr
    >>> _, hv = cr.func.hvp(lambda x: (x ** 3).sum(), (cr.tensor([1.0, 2.0]),),
    ...                     (cr.tensor([1.0, 1.0]),))
    >>> hv
    (tensor([ 6., 12.]),)
    """
    primals = tuple(primals)
    tangents = tuple(tangents)
    outer = _attached(primals)
    with enable_grad():
        a = _prep("hvp", primals, tuple(range(len(primals))))
        out = func(*a)
        _check_scalar("hvp", out)
        gs = _autograd_grad([out], list(a), create_graph=True, retain_graph=True,
                            allow_unused=True)
        live = [(g, t, x) for g, t, x in zip(gs, tangents, a) if g is not None and
                g.requires_grad]
        if live:
            hv = _autograd_grad([g for g, _, _ in live], list(a), [t for _, t, _ in live],
                                create_graph=outer, retain_graph=True, allow_unused=True)
            hv = tuple(_zeros_for(x) if h is None else h for h, x in zip(hv, a))
        else:
            hv = tuple(_zeros_for(x) for x in a)
    if not outer:
        hv = tuple(h.detach() for h in hv)
        out = out.detach()
    return out, hv


def vmap(func: Callable, in_dims=0, out_dims=0) -> Callable:
    """Map ``func`` over a batch dimension by looping (correct, not fused)."""
    def wrapper(*args):
        from .ops.shape_api import movedim, stack, unbind

        dims = in_dims if isinstance(in_dims, (tuple, list)) else (in_dims,) * len(args)
        n = None
        for a, d in zip(args, dims):
            if d is not None:
                n = a.shape[d]
                break
        if n is None:
            raise ValueError("vmap: at least one input must have a mapped dimension")
        slices = [unbind(a, d) if d is not None else None for a, d in zip(args, dims)]
        outs = []
        for i in range(n):
            outs.append(func(*[s[i] if s is not None else a for s, a in zip(slices, args)]))
        if isinstance(outs[0], tuple):
            return tuple(movedim(stack([o[k] for o in outs], 0), 0, out_dims)
                         for k in range(len(outs[0])))
        return movedim(stack(outs, 0), 0, out_dims)

    return wrapper
