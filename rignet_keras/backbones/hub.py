"""keras-hub backbones as RIGNet backbones, cut at their stem and pyramid levels.

keras-hub is optional (`pip install "rignet-keras[hub]"`): these entries are registered whether it
is installed or not, and building one without it raises `ImportError` saying how to install it.
Each entry records the keras-hub constructor arguments of its architecture (random weights, no
download) and the preset whose published weights `backbone_weights="imagenet"` loads through
keras-hub's own `from_preset`. A local preset folder (as `from_preset` takes it) or a
`.weights.h5` file of the same architecture loads offline.

A `.keras` file of a RIGNet on one of these names rebuilds its blocks from keras-hub's layer
classes: loading it needs keras-hub installed (Keras imports the `keras_hub` module that defines
them). The MiT entries' blocks are rignet-keras' own MiT layers (`mit.py`) instead, with
keras-hub's weights copied in, because keras-hub's `MiTBackbone` runs on square images whose side
is a multiple of 32 only; they too need keras-hub installed, to be built (from a `.keras` file
too) and to read keras-hub's weights.
"""

import functools
import os

from rignet_keras.backbones.mit import MIT_CUTS, copy_hub_weights, mit_model
from rignet_keras.backbones.split import SplitBackbone, input_of

INSTALL_HINT = 'pip install "rignet-keras[hub]"  (or: pip install keras-hub)'

RESNET_CONFIGS = {
    "resnet18": dict(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[2, 2, 2, 2],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
    ),
    "resnet_vd34": dict(
        input_conv_filters=[32, 32, 64],
        input_conv_kernel_sizes=[3, 3, 3],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[3, 4, 6, 3],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block_vd",
    ),
    "resnet50": dict(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[3, 4, 6, 3],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="bottleneck_block",
    ),
}

# MobileNetV3-Small 1.0 (the architecture of timm's mobilenetv3_small_100).
MOBILENET_V3_SMALL = dict(
    stackwise_expansion=[[72, 88], [96, 240, 240], [120, 144], [288, 576, 576]],
    stackwise_num_blocks=[2, 3, 2, 3],
    stackwise_num_filters=[[24, 24], [40, 40, 40], [48, 48], [96, 96, 96]],
    stackwise_kernel_size=[[3, 3], [5, 5, 5], [5, 5], [5, 5, 5]],
    stackwise_num_strides=[[2, 1], [2, 1, 1], [1, 1], [2, 1, 1]],
    stackwise_se_ratio=[[None, None], [0.25] * 3, [0.25] * 2, [0.25] * 3],
    stackwise_activation=[["relu"] * 2, ["hard_swish"] * 3, ["hard_swish"] * 2, ["hard_swish"] * 3],
    stackwise_padding=[[1, 1], [2, 2, 2], [2, 2], [2, 2, 2]],
    output_num_filters=1024,
    depthwise_filters=16,
    depthwise_stride=2,
    depthwise_residual=False,
    last_layer_filter=576,
    squeeze_and_excite=0.5,
    input_activation="hard_swish",
    input_num_filters=16,
)

# MiT (SegFormer's encoder) B0 and B1; `MiTBackbone` arguments.
MIT_CONFIGS = {
    "mit_b0": dict(
        layerwise_depths=[2, 2, 2, 2],
        num_layers=4,
        layerwise_num_heads=[1, 2, 5, 8],
        layerwise_sr_ratios=[8, 4, 2, 1],
        max_drop_path_rate=0.1,
        layerwise_patch_sizes=[7, 3, 3, 3],
        layerwise_strides=[4, 2, 2, 2],
        hidden_dims=[32, 64, 160, 256],
    ),
    "mit_b1": dict(
        layerwise_depths=[2, 2, 2, 2],
        num_layers=4,
        layerwise_num_heads=[1, 2, 5, 8],
        layerwise_sr_ratios=[8, 4, 2, 1],
        max_drop_path_rate=0.1,
        layerwise_patch_sizes=[7, 3, 3, 3],
        layerwise_strides=[4, 2, 2, 2],
        hidden_dims=[64, 128, 320, 512],
    ),
}
# keras-hub's MiTBackbone needs a static square image shape, a multiple of 32; the weights do not
# depend on it.
MIT_HUB_IMAGE_SHAPE = (64, 64, 3)


def keras_hub_module():
    """The `keras_hub` module; `ImportError` saying how to install it when it is missing."""
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            f"the hub_* backbones need keras-hub, which is not installed: {INSTALL_HINT}"
        ) from error
    return keras_hub


def _hub_source(class_name, config, preset, weights):
    """The keras-hub backbone `class_name`: random (`weights` None), the published `preset`
    ("imagenet"), a local preset folder, or a `.weights.h5` file of the same architecture."""
    cls = getattr(keras_hub_module().models, class_name)
    if weights is None:
        return cls(**config, image_shape=(None, None, 3))
    if weights == "imagenet":
        return cls.from_preset(preset, image_shape=(None, None, 3))
    if os.path.isdir(weights):
        return cls.from_preset(weights, image_shape=(None, None, 3))
    if not os.path.exists(weights):
        raise ValueError(f"backbone weights file not found: {weights!r}")
    model = cls(**config, image_shape=(None, None, 3))
    model.load_weights(weights)
    return model


def _mit_source(config, preset, weights):
    """Our MiT (`mit.mit_model`, any input size): random (`weights` None), or filled from the
    keras-hub `MiTBackbone` of the published `preset` ("imagenet"), of a local preset folder, or
    of a `.weights.h5` file of that architecture."""
    cls = keras_hub_module().models.MiTBackbone
    model = mit_model(config)
    if weights is None:
        return model
    if weights == "imagenet":
        hub = cls.from_preset(preset, image_shape=MIT_HUB_IMAGE_SHAPE)
    elif os.path.isdir(weights):
        hub = cls.from_preset(weights, image_shape=MIT_HUB_IMAGE_SHAPE)
    elif not os.path.exists(weights):
        raise ValueError(f"backbone weights file not found: {weights!r}")
    else:
        hub = cls(**config, image_shape=MIT_HUB_IMAGE_SHAPE)
        hub.load_weights(weights)
    copy_hub_weights(hub, model)
    return model


def _mit_entry(name, preset):
    return SplitBackbone(
        source=functools.partial(_mit_source, MIT_CONFIGS[name], preset),
        cuts=lambda model: list(MIT_CUTS),
        preprocessing="torch",
        weights_from=f"keras_hub.models.MiTBackbone.from_preset({preset!r}) (SegFormer's "
        "encoder trained on ADE20K; keras-hub publishes no ImageNet-only MiT), a preset folder "
        "or a file",
    )


def _resnet_cuts(model):
    # B1 is the stem (to its max-pool, stride 4); B2-B5 end at the pyramid levels P2-P5.
    return ["pool1_pool", *(model.pyramid_outputs[f"P{k}"] for k in range(2, 6))]


def _mobilenet_cuts(model):
    return [input_of(model, "block_0_0"), "block_0_0", "block_1_1", "block_3_1", "block_5_0"]


def _entry(class_name, config, preset, cuts, preprocessing):
    return SplitBackbone(
        source=functools.partial(_hub_source, class_name, config, preset),
        cuts=cuts,
        preprocessing=preprocessing,
        weights_from=f"keras_hub.models.{class_name}.from_preset({preset!r}), a preset folder "
        "or a file",
    )


HUB_BACKBONES = {
    "hub_resnet18": _entry(
        "ResNetBackbone", RESNET_CONFIGS["resnet18"], "resnet_18_imagenet", _resnet_cuts, "torch"
    ),
    "hub_resnet_vd34": _entry(
        "ResNetBackbone",
        RESNET_CONFIGS["resnet_vd34"],
        "resnet_vd_34_imagenet",
        _resnet_cuts,
        "torch",
    ),
    "hub_resnet50": _entry(
        "ResNetBackbone", RESNET_CONFIGS["resnet50"], "resnet_50_imagenet", _resnet_cuts, "torch"
    ),
    "hub_mobilenet_v3_small": _entry(
        "MobileNetBackbone",
        MOBILENET_V3_SMALL,
        "mobilenet_v3_small_100_imagenet",
        _mobilenet_cuts,
        "torch",
    ),
    "hub_mit_b0": _mit_entry("mit_b0", "mit_b0_ade20k_512"),
    "hub_mit_b1": _mit_entry("mit_b1", "mit_b1_ade20k_512"),
}
