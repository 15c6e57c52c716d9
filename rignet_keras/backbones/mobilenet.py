"""MobileNetV2 split into RIGNet blocks B1-B5, for small devices.

Layer names are those of `keras.applications.MobileNetV2` (alpha 1.0), so its ImageNet weights load
by name. Blocks by stride: B1 stem + expanded_conv (stride 2, 16 channels), B2 block_1-2 (4, 24),
B3 block_3-5 (8, 32), B4 block_6-12 (16, 96), B5 block_13-16 + Conv_1 (32, 1280). At output stride
16 or 8 the depthwise convolutions of the later blocks are dilated instead of strided.
"""

import keras
from keras import layers

from rignet_keras.backbones.common import (
    BlockContract,
    block_input,
    stage_strides_and_dilations,
)

# (expansion, filters, stride, block_id) of every inverted residual unit, grouped into blocks.
MOBILENET_V2_BLOCKS = (
    ((1, 16, 1, 0),),
    ((6, 24, 2, 1), (6, 24, 1, 2)),
    ((6, 32, 2, 3), (6, 32, 1, 4), (6, 32, 1, 5)),
    (
        (6, 64, 2, 6),
        (6, 64, 1, 7),
        (6, 64, 1, 8),
        (6, 64, 1, 9),
        (6, 96, 1, 10),
        (6, 96, 1, 11),
        (6, 96, 1, 12),
    ),
    ((6, 160, 2, 13), (6, 160, 1, 14), (6, 160, 1, 15), (6, 320, 1, 16)),
)
LAST_CONV_FILTERS = 1280


def _batch_norm(name, synchronized):
    return layers.BatchNormalization(
        epsilon=1e-3, momentum=0.999, synchronized=synchronized, name=name
    )


def _inverted_residual(x, expansion, filters, stride, dilation, block_id, sync_bn):
    """keras.applications' _inverted_res_block, with 'same' padding and a depthwise dilation.

    'same' padding equals Keras' explicit `correct_pad` for stride 2 at every input size.
    """
    in_channels = x.shape[-1]
    inputs = x
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    if block_id:
        x = layers.Conv2D(
            expansion * in_channels, 1, padding="same", use_bias=False, name=f"{prefix}expand"
        )(x)
        x = _batch_norm(f"{prefix}expand_BN", sync_bn)(x)
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    x = layers.DepthwiseConv2D(
        3,
        strides=stride,
        padding="same",
        dilation_rate=dilation if stride == 1 else 1,
        use_bias=False,
        name=f"{prefix}depthwise",
    )(x)
    x = _batch_norm(f"{prefix}depthwise_BN", sync_bn)(x)
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=f"{prefix}project")(x)
    x = _batch_norm(f"{prefix}project_BN", sync_bn)(x)
    if in_channels == filters and stride == 1:
        x = layers.Add(name=f"{prefix}add")([inputs, x])
    return x


def mobilenet_v2_blocks(output_stride=32, sync_batch_norm=False):
    """Builds MobileNetV2 (alpha 1.0) as five blocks B1-B5.

    Args:
        output_stride: 32, 16 or 8.
        sync_batch_norm: synchronise batch statistics across replicas in training.

    Returns:
        (blocks, contracts), as `resnet_blocks` returns them.
    """
    # Native strides of the blocks: B1 has the stem's stride 2; each later block halves once.
    plan = stage_strides_and_dilations((2, 2, 2, 2, 2), output_stride)
    blocks, contracts = [], []
    channels, stride = 3, 1
    stages = zip(MOBILENET_V2_BLOCKS, plan, strict=True)
    for index, (units, (s, dilation)) in enumerate(stages, start=1):
        inputs = block_input(channels, f"block{index}_input")
        x = inputs
        if index == 1:
            x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="Conv1")(x)
            x = _batch_norm("bn_Conv1", sync_batch_norm)(x)
            x = layers.ReLU(6.0, name="Conv1_relu")(x)
        for expansion, filters, unit_stride, block_id in units:
            unit_stride = s if unit_stride == 2 and index > 1 else unit_stride
            x = _inverted_residual(
                x, expansion, filters, unit_stride, dilation, block_id, sync_batch_norm
            )
        if index == 5:
            x = layers.Conv2D(LAST_CONV_FILTERS, 1, use_bias=False, name="Conv_1")(x)
            x = _batch_norm("Conv_1_bn", sync_batch_norm)(x)
            x = layers.ReLU(6.0, name="out_relu")(x)
        blocks.append(keras.Model(inputs, x, name=f"block{index}"))
        channels, stride = x.shape[-1], stride * s
        contracts.append(BlockContract(channels, stride, dilation))
    return blocks, contracts
