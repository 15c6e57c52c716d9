"""What a model costs: parameters and multiply-adds per ui, counted from the traced graph.

Users compare models by these numbers; benchmarks divide measured latency by them. There is one
counter, `count_graph_macs`, which walks the TensorFlow graph of a traced function (and the
functions nested in it), so it holds for any backbone, custom ones included; `count_macs` traces
one call of a Keras model at a fixed input size and counts that graph; the exporter counts its
serving graphs with `count_graph_macs`.

Counted, per op:
    Conv2D: output elements x kernel height x kernel width x input channels per group (the
        kernel's input depth), so grouped convolutions count right;
    DepthwiseConv2dNative: output elements x kernel height x kernel width;
    Conv2DBackpropInput (a transposed convolution): input elements x kernel height x kernel
        width x output channels;
    MatMul, BatchMatMul (V2, V3): output elements x the contracted dimension.
Element-wise work (gates' sigmoid and product, batch norm), pooling, resizing and softmax are not
counted: they are small and memory-bound, and MAC counts usually leave them out.

Dynamic shapes: an unknown batch dimension counts as one image (an exported serving graph takes
any batch; its figure is per image). Any other unknown dimension of a counted op (a graph traced
with a dynamic height or width) has no count: `count_graph_macs` raises a `ValueError` naming the
op; trace at a fixed input size instead.
"""

import dataclasses

import numpy as np
import tensorflow as tf

CONVOLUTIONS = ("Conv2D", "DepthwiseConv2dNative", "Conv2DBackpropInput")
MATMULS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


def _static_dims(op, tensor):
    """The dimensions of `tensor` as ints, an unknown batch as 1; raises on any other unknown."""
    dims = tensor.shape.as_list() if tensor.shape.rank is not None else None
    if dims and dims[0] is None:
        dims = [1] + dims[1:]
    if dims is None or None in dims:
        raise ValueError(
            f"cannot count the MACs of op {op.name!r} ({op.type}): {tensor.name} has shape "
            f"{tensor.shape}, not static; trace the function at a fixed input size"
        )
    return dims


def _op_macs(op):
    """Multiply-adds of one graph op (0 for ops that are not convolutions or matmuls)."""
    if op.type in CONVOLUTIONS:
        kh, kw, kernel_in, _ = _static_dims(op, op.inputs[1])
        if op.type == "Conv2DBackpropInput":  # inputs: output size, kernel, the input
            return int(np.prod(_static_dims(op, op.inputs[2]))) * kh * kw * kernel_in
        out = int(np.prod(_static_dims(op, op.outputs[0])))
        if op.type == "DepthwiseConv2dNative":
            return out * kh * kw
        return out * kh * kw * kernel_in
    if op.type in MATMULS:
        a = _static_dims(op, op.inputs[0])
        out = int(np.prod(_static_dims(op, op.outputs[0])))
        transpose = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
        return out * (a[-2] if transpose else a[-1])
    return 0


def _graphs(graph):
    """`graph` and the graphs of the functions nested in it (Keras inlines layer calls; anything
    wrapped in a nested `tf.function` lives in the graph's function library)."""
    yield graph
    for function in list((getattr(graph, "_functions", None) or {}).values()):
        nested = getattr(function, "graph", None)
        if nested is not None:
            yield from _graphs(nested)


def count_graph_macs(concrete_function):
    """Multiply-adds of one call of a traced function.

    Args:
        concrete_function: a `tf.types.experimental.ConcreteFunction`.

    Returns:
        int, multiply-adds of its convolutions and matrix multiplies; an unknown batch dimension
        counts as one image.

    Raises:
        ValueError: a counted op has an unknown dimension other than the batch.
    """
    return int(
        sum(_op_macs(op) for g in _graphs(concrete_function.graph) for op in g.get_operations())
    )


def count_graph_parameters(concrete_function):
    """The number of weights (variables, batch-norm statistics included) a traced graph reads."""
    return int(sum(int(np.prod(v.shape)) for v in concrete_function.variables))


def count_macs(model, input_size, num_iterations=None, batch_size=1):
    """Multiply-adds of one call of a Keras model on `batch_size` images of `input_size`.

    Args:
        model: a built or unbuilt `RIGNet` (or any Keras model taking `num_iterations`).
        input_size: (H, W).
        num_iterations: the ui to count; None for the model's default.
        batch_size: images per call.

    Returns:
        int, multiply-adds of convolutions and matrix multiplies (`count_graph_macs`).
    """
    height, width = input_size
    spec = tf.TensorSpec((batch_size, height, width, 3), tf.float32)

    @tf.function(autograph=False)
    def forward(images):
        if num_iterations is None:
            return model(images, training=False)
        return model(images, training=False, num_iterations=num_iterations)

    return count_graph_macs(forward.get_concrete_function(spec))


@dataclasses.dataclass
class ModelProfile:
    """Parameters and per-ui multiply-adds of a model at one input size."""

    input_size: tuple
    parameters: int
    gate_parameters: int
    macs: dict  # {ui: multiply-adds}

    def format(self):
        """A small table for people: parameters, then GMACs and the ratio to ui=1 per ui."""
        lines = [
            f"input {self.input_size[0]}x{self.input_size[1]}: "
            f"{self.parameters / 1e6:.2f} M parameters "
            f"({self.gate_parameters / 1e6:.2f} M in feedback gates)",
            "  ui   GMACs   x ui=1",
        ]
        base = self.macs[min(self.macs)]
        for ui, macs in sorted(self.macs.items()):
            lines.append(f"  {ui:>2}  {macs / 1e9:6.2f}   {macs / base:5.2f}")
        return "\n".join(lines)


def profile(model, input_size=(321, 321), iterations=None):
    """Counts a RIGNet's parameters and multiply-adds for each ui in `iterations`.

    Args:
        model: a `RIGNet`.
        input_size: (H, W) of the images.
        iterations: the ui values; default 1 to the model's `num_iterations`.

    Returns:
        A `ModelProfile`; `print(profile(model).format())` shows it.
    """
    if iterations is None:
        iterations = range(1, model.num_iterations + 1)
    macs = {int(k): count_macs(model, input_size, int(k)) for k in iterations}
    gate_layers = list(model.gates)
    if model.network_feedback is not None:
        gate_layers.append(model.network_feedback)
    return ModelProfile(
        input_size=tuple(input_size),
        parameters=int(model.count_params()),
        gate_parameters=int(sum(layer.count_params() for layer in gate_layers)),
        macs=macs,
    )
