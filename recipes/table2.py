"""Table 2: ResNet50-RIGNet with feedback on blocks <6> ... <6..1>, for the sequential (Su),
parallel (Pu) and multi-range (Pf_u) unrolls, ui = 2, on PASCAL VOC 2012 val.

    python recipes/table2.py --variant pf_61 --data-dir DIR
    python recipes/run_table.py --table 2 --data-dir DIR
"""

import sys

from rignet_cli.tensorflow_logs import quiet_tensorflow

quiet_tensorflow()  # this command's choice: TensorFlow's C++ log lines off

from rignet_keras.config import paper_experiment  # noqa: E402
from rignet_keras.training.recipe_command import recipe_main  # noqa: E402

MODES = {"su": ("Su", "sequential"), "pu": ("Pu", "parallel"), "pf": ("Pf_u", "multi_range")}
FIRST_BLOCKS = (6, 5, 4, 3, 2, 1)
PAPER = {
    "su": (61.6, 65.1, 65.4, 65.2, 65.3, 65.3),
    "pu": (62.3, 64.8, 65.2, 64.9, 64.8, 65.1),
    "pf": (61.6, 66.3, 66.7, 66.8, 67.1, 67.2),
}


def blocks_label(first):
    return "<6>" if first == 6 else f"<6..{first}>"


EXPERIMENTS = {
    f"{key}_6{first}": paper_experiment(
        f"t2_r50_{key}_6{first}",
        backbone="resnet50",
        mode=mode,
        blocks=(first, 6),
        ui=2,
        paper={"mIoU": PAPER[key][i]},
    )
    for key, (_, mode) in MODES.items()
    for i, first in enumerate(FIRST_BLOCKS)
}

TABLE = {
    "name": "table2",
    "title": "Table 2: ResNet50-RIGNet variants, feedback blocks, ui = 2, VOC 2012 val, mIoU",
    "kind": "grid",
    "row_header": "Methods",
    "rows": [label for label, _ in MODES.values()],
    "columns": [blocks_label(f) for f in FIRST_BLOCKS],
    "cells": {
        (label, blocks_label(f)): f"{key}_6{f}"
        for key, (label, _) in MODES.items()
        for f in FIRST_BLOCKS
    },
    "score": "mIoU",
}

if __name__ == "__main__":
    sys.exit(recipe_main(EXPERIMENTS, default="pu_64", description=__doc__, recipe=__file__))
