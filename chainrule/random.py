"""Random number state: ``manual_seed``, ``Generator`` and the default generator.

One NumPy ``Generator`` (PCG64) drives every random draw in chainrule unless a
``Generator`` is passed explicitly; its state can be saved and restored as plain data.
"""

from __future__ import annotations

import numpy as np


class Generator:
    """A seedable source of random numbers (PyTorch's ``torch.Generator``).

    >>> g = Generator().manual_seed(0)
    >>> a = g.rng.random()
    >>> _ = g.manual_seed(0)
    >>> a == g.rng.random()
    True
    """

    def __init__(self, device: str = "cpu") -> None:
        self._seed = int(np.random.SeedSequence().entropy % (2**63))
        self.rng = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> Generator:
        """Reset to a fixed seed; returns self."""
        seed = int(seed)
        if seed < 0:
            raise ValueError(f"manual_seed: seed must be non-negative, got {seed}")
        self._seed = seed
        self.rng = np.random.Generator(np.random.PCG64(seed))
        return self

    def seed(self) -> int:
        """Reseed from fresh entropy; returns the new seed."""
        self.manual_seed(int(np.random.SeedSequence().entropy % (2**63)))
        return self._seed

    def initial_seed(self) -> int:
        """The seed last set."""
        return self._seed

    def get_state(self) -> dict:
        """The generator state as plain JSON-compatible data."""
        st = self.rng.bit_generator.state
        return {"bit_generator": st["bit_generator"],
                "state": {k: int(v) for k, v in st["state"].items()},
                "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"]),
                "seed": self._seed}

    def set_state(self, state: dict) -> Generator:
        """Restore a state from :meth:`get_state`."""
        if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
            raise ValueError("set_state: expected a state dict from Generator.get_state()")
        self.rng.bit_generator.state = {
            "bit_generator": "PCG64", "state": dict(state["state"]),
            "has_uint32": state["has_uint32"], "uinteger": state["uinteger"],
        }
        self._seed = int(state.get("seed", self._seed))
        return self


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (all of chainrule's random draws)."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the default generator from fresh entropy."""
    return default_generator.seed()


def initial_seed() -> int:
    """The default generator's seed."""
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    """The default generator's state (plain data, safe to save)."""
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    """Restore the default generator's state."""
    default_generator.set_state(state)


def rng(generator: Generator | None = None) -> np.random.Generator:
    """The NumPy generator to draw from."""
    return (generator or default_generator).rng
