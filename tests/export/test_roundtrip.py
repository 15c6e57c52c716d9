"""An exported `.keras` reloads (safe mode) and re-exports to the same TFLite outputs; and a
ResNet-18 RIGNet exports with its weights stored once across ui signatures."""

import resource

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import rignet_keras  # noqa: F401  (registers the classes for load_model)
from rignet_keras.export import export_model
from tests.harness import (
    UIS,
    assert_matches_keras,
    fresh_images,
    keras_probabilities,
    tiny_rignet,
)


def _outputs(path, signature, images):
    runner = Interpreter(str(path)).get_signature_runner(signature)
    outs = [runner(images=images[i : i + 1]) for i in range(len(images))]
    return (
        np.concatenate([o["probabilities"] for o in outs]),
        np.concatenate([o["class_map"] for o in outs]),
    )


@pytest.mark.export
def test_reloaded_keras_file_reexports_to_the_same_tflite(exports, tmp_path):
    model, _, folder = exports.get("parallel")
    reloaded = keras.models.load_model(folder / "model.keras", safe_mode=True)
    images = fresh_images(2, seed=31)
    for ui in UIS:
        np.testing.assert_allclose(
            keras_probabilities(reloaded, images, ui),
            keras_probabilities(model, images, ui),
            atol=1e-6,
        )
    manifest = export_model(
        reloaded,
        tmp_path / "again",
        input_size=(65, 71),
        uis=UIS,
        formats=("tflite",),
        tflite_layouts=("multi",),
        stepwise=False,
        latency_runs=0,
    )
    assert manifest["model"]["config"] == _config(model)
    for ui in UIS:
        first = _outputs(folder / "rignet_float32.tflite", f"ui_{ui}", images)
        again = _outputs(tmp_path / "again" / "rignet_float32.tflite", f"ui_{ui}", images)
        np.testing.assert_allclose(again[0], first[0], atol=1e-6, rtol=0)
        np.testing.assert_array_equal(again[1], first[1])


def _config(model):
    import json

    return json.loads(json.dumps(model.get_config(), default=list))


@pytest.mark.export
def test_resnet18_at_97x97_weights_stored_once(tmp_path):
    """A named backbone at another odd size: per-ui files and one all-ui file, float32."""
    peak_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model = tiny_rignet("parallel", backbone="resnet18", head_filters=64, calibrate=True, seed=0)
    size = (97, 97)
    manifest = export_model(
        model,
        tmp_path / "r18",
        input_size=size,
        uis=(1, 2),
        formats=("tflite",),
        tflite_layouts=("multi", "per_ui"),
        stepwise=False,
        latency_runs=2,
    )
    files = {a["file"]: a for a in manifest["artifacts"]}
    single = [files["rignet_ui1_float32.tflite"], files["rignet_ui2_float32.tflite"]]
    both = files["rignet_float32.tflite"]
    # ui 2 holds every weight (ui 1 lacks the gates'); the file with both costs no more.
    assert single[0]["size_bytes"] < single[1]["size_bytes"]
    assert single[1]["size_bytes"] <= both["size_bytes"] <= 1.05 * single[1]["size_bytes"]
    assert both["shared_weights"]["weights_stored_once"]
    images = np.stack(
        [
            tf.image.resize(fresh_images(2, seed=41), size, method="nearest").numpy()[i]
            for i in range(2)
        ]
    ).astype(np.uint8)
    for ui in (1, 2):
        probabilities, class_map = _outputs(
            tmp_path / "r18" / "rignet_float32.tflite", f"ui_{ui}", images
        )
        assert_matches_keras(
            keras_probabilities(model, images, ui),
            probabilities,
            class_map,
            what=f"resnet18 97x97 ui_{ui}",
        )
    # In-process conversions of this size stay well inside a CI machine's memory: the process's
    # peak (which earlier tests in the session may have set) grows by less than 8 GB here.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mb - peak_before_mb < 8000, (peak_before_mb, peak_mb)
