"""Shared fixtures of the export tests: small RIGNets with informative outputs, and their exports.

A randomly initialised network predicts nearly uniform probabilities (every pixel a near-tie), so
a parity test on it would pass for a broken export too. `make_model` therefore sets every batch
norm's moving statistics to the batch statistics of a few synthetic images
(`rignet_keras.models.calibration.calibrate_batch_norm`, the gated passes' too): the net stays
random but its predictions are decided, varied maps.

Exports are session-scoped and made once per configuration; every conversion is in-process
(small models: the peak RSS of the whole folder stays under about 3 GB).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import layers  # noqa: E402

SIZE = (65, 71)  # odd, and not a multiple of any output stride
UIS = (1, 2, 3)
NUM_CLASSES = 5
ALL_MODES = ("sequential", "parallel", "multi_range", "network_recurrent", "network_gated")
STEPWISE_MODES = ("parallel", "multi_range", "network_recurrent", "network_gated")


def tiny_blocks(num_classes=NUM_CLASSES):
    """Six small blocks (B1-B5 strided 3x3 conv + BN + ReLU, B6 a 1x1 classifier): a custom
    backbone that makes every conversion take seconds, so each unroll mode can be exported."""

    def block(filters, name):
        return keras.Sequential(
            [
                layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False),
                layers.BatchNormalization(),
                layers.ReLU(),
            ],
            name=name,
        )

    return [
        block(8, "block1"),
        block(16, "block2"),
        block(16, "block3"),
        block(24, "block4"),
        block(32, "block5"),
        keras.Sequential([layers.Conv2D(num_classes, 1)], name="block6"),
    ]


def make_model(unroll_mode="parallel", backbone="tiny", seed=0, **kwargs):
    """A built RIGNet with decided predictions (see the module docstring)."""
    from rignet_keras import RIGNet
    from rignet_keras.export.samples import synthetic_images
    from rignet_keras.models.calibration import calibrate_batch_norm
    from rignet_keras.preprocessing import normalize

    keras.utils.set_random_seed(seed)
    config = dict(
        num_classes=NUM_CLASSES, feedback_blocks=(4, 6), unroll_mode=unroll_mode, num_iterations=3
    )
    if backbone == "tiny":
        config.update(backbone=tiny_blocks(), preprocessing="torch")
    else:
        config.update(backbone=backbone, head_filters=64)
    config.update(kwargs)
    model = RIGNet(**config)
    model.build((None,) + SIZE + (3,))
    images = synthetic_images(4, SIZE, seed=100)
    calibrate_batch_norm(model, normalize(images, model.preprocessing))
    return model


def keras_probabilities(model, images, num_iterations):
    """The Keras model's softmax on uint8 images: float32 (N, H, W, C)."""
    import tensorflow as tf

    from rignet_keras.preprocessing import normalize

    logits = model(
        normalize(images, model.preprocessing), training=False, num_iterations=num_iterations
    )
    return tf.nn.softmax(logits, axis=-1).numpy()


def fresh_images(num=2, seed=7):
    """uint8 images (num, 65, 71, 3), other than the exporter's own parity samples."""
    from rignet_keras.export.samples import synthetic_images

    return synthetic_images(num, SIZE, seed=seed)


def assert_matches_keras(reference, probabilities, class_map, atol=1e-4, what=""):
    """Probabilities within `atol`; labels equal wherever the Keras model is not near a tie."""
    probabilities = np.asarray(probabilities)
    assert probabilities.shape == reference.shape, what
    np.testing.assert_allclose(probabilities, reference, atol=atol, rtol=0, err_msg=what)
    top = np.sort(reference, axis=-1)
    decided = (top[..., -1] - top[..., -2]) > 10 * atol
    assert decided.mean() > 0.5, f"{what}: the test model's predictions are mostly ties"
    labels = reference.argmax(-1)
    np.testing.assert_array_equal(np.asarray(class_map)[decided], labels[decided], err_msg=what)


def assert_tflite_and_onnx_match_keras(model, folder, uis=(1, 2), what="", stem="rignet"):
    """On fresh images, each `ui_<k>` signature of `<folder>/<stem>_float32.tflite` and each
    `<stem>_ui<k>.onnx` give the Keras model's probabilities and labels (`assert_matches_keras`)."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    samples = fresh_images()
    interpreter = Interpreter(os.path.join(folder, f"{stem}_float32.tflite"), num_threads=2)
    for ui in uis:
        reference = keras_probabilities(model, samples, ui)
        runner = interpreter.get_signature_runner(f"ui_{ui}")
        outs = [runner(images=samples[i : i + 1]) for i in range(len(samples))]
        assert_matches_keras(
            reference,
            np.concatenate([o["probabilities"] for o in outs]),
            np.concatenate([o["class_map"] for o in outs]),
            what=f"{what} tflite ui_{ui}",
        )
        session = ort.InferenceSession(
            os.path.join(folder, f"{stem}_ui{ui}.onnx"), providers=["CPUExecutionProvider"]
        )
        names = [o.name for o in session.get_outputs()]
        out = dict(zip(names, session.run(None, {"images": samples}), strict=True))
        assert_matches_keras(
            reference, out["probabilities"], out["class_map"], what=f"{what} onnx ui_{ui}"
        )


class _Exports:
    """Session cache: one export per configuration key."""

    def __init__(self, factory):
        self.factory = factory
        self.cache = {}

    def get(self, key, **options):
        if key not in self.cache:
            self.cache[key] = self.factory(key, **options)
        return self.cache[key]


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """`exports.get(mode)`: (model, manifest, folder) of a tiny RIGNet in that unroll mode,
    exported to every format (`model.keras`, SavedModel, float32 TFLite: one file with ui 1..3
    and the step-wise graphs where the mode has them, ONNX ui 1..3), at 65x71. The "parallel"
    export also holds every TFLite precision (and step-wise float32 and int8)."""
    from rignet_keras.export import FORMATS, PRECISIONS, export_model

    def factory(mode, **options):
        model = make_model(mode)
        folder = tmp_path_factory.mktemp(f"export_{mode}") / "out"
        settings = dict(
            input_size=SIZE,
            formats=FORMATS,
            uis=UIS,
            precisions=("float32",),
            tflite_layouts=("multi",),
            latency_runs=3,
        )
        if mode == "parallel":
            settings.update(precisions=PRECISIONS, stepwise_precisions=("float32", "int8"))
        settings.update(options)
        manifest = export_model(model, folder, **settings)
        return model, manifest, folder

    return _Exports(factory)
