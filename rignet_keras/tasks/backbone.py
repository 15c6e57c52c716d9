"""`RIGNetBackbone`: the RIGNet as keras-hub's `Backbone`: built from a preset name or folder,
saved as a preset folder, and fed normalised float images only.

It is a `RIGNet` (the six blocks, the gates and the unroll driver: `iterate`, `initial_state`,
`step`), with B6's class scores inside it: in RIGNet the head's logits are the top-down feedback
that the gates read, so the head cannot leave the backbone as it does in keras-hub's
segmenters. `RIGNet` itself stays what release 0.1.0 saved (its `.keras` files load and predict as
before, normalising integer images itself); `RIGNetBackbone` differs in one thing: it normalises
nothing, and integer images are refused in one line; the pixels are the preprocessor's business
(`RIGNetImageSegmenterPreprocessor`).
"""

import os

import keras

from rignet_keras.export.files import atomic_directory
from rignet_keras.models.pixels import check_finite
from rignet_keras.models.preprocessor import refuse_pixels
from rignet_keras.models.preset_files import (
    check_new_folder,
    is_preset_folder,
    read_backbone,
    write_backbone,
)
from rignet_keras.models.rignet import RIGNet
from rignet_keras.presets import PRESETS
from rignet_keras.tasks.formats import export_in_format


def check_preset(name_or_dir):
    """Refuses a preset that is neither a name of `PRESETS` nor a preset folder (one line)."""
    if name_or_dir in PRESETS or is_preset_folder(name_or_dir):
        return name_or_dir
    raise ValueError(
        f"preset {name_or_dir!r} is neither a built-in preset ({', '.join(PRESETS)}) nor a "
        "folder holding config.json"
    )


@keras.saving.register_keras_serializable(package="rignet_keras")
class RIGNetBackbone(RIGNet):
    """A `RIGNet` that takes normalised float images only; see the module docstring.

    Arguments: those of `RIGNet`.

    Example:
    >>> backbone = RIGNetBackbone(num_classes=3, backbone="resnet18", width_multiplier=0.125)
    >>> tuple(backbone(np.zeros((1, 32, 32, 3), "float32")).shape)
    (1, 32, 32, 3)
    """

    def __call__(self, images, *args, **kwargs):
        # Checked before Keras' `__call__`, so that the refusal stays one line.
        if hasattr(images, "dtype"):
            refuse_pixels(images, type(self).__name__)
        return super().__call__(images, *args, **kwargs)

    def normalize_pixels(self, images):
        refuse_pixels(images, type(self).__name__)
        check_finite(images)
        return images

    @classmethod
    def from_preset(cls, preset, num_classes=None, **overrides):
        """A built-in architecture by name (`rignet_keras.presets.PRESETS`, `num_classes`
        required, `overrides` update its arguments, e.g. `backbone_weights="imagenet"`), or the
        backbone of a preset folder (config and weights; `num_classes`, if given, must match)."""
        check_preset(preset)
        if preset in PRESETS:
            if num_classes is None:
                raise ValueError(f"from_preset({preset!r}) needs num_classes")
            return super().from_preset(preset, num_classes, **overrides)
        if overrides:
            raise ValueError(
                f"a preset folder's backbone is rebuilt as saved; received {sorted(overrides)}"
            )
        backbone = read_backbone(preset)
        if num_classes is not None and num_classes != backbone.num_classes:
            raise ValueError(
                f"preset {os.fspath(preset)} has num_classes={backbone.num_classes}; received "
                f"num_classes={num_classes} (RIGNet's head feeds its gates: it cannot be swapped)"
            )
        return backbone

    def save_to_preset(self, preset_dir):
        """Writes config.json, model.weights.h5 and metadata.json to the new folder
        `preset_dir`, whole or not at all."""
        with atomic_directory(check_new_folder(preset_dir)) as folder:
            write_backbone(folder, self)

    def export(self, filepath, format="litert", input_size=None, **options):
        """Exports through the project's exporter (`rignet_keras.export.export_model`: a graph
        per ui, step-wise graphs where the mode allows, parity checked, manifest.json) to the new
        folder `filepath`; the graphs take uint8 RGB pixels and normalise them inside, as every
        export does.

        Args:
            format: "litert", "onnx" or "tf_saved_model".
            input_size: (H, W) of the exported graphs (required: a backbone has no preprocessor
                to say it).
            **options: any other `export_model` argument (uis, precisions, ...).

        Returns:
            What `export_model` returns.
        """
        return export_in_format(self, filepath, format, input_size, **options)
