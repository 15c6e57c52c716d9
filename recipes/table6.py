"""Table 6: network-wide against block-wide feedback, ResNet50, ui = 2, VOC 2012 val.

The row "ResNet50-RIGNet routing similar to [22]" (65.0) is not reproduced: the paper does not
describe [22]'s routing well enough to build it, and the model has no such mode.

    python recipes/table6.py --variant network_gated --data-dir DIR
"""

import sys

from rignet_cli.tensorflow_logs import quiet_tensorflow

quiet_tensorflow()  # this command's choice: TensorFlow's C++ log lines off

from rignet_keras.config import paper_experiment  # noqa: E402
from rignet_keras.training.recipe_command import recipe_main  # noqa: E402

EXPERIMENTS = {
    "fcn": paper_experiment("t6_r50_fcn", blocks=None, paper={"mIoU": 59.4}),
    "network_recurrent": paper_experiment(
        "t6_r50_network_recurrent", mode="network_recurrent", ui=2, paper={"mIoU": 59.6}
    ),
    "network_gated": paper_experiment(
        "t6_r50_network_gated", mode="network_gated", ui=2, paper={"mIoU": 59.9}
    ),
    "pu_64": paper_experiment("t6_r50_pu_64", blocks=(4, 6), ui=2, paper={"mIoU": 65.2}),
    "pf_61": paper_experiment(
        "t6_r50_pf_61", mode="multi_range", blocks=(1, 6), ui=2, paper={"mIoU": 67.2}
    ),
}

TABLE = {
    "name": "table6",
    "title": "Table 6: network-wide vs block-wide recurrence, ResNet50, VOC 2012 val, mIoU",
    "kind": "list",
    "rows": [
        ("ResNet50-FCN (feed-forward)", "fcn"),
        ("RCNN network-wide, similar to [31]", "network_recurrent"),
        ("RCNN network-wide gated feedback", "network_gated"),
        ("ResNet50-RIGNet Pu<6..4>, ui = 2", "pu_64"),
        ("ResNet50-RIGNet Pf_u<6..1>, ui = 2", "pf_61"),
    ],
    "scores": ["mIoU"],
    "notes": "Not run: 'ResNet50-RIGNet routing similar to [22]' (paper: 65.0).",
}

if __name__ == "__main__":
    sys.exit(
        recipe_main(EXPERIMENTS, default="network_gated", description=__doc__, recipe=__file__)
    )
