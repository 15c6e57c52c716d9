"""TFLite precisions: float16, dynamic-range int8, full int8, and full int8 with float gates."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from rignet_keras.export import DEFAULT_TOLERANCES, PRECISIONS
from rignet_keras.export.parity import compare
from rignet_keras.export.tflite import tensor_types
from rignet_runtime import AnytimeSegmenter
from tests.harness import UIS, fresh_images, keras_probabilities


def _run(path, signature, images):
    runner = Interpreter(str(path), num_threads=2).get_signature_runner(signature)
    outs = [runner(images=images[i : i + 1]) for i in range(len(images))]
    return (
        np.concatenate([o["probabilities"] for o in outs]),
        np.concatenate([o["class_map"] for o in outs]),
    )


@pytest.mark.export
@pytest.mark.parametrize("precision", PRECISIONS)
def test_precision_within_its_tolerance_for_every_ui(exports, precision):
    model, manifest, folder = exports.get("parallel")
    images = fresh_images(3, seed=11)
    tolerance = DEFAULT_TOLERANCES[precision]
    path = folder / f"rignet_{precision}.tflite"
    for ui in UIS:
        probabilities, class_map = _run(path, f"ui_{ui}", images)
        figures = compare(keras_probabilities(model, images, ui), probabilities, class_map)
        assert figures["max_abs_diff"] <= tolerance["max_abs_diff"], (precision, ui, figures)
        assert figures["decided_label_agreement"] >= tolerance["min_label_agreement"], (
            precision,
            ui,
            figures,
        )
    # The manifest records the accuracy cost of the precision for every ui.
    artifact = next(a for a in manifest["artifacts"] if a["file"] == path.name)
    assert artifact["precision"] == precision
    assert [s["ui"] for s in artifact["signatures"]] == list(UIS)
    for signature in artifact["signatures"]:
        assert signature["parity"]["passed"]
        assert 0.0 <= signature["parity"]["miou_vs_keras"] <= 1.0


@pytest.mark.export
def test_smaller_precisions_make_smaller_files(exports):
    _, manifest, _ = exports.get("parallel")
    size = {
        a["precision"]: a["size_bytes"]
        for a in manifest["artifacts"]
        if a["format"] == "tflite" and a["kind"] == "ui"
    }
    assert size["dynamic_int8"] < size["float16"] < size["float32"]
    assert size["int8"] < size["float16"]
    assert size["int8"] < size["int8_float_gates"]  # the gates' weights stay float32


@pytest.mark.export
def test_float_gates_stay_float_under_full_int8(exports):
    _, _, folder = exports.get("parallel")
    int8 = tensor_types((folder / "rignet_int8.tflite").read_bytes())
    float_gates = tensor_types((folder / "rignet_int8_float_gates.tflite").read_bytes())
    # The sigmoid and the product of every gate (in ui_2 and ui_3: 3 + 6 of each).
    for types, expected in ((int8, "INT8"), (float_gates, "FLOAT32")):
        gate_ops = {n: t for n, t in types.items() if "/Sigmoid" in n or "/mul" in n}
        assert len(gate_ops) >= 12, sorted(types)
        assert set(gate_ops.values()) == {expected}, gate_ops


@pytest.mark.export
def test_int8_stepwise_graphs_track_the_float_model(exports):
    model, manifest, folder = exports.get("parallel")
    images = fresh_images(2, seed=11)
    anytime = AnytimeSegmenter(folder / "rignet_stepwise_int8.tflite")
    tolerance = DEFAULT_TOLERANCES["int8"]
    for image in images:
        out, state = anytime.init(image)
        for k in range(1, 5):
            if k > 1:
                out, state = anytime.step(state)
            figures = compare(
                keras_probabilities(model, image[None], k), out["probabilities"], out["class_map"]
            )
            assert figures["decided_label_agreement"] >= tolerance["min_label_agreement"], (
                k,
                figures,
            )
    assert manifest["calibration_data"]["num_images"] == 8


@pytest.mark.export
def test_float_gates_of_a_graph_without_gates_is_plain_int8(exports):
    """ui 1 never gates: keeping "the gates" in float leaves a fully int8 graph, not an error."""
    from rignet_keras.export.tflite import convert_tflite, image_samples

    _, _, folder = exports.get("parallel")
    samples = image_samples(fresh_images(2), ["ui_1"])
    content = convert_tflite(str(folder / "saved_model"), ["ui_1"], "int8_float_gates", samples)
    assert tensor_types(content) == {}  # no gate tensors at all
    runner = Interpreter(model_content=content).get_signature_runner("ui_1")
    assert runner(images=fresh_images(1))["class_map"].shape == (1, 65, 71)
