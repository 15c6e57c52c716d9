"""`RIGNetImageSegmenter`: the task, as keras-hub's `ImageSegmenter` is one.

`from_preset`, `compile()` with the recipes' defaults, `fit`, `predict`, `save_to_preset` and
`export` on one object. It is a `TrainingModel` (rignet_keras/training/task.py): its train and
test steps are the Trainer's, random-ui training and deep supervision included, run on the
preprocessor's output. It lives in the task layer, above training and export, because its
defaults (the poly SGD, the loss, the mIoU) and its `export` (rignet_keras.export) live there.
"""

import keras
from keras import ops

from rignet_keras.config.train import TrainConfig
from rignet_keras.export.files import atomic_directory
from rignet_keras.models.preprocessor import RIGNetImageSegmenterPreprocessor, refuse_pixels
from rignet_keras.models.preset_files import (
    PREPROCESSOR_CONFIG_FILE,
    TASK_CONFIG_FILE,
    check_new_folder,
    is_preset_folder,
    read_json,
    serialized,
    write_backbone,
)
from rignet_keras.tasks.backbone import RIGNetBackbone
from rignet_keras.tasks.formats import export_in_format
from rignet_keras.training.optimizer import poly_sgd
from rignet_keras.training.task import TrainingModel
from rignet_runtime.atomic import write_json

# The recipes' training defaults that `compile()` and the constructor take.
RECIPE = TrainConfig()


def segmentation_masks(scores):
    """Per-pixel class scores (B, H, W, C) (what `predict` returns) -> int32 masks (B, H, W)."""
    return ops.cast(ops.argmax(scores, axis=-1), "int32")


@keras.saving.register_keras_serializable(package="rignet_keras")
class RIGNetImageSegmenter(TrainingModel):
    """RIGNet semantic segmentation: a backbone, a preprocessor, and the training step.

    Args:
        backbone: a `RIGNetBackbone` (or a `RIGNet`); its B6 head gives the class scores.
        num_classes: None, or the backbone's `num_classes` (checked: the head feeds the gates, so
            it cannot be replaced here).
        preprocessor: a `RIGNetImageSegmenterPreprocessor` (its `preprocessing` must be the
            backbone's), or None: images must then be normalised floats, and integer images are
            refused in one line.
        weight_decay: as `TrainingModel`; default the recipes' 1e-4.
        per_ui_metrics: as `TrainingModel`; default True: `evaluate` reports "mIoU_ui<k>" for
            every ui beside "loss" and "mIoU" (at `eval_iterations`).
        **kwargs: the other arguments of `TrainingModel` (train_iterations for random-ui
            training, iteration_loss_weights for deep supervision, eval_iterations, ...).

    Call: `segmenter(images)` -> float32 class scores (logits) (B, H, W, num_classes) at the
    preprocessed size; `segmentation_masks(scores)` turns them into masks.
    """

    def __init__(
        self,
        backbone,
        num_classes=None,
        preprocessor=None,
        weight_decay=RECIPE.weight_decay,
        per_ui_metrics=True,
        **kwargs,
    ):
        if num_classes is not None and num_classes != backbone.num_classes:
            raise ValueError(
                f"num_classes={num_classes} differs from the backbone's {backbone.num_classes}; "
                "build the backbone with that many classes (from_preset(..., num_classes=...))"
            )
        if preprocessor is not None and preprocessor.preprocessing != backbone.preprocessing:
            raise ValueError(
                f"the preprocessor normalises for {preprocessor.preprocessing!r} but the "
                f"backbone's weights expect {backbone.preprocessing!r}"
            )
        super().__init__(
            backbone, weight_decay=weight_decay, per_ui_metrics=per_ui_metrics, **kwargs
        )
        if preprocessor is not None and preprocessor.ignore_label != self.ignore_label:
            raise ValueError(
                f"the preprocessor's ignore_label={preprocessor.ignore_label} differs from the "
                f"loss's {self.ignore_label}; build them with the same void label"
            )
        self.preprocessor = preprocessor

    @property
    def backbone(self):
        return self.network

    # ------------------------------------------------------------------------------------
    # The preprocessor runs first in every step; the steps are TrainingModel's.

    def preprocess(self, images, masks=None):
        """`(images, masks)` as the backbone takes them (masks None: the images alone)."""
        if self.preprocessor is None:
            refuse_pixels(images, "RIGNetImageSegmenter without a preprocessor")
            return images if masks is None else (images, masks)
        return self.preprocessor(images, masks)

    def __call__(self, images, *args, **kwargs):
        # Checked before Keras' `__call__`, so that the refusal stays one line.
        if self.preprocessor is None and hasattr(images, "dtype"):
            refuse_pixels(images, "RIGNetImageSegmenter without a preprocessor")
        return super().__call__(images, *args, **kwargs)

    def call(self, images, training=None, num_iterations=None):
        return self.network(
            self.preprocess(images), training=training, num_iterations=num_iterations
        )

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return super().train_step(self.preprocess(x, y))

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return super().test_step(self.preprocess(x, y))

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self(x, training=False)

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """keras-hub's `compile`: "auto" gives the recipes' defaults.

        optimizer "auto": SGD, momentum 0.9, poly decay from 0.01 over 30000 steps
        (`rignet_keras.config.train.TrainConfig`'s defaults). The loss is the train step's
        (cross-entropy over valid pixels, the void label 255 left out) and the metrics its
        mIoU at every ui (`per_ui_metrics`): both fixed, so `loss` and `metrics` take "auto"
        (or None) only.
        """
        for name, value in (("loss", loss), ("metrics", metrics)):
            if value not in ("auto", None):
                raise ValueError(
                    f"RIGNetImageSegmenter.compile({name}=...) takes 'auto' only: the loss "
                    "(void label ignored) and the mIoU are the train step's own"
                )
        if optimizer == "auto":
            optimizer = poly_sgd(RECIPE)
        super().compile(optimizer=optimizer, **kwargs)

    # ------------------------------------------------------------------------------------
    # Presets and export.

    @classmethod
    def from_preset(cls, preset, num_classes=None, **overrides):
        """A built-in architecture by name (`rignet_keras.presets.PRESETS`; `num_classes`
        required; `overrides` update the backbone's arguments) with a uint8 preprocessor, or a
        preset folder written by `save_to_preset` (backbone, weights, task and preprocessor)."""
        backbone = RIGNetBackbone.from_preset(preset, num_classes, **overrides)
        if not is_preset_folder(preset):
            pre = RIGNetImageSegmenterPreprocessor(preprocessing=backbone.preprocessing)
            return cls(backbone, preprocessor=pre)
        config = dict(read_json(preset, TASK_CONFIG_FILE)["config"])
        pre = None
        if config.pop("has_preprocessor", False):
            pre = keras.saving.deserialize_keras_object(read_json(preset, PREPROCESSOR_CONFIG_FILE))
        return cls(backbone, preprocessor=pre, **config)

    def save_to_preset(self, preset_dir):
        """Writes keras-hub's preset folder (config.json, model.weights.h5, task.json,
        preprocessor.json, metadata.json) to the new folder `preset_dir`, whole or not at all."""
        task = serialized(self)
        config = task["config"]
        config.pop("backbone")
        config.pop("preprocessor")
        config["has_preprocessor"] = self.preprocessor is not None
        with atomic_directory(check_new_folder(preset_dir)) as folder:
            write_backbone(folder, self.backbone, tasks=[type(self).__name__])
            write_json(f"{folder}/{TASK_CONFIG_FILE}", task, indent=4)
            if self.preprocessor is not None:
                write_json(
                    f"{folder}/{PREPROCESSOR_CONFIG_FILE}", serialized(self.preprocessor), indent=4
                )

    def export(self, filepath, format="litert", input_size=None, **options):
        """Exports through `rignet_keras.export.export_model` (a graph per ui, step-wise graphs
        where the mode allows, parity checked, manifest.json) to the new folder `filepath`.

        Args:
            format: "litert", "onnx" or "tf_saved_model".
            input_size: (H, W) of the exported graphs; default the preprocessor's image_size.
            **options: any other `export_model` argument (uis, precisions, ...).

        Returns:
            What `export_model` returns.
        """
        if input_size is None and self.preprocessor is not None:
            input_size = self.preprocessor.image_size
        return export_in_format(self.backbone, filepath, format, input_size, **options)

    def get_config(self):
        config = super().get_config()
        config["backbone"] = config.pop("network")
        config["num_classes"] = self.num_classes
        config["preprocessor"] = (
            None
            if self.preprocessor is None
            else keras.saving.serialize_keras_object(self.preprocessor)
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        if config.get("preprocessor") is not None:
            config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        return cls(**config)
