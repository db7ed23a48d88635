"""Mirror symmetry with a 6-2-1 network: sweeps over 20 seeds and the learned weights.

From Rumelhart, Hinton & Williams (1986); the experiment itself lives in
``chainrule.paper1986``, and this script is ``chainrule paper1986 symmetry``. Run it::

    python examples/rumelhart1986/symmetry.py           # the full run recorded in RESULTS.md
    python examples/rumelhart1986/symmetry.py --tiny    # a seconds-long smoke run
    python examples/rumelhart1986/symmetry.py --help    # seeds, sweeps, eps, initial weights
"""

from __future__ import annotations

import sys

from chainrule.cli import main as chainrule_main


def main(argv: list[str] | None = None) -> int:
    """Run the experiment with the command-line options ``argv``; returns the exit status."""
    return chainrule_main(["paper1986", "symmetry", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
