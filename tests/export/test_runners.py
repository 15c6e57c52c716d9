"""The per-format runners (`rignet_keras.export.runners`) and the runtime's stepping loop on real
exports: each runner gives what its format's own API gives, and the one loop gives what the
hand-written init-then-steps loop gives, bit for bit."""

import numpy as np
import pytest
import tensorflow as tf

from rignet_keras.export.runners import (
    OnnxGraph,
    SavedModelGraphs,
    TFLiteGraphs,
    open_graphs,
    run_signature,
)
from rignet_runtime import AnytimeSegmenter, Segmenter
from rignet_runtime.stepping import outputs_by_iteration
from tests.harness import fresh_images

ITERATIONS = 3


@pytest.mark.export
def test_anytime_iterate_is_init_then_steps(exports):
    _, _, folder = exports.get("parallel")
    anytime = AnytimeSegmenter(folder / "rignet_stepwise_float32.tflite")
    image = fresh_images(1)[0]
    out, state = anytime.init(image)
    by_hand = [out]
    for _ in range(ITERATIONS - 1):
        out, state = anytime.step(state)
        by_hand.append(out)
    iterated = list(anytime.iterate(image, ITERATIONS))
    assert len(iterated) == ITERATIONS
    for mine, theirs in zip(iterated, by_hand, strict=True):
        assert sorted(mine) == sorted(theirs)
        for name in mine:
            np.testing.assert_array_equal(mine[name], theirs[name])


@pytest.mark.export
def test_tflite_runner_is_the_segmenter(exports):
    _, _, folder = exports.get("parallel")
    path = folder / "rignet_float32.tflite"
    images = fresh_images(3)
    outputs = run_signature(TFLiteGraphs(path), "ui_2", images, batch=2)
    segmenter = Segmenter(path, ui=2)
    alone = [segmenter(image) for image in images]
    np.testing.assert_array_equal(outputs["class_map"], np.stack([c for c, _ in alone]))
    np.testing.assert_array_equal(outputs["probabilities"], np.stack([p for _, p in alone]))


@pytest.mark.export
def test_saved_model_steps_through_the_one_loop(exports):
    _, _, folder = exports.get("parallel")
    images = fresh_images(3)
    loaded = tf.saved_model.load(str(folder / "saved_model"))
    init, step = loaded.signatures["init"], loaded.signatures["step"]
    out = init(images=tf.constant(images))
    state = {k: v for k, v in out.items() if k in set(step.structured_input_signature[1])}
    by_hand = [out]
    for _ in range(ITERATIONS - 1):
        out = step(**state)
        state.update({k: out[k] for k in state if k in out})
        by_hand.append(out)
    graphs = open_graphs(folder / "saved_model", "saved_model")
    assert isinstance(graphs, SavedModelGraphs)
    gathered = outputs_by_iteration(graphs.stepwise(), images, ITERATIONS)
    for mine, theirs in zip(gathered, by_hand, strict=True):
        for name in ("class_map", "probabilities"):
            np.testing.assert_array_equal(mine[name], theirs[name].numpy())
    ui = run_signature(graphs, "ui_2", images, batch=2)
    reference = loaded.signatures["ui_2"](images=tf.constant(images))
    np.testing.assert_array_equal(ui["class_map"], reference["class_map"].numpy())


@pytest.mark.export
def test_onnx_runner_runs_its_one_graph_and_has_no_steps(exports):
    import onnxruntime as ort

    _, _, folder = exports.get("parallel")
    path = folder / "rignet_ui1.onnx"
    images = fresh_images(2)
    graphs = open_graphs(path, "onnx", threads=1)
    assert isinstance(graphs, OnnxGraph)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    reference = dict(zip(names, session.run(None, {"images": images}), strict=True))
    outputs = run_signature(graphs, "ui_1", images, batch=1)
    np.testing.assert_array_equal(outputs["class_map"], reference["class_map"])
    with pytest.raises(ValueError, match="rignet_ui1.onnx.*no step-wise ONNX"):
        graphs.stepwise()


def test_an_unknown_format_is_named(tmp_path):
    with pytest.raises(ValueError, match="no runner for format 'keras'"):
        open_graphs(tmp_path / "model.keras", "keras")
