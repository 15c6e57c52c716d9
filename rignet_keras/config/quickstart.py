"""The quickstart's configuration: the sizes of its two runs (`QuickstartConfig`) and the two
`RunConfig`s they make (`quickstart_runs`), which `rignet quickstart` runs and the benchmarks
and tests reuse."""

import dataclasses
import os

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


def quickstart_runs(cfg, output_dir):
    """The quickstart's two runs as `RunConfig`s: {"fcn": ..., "rignet": ...}, the same data and
    training, the RIGNet also exported to one float32 TFLite file holding every ui (checked
    against the Keras model, with a manifest beside it, in `<output_dir>/export`)."""
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
        tflite_layouts=("multi",),
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
