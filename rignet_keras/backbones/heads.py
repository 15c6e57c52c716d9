"""Segmentation heads: block B6 of a RIGNet (docs/DESIGN.md, Blocks)."""

import keras
from keras import layers

from rignet_keras.backbones.common import block_input

HEADS = ("fcn", "aspp")
ASPP_RATES = (6, 12, 18, 24)


def fcn_head(in_channels, num_classes, filters=512, dropout=0.1, sync_batch_norm=False):
    """FCN head: 3x3 conv to `filters`, BN, ReLU, dropout, 1x1 conv to `num_classes` logits."""
    inputs = block_input(in_channels, "block6_input")
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name="head_conv")(inputs)
    x = layers.BatchNormalization(synchronized=sync_batch_norm, name="head_bn")(x)
    x = layers.Activation("relu", name="head_relu")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Conv2D(num_classes, 1, name="head_classifier")(x)
    return keras.Model(inputs, x, name="block6")


def aspp_v2_head(in_channels, num_classes, rates=ASPP_RATES):
    """DeepLabV2 ASPP: four 3x3 convolutions to `num_classes`, dilated by `rates`, summed."""
    inputs = block_input(in_channels, "block6_input")
    branches = [
        layers.Conv2D(num_classes, 3, padding="same", dilation_rate=r, name=f"aspp_conv_rate{r}")(
            inputs
        )
        for r in rates
    ]
    x = layers.Add(name="aspp_sum")(branches)
    return keras.Model(inputs, x, name="block6")


def build_head(head, in_channels, num_classes, filters=512, sync_batch_norm=False):
    """Builds B6 by name: "fcn" or "aspp"."""
    if head == "fcn":
        return fcn_head(in_channels, num_classes, filters, sync_batch_norm=sync_batch_norm)
    if head == "aspp":
        return aspp_v2_head(in_channels, num_classes)
    raise ValueError(f"head must be one of {HEADS}; received {head!r}")
