"""FeedbackGate and MultiRangeFeedbackGate against NumPy references of their formulas
(paper Sec. 3.4, docs/DESIGN.md)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rignet_keras.layers import (
    COMBINE_OPTIONS,
    POOLING_OPTIONS,
    FeedbackGate,
    MultiRangeFeedbackGate,
)
from tests import reference


def _randomise(layer, rng):
    for w in layer.weights:
        w.assign(rng.normal(scale=0.3, size=w.shape).astype("float32"))


@pytest.mark.parametrize("pooling", POOLING_OPTIONS)
@pytest.mark.parametrize("combine", COMBINE_OPTIONS)
def test_gate_matches_numpy_reference(pooling, combine, rng):
    x = rng.normal(size=(2, 9, 7, 4)).astype("float32")  # odd sizes, x larger than y
    y = rng.normal(size=(2, 5, 3, 6)).astype("float32")
    gate = FeedbackGate(pooling=pooling, combine=combine)
    gate.build(((None, None, None, 4), (None, None, None, 6)))
    _randomise(gate, rng)
    out = keras.ops.convert_to_numpy(gate((x, y)))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in gate.conv.weights)
    expected = reference.feedback_gate(x, y, kernel, bias, pooling, combine)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_bottleneck_gate_matches_reference(rng):
    x = rng.normal(size=(1, 8, 8, 3)).astype("float32")
    y = rng.normal(size=(1, 4, 4, 10)).astype("float32")
    gate = FeedbackGate(bottleneck=2)
    gate.build((x.shape, y.shape))
    _randomise(gate, rng)
    out = keras.ops.convert_to_numpy(gate((x, y)))
    reduce = tuple(keras.ops.convert_to_numpy(w) for w in gate.reduce.weights)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in gate.conv.weights)
    expected = reference.feedback_gate(x, y, kernel, bias, "avg", "mul_sigmoid", reduce=reduce)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    # 1x1 reduce (10 -> 2, with bias) then 3x3 (2 -> 3, with bias).
    assert gate.count_params() == (10 * 2 + 2) + (9 * 2 * 3 + 3)


def test_multi_range_gate_matches_reference(rng):
    x = rng.normal(size=(2, 11, 9, 4)).astype("float32")
    y = rng.normal(size=(2, 6, 5, 6)).astype("float32")
    z = rng.normal(size=(2, 3, 3, 5)).astype("float32")  # the last block's logits
    gate = MultiRangeFeedbackGate()
    gate.build((x.shape, y.shape, z.shape))
    _randomise(gate, rng)
    out = keras.ops.convert_to_numpy(gate((x, y, z)))
    lr_kernel, lr_bias = (keras.ops.convert_to_numpy(w) for w in gate.long_range.weights)
    long_range = reference.resize_bilinear_half_pixel(
        reference.conv2d_same(z.astype(np.float64), lr_kernel, lr_bias), y.shape[1:3]
    )
    feedback = np.concatenate([y, long_range], axis=-1)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in gate.conv.weights)
    expected = reference.feedback_gate(x, feedback, kernel, bias, "avg", "mul_sigmoid")
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    assert gate.count_params() == (5 * 6 + 6) + (9 * 12 * 4 + 4)


def test_gate_layer_contract(rng):
    """Build, symbolic and eager call, config round trip, weight count, one training step."""
    gate = FeedbackGate(pooling="max", combine="mul_tanh", name="block4_gate")
    x_in = keras.Input((None, None, 8))
    y_in = keras.Input((None, None, 16))
    out = gate((x_in, y_in))
    assert tuple(out.shape) == (None, None, None, 8)
    assert gate.count_params() == 9 * 16 * 8 + 8
    assert len(gate.trainable_weights) == 2

    clone = FeedbackGate.from_config(gate.get_config())
    assert clone.get_config() == gate.get_config()
    clone.build(((None, None, None, 8), (None, None, None, 16)))
    clone.set_weights(gate.get_weights())
    x = rng.normal(size=(2, 13, 13, 8)).astype("float32")
    y = rng.normal(size=(2, 7, 7, 16)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(clone((x, y))), keras.ops.convert_to_numpy(gate((x, y)))
    )

    model = keras.Model([x_in, y_in], out)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [w.copy() for w in gate.get_weights()]
    model.train_on_batch([x, y], np.zeros_like(x))
    assert all(not np.allclose(a, b) for a, b in zip(before, gate.get_weights(), strict=True))


def test_gate_output_follows_runtime_size_in_graph_mode():
    """One traced graph serves every input size: the resize reads x's runtime size."""
    gate = FeedbackGate()
    gate.build(((None, None, None, 3), (None, None, None, 4)))
    fn = tf.function(
        lambda x, y: gate((x, y)),
        input_signature=[
            tf.TensorSpec((None, None, None, 3)),
            tf.TensorSpec((None, None, None, 4)),
        ],
    )
    for h, w in [(17, 23), (32, 32), (5, 9)]:
        out = fn(tf.ones((1, h, w, 3)), tf.ones((1, (h + 1) // 2, (w + 1) // 2, 4)))
        assert tuple(out.shape) == (1, h, w, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(pooling="mean"), "pooling must be one of"),
        (dict(combine="mul"), "combine must be one of"),
        (dict(bottleneck=0), "bottleneck must be None or a positive int"),
    ],
)
def test_bad_gate_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeedbackGate(**kwargs)
