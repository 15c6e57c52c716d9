"""Where tf2onnx alone fails, and the conversion's answer.

The retry: when one of tf2onnx's optimisers fails on the fast path (no copy of the graph before
each optimiser), the conversion runs again with tf2onnx's safety net on, which skips the failing
optimiser. A random MobileNetV3-Small RIGNet is a graph on which an optimiser fails ("max() arg
is an empty sequence" in tf2onnx 1.17). The ops it has no handler for: TensorFlow's `Erfc`
(the exact GELU), converted by `OP_HANDLERS`."""

import os

import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf

from rignet_keras.export import onnx as onnx_export

SIZE = (65, 71)


def test_environment_sets_and_unsets_and_restores(monkeypatch):
    monkeypatch.setenv("TF2ONNX_CATCH_ERRORS", "before")
    with onnx_export._environment(TF2ONNX_CATCH_ERRORS=None):
        assert "TF2ONNX_CATCH_ERRORS" not in os.environ
    assert os.environ["TF2ONNX_CATCH_ERRORS"] == "before"
    with onnx_export._environment(TF2ONNX_CATCH_ERRORS="FALSE"):
        assert os.environ["TF2ONNX_CATCH_ERRORS"] == "FALSE"
    assert os.environ["TF2ONNX_CATCH_ERRORS"] == "before"


@pytest.mark.export
def test_a_graph_whose_optimiser_fails_converts_on_the_retry_and_matches_keras():
    import keras

    from rignet_keras import RIGNet
    from rignet_keras.export.samples import synthetic_images
    from rignet_keras.preprocessing import normalize

    keras.utils.set_random_seed(0)
    model = RIGNet(5, backbone="mobilenetv3small", head_filters=32, feedback_blocks=(4, 6))
    model.build((None, *SIZE, 3))
    proto = onnx_export.convert_onnx(model, 1, input_size=SIZE)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    images = synthetic_images(1, SIZE, 0)
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {"images": images}), strict=True))
    logits = model(normalize(images, model.preprocessing), training=False, num_iterations=1)
    expected = tf.nn.softmax(logits).numpy()
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-4, rtol=0)


@pytest.mark.export
def test_the_exact_gelu_converts_and_matches_keras():
    """tf2onnx 1.17 has no `Erfc` (TensorFlow's exact GELU); `OP_HANDLERS` writes it as
    1 - Erf. A tiny RIGNet whose blocks use the exact GELU matches Keras through ONNX."""
    import keras
    from keras import layers

    from rignet_keras import RIGNet
    from rignet_keras.export.samples import synthetic_images
    from rignet_keras.models.calibration import calibrate_batch_norm
    from rignet_keras.preprocessing import normalize

    def block(filters, name):
        return keras.Sequential(
            [
                layers.Conv2D(filters, 3, strides=2, padding="same"),
                layers.BatchNormalization(),
                layers.Activation("gelu"),
            ],
            name=name,
        )

    keras.utils.set_random_seed(0)
    blocks = [block(f, f"block{k}") for k, f in enumerate((8, 8, 16, 16, 16), start=1)]
    blocks.append(keras.Sequential([layers.Conv2D(5, 1)], name="block6"))
    model = RIGNet(5, backbone=blocks, preprocessing="torch", feedback_blocks=(4, 6))
    model.build((None, *SIZE, 3))
    images = synthetic_images(2, SIZE, 0)
    calibrate_batch_norm(model, normalize(images, model.preprocessing))
    proto = onnx_export.convert_onnx(model, 2, input_size=SIZE)
    assert {"Erf"} <= {node.op_type for node in proto.graph.node}
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {"images": images}), strict=True))
    logits = model(normalize(images, model.preprocessing), training=False, num_iterations=2)
    expected = tf.nn.softmax(logits).numpy()
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-4, rtol=0)
    decided = np.sort(expected, -1)[..., -1] - np.sort(expected, -1)[..., -2] > 1e-3
    assert decided.mean() > 0.5
    np.testing.assert_array_equal(outputs["class_map"][decided], expected.argmax(-1)[decided])
