"""Multiply-adds and parameters of a traced serving graph, counted from its TF ops.

Counted: Conv2D (output elements x kernel height x kernel width x input channels / groups),
DepthwiseConv2dNative (output elements x kernel height x kernel width), Conv2DBackpropInput,
MatMul and BatchMatMul. Element-wise ops, pooling, resizing and softmax are left out, as MAC counts
usually do. An unknown batch dimension counts as 1 (the figures are per image).
"""

import numpy as np


def _dims(shape):
    dims = shape.as_list() if shape.rank is not None else None
    if dims is None:
        return None
    if dims and dims[0] is None:
        dims = [1] + dims[1:]
    return dims


def _op_macs(op):
    if op.type in ("Conv2D", "DepthwiseConv2dNative", "Conv2DBackpropInput"):
        out = _dims(op.outputs[0].shape)
        kernel = _dims(op.inputs[1].shape)
        if out is None or kernel is None or None in out or None in kernel:
            return None
        kh, kw, kernel_in, kernel_out = kernel
        if op.type == "DepthwiseConv2dNative":
            return int(np.prod(out)) * kh * kw
        if op.type == "Conv2DBackpropInput":  # a transposed convolution: cost on its input
            inp = _dims(op.inputs[2].shape)
            return None if inp is None or None in inp else int(np.prod(inp)) * kh * kw * kernel_in
        # The kernel's input depth is the per-group depth, so grouped convolutions count right.
        return int(np.prod(out)) * kh * kw * kernel_in
    if op.type in ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
        a = _dims(op.inputs[0].shape)
        out = _dims(op.outputs[0].shape)
        if a is None or out is None or None in a or None in out:
            return None
        transpose = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
        inner = a[-2] if transpose else a[-1]
        return int(np.prod(out)) * inner
    return 0


def _graphs(graph):
    yield graph
    functions = getattr(graph, "_functions", {}) or {}
    for function in list(functions.values()):
        inner = getattr(function, "graph", None)
        if inner is not None:
            yield from _graphs(inner)


def count_macs(concrete_function):
    """Multiply-adds of one call of a traced function (per image).

    Returns:
        An int, or None when a counted op has an unknown shape (dynamic height or width).
    """
    total = 0
    for graph in _graphs(concrete_function.graph):
        for op in graph.get_operations():
            macs = _op_macs(op)
            if macs is None:
                return None
            total += macs
    return int(total)


def count_graph_parameters(concrete_function):
    """The number of weights (variables, batch-norm statistics included) a traced graph reads."""
    return int(sum(int(np.prod(v.shape)) for v in concrete_function.variables))
