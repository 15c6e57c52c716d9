"""`keras.applications` networks as RIGNet backbones, cut at their stage ends.

Each entry names the five tensors where blocks B1-B5 end (`split.split_model`) and the
preprocessing its ImageNet weights expect. The models are built without their preprocessing
layers: a RIGNet normalises its inputs itself (`rignet_keras.preprocessing`). Blocks by stride:

| backbone           | B1 | B2 | B3 | B4 | B5 |
|--------------------|----|----|----|----|----|
| efficientnetv2b0   | 2  | 4  | 8  | 16 | 32 |
| mobilenetv3small   | 2  | 4  | 8  | 16 | 32 |
| mobilenetv3large   | 2  | 4  | 8  | 16 | 32 |
| convnext_tiny      | 4  | 4  | 8  | 16 | 32 |
| resnet50v2         | 4  | 4  | 8  | 16 | 32 |
"""

import functools
import os

import keras

from rignet_keras.backbones.split import SplitBackbone, input_of


def _weights_argument(weights):
    if weights is not None and weights != "imagenet" and not os.path.exists(weights):
        raise ValueError(f"backbone weights file not found: {weights!r}")
    return weights


def _application(constructor, weights, preprocessing_layers):
    """`constructor` without its top, for any input size; `weights` None, "imagenet" or a file."""
    kwargs = dict(
        include_top=False, weights=_weights_argument(weights), input_shape=(None, None, 3)
    )
    if preprocessing_layers:
        kwargs["include_preprocessing"] = False
    return constructor(**kwargs)


def _named(*names):
    """Cuts at the outputs of five named layers; the last may be None for the model's output."""

    def cuts(model):
        return [model.outputs[0] if name is None else name for name in names]

    return cuts


def _convnext_cuts(model):
    # A ConvNeXt stage ends in an unnamed addition: cut where the next downsampling reads it.
    prefix = model.name
    return [
        f"{prefix}_stem",
        input_of(model, f"{prefix}_downsampling_block_0"),
        input_of(model, f"{prefix}_downsampling_block_1"),
        input_of(model, f"{prefix}_downsampling_block_2"),
        model.outputs[0],
    ]


def _entry(constructor, cuts, preprocessing, preprocessing_layers=True):
    return SplitBackbone(
        source=functools.partial(
            _application, constructor, preprocessing_layers=preprocessing_layers
        ),
        cuts=cuts,
        preprocessing=preprocessing,
        weights_from=f"keras.applications.{constructor.__name__}(weights='imagenet') or a file",
    )


APPLICATION_BACKBONES = {
    "efficientnetv2b0": _entry(
        keras.applications.EfficientNetV2B0,
        _named("block1a_project_activation", "block2b_add", "block3b_add", "block5e_add", None),
        "torch",
    ),
    "mobilenetv3small": _entry(
        keras.applications.MobileNetV3Small,
        lambda model: [
            input_of(model, "expanded_conv_depthwise_pad"),
            "expanded_conv_project_bn",
            "expanded_conv_2_add",
            "expanded_conv_7_add",
            model.outputs[0],
        ],
        "tf",
    ),
    "mobilenetv3large": _entry(
        keras.applications.MobileNetV3Large,
        _named(
            "expanded_conv_add",
            "expanded_conv_2_add",
            "expanded_conv_5_add",
            "expanded_conv_11_add",
            None,
        ),
        "tf",
    ),
    "convnext_tiny": _entry(keras.applications.ConvNeXtTiny, _convnext_cuts, "torch"),
    "resnet50v2": _entry(
        keras.applications.ResNet50V2,
        _named("pool1_pool", "conv2_block2_out", "conv3_block3_out", "conv4_block5_out", None),
        "tf",
        preprocessing_layers=False,
    ),
}
