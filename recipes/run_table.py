"""Trains and evaluates the variants of one of the paper's tables, then writes the table in the
paper's layout as Markdown (each cell: ours (paper)).

    python recipes/run_table.py --table 2 --data-dir DIR [--variants pu_64,pf_61] [--steps N]
    python recipes/run_table.py --table 7 --markdown-only     # the table from finished runs

Variants already finished (their summary.json exists) are read, not rerun (`--rerun` to redo).
"""

import os
import sys

from rignet_keras.cli import load_recipe
from rignet_keras.training.experiment import run_table

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--table" not in argv:
        print("usage: run_table.py --table N [flags]; N in 1..8", file=sys.stderr)
        return 2
    i = argv.index("--table")
    number = argv[i + 1]
    del argv[i : i + 2]
    module = load_recipe(os.path.join(HERE, f"table{number}.py"))
    return run_table(module.EXPERIMENTS, module.TABLE, argv)


if __name__ == "__main__":
    sys.exit(main())
