"""Table 3: ResNet50-RIGNet at ui = 2, 4, 6 (Su<6..4>, Pu<6..4>, Pf_u<6..1>), VOC 2012 val.

Each trained model is also evaluated at every ui up to its own (eval/results.json).

    python recipes/table3.py --variant pu_ui4 --data-dir DIR
"""

import sys

from rignet_cli.tensorflow_logs import quiet_tensorflow

quiet_tensorflow()  # this command's choice: TensorFlow's C++ log lines off

from rignet_keras.config import paper_experiment  # noqa: E402
from rignet_keras.training.recipe_command import recipe_main  # noqa: E402

MODELS = {
    "su": ("RIGNet (Su)<6..4>", "sequential", (4, 6), {2: 65.4, 4: 68.3, 6: 68.8}),
    "pu": ("RIGNet (Pu)<6..4>", "parallel", (4, 6), {2: 65.2, 4: 68.3, 6: 68.9}),
    "pf": ("RIGNet (Pf_u)<6..1>", "multi_range", (1, 6), {2: 67.2, 4: 68.5, 6: 69.5}),
}
UIS = (2, 4, 6)

EXPERIMENTS = {
    f"{key}_ui{ui}": paper_experiment(
        f"t3_r50_{key}_ui{ui}",
        backbone="resnet50",
        mode=mode,
        blocks=blocks,
        ui=ui,
        paper={"mIoU": paper[ui]},
    )
    for key, (_, mode, blocks, paper) in MODELS.items()
    for ui in UIS
}

TABLE = {
    "name": "table3",
    "title": "Table 3: ResNet50-RIGNet against ui, VOC 2012 val, mIoU",
    "kind": "grid",
    "row_header": "Iter.",
    "rows": [str(ui) for ui in UIS],
    "columns": [label for label, *_ in MODELS.values()],
    "cells": {(str(ui), m[0]): f"{key}_ui{ui}" for key, m in MODELS.items() for ui in UIS},
    "score": "mIoU",
}

if __name__ == "__main__":
    sys.exit(recipe_main(EXPERIMENTS, default="pu_ui6", description=__doc__, recipe=__file__))
