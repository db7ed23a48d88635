"""The family trees: train on 100 of the 104 facts, test on 4, plot the person encodings.

From Rumelhart, Hinton & Williams (1986); the experiment itself lives in
``chainrule.paper1986``, and this script is ``chainrule paper1986 family``. Run it::

    python examples/rumelhart1986/family.py           # the full run recorded in RESULTS.md
    python examples/rumelhart1986/family.py --tiny    # a seconds-long smoke run
    python examples/rumelhart1986/family.py --out runs/family   # also writes the plot
    python examples/rumelhart1986/family.py --help    # seeds, sweeps, eps, initial weights
"""

from __future__ import annotations

import sys

from chainrule.cli import main as chainrule_main


def main(argv: list[str] | None = None) -> int:
    """Run the experiment with the command-line options ``argv``; returns the exit status."""
    return chainrule_main(["paper1986", "family", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
