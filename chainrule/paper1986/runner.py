"""Run the 1986 experiments by name, in their full or tiny (seconds-long) settings."""

from __future__ import annotations

import os

from ._core import Report
from .encoder import run_encoder
from .family import run_family
from .symmetry import run_symmetry
from .xor import run_xor

EXPERIMENTS = ("xor", "symmetry", "encoder", "family")

# name -> (function, full setting, tiny setting); the tiny seeds are ones that solve fast.
_SETTINGS = {
    "xor": (run_xor, dict(seeds=100, sweeps=10000), dict(seeds=[0, 3, 4, 15], sweeps=1000)),
    "symmetry": (run_symmetry, dict(seeds=20, sweeps=10000), dict(seeds=[12], sweeps=800)),
    "encoder": (run_encoder, dict(seeds=20, sweeps=10000), dict(seeds=[12], sweeps=1000)),
    "family": (run_family, dict(seeds=10, sweeps=3000), dict(seeds=2, sweeps=10)),
}


def run(name: str, *, tiny: bool = False, seeds: int | None = None,
        first_seed: int = 0, sweeps: int | None = None, out: str | None = None,
        **overrides) -> Report:
    """Run experiment ``name`` (one of :data:`EXPERIMENTS`) and return its report.

    Args:
        name: ``xor``, ``symmetry``, ``encoder`` or ``family``.
        tiny: a seconds-long setting (few seeds and sweeps), for smoke tests.
        seeds: how many seeds (consecutive from ``first_seed``); default: the setting's.
        first_seed: the first seed.
        sweeps: the sweep budget; default: the setting's.
        out: a folder for files (the family-tree encodings plot); none written if None.
        **overrides: other keyword arguments of the experiment's function (``lr``,
            ``momentum``, ``init_range``, ``decay``); None values are ignored.

    >>> print(run("xor", seeds=1, sweeps=2000).lines[2])
    solved: 1/1 seeds; sweeps to solve: median 326, mean 326, min 326, max 326 sweeps
    """
    if name not in _SETTINGS:
        raise ValueError(f"paper1986: unknown experiment {name!r}; choose from "
                         f"{', '.join(EXPERIMENTS)}")
    fn, full, small = _SETTINGS[name]
    kw = dict(small if tiny else full)
    if seeds is not None:
        kw["seeds"] = seeds
    if isinstance(kw["seeds"], int):
        kw["seeds"] = list(range(first_seed, first_seed + kw["seeds"]))
    if sweeps is not None:
        kw["sweeps"] = sweeps
    kw.update({k: v for k, v in overrides.items() if v is not None})
    if name == "family" and out is not None:
        os.makedirs(out, exist_ok=True)
        kw["plot"] = os.path.join(out, "family_person_encodings.png")
    return fn(**kw)
