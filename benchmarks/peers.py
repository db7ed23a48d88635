"""The peer libraries and the shared driver of the training-step benchmarks.

Peers (each optional; a missing or broken one is skipped with a note): PyTorch CPU
(threads = cores, or ``OPENBLAS_NUM_THREADS`` when set, so both libraries get the same
count), JAX (``jax.jit`` over the whole step, compile time reported apart), HIPS
autograd, MyGrad and tinygrad (CPU device) twice: ``tinygrad`` runs the step under
``TinyJit`` (its first two calls, which compile the kernels and capture the step, happen
while the step is built and are reported as its compile time; the initial weights are then
written back), ``tinygrad-eager`` runs the same tinygrad code as plain Python, scheduling
the lazy graph on every step (see :func:`tinygrad_factories`).

A workload hands :func:`run_workload` one factory per library. A factory builds the
library's model from the same NumPy weights and returns a zero-argument ``step`` that
runs one full training step (forward, loss, backward, optimizer update) and returns the
loss as a Python float (so lazy and asynchronous libraries finish their work inside the
timed call). Before timing, every library runs two steps from the initial weights on
fresh copies and the losses (before and after one update) must agree within relative
``1e-4``; otherwise :class:`LossMismatch` is raised, naming the library: a library that
computes less must never look fast.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from . import common

PEERS = ("jax", "autograd", "mygrad", "tinygrad")
RTOL = 1e-4
SLOW_AFTER = 8.0  # seconds of samples after which a slow library stops at three
IDLE_S = 0.005  # idle before each sample, after the garbage collection (see common)


class LossMismatch(RuntimeError):
    """Raised when two libraries disagree on the loss of the same training step."""


def blas_threads() -> int | None:
    """``OPENBLAS_NUM_THREADS`` as an int, when set."""
    v = os.environ.get("OPENBLAS_NUM_THREADS")
    return int(v) if v and v.isdigit() else None


def load_peers(smoke: bool) -> tuple[dict, list[str]]:
    """Import the installed peers; returns ``name -> module`` and notes on the missing.

    In smoke mode only the fast-importing NumPy-based peers are loaded (torch, JAX and
    tinygrad take seconds to import or compile), so the smoke run stays short.
    """
    libs: dict = {}
    notes: list[str] = []
    wanted = ["torch", *PEERS]
    if smoke:
        wanted = ["autograd", "mygrad"]
    for name in wanted:
        try:
            libs[name] = _import(name)
        except Exception as exc:  # noqa: BLE001 - any failure means "skip this peer"
            notes.append(f"{name} skipped: {type(exc).__name__}: {str(exc)[:120]}")
    return libs, notes


def _import(name: str):
    if name == "torch":
        torch = common.try_import_torch(blas_threads())
        if torch is None:
            raise ImportError("not installed")
        return torch
    if name == "jax":
        import jax

        jax.config.update("jax_platforms", "cpu")
        return jax
    if name == "autograd":
        import autograd

        return autograd
    if name == "mygrad":
        import mygrad

        return mygrad
    if name in ("tinygrad", "tinygrad-eager"):  # one module, two rows (see tinygrad_factories)
        import shutil

        os.environ.setdefault("DEV", "CPU")
        cc = os.environ.get("CC", "clang")
        if os.environ["DEV"].startswith("CPU") and shutil.which(cc) is None:
            # its CPU device compiles C kernels with clang-only flags (gcc rejects
            # --target); DEV=PYTHON works but interprets element by element
            raise ImportError(f"its CPU device needs the C compiler {cc!r}, not found")
        import tinygrad

        return tinygrad
    raise ValueError(name)


def versions(libs: dict) -> dict[str, str]:
    """Installed version of each loaded library."""
    from importlib.metadata import version

    out = {}
    for name in libs:
        try:
            out[name] = version("jax" if name == "jax" else name)
        except Exception:  # noqa: BLE001
            out[name] = "?"
    return out


# ------------------------------------------------------------------ functional pieces
# Written once against a NumPy-like module ``xp`` (jax.numpy, autograd.numpy, mygrad),
# with weights in PyTorch's layout (Linear weight is (out, in)).

def linear(xp, x, w, b):
    """``x @ w.T + b``."""
    return xp.matmul(x, xp.swapaxes(w, 0, 1)) + b


def relu(xp, x):
    """ReLU as ``maximum(x, 0)``."""
    # a float32 zero: MyGrad turns a Python float into a float64 tensor and upcasts
    return xp.maximum(x, np.float32(0.0))


def cross_entropy(xp, logits, onehot):
    """Mean cross-entropy from logits and one-hot targets (log-sum-exp form)."""
    m = xp.max(logits, axis=-1, keepdims=True)
    z = logits - m
    lse = xp.log(xp.sum(xp.exp(z), axis=-1, keepdims=True))
    return -xp.mean(xp.sum(onehot * (z - lse), axis=-1))


def onehot(y: np.ndarray, classes: int) -> np.ndarray:
    """float32 one-hot rows for integer labels."""
    out = np.zeros((len(y), classes), np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


def sgd_numpy(params: list[np.ndarray], grads, bufs: list, lr: float, momentum: float):
    """PyTorch's SGD-with-momentum update in place on NumPy arrays (buffer starts as g)."""
    for i, (p, g) in enumerate(zip(params, grads)):
        g = np.asarray(g, dtype=np.float32)
        if bufs[i] is None:
            bufs[i] = g.copy()
        else:
            bufs[i] *= momentum
            bufs[i] += g
        p -= lr * bufs[i]


def xp_factories(loss_fn: Callable, weights: list[np.ndarray], x: np.ndarray,
                 target: np.ndarray, lr: float, momentum: float, libs: dict,
                 info: dict) -> dict[str, Callable[[], Callable[[], float]]]:
    """Factories for JAX, autograd and MyGrad from one ``loss_fn(xp, params, x, target)``.

    ``info`` receives extra facts (JAX's compile time) keyed by library.
    """
    out = {}
    if "jax" in libs:
        def make_jax():
            import jax
            import jax.numpy as jnp

            def loss(ps, xx, tt):
                return loss_fn(jnp, ps, xx, tt)

            def step(ps, bufs, xx, tt):
                val, gs = jax.value_and_grad(loss)(ps, xx, tt)
                bufs = [g if b is None else momentum * b + g for b, g in zip(bufs, gs)]
                ps = [p - lr * b for p, b in zip(ps, bufs)]
                return ps, bufs, val

            ps = [jnp.asarray(w) for w in weights]
            xx, tt = jnp.asarray(x), jnp.asarray(target)
            # the first step creates the momentum buffers; the rest reuse one compiled step
            first = jax.jit(lambda ps, xx, tt: step(ps, [None] * len(ps), xx, tt))
            t0 = time.perf_counter()
            rest = jax.jit(step).lower(ps, ps, xx, tt).compile()
            first_c = first.lower(ps, xx, tt).compile()
            info["jax"] = {"compile_s": time.perf_counter() - t0}
            state = {"ps": ps, "bufs": None}

            def run():
                if state["bufs"] is None:
                    state["ps"], state["bufs"], val = first_c(state["ps"], xx, tt)
                else:
                    state["ps"], state["bufs"], val = rest(state["ps"], state["bufs"], xx, tt)
                return float(val)

            return run

        out["jax"] = make_jax
    if "autograd" in libs:
        def make_autograd():
            import autograd.numpy as anp
            from autograd import value_and_grad

            ps = [w.copy() for w in weights]
            bufs: list = [None] * len(ps)
            vg = value_and_grad(lambda p: loss_fn(anp, p, x, target))

            def run():
                val, gs = vg(ps)
                sgd_numpy(ps, gs, bufs, lr, momentum)
                return float(val)

            return run

        out["autograd"] = make_autograd
    if "mygrad" in libs:
        def make_mygrad():
            import mygrad as mg

            mg.turn_memory_guarding_off()  # its documented speed switch; no copies kept
            ps = [mg.tensor(w.copy()) for w in weights]
            bufs: list = [None] * len(ps)

            def run():
                loss = loss_fn(mg, ps, x, target)
                loss.backward()
                sgd_numpy([p.data for p in ps], [p.grad for p in ps], bufs, lr, momentum)
                for p in ps:
                    p.null_grad()
                return float(loss.item())

            return run

        out["mygrad"] = make_mygrad
    return out


TINYGRAD_NOTE = (
    "tinygrad: compile s is the wall time of its first two calls (run eagerly compiling "
    "the kernels, then the TinyJit capture), spent while the step is built; the initial "
    "weights are then restored, so its timed samples are steady-state replays; "
    "tinygrad-eager runs the same step without TinyJit")


def has_tinygrad(libs: dict) -> bool:
    """True when tinygrad was loaded (under either of its row names)."""
    return "tinygrad" in libs or "tinygrad-eager" in libs


def tinygrad_factories(loss_fn: Callable, weights: list[np.ndarray], x: np.ndarray,
                       labels: np.ndarray, lr: float, momentum: float,
                       info: dict) -> dict[str, Callable[[], Callable[[], float]]]:
    """Factories for tinygrad's two rows from one ``loss_fn(params, x, labels)``.

    ``loss_fn`` builds the loss with tinygrad ``Tensor`` methods from the parameters
    (tinygrad tensors of ``weights``, in the same order), the input and the int32 labels.
    The optimizer is ``tinygrad.nn.optim.SGD`` with momentum: its buffer starts at zero
    and becomes ``momentum * buf + grad``, so after the first step it is the first
    gradient, as in PyTorch. Both rows run the same step function under
    ``Context(TRAINING=1)``, realizing the loss together with the optimizer's update:

    - ``tinygrad``: the step under ``TinyJit``. Its first call runs eagerly (compiling
      the kernels) and its second captures the kernels; both run while the step is built,
      their wall time goes to ``info["tinygrad"]["compile_s"]`` and the initial weights
      and zero momentum buffers are then written back into the buffers the JIT captured,
      so the first timed (and cross-checked) call starts from the initial weights.
    - ``tinygrad-eager``: the step called directly; every call builds the lazy graph,
      schedules it and runs its kernels (compiled once and cached by tinygrad).
    """
    def build():
        from tinygrad import Tensor
        from tinygrad.nn.optim import SGD

        ps = [Tensor(w.copy()).realize() for w in weights]
        xx = Tensor(x).realize()
        yy = Tensor(labels.astype(np.int32)).realize()
        opt = SGD(ps, lr=lr, momentum=momentum)

        def body():
            opt.zero_grad()
            # backward gives every live float tensor a lazy gradient, the input included;
            # never realized, but it would pile up across eager steps
            xx.grad = None
            loss = loss_fn(ps, xx, yy)
            loss.backward()
            return loss.realize(*opt.schedule_step())

        return ps, opt, body

    def make_eager():
        from tinygrad.helpers import Context

        _, _, body = build()

        def run():
            with Context(TRAINING=1):
                return float(body().item())

        return run

    def make_jit():
        from tinygrad import Tensor, TinyJit
        from tinygrad.helpers import Context

        ps, opt, body = build()
        jit = TinyJit(body)

        def run():
            with Context(TRAINING=1):
                return float(jit().item())

        t0 = time.perf_counter()
        run()
        run()
        # the first build in this process compiles; later ones hit tinygrad's caches
        info.setdefault("tinygrad", {"compile_s": time.perf_counter() - t0})
        Tensor.realize(*[p.assign(Tensor(w.copy())) for p, w in zip(ps, weights)],
                       *[b.assign(Tensor.zeros(*b.shape)) for b in opt.b])
        return run

    return {"tinygrad": make_jit, "tinygrad-eager": make_eager}


def finish_result(result: dict, libs: dict, target: float, notes: list[str]) -> dict:
    """The target, library versions, PyTorch's thread count, the workload's ``notes`` and
    the measurement note: what a training-step result ends with."""
    result["targets"]["chainrule/torch"] = target
    result["versions"] = versions(libs)
    if "torch" in libs:
        result["notes"].append(f"torch threads = {libs['torch'].get_num_threads()} "
                               f"(OPENBLAS_NUM_THREADS={blas_threads() or 'unset'})")
    result["notes"].extend(notes)
    result["notes"].append(common.ENV_NOTE)
    return result


def sgd_in_place(lib, params: list, lr: float) -> None:
    """Plain SGD, ``p -= lr * p.grad`` under ``lib.no_grad()`` (PyTorch and chainrule)."""
    with lib.no_grad():
        for p in params:
            p -= lr * p.grad


# ------------------------------------------------------------------------ the driver
def cross_check(factories: dict[str, Callable], rtol: float = RTOL,
                notes: list[str] | None = None, steps: dict | None = None) -> dict[str, list]:
    """Two steps per library from fresh initial weights; raise on any loss disagreement.

    A peer (not chainrule or torch) that fails to build or run is dropped from
    ``factories`` with a note instead. Returns ``name -> [loss before, loss after]``;
    ``steps``, when given, receives each library's step function for reuse (building a
    step again would compile JAX's and tinygrad's kernels again).
    """
    losses = {}
    for name, make in list(factories.items()):
        try:
            step = make()
            losses[name] = [step(), step()]
            if steps is not None:
                steps[name] = step
        except Exception as exc:  # noqa: BLE001
            if name in ("chainrule", "torch") or notes is None:
                raise
            del factories[name]
            notes.append(f"{name} skipped: it failed on this workload: "
                         f"{type(exc).__name__}: {str(exc)[:120]}")
    ref_name = "torch" if "torch" in losses else "chainrule"
    ref = losses[ref_name]
    for name, got in losses.items():
        for k, (a, b) in enumerate(zip(got, ref)):
            if not (np.isfinite(a) and abs(a - b) <= rtol * abs(b)):
                raise LossMismatch(
                    f"loss cross-check failed: {name} computes loss {a!r} at step {k + 1} "
                    f"where {ref_name} computes {b!r} (relative tolerance {rtol}); the "
                    f"libraries do not run the same training step")
    return losses


def run_workload(name: str, factories: dict[str, Callable], *, repeats: int, warmup: int,
                 params: dict, flops: float | None = None, notes: list[str] | None = None,
                 info: dict | None = None) -> dict:
    """Cross-check the losses, then time every library's step interleaved.

    Returns a result dict in the runner's shape: rows of min/median seconds per step,
    ratios to torch (and chainrule/torch), achieved GFLOP/s when ``flops`` is given.
    """
    notes = list(notes or [])
    steps: dict = {}
    losses = cross_check(factories, notes=notes, steps=steps)
    res = common.interleave(steps, repeats, warmup=warmup, slow_after=SLOW_AFTER, sleep=IDLE_S)
    for lib, v in res.items():
        if v["n"] < repeats:
            notes.append(f"{lib}: {v['n']} samples (its samples passed {SLOW_AFTER:.0f} s)")
    rows = []
    for lib, v in res.items():
        row = {"lib": lib, "min": v["min"], "median": v["median"], "n": v["n"],
               "cpu_min": v["cpu"]["min"], "loss": losses[lib][1]}
        if flops:
            row["gflops"] = flops / v["min"] / 1e9
        if info and lib in info:
            row.update(info[lib])
        rows.append(row)
    ratios = {}
    if "torch" in res:
        for lib in res:
            if lib != "torch":
                ratios[f"{lib}/torch"] = {
                    "min": res[lib]["min"] / res["torch"]["min"],
                    "median": res[lib]["median"] / res["torch"]["median"]}
    return {"name": name, "params": params, "rows": rows, "ratios": ratios,
            "targets": {}, "notes": notes}


def format_steps(result: dict) -> str:
    """Rows of ms per step (plus GFLOP/s, compile time, memory when present) and ratios."""
    rows_in = result["rows"]
    headers = ["library", "min ms/step", "median ms/step", "vs torch (min / median)"]
    extra = [k for k in ("gflops", "compile_s", "peak_mib") if any(k in r for r in rows_in)]
    names = {"gflops": "GFLOP/s (min)", "compile_s": "compile s", "peak_mib": "peak MiB"}
    headers += [names[k] for k in extra]
    rows = []
    for r in rows_in:
        ratio = result["ratios"].get(f"{r['lib']}/torch")
        cells = [r["lib"], f"{r['min'] * 1e3:.2f}", f"{r['median'] * 1e3:.2f}",
                 "1.00 / 1.00" if r["lib"] == "torch" else
                 (f"{ratio['min']:.2f} / {ratio['median']:.2f}" if ratio else "-")]
        for k in extra:
            v = r.get(k)
            cells.append("-" if v is None else f"{v:.1f}" if k != "compile_s" else f"{v:.2f}")
        rows.append(cells)
    lines = [common.format_table(headers, rows)]
    tgt = result["targets"].get("chainrule/torch")
    cr_ratio = result["ratios"].get("chainrule/torch")
    if tgt and cr_ratio:
        ok = "meets" if cr_ratio["min"] <= tgt else "misses"
        lines.append(f"\nchainrule/torch min {cr_ratio['min']:.2f} {ok} the target <= {tgt}")
    for n in result["notes"]:
        lines.append(f"- {n}")
    return "\n".join(lines)
