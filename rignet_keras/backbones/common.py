"""What every backbone shares: the block contract, output-stride planning and weight transfer."""

import dataclasses

import keras

OUTPUT_STRIDES = (8, 16, 32)


@dataclasses.dataclass(frozen=True)
class BlockContract:
    """Channels, stride and dilation of one block's output: the block contract of
    docs/DESIGN.md (Blocks)."""

    channels: int
    stride: int
    dilation: int = 1


def check_output_stride(output_stride):
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(
            f"output_stride must be one of {OUTPUT_STRIDES}; received {output_stride!r}"
        )


def stage_strides_and_dilations(native_strides, output_stride):
    """Turns each stage's native stride (2 or 1) into (stride, dilation) for an output stride.

    Stages past the point where the running stride reaches `output_stride` keep stride 1 and grow
    their dilation instead (DeepLab's atrous trick), so the receptive field stays that of the
    network at stride 32 and the weights stay the same shapes.

    Args:
        native_strides: the stride of each stage in the stride-32 network, e.g. (2, 1, 2, 2, 2).
        output_stride: 8, 16 or 32.

    Returns:
        A list of (stride, dilation) pairs, one per stage.
    """
    check_output_stride(output_stride)
    running, dilation, plan = 1, 1, []
    for s in native_strides:
        if running * s > output_stride:
            dilation *= s
            plan.append((1, dilation))
        else:
            running *= s
            plan.append((s, dilation))
    return plan


def iter_weighted_layers(layer):
    """Yields every leaf layer with weights inside `layer` (nested models flattened)."""
    children = getattr(layer, "layers", None)
    if children:
        for child in children:
            yield from iter_weighted_layers(child)
    elif layer.weights:
        yield layer


def transfer_weights_by_name(source, targets):
    """Copies weights from `source` (a Keras model) into the layers of `targets` with equal names.

    This is how `keras.applications` ImageNet weights reach our blocks: the blocks use the same
    layer names. Every weighted layer of `targets` must find its namesake with equal shapes.

    Args:
        source: a built Keras model, e.g. `keras.applications.ResNet50(include_top=False)`.
        targets: the blocks (Keras layers or models) to fill.

    Returns:
        The number of layers copied.
    """
    source_layers = {layer.name: layer for layer in iter_weighted_layers(source)}
    copied = 0
    for target in targets:
        for layer in iter_weighted_layers(target):
            src = source_layers.get(layer.name)
            if src is None:
                raise ValueError(
                    f"layer {layer.name!r} of block {target.name!r} has no namesake in "
                    f"{source.name!r}; the weights are not for this backbone"
                )
            src_shapes = [tuple(w.shape) for w in src.weights]
            dst_shapes = [tuple(w.shape) for w in layer.weights]
            if src_shapes != dst_shapes:
                raise ValueError(
                    f"layer {layer.name!r}: weight shapes {src_shapes} in {source.name!r} do not "
                    f"match {dst_shapes}"
                )
            layer.set_weights(src.get_weights())
            copied += 1
    return copied


def block_input(channels, name):
    """A (None, None, channels) input: every block takes any spatial size."""
    return keras.Input(shape=(None, None, channels), name=name)
