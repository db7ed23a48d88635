"""Gradient monitor: per-step gradient, weight and activation statistics, with alarms.

:class:`GradientMonitor` watches a model while it trains. It reads every parameter's
``.grad`` when asked to record a step, measures each step's update against the weights
it changed, and counts dead or saturated units through forward hooks on the model's
``ReLU`` / ``ReLU6`` / ``Sigmoid`` / ``Tanh`` modules. From those numbers it detects
vanishing and exploding gradients and warns once per kind, naming the layers.

Protocol (by hand)::

    monitor = GradientMonitor(model)
    for x, y in batches:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        monitor.record()        # after backward, before the step: reads the gradients
        opt.step()
        monitor.after_step()    # after the step: update-to-weight ratios (optional)
    print(monitor.summary())

Protocol (with ``chainrule.train.fit``): pass it as ``fit(..., monitor=monitor)`` (or in
``callbacks=``); ``on_after_backward`` calls :meth:`GradientMonitor.record` and
``on_after_step`` calls :meth:`GradientMonitor.after_step`. ``fit`` calls
``on_after_backward`` before gradient clipping, so the recorded norms are unclipped.

Thresholds (all arguments of :class:`GradientMonitor`):

- dead unit: a ReLU/ReLU6 output position (every non-batch position of the output; the
  first dimension is the batch) that is exactly 0 for every sample of every forward
  pass recorded into the step;
- saturated: a sigmoid output ``< 0.01`` or ``> 0.99``, a tanh output with ``|y| > 0.99``
  (fractions of all output elements);
- vanishing: the first layer's gradient norm is below ``vanish_ratio`` (1e-3) times the
  last layer's, in forward order;
- exploding: a parameter's gradient norm above ``explode_threshold`` (1e3), the total
  gradient norm growing at every one of the last ``growth_steps`` (5) steps and by at
  least ``growth_factor`` (100x) overall, or any non-finite gradient or weight.
"""

from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np

from ..autograd.grad_mode import is_grad_enabled

_PARAM_STATS = ("grad_norm", "grad_rms", "grad_mean", "grad_max", "zero_frac", "nonfinite",
                "weight_norm", "update_ratio")
_LAYER_STATS = ("grad_norm", "grad_rms", "grad_mean", "grad_max")
_ACT_STATS = ("dead_frac", "saturated_frac")
_SIGMOID_LOW, _SIGMOID_HIGH = 0.01, 0.99
_TANH_LIMIT = 0.99


class GradientWarning(UserWarning):
    """Base class of the warnings :class:`GradientMonitor` issues."""


class VanishingGradientWarning(GradientWarning):
    """Early layers get gradients orders of magnitude smaller than the last layer."""


class ExplodingGradientWarning(GradientWarning):
    """Gradient norms above the threshold, or growing step after step."""


class NonFiniteGradientWarning(ExplodingGradientWarning):
    """A gradient or weight holds NaN or infinity."""


def _layer_of(param_name: str) -> str:
    layer = param_name.rpartition(".")[0]
    return layer if layer else "(root)"


def _activation_kind(module) -> str | None:
    name = type(module).__name__
    return {"ReLU": "relu", "ReLU6": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}.get(name)


class _ActivationStats:
    """Accumulates one activation module's statistics between two ``record`` calls."""

    __slots__ = ("kind", "alive", "saturated", "total")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.alive = None
        self.saturated = 0
        self.total = 0

    def update(self, out: np.ndarray) -> None:
        arr = out.reshape(out.shape[0], -1) if out.ndim > 1 else out.reshape(1, -1)
        if self.kind == "relu":
            alive = (arr != 0).any(axis=0)
            if self.alive is None or self.alive.shape != alive.shape:
                self.alive = alive
            else:
                self.alive |= alive
        elif self.kind == "sigmoid":
            self.saturated += int(np.count_nonzero((arr < _SIGMOID_LOW) | (arr > _SIGMOID_HIGH)))
        else:
            self.saturated += int(np.count_nonzero(np.abs(arr) > _TANH_LIMIT))
        self.total += arr.size

    def pop(self) -> dict | None:
        if self.total == 0:
            return None
        if self.kind == "relu":
            rec = {"kind": self.kind, "dead_frac": float(1.0 - self.alive.mean()),
                   "saturated_frac": math.nan}
        else:
            rec = {"kind": self.kind, "dead_frac": math.nan,
                   "saturated_frac": self.saturated / self.total}
        self.alive = None
        self.saturated = 0
        self.total = 0
        return rec


def _fmt(v: float, pct: bool = False, missing: str = "-") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return missing
    if pct:
        return f"{100 * v:.1f}%"
    if isinstance(v, int):
        return str(v)
    return f"{v:.3g}" if math.isfinite(v) else str(v)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines)


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this module."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
        level += 1
    return level


def _names(items: list[str], limit: int = 6) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"


class GradientMonitor:
    """Record gradient statistics of ``model`` per step, and warn on unhealthy gradients.

    Call :meth:`record` after ``loss.backward()`` and :meth:`after_step` after
    ``optimizer.step()``, or pass the monitor to ``chainrule.train.fit(..., monitor=...)``,
    which does both (the monitor has the callback methods ``fit`` calls).

    Per step and per parameter it records the gradient norm, RMS, mean and max of
    ``|grad|``, the fraction of exactly-zero gradient entries, the number of non-finite
    entries, the weight norm and (after the step) the update-to-weight ratio
    ``||w_new - w_old|| / ||w_old||``; per layer (the module owning the parameters) the
    gradient norm, RMS and mean/max ``|grad|``; per ``ReLU``/``Sigmoid``/``Tanh`` module the
    dead or saturated fraction (see the module docstring for the definitions).

    Args:
        model: the module to watch (a ``chainrule.nn.Module``); its parameters that
            require grad are monitored, frozen ones are left out.
        vanish_ratio: warn when the first layer's gradient norm is below this fraction
            of the last layer's.
        explode_threshold: warn when a parameter's gradient norm exceeds this.
        growth_factor, growth_steps: warn when the total gradient norm grew at each of
            the last ``growth_steps`` steps and by ``growth_factor`` overall.
        track_updates: keep a copy of the weights at :meth:`record` to measure the
            update in :meth:`after_step` (costs one copy of the weights).
        warn: issue warnings (each kind once); detections are kept in :attr:`issues`
            either way.

    Attributes:
        records: one plain dict per recorded step (see :meth:`record`).
        issues: the detections, as dicts ``{"kind", "step", "message"}``, one per kind.

    >>> import chainrule as cr
    >>> model = cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.ReLU(), cr.nn.Linear(4, 1))
    >>> monitor = GradientMonitor(model)
    >>> model(cr.randn(8, 3)).pow(2).mean().backward()
    >>> rec = monitor.record()
    >>> sorted(rec["layers"])
    ['0', '2']
    >>> monitor.remove()
    """

    def __init__(self, model, *, vanish_ratio: float = 1e-3, explode_threshold: float = 1e3,
                 growth_factor: float = 100.0, growth_steps: int = 5,
                 track_updates: bool = True, warn: bool = True) -> None:
        if not hasattr(model, "named_parameters") or not hasattr(model, "named_modules"):
            raise TypeError(f"GradientMonitor: expected a chainrule.nn.Module, got "
                            f"{type(model).__name__}")
        if not 0 < vanish_ratio < 1:
            raise ValueError(f"GradientMonitor: vanish_ratio must be in (0, 1), got "
                             f"{vanish_ratio}")
        if explode_threshold <= 0:
            raise ValueError(f"GradientMonitor: explode_threshold must be positive, got "
                             f"{explode_threshold}")
        if growth_factor <= 1 or growth_steps < 1:
            raise ValueError(f"GradientMonitor: need growth_factor > 1 and growth_steps >= 1,"
                             f" got {growth_factor} and {growth_steps}")
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not params:
            raise ValueError("GradientMonitor: the model has no parameter that requires grad;"
                             " there are no gradients to monitor (call "
                             "model.requires_grad_() to unfreeze it)")
        self.model = model
        self.vanish_ratio = float(vanish_ratio)
        self.explode_threshold = float(explode_threshold)
        self.growth_factor = float(growth_factor)
        self.growth_steps = int(growth_steps)
        self.track_updates = track_updates
        self.warn = warn
        self.records: list[dict] = []
        self.issues: list[dict] = []
        self._params = params
        self._layers = list(dict.fromkeys(_layer_of(n) for n, _ in params))
        self._order: list[str] = []
        self._before: dict | None = None
        self._pending = False
        self._acts: dict[str, _ActivationStats] = {}
        self._handles: list = []
        self._order_handles: list = []
        self._attach()

    # ------------------------------------------------------------------ hooks
    def _attach(self) -> None:
        owners = set(self._layers)
        for name, m in self.model.named_modules():
            kind = _activation_kind(m)
            if kind is not None:
                label = name or "(root)"
                self._acts[label] = _ActivationStats(kind)
                self._handles.append(m.register_forward_hook(self._act_hook(label)))
            label = name or "(root)"
            if label in owners:
                self._order_handles.append(m.register_forward_pre_hook(self._order_hook(label)))

    def _act_hook(self, label: str):
        stats = self._acts[label]

        def hook(module, args, out):
            if is_grad_enabled() and hasattr(out, "_data"):
                stats.update(out._data)

        return hook

    def _order_hook(self, label: str):
        order = self._order

        def hook(module, args):
            if label not in order:
                order.append(label)

        return hook

    def remove(self) -> None:
        """Unregister every hook the monitor added to the model (records are kept)."""
        for h in self._handles + self._order_handles:
            h.remove()
        self._handles = []
        self._order_handles = []

    def __enter__(self) -> GradientMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    @property
    def layers(self) -> list[str]:
        """Layer names (modules owning parameters) in forward order, as first called."""
        seen = [n for n in self._order if n in self._layers]
        return seen + [n for n in self._layers if n not in seen]

    # ------------------------------------------------------------------ recording
    def record(self, epoch: int | None = None) -> dict:
        """Record the current gradients as one step; call after ``loss.backward()``.

        Returns the step's record, a plain dict: ``step``, ``epoch``,
        ``total_grad_norm``, ``params`` (name -> grad_norm, grad_rms, grad_mean, grad_max,
        zero_frac, nonfinite, weight_norm, update_ratio), ``layers`` (name -> grad_norm,
        grad_rms, grad_mean, grad_max) and ``activations`` (module name -> kind, dead_frac,
        saturated_frac). Parameters without a gradient get NaN statistics.
        """
        if all(p.grad is None for _, p in self._params):
            raise RuntimeError("GradientMonitor.record: no monitored parameter has a gradient;"
                               " call record() after loss.backward() and before "
                               "optimizer.zero_grad()")
        step = len(self.records)
        params = {}
        layer_sq: dict[str, float] = {}
        layer_abs: dict[str, float] = {}
        layer_n: dict[str, int] = {}
        layer_max: dict[str, float] = {}
        total_sq = 0.0
        before = {} if self.track_updates else None
        for name, p in self._params:
            w = p._data
            rec = dict.fromkeys(_PARAM_STATS, math.nan)
            rec["nonfinite"] = 0
            with np.errstate(over="ignore", invalid="ignore"):
                rec["weight_norm"] = float(np.linalg.norm(w.astype(np.float64).ravel()))
            if before is not None:
                before[name] = w.copy()
            g = p.grad
            if g is not None and g._data.size:
                ga = np.abs(g._data.astype(np.float64, copy=False)).ravel()
                with np.errstate(over="ignore", invalid="ignore"):
                    sq = float(np.dot(ga, ga))
                    gmax = float(ga.max())
                    gsum = float(ga.sum())
                rec.update(grad_norm=math.sqrt(sq), grad_rms=math.sqrt(sq / ga.size),
                           grad_mean=gsum / ga.size, grad_max=gmax,
                           zero_frac=float(np.count_nonzero(ga == 0)) / ga.size,
                           nonfinite=int(ga.size - np.count_nonzero(np.isfinite(ga))))
                layer = _layer_of(name)
                layer_sq[layer] = layer_sq.get(layer, 0.0) + sq
                layer_abs[layer] = layer_abs.get(layer, 0.0) + gsum
                layer_n[layer] = layer_n.get(layer, 0) + ga.size
                layer_max[layer] = max(layer_max.get(layer, 0.0), gmax)
                total_sq += sq
            params[name] = rec
        layers = {}
        for layer in self.layers:
            if layer in layer_sq:
                layers[layer] = {"grad_norm": math.sqrt(layer_sq[layer]),
                                 "grad_rms": math.sqrt(layer_sq[layer] / layer_n[layer]),
                                 "grad_mean": layer_abs[layer] / layer_n[layer],
                                 "grad_max": layer_max[layer]}
        acts = {}
        for label, stats in self._acts.items():
            a = stats.pop()
            if a is not None:
                acts[label] = a
        record = {"step": step, "epoch": epoch, "total_grad_norm": math.sqrt(total_sq),
                  "params": params, "layers": layers, "activations": acts}
        self.records.append(record)
        self._before = before
        self._pending = True
        self._detect(record)
        # The forward order is known once a step has run; stop paying for those hooks.
        if self._order:
            for h in self._order_handles:
                h.remove()
            self._order_handles = []
        return record

    def after_step(self) -> dict:
        """Measure the update of the step just taken; call after ``optimizer.step()``.

        Fills ``update_ratio`` (``||w_new - w_old|| / ||w_old||``) of the last record,
        checks the new weights for NaN/inf, and returns that record.
        """
        if not self._pending:
            raise RuntimeError("GradientMonitor.after_step: no step recorded since the last "
                               "after_step; call monitor.record() after loss.backward() and "
                               "before optimizer.step()")
        self._pending = False
        record = self.records[-1]
        bad = []
        for name, p in self._params:
            w = p._data
            if not np.isfinite(w).all():
                bad.append(name)
            if self._before is None:
                continue
            old = self._before[name].astype(np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                delta = float(np.linalg.norm((w.astype(np.float64) - old).ravel()))
                base = float(np.linalg.norm(old.ravel()))
            if base > 0:
                ratio = delta / base
            else:
                ratio = 0.0 if delta == 0 else math.inf
            record["params"][name]["update_ratio"] = ratio
        self._before = None
        if bad:
            self._alarm("nonfinite", record["step"], NonFiniteGradientWarning,
                        f"non-finite weights after optimizer step {record['step']} in "
                        f"{_names(bad)}; lower the learning rate or clip gradients")
        return record

    # ------------------------------------------------------------------ detection
    def _alarm(self, kind: str, step: int, category, message: str) -> None:
        if any(i["kind"] == kind for i in self.issues):
            return
        self.issues.append({"kind": kind, "step": step, "message": message})
        if self.warn:
            warnings.warn(f"GradientMonitor: {message}", category, stacklevel=_caller_level())

    def _detect(self, record: dict) -> None:
        step = record["step"]
        params = record["params"]
        nonfinite = [n for n, r in params.items() if r["nonfinite"]]
        if nonfinite:
            counts = ", ".join(f"{n} ({params[n]['nonfinite']})" for n in nonfinite[:6])
            self._alarm("nonfinite", step, NonFiniteGradientWarning,
                        f"non-finite gradients at step {step} in {counts}"
                        f"{' and more' if len(nonfinite) > 6 else ''}; lower the learning "
                        f"rate, clip gradients, or run under cr.autograd.detect_anomaly() "
                        f"to find the op")
            return
        big = [(n, r["grad_norm"]) for n, r in params.items()
               if r["grad_norm"] > self.explode_threshold]
        if big:
            desc = ", ".join(f"{n} ({v:.3g})" for n, v in big[:6])
            self._alarm("exploding", step, ExplodingGradientWarning,
                        f"exploding gradients at step {step}: gradient norm above "
                        f"{self.explode_threshold:g} in {desc}; lower the learning rate or "
                        f"clip gradients (fit(..., clip_grad_norm=1.0))")
        self._detect_growth(step)
        # Once a run diverges, tiny early-layer gradients (saturated units) are a symptom.
        if not any(i["kind"] in ("exploding", "nonfinite") for i in self.issues):
            self._detect_vanishing(record)

    def _detect_growth(self, step: int) -> None:
        k = self.growth_steps
        if len(self.records) <= k:
            return
        norms = [r["total_grad_norm"] for r in self.records[-(k + 1):]]
        rising = all(b > a for a, b in zip(norms, norms[1:]))
        if rising and norms[0] > 0 and norms[-1] >= self.growth_factor * norms[0]:
            self._alarm("exploding", step, ExplodingGradientWarning,
                        f"exploding gradients: the total gradient norm grew at each of the "
                        f"last {k} steps, from {norms[0]:.3g} at step {step - k} to "
                        f"{norms[-1]:.3g} at step {step}; lower the learning rate or clip "
                        f"gradients")

    def _detect_vanishing(self, record: dict) -> None:
        layers = record["layers"]
        names = [n for n in self.layers if n in layers]
        if len(names) < 2:
            return
        ref = layers[names[-1]]["grad_norm"]
        if not (ref > 0 and math.isfinite(ref)):
            return
        ratios = [(n, layers[n]["grad_norm"] / ref) for n in names[:-1]]
        if ratios[0][1] >= self.vanish_ratio:
            return
        weak = [(n, r) for n, r in ratios if r < self.vanish_ratio]
        desc = ", ".join(f"{n} ({layers[n]['grad_norm']:.3g}, {r:.2g}x)" for n, r in weak[:6])
        more = f" and {len(weak) - 6} more" if len(weak) > 6 else ""
        self._alarm("vanishing", record["step"], VanishingGradientWarning,
                    f"vanishing gradients at step {record['step']}: {len(weak)} of "
                    f"{len(names)} layers get gradient norms below {self.vanish_ratio:g} times "
                    f"the last layer's ({names[-1]}: {ref:.3g}): {desc}{more}; try ReLU-type "
                    f"activations with He init (nn.init.kaiming_normal_), residual "
                    f"connections or normalization layers")

    # ------------------------------------------------------------------ callback protocol
    def on_train_begin(self, trainer) -> None:
        """``fit`` callback: check the trainer trains the monitored model."""
        if getattr(trainer, "model", self.model) is not self.model:
            raise ValueError("GradientMonitor: fit is training a different model than the "
                             "one this monitor watches")

    def on_epoch_begin(self, trainer) -> None:
        """``fit`` callback (nothing to do)."""

    def on_after_backward(self, trainer) -> None:
        """``fit`` callback: :meth:`record` the step's gradients."""
        self.record(epoch=getattr(trainer, "epoch", None))

    def on_after_step(self, trainer) -> None:
        """``fit`` callback: :meth:`after_step`."""
        self.after_step()

    def on_epoch_end(self, trainer, logs: dict) -> None:
        """``fit`` callback (nothing to do)."""

    def on_train_end(self, trainer) -> None:
        """``fit`` callback (hooks stay; call :meth:`remove` to detach them)."""

    # ------------------------------------------------------------------ reporting
    @property
    def history(self) -> dict[str, np.ndarray]:
        """All records as a dict of 1-D arrays over steps (NaN where a value is missing).

        Keys: ``step``, ``total_grad_norm``, ``<stat>/<param>`` for the parameter
        statistics, ``layer_<stat>/<layer>`` for the layer ones and
        ``<dead_frac|saturated_frac>/<module>`` for the activation modules.
        """
        recs = self.records
        n = len(recs)
        out: dict[str, np.ndarray] = {
            "step": np.array([r["step"] for r in recs], dtype=np.int64),
            "total_grad_norm": np.array([r["total_grad_norm"] for r in recs], dtype=np.float64),
        }

        def column(get) -> np.ndarray:
            col = np.full(n, np.nan)
            for i, r in enumerate(recs):
                v = get(r)
                if v is not None:
                    col[i] = v
            return col

        for name, _ in self._params:
            for s in _PARAM_STATS:
                out[f"{s}/{name}"] = column(lambda r, s=s, name=name: r["params"][name][s])
        for layer in self.layers:
            for s in _LAYER_STATS:
                out[f"layer_{s}/{layer}"] = column(
                    lambda r, s=s, layer=layer: r["layers"].get(layer, {}).get(s))
        for label in self._acts:
            for s in _ACT_STATS:
                out[f"{s}/{label}"] = column(
                    lambda r, s=s, label=label: r["activations"].get(label, {}).get(s))
        return out

    def summary(self) -> str:
        """A plain-text report: last step's per-parameter table, activations, issues."""
        if not self.records:
            return "GradientMonitor: no step recorded yet (call record() after backward)"
        last = self.records[-1]
        head = (f"GradientMonitor: {len(self.records)} step(s) recorded; values of step "
                f"{last['step']} (total gradient norm {_fmt(last['total_grad_norm'])})")
        shapes = {n: tuple(p.shape) for n, p in self._params}
        rows = []
        for name, r in last["params"].items():
            miss = "nan" if r["nonfinite"] else "-"
            rows.append([name, str(shapes[name])]
                        + [_fmt(r[k], missing=miss) for k in ("grad_norm", "grad_rms", "grad_max",
                                                              "weight_norm", "update_ratio")]
                        + [_fmt(r["zero_frac"], pct=True, missing=miss), str(r["nonfinite"])])
        parts = [head, "", _table(["parameter", "shape", "grad norm", "grad rms", "max|grad|",
                                   "weight norm", "update/weight", "zero grad", "non-finite"],
                                  rows)]
        if last["activations"]:
            arows = [[label, a["kind"], _fmt(a["dead_frac"], pct=True),
                      _fmt(a["saturated_frac"], pct=True)]
                     for label, a in last["activations"].items()]
            parts += ["", _table(["activation", "kind", "dead units", "saturated"], arows),
                      f"(dead: ReLU output exactly 0 for every sample; saturated: sigmoid "
                      f"< {_SIGMOID_LOW} or > {_SIGMOID_HIGH}, tanh |y| > {_TANH_LIMIT})"]
            dead = [k for k, a in last["activations"].items() if a["dead_frac"] > 0.5]
            sat = [k for k, a in last["activations"].items() if a["saturated_frac"] > 0.5]
            if dead:
                parts.append(f"note: more than half the units are dead in {_names(dead)} "
                             f"(lower the learning rate, use LeakyReLU or He init)")
            if sat:
                parts.append(f"note: more than half the outputs are saturated in {_names(sat)}"
                             f" (normalize inputs, use smaller initial weights)")
        parts.append("")
        if self.issues:
            parts.append("issues:")
            parts += [f"  [{i['kind']}] {i['message']}" for i in self.issues]
        else:
            parts.append("issues: none detected")
        return "\n".join(parts)

    def plot_flow(self, path: str | os.PathLike, step: int | None = None) -> str:
        """Draw the gradient flow (per-layer mean and max ``|grad|``, log scale) to a PNG.

        Layers are in forward order. ``step=None`` averages over all recorded steps;
        an integer picks one step. Needs matplotlib (``pip install 'chainrule[plot]'``).
        Returns the path written.
        """
        from .plots import plot_flow

        return plot_flow(self, path, step=step)

    def plot_norms(self, path: str | os.PathLike) -> str:
        """Draw per-layer gradient norms and update ratios over steps (log scale) to a PNG.

        Needs matplotlib (``pip install 'chainrule[plot]'``). Returns the path written.
        """
        from .plots import plot_norms

        return plot_norms(self, path)

    def __repr__(self) -> str:
        return (f"GradientMonitor({type(self.model).__name__}, {len(self._params)} parameters, "
                f"{len(self.records)} steps, issues={[i['kind'] for i in self.issues]})")
