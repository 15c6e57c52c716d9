"""SavedModel, TFLite (float32) and ONNX exports reproduce the Keras model, ui 1-3, every mode.

Checked here independently of the exporter's own parity check: fresh images, each runtime called
directly, compared with `model(normalize(x), num_iterations=k)`, at 65x71 (odd, not a multiple of
the output stride, so bilinear resizing must agree on half-pixel centres everywhere).
"""

import os

import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from tests.harness import (
    ALL_MODES,
    NUM_CLASSES,
    SIZE,
    STEPWISE_MODES,
    UIS,
    assert_matches_keras,
    fresh_images,
    keras_probabilities,
)


def _artifact(manifest, fmt, **match):
    for artifact in manifest["artifacts"]:
        if artifact["format"] == fmt and all(artifact.get(k) == v for k, v in match.items()):
            return artifact
    raise AssertionError(f"no {fmt} artefact matching {match}")


@pytest.mark.export
@pytest.mark.parametrize("mode", ALL_MODES)
def test_every_format_matches_keras(exports, mode):
    model, manifest, folder = exports.get(mode)
    images = fresh_images()
    references = {ui: keras_probabilities(model, images, ui) for ui in UIS}

    # SavedModel: a signature per ui and serving_default (the model's default ui, 3).
    loaded = tf.saved_model.load(str(folder / "saved_model"))
    expected = {f"ui_{ui}" for ui in UIS} | {"serving_default"}
    if mode in STEPWISE_MODES:
        expected |= {"init", "step"}
    assert set(loaded.signatures) == expected
    for ui in UIS:
        out = loaded.signatures[f"ui_{ui}"](images=tf.constant(images))
        assert out["class_map"].dtype == tf.int32
        assert_matches_keras(
            references[ui],
            out["probabilities"],
            out["class_map"],
            what=f"{mode} saved_model ui_{ui}",
        )
    out = loaded.signatures["serving_default"](images=tf.constant(images))
    assert_matches_keras(
        references[3], out["probabilities"], out["class_map"], what=f"{mode} serving_default"
    )

    # TFLite: one file, every ui a signature.
    interpreter = Interpreter(str(folder / "rignet_float32.tflite"), num_threads=2)
    assert set(interpreter.get_signature_list()) == {f"ui_{ui}" for ui in UIS}
    for ui in UIS:
        runner = interpreter.get_signature_runner(f"ui_{ui}")
        outs = [runner(images=images[i : i + 1]) for i in range(len(images))]
        probabilities = np.concatenate([o["probabilities"] for o in outs])
        class_map = np.concatenate([o["class_map"] for o in outs])
        assert_matches_keras(
            references[ui], probabilities, class_map, what=f"{mode} tflite ui_{ui}"
        )

    # ONNX: a file per ui, declared shapes right at the odd size.
    for ui in UIS:
        path = folder / f"rignet_ui{ui}.onnx"
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        declared = {o.name: o.shape for o in session.get_outputs()}
        assert declared["class_map"] == ["batch", *SIZE]
        assert declared["probabilities"] == ["batch", *SIZE, NUM_CLASSES]
        names = [o.name for o in session.get_outputs()]
        out = dict(zip(names, session.run(None, {"images": images}), strict=True))
        assert out["probabilities"].shape == (len(images), *SIZE, NUM_CLASSES)
        assert_matches_keras(
            references[ui], out["probabilities"], out["class_map"], what=f"{mode} onnx ui_{ui}"
        )

    # The exporter's own check agreed, and said so in the manifest.
    for artifact in manifest["artifacts"]:
        for signature in artifact["signatures"]:
            if "parity" in signature:
                assert signature["parity"]["passed"], (artifact["file"], signature["name"])


@pytest.mark.export
def test_onnx_resizes_use_integer_sizes(exports):
    """No ONNX Resize is left with float scales other than 1 (3 * 21.666666 floored to 64 made
    the file declare 64 rows for 65 at odd sizes)."""
    import onnx
    from onnx import numpy_helper

    _, _, folder = exports.get("multi_range")
    proto = onnx.load(str(folder / "rignet_ui3.onnx"))
    initializers = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    resizes = [n for n in proto.graph.node if n.op_type == "Resize"]
    with_sizes = [n for n in resizes if len(n.input) == 4 and n.input[3]]
    assert len(with_sizes) >= 7  # every gate of passes 2 and 3, and the final upsampling
    for node in resizes:
        if node not in with_sizes:
            np.testing.assert_array_equal(initializers[node.input[2]], 1.0, err_msg=node.name)


@pytest.mark.export
def test_manifest_describes_every_file(exports):
    model, manifest, folder = exports.get("parallel")
    assert manifest["model"]["unroll_mode"] == "parallel"
    assert manifest["model"]["parameter_count"] == model.count_params()
    assert manifest["input"]["height"] == SIZE[0] and manifest["input"]["width"] == SIZE[1]
    assert manifest["uis"] == list(UIS) and manifest["serving_ui"] == 3
    files = {a["file"] for a in manifest["artifacts"]}
    assert {
        "model.keras",
        "saved_model",
        "rignet_float32.tflite",
        "rignet_stepwise_float32.tflite",
        "rignet_ui1.onnx",
    } <= files
    for artifact in manifest["artifacts"]:
        assert (folder / artifact["file"]).exists()
        assert artifact["size_bytes"] > 0
        for signature in artifact["signatures"]:
            assert signature["macs"] > 0
            assert signature["graph_parameter_count"] > 0
            if artifact["format"] in ("tflite", "onnx"):
                assert signature["latency_ms"]["median_ms"] > 0
                assert signature["latency_ms"]["threads"] == 2
    # MACs grow with ui and agree with rignet_keras.profile's count of the Keras model.
    tflite = _artifact(manifest, "tflite", kind="ui")
    macs = {s["ui"]: s["macs"] for s in tflite["signatures"]}
    assert macs[1] < macs[2] < macs[3]
    from rignet_keras.profile import count_macs

    assert macs[2] == count_macs(model, SIZE, num_iterations=2)
    # ui 1 never gates: its graph reads fewer weights than ui 2.
    params = {s["ui"]: s["graph_parameter_count"] for s in tflite["signatures"]}
    assert params[1] < params[2] == params[3]
    loaded = __import__("json").loads((folder / "manifest.json").read_text())
    assert loaded["artifacts"] == manifest["artifacts"]


def _tf2onnx_head(num_classes=4, size=(5, 6), out=(17, 23)):
    """The output head as tf2onnx writes it: NCHW logits, resize, softmax and argmax on axis 1,
    a transpose to NHWC probabilities."""
    from onnx import TensorProto, helper, numpy_helper

    sizes = numpy_helper.from_array(np.array(out, np.int64), "sizes")
    nodes = [
        helper.make_node(
            "Resize",
            ["logits", "", "", "sizes"],
            ["r"],
            mode="linear",
            coordinate_transformation_mode="half_pixel",
            axes=[2, 3],
        ),
        helper.make_node("Softmax", ["r"], ["s"], axis=1),
        helper.make_node("Transpose", ["s"], ["probabilities"], perm=[0, 2, 3, 1]),
        helper.make_node("ArgMax", ["r"], ["a"], axis=1, keepdims=0),
        helper.make_node("Cast", ["a"], ["class_map"], to=TensorProto.INT32),
    ]
    graph = helper.make_graph(
        nodes,
        "head",
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, num_classes, *size])],
        [
            helper.make_tensor_value_info("class_map", TensorProto.INT32, [1, *out]),
            helper.make_tensor_value_info(
                "probabilities", TensorProto.FLOAT, [1, *out, num_classes]
            ),
        ],
        initializer=[sizes],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_compare_figures_by_hand():
    from rignet_keras.export.parity import compare

    # Keras classes [[0, 1], [2, 2]]; the export predicts [[0, 2], [2, 2]].
    reference = np.array(
        [[[[0.8, 0.1, 0.1], [0.3, 0.3995, 0.3005]], [[0.1, 0.1, 0.8], [0.2, 0.1, 0.7]]]],
        np.float32,
    )
    class_map = np.array([[[0, 2], [2, 2]]])
    figures = compare(reference, reference, class_map=class_map)
    assert figures["max_abs_diff"] == 0.0
    assert figures["label_agreement"] == 0.75
    assert figures["decided_share"] == 1.0  # 0.3995 - 0.3005 is past the tie margin
    # IoU: class 0 1/1, class 1 0/1, class 2 2/3.
    assert figures["miou_vs_keras"] == pytest.approx((1 + 0 + 2 / 3) / 3)


def test_compare_counts_class_255_of_a_large_label_set():
    from rignet_keras.export.parity import compare

    # 300 classes: class 255 is a class here, not the void label of ground-truth masks.
    reference = np.zeros((1, 1, 2, 300), np.float32)
    reference[0, 0, 0, 255] = reference[0, 0, 1, 7] = 1.0
    figures = compare(reference, reference, class_map=np.array([[[255, 255]]]))
    assert figures["label_agreement"] == 0.5
    # IoU: class 255 1/2 (predicted twice, once right), class 7 0/1.
    assert figures["miou_vs_keras"] == pytest.approx((0.5 + 0.0) / 2)


def test_channels_last_head_computes_the_same_outputs():
    import onnx

    from rignet_keras.export.onnx import channels_last_head

    before = _tf2onnx_head()
    after = channels_last_head(onnx.ModelProto.FromString(before.SerializeToString()))
    onnx.checker.check_model(after)
    ops = {n.op_type: n for n in after.graph.node}
    assert [a.i for a in ops["Softmax"].attribute if a.name == "axis"] == [3]
    assert [a.i for a in ops["ArgMax"].attribute if a.name == "axis"] == [3]
    assert ops["Resize"].input[0] == ops["Transpose"].output[0]  # the small logits move
    assert ops["Transpose"].input[0] == "logits"
    logits = np.random.default_rng(0).normal(size=(1, 4, 5, 6)).astype("float32")
    run = lambda m: ort.InferenceSession(m.SerializeToString()).run(None, {"logits": logits})  # noqa: E731
    (want_map, want_p), (got_map, got_p) = run(before), run(after)
    np.testing.assert_array_equal(got_map, want_map)
    np.testing.assert_allclose(got_p, want_p, rtol=1e-6, atol=1e-7)
    # Anything else is left as it is: here, a softmax over another axis.
    for change in ("softmax_axis", "argmax_keepdims"):
        other = _tf2onnx_head()
        if change == "softmax_axis":
            other.graph.node[1].attribute[0].i = 2
        else:
            other.graph.node[3].attribute[1].i = 1
        unchanged = other.SerializeToString()
        assert channels_last_head(other).SerializeToString() == unchanged, change


@pytest.mark.export
def test_exported_onnx_runs_its_head_channels_last(exports):
    import onnx

    _, _, folder = exports.get("parallel")
    proto = onnx.load(str(folder / "rignet_ui2.onnx"))
    producer = {o: n for n in proto.graph.node for o in n.output}
    softmax = producer["probabilities"]
    assert softmax.op_type == "Softmax" and softmax.attribute[0].i == 3
    assert producer[producer[softmax.input[0]].input[0]].op_type == "Transpose"


@pytest.mark.export
def test_dynamic_size_saved_model_and_onnx(tmp_path):
    """input_size=None: one SavedModel signature and one ONNX file serve any height and width."""
    from rignet_keras.export import export_model
    from rignet_keras.export.samples import synthetic_images
    from tests.harness import tiny_rignet

    model = tiny_rignet("multi_range", backbone="tiny", calibrate=True, seed=0)
    manifest = export_model(
        model,
        tmp_path / "dynamic",
        input_size=None,
        uis=(2,),
        formats=("saved_model", "onnx"),
        latency_runs=0,
    )
    assert manifest["input"]["height"] is None and manifest["stepwise"] is None
    loaded = tf.saved_model.load(str(tmp_path / "dynamic" / "saved_model"))
    session = ort.InferenceSession(
        str(tmp_path / "dynamic" / "rignet_ui2.onnx"), providers=["CPUExecutionProvider"]
    )
    declared = {o.name: o.shape for o in session.get_outputs()}
    assert declared["probabilities"] == ["batch", "height", "width", NUM_CLASSES]
    for size in ((65, 71), (97, 89), (33, 40)):
        images = synthetic_images(2, size, seed=3)
        reference = keras_probabilities(model, images, 2)
        out = loaded.signatures["ui_2"](images=tf.constant(images))
        assert_matches_keras(
            reference, out["probabilities"], out["class_map"], what=f"dynamic saved_model {size}"
        )
        probabilities, class_map = session.run(["probabilities", "class_map"], {"images": images})
        assert_matches_keras(reference, probabilities, class_map, what=f"dynamic onnx {size}")


@pytest.mark.export
def test_onnx_opset_17_declares_odd_sizes_right():
    """Before opset 18 (no Resize `axes`), the sizes are Concat(Slice(Shape(X)), [h, w])."""
    from rignet_keras.export.onnx import convert_onnx, declared_shapes
    from tests.harness import tiny_rignet

    model = tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0)
    proto = convert_onnx(model, 2, SIZE, opset=17)
    assert declared_shapes(proto)["probabilities"] == ["batch", *SIZE, NUM_CLASSES]
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    images = fresh_images()
    probabilities, class_map = session.run(["probabilities", "class_map"], {"images": images})
    assert_matches_keras(
        keras_probabilities(model, images, 2), probabilities, class_map, what="onnx opset 17"
    )


@pytest.mark.export
def test_saved_model_cli_lists_every_signature(exports):
    import shutil
    import subprocess
    import sys

    _, _, folder = exports.get("parallel")
    cli = shutil.which("saved_model_cli") or os.path.join(
        os.path.dirname(sys.executable), "saved_model_cli"
    )
    process = subprocess.run(
        [cli, "show", "--dir", str(folder / "saved_model"), "--all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    for name in ("ui_1", "ui_2", "ui_3", "serving_default", "init", "step"):
        assert f"signature_def['{name}']" in process.stdout
    assert "DT_UINT8" in process.stdout and "(-1, 65, 71, 3)" in process.stdout
