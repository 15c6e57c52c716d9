"""Table 7: baselines and RIGNets on PASCAL VOC 2012 val (ResNet50/101 at OS32, ResNet101 at
OS8, DeepLabV2).

    python recipes/table7.py --variant deeplabv2_pu64_ui2 --data-dir DIR
"""

import sys

from rignet_cli.tensorflow_logs import quiet_tensorflow

quiet_tensorflow()  # this command's choice: TensorFlow's C++ log lines off

from rignet_keras.config import paper_experiment  # noqa: E402
from rignet_keras.training.recipe_command import recipe_main  # noqa: E402

EXPERIMENTS = {
    "r50_fcn": paper_experiment("t7_r50_fcn", preset="resnet50_fcn", paper={"mIoU": 59.4}),
    "r50_pu64_ui6": paper_experiment(
        "t7_r50_pu64_ui6", preset="resnet50_rignet", paper={"mIoU": 68.9}
    ),
    "r101_fcn": paper_experiment("t7_r101_fcn", preset="resnet101_fcn", paper={"mIoU": 65.3}),
    "r101_su64_ui6": paper_experiment(
        "t7_r101_su64_ui6", backbone="resnet101", mode="sequential", ui=6, paper={"mIoU": 71.2}
    ),
    "r101_pu64_ui6": paper_experiment(
        "t7_r101_pu64_ui6", backbone="resnet101", ui=6, paper={"mIoU": 71.4}
    ),
    "r101_pf61_ui6": paper_experiment(
        "t7_r101_pf61_ui6", preset="resnet101_rignet", paper={"mIoU": 71.6}
    ),
    "r101os8_fcn": paper_experiment(
        "t7_r101os8_fcn", preset="resnet101_os8_fcn", paper={"mIoU": 71.3}
    ),
    "r101os8_pu64_ui4": paper_experiment(
        "t7_r101os8_pu64_ui4", preset="resnet101_os8_rignet", paper={"mIoU": 74.9}
    ),
    "deeplabv2": paper_experiment("t7_deeplabv2", preset="deeplabv2", paper={"mIoU": 74.9}),
    "deeplabv2_pu64_ui2": paper_experiment(
        "t7_deeplabv2_pu64_ui2", preset="deeplabv2_rignet", paper={"mIoU": 75.9}
    ),
}

TABLE = {
    "name": "table7",
    "title": "Table 7: PASCAL VOC 2012 val, mIoU",
    "kind": "list",
    "rows": [(EXPERIMENTS[k].label(), k) for k in EXPERIMENTS],
    "scores": ["mIoU"],
}

if __name__ == "__main__":
    sys.exit(recipe_main(EXPERIMENTS, default="r50_pu64_ui6", description=__doc__, recipe=__file__))
