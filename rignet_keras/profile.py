"""What a model costs: parameters and multiply-adds per ui, counted from the traced graph.

Users compare models by these numbers; benchmarks divide measured latency by them. MACs are
counted from every convolution and matrix multiply in the TensorFlow graph of one call at a fixed
input size, so they hold for any backbone, custom ones included. Element-wise work (gates'
sigmoid and product, batch norm, resizing) is not counted: it is small and memory-bound.
"""

import dataclasses

import numpy as np
import tensorflow as tf


def _op_macs(op):
    """Multiply-adds of one graph op (0 for ops that are not convolutions or matmuls)."""
    if op.type in ("Conv2D", "DepthwiseConv2dNative"):
        out = op.outputs[0].shape
        kernel = op.inputs[1].shape
        if not out.is_fully_defined() or not kernel.is_fully_defined():
            raise ValueError(f"cannot count MACs of {op.name}: shapes are not static")
        per_output = kernel[0] * kernel[1]
        if op.type == "Conv2D":
            per_output *= kernel[2]
        return int(np.prod(out.as_list())) * int(per_output)
    if op.type in ("MatMul", "BatchMatMulV2"):
        a = op.inputs[0].shape.as_list()
        transpose_a = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
        k = a[-2] if transpose_a else a[-1]
        return int(np.prod(op.outputs[0].shape.as_list())) * int(k)
    return 0


def _graph_macs(graph):
    """Multiply-adds of every op of `graph` and of the functions nested in it."""
    total = sum(_op_macs(op) for op in graph.get_operations())
    # Keras inlines layer calls; anything wrapped in a nested tf.function lives in the library.
    for function in getattr(graph, "_functions", {}).values():
        nested = getattr(function, "graph", None)
        if nested is not None:
            total += _graph_macs(nested)
    return total


def count_macs(model, input_size, num_iterations=None, batch_size=1):
    """Multiply-adds of one call of `model` on images of `input_size` (H, W).

    Args:
        model: a built or unbuilt `RIGNet` (or any Keras model taking `num_iterations`).
        input_size: (H, W).
        num_iterations: the ui to count; None for the model's default.
        batch_size: images per call.

    Returns:
        int, multiply-adds of convolutions and matrix multiplies.
    """
    height, width = input_size
    spec = tf.TensorSpec((batch_size, height, width, 3), tf.float32)

    @tf.function(autograph=False)
    def forward(images):
        if num_iterations is None:
            return model(images, training=False)
        return model(images, training=False, num_iterations=num_iterations)

    concrete = forward.get_concrete_function(spec)
    return _graph_macs(concrete.graph)


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
