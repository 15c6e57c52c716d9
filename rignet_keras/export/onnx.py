"""ONNX export of one ui signature with tf2onnx, with output shapes that are right at odd sizes.

tf2onnx writes a bilinear resize to a static size as `Resize(X, roi, scales)` with float scales
such as 65 / 3 = 21.666666; ONNX shape inference then floors 3 * 21.666666 to 64 and the file
declares a (., 64, 70) output while producing (., 65, 71) (onnxruntime warns on every run). Here
every such `Resize` gets the integer `sizes` instead (opset >= 18 `axes` leaves the batch
dynamic), which is what the TF graph meant, and the declared outputs are set and checked.

tf2onnx also moves the graph's final layout change past the softmax, so that the upsampled
logits, the softmax and the argmax run channels-first at full resolution; onnxruntime's softmax
over a non-last axis transposes internally and took half of a ResNet-50 FCN's time at 512x512
(bench/op_profile.py). `channels_last_head` moves the transpose to the small logits before the
upsampling instead.
"""

import contextlib
import os

import numpy as np
import onnx
import tensorflow as tf
from onnx import helper, numpy_helper

from rignet_keras.export.layout import plain_depthwise_convolutions
from rignet_keras.export.signatures import (
    check_input_size,
    check_rignet,
    image_spec,
    serving_function,
)
from rignet_runtime import CLASS_MAP, IMAGE_INPUT, PROBABILITIES

DEFAULT_OPSET = 18


@contextlib.contextmanager
def _environment(**values):
    """Sets (a string) or unsets (None) environment variables for the block, then restores them."""
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _ConcreteFunctionSource:
    """Lets tf2onnx's `from_function` take an already traced concrete function."""

    def __init__(self, concrete_function):
        self.concrete_function = concrete_function

    def get_concrete_function(self, *args, **kwargs):
        return self.concrete_function


def _erfc_handler(ctx, node, name, args):
    """tf2onnx handler for TensorFlow's `Erfc`, which tf2onnx 1.17 does not convert: ONNX `Erf`,
    then one minus it. TensorFlow writes the exact GELU (ConvNeXt's) as
    0.5 x erfc(-x / sqrt(2)); erfc(z) = 1 - erf(z)."""
    from tf2onnx import utils

    node.type = "Erf"
    output = node.output[0]
    dtype = ctx.get_dtype(output)
    one = ctx.make_const(
        utils.make_name(f"{name}_one"), np.array(1, dtype=utils.map_onnx_to_numpy_type(dtype))
    )
    complement = ctx.insert_new_node_on_output(
        "Sub", output, name=utils.make_name(f"{name}_complement"), inputs=[one.output[0], output]
    )
    ctx.set_dtype(complement.output[0], dtype)
    ctx.copy_shape(output, complement.output[0])
    return node


# TensorFlow ops tf2onnx has no handler for, with ours (tf2onnx's `custom_op_handlers` form).
OP_HANDLERS = {"Erfc": (_erfc_handler, [])}


def convert_onnx(model, num_iterations, input_size=None, batch_size=None, opset=DEFAULT_OPSET):
    """Converts the `ui_<num_iterations>` serving function of a RIGNet to ONNX.

    Args:
        model: a built `RIGNet`.
        num_iterations: the ui.
        input_size: (H, W), or None for dynamic height and width.
        batch_size: None (default) for a dynamic batch.
        opset: the ONNX opset (>= 18 for the static-size fix; 18 by default).

    Returns:
        The `onnx.ModelProto`: input "images" uint8 (batch, H, W, 3); outputs "class_map" int32
        (batch, H, W) and "probabilities" float32 (batch, H, W, C).
    """
    import tf2onnx

    check_rignet(model)
    input_size = check_input_size(input_size)
    spec = image_spec(input_size, batch_size)
    function = tf.function(serving_function(model, num_iterations), input_signature=[spec])
    with plain_depthwise_convolutions(model):  # tf2onnx cannot convert a grouped convolution
        source = _ConcreteFunctionSource(function.get_concrete_function())
    try:
        # tf2onnx deep-copies the whole graph (weights included) before each of its optimisers
        # so that it can skip one that fails; without that safety net conversion takes about
        # half the time. If an optimiser does fail, convert again with the net. tf2onnx 1.17
        # turns the net off whenever the variable is set, whatever its value (it compares the
        # variable's name with "TRUE"), and on when it is unset: so the retry unsets it.
        with _environment(TF2ONNX_CATCH_ERRORS="FALSE"):
            proto, _ = tf2onnx.convert.from_function(
                source, input_signature=[spec], opset=opset, custom_op_handlers=dict(OP_HANDLERS)
            )
    except Exception:  # noqa: BLE001  (any optimiser failure: retry the safe way)
        with _environment(TF2ONNX_CATCH_ERRORS=None):
            proto, _ = tf2onnx.convert.from_function(
                source, input_signature=[spec], opset=opset, custom_op_handlers=dict(OP_HANDLERS)
            )
    proto = channels_last_head(static_resize_sizes(proto))
    return declare_io_shapes(proto, input_size, model.num_classes)


def _dims(value_info):
    dims = []
    for d in value_info.type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else None)
    return dims


def _known_shapes(proto):
    inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    graph = inferred.graph
    shapes = {}
    for vi in list(graph.value_info) + list(graph.input) + list(graph.output):
        if vi.type.tensor_type.HasField("shape"):
            shapes[vi.name] = _dims(vi)
    return shapes


def static_resize_sizes(proto):
    """Rewrites every `Resize(X, roi, scales)` with a static input to resize to integer sizes.

    The sizes are `round(dim * scale)` for the axes whose scale is not 1, which recovers the
    integer size the TF graph resized to (float32 scales are within 1e-6 of it). From opset 18
    they are a constant with the `axes` attribute; before it, `Concat(Slice(Shape(X)), sizes)`
    keeps the leading (batch, channel) dims dynamic. Resizes are fixed one at a time in graph
    order, since shape inference downstream depends on them.
    """
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    initializers = {init.name: init for init in proto.graph.initializer}
    done = set()
    while True:
        target = None
        for index, node in enumerate(proto.graph.node):
            if node.op_type != "Resize" or node.name in done:
                continue
            scales = node.input[2] if len(node.input) > 2 else ""
            has_sizes = len(node.input) > 3 and node.input[3]
            if not scales or has_sizes or scales not in initializers:
                done.add(node.name)
                continue
            target = index
            break
        if target is None:
            used = {name for node in proto.graph.node for name in node.input}
            unused = [i for i in proto.graph.initializer if i.name not in used]
            for init in unused:
                proto.graph.initializer.remove(init)
            return proto
        node = proto.graph.node[target]
        done.add(node.name)
        shape = _known_shapes(proto).get(node.input[0])
        scales = numpy_helper.to_array(initializers[node.input[2]])
        if shape is None or len(shape) != len(scales):
            continue
        axes = [i for i, s in enumerate(scales) if abs(float(s) - 1.0) > 1e-7]
        if not axes or any(shape[i] is None for i in axes):
            continue
        sizes = np.array([int(round(shape[i] * float(scales[i]))) for i in axes], np.int64)
        name = f"{node.name}_static_sizes"
        proto.graph.initializer.append(numpy_helper.from_array(sizes, name))
        initializers[name] = proto.graph.initializer[-1]
        if opset >= 18:
            sizes_input = name
            node.attribute.append(helper.make_attribute("axes", axes))
        else:
            if axes != list(range(len(scales) - len(axes), len(scales))):
                continue  # only trailing spatial axes can be spelled without `axes`
            lead = len(scales) - len(axes)
            prefix = node.name
            bounds = {f"{prefix}_lead_start": [0], f"{prefix}_lead_end": [lead]}
            for key, value in bounds.items():
                proto.graph.initializer.append(
                    numpy_helper.from_array(np.array(value, np.int64), key)
                )
            sizes_input = f"{prefix}_full_sizes"
            new_nodes = [
                helper.make_node(
                    "Shape", [node.input[0]], [f"{prefix}_shape"], name=f"{prefix}_shape"
                ),
                helper.make_node(
                    "Slice", [f"{prefix}_shape", *bounds], [f"{prefix}_lead"], name=f"{prefix}_lead"
                ),
                helper.make_node(
                    "Concat",
                    [f"{prefix}_lead", name],
                    [sizes_input],
                    axis=0,
                    name=f"{prefix}_sizes",
                ),
            ]
            for offset, new_node in enumerate(new_nodes):
                proto.graph.node.insert(target + offset, new_node)
        inputs = [node.input[0], node.input[1], "", sizes_input]
        del node.input[:]
        node.input.extend(inputs)


def _attribute(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _set_attribute(node, name, value):
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(name, value))


def channels_last_head(proto):
    """Runs the upsampling, softmax and argmax of the outputs channels-last.

    The pattern tf2onnx writes, with X the logits (N, C, h, w):
        R = Resize(X, sizes, axes=[2, 3]); probabilities = Transpose(Softmax(R, axis=1),
        [0, 2, 3, 1]); class_map = Cast(ArgMax(R, axis=1))
    becomes
        R' = Resize(Transpose(X, [0, 2, 3, 1]), sizes, axes=[1, 2]);
        probabilities = Softmax(R', axis=3); class_map = Cast(ArgMax(R', axis=3))
    which computes the same values. A graph without the pattern (a dynamic input size, whose
    resize has no static sizes) is returned unchanged.
    """
    graph = proto.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    transpose = producer.get(PROBABILITIES)
    if transpose is None or transpose.op_type != "Transpose":
        return proto
    softmax = producer.get(transpose.input[0])
    if softmax is None or softmax.op_type != "Softmax" or _attribute(softmax, "axis") != 1:
        return proto
    resize = producer.get(softmax.input[0])
    if (
        _attribute(transpose, "perm") != [0, 2, 3, 1]
        or resize is None
        or resize.op_type != "Resize"
        or _attribute(resize, "axes") != [2, 3]
        or len(resize.input) < 4
        or not resize.input[3]
    ):
        return proto
    users = consumers.get(resize.output[0], [])
    argmaxes = [
        n
        for n in users
        if n.op_type == "ArgMax"
        and _attribute(n, "axis") == 1
        and _attribute(n, "keepdims", 1) == 0  # ONNX's default keeps the axis
    ]
    if len(users) != 1 + len(argmaxes) or len(consumers.get(softmax.output[0], [])) != 1:
        return proto

    logits = resize.input[0]
    nhwc = f"{resize.name}_channels_last_input"
    move = helper.make_node(
        "Transpose", [logits], [nhwc], perm=[0, 2, 3, 1], name=f"{resize.name}_channels_last"
    )
    resize.input[0] = nhwc
    _set_attribute(resize, "axes", [1, 2])
    _set_attribute(softmax, "axis", 3)
    softmax.output[0] = PROBABILITIES
    for argmax in argmaxes:
        _set_attribute(argmax, "axis", 3)
    nodes = [n for n in graph.node if n is not transpose]
    nodes.insert(nodes.index(resize), move)
    del graph.node[:]
    graph.node.extend(nodes)
    return proto


def _set_dims(value_info, dims):
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = int(d)


def declare_io_shapes(proto, input_size, num_classes):
    """Names the dynamic dims ("batch", "height", "width") and declares the outputs' shapes.

    Raises:
        ValueError: ONNX shape inference disagrees with the declared output shapes.
    """
    height, width = input_size or ("height", "width")
    expected = {
        IMAGE_INPUT: ["batch", height, width, 3],
        CLASS_MAP: ["batch", height, width],
        PROBABILITIES: ["batch", height, width, num_classes],
    }
    for vi in list(proto.graph.input) + list(proto.graph.output):
        if vi.name in expected:
            _set_dims(vi, expected[vi.name])
    del proto.graph.value_info[:]
    try:
        # Strict inference fails when what the nodes compute disagrees with the declaration.
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except onnx.shape_inference.InferenceError as error:
        raise ValueError(
            f"the ONNX graph's shapes disagree with its declared outputs: {error}"
        ) from error
    onnx.checker.check_model(proto)
    return proto


def declared_shapes(proto_or_path):
    """{name: dims} of an ONNX model's inputs and outputs (None or a name for dynamic dims)."""
    proto = proto_or_path
    if not isinstance(proto, onnx.ModelProto):
        proto = onnx.load(proto_or_path, load_external_data=False)
    shapes = {}
    for vi in list(proto.graph.input) + list(proto.graph.output):
        shapes[vi.name] = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in vi.type.tensor_type.shape.dim
        ]
    return shapes
