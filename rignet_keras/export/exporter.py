"""`export_model`: a RIGNet -> TFLite (and on request Keras, SavedModel, ONNX) files, checked,
with a manifest.

The export is built in a temporary sibling folder and moved into place with `os.replace` only
once every artefact has been written, run on sample images and compared with the Keras model:
an export that fails its parity check (or anything else, a kill included) leaves the previous
`output_dir` whole or nothing there (`rignet_keras.export.files`). Every option is checked
before any work; every file name stays inside the export folder.

Layout of `output_dir` (stem "rignet"); the default export writes what a device needs, the
files marked "default":
    rignet_<precision>.tflite           every ui as a signature (weights stored once); default
    rignet_stepwise_<precision>.tflite  signatures init and step (anytime inference); default
    manifest.json                       what each file holds, sizes, MACs, latency, parity;
                                        always
    model.keras                         the model itself (formats "keras")
    saved_model/                        signatures ui_<k>, serving_default, init/step
                                        (formats "saved_model")
    rignet_ui<k>_<precision>.tflite     one ui per file (tflite_layouts "per_ui")
    rignet_ui<k>.onnx                   one ui per file, float32 (formats "onnx")
"""

import datetime
import logging
import os
import platform
import shutil
import time

import tensorflow as tf

from rignet_keras.export import manifest as manifest_lib
from rignet_keras.export import parity, quality
from rignet_keras.export.artifacts import KERAS_FILE, PHASES, SAVED_MODEL_DIR
from rignet_keras.export.calibration import CalibrationSamples
from rignet_keras.export.defaults import (
    DEFAULT_FORMATS,
    DEFAULT_GATED_BATCH_NORM,
    DEFAULT_LATENCY_RUNS,
    DEFAULT_LATENCY_WARMUP,
    DEFAULT_MAX_INPUT_CHANNELS,
    DEFAULT_NUM_CALIBRATION_IMAGES,
    DEFAULT_NUM_PARITY_IMAGES,
    DEFAULT_OPSET,
    DEFAULT_PRECISIONS,
    DEFAULT_STEM,
    DEFAULT_STEPWISE_ITERATIONS,
    DEFAULT_TFLITE_LAYOUTS,
    DEFAULT_THREADS,
)
from rignet_keras.export.files import atomic_directory, previous_export_reason
from rignet_keras.export.loading import load_rignet
from rignet_keras.export.options import check_count, check_export_options
from rignet_keras.export.samples import DEFAULT_SAMPLE_SIZE, collect_images, synthetic_images
from rignet_keras.export.saved_model import check_uis
from rignet_keras.export.signatures import (
    check_input_size,
    check_stepwise,
    state_indices,
    state_name,
)
from rignet_keras.export.tflite import CALIBRATED_PRECISIONS
from rignet_keras.export.worker import run_isolated, run_job, save_samples
from rignet_keras.models.rignet import RIGNet
from rignet_keras.preprocessing import normalize
from rignet_runtime import measure_latency, ui_signature

__all__ = ["KERAS_FILE", "SAVED_MODEL_DIR", "WORK_DIR", "export_model", "load_rignet"]

WORK_DIR = "_work"

logger = logging.getLogger("rignet_keras.export")


def _probabilities(model, images, num_iterations):
    """The Keras model's softmax (N, H, W, C) on uint8 images (N, H, W, 3): the reference every
    written file is compared with."""
    logits = model(
        normalize(images, model.preprocessing), training=False, num_iterations=num_iterations
    )
    return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1).numpy()


class _Export:
    """The state of one export while it is being built (see `export_model`): its options, the
    sample images, the Keras references, and the artefacts recorded so far. The phases
    (`artifacts.PHASES`) write the files through it; `checks` checks them through it."""

    def __init__(self, model, root, options):
        self.model = model
        self.root = root
        self.o = options
        self.work = os.path.join(root, WORK_DIR)
        os.makedirs(self.work)
        self.artifacts = []
        self.references = {}
        self.graph_info = {}
        self.job_count = 0
        self.read = None  # the flat state entries the step reads (step-wise exports)
        self.calibration = None  # the int8 calibration samples (`calibration.CalibrationSamples`)

    # -- what the phases use --------------------------------------------------------------------

    def reference(self, k):
        """The Keras model's probabilities on the parity images after `k` iterations."""
        if k not in self.references:
            self.references[k] = _probabilities(self.model, self.parity_images, k)
        return self.references[k]

    def check(self, figures, precision, what):
        """Checks parity figures against the precision's tolerance: a failure raises
        `ParityError` (`strict`) or is logged; returns the figures rounded for the manifest."""
        failures = parity.check(
            figures, parity.tolerances_for(precision, self.o["tolerances"]), what
        )
        if failures:
            message = "; ".join(failures)
            if self.o["strict"]:
                raise parity.ParityError(
                    f"parity check failed, export aborted (nothing written to "
                    f"{self.o['output_dir']!r}): {message}"
                )
            logger.warning("parity check failed: %s", message)
        return parity.round_figures(figures)

    def latency(self, call):
        """The latency figures of `call()` (None when `latency_runs` is 0)."""
        if not self.o["latency_runs"]:
            return None
        result = measure_latency(call, runs=self.o["latency_runs"], warmup=self.o["latency_warmup"])
        result["threads"] = self.o["threads"]
        return result

    def path(self, name):
        """`root/name`, refused (ValueError naming it) if it would resolve outside the root."""
        root = os.path.realpath(self.root)
        path = os.path.join(root, name)
        if os.path.commonpath([root, os.path.realpath(path)]) != root or name in ("", "."):
            raise ValueError(f"artefact name {name!r} would leave the export folder")
        return path

    def convert(self, job, samples=None):
        """Runs one conversion job (`worker`), in this process or a fresh one (`isolate`)."""
        self.job_count += 1
        if self.o["isolate"]:
            if samples is not None:
                job["samples"] = save_samples(
                    os.path.join(self.work, f"samples_{self.job_count}.npz"), samples
                )
            report = run_isolated(job, os.path.join(self.work, f"job_{self.job_count}.json"))
        else:
            report = run_job(job, model=self.model, samples=samples)
        logger.info("wrote %s in %.1f s", os.path.basename(job["output"]), report["seconds"])
        return report

    def signature_info(self, name, ui):
        """A signature's manifest entry so far: its name, ui and graph facts."""
        info = {"name": name, "ui": ui}
        info.update(self.graph_info.get(name, {}))
        return info

    def file_entry(self, path, fmt, kind, precision, signatures, extra=None):
        """Records a written file as a manifest artifact; returns the entry."""
        entry = {
            "file": os.path.relpath(path, os.path.realpath(self.root)),
            "format": fmt,
            "kind": kind,
            "precision": precision,
            "input_size": list(self.o["input_size"]) if self.o["input_size"] else None,
            "size_bytes": manifest_lib.path_size(path),
            "signatures": signatures,
        }
        entry.update(extra or {})
        self.artifacts.append(entry)
        return entry

    # -- the whole export -----------------------------------------------------------------------

    def _sample_images(self):
        """Chooses the parity and calibration images; returns their manifest records."""
        o = self.o
        parity_data = o["parity_data"]
        if parity_data is None:
            self.parity_images = synthetic_images(o["num_parity_images"], self.sample_size, 0)
            parity_source = "synthetic (rignet_keras.export.samples.synthetic_images, seed 0)"
        else:
            self.parity_images = collect_images(
                parity_data, o["num_parity_images"], o["input_size"], "parity data"
            )
            parity_source = "caller's data"
        calibration = None
        calibrating = "tflite" in o["formats"] and any(
            p in CALIBRATED_PRECISIONS for p in o["precisions"]
        )
        if calibrating:
            if o["representative_data"] is None:
                self.calibration_images = synthetic_images(
                    o["num_calibration_images"], self.sample_size, 1
                )
                calibration_source = "synthetic (seed 1)"
            else:
                self.calibration_images = collect_images(
                    o["representative_data"],
                    o["num_calibration_images"],
                    o["input_size"],
                    "representative data",
                )
                calibration_source = "caller's data"
            calibration = {
                "source": calibration_source,
                "num_images": int(len(self.calibration_images)),
            }
        parity_record = {
            "source": parity_source,
            "num_images": int(len(self.parity_images)),
            "size": list(self.sample_size),
        }
        return parity_record, calibration

    def _warn_latency_order(self):
        for pair in manifest_lib.flag_latency_order(self.artifacts):
            more, fewer = pair["more_macs"], pair["fewer_macs"]
            logger.warning(
                "latency does not follow the MACs (%s %s): %s %s %.2f ms < %s %s %.2f ms; "
                "the manifest flags it (latency.out_of_order)",
                pair["format"],
                pair["precision"],
                more["file"],
                more["signature"],
                more["median_ms"],
                fewer["file"],
                fewer["signature"],
                fewer["median_ms"],
            )

    def run(self):
        """Writes, checks and records every artefact, then the manifest; returns it."""
        o = self.o
        self.ui_names = {ui_signature(ui): ui for ui in o["uis"]}
        self.sample_size = o["input_size"] or DEFAULT_SAMPLE_SIZE
        parity_data, calibration_data = self._sample_images()
        if o["stepwise"]:
            self.read, _ = state_indices(self.model)
            o["state_inputs"] = [state_name(i) for i in self.read]
        if calibration_data is not None:  # built once per export, reused by every file
            self.calibration = CalibrationSamples(
                self.model, self.calibration_images, self.read, o["stepwise_iterations"]
            )

        for phase, write, needs in PHASES:
            if needs is not None and needs not in o["formats"]:
                continue
            start = time.perf_counter()
            write(self)
            logger.info("%s done in %.1f s", phase, time.perf_counter() - start)
        shutil.rmtree(self.work)
        if o["validation"] is not None:
            start = time.perf_counter()
            quality.evaluate_artifacts(
                self.artifacts,
                self.root,
                o["validation"],
                self.model.num_classes,
                o["stepwise_iterations"],
                o["threads"],
            )
            logger.info("quality measured in %.1f s", time.perf_counter() - start)
        self._warn_latency_order()

        manifest = manifest_lib.build_manifest(
            self.model,
            o,
            self.artifacts,
            parity_data=parity_data,
            calibration_data=calibration_data,
            quality_data=(
                quality.quality_data(o["validation"]) if o["validation"] is not None else None
            ),
        )
        manifest_lib.write_manifest(manifest, self.root)
        return manifest


def export_model(
    model,
    output_dir,
    *,
    input_size,
    uis=None,
    serving_ui=None,
    formats=DEFAULT_FORMATS,
    precisions=DEFAULT_PRECISIONS,
    tflite_layouts=DEFAULT_TFLITE_LAYOUTS,
    tflite_max_conv_input_channels=DEFAULT_MAX_INPUT_CHANNELS,
    tflite_gated_batch_norm=DEFAULT_GATED_BATCH_NORM,
    class_names=None,
    stepwise=None,
    stepwise_iterations=DEFAULT_STEPWISE_ITERATIONS,
    stepwise_precisions=None,
    representative_data=None,
    num_calibration_images=DEFAULT_NUM_CALIBRATION_IMAGES,
    parity_data=None,
    num_parity_images=DEFAULT_NUM_PARITY_IMAGES,
    tolerances=None,
    strict=True,
    latency_runs=DEFAULT_LATENCY_RUNS,
    latency_warmup=DEFAULT_LATENCY_WARMUP,
    threads=DEFAULT_THREADS,
    opset=DEFAULT_OPSET,
    isolate=False,
    overwrite=False,
    stem=DEFAULT_STEM,
    source=None,
    validation=None,
    num_validation_images=quality.DEFAULT_VALIDATION_IMAGES,
):
    """Exports a RIGNet to TFLite (and on request Keras, SavedModel, ONNX), checks every file,
    writes a manifest.

    Every option is checked before any work (a `.keras` path is loaded only then). Every
    artefact is run on sample images right after it is written and compared with the Keras
    model (`parity`); past its precision's tolerance the export fails with `ParityError` and
    nothing is left at `output_dir`. The figures go into `manifest.json`.

    Args:
        model: a `RIGNet`, or the path of a `.keras` file holding one.
        output_dir: the export folder (must not exist unless `overwrite`).
        input_size: (H, W) of the graphs (an int for a square); None for dynamic height and width
            (SavedModel and ONNX only).
        uis: the numbers of iterations to export, one signature (and per-ui file) each;
            default 1..model.num_iterations.
        serving_ui: the ui of `serving_default`; default the model's `num_iterations` if
            exported, else the largest ui.
        formats: a non-empty subset of ("keras", "saved_model", "tflite", "onnx"). Default
            ("tflite",): what a device needs (with `tflite_layouts` ("multi",): one file holding
            every ui, the step-wise file, the manifest).
        precisions: TFLite precisions, a subset of `rignet_keras.export.tflite.PRECISIONS`:
            "float32", "float16", "dynamic_int8", "int8", "int8_float_gates".
        tflite_layouts: "multi" (one file with every ui as a signature; the default), "per_ui"
            (one file per ui) and/or "mediapipe" (one file per ui that MediaPipe Tasks'
            `ImageSegmenter` loads: one output, the per-class scores, and segmenter metadata
            with `class_names`; `rignet_keras.export.mediapipe_files`).
        class_names: the names of the model's classes, by index, for the MediaPipe files'
            labels; None: "class_<i>".
        tflite_max_conv_input_channels: the TFLite graphs compute every wider k x k convolution
            (at least twice as many input channels, at least 128 filters) as a sum of
            convolutions over at most this many input channels, which XNNPACK runs faster
            (`rignet_keras.export.layout`); the SavedModel and ONNX files keep the plain layout.
            None: no split. Default 512.
        tflite_gated_batch_norm: how the TFLite graphs apply the batch-norm statistics of the
            gated passes (`recurrent_batch_norm="gated_passes"`): "corrected" (default: the
            first pass's statistics folded into one copy of each kernel, a per-channel
            correction on the gated passes; `layout.one_kernel_copy`) or "folded" (each pass's
            folded into a kernel copy of its own: about twice the file).
        stepwise: write the step-wise `init`/`step` graphs; None: whenever the model supports
            them (parallel, multi_range and network-wide modes) and `input_size` is fixed.
        stepwise_iterations: the step-wise graphs are checked for 1..this many iterations.
        stepwise_precisions: the precisions of the step-wise files; None: all of `precisions`.
        representative_data: calibration images for the int8 precisions: any iterable of uint8
            images (H, W, 3) or (N, H, W, 3) at `input_size`; None: synthetic images.
        num_calibration_images: how many of them to use (>= 1).
        parity_data, num_parity_images: the images parity is checked on (same forms; >= 1);
            None: synthetic images.
        tolerances: {precision: {"max_abs_diff": float >= 0, "min_label_agreement": float in
            [0, 1]}} to override `rignet_keras.export.parity.DEFAULT_TOLERANCES`.
        strict: fail on a parity violation (default); False records it in the manifest only.
        latency_runs: timed runs per signature for the manifest's latency (0: none).
        latency_warmup: untimed runs before them (a cold start, thread pools, weight packing).
        threads: threads for TFLite and onnxruntime (and the latency figures). Default 2.
        opset: the ONNX opset, `MIN_ONNX_OPSET`..`MAX_ONNX_OPSET`. Default 18.
        isolate: run every conversion in a fresh process, so that a large model's conversion
            peak memory goes back to the system when it ends.
        overwrite: replace an existing `output_dir`.
        stem: the file name prefix, a plain name (`STEM_PATTERN`). source: a note of where the
            model came from (its path).
        validation: a validation source whose images every exported file is scored on (mIoU
            and pixel accuracy per signature and per step-wise iteration, in the manifest's
            "quality"; `rignet_keras.export.quality`): a VOC-layout folder (its val split),
            "synthetic", a `SyntheticConfig`, or (images, labels) arrays. None: no quality.
        num_validation_images: how many of its images to use (the first ones).

    Returns:
        The manifest dict (also written to `output_dir/manifest.json`).

    Raises:
        ValueError: a bad option (named, with its value), before anything is loaded or written.
        FileExistsError: `output_dir` exists and `overwrite` is False.
        ParityError: a file disagrees with the Keras model past its tolerance (`strict`).
    """
    checked = check_export_options(
        formats=formats,
        precisions=precisions,
        tflite_layouts=tflite_layouts,
        stepwise_precisions=stepwise_precisions,
        stepwise_iterations=stepwise_iterations,
        num_calibration_images=num_calibration_images,
        num_parity_images=num_parity_images,
        tolerances=tolerances,
        latency_runs=latency_runs,
        latency_warmup=latency_warmup,
        threads=threads,
        opset=opset,
        tflite_max_conv_input_channels=tflite_max_conv_input_channels,
        tflite_gated_batch_norm=tflite_gated_batch_norm,
        class_names=class_names,
        stem=stem,
    )
    formats = checked["formats"]
    input_size = check_input_size(input_size)
    if input_size is None and "tflite" in formats:
        raise ValueError("TFLite graphs need a fixed input_size (height, width); received None")
    if stepwise and input_size is None:
        raise ValueError("step-wise graphs need a fixed input_size (height, width)")
    if serving_ui is not None:
        serving_ui = check_count(serving_ui, "serving_ui", 1)
    check_count(num_validation_images, "num_validation_images", 1)
    if validation is not None and input_size is None:
        raise ValueError("a validation source needs a fixed input_size (height, width)")
    if isinstance(model, (str, os.PathLike)):
        source = source or os.fspath(model)
        model = load_rignet(model)
    if not isinstance(model, RIGNet):
        raise TypeError(
            f"model must be a rignet_keras.RIGNet or a .keras path; received {type(model).__name__}"
        )
    uis = check_uis(uis, model)
    names = checked["class_names"]
    if names is not None and len(names) != model.num_classes:
        raise ValueError(
            f"class_names has {len(names)} names; the model has num_classes={model.num_classes}"
        )
    if serving_ui is None:
        serving_ui = model.num_iterations if model.num_iterations in uis else max(uis)
    if stepwise is None:
        stepwise = model.can_step and input_size is not None and "tflite" in formats
    elif stepwise:
        check_stepwise(model)
    if validation is not None:
        validation = quality.collect_validation(
            validation, input_size, model.num_classes, num_validation_images
        )
    if checked["stepwise_precisions"] is None:
        checked["stepwise_precisions"] = checked["precisions"]
    if not model.built:
        model.build((None,) + (input_size or (None, None)) + (3,))

    options = dict(
        checked,
        output_dir=os.path.abspath(os.fspath(output_dir)),
        input_size=input_size,
        uis=uis,
        serving_ui=serving_ui,
        stepwise=bool(stepwise),
        representative_data=representative_data,
        parity_data=parity_data,
        validation=validation,
        strict=strict,
        isolate=isolate,
        source=source,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        machine=platform.platform(),
    )
    with atomic_directory(output_dir, overwrite, previous_export_reason) as root:
        manifest = _Export(model, root, options).run()
    manifest["_dir"] = options["output_dir"]
    return manifest
