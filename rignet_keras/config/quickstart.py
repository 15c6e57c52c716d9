"""The quickstart's configuration: the sizes of its two runs (`QuickstartConfig`, the tree's
`quickstart` section, set with `--set quickstart.<field>=VALUE` or the named flags, its aliases)
and the two `RunConfig`s they make (`quickstart_runs`), which `rignet quickstart` runs and the
benchmarks and tests reuse."""

import dataclasses
import os

from rignet_keras.config.errors import ConfigError
from rignet_keras.config.fields import _field_type, _from_json, _type_name, _type_ok
from rignet_keras.config.run import RunConfig
from rignet_keras.config.sections import DataConfig, EvalConfig, ExportConfig
from rignet_keras.config.train import TrainConfig


@dataclasses.dataclass
class QuickstartConfig:
    """Sizes of the quickstart run (the defaults take a few minutes on 2 CPU cores)."""

    backbone: str = "resnet18"
    num_iterations: int = 3
    feedback_blocks: tuple = (4, 6)
    image_size: int = 96
    num_classes: int = 3
    mark_size: int = 10
    num_train: int = 400
    num_val: int = 64
    steps: int = 60
    batch_size: int = 8
    learning_rate: float = 0.05
    num_visualize: int = 4
    seed: int = 0

    @classmethod
    def fast(cls):
        """A seconds-long smoke test (for CI)."""
        return cls(
            image_size=64,
            mark_size=6,
            num_train=16,
            num_val=8,
            steps=3,
            batch_size=4,
            num_iterations=2,
            num_visualize=2,
        )


# The quickstart's named flags, each an alias of `--set quickstart.<field>=VALUE`:
# (flag, QuickstartConfig field, argparse type, smallest value or None, help).
QUICKSTART_FLAGS = (
    ("--steps", "steps", int, 1, "training steps of each run"),
    ("--batch-size", "batch_size", int, 1, "training batch"),
    ("--image-size", "image_size", int, 32, "side of the synthetic images"),
    ("--iterations", "num_iterations", int, 1, "ui of the RIGNet"),
    ("--backbone", "backbone", str, None, "e.g. resnet18 (default), resnet34, mobilenetv2"),
    ("--num-train", "num_train", int, 1, "synthetic training images"),
)

QUICKSTART_SECTION = "quickstart"


def override_quickstart(cfg, pairs, named=None):
    """`cfg` with the `quickstart.<field>` overrides of `pairs` applied and checked; returns
    `(cfg, the other pairs)`.

    Args:
        cfg: a `QuickstartConfig`.
        pairs: `(key, value)` overrides, in order (`parse_assignment`'s).
        named: {key: the flag it came from}, so that an error names the flag the user typed.
    """
    named = named or {}
    lows = {field: low for _, field, _, low, _ in QUICKSTART_FLAGS}
    names = {f.name for f in dataclasses.fields(QuickstartConfig)}
    changes, rest = {}, []
    for key, value in pairs:
        section, _, field = key.partition(".")
        if section != QUICKSTART_SECTION:
            rest.append((key, value))
            continue
        shown = named.get(key, key)
        if field not in names:
            raise ConfigError(
                f"{key} is not a QuickstartConfig field; choose from {', '.join(sorted(names))}"
            )
        value = _from_json(QuickstartConfig, field, value)
        annotation = _field_type(QuickstartConfig, field)
        if not _type_ok(annotation, value):
            raise ConfigError(
                f"{shown}={value!r}: expected {_type_name(annotation)}, received "
                f"{type(value).__name__}"
            )
        low = lows.get(field)
        if low is not None and value < low:
            raise ConfigError(f"{shown} must be at least {low}; received {value}")
        changes[field] = value
    return dataclasses.replace(cfg, **changes), rest


def quickstart_runs(cfg, output_dir):
    """The quickstart's two runs as `RunConfig`s: {"fcn": ..., "rignet": ...}, the same data and
    training, the RIGNet also exported to one float32 TFLite file holding every ui and one
    MediaPipe-ready file per ui (single signature, class names in its metadata), all checked
    against the Keras model, with a manifest beside them, in `<output_dir>/export`."""
    data = DataConfig(
        source="synthetic",
        train_split="train",
        eval_split="val",
        crop_size=None,
        eval_batch_size=cfg.batch_size,
        num_train_samples=cfg.num_train,
        num_eval_samples=cfg.num_val,
        synthetic=dict(
            image_size=(cfg.image_size, cfg.image_size),
            num_classes=cfg.num_classes,
            mark_size=cfg.mark_size,
            object_size=(0.4, 0.6),
            objects_per_image=(1, 2),
        ),
    )
    train = TrainConfig(
        steps=cfg.steps,
        steps_per_epoch=cfg.steps,
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        weight_decay=1e-4,
        warmup_steps=min(10, cfg.steps // 5),
        seed=cfg.seed,
        monitor="val_mIoU",
    )
    evaluation = EvalConfig(num_visualize=0)
    export = ExportConfig(
        formats=("tflite",),
        precisions=("float32",),
        tflite_layouts=("multi", "mediapipe"),
        input_size=cfg.image_size,
        output_dir=os.path.join(os.path.abspath(output_dir), "export"),
        quality_images=cfg.num_val,
    )
    fcn = dict(backbone=cfg.backbone, feedback_blocks=None, num_iterations=1)
    rignet = dict(
        backbone=cfg.backbone,
        feedback_blocks=tuple(cfg.feedback_blocks),
        num_iterations=cfg.num_iterations,
    )
    return {
        "fcn": RunConfig(name="fcn", model=fcn, data=data, train=train, eval=evaluation),
        "rignet": RunConfig(
            name="rignet", model=rignet, data=data, train=train, eval=evaluation, export=export
        ),
    }
