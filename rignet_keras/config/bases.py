"""The bases that recipes are written over: the project's training recipe for each of the paper's
datasets, as a `RunConfig`, and `paper_experiment`, a recipe's row as a base plus overrides.

A recipe file is a few lines per row of a paper's table::

    EXPERIMENTS = {
        "pu64_ui6": paper_experiment("voc_r50_pu64_ui6", preset="resnet50_rignet"),
        "fcn": paper_experiment("voc_r50_fcn", preset="resnet50_fcn"),
    }

Where each value lives, once:

- a model's architecture: `RIGNet.__init__`'s defaults, and the paper's named models in
  `rignet_keras.presets.PRESETS` (ResNet-50 Pu<6..4> ui=6 is `PRESETS["resnet50_rignet"]`);
- how to train: `TrainConfig`'s defaults, and here what the paper's datasets change in them
  (`DATASET_BASES`: the steps, the warm-up, the backbone's tenth of the rate; DeepLabV2's rate
  and weight decay in `DEEPLAB_TRAIN`);
- the data: `DataConfig`'s defaults, and here each dataset's sources and splits.
"""

from rignet_keras.config.errors import ConfigError
from rignet_keras.config.model import is_baseline
from rignet_keras.config.run import RunConfig
from rignet_keras.config.sections import DataConfig
from rignet_keras.presets import preset_kwargs

# What training on the paper's datasets changes in `TrainConfig`'s defaults (the paper gives no
# hyper-parameters; these are the field's: SGD, momentum 0.9, poly 0.9, crop 321, batch 16, the
# ImageNet backbone at a tenth of the rate of gates and head, 500 warm-up steps).
_PAPER_TRAIN = {"warmup_steps": 500, "backbone_lr_multiplier": 0.1}
DATASET_BASES = {
    "voc": {
        "data": {"source": "voc_aug", "eval_source": "voc", "eval_split": "val"},
        "train": {**_PAPER_TRAIN, "steps": 30000},
    },
    "cocostuff": {
        "data": {"source": "cocostuff10k", "eval_split": "test", "label_convention": "171"},
        "train": {**_PAPER_TRAIN, "steps": 20000},
    },
}
# DeepLabV2's own rate and weight decay (its published recipe).
DEEPLAB_TRAIN = {"learning_rate": 0.0025, "weight_decay": 5e-4}
# The model section every paper base starts from: an ImageNet-initialised backbone.
_PAPER_MODEL = {"backbone_weights": "imagenet"}
# `paper_experiment`'s shorthand names of RIGNet arguments.
_SHORTHAND = {"mode": "unroll_mode", "blocks": "feedback_blocks", "ui": "num_iterations"}


def dataset_base(dataset, name="run"):
    """The `RunConfig` base of a paper dataset ("voc" or "cocostuff"): RIGNet's default model
    with an ImageNet backbone, the dataset's data section and its training changes."""
    if dataset not in DATASET_BASES:
        raise ConfigError(f"dataset must be one of {tuple(DATASET_BASES)}; received {dataset!r}")
    base = DATASET_BASES[dataset]
    config = RunConfig(name=name, model=dict(_PAPER_MODEL))
    return config.replace(data=base["data"], train=base["train"])


def default_run(name="run"):
    """The base of `rignet train` without a recipe: `RIGNet`'s defaults on the default data
    section (VOC-aug) with an ImageNet backbone at a tenth of the rate."""
    config = RunConfig(name=name, model=dict(_PAPER_MODEL), data=DataConfig())
    return config.replace(train={"backbone_lr_multiplier": 0.1})


def paper_experiment(name, *, dataset="voc", preset=None, paper=None, description="", **model):
    """One row of a paper table: the dataset's base (`dataset_base`), the model `preset` (a
    `PRESETS` name) if given, then `model`'s overrides.

    Args:
        name: the run's name (its folder's default name).
        dataset: "voc" (train on VOC-aug, evaluate on VOC val) or "cocostuff" (10k: train/test).
        preset: a `rignet_keras.presets.PRESETS` name, the model section's start.
        paper: the paper's numbers for the row, e.g. {"mIoU": 68.9}.
        **model: `RIGNet` arguments; `mode`, `blocks` and `ui` are short for `unroll_mode`,
            `feedback_blocks` and `num_iterations`. A block-wise model without feedback
            (`blocks=None`) is the FCN baseline, at ui 1. What is not given is the preset's, or
            RIGNet's default.

    Returns:
        a `RunConfig`.
    """
    model = {_SHORTHAND.get(k, k): v for k, v in model.items()}
    if preset is not None:
        try:
            model = preset_kwargs(preset, **model)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    config = dataset_base(dataset, name)
    if model.get("backbone") == "deeplabv2":
        config = config.replace(train=DEEPLAB_TRAIN)
    if "feedback_blocks" in model and is_baseline(model):
        model["num_iterations"] = 1  # the FCN baseline: one pass whatever the ui
    config = config.replace(model=model, paper=paper)
    return config.replace(description=description or config.label())
