"""The export's files, format by format: each written, checked (`checks`) and recorded.

One function per phase of `export_model`, in order: `write_keras` (`model.keras`),
`write_saved_model` (the SavedModel, which the TFLite files convert from, and the graphs' MACs),
`write_tflite` (every precision and layout, and the step-wise files) and `write_onnx` (one file
per ui). Each conversion runs in this process or in a fresh one (`worker`); each written file is
checked against the Keras model and timed right away, and recorded as a manifest artifact
(`_Export.file_entry`). `build` below is the export being built (`exporter._Export`).
"""

import contextlib
import os

import tensorflow as tf

from rignet_keras.export import checks
from rignet_keras.export.graph_facts import count_graphs
from rignet_keras.export.layout import (
    one_kernel_copy,
    split_wide_convolutions,
    wide_convolutions,
)
from rignet_keras.export.runners import OnnxGraph, SavedModelGraphs, TFLiteGraphs
from rignet_keras.export.saved_model import export_saved_model
from rignet_keras.export.signatures import SERVING_DEFAULT
from rignet_keras.export.tflite import CALIBRATED_PRECISIONS
from rignet_runtime import INIT_SIGNATURE, STEP_SIGNATURE

KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"


def write_keras(build):
    """`model.keras` in the export (formats "keras"), or in the work folder when only the
    isolated ONNX conversions need it."""
    o = build.o
    if "keras" in o["formats"]:
        build.keras_path = build.path(KERAS_FILE)
    elif "onnx" in o["formats"] and o["isolate"]:
        build.keras_path = os.path.join(build.work, KERAS_FILE)
    else:
        return
    build.model.save(build.keras_path)
    if "keras" in o["formats"]:
        build.file_entry(build.keras_path, "keras", "model", "float32", [])


def write_saved_model(build):
    """Counts the graphs; writes the SavedModel (kept with formats "saved_model", else in the
    work folder when the TFLite files convert from it) and checks every signature of a kept one.
    The TFLite files convert from a SavedModel traced for them (`tflite_layout`) where the
    layout differs from the plain one."""
    o = build.o
    build.graph_info = count_graphs(build.model, build.ui_names, o, build.sample_size)
    keep = "saved_model" in o["formats"]
    if not keep and "tflite" not in o["formats"]:
        return  # nothing converts from it
    path = build.path(SAVED_MODEL_DIR) if keep else os.path.join(build.work, SAVED_MODEL_DIR)
    saved_model_args = (o["uis"], o["input_size"], o["serving_ui"], o["stepwise"])
    build.tflite_saved_model_path = path
    special = "tflite" in o["formats"] and _tflite_layout_differs(build)
    if keep or not special:
        export_saved_model(build.model, path, *saved_model_args)
    if special:
        build.tflite_saved_model_path = os.path.join(build.work, "tflite_saved_model")
        with tflite_layout(build):
            export_saved_model(build.model, build.tflite_saved_model_path, *saved_model_args)
    if not keep:
        return
    graphs = SavedModelGraphs(path)
    pairs = list(build.ui_names.items()) + [(SERVING_DEFAULT, o["serving_ui"])]
    signatures = checks.check_signatures(
        build, graphs, pairs, "float32", lambda name: f"{SAVED_MODEL_DIR} {name}"
    )
    if o["stepwise"]:
        signatures.extend(
            checks.check_stepwise(
                build,
                graphs.stepwise(),
                "float32",
                lambda k: f"{SAVED_MODEL_DIR} init+{k - 1} steps",
                timed=False,
            )
        )
    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    build.file_entry(
        path, "saved_model", "ui", "float32", signatures, {"tf_intra_op_threads": threads}
    )


def _tflite_layout_differs(build):
    limit = build.o["tflite_max_conv_input_channels"]
    wide = bool(limit and wide_convolutions(build.model, limit))
    corrected = build.o["tflite_gated_batch_norm"] == "corrected"
    return wide or (corrected and getattr(build.model, "pass_statistics", None) is not None)


@contextlib.contextmanager
def tflite_layout(build):
    """The layout the TFLite graphs are traced in: wide convolutions split over input channels,
    which XNNPACK runs faster (`layout.split_wide_convolutions`, BENCHMARKS.md), and the gated
    passes' batch norms as a correction of the first pass's, for one copy of each kernel
    (`layout.one_kernel_copy`)."""
    with split_wide_convolutions(build.model, build.o["tflite_max_conv_input_channels"]):
        if build.o["tflite_gated_batch_norm"] != "corrected":
            yield
            return
        with one_kernel_copy(build.model):
            yield


def write_tflite_file(build, path, signature_keys, precision, kind):
    """Converts one TFLite file (`kind` "ui": ui signatures; "stepwise": `init` and `step`),
    checks it and records it; returns its manifest entry."""
    job = {
        "kind": "tflite",
        "saved_model": build.tflite_saved_model_path,
        "signature_keys": list(signature_keys),
        "precision": precision,
        "output": path,
    }
    samples = None
    if precision in CALIBRATED_PRECISIONS:
        samples = build.calibration(signature_keys)
    report = build.convert(job, samples)
    graphs = TFLiteGraphs(path, build.o["threads"])
    name = os.path.basename(path)
    if kind == "stepwise":
        signatures = checks.check_stepwise(
            build,
            graphs.stepwise(),
            precision,
            lambda k: f"{name} init+{k - 1} steps ({precision})",
            timed=True,
        )
    else:
        signatures = checks.check_signatures(
            build,
            graphs,
            [(key, build.ui_names[key]) for key in signature_keys],
            precision,
            lambda key: f"{name} {key} ({precision})",
        )
    return build.file_entry(path, "tflite", kind, precision, signatures, {"conversion": report})


def write_tflite(build):
    """Every TFLite file: per precision, one file per ui ("per_ui", or a single ui), the file
    of every ui ("multi"; with its weights-stored-once figures beside the per-ui files), and
    the step-wise file."""
    o = build.o
    stem = o["stem"]
    ui_keys = list(build.ui_names)
    for precision in o["precisions"]:
        per_ui = {}
        multi = None
        plain = {"per_ui", "multi"} & set(o["tflite_layouts"])
        if "per_ui" in o["tflite_layouts"] or (plain and len(ui_keys) == 1):
            for key in ui_keys:
                ui = build.ui_names[key]
                path = build.path(f"{stem}_ui{ui}_{precision}.tflite")
                per_ui[key] = write_tflite_file(build, path, [key], precision, "ui")
        if "multi" in o["tflite_layouts"] and len(ui_keys) > 1:
            path = build.path(f"{stem}_{precision}.tflite")
            multi = write_tflite_file(build, path, ui_keys, precision, "ui")
        if multi is not None and per_ui:
            sizes = [e["size_bytes"] for e in per_ui.values()]
            multi["shared_weights"] = {
                "all_ui_file_bytes": multi["size_bytes"],
                "largest_single_ui_file_bytes": max(sizes),
                "sum_of_single_ui_files_bytes": sum(sizes),
                # Weights stored once: the all-ui file costs about the largest single one.
                "weights_stored_once": multi["size_bytes"] <= 1.2 * max(sizes),
            }
        if o["stepwise"] and precision in o["stepwise_precisions"]:
            path = build.path(f"{stem}_stepwise_{precision}.tflite")
            write_tflite_file(build, path, [INIT_SIGNATURE, STEP_SIGNATURE], precision, "stepwise")


def write_onnx(build):
    """One float32 ONNX file per ui, checked and recorded with its opset and declared shapes."""
    from rignet_keras.export.onnx import declared_shapes

    o = build.o
    for key, ui in build.ui_names.items():
        path = build.path(f"{o['stem']}_ui{ui}.onnx")
        job = {
            "kind": "onnx",
            "keras_model": getattr(build, "keras_path", None),
            "ui": ui,
            "input_size": list(o["input_size"]) if o["input_size"] else None,
            "opset": o["opset"],
            "output": path,
        }
        report = build.convert(job)
        graphs = OnnxGraph(path, o["threads"])
        name = os.path.basename(path)
        signatures = checks.check_signatures(
            build, graphs, [(key, ui)], "float32", lambda _, name=name: name
        )
        build.file_entry(
            path,
            "onnx",
            "ui",
            "float32",
            signatures,
            {"opset": o["opset"], "declared_shapes": declared_shapes(path), "conversion": report},
        )


def write_mediapipe_files(build):
    """The MediaPipe-ready files (`tflite_layouts` "mediapipe"; `mediapipe_files`)."""
    if "mediapipe" in build.o["tflite_layouts"]:
        from rignet_keras.export.mediapipe_files import write_mediapipe

        write_mediapipe(build, tflite_layout)


# The phases of an export, in order: (name, writer, the format that needs it or None: always).
PHASES = (
    ("keras_file", write_keras, None),
    ("saved_model", write_saved_model, None),
    ("tflite", write_tflite, "tflite"),
    ("mediapipe", write_mediapipe_files, "tflite"),
    ("onnx", write_onnx, "onnx"),
)
