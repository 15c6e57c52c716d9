"""Table 1: ResNet-FCN baselines (output stride 32) on PASCAL VOC 2012 val.

python recipes/table1.py --variant r101_fcn --data-dir DIR
python recipes/run_table.py --table 1 --data-dir DIR
"""

import sys

from rignet_cli.tensorflow_logs import quiet_tensorflow

quiet_tensorflow()  # this command's choice: TensorFlow's C++ log lines off

from rignet_keras.config import paper_experiment  # noqa: E402
from rignet_keras.training.recipe_command import recipe_main  # noqa: E402

EXPERIMENTS = {
    "r50_fcn": paper_experiment(
        "t1_r50_fcn", backbone="resnet50", blocks=None, paper={"mIoU": 59.4}
    ),
    "r101_fcn": paper_experiment(
        "t1_r101_fcn", backbone="resnet101", blocks=None, paper={"mIoU": 65.3}
    ),
}

TABLE = {
    "name": "table1",
    "title": "Table 1: ResNet-FCN baselines, PASCAL VOC 2012 val, mIoU",
    "kind": "list",
    "rows": [("ResNet50-FCN 32-s", "r50_fcn"), ("ResNet101-FCN 32-s", "r101_fcn")],
    "scores": ["mIoU"],
}

if __name__ == "__main__":
    sys.exit(recipe_main(EXPERIMENTS, description=__doc__, recipe=__file__))
