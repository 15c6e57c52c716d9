"""Cutting a functional Keras model into RIGNet blocks B1-B5.

Any functional model (a `keras.applications` network, a keras-hub backbone) becomes a RIGNet
backbone by naming the five tensors where its blocks end. `split_model` walks the model's graph
between consecutive cuts and rebuilds each stretch as its own functional `keras.Model` from
copies of the source's layers, so the blocks own their weights and serialise without the source
model (a block is a model of the source's layer classes, nothing else). It refuses cuts that do
not separate the graph: a residual path that jumps over a cut would need a tensor the block is
not given, so the error names the layer that reads it and the layer that makes it.
"""

import dataclasses

import keras
import numpy as np

from rignet_keras.backbones.common import BlockContract, block_input
from rignet_keras.backbones.heads import HEADS, build_head

NUM_CUTS = 5
NATIVE_OUTPUT_STRIDE = 32
# Spatial size (a multiple of 32) at which the blocks' strides are read off their output shapes.
STRIDE_PROBE_SIZE = 256
# Odd sizes at which the chained blocks are checked against the source model's features.
CHECK_SIZE = (67, 61)


def _node_of(tensor):
    """The graph node that produced a symbolic `tensor`."""
    operation, node_index, _ = tensor._keras_history
    return operation._inbound_nodes[node_index]


def _operation_name(tensor):
    return tensor._keras_history[0].name


def _ancestors(tensor):
    """The ids of `tensor` and of every tensor it is computed from."""
    seen, stack = set(), [tensor]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.extend(_node_of(t).input_tensors)
    return seen


def _resolve_cut(model, cut):
    """A cut given as a layer name (its output) or as a symbolic tensor of `model`."""
    if isinstance(cut, str):
        try:
            layer = model.get_layer(cut)
        except ValueError:
            layer = None
        if layer is None:
            raise ValueError(
                f"cut {cut!r}: no layer of that name in model {model.name!r}; cuts are names of "
                "its layers (model.summary() lists them)"
            )
        outputs = layer._inbound_nodes[0].output_tensors if layer._inbound_nodes else []
        if len(layer._inbound_nodes) != 1 or len(outputs) != 1:
            raise ValueError(
                f"cut {cut!r}: layer {cut!r} of model {model.name!r} must be called once with "
                f"one output to be a cut; it has {len(layer._inbound_nodes)} calls"
            )
        return outputs[0]
    if keras.backend.is_keras_tensor(cut):
        return cut
    raise ValueError(f"a cut must be a layer name or a symbolic tensor; received {cut!r}")


def _stretch_nodes(start, end, before_start, block_name, start_name):
    """The nodes between tensor `start` (exclusive) and tensor `end`, in execution order.

    Raises `ValueError` when a node of the stretch reads a tensor computed before `start` (in
    `before_start`) other than `start` itself: a path that crosses the cut.
    """
    order, visited = [], set()
    stack = [(end, _operation_name(end), False)]
    while stack:
        tensor, reader, expanded = stack.pop()
        node = _node_of(tensor)
        if expanded:
            order.append(node)
            continue
        if tensor is start or id(node) in visited:
            continue
        if id(tensor) in before_start:
            raise ValueError(
                f"the cut at {start_name!r} does not separate the graph: layer {reader!r} of "
                f"{block_name} reads {_operation_name(tensor)!r}, which comes before the cut "
                "(a residual path crosses it); move the cut so that no path jumps over it"
            )
        if node.is_input:
            raise ValueError(
                f"{block_name} (from {start_name!r}) reads the input {tensor.name!r}, which is "
                "not the block's own input; the cuts are not in the order of the graph"
            )
        visited.add(id(node))
        stack.append((tensor, reader, True))
        for t in reversed(node.input_tensors):
            stack.append((t, node.operation.name, False))
    return order


def _copy_layer(layer, sync_batch_norm):
    """A new layer of the same class and config as `layer` (stateless operations are shared)."""
    if not isinstance(layer, keras.layers.Layer):
        return layer
    config = layer.get_config()
    if sync_batch_norm and isinstance(layer, keras.layers.BatchNormalization):
        config["synchronized"] = True
    return layer.__class__.from_config(config)


def _rebuild(nodes, start, inputs, sync_batch_norm):
    """Runs copies of `nodes`' layers from `inputs` (standing for `start`); returns the tensor
    map and the (source, copy) layer pairs."""
    tensors, copies = {id(start): inputs}, {}
    for node in nodes:
        source = node.operation
        if id(source) not in copies:
            copies[id(source)] = (source, _copy_layer(source, sync_batch_norm))
        args, kwargs = node.arguments.fill_in(tensors)
        outputs = keras.tree.flatten(copies[id(source)][1](*args, **kwargs))
        for reference, output in zip(node.outputs, outputs, strict=True):
            tensors[id(reference)] = output
    return tensors, list(copies.values())


def split_model(model, cuts, sync_batch_norm=False, check=True):
    """Cuts a functional Keras model into the five blocks B1-B5 of a RIGNet backbone.

    Args:
        model: a built functional `keras.Model` with one image input (B, H, W, 3), built for any
            spatial size (`input_shape=(None, None, 3)`).
        cuts: five cut points, each a layer name of `model` (the block ends at that layer's
            output) or one of its symbolic tensors (e.g. a keras-hub backbone's
            `pyramid_outputs["P3"]`). Block k runs from cut k-1 (the image for B1) to cut k.
        sync_batch_norm: make the copied batch-norm layers synchronise statistics across
            replicas.
        check: run the source model and the chained blocks on a random image of an odd size and
            require equal features at every cut.

    Returns:
        (blocks, contracts): five functional `keras.Model`s "block1"..."block5", each taking
        (B, H, W, C) of any H, W and owning copies of the source layers and weights, and their
        `BlockContract`s (channels, stride).

    Raises:
        ValueError: not five cuts; an unknown layer name; cuts out of graph order; a residual
            path crossing a cut (naming the layers); chained blocks that differ from the model.
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise ValueError(f"split_model needs a functional keras.Model; received {model!r}")
    if len(model.inputs) != 1:
        raise ValueError(
            f"model {model.name!r} has {len(model.inputs)} inputs; a backbone takes one image"
        )
    cuts = list(cuts)
    if len(cuts) != NUM_CUTS:
        raise ValueError(
            f"a RIGNet backbone needs {NUM_CUTS} cuts (the ends of blocks B1-B5); received "
            f"{len(cuts)}: {cuts}"
        )
    ends = [_resolve_cut(model, cut) for cut in cuts]
    names = [
        c if isinstance(c, str) else _operation_name(t) for c, t in zip(cuts, ends, strict=True)
    ]

    blocks, contracts, owners = [], [], {}
    start, start_name = model.inputs[0], "the model input"
    for index, (end, name) in enumerate(zip(ends, names, strict=True), start=1):
        before_start = _ancestors(start)
        if id(end) in before_start:
            raise ValueError(
                f"cut {name!r} (end of B{index}) comes before cut {start_name!r} in the graph; "
                "cuts must follow the graph's order"
            )
        nodes = _stretch_nodes(start, end, before_start - {id(start)}, f"B{index}", start_name)
        inputs = block_input(start.shape[-1], f"block{index}_input")
        tensors, pairs = _rebuild(nodes, start, inputs, sync_batch_norm)
        block = keras.Model(inputs, tensors[id(end)], name=f"block{index}")
        for source, copy in pairs:
            if isinstance(source, keras.layers.Layer) and source.weights:
                if owners.setdefault(id(source), index) != index:
                    raise ValueError(
                        f"layer {source.name!r} is called in B{owners[id(source)]} and in "
                        f"B{index}; blocks cannot share weights, so cut elsewhere"
                    )
                copy.set_weights(source.get_weights())
        blocks.append(block)
        start, start_name = end, name

    size, channels_in = STRIDE_PROBE_SIZE, model.inputs[0].shape[-1]
    spec = keras.KerasTensor((1, size, size, channels_in))
    for index, block in enumerate(blocks, start=1):
        spec = block.compute_output_spec(spec)
        height = spec.shape[1]
        if height is None or size % height:
            raise ValueError(
                f"B{index} (ending at {names[index - 1]!r}) maps {size} pixels to {height}; a "
                "block's stride must divide the input size"
            )
        contracts.append(BlockContract(int(spec.shape[-1]), size // height))
    if check:
        check_blocks_match(model, ends, blocks, names)
    return blocks, contracts


def check_blocks_match(model, ends, blocks, names, size=CHECK_SIZE, seed=0):
    """Requires the chained `blocks` to give `model`'s features at `ends` on a random image."""
    features = keras.Model(model.inputs[0], ends)
    height, width = size
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (1, height, width, model.inputs[0].shape[-1])).astype("float32")
    expected = features(x, training=False)
    for index, (block, reference) in enumerate(zip(blocks, expected, strict=True), start=1):
        x = block(x, training=False)
        a, b = keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(reference)
        scale = max(float(np.abs(b).max()), 1e-6)
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-5 * scale):
            raise ValueError(
                f"B{index} (ending at {names[index - 1]!r}) does not reproduce model "
                f"{model.name!r}'s features at a {height}x{width} input"
            )


def with_head(blocks, contracts, head, num_classes, head_filters=512, sync_batch_norm=False):
    """Appends the head (B6) named `head` ("fcn" or "aspp") to five blocks and their contracts."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}; received {head!r}")
    last = contracts[-1]
    head_block = build_head(head, last.channels, num_classes, head_filters, sync_batch_norm)
    return (
        [*blocks, head_block],
        [*contracts, BlockContract(num_classes, last.stride, last.dilation)],
    )


def split_backbone(
    model, cuts, num_classes, head="fcn", head_filters=512, sync_batch_norm=False, check=True
):
    """The six blocks B1-B6 of a RIGNet from a functional model: `split_model` plus a head.

    The list it returns is a `RIGNet` backbone as it stands:
    `RIGNet(21, backbone=split_backbone(model, cuts, 21)[0], preprocessing="torch")`.

    Returns:
        (blocks, contracts): six Keras models and their `BlockContract`s.
    """
    blocks, contracts = split_model(model, cuts, sync_batch_norm=sync_batch_norm, check=check)
    return with_head(blocks, contracts, head, num_classes, head_filters, sync_batch_norm)


def input_of(model, layer_name):
    """The tensor that layer `layer_name` of `model` reads: a cut where a block's last tensor has
    no stable layer name of its own (an unnamed addition, say)."""
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        layer = None
    if layer is None:
        raise ValueError(f"cut before {layer_name!r}: no layer of that name in {model.name!r}")
    return layer.input


@dataclasses.dataclass(frozen=True)
class SplitBackbone:
    """A registered backbone made by cutting a functional model.

    Attributes:
        source: `source(weights) -> keras.Model`, the functional model to cut, built for any
            spatial size, without its classifier and without preprocessing layers; `weights` is
            None (random), "imagenet" (the published weights, downloaded) or a local file/folder.
        cuts: `cuts(model) -> five cuts` as `split_model` takes them.
        preprocessing: the `rignet_keras.preprocessing` mode the published weights expect.
        weights_from: one line saying where `weights="imagenet"` comes from (for the docs).
    """

    source: object
    cuts: object
    preprocessing: str
    weights_from: str = ""

    def build(self, output_stride=32, sync_batch_norm=False):
        """Five blocks B1-B5 with random weights and their contracts (`split_model`)."""
        if output_stride != NATIVE_OUTPUT_STRIDE:
            raise ValueError(
                f"output_stride={output_stride!r}: a backbone cut from a model keeps its native "
                f"output stride {NATIVE_OUTPUT_STRIDE}"
            )
        model = self.source(None)
        return split_model(model, self.cuts(model), sync_batch_norm=sync_batch_norm)

    def load_weights(self, blocks, weights):
        """Fills B1-B5 of `blocks` from the source model built with `weights`.

        The source is cut again at the same points and its blocks' weights copied in order, so
        nothing depends on layer names the source generates. Returns the number of layers with
        weights filled.
        """
        model = self.source(weights)
        loaded, _ = split_model(model, self.cuts(model), check=False)
        filled = 0
        for index, (target, source) in enumerate(
            zip(blocks[:NUM_CUTS], loaded, strict=True), start=1
        ):
            targets = [layer for layer in target.layers if layer.weights]
            sources = [layer for layer in source.layers if layer.weights]
            if len(targets) != len(sources):
                raise ValueError(
                    f"B{index} has {len(targets)} layers with weights, the loaded model's "
                    f"{len(sources)}; the weights are for another network"
                )
            for dst, src in zip(targets, sources, strict=True):
                src_shapes = [tuple(w.shape) for w in src.weights]
                dst_shapes = [tuple(w.shape) for w in dst.weights]
                if src_shapes != dst_shapes:
                    raise ValueError(
                        f"B{index} layer {dst.name!r}: weight shapes {src_shapes} in the loaded "
                        f"model do not match {dst_shapes}; the weights are for another network"
                    )
                dst.set_weights(src.get_weights())
                filled += 1
        return filled
