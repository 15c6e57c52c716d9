"""A backbone cut from another model, through the whole chain: every unroll mode, `profile`,
training, `.keras` in safe mode in a fresh process, and TFLite (float32, int8, step-wise) and
ONNX exports at ui 1-2 checked against the Keras model. One model per source of backbones."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import onnxruntime as ort
import pytest
from ai_edge_litert.interpreter import Interpreter

from tests.conftest import images
from tests.export.conftest import SIZE, assert_matches_keras, fresh_images, keras_probabilities

NUM_CLASSES = 5
# ResNets: with random weights and calibrated batch norms their logits stay small. Random
# MobileNetV3s and EfficientNets reach logits in the hundreds, where any two float32 graphs of
# the same model (eager and tf.function alike) differ by about 1e-3 of the scale: a property of
# the random weights that would make a parity check test the weights instead of the export.
SOURCES = ["resnet50v2"]
# int8 on the v1 ResNet; a random pre-activation ResNet50V2 (its residual sum never normalised)
# loses more label agreement under int8 at ui 2 than the exporter allows.
PRECISIONS = {"resnet50v2": ("float32",), "hub_resnet18": ("float32", "int8")}
try:
    import keras_hub  # noqa: F401

    SOURCES.append("hub_resnet18")
except ImportError:
    pass


def _network(backbone, unroll_mode="parallel"):
    from rignet_keras import RIGNet

    return RIGNet(
        NUM_CLASSES,
        backbone=backbone,
        head_filters=32,
        unroll_mode=unroll_mode,
        feedback_blocks=(4, 6),
        num_iterations=2,
    )


@pytest.mark.parametrize("backbone", SOURCES)
def test_every_unroll_mode_and_profile(backbone):
    from rignet_keras.models.rignet import UNROLL_MODES
    from rignet_keras.profile import profile

    x = images(batch=1, height=45, width=53)
    for mode in UNROLL_MODES:
        model = _network(backbone, mode)
        out = keras.ops.convert_to_numpy(model(x, num_iterations=2))
        assert out.shape == (1, 45, 53, NUM_CLASSES), mode
        assert np.isfinite(out).all(), mode
        if model.can_step:
            states = list(model.iterate(x, num_iterations=2))
            assert len(states) == 2, mode
            assert np.isfinite(keras.ops.convert_to_numpy(states[-1].logits)).all(), mode
    model = _network(backbone)
    figures = profile(model, input_size=(64, 64))
    assert figures.macs[2] > figures.macs[1] > 0
    assert figures.parameters == model.count_params() > 0


@pytest.mark.parametrize("backbone", SOURCES)
def test_train_save_load_fresh_process_and_export(backbone, tmp_path):
    from rignet_keras.export import export_model
    from rignet_keras.export.samples import synthetic_images
    from rignet_keras.models.calibration import calibrate_batch_norm
    from rignet_keras.preprocessing import normalize

    model = _network(backbone)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 48, 48, 3)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, size=(2, 48, 48))
    model(x[:1])
    before = [np.array(w) for w in model.trainable_weights]
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True))
    history = model.fit(x, y, epochs=3, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    moved = [
        not np.array_equal(a, np.array(w))
        for a, w in zip(before, model.trainable_weights, strict=True)
    ]
    assert all(moved[:3]) and sum(moved) > 0.9 * len(moved)

    # Decided predictions for the parity checks (see tests/export/conftest.py).
    calibrate_batch_norm(model, normalize(synthetic_images(4, SIZE, seed=100), model.preprocessing))
    probe = images(batch=1, height=41, width=45)
    np.save(tmp_path / "x.npy", probe)
    np.save(tmp_path / "expected.npy", keras.ops.convert_to_numpy(model(probe, training=False)))
    model.save(tmp_path / "model.keras")
    script = textwrap.dedent(
        f"""
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        import keras, numpy as np
        import rignet_keras  # registers the serializable classes
        folder = {str(tmp_path)!r}
        model = keras.models.load_model(os.path.join(folder, "model.keras"), safe_mode=True)
        x = np.load(os.path.join(folder, "x.npy"))
        out = keras.ops.convert_to_numpy(model(x, training=False))
        np.save(os.path.join(folder, "actual.npy"), out)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=600)
    np.testing.assert_allclose(
        np.load(tmp_path / "actual.npy"), np.load(tmp_path / "expected.npy"), atol=1e-5, rtol=0
    )

    # The exporter checks every file against the model itself (strict: past tolerance it raises).
    folder = tmp_path / "export"
    manifest = export_model(
        model,
        folder,
        input_size=SIZE,
        formats=("tflite", "onnx"),
        uis=(1, 2),
        precisions=PRECISIONS[backbone],
        stepwise_precisions=("float32",),
        latency_runs=2,
    )
    signatures = [s for a in manifest["artifacts"] for s in a["signatures"] if "parity" in s]
    assert signatures and all(s["parity"]["passed"] for s in signatures)
    precisions = {a.get("precision") for a in manifest["artifacts"] if a["format"] == "tflite"}
    assert set(PRECISIONS[backbone]) <= precisions
    assert any("step" in {s["name"] for s in a["signatures"]} for a in manifest["artifacts"])

    samples = fresh_images()
    interpreter = Interpreter(str(folder / "rignet_float32.tflite"), num_threads=2)
    for ui in (1, 2):
        reference = keras_probabilities(model, samples, ui)
        runner = interpreter.get_signature_runner(f"ui_{ui}")
        outs = [runner(images=samples[i : i + 1]) for i in range(len(samples))]
        assert_matches_keras(
            reference,
            np.concatenate([o["probabilities"] for o in outs]),
            np.concatenate([o["class_map"] for o in outs]),
            what=f"{backbone} tflite ui_{ui}",
        )
        session = ort.InferenceSession(
            str(folder / f"rignet_ui{ui}.onnx"), providers=["CPUExecutionProvider"]
        )
        names = [o.name for o in session.get_outputs()]
        out = dict(zip(names, session.run(None, {"images": samples}), strict=True))
        assert_matches_keras(
            reference, out["probabilities"], out["class_map"], what=f"{backbone} onnx ui_{ui}"
        )
