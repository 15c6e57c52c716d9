"""Counted multiply-adds against hand arithmetic."""

import keras
import pytest
import tensorflow as tf

from rignet_keras.profile import count_graph_macs, count_macs, profile
from tests.harness import tiny_rignet


class IterationsWrapper(keras.Model):
    """Takes num_iterations like a RIGNet, so count_macs can call it."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def call(self, x, training=None, num_iterations=None):
        return self.inner(x)


def test_conv_macs_by_hand():
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    model = IterationsWrapper(keras.Model(inp, x))
    # conv: 16x16 outputs x 8 channels x (3*3*3); depthwise: 16x16x8 x (3*3)
    assert count_macs(model, (32, 32)) == 16 * 16 * 8 * 27 + 16 * 16 * 8 * 9


def _traced(layer, shape):
    return tf.function(layer, autograph=False).get_concrete_function(
        tf.TensorSpec(shape, tf.float32)
    )


def test_grouped_transposed_and_dense_macs_by_hand():
    grouped = keras.layers.Conv2D(8, 3, padding="same", groups=2)
    # 8x8 outputs x 8 channels x (3*3 * 4 input channels per group)
    assert count_graph_macs(_traced(grouped, (1, 8, 8, 8))) == 8 * 8 * 8 * 9 * 4
    transposed = keras.layers.Conv2DTranspose(6, 3, strides=2, padding="same")
    # every input element (5x5x4) meets a 3x3 kernel into 6 output channels
    assert count_graph_macs(_traced(transposed, (1, 5, 5, 4))) == 5 * 5 * 4 * 9 * 6
    dense = keras.layers.Dense(7)
    # 2x3x5 positions x 7 outputs x 11 inputs; an unknown batch counts as one
    assert count_graph_macs(_traced(dense, (2, 3, 5, 11))) == 2 * 3 * 5 * 7 * 11
    assert count_graph_macs(_traced(dense, (None, 11))) == 7 * 11


def test_dynamic_spatial_shape_raises_naming_the_op():
    conv = keras.layers.Conv2D(4, 3)
    with pytest.raises(ValueError, match=r"cannot count the MACs of op .*Conv2D.*not static"):
        count_graph_macs(_traced(conv, (1, None, None, 3)))


def test_ui_cost_is_linear_and_ui1_is_the_baseline():
    model = tiny_rignet(feedback_blocks=(4, 6), num_iterations=3)
    baseline = tiny_rignet(feedback_blocks=None, num_iterations=1)
    prof = profile(model, (64, 64))
    assert set(prof.macs) == {1, 2, 3}
    assert prof.macs[1] == count_macs(baseline, (64, 64))
    step = prof.macs[2] - prof.macs[1]
    assert prof.macs[3] - prof.macs[2] == step
    # A step re-runs B4-B6 and their gates. At 64x64, ResNet-18's y4 is 4x4x256, y5 2x2x512,
    # y6 2x2x5; each gate convolves the 2x2-pooled feedback to its block's input channels.
    gate_macs = (
        2 * 2 * 128 * (9 * 256)  # gate 4: pooled y4 (2x2) -> 128 channels
        + 1 * 1 * 256 * (9 * 512)  # gate 5: pooled y5 (1x1) -> 256
        + 1 * 1 * 512 * (9 * 5)  # gate 6: pooled y6 (1x1) -> 512
    )
    blocks_macs = count_macs(baseline, (64, 64)) - _macs_before_block4(baseline)
    assert step == blocks_macs + gate_macs
    assert prof.parameters == model.count_params()
    assert "ui   GMACs" in prof.format()


def _macs_before_block4(model):
    x = keras.Input((64, 64, 3), batch_size=1)
    h = x
    for block in model.blocks[:3]:
        h = block(h)
    return count_macs(IterationsWrapper(keras.Model(x, h)), (64, 64))
