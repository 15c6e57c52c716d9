"""ResNet50-RIGNet Pu<6..4>, ui = 6, trained on PASCAL VOC 2012 + SBD (10,582 images) and
evaluated on VOC val (paper Table 7: 68.9 mIoU; its FCN baseline 59.4).

    python recipes/voc_r50.py --data-dir ~/.rignet/data
    python recipes/voc_r50.py --resume                      # continue after a stop
    python recipes/voc_r50.py --backbone resnet18 --steps 10 --batch-size 2   # smoke test

Recipe (the paper gives none; the field's): SGD momentum 0.9, lr 0.01 for gates and head and
0.001 for the ImageNet backbone, poly 0.9 after 500 warm-up steps, weight decay 1e-4, batch 16,
321x321 crops with random scale 0.5-2 and flips, 30,000 steps. Evaluated for every ui 1..6.

`--steps` shorter than the warm-up also shortens the warm-up (a note says so), so a short run
does not follow this schedule; to try the real one for a few steps, keep the steps, stop the run
after a checkpoint, and continue it later with `--resume`. `python -m bench.voc_dry_run` runs this
recipe at full scale on a VOC + SBD layout of images it writes itself (no download) and measures
its memory, step time, schedule, evaluation and export.
"""

import sys

from rignet_cli.tensorflow_logs import quiet_tensorflow

quiet_tensorflow()  # this command's choice: TensorFlow's C++ log lines off

from rignet_keras.config import paper_experiment  # noqa: E402
from rignet_keras.training.recipe_command import recipe_main  # noqa: E402

# The VOC base (rignet_keras.config.bases) with the paper's named models (rignet_keras.presets).
EXPERIMENTS = {
    "pu64_ui6": paper_experiment(
        "voc_r50_pu64_ui6", preset="resnet50_rignet", paper={"mIoU": 68.9}
    ),
    "fcn": paper_experiment("voc_r50_fcn", preset="resnet50_fcn", paper={"mIoU": 59.4}),
}

if __name__ == "__main__":
    sys.exit(recipe_main(EXPERIMENTS, default="pu64_ui6", description=__doc__, recipe=__file__))
