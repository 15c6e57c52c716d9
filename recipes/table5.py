"""Table 5: the gate's pooling (none, max, average), Pu<6..4>, ui = 2, ResNet50 and ResNet101
RIGNet, VOC 2012 val.

    python recipes/table5.py --variant r50_max --data-dir DIR
"""

import sys

from rignet_cli.tensorflow_logs import quiet_tensorflow

quiet_tensorflow()  # this command's choice: TensorFlow's C++ log lines off

from rignet_keras.config import paper_experiment  # noqa: E402
from rignet_keras.training.recipe_command import recipe_main  # noqa: E402

POOLINGS = {
    "none": (None, "w/o Pooling"),
    "max": ("max", "Max Pool"),
    "avg": ("avg", "Average Pool"),
}
PAPER = {
    "r50": {"none": 65.2, "max": 65.2, "avg": 65.2},
    "r101": {"none": 68.3, "max": 68.3, "avg": 68.9},
}
BACKBONES = {"r50": ("resnet50", "ResNet50-RIGNet"), "r101": ("resnet101", "ResNet101-RIGNet")}

EXPERIMENTS = {
    f"{b}_{p}": paper_experiment(
        f"t5_{b}_pool_{p}",
        backbone=BACKBONES[b][0],
        mode="parallel",
        blocks=(4, 6),
        ui=2,
        gate_pooling=POOLINGS[p][0],
        paper={"mIoU": PAPER[b][p]},
    )
    for b in BACKBONES
    for p in POOLINGS
}

TABLE = {
    "name": "table5",
    "title": "Table 5: gate pooling, Pu<6..4>, ui = 2, VOC 2012 val, mIoU",
    "kind": "grid",
    "row_header": "Methods",
    "rows": [label for _, label in BACKBONES.values()],
    "columns": [label for _, label in POOLINGS.values()],
    "cells": {(BACKBONES[b][1], POOLINGS[p][1]): f"{b}_{p}" for b in BACKBONES for p in POOLINGS},
    "score": "mIoU",
}

if __name__ == "__main__":
    sys.exit(recipe_main(EXPERIMENTS, default="r50_avg", description=__doc__, recipe=__file__))
