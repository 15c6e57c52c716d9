"""The options of `export_model` that do not depend on the model, and their checks.

Every option is checked before any work (`check_export_options`), so a bad value stops an export
in one line naming the option and the value, before a model is traced or a file written.
"""

import math
import re

import numpy as np

from rignet_keras.export import parity
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
from rignet_keras.export.layout import check_max_input_channels
from rignet_keras.export.tflite import PRECISIONS, check_precision

FORMATS = ("keras", "saved_model", "tflite", "onnx")
TFLITE_LAYOUTS = ("multi", "per_ui", "mediapipe")
GATED_BATCH_NORMS = ("corrected", "folded")
# tf2onnx's opsets from the first whose Resize takes integer sizes the way `onnx.py` rewrites.
MIN_ONNX_OPSET = 13
MAX_ONNX_OPSET = 18
# A stem is one plain file name part: no folder separators, no "." or ".." of its own.
STEM_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def check_count(value, name, minimum):
    """`value` if it is an int (not a bool) >= `minimum`, else a ValueError naming `name`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int >= {minimum}; received {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; received {value!r}")
    return int(value)


def check_stem(stem):
    """`stem` if it is a plain file name prefix (`STEM_PATTERN`), else a ValueError naming it:
    a stem with a folder separator or a "." / ".." part would place files outside the export."""
    if not isinstance(stem, str) or not STEM_PATTERN.fullmatch(stem):
        raise ValueError(
            f"stem must be a plain file name prefix (letters, digits, '_', '-', '.'; starting "
            f"with a letter or digit; at most 100 characters); received {stem!r}"
        )
    return stem


def check_opset(opset):
    """`opset` if it is an int in [MIN_ONNX_OPSET, MAX_ONNX_OPSET], else a ValueError."""
    check_count(opset, "opset", MIN_ONNX_OPSET)
    if opset > MAX_ONNX_OPSET:
        raise ValueError(
            f"opset must be an int from {MIN_ONNX_OPSET} to {MAX_ONNX_OPSET}; received {opset!r}"
        )
    return int(opset)


def check_tolerances(tolerances):
    """`tolerances` if None or {precision: {"max_abs_diff": float >= 0, "min_label_agreement":
    float in [0, 1]}} (either key may be left out); a ValueError naming the bad key otherwise."""
    if tolerances is None:
        return None
    if not isinstance(tolerances, dict):
        raise ValueError(f"tolerances must be a dict or None; received {tolerances!r}")
    for precision, overrides in tolerances.items():
        if precision not in PRECISIONS:
            raise ValueError(f"tolerances[{precision!r}]: precision must be one of {PRECISIONS}")
        if not isinstance(overrides, dict):
            raise ValueError(f"tolerances[{precision!r}] must be a dict; received {overrides!r}")
        parity.tolerances_for(precision, tolerances)  # unknown keys
        for key, value in overrides.items():
            where = f"tolerances[{precision!r}][{key!r}]"
            number = not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
            if not number or not math.isfinite(value):
                raise ValueError(f"{where} must be a finite number; received {value!r}")
            if key == "max_abs_diff" and value < 0:
                raise ValueError(f"{where} must be >= 0; received {value!r}")
            if key == "min_label_agreement" and not 0 <= value <= 1:
                raise ValueError(f"{where} must be in [0, 1]; received {value!r}")
    return tolerances


def check_export_options(
    *,
    formats=DEFAULT_FORMATS,
    precisions=DEFAULT_PRECISIONS,
    tflite_layouts=DEFAULT_TFLITE_LAYOUTS,
    stepwise_precisions=None,
    stepwise_iterations=DEFAULT_STEPWISE_ITERATIONS,
    num_calibration_images=DEFAULT_NUM_CALIBRATION_IMAGES,
    num_parity_images=DEFAULT_NUM_PARITY_IMAGES,
    tolerances=None,
    latency_runs=DEFAULT_LATENCY_RUNS,
    latency_warmup=DEFAULT_LATENCY_WARMUP,
    threads=DEFAULT_THREADS,
    opset=DEFAULT_OPSET,
    tflite_max_conv_input_channels=DEFAULT_MAX_INPUT_CHANNELS,
    tflite_gated_batch_norm=DEFAULT_GATED_BATCH_NORM,
    class_names=None,
    stem=DEFAULT_STEM,
):
    """Checks the options of `export_model` that do not depend on the model, before any work.

    Returns:
        The normalised options (tuples for the sequences).

    Raises:
        ValueError: naming the first bad option and its value.
    """
    formats = tuple(formats)
    if not formats or any(f not in FORMATS for f in formats):
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}; received {formats}")
    layouts = tuple(tflite_layouts)
    if not layouts or any(v not in TFLITE_LAYOUTS for v in layouts):
        raise ValueError(
            f"tflite_layouts must be a non-empty subset of {TFLITE_LAYOUTS}; received {layouts}"
        )
    precisions = tuple(check_precision(p) for p in precisions)
    if not precisions:
        raise ValueError("precisions must name at least one of " + str(PRECISIONS))
    if tflite_gated_batch_norm not in GATED_BATCH_NORMS:
        raise ValueError(
            f"tflite_gated_batch_norm must be one of {GATED_BATCH_NORMS}; received "
            f"{tflite_gated_batch_norm!r}"
        )
    if class_names is not None:
        class_names = tuple(class_names)
        if not class_names or not all(isinstance(n, str) and n.strip() for n in class_names):
            raise ValueError(f"class_names must be non-empty strings; received {class_names!r}")
        if any("\n" in n for n in class_names):
            raise ValueError(f"class_names must hold no line break; received {class_names!r}")
    if stepwise_precisions is not None:
        stepwise_precisions = tuple(check_precision(p) for p in stepwise_precisions)
    return dict(
        formats=formats,
        precisions=precisions,
        tflite_layouts=layouts,
        stepwise_precisions=stepwise_precisions,
        stepwise_iterations=check_count(stepwise_iterations, "stepwise_iterations", 1),
        num_calibration_images=check_count(num_calibration_images, "num_calibration_images", 1),
        num_parity_images=check_count(num_parity_images, "num_parity_images", 1),
        tolerances=check_tolerances(tolerances),
        latency_runs=check_count(latency_runs, "latency_runs", 0),
        latency_warmup=check_count(latency_warmup, "latency_warmup", 0),
        threads=check_count(threads, "threads", 1),
        opset=check_opset(opset),
        tflite_max_conv_input_channels=check_max_input_channels(
            tflite_max_conv_input_channels, "tflite_max_conv_input_channels"
        ),
        tflite_gated_batch_norm=tflite_gated_batch_norm,
        class_names=class_names,
        stem=check_stem(stem),
    )
