"""Table 8: COCO-Stuff 10k (train 9,000 / test 1,000; the 171-class convention), pAcc, mAcc and
mIoU for ResNet50/101 FCN and RIGNet, and DeepLabV2.

    python recipes/table8.py --variant r50_pu64_ui6 --data-dir DIR
"""

import sys

from rignet_cli.tensorflow_logs import quiet_tensorflow

quiet_tensorflow()  # this command's choice: TensorFlow's C++ log lines off

from rignet_keras.config import paper_experiment  # noqa: E402
from rignet_keras.training.recipe_command import recipe_main  # noqa: E402


def coco(name, paper, **kwargs):
    p = dict(zip(("pAcc", "mAcc", "mIoU"), paper, strict=True))
    return paper_experiment(f"t8_{name}", dataset="cocostuff", paper=p, **kwargs)


EXPERIMENTS = {
    "r50_fcn": coco("r50_fcn", (57.2, 35.2, 24.3), blocks=None),
    "r50_pu64_ui2": coco("r50_pu64_ui2", (59.8, 38.2, 26.6), ui=2),
    "r50_pu64_ui6": coco("r50_pu64_ui6", (61.4, 40.0, 28.8), ui=6),
    "r101_fcn": coco("r101_fcn", (58.7, 38.2, 26.4), backbone="resnet101", blocks=None),
    "r101_pu64_ui2": coco("r101_pu64_ui2", (60.8, 39.4, 28.0), backbone="resnet101", ui=2),
    "r101_pu64_ui6": coco("r101_pu64_ui6", (62.6, 41.1, 29.5), backbone="resnet101", ui=6),
    "r101_pf61_ui6": coco(
        "r101_pf61_ui6",
        (62.3, 41.6, 29.9),
        backbone="resnet101",
        mode="multi_range",
        blocks=(1, 6),
        ui=6,
    ),
    "deeplabv2": coco("deeplabv2", (65.4, 44.6, 34.1), backbone="deeplabv2", blocks=None),
    "deeplabv2_pu61_ui2": coco(
        "deeplabv2_pu61_ui2", (66.1, 46.6, 35.0), backbone="deeplabv2", blocks=(1, 6), ui=2
    ),
}

TABLE = {
    "name": "table8",
    "title": "Table 8: COCO-Stuff 10k test",
    "kind": "list",
    "rows": [(EXPERIMENTS[k].label(), k) for k in EXPERIMENTS],
    "scores": ["pAcc", "mAcc", "mIoU"],
}

if __name__ == "__main__":
    sys.exit(recipe_main(EXPERIMENTS, default="r50_pu64_ui6", description=__doc__, recipe=__file__))
