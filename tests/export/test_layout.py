"""The converters' layouts (`rignet_keras.export.layout`): wide convolutions split over input
channels for TFLite, and depthwise convolutions written as grouped ones traced as depthwise."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from rignet_keras.export.layout import (
    channel_groups,
    grouped_depthwise_convolutions,
    plain_depthwise_convolutions,
    split_wide_convolutions,
    wide_convolutions,
)


def _conv_model(channels=1024, filters=128, kernel=3):
    inputs = keras.Input((9, 11, channels))
    x = layers.Conv2D(filters, kernel, padding="same", activation="relu", name="wide")(inputs)
    x = layers.Conv2D(filters, 1, name="pointwise")(layers.Concatenate()([x, x]))
    return keras.Model(inputs, x)


def _conv_ops(fn, x):
    graph = tf.function(fn).get_concrete_function(x).graph
    return sum(op.type == "Conv2D" for op in graph.get_operations())


def test_split_convolution_equals_the_convolution():
    model = _conv_model()
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 9, 11, 1024)).astype("float32"))
    plain = model(x).numpy()
    assert [layer.name for layer in wide_convolutions(model)] == ["wide"]
    with split_wide_convolutions(model, 512) as split:
        assert [layer.name for layer in split] == ["wide"]
        np.testing.assert_allclose(model(x).numpy(), plain, rtol=1e-4, atol=1e-4)
        assert _conv_ops(model, x) == 2 + 1  # the wide one as two, the 1x1 as it was
    assert _conv_ops(model, x) == 2
    assert "convolution_op" not in vars(model.get_layer("wide"))
    np.testing.assert_array_equal(model(x).numpy(), plain)


@pytest.mark.parametrize("kwargs", [dict(channels=768), dict(filters=21), dict(kernel=1)], ids=str)
def test_convolutions_that_gain_nothing_are_kept(kwargs):
    assert wide_convolutions(_conv_model(**kwargs), 512) == []


class _GroupedBlock(layers.Layer):
    """A subclassed layer holding a grouped depthwise convolution, as keras-hub's MobileNet
    blocks do: the search must reach nested layers."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.depthwise = layers.Conv2D(8, 5, strides=2, padding="same", groups=8, name="dw")
        self.grouped = layers.Conv2D(8, 3, padding="same", groups=2, name="g2")

    def call(self, x):
        return self.grouped(self.depthwise(x))


def _ops(fn, x):
    return [op.type for op in tf.function(fn).get_concrete_function(x).graph.get_operations()]


def test_grouped_depthwise_convolutions_trace_as_depthwise_with_the_same_numbers():
    inputs = keras.Input((None, None, 8))
    outputs = layers.Conv2D(8, 7, padding="same", groups=8, dilation_rate=2, name="top")(
        _GroupedBlock(name="block")(inputs)
    )
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    for layer in model._flatten_layers(include_self=False):
        if layer.weights:
            layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.weights])
    x = tf.constant(rng.normal(size=(1, 15, 13, 8)).astype("float32"))
    plain = model(x).numpy()
    assert [layer.name for layer in grouped_depthwise_convolutions(model)] == ["dw", "top"]
    assert "DepthwiseConv2dNative" not in _ops(model, x)
    with plain_depthwise_convolutions(model) as replaced:
        assert [layer.name for layer in replaced] == ["dw", "top"]
        traced = _ops(model, x)
        assert traced.count("DepthwiseConv2dNative") == 2
        np.testing.assert_allclose(model(x).numpy(), plain, rtol=1e-5, atol=1e-4)
    assert "DepthwiseConv2dNative" not in _ops(model, x)
    assert not any("convolution_op" in vars(layer) for layer in model._flatten_layers())


def test_channel_groups_cover_the_channels():
    assert channel_groups(2048, 512) == [(0, 512), (512, 1024), (1024, 1536), (1536, 2048)]
    assert channel_groups(1100, 512) == [(0, 367), (367, 733), (733, 1100)]
    with pytest.raises(ValueError, match="max_input_channels must be None or an int >= 1"):
        with split_wide_convolutions(_conv_model(), 0):
            pass
    with split_wide_convolutions(_conv_model(), None) as split:
        assert split == []


@pytest.mark.export
def test_tflite_export_splits_and_keeps_parity(tmp_path):
    """A custom head with a 3x3 conv over 256 channels, split at 64 in the TFLite graph only;
    the exporter's parity check (strict) compares it with the Keras model."""
    from ai_edge_litert.interpreter import Interpreter

    from rignet_keras import RIGNet
    from rignet_keras.export import export_model
    from rignet_keras.models.calibration import calibrate_batch_norm
    from rignet_keras.preprocessing import normalize
    from tests.harness import NUM_CLASSES, SIZE, tiny_blocks

    blocks = tiny_blocks()
    blocks[4] = keras.Sequential(
        [
            layers.Conv2D(256, 3, strides=2, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
        ],
        name="block5",
    )
    blocks[5] = keras.Sequential(
        [layers.Conv2D(128, 3, padding="same", activation="relu"), layers.Conv2D(NUM_CLASSES, 1)],
        name="block6",
    )
    model = RIGNet(
        NUM_CLASSES,
        backbone=blocks,
        feedback_blocks=(5, 6),
        num_iterations=2,
        preprocessing="torch",
    )
    model.build((None,) + SIZE + (3,))
    from rignet_keras.export.samples import synthetic_images

    calibrate_batch_norm(model, normalize(synthetic_images(4, SIZE, seed=100), "torch"))
    counts = {}
    for limit in (64, None):
        folder = tmp_path / f"limit{limit}"
        manifest = export_model(
            model,
            folder,
            input_size=SIZE,
            uis=(1, 2),
            formats=("saved_model", "tflite"),
            stepwise=False,
            tflite_max_conv_input_channels=limit,
            latency_runs=0,
        )
        assert manifest["tflite_layout"]["max_conv_input_channels"] == limit
        interpreter = Interpreter(model_path=str(folder / "rignet_float32.tflite"))
        ops = interpreter._get_ops_details()
        counts[limit] = sum(op["op_name"] == "CONV_2D" for op in ops)
    # The first subgraph (ui 1): B1-B5's convs and the head's two, of which the 3x3 one
    # (256 -> 128) becomes four.
    assert counts[None] == 7 and counts[64] == 7 + 3


def _tflite_ops(model, input_shape, path):
    """The op names of `model` converted to TFLite through a SavedModel, as the exporter does."""
    from ai_edge_litert.interpreter import Interpreter

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", model.call, [tf.TensorSpec(input_shape, tf.float32)])
    archive.write_out(str(path / "saved_model"), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(path / "saved_model"))
    flatbuffer = converter.convert()
    interpreter = Interpreter(model_content=flatbuffer)
    return [op["op_name"] for op in interpreter._get_ops_details()]


@pytest.mark.export
def test_split_kernels_over_the_converters_folding_limit_stay_constant(tmp_path):
    """A 3x3 4096 -> 1024 kernel (151 MB, a multi-range gate's) is over the 2^30 bits up to
    which the converter folds a slice of a constant: each group must still reach TFLite as a
    constant filter, not as a run-time slice and transpose of the whole kernel."""
    inputs = keras.Input((6, 6, 4096), batch_size=1)
    model = keras.Model(inputs, layers.Conv2D(1024, 3, padding="same", name="gate")(inputs))
    with split_wide_convolutions(model, 512):
        ops = _tflite_ops(model, (1, 6, 6, 4096), tmp_path)
    assert ops.count("CONV_2D") == 8
    assert "TRANSPOSE" not in ops
    assert ops.count("STRIDED_SLICE") <= 8  # the input's channel groups, nothing of the kernel
