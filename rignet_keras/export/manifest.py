"""The export manifest (`manifest.json`): what every exported file holds and how it measured.

Format (version 1; docs/EXPORT.md has an example):
    format, format_version, created, machine, versions
    model: class, source, config, unroll_mode, backbone, feedback_blocks, num_classes,
        default_num_iterations, preprocessing, parameter_count
    input: name, dtype, layout, channels, height, width (None when dynamic), normalization
    outputs: {name: description}
    uis, serving_ui, stepwise: {max_iterations, state_inputs}
    parity_data, calibration_data, quality_data, tolerances, latency: how the figures were
        measured (quality_data: source, num_images, size, metric; None without validation)
        (latency: threads, runs, warmup, batch, statistic, follows_macs, out_of_order)
    artifacts: a list of files, each {file, format, kind ("ui", "stepwise" or "model"),
        precision, input_size, size_bytes, sha256 (files; folders have none), signatures:
        [{name, ui, macs,
        graph_parameter_count, latency_ms: {median_ms, p90_ms, ...}, latency_follows_macs
        (ui signatures with a latency), parity: {max_abs_diff,
        mean_abs_diff, label_agreement, miou_vs_keras, tolerance, passed}, quality: {miou,
        pixel_accuracy, images, source} (with a validation source; a step-wise `step` has
        quality_by_iterations instead)}], ...}

The manifest's names and its reader (`load_manifest`, `select_graph`, ...) are the device
runtime's (`rignet_runtime`, which never imports TensorFlow) and are re-exported here;
the runtime checks each file's `size_bytes` and `sha256` before it runs it.
"""

import json
import os
import platform
import sys

import keras
import tensorflow as tf

from rignet_keras.export.files import atomic_write_bytes
from rignet_keras.export.parity import DEFAULT_TOLERANCES, tolerances_for
from rignet_runtime import (
    CLASS_MAP,
    IMAGE_INPUT,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    PROBABILITIES,
    find_stepwise,
    load_manifest,
    manifest_precisions,
    select_graph,
    sha256_file,
)

__all__ = [
    "LATENCY_ORDER_TOLERANCE",
    "build_manifest",
    "flag_latency_order",
    "find_stepwise",
    "load_manifest",
    "manifest_precisions",
    "path_size",
    "record_file_identities",
    "select_graph",
    "write_manifest",
]


# A graph with more MACs may measure up to this share faster than one with fewer before its
# latency is flagged as out of order (timer noise on a quiet machine stays within it).
LATENCY_ORDER_TOLERANCE = 0.05


def flag_latency_order(artifacts, tolerance=LATENCY_ORDER_TOLERANCE):
    """Flags the ui latencies that do not follow the MACs, in `artifacts` itself.

    Within each format and precision (the graphs `select_graph` chooses among), a ui signature
    with more MACs than another should not measure faster: a budget choice would then prefer
    the larger graph for the wrong reason. Each ui signature with a latency gets
    `latency_follows_macs`: False where it is more than `tolerance` faster than a signature with
    fewer MACs, or slower than one with more, else True.

    Returns:
        A list of {"format", "precision", "more_macs": {file, signature, macs, median_ms},
        "fewer_macs": {...}}, one per pair out of order (empty: the latencies follow the MACs).
    """
    groups = {}
    for artifact in artifacts:
        if artifact.get("kind") != "ui":
            continue
        for signature in artifact.get("signatures", []):
            median = (signature.get("latency_ms") or {}).get("median_ms")
            if median is None or signature.get("macs") is None:
                continue
            key = (artifact["format"], artifact["precision"])
            groups.setdefault(key, []).append((artifact["file"], signature))
    out_of_order = []
    for (fmt, precision), members in groups.items():
        for _, signature in members:
            signature["latency_follows_macs"] = True
        for file_a, a in members:
            for file_b, b in members:
                faster = (
                    b["latency_ms"]["median_ms"] < (1 - tolerance) * a["latency_ms"]["median_ms"]
                )
                if b["macs"] > a["macs"] and faster:
                    a["latency_follows_macs"] = b["latency_follows_macs"] = False
                    out_of_order.append(
                        {
                            "format": fmt,
                            "precision": precision,
                            "more_macs": _latency_point(file_b, b),
                            "fewer_macs": _latency_point(file_a, a),
                        }
                    )
    return out_of_order


def _latency_point(file, signature):
    return {
        "file": file,
        "signature": signature["name"],
        "macs": signature["macs"],
        "median_ms": signature["latency_ms"]["median_ms"],
    }


def path_size(path):
    """The size in bytes of a file, or of every file under a folder."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for folder, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total


def _versions():
    versions = {
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    for module in ("rignet_keras", "tf2onnx", "onnx", "onnxruntime", "ai_edge_litert", "numpy"):
        try:
            versions[module] = __import__(module).__version__
        except (ImportError, AttributeError):
            versions[module] = None
    return versions


def _json_safe(value):
    return json.loads(
        json.dumps(value, default=lambda v: list(v) if isinstance(v, tuple) else str(v))
    )


def _tflite_layout(max_conv_input_channels, gated_batch_norm=None):
    """The manifest's record of the TFLite graphs' layout (`export.layout`): the convolution
    split and how the gated passes' batch-norm statistics apply."""
    if max_conv_input_channels is None:
        note = "convolutions as in the Keras model"
    else:
        note = (
            f"k x k convolutions over {2 * max_conv_input_channels}+ input channels (and 128+ "
            f"filters) are sums over groups of at most {max_conv_input_channels} input channels "
            "(rignet_keras.export.layout)"
        )
    return {
        "max_conv_input_channels": max_conv_input_channels,
        "note": note,
        "gated_batch_norm": gated_batch_norm,
    }


def build_manifest(
    model, options, artifacts, parity_data, calibration_data=None, quality_data=None
):
    """The manifest dict of an export (see the module docstring)."""
    size = options["input_size"]
    out_of_order = flag_latency_order(artifacts)
    measured = any(
        "latency_follows_macs" in signature
        for artifact in artifacts
        for signature in artifact.get("signatures", [])
    )
    stepwise = None
    if options["stepwise"]:
        stepwise = {
            "max_iterations": options["stepwise_iterations"],
            "state_inputs": list(options.get("state_inputs", [])),
        }
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "created": options["created"],
        "machine": {
            "platform": options["machine"],
            "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(),
        },
        "versions": _versions(),
        "model": {
            "class": type(model).__name__,
            "source": options.get("source"),
            "unroll_mode": model.unroll_mode,
            "backbone": model.backbone,
            "feedback_blocks": list(model.feedback_blocks) if model.feedback_blocks else None,
            "num_classes": model.num_classes,
            "default_num_iterations": model.num_iterations,
            "preprocessing": model.preprocessing,
            "parameter_count": int(model.count_params()),
            "config": _json_safe(model.get_config()),
        },
        "input": {
            "name": IMAGE_INPUT,
            "dtype": "uint8",
            "layout": "NHWC",
            "channels": "RGB",
            "height": size[0] if size else None,
            "width": size[1] if size else None,
            "normalization": f"inside the graph ({model.preprocessing!r})",
        },
        "outputs": {
            CLASS_MAP: "int32 (batch, height, width): argmax over classes",
            PROBABILITIES: "float32 (batch, height, width, num_classes): softmax",
        },
        "uis": list(options["uis"]),
        "serving_ui": options["serving_ui"],
        "stepwise": stepwise,
        "tflite_layout": _tflite_layout(
            options.get("tflite_max_conv_input_channels"), options.get("tflite_gated_batch_norm")
        ),
        "parity_data": parity_data,
        "calibration_data": calibration_data,
        "quality_data": quality_data,
        "tolerances": {p: tolerances_for(p, options["tolerances"]) for p in DEFAULT_TOLERANCES},
        "latency": {
            "threads": options["threads"],
            "runs": options["latency_runs"],
            "warmup": options["latency_warmup"],
            "batch": 1,
            "statistic": "median and p90 of wall-clock milliseconds",
            # None: no two ui latencies to compare.
            "follows_macs": (not out_of_order) if measured else None,
            "out_of_order": out_of_order,
        },
        "artifacts": _json_safe(artifacts),
    }


def record_file_identities(manifest, folder):
    """Sets each artifact's `size_bytes` and, for a file, `sha256` from the files in `folder`.

    The runtime refuses to run a file whose size or SHA-256 differ from these.

    Raises:
        FileNotFoundError: naming an artifact that is not in `folder`.
    """
    for artifact in manifest.get("artifacts", []):
        path = os.path.join(folder, artifact["file"])
        if not os.path.exists(path):
            raise FileNotFoundError(f"manifest artifact {artifact['file']!r} is not in {folder!r}")
        artifact["size_bytes"] = path_size(path)
        if os.path.isfile(path):
            artifact["sha256"] = sha256_file(path)
    return manifest


def write_manifest(manifest, folder):
    """Writes `manifest` as `folder/manifest.json` (atomically), with each artifact's size and
    SHA-256 recorded first (`record_file_identities`, in `manifest` itself); returns the path."""
    record_file_identities(manifest, folder)
    path = os.path.join(folder, MANIFEST_NAME)
    clean = {k: v for k, v in manifest.items() if not k.startswith("_")}
    atomic_write_bytes(path, (json.dumps(clean, indent=2) + "\n").encode("utf-8"))
    return path
