"""``chainrule.diagnostics``: look inside backprop.

- :func:`explain_two_layer` / :func:`explain`: step-by-step accounts of a backward pass.
- :func:`draw_graph`: the recorded graph as Graphviz DOT (SVG/PNG when ``dot`` exists).
- :func:`why_no_grad`: why a parameter's gradient is None or zero.
- :class:`LeakWatch`: warns when a graph is kept alive across steps.
- :func:`hessian_eigs` / :func:`hessian_trace`: curvature from Hessian-vector products.
- :class:`GradientMonitor`: per-step gradient statistics, vanishing/exploding alarms, plots.
- :func:`check_gradients`: gradcheck of a whole model in float64, leaving it untouched.
- :func:`memory_report`: bytes saved for backward per op and module, peak and total.

Everything is built on the public graph API (``grad_fn``, ``edges``, hooks,
``autograd.grad``); nothing here drives training.
"""

from .check import GradCheckReport, GradCheckRow, check_gradients
from .curvature import hessian_eigs, hessian_trace
from .doctor import GradDiagnosis, NoGradReason, why_no_grad
from .explain import Explanation, Step, explain_two_layer
from .explain_graph import GraphExplanation, NodeInfo, explain
from .graphviz import GraphvizNotFoundWarning, draw_graph
from .leak import GraphLeakDetector, GraphLeakWarning, LeakWatch
from .memory import MemoryReport, SavedMemoryTracker, SavedRecord, memory_report
from .monitor import (
    ExplodingGradientWarning,
    GradientMonitor,
    GradientWarning,
    NonFiniteGradientWarning,
    VanishingGradientWarning,
)

__all__ = [
    "ExplodingGradientWarning", "GradCheckReport", "GradCheckRow", "GradientMonitor",
    "GradientWarning", "NonFiniteGradientWarning", "VanishingGradientWarning",
    "check_gradients",
    "Explanation", "GradDiagnosis", "GraphExplanation", "GraphLeakDetector",
    "GraphLeakWarning", "GraphvizNotFoundWarning", "LeakWatch", "NoGradReason", "NodeInfo",
    "Step", "draw_graph", "explain", "explain_two_layer", "hessian_eigs", "hessian_trace",
    "why_no_grad",
    "MemoryReport", "SavedMemoryTracker", "SavedRecord", "memory_report",
]
