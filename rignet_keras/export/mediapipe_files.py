"""MediaPipe-ready TFLite files (`tflite_layouts` "mediapipe"): one file per ui and precision
that MediaPipe Tasks' `ImageSegmenter` loads as it is.

MediaPipe's segmenter takes a single-subgraph model with one output, and reads the class names
from TFLite metadata. Each file here holds one signature, `ui_<k>`, at batch 1: uint8 RGB
`images` (1, H, W, 3) in, normalised inside the graph; float32 `probabilities` (1, H, W, C), the
per-class scores, out (MediaPipe's confidence masks; its category mask is their argmax). The
segmenter metadata (`segmenter_metadata`) carries the class names, which MediaPipe's `labels`
returns. The graphs are traced in the TFLite files' layout (`artifacts.tflite_layout`), checked
against the Keras model like every file, and recorded in the manifest with kind "mediapipe".
"""

import os

import keras

from rignet_keras.export import checks
from rignet_keras.export.files import atomic_write_bytes
from rignet_keras.export.layout import plain_depthwise_convolutions
from rignet_keras.export.runners import TFLiteGraphs
from rignet_keras.export.segmenter_metadata import metadata_buffer, with_metadata
from rignet_keras.export.signatures import image_spec, serving_function
from rignet_keras.export.tflite import CALIBRATED_PRECISIONS
from rignet_runtime import IMAGE_INPUT, PROBABILITIES, ui_signature

MEDIAPIPE_SAVED_MODEL = "mediapipe_saved_model"


def scores_function(model, ui):
    """uint8 images -> {"probabilities": per-class scores}: the ui's one output."""
    serve = serving_function(model, ui)

    def scores(images):
        return {PROBABILITIES: serve(images)[PROBABILITIES]}

    scores.__name__ = ui_signature(ui)
    return scores


def write_scores_saved_model(model, path, uis, input_size):
    """A SavedModel with a signature `ui_<k>` per ui, batch 1, `probabilities` out."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = [image_spec(input_size, batch_size=1)]
    with plain_depthwise_convolutions(model):
        for ui in uis:
            archive.add_endpoint(ui_signature(ui), scores_function(model, ui), spec)
    archive.write_out(os.path.join(path, ""), verbose=False)


def class_names_of(build):
    """The export's class names (`class_names`), or "class_<i>" by index."""
    names = build.o.get("class_names")
    return list(names) if names else [f"class_{i}" for i in range(build.model.num_classes)]


def write_mediapipe(build, layout):
    """Every MediaPipe-ready file: per precision and ui `<stem>_mediapipe_ui<k>_<precision>
    .tflite`, checked and recorded. `layout` is the TFLite files' tracing context."""
    o = build.o
    saved_model = os.path.join(build.work, MEDIAPIPE_SAVED_MODEL)
    with layout(build):
        write_scores_saved_model(build.model, saved_model, o["uis"], o["input_size"])
    names = class_names_of(build)
    for precision in o["precisions"]:
        for key, ui in build.ui_names.items():
            path = build.path(f"{o['stem']}_mediapipe_ui{ui}_{precision}.tflite")
            job = {
                "kind": "tflite",
                "saved_model": saved_model,
                "signature_keys": [key],
                "precision": precision,
                "output": path,
            }
            samples = build.calibration([key]) if precision in CALIBRATED_PRECISIONS else None
            report = build.convert(job, samples)
            with open(path, "rb") as f:
                content = f.read()
            metadata = metadata_buffer(
                name=f"RIGNet ui {ui} ({precision})",
                description=f"RIGNet semantic segmentation after {ui} iteration(s)",
                input_name=IMAGE_INPUT,
                output_name=PROBABILITIES,
            )
            atomic_write_bytes(path, with_metadata(content, metadata, names))
            graphs = TFLiteGraphs(path, o["threads"])
            name = os.path.basename(path)
            signatures = checks.check_signatures(
                build, graphs, [(key, ui)], precision, lambda k, name=name: f"{name} {k}"
            )
            build.file_entry(
                path,
                "tflite",
                "mediapipe",
                precision,
                signatures,
                {"conversion": report, "labels": names},
            )
