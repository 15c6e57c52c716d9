"""Table 4: the gate's interaction (add + ReLU, mul + sigmoid, mul + tanh), Pu<6..4>, ui = 2,
ResNet50 and ResNet101 RIGNet, VOC 2012 val.

    python recipes/table4.py --variant r101_mul_tanh --data-dir DIR
"""

import sys

from rignet_cli.tensorflow_logs import quiet_tensorflow

quiet_tensorflow()  # this command's choice: TensorFlow's C++ log lines off

from rignet_keras.config import paper_experiment  # noqa: E402
from rignet_keras.training.recipe_command import recipe_main  # noqa: E402

COMBINES = {"add_relu": "Add + ReLU", "mul_sigmoid": "Mul + Sigmoid", "mul_tanh": "Mul + Tanh"}
PAPER = {
    "r50": {"add_relu": 64.2, "mul_sigmoid": 65.2, "mul_tanh": 65.2},
    "r101": {"add_relu": 67.0, "mul_sigmoid": 68.9, "mul_tanh": 68.0},
}
BACKBONES = {"r50": ("resnet50", "ResNet50-RIGNet"), "r101": ("resnet101", "ResNet101-RIGNet")}

EXPERIMENTS = {
    f"{b}_{c}": paper_experiment(
        f"t4_{b}_{c}",
        backbone=BACKBONES[b][0],
        mode="parallel",
        blocks=(4, 6),
        ui=2,
        gate_combine=c,
        paper={"mIoU": PAPER[b][c]},
    )
    for b in BACKBONES
    for c in COMBINES
}

TABLE = {
    "name": "table4",
    "title": "Table 4: gate activation, Pu<6..4>, ui = 2, VOC 2012 val, mIoU",
    "kind": "grid",
    "row_header": "Methods",
    "rows": [label for _, label in BACKBONES.values()],
    "columns": list(COMBINES.values()),
    "cells": {(BACKBONES[b][1], COMBINES[c]): f"{b}_{c}" for b in BACKBONES for c in COMBINES},
    "score": "mIoU",
}

if __name__ == "__main__":
    sys.exit(
        recipe_main(EXPERIMENTS, default="r50_mul_sigmoid", description=__doc__, recipe=__file__)
    )
