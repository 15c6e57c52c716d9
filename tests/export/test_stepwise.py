"""The step-wise anytime graphs: `init` then k - 1 `step`s equals `model(x, num_iterations=k)`."""

import numpy as np
import pytest
import tensorflow as tf

from rignet_runtime import AnytimeSegmenter
from tests.harness import (
    STEPWISE_MODES,
    assert_matches_keras,
    fresh_images,
    keras_probabilities,
)

MAX_K = 4


def _signature(manifest, file, name):
    for artifact in manifest["artifacts"]:
        if artifact["file"] == file:
            for signature in artifact["signatures"]:
                if signature["name"] == name:
                    return signature
    raise AssertionError(f"{file} has no signature {name}")


@pytest.mark.export
@pytest.mark.parametrize("mode", STEPWISE_MODES)
def test_tflite_steps_reproduce_every_iteration(exports, mode):
    model, manifest, folder = exports.get(mode)
    images = fresh_images()
    anytime = AnytimeSegmenter(folder / "rignet_stepwise_float32.tflite")
    runs = []
    for image in images:
        out, state = anytime.init(image)
        outputs = [out]
        for _ in range(MAX_K - 1):
            out, state = anytime.step(state)
            outputs.append(out)
        runs.append(outputs)
    for k in range(1, MAX_K + 1):
        probabilities = np.concatenate([r[k - 1]["probabilities"] for r in runs])
        class_map = np.concatenate([r[k - 1]["class_map"] for r in runs])
        assert_matches_keras(
            keras_probabilities(model, images, k),
            probabilities,
            class_map,
            what=f"{mode} tflite init + {k - 1} steps",
        )


@pytest.mark.export
@pytest.mark.parametrize("mode", ["parallel", "network_gated"])
def test_saved_model_steps_reproduce_every_iteration(exports, mode):
    model, _, folder = exports.get(mode)
    images = fresh_images()
    loaded = tf.saved_model.load(str(folder / "saved_model"))
    init, step = loaded.signatures["init"], loaded.signatures["step"]
    step_inputs = set(step.structured_input_signature[1])
    out = init(images=tf.constant(images))
    state = {k: v for k, v in out.items() if k in step_inputs}
    for k in range(1, MAX_K + 1):
        if k > 1:
            out = step(**state)
            state.update({k2: out[k2] for k2 in state if k2 in out})
        assert_matches_keras(
            keras_probabilities(model, images, k),
            out["probabilities"],
            out["class_map"],
            what=f"{mode} saved_model init + {k - 1} steps",
        )


@pytest.mark.export
@pytest.mark.parametrize("mode", STEPWISE_MODES)
def test_a_step_never_recomputes_the_last_iteration(exports, mode):
    """init + step costs what ui 2 costs, and the parallel modes' step skips B1-B3."""
    _, manifest, _ = exports.get(mode)
    init = _signature(manifest, "rignet_stepwise_float32.tflite", "init")
    step = _signature(manifest, "rignet_stepwise_float32.tflite", "step")
    ui1 = _signature(manifest, "rignet_float32.tflite", "ui_1")
    ui2 = _signature(manifest, "rignet_float32.tflite", "ui_2")
    assert init["macs"] == ui1["macs"]
    assert init["macs"] + step["macs"] == ui2["macs"]
    if mode in ("parallel", "multi_range"):
        # Gates on <6..4>: the step reads the input of B4 from the state, never the image.
        assert step["macs"] < ui1["macs"]
        assert "state_0" in manifest["stepwise"]["state_inputs"]
    anytime = AnytimeSegmenter(exports.get(mode)[2] / "rignet_stepwise_float32.tflite")
    assert "images" not in anytime.state_inputs


@pytest.mark.export
def test_anytime_run_stops_at_deadline_when_stable_or_at_max(exports):
    model, _, folder = exports.get("parallel")
    image = fresh_images(1)[0]
    anytime = AnytimeSegmenter(folder / "rignet_stepwise_float32.tflite")

    result = anytime.run(image, deadline_ms=1e-3)
    assert result.iterations == 1 and result.stop_reason == "deadline"

    result = anytime.run(image, max_iterations=3, stop_when_stable=False)
    assert result.iterations == 3 and result.stop_reason == "max_iterations"
    assert len(result.step_ms) == 3 and len(result.changed) == 2
    reference = keras_probabilities(model, image[None], 3)
    assert_matches_keras(
        reference,
        result.probabilities[None],
        result.class_map[None],
        what="anytime run, 3 iterations",
    )

    result = anytime.run(image, deadline_ms=1e6, stable_tolerance=1.0)
    assert result.iterations == 2 and result.stop_reason == "stable"


@pytest.mark.parametrize(
    "mode, state_inputs",
    [
        # Gates on <6..4>: [input of B4, B4, B5, B6]; a step reads them all.
        ("parallel", ["state_0", "state_1", "state_2", "state_3"]),
        ("multi_range", ["state_0", "state_1", "state_2", "state_3"]),
        # [images, B1, ..., B6]: a step reads the images and the logits.
        ("network_recurrent", ["state_0", "state_6"]),
        ("network_gated", ["state_0", "state_6"]),
    ],
)
@pytest.mark.export
def test_the_step_state_keeps_its_wire_layout(exports, mode, state_inputs):
    """Exports made before keep running: the step's state tensors are named as they were."""
    _, manifest, folder = exports.get(mode)
    assert manifest["stepwise"]["state_inputs"] == state_inputs
    anytime = AnytimeSegmenter(folder / "rignet_stepwise_float32.tflite")
    assert sorted(anytime.state_inputs) == state_inputs
