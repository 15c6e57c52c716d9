"""TFLite conversion of the exported SavedModel signatures, at several precisions.

Precisions (`PRECISIONS`):
    "float32": no optimisation.
    "float16": float16 weights (half the file; XNNPACK computes in float32 on CPUs).
    "dynamic_int8": int8 weights, activations quantised on the fly (no calibration data).
    "int8": full integer quantisation (int8 weights and activations) calibrated on a
        representative dataset; the uint8 image input and the float32/int32 outputs stay as
        they are (the graph casts and (de)quantises inside).
    "int8_float_gates": "int8" with the feedback gates (their pooling, convolution, resize,
        sigmoid and product: every tensor under a "block<k>_gate" or "network_gate" scope) kept
        in float32: full-int8 is known to hurt sigmoid-then-multiply patterns.

Converting several signatures into one file stores the weights they share once (measured: three
ui signatures cost about as much as the largest alone).
"""

import re

import numpy as np
import tensorflow as tf

from rignet_runtime.wire import IMAGE_INPUT

PRECISIONS = ("float32", "float16", "dynamic_int8", "int8", "int8_float_gates")
CALIBRATED_PRECISIONS = ("int8", "int8_float_gates")
# TFLite tensor names carry the TF name scopes: ".../block4_gate_1/Sigmoid", ".../network_gate/...".
GATE_TENSOR_PATTERN = re.compile(r"(^|/)(block\d+_gate|network_gate)(_\d+)?/")
# How the converter names an op that has no builtin (its ConverterError's text).
_MISSING_OP = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")


def check_precision(precision):
    """Returns `precision` if known; `ValueError` naming the choices otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; received {precision!r}")
    return precision


def tensor_names(model_content):
    """Every tensor name of a TFLite flatbuffer, across all subgraphs (signatures)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(model_content, 0)
    names = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for t in range(subgraph.TensorsLength()):
            name = subgraph.Tensors(t).Name()
            names.append(name.decode() if isinstance(name, bytes) else name)
    return names


def tensor_types(model_content, pattern=GATE_TENSOR_PATTERN):
    """{tensor name: TFLite type name} of the tensors whose name matches `pattern`."""
    from tensorflow.lite.python import schema_py_generated as schema

    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    model = schema.Model.GetRootAsModel(model_content, 0)
    found = {}
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for t in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(t)
            name = tensor.Name().decode()
            if pattern.search(name):
                found[name] = type_names.get(tensor.Type(), str(tensor.Type()))
    return found


def gate_tensor_names(model_content):
    """The names of the feedback gates' tensors in a (float or calibrated) TFLite flatbuffer."""
    return sorted({n for n in tensor_names(model_content) if GATE_TENSOR_PATTERN.search(n)})


def _operator_codes(model_content):
    """(builtin code, custom code or None) of each operator code of a TFLite flatbuffer."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(model_content, 0)
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Codes past 127 live in BuiltinCode; the older int8 field keeps at most 127.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            yield builtin, custom.decode() if isinstance(custom, bytes) else str(custom)
        else:
            yield builtin, None


def operator_names(model_content):
    """The operators of a TFLite flatbuffer, one name per operator code: a builtin's
    `BuiltinOperator` name ("CONV_2D"), a custom op's own code ("FlexConv2D" for a Flex one)."""
    from tensorflow.lite.python import schema_py_generated as schema

    builtin_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if k.isupper()}
    return [
        custom if custom is not None else builtin_names.get(builtin, f"BUILTIN_{builtin}")
        for builtin, custom in _operator_codes(model_content)
    ]


def non_builtin_ops(model_content):
    """The operators of a TFLite flatbuffer that plain LiteRT cannot run: custom ops and
    Flex (select-TF) ops, which are custom ops named "Flex<TF op>" (a builtin newer than this
    schema is still a builtin)."""
    return sorted({custom for _, custom in _operator_codes(model_content) if custom is not None})


def check_builtin_only(model_content, name):
    """Returns `model_content` if every operator is a LiteRT builtin; ValueError naming the file
    and the Flex (select-TF) or custom ops otherwise."""
    ops = non_builtin_ops(model_content)
    if ops:
        flex = [op for op in ops if op.startswith("Flex")]
        kind = "Flex (select-TF)" if len(flex) == len(ops) else "Flex (select-TF) or custom"
        raise ValueError(
            f"{name} needs the {kind} ops {', '.join(ops)}, which LiteRT runs only with "
            "their delegate or kernels: the export writes builtin-only TFLite files"
        )
    return model_content


def calibration_dataset(samples):
    """A TFLite `representative_dataset` callable over a list of (signature, {input: array})."""
    samples = list(samples)
    if not samples:
        raise ValueError("the representative dataset is empty")

    def generate():
        for signature, inputs in samples:
            yield signature, {k: np.asarray(v) for k, v in inputs.items()}

    return generate


def _converter(saved_model_dir, signature_keys, precision, samples):
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=list(signature_keys)
    )
    if precision == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif precision in CALIBRATED_PRECISIONS:
        if samples is None:
            raise ValueError(f"precision {precision!r} needs a representative dataset")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration_dataset(samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def convert_tflite(saved_model_dir, signature_keys, precision="float32", samples=None):
    """Converts SavedModel signatures into one TFLite flatbuffer.

    Args:
        saved_model_dir: a SavedModel written by `export_saved_model`.
        signature_keys: the signatures to hold, e.g. ["ui_1", "ui_2"] or ["init", "step"].
        precision: one of `PRECISIONS`.
        samples: for the calibrated precisions, the representative dataset: a list of
            (signature key, {input name: array}) covering every signature in
            `signature_keys` (see `image_samples`).

    Returns:
        The flatbuffer as bytes.
    """
    check_precision(precision)
    try:
        if precision != "int8_float_gates":
            return _converter(saved_model_dir, signature_keys, precision, samples).convert()
        return _convert_with_float_gates(saved_model_dir, signature_keys, samples)
    except Exception as error:
        ops = sorted(set(_MISSING_OP.findall(str(error))))
        if not ops:
            raise
        raise ValueError(
            f"the SavedModel {saved_model_dir!r} ({', '.join(signature_keys)}) needs the "
            f"TensorFlow ops {', '.join(ops)}, which have no LiteRT builtin (Flex/select-TF "
            "or custom ops): the export writes builtin-only TFLite files"
        ) from None


def _convert_with_float_gates(saved_model_dir, signature_keys, samples):
    """Full int8 except the gates, through the converter's selective quantisation.

    The converter calibrates once (`_experimental_calibrate_only`); the gate tensors are read from
    the calibrated flatbuffer by name, and the quantiser denylists them (the mechanism behind
    `tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=...)`). If those internals
    move in a later TensorFlow, the public `QuantizationDebugger` does the same at the cost of a
    second calibration.
    """
    converter = _converter(saved_model_dir, signature_keys, "int8", samples)
    try:
        from tensorflow.lite.python.convert import mlir_quantize

        converter._experimental_calibrate_only = True
        calibrated = converter.convert()
        # A graph without gates (ui 1, or no feedback blocks) quantises like "int8".
        gates = gate_tensor_names(calibrated)
        return mlir_quantize(calibrated, denylisted_nodes=gates or None)
    except (ImportError, AttributeError, TypeError):
        converter = _converter(saved_model_dir, signature_keys, "int8", samples)
        float_model = _converter(saved_model_dir, signature_keys, "float32", None).convert()
        gates = gate_tensor_names(float_model)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter,
            debug_dataset=lambda: iter(()),
            debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=gates),
        )
        return debugger.get_nondebug_quantized_model()


def image_samples(images, signature_keys, input_name=IMAGE_INPUT):
    """Calibration samples for image signatures: every image (N, H, W, 3) for every signature."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            "representative images must be uint8 (N, H, W, 3); received "
            f"{images.dtype} {images.shape}"
        )
    return [
        (key, {input_name: images[i : i + 1]}) for key in signature_keys for i in range(len(images))
    ]
