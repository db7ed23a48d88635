"""The experiments of Rumelhart, Hinton & Williams (1986), rebuilt on chainrule.

"Learning representations by back-propagating errors" (Nature 323, 1986) and the PDP
chapter "Learning internal representations by error propagation": logistic units, the
error ``E = 1/2 sum (y - d)^2`` summed over all cases, one weight update per sweep through
the training set, ``Dw(t) = -eps dE/dw(t) + alpha Dw(t-1)``.

- :func:`run_xor`: XOR with two hidden units, over many seeds; how often it gets stuck.
- :func:`run_symmetry`: the 6-2-1 mirror-symmetry network and its learned weights.
- :func:`run_encoder`: the 8-3-8 encoder and its hidden codes.
- :func:`run_family`: the two isomorphic family trees, 100 facts to train, 4 to test.

:func:`run` runs one by name with its full or tiny setting; ``chainrule paper1986`` is the
command line, ``examples/rumelhart1986/`` has a script per experiment, and
``examples/rumelhart1986/RESULTS.md`` records the full runs against the paper.
"""

from ._core import (
    EnsembleLinear,
    EnsembleMLP,
    Report,
    residual,
    squared_error,
    train_full_batch,
)
from .encoder import run_encoder
from .family import FamilyNet, family_facts, plot_encodings, run_family
from .runner import EXPERIMENTS, run
from .symmetry import run_symmetry, symmetry_data
from .xor import run_xor

__all__ = ["EXPERIMENTS", "EnsembleLinear", "EnsembleMLP", "FamilyNet", "Report",
           "family_facts", "plot_encodings", "residual", "run", "run_encoder", "run_family",
           "run_symmetry", "run_xor", "squared_error", "symmetry_data", "train_full_batch"]
