"""ResNet-18/34/50/101/152 split into RIGNet blocks B1-B5 (the block table of docs/DESIGN.md).

Layer names are those of `keras.applications.ResNet50/101/152` (v1), so their ImageNet weights
load by name. ResNet-18/34 use the same naming scheme with basic blocks (no Keras weights exist).
An output stride of 16 or 8 replaces the stride of the last stages by dilation of their 3x3
convolutions (DeepLab), so weights are shared with the stride-32 network.
"""

import keras
from keras import layers

from rignet_keras.backbones.common import (
    BlockContract,
    block_input,
    stage_strides_and_dilations,
)

RESNET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
STAGE_WIDTHS = (64, 128, 256, 512)
BN_EPSILON = 1.001e-5


def _batch_norm(name, synchronized):
    return layers.BatchNormalization(epsilon=BN_EPSILON, synchronized=synchronized, name=name)


def _bottleneck(x, filters, stride, dilation, conv_shortcut, name, sync_bn):
    """keras.applications' residual_block_v1, with a dilation for the 3x3 convolution."""
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = _batch_norm(f"{name}_0_bn", sync_bn)(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = _batch_norm(f"{name}_1_bn", sync_bn)(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", dilation_rate=dilation, name=f"{name}_2_conv")(x)
    x = _batch_norm(f"{name}_2_bn", sync_bn)(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = _batch_norm(f"{name}_3_bn", sync_bn)(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _basic(x, filters, stride, dilation, conv_shortcut, name, sync_bn):
    """The two-3x3 residual block of ResNet-18/34, named like keras.applications' blocks."""
    if conv_shortcut:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_0_conv")(
            x
        )
        shortcut = _batch_norm(f"{name}_0_bn", sync_bn)(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(
        filters,
        3,
        strides=stride,
        padding="same",
        dilation_rate=dilation if stride == 1 else 1,
        use_bias=False,
        name=f"{name}_1_conv",
    )(x)
    x = _batch_norm(f"{name}_1_bn", sync_bn)(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.Conv2D(
        filters, 3, padding="same", dilation_rate=dilation, use_bias=False, name=f"{name}_2_conv"
    )(x)
    x = _batch_norm(f"{name}_2_bn", sync_bn)(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _stem(sync_bn, filters=64):
    """B1: conv1 7x7/2, BN, ReLU, max-pool 3x3/2 (stride 4, `filters` channels)."""
    inputs = block_input(3, "block1_input")
    x = layers.ZeroPadding2D(((3, 3), (3, 3)), name="conv1_pad")(inputs)
    x = layers.Conv2D(filters, 7, strides=2, name="conv1_conv")(x)
    x = _batch_norm("conv1_bn", sync_bn)(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    return keras.Model(inputs, x, name="block1")


def resnet_blocks(depth, output_stride=32, sync_batch_norm=False, width_multiplier=1.0):
    """Builds ResNet-`depth` as five blocks B1-B5 (stem, conv2_x ... conv5_x).

    Args:
        depth: 18, 34, 50, 101 or 152.
        output_stride: 32 (the paper's FCN), 16, or 8 (dilated, DeepLab).
        sync_batch_norm: synchronise batch statistics across replicas in training.
        width_multiplier: scales every layer's channels (1.0 is the published network, whose
            ImageNet weights load; e.g. 0.25 gives the narrow ResNets of `bench/claims.py`).

    Returns:
        (blocks, contracts): five functional `keras.Model`s named "block1"..."block5", each taking
        (B, H, W, C) of any H, W, and their `BlockContract`s.
    """
    if depth not in RESNET_DEPTHS:
        raise ValueError(f"ResNet depth must be one of {tuple(RESNET_DEPTHS)}; received {depth!r}")
    if not width_multiplier > 0:
        raise ValueError(f"width_multiplier must be > 0; received {width_multiplier!r}")
    kind, repeats = RESNET_DEPTHS[depth]
    widths = [max(1, round(w * width_multiplier)) for w in STAGE_WIDTHS]
    stem = max(1, round(64 * width_multiplier))
    unit = _bottleneck if kind == "bottleneck" else _basic
    expansion = 4 if kind == "bottleneck" else 1
    # conv2_x keeps the stem's stride 4; later stages halve, unless dilation takes over.
    plan = stage_strides_and_dilations((4, 1, 2, 2, 2), output_stride)[1:]

    blocks = [_stem(sync_batch_norm, stem)]
    contracts = [BlockContract(stem, 4)]
    channels, stride = stem, 4
    stages = zip(widths, repeats, plan, strict=True)
    for stage, (width, count, (s, dilation)) in enumerate(stages):
        index = stage + 2
        inputs = block_input(channels, f"block{index}_input")
        x = inputs
        for i in range(count):
            x = unit(
                x,
                width,
                stride=s if i == 0 else 1,
                dilation=dilation,
                conv_shortcut=i == 0 and (kind == "bottleneck" or s != 1 or channels != width),
                name=f"conv{index}_block{i + 1}",
                sync_bn=sync_batch_norm,
            )
        blocks.append(keras.Model(inputs, x, name=f"block{index}"))
        channels, stride = width * expansion, stride * s
        contracts.append(BlockContract(channels, stride, dilation))
    return blocks, contracts
