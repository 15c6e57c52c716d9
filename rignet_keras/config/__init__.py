"""The run configuration: one tree that recipes, `rignet train`, the quickstart and
`bench/claims.py` build, and `rignet_keras.training.experiment.run_experiment` executes.

A run is a `RunConfig`::

    RunConfig(
        name="voc_r50_pu64_ui6",        # the run folder's default name
        model={...},                    # RIGNet's constructor arguments, less num_classes
        data=DataConfig(...),           # where the data comes from and how it is fed
        train=TrainConfig(...),         # how to train
        eval=EvalConfig(...),           # which ui, flip/multi-scale testing, pictures
        export=ExportConfig(...),       # what to export after evaluation (nothing by default)
        description="...", paper={"mIoU": 68.9},
    )

Sections:

- `model` is a plain dict of `RIGNet.__init__` keyword arguments. Its keys are checked against
  that signature (`check_model_kwargs`), so a new RIGNet option is reachable from every recipe
  and command the day it exists, and an unknown key is an error naming it. `num_classes` is not
  in it: it comes from the data. `backbone` must be a registered name (a list of layers cannot
  be written to JSON). `backbone_weights="imagenet"` on a backbone without published ImageNet
  weights (ResNet-18/34) is resolved to None by the runner, which says so on the console.
- Numeric fields are checked when a section is built (a crop, batch, sample count or ui below
  1, a negative warm-up or weight decay, a rate or scale that is not positive): `ConfigError`
  naming `section.field` and the value, before any data is opened.
- `data` (`DataConfig`), `eval` (`EvalConfig`), `export` (`ExportConfig`) and `train`
  (`TrainConfig`) are plain dataclasses; the package holds no training code, so the configuration
  and the command line's `--help` need no TensorFlow.

JSON: `config.save(path)` writes the tree (`RunConfig.to_dict()`); `RunConfig.load(path)` reads
it back, refusing a section or key it does not know (naming it). The runner writes the resolved
tree as `run_config.json` in the run folder, beside `checkpoints/`; `rignet train --config
<run>/run_config.json` runs it again, and `rignet evaluate --run <run>` evaluates the run's
checkpoint on the data recorded there.

Overrides: one generic mechanism, `section.key=value` (`config.override(["train.steps=100",
"model.backbone=resnet18"])`, `--set` on the command line). A value is read as JSON, else as a
Python literal, else as a string: `train.steps=100`, `model.feedback_blocks=[4,6]`,
`model.gate_pooling=null` (or `None`), `data.eval_size=[512,512]`, `model.backbone=resnet18`.
The common flags (`--steps`, `--backbone`, `--sync-batch-norm`, ...;
`rignet_keras.config.flags.OVERRIDE_FLAGS`) are aliases of it. An override is refused, naming
it, when its section or key does not exist, when its value has the wrong type, or
(`check_recipe_overrides`) when it sets a model or data field that the recipe's variants differ
in (pick the variant instead). Shortening `train.steps` below the recipe's `steps_per_epoch` or
`warmup_steps` shortens those too, with a console line, unless they are overridden as well.

Resume: `check_resume(recorded, current)` refuses to continue a run whose model, data, seed or
batch size changed, naming the first field that differs.

The package's modules: `errors` (ConfigError), `model` (the model section and its paper label),
`train` (TrainConfig), `sections` (data, eval, export), `fields` (JSON and override types),
`overrides` (`section.key=value`), `run` (RunConfig), `resume` (check_resume), `flags` (the
command line's named flags, aliases of overrides), `bases` (the paper's dataset bases and
`paper_experiment`), `recipes` (load_recipe), `quickstart` (the quickstart's section and runs).
"""

from rignet_keras.config.bases import (
    DATASET_BASES,
    dataset_base,
    default_run,
    paper_experiment,
)
from rignet_keras.config.errors import ConfigError, check_numbers
from rignet_keras.config.model import (
    BACKBONE_LABELS,
    check_model_kwargs,
    is_baseline,
    mode_labels,
    model_label,
    model_signature,
    resolved_model_kwargs,
)
from rignet_keras.config.overrides import (
    VARIANT_SECTIONS,
    check_recipe_overrides,
    check_value,
    parse_assignment,
    parse_value,
    split_key,
    varied_fields,
)
from rignet_keras.config.recipes import load_recipe
from rignet_keras.config.resume import RESUME_TRAIN_FIELDS, check_resume
from rignet_keras.config.run import RunConfig
from rignet_keras.config.sections import (
    CONFIG_NAME,
    QUALITY_SOURCES,
    SECTION_CLASSES,
    SECTIONS,
    DataConfig,
    EvalConfig,
    ExportConfig,
    check_export_quality,
    section_class,
)
from rignet_keras.config.train import (
    LOSS_NORMALIZATIONS,
    RANDOM_UI_METHODS,
    STRATEGIES,
    TrainConfig,
    check_train_iterations,
    check_training_ui,
)

__all__ = [
    "DATASET_BASES",
    "dataset_base",
    "default_run",
    "paper_experiment",
    "BACKBONE_LABELS",
    "CONFIG_NAME",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ExportConfig",
    "LOSS_NORMALIZATIONS",
    "QUALITY_SOURCES",
    "RANDOM_UI_METHODS",
    "RESUME_TRAIN_FIELDS",
    "RunConfig",
    "SECTIONS",
    "SECTION_CLASSES",
    "STRATEGIES",
    "TrainConfig",
    "VARIANT_SECTIONS",
    "check_export_quality",
    "check_model_kwargs",
    "check_numbers",
    "check_recipe_overrides",
    "check_resume",
    "check_train_iterations",
    "check_training_ui",
    "check_value",
    "is_baseline",
    "load_recipe",
    "mode_labels",
    "model_label",
    "model_signature",
    "parse_assignment",
    "parse_value",
    "resolved_model_kwargs",
    "section_class",
    "split_key",
    "varied_fields",
]
