"""Graph layouts for the converters: wide convolutions split over input channels, and depthwise
convolutions written as grouped ones traced as depthwise ones.

XNNPACK (TFLite's CPU runtime) runs a 3x3 convolution with thousands of input channels on a
small map well below its peak, and the same work as several convolutions over a few hundred
input channels each, summed, much closer to it (the FCN head's 3x3 2048 -> 512 and the gates'
wide convolutions; BENCHMARKS.md, "Where the time goes", measures it with
`bench/op_profile.py` and `bench/wide_convolutions.py`). The sum is the same convolution:
conv(x, k) = sum_i conv(x[..., c_i], k[:, :, c_i, :]). `split_wide_convolutions` makes a model
trace that way, so that the TFLite graphs get the split layout; the Keras model is unchanged
outside the context.

The kernel's groups are variables of their own, copies of the model's kernel taken when the
context opens, not slices of it in the graph: the converter folds a slice of a constant only
while the constant is under 2^30 bits (128 MiB), and a slice of a larger kernel (a multi-range
gate's 3x3 4096 -> 1024 kernel is 151 MB in float32) stays a run-time slice and transpose
feeding a convolution with non-constant weights, which XNNPACK runs far more slowly.

A RIGNet whose gated passes normalise with batch-norm statistics of their own
(`recurrent_batch_norm="gated_passes"`) traces under `one_kernel_copy` for the converters: a
gated pass's batch norm is the first pass's plus a per-channel correction
(`PassStatistics.one_kernel_copy`), so that the converter's batch-norm folding yields one copy of
each kernel instead of one per set of statistics.

A `Conv2D` with one group per input channel and one filter per group is a depthwise
convolution (ConvNeXt's 7x7 convolutions in `keras.applications`, keras-hub MobileNet's). Keras'
TensorFlow backend runs any grouped convolution as an XLA-compiled function, which tf2onnx
cannot convert (it stays a `StatefulPartitionedCall`); `plain_depthwise_convolutions` makes
such layers trace as `depthwise_conv` with the kernel (kh, kw, 1, C) read as (kh, kw, C, 1), the
same numbers.
"""

import contextlib
import functools

import keras
from keras import layers, ops

from rignet_keras.export.defaults import DEFAULT_MAX_INPUT_CHANNELS

MIN_FILTERS = 128


def _split_convolution(layer, groups, inputs, kernel):
    """`layer.convolution_op` as a sum over `groups`: [(start, stop, kernel group)] of
    input-channel ranges and their part of the kernel (`kernel`, the whole, is not used)."""
    outputs = None
    for start, stop, group_kernel in groups:
        part = layer.__class__.convolution_op(layer, inputs[..., start:stop], group_kernel)
        outputs = part if outputs is None else ops.add(outputs, part)
    return outputs


def _kernel_groups(layer, max_input_channels):
    """[(start, stop, variable)]: `layer`'s kernel cut into input-channel groups, each a new
    non-trainable variable holding a copy of its part."""
    kernel = ops.convert_to_numpy(layer.kernel)
    return [
        (
            start,
            stop,
            keras.Variable(
                kernel[:, :, start:stop, :],
                trainable=False,
                name=f"{layer.name}_input_channels_{start}_{stop}",
            ),
        )
        for start, stop in channel_groups(kernel.shape[2], max_input_channels)
    ]


def check_max_input_channels(value, name="max_input_channels"):
    """`value` if it is None or an int >= 1, else a ValueError naming `name`."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be None or an int >= 1; received {value!r}")
    return value


def channel_groups(channels, max_channels):
    """Near-equal (start, stop) ranges of at most `max_channels` covering `channels`."""
    count = -(-channels // max_channels)
    bounds = [round(i * channels / count) for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def wide_convolutions(model, max_input_channels=DEFAULT_MAX_INPUT_CHANNELS):
    """The built `Conv2D` layers of `model` that `split_wide_convolutions` splits: a kernel
    larger than 1x1, no groups, channels-last, at least `MIN_FILTERS` filters and at least twice
    `max_input_channels` input channels."""
    found = []
    for layer in model._flatten_layers(include_self=False):
        if type(layer) is not layers.Conv2D or not layer.built:
            continue
        kh, kw, channels, _ = layer.kernel.shape
        if (
            (kh, kw) != (1, 1)
            and layer.groups == 1
            and layer.data_format == "channels_last"
            and layer.filters >= MIN_FILTERS
            and channels >= 2 * max_input_channels
        ):
            found.append(layer)
    return found


def grouped_depthwise_convolutions(model):
    """The built `Conv2D` layers of `model` (nested ones included) that are depthwise
    convolutions written as grouped ones: as many groups as input channels and as filters."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if type(layer) is layers.Conv2D
        and layer.built
        and layer.groups > 1
        and layer.filters == layer.groups
        and layer.kernel.shape[2] == 1
    ]


def _depthwise_convolution(layer, inputs, kernel):
    """`layer.convolution_op` of a grouped depthwise `Conv2D`, as a depthwise convolution."""
    kh, kw, _, channels = kernel.shape
    return ops.depthwise_conv(
        inputs,
        ops.reshape(kernel, (kh, kw, channels, 1)),
        strides=layer.strides,
        padding=layer.padding,
        data_format=layer.data_format,
        dilation_rate=layer.dilation_rate,
    )


@contextlib.contextmanager
def _convolution_ops(replacements):
    """Within the context each layer of `replacements` ({layer: convolution_op}) computes its
    convolution with the given function."""
    try:
        for layer, op in replacements.items():
            # An instance attribute over the class's method, past Keras' attribute tracking.
            object.__setattr__(layer, "convolution_op", op)
        yield list(replacements)
    finally:
        for layer in replacements:
            if "convolution_op" in vars(layer):
                object.__delattr__(layer, "convolution_op")


def plain_depthwise_convolutions(model):
    """A context within which `model`'s grouped depthwise convolutions
    (`grouped_depthwise_convolutions`) trace as depthwise ones; it yields the list of them."""
    return _convolution_ops(
        {
            layer: functools.partial(_depthwise_convolution, layer)
            for layer in grouped_depthwise_convolutions(model)
        }
    )


@contextlib.contextmanager
def split_wide_convolutions(model, max_input_channels=DEFAULT_MAX_INPUT_CHANNELS):
    """Within the context, `model`'s wide convolutions (`wide_convolutions`) compute as sums of
    convolutions over at most `max_input_channels` input channels each, with the kernel as it
    is when the context opens (for tracing an export, not for training).

    Args:
        model: a built Keras model (a `RIGNet`: its blocks, head and gates are searched).
        max_input_channels: int >= 1, or None for no split (the context does nothing).

    Yields:
        The list of layers split.
    """
    if check_max_input_channels(max_input_channels) is None:
        yield []
        return
    replacements = {
        layer: functools.partial(
            _split_convolution, layer, _kernel_groups(layer, max_input_channels)
        )
        for layer in wide_convolutions(model, max_input_channels)
    }
    with _convolution_ops(replacements) as split:
        yield split


@contextlib.contextmanager
def one_kernel_copy(model):
    """Within the context, `model`'s gated passes trace their batch norms as the first pass's
    plus a per-channel correction (`PassStatistics.one_kernel_copy`); nothing changes for a
    model without gated passes' statistics. Yields whether anything changes."""
    statistics = getattr(model, "pass_statistics", None)
    if statistics is None:
        yield False
        return
    with statistics.one_kernel_copy():
        yield True
