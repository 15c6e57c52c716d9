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

import numpy as np
import tensorflow as tf

from rignet_keras.export import manifest as manifest_lib
from rignet_keras.export import parity, quality
from rignet_keras.export.defaults import (
    DEFAULT_FORMATS,
    DEFAULT_LATENCY_RUNS,
    DEFAULT_LATENCY_WARMUP,
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
from rignet_keras.export.layout import (
    DEFAULT_MAX_INPUT_CHANNELS,
    split_wide_convolutions,
    wide_convolutions,
)
from rignet_keras.export.options import check_count, check_export_options
from rignet_keras.export.samples import DEFAULT_SAMPLE_SIZE, collect_images, synthetic_images
from rignet_keras.export.saved_model import check_uis, export_saved_model
from rignet_keras.export.signatures import (
    SERVING_DEFAULT,
    check_input_size,
    check_stepwise,
    image_spec,
    serving_function,
    state_indices,
    state_name,
    stepwise_functions,
)
from rignet_keras.export.tflite import (
    CALIBRATED_PRECISIONS,
    image_samples,
)
from rignet_keras.export.worker import run_isolated, run_job, save_samples
from rignet_keras.models.loading import first_line
from rignet_keras.models.loading import load_rignet as load_saved_rignet
from rignet_keras.models.rignet import RIGNet
from rignet_keras.preprocessing import normalize
from rignet_keras.profile import count_graph_macs, count_graph_parameters
from rignet_keras.runtime import (
    CLASS_MAP,
    IMAGE_INPUT,
    INIT_SIGNATURE,
    PROBABILITIES,
    STEP_SIGNATURE,
    AnytimeSegmenter,
    Segmenter,
    make_interpreter,
    measure_latency,
    ui_signature,
)

KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
WORK_DIR = "_work"

logger = logging.getLogger("rignet_keras.export")


def load_rignet(path, weights=None):
    """Loads a RIGNet from a `.keras` file (safe mode), optionally with other weights.

    Args:
        path: a `.keras` file holding a `RIGNet`.
        weights: None, or a `.weights.h5` file to load into it.

    Raises:
        ValueError: the file does not exist, is not a Keras archive, holds another model, or its
            weights (or `weights`) do not fit the architecture; the message names the file.
    """
    model = load_saved_rignet(path)
    if weights is not None:
        weights = os.fspath(weights)
        if not os.path.isfile(weights):
            raise ValueError(f"weights file {weights!r} does not exist")
        try:
            model.load_weights(weights)
        except Exception as error:  # noqa: BLE001
            raise ValueError(
                f"the weights in {weights!r} do not fit the RIGNet of {path!r}: {first_line(error)}"
            ) from error
    return model


def _probabilities(model, images, num_iterations):
    logits = model(
        normalize(images, model.preprocessing), training=False, num_iterations=num_iterations
    )
    return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1).numpy()


class _Export:
    """The state of one export while it is being built (see `export_model`)."""

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

    # -- helpers --------------------------------------------------------------------------------

    def reference(self, k):
        if k not in self.references:
            self.references[k] = _probabilities(self.model, self.parity_images, k)
        return self.references[k]

    def check(self, figures, precision, what):
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
        info = {"name": name, "ui": ui}
        info.update(self.graph_info.get(name, {}))
        return info

    def file_entry(self, path, fmt, kind, precision, signatures, extra=None):
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

    # -- graph facts ----------------------------------------------------------------------------

    def count_graphs(self):
        """MACs and parameter counts of every signature, from graphs traced at batch 1 (so no
        dimension is unknown); a dynamic-size export is counted at the sample size."""
        size = self.o["input_size"] or self.sample_size
        serving = {**self.ui_names, SERVING_DEFAULT: self.o["serving_ui"]}
        functions = {
            name: (serving_function(self.model, ui), [image_spec(size, 1)])
            for name, ui in serving.items()
            if name in self.ui_names or self.o["serving_ui"] not in self.o["uis"]
        }
        if self.o["stepwise"]:
            pair = stepwise_functions(self.model, size, batch_size=1)
            functions.update({k: pair[k] for k in (INIT_SIGNATURE, STEP_SIGNATURE)})
        for name, (function, signature) in functions.items():
            concrete = tf.function(function, input_signature=signature).get_concrete_function()
            self.graph_info[name] = {
                "macs": count_graph_macs(concrete),
                "graph_parameter_count": count_graph_parameters(concrete),
            }
        if SERVING_DEFAULT not in functions:  # an alias of the serving ui's signature
            self.graph_info[SERVING_DEFAULT] = self.graph_info[ui_signature(self.o["serving_ui"])]
        if self.o["input_size"] is None:
            for name in serving:
                self.graph_info[name]["macs_input_size"] = list(self.sample_size)

    # -- artefacts ------------------------------------------------------------------------------

    def keras_file(self):
        """`model.keras` in the export (formats "keras"), or in the work folder when only the
        isolated ONNX conversions need it."""
        if "keras" in self.o["formats"]:
            self.keras_path = self.path(KERAS_FILE)
        elif "onnx" in self.o["formats"] and self.o["isolate"]:
            self.keras_path = os.path.join(self.work, KERAS_FILE)
        else:
            return
        self.model.save(self.keras_path)
        if "keras" in self.o["formats"]:
            self.file_entry(self.keras_path, "keras", "model", "float32", [])

    def saved_model(self):
        o = self.o
        self.count_graphs()
        keep = "saved_model" in o["formats"]
        if not keep and "tflite" not in o["formats"]:
            return  # nothing converts from it
        path = self.path(SAVED_MODEL_DIR) if keep else os.path.join(self.work, SAVED_MODEL_DIR)
        export_saved_model(
            self.model, path, o["uis"], o["input_size"], o["serving_ui"], o["stepwise"]
        )
        self.saved_model_path = path
        self.tflite_saved_model_path = path
        limit = o["tflite_max_conv_input_channels"]
        if "tflite" in o["formats"] and limit and wide_convolutions(self.model, limit):
            # The TFLite files convert from a SavedModel of their own, traced with the wide
            # convolutions split (`layout.py`), which XNNPACK runs faster (BENCHMARKS.md).
            self.tflite_saved_model_path = os.path.join(self.work, "tflite_saved_model")
            with split_wide_convolutions(self.model, limit):
                export_saved_model(
                    self.model,
                    self.tflite_saved_model_path,
                    o["uis"],
                    o["input_size"],
                    o["serving_ui"],
                    o["stepwise"],
                )
        if not keep:
            return
        loaded = tf.saved_model.load(path)
        x = tf.constant(self.parity_images)
        signatures = []
        for name, ui in list(self.ui_names.items()) + [(SERVING_DEFAULT, o["serving_ui"])]:
            fn = loaded.signatures[name]
            out = fn(**{IMAGE_INPUT: x})
            figures = parity.compare(
                self.reference(ui), out[PROBABILITIES].numpy(), out[CLASS_MAP].numpy()
            )
            info = self.signature_info(name, ui)
            info["parity"] = self.check(figures, "float32", f"{SAVED_MODEL_DIR} {name}")
            one = x[:1]
            info["latency_ms"] = self.latency(lambda fn=fn, one=one: fn(**{IMAGE_INPUT: one}))
            signatures.append(info)
        if o["stepwise"]:
            signatures.extend(self.check_stepwise_saved_model(loaded))
        threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
        self.file_entry(
            path, "saved_model", "ui", "float32", signatures, {"tf_intra_op_threads": threads}
        )

    def check_stepwise_saved_model(self, loaded):
        init, step = loaded.signatures[INIT_SIGNATURE], loaded.signatures[STEP_SIGNATURE]
        out = init(**{IMAGE_INPUT: tf.constant(self.parity_images)})
        state = {k: v for k, v in out.items() if k in self.step_inputs}
        per_k = []
        for k in range(1, self.o["stepwise_iterations"] + 1):
            if k > 1:
                out = step(**state)
                state.update({name: out[name] for name in state if name in out})
            figures = parity.compare(
                self.reference(k), out[PROBABILITIES].numpy(), out[CLASS_MAP].numpy()
            )
            figures = self.check(figures, "float32", f"{SAVED_MODEL_DIR} init+{k - 1} steps")
            per_k.append(dict(num_iterations=k, **figures))
        return [
            dict(self.signature_info(INIT_SIGNATURE, 1), parity=per_k[0]),
            dict(self.signature_info(STEP_SIGNATURE, None), parity_by_iterations=per_k),
        ]

    def calibration_samples(self, signature_keys):
        samples = []
        ui_keys = [k for k in signature_keys if k != STEP_SIGNATURE]
        samples.extend(image_samples(self.calibration_images, ui_keys))
        if STEP_SIGNATURE in signature_keys:
            # The step's inputs are states: the driver's states 1..n - 1 are realistic ones.
            steps = self.o["stepwise_iterations"] - 1
            for image in self.calibration_images if steps else ():
                x = normalize(image[None], self.model.preprocessing)
                for state in self.model.iterate(x, steps, training=False):
                    flat = state.flatten()
                    samples.append(
                        (STEP_SIGNATURE, {state_name(i): flat[i].numpy() for i in self.read})
                    )
        return samples

    def tflite_file(self, path, signature_keys, precision, kind):
        job = {
            "kind": "tflite",
            "saved_model": self.tflite_saved_model_path,
            "signature_keys": list(signature_keys),
            "precision": precision,
            "output": path,
        }
        samples = (
            self.calibration_samples(signature_keys) if precision in CALIBRATED_PRECISIONS else None
        )
        report = self.convert(job, samples)
        interpreter = make_interpreter(path, self.o["threads"])
        name = os.path.basename(path)
        signatures = []
        if kind == "stepwise":
            signatures = self.check_stepwise_tflite(path, interpreter, precision)
        else:
            for key in signature_keys:
                ui = self.ui_names[key]
                segmenter = Segmenter(path, signature=key, interpreter=interpreter)
                outs = [segmenter(image) for image in self.parity_images]
                figures = parity.compare(
                    self.reference(ui),
                    np.stack([p for _, p in outs]),
                    np.stack([c for c, _ in outs]),
                )
                info = self.signature_info(key, ui)
                info["parity"] = self.check(figures, precision, f"{name} {key} ({precision})")
                image = self.parity_images[0]
                info["latency_ms"] = self.latency(lambda s=segmenter, x=image: s(x))
                signatures.append(info)
        extra = {"conversion": report}
        return self.file_entry(path, "tflite", kind, precision, signatures, extra)

    def check_stepwise_tflite(self, path, interpreter, precision):
        anytime = AnytimeSegmenter(path, interpreter=interpreter)
        name = os.path.basename(path)
        runs = []
        for image in self.parity_images:
            out, state = anytime.init(image)
            outputs = [out]
            for _ in range(self.o["stepwise_iterations"] - 1):
                out, state = anytime.step(state)
                outputs.append(out)
            runs.append(outputs)
        per_k = []
        for k in range(1, self.o["stepwise_iterations"] + 1):
            probs = np.concatenate([r[k - 1][PROBABILITIES] for r in runs])
            maps = np.concatenate([r[k - 1][CLASS_MAP] for r in runs])
            figures = parity.compare(self.reference(k), probs, maps)
            figures = self.check(figures, precision, f"{name} init+{k - 1} steps ({precision})")
            per_k.append(dict(num_iterations=k, **figures))
        image = self.parity_images[0]
        _, state = anytime.init(image)
        return [
            dict(
                self.signature_info(INIT_SIGNATURE, 1),
                parity=per_k[0],
                latency_ms=self.latency(lambda: anytime.init(image)),
            ),
            dict(
                self.signature_info(STEP_SIGNATURE, None),
                parity_by_iterations=per_k,
                latency_ms=self.latency(lambda: anytime.step_runner(**state)),
            ),
        ]

    def tflite(self):
        o = self.o
        stem = o["stem"]
        ui_keys = list(self.ui_names)
        for precision in o["precisions"]:
            per_ui = {}
            multi = None
            if "per_ui" in o["tflite_layouts"] or len(ui_keys) == 1:
                for key in ui_keys:
                    ui = self.ui_names[key]
                    path = self.path(f"{stem}_ui{ui}_{precision}.tflite")
                    per_ui[key] = self.tflite_file(path, [key], precision, "ui")
            if "multi" in o["tflite_layouts"] and len(ui_keys) > 1:
                path = self.path(f"{stem}_{precision}.tflite")
                multi = self.tflite_file(path, ui_keys, precision, "ui")
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
                path = self.path(f"{stem}_stepwise_{precision}.tflite")
                self.tflite_file(path, [INIT_SIGNATURE, STEP_SIGNATURE], precision, "stepwise")

    def onnx(self):
        import onnxruntime as ort

        o = self.o
        for key, ui in self.ui_names.items():
            path = self.path(f"{o['stem']}_ui{ui}.onnx")
            job = {
                "kind": "onnx",
                "keras_model": getattr(self, "keras_path", None),
                "ui": ui,
                "input_size": list(o["input_size"]) if o["input_size"] else None,
                "opset": o["opset"],
                "output": path,
            }
            report = self.convert(job)
            options = ort.SessionOptions()
            options.intra_op_num_threads = o["threads"]
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            names = [out.name for out in session.get_outputs()]
            outputs = dict(
                zip(names, session.run(None, {IMAGE_INPUT: self.parity_images}), strict=True)
            )
            figures = parity.compare(self.reference(ui), outputs[PROBABILITIES], outputs[CLASS_MAP])
            info = self.signature_info(key, ui)
            info["parity"] = self.check(figures, "float32", f"{os.path.basename(path)}")
            one = self.parity_images[:1]
            info["latency_ms"] = self.latency(
                lambda s=session, one=one: s.run(None, {IMAGE_INPUT: one})
            )
            from rignet_keras.export.onnx import declared_shapes

            self.file_entry(
                path,
                "onnx",
                "ui",
                "float32",
                [info],
                {
                    "opset": o["opset"],
                    "declared_shapes": declared_shapes(path),
                    "conversion": report,
                },
            )

    # -- the whole export -----------------------------------------------------------------------

    def run(self):
        o = self.o
        self.ui_names = {ui_signature(ui): ui for ui in o["uis"]}
        self.sample_size = o["input_size"] or DEFAULT_SAMPLE_SIZE
        parity_data = o["parity_data"]
        if parity_data is None:
            self.parity_images = synthetic_images(o["num_parity_images"], self.sample_size, 0)
            parity_source = "synthetic (rignet_keras.export.samples.synthetic_images, seed 0)"
        else:
            self.parity_images = collect_images(
                parity_data, o["num_parity_images"], o["input_size"], "parity data"
            )
            parity_source = "caller's data"
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
        if o["stepwise"]:
            self.read, _ = state_indices(self.model)
            self.step_inputs = [state_name(i) for i in self.read]
            o["state_inputs"] = self.step_inputs

        for phase in ("keras_file", "saved_model", "tflite", "onnx"):
            if phase in ("tflite", "onnx") and phase not in o["formats"]:
                continue
            start = time.perf_counter()
            getattr(self, phase)()
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
        out_of_order = manifest_lib.flag_latency_order(self.artifacts)
        for pair in out_of_order:
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

        manifest = manifest_lib.build_manifest(
            self.model,
            o,
            self.artifacts,
            parity_data={
                "source": parity_source,
                "num_images": int(len(self.parity_images)),
                "size": list(self.sample_size),
            },
            calibration_data=(
                {"source": calibration_source, "num_images": int(len(self.calibration_images))}
                if calibrating
                else None
            ),
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
        tflite_layouts: "multi" (one file with every ui as a signature; the default) and/or
            "per_ui" (one file per ui).
        tflite_max_conv_input_channels: the TFLite graphs compute every wider k x k convolution
            (at least twice as many input channels, at least 128 filters) as a sum of
            convolutions over at most this many input channels, which XNNPACK runs faster
            (`rignet_keras.export.layout`); the SavedModel and ONNX files keep the plain layout.
            None: no split. Default 512.
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
