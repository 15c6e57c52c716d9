"""Trains and evaluates the variants of one or more of the paper's tables, then writes each table
in the paper's layout as Markdown (each cell: ours (paper)).

    python recipes/run_table.py --table 2 --data-dir DIR [--variants pu_64,pf_61] [--steps N]
    python recipes/run_table.py --table 2,4,5,6 --data-dir DIR   # shared variants train once
    python recipes/run_table.py --table 7 --markdown-only        # the table from finished runs

Runs live in `<output-dir>/<model>-<fingerprint>/` (default `runs/tables/`): a variant that
several tables share has one configuration, so one folder, trained once. Finished runs (their
summary.json exists) are read, not rerun (`--rerun` to redo). Every other flag is a recipe's
(`--set section.key=value` and its aliases).
"""

import os
import sys

from rignet_cli.tensorflow_logs import quiet_tensorflow

quiet_tensorflow()  # this command's choice: TensorFlow's C++ log lines off

from rignet_keras.config import load_recipe  # noqa: E402
from rignet_keras.training.tables import run_tables  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--table" not in argv or argv.index("--table") + 1 >= len(argv):
        print("error: run_table.py needs --table N[,M...]; N in 1..8", file=sys.stderr)
        return 2
    i = argv.index("--table")
    numbers = argv[i + 1].split(",")
    del argv[i : i + 2]
    paths = [os.path.join(HERE, f"table{n}.py") for n in numbers]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        print(f"error: --table: no recipe {missing[0]}; N in 1..8", file=sys.stderr)
        return 2
    modules = [load_recipe(p) for p in paths]
    recipe = paths[0] if len(paths) == 1 else None
    return run_tables([(m.EXPERIMENTS, m.TABLE) for m in modules], argv, recipe=recipe)


if __name__ == "__main__":
    sys.exit(main())
