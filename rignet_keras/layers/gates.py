"""Top-down feedback gates: the recurrent part of RIGNet (paper Sec. 3.4; docs/DESIGN.md)."""

import keras
from keras import layers, ops

from rignet_keras.ops import resize_bilinear, spatial_size

POOLING_OPTIONS = ("avg", "max", None)
COMBINE_OPTIONS = ("mul_sigmoid", "mul_tanh", "add_relu")


def check_gate_options(pooling, combine, bottleneck):
    """Raises `ValueError` naming the argument if a gate option is unknown."""
    if pooling not in POOLING_OPTIONS:
        raise ValueError(f"pooling must be one of {POOLING_OPTIONS}; received {pooling!r}")
    if combine not in COMBINE_OPTIONS:
        raise ValueError(f"combine must be one of {COMBINE_OPTIONS}; received {combine!r}")
    if bottleneck is not None and (not isinstance(bottleneck, int) or bottleneck < 1):
        raise ValueError(f"bottleneck must be None or a positive int; received {bottleneck!r}")


def combine_gate(x, g, combine):
    """Applies gate pre-activations `g` to `x` (both (B, H, W, C)) as Table 4 of the paper lists."""
    if combine == "mul_sigmoid":
        return x * ops.sigmoid(g)
    if combine == "mul_tanh":
        return x * ops.tanh(g)
    return ops.relu(x + g)


@keras.saving.register_keras_serializable(package="rignet_keras")
class FeedbackGate(layers.Layer):
    """The basic feedback gate G(x, y) of RIGNet (paper Sec. 3.4.1, Eq. 1).

    Block k's output `y` from the previous iteration modulates block k's input `x`:

        g = Conv3x3(Pool(y))             # to the channel count of x
        g = resize_bilinear(g, size(x))
        out = combine(x, g)              # x * sigmoid(g) by default

    Eq. 1 of the paper applies the sigmoid before the upsampling; here the pre-activations are
    resized and every `combine` option acts at `x`'s size (docs/DESIGN.md, The feedback gate).

    Args:
        pooling: "avg" (2x2 average pooling, stride 2, 'same' padding; the paper's default),
            "max", or None (no pooling). Default "avg".
        combine: "mul_sigmoid" (default), "mul_tanh" or "add_relu".
        bottleneck: None (default: the paper's single 3x3 convolution), or an int width: a 1x1
            convolution to that width, then the 3x3 convolution; cheaper on small devices.
        kernel_initializer: initializer of the gate convolutions. Default "glorot_uniform".

    Call arguments:
        inputs: a pair `(x, y)`: `x` (B, H, W, Cx) the tensor to gate, `y` (B, h, w, Cy) the
            feedback. Any spatial sizes, odd ones included; `g` is resized to `x`'s runtime size.

    Output: a tensor shaped like `x`.

    Example:
    >>> gate = FeedbackGate()
    >>> out = gate((keras.ops.ones((2, 33, 33, 64)), keras.ops.ones((2, 17, 17, 256))))
    >>> tuple(out.shape)
    (2, 33, 33, 64)
    """

    def __init__(
        self,
        pooling="avg",
        combine="mul_sigmoid",
        bottleneck=None,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_gate_options(pooling, combine, bottleneck)
        self.pooling = pooling
        self.combine = combine
        self.bottleneck = bottleneck
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if pooling == "avg":
            self.pool = layers.AveragePooling2D(
                2, 2, padding="same", dtype=self.dtype_policy, name="pool"
            )
        elif pooling == "max":
            self.pool = layers.MaxPooling2D(
                2, 2, padding="same", dtype=self.dtype_policy, name="pool"
            )
        else:
            self.pool = None
        self.reduce = None
        if bottleneck is not None:
            self.reduce = layers.Conv2D(
                bottleneck,
                1,
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name="reduce",
            )
        self.conv = None  # its width is the channel count of x, known in build()

    def build(self, input_shape):
        """`input_shape`: the pair (x_shape, y_shape)."""
        x_shape, y_shape = input_shape
        self.conv = layers.Conv2D(
            x_shape[-1],
            3,
            padding="same",
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="conv",
        )
        feedback_shape = tuple(y_shape)
        if self.reduce is not None:
            self.reduce.build(feedback_shape)
            feedback_shape = feedback_shape[:-1] + (self.bottleneck,)
        self.conv.build(feedback_shape)
        self.built = True

    def gate_map(self, x, y):
        """The gate pre-activations `g`, resized to `x`'s size: (B, H, W, Cx)."""
        h = y
        if self.pool is not None:
            h = self.pool(h)
        if self.reduce is not None:
            h = self.reduce(h)
        g = self.conv(h)
        return resize_bilinear(g, spatial_size(x))

    def call(self, inputs):
        x, y = inputs
        return combine_gate(x, self.gate_map(x, y), self.combine)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(
            pooling=self.pooling,
            combine=self.combine,
            bottleneck=self.bottleneck,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="rignet_keras")
class MultiRangeFeedbackGate(FeedbackGate):
    """The multi-range feedback gate of RIGNet (paper Sec. 3.4.2; docs/DESIGN.md).

    Short-range feedback is block k's own output `y`; long-range feedback is the last block's
    output `z` (the logits of B6), taken through a 1x1 convolution to `y`'s channel count and
    resized bilinearly to `y`'s size. The two are concatenated and gate `x` as `FeedbackGate` does.

    Args: as `FeedbackGate`.

    Call arguments:
        inputs: a triple `(x, y, z)`: `x` (B, H, W, Cx), `y` (B, h, w, Cy), `z` (B, h', w', Cz).

    Output: a tensor shaped like `x`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.long_range = None  # 1x1 convolution z -> Cy channels, built in build()

    def build(self, input_shape):
        """`input_shape`: the triple (x_shape, y_shape, z_shape)."""
        x_shape, y_shape, z_shape = input_shape
        self.long_range = layers.Conv2D(
            y_shape[-1],
            1,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="long_range",
        )
        self.long_range.build(tuple(z_shape))
        super().build((x_shape, tuple(y_shape[:-1]) + (2 * y_shape[-1],)))

    def call(self, inputs):
        x, y, z = inputs
        long_range = resize_bilinear(self.long_range(z), spatial_size(y))
        feedback = ops.concatenate([y, long_range], axis=-1)
        return combine_gate(x, self.gate_map(x, feedback), self.combine)
