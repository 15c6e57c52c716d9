"""MiT (Mix Transformer, SegFormer's encoder) as layers that take any image size.

keras-hub's `MiTBackbone` works on token sequences and recovers the map's size as
`H = W = sqrt(N)`, so it runs on square images whose side is a multiple of 32 only. The layers
here do the same computation with the same weight shapes on the 2-D map itself: every layer takes
and returns `(B, H, W, C)` and reads H and W from its input, so a block takes any size, odd and
non-square ones included (each strided convolution rounds up, as its zero padding gives). The
spatial reduction of the attention needs a map at least `sr_ratio` pixels a side (MiT-B0/B1:
images of at least 29 pixels a side); a smaller one is refused.

A stage is an overlapping patch embedding (strided convolution + LayerNorm), `depth` transformer
blocks (efficient self-attention with spatial reduction, Mix-FFN, drop-path) and a LayerNorm.
`mit_model` chains the four stages into a functional model whose layers are named for the cuts
of the RIGNet blocks (`MIT_CUTS`); `copy_hub_weights` fills it from a keras-hub `MiTBackbone`.
"""

import keras
import numpy as np
from keras import layers, ops, random

from rignet_keras.backbones.common import block_input

# Where blocks B1-B5 end: B1 is stage 1's patch embedding (stride 4), B2 stage 1's transformer
# blocks and norm (stride 4), B3-B5 the whole stages 2-4 (strides 8, 16, 32).
MIT_CUTS = ("patch_embed_1", "norm_1", "norm_2", "norm_3", "norm_4")


@keras.saving.register_keras_serializable(package="rignet_keras")
class MiTPatchEmbedding(layers.Layer):
    """Overlapping patch embedding: zero padding `patch_size // 2`, a `patch_size` convolution
    with `stride` to `project_dim` channels, LayerNorm.

    Input (B, H, W, C); output (B, ceil(H / stride), ceil(W / stride), project_dim) for the
    patch sizes MiT uses (7 with stride 4, 3 with stride 2).
    """

    def __init__(self, project_dim, patch_size=7, stride=4, layer_norm_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.project_dim = project_dim
        self.patch_size = patch_size
        self.stride = stride
        self.layer_norm_epsilon = layer_norm_epsilon
        self.padding = layers.ZeroPadding2D(patch_size // 2)
        self.proj = layers.Conv2D(project_dim, patch_size, strides=stride, padding="valid")
        self.norm = layers.LayerNormalization(epsilon=layer_norm_epsilon)

    def build(self, input_shape):
        self.padding.build(input_shape)
        shape = self.padding.compute_output_shape(input_shape)
        self.proj.build(shape)
        shape = self.proj.compute_output_shape(shape)
        self.norm.build(shape)
        self.built = True

    def call(self, x):
        return self.norm(self.proj(self.padding(x)))

    def compute_output_shape(self, input_shape):
        return self.proj.compute_output_shape(self.padding.compute_output_shape(input_shape))

    def get_config(self):
        config = super().get_config()
        config.update(
            project_dim=self.project_dim,
            patch_size=self.patch_size,
            stride=self.stride,
            layer_norm_epsilon=self.layer_norm_epsilon,
        )
        return config


@keras.saving.register_keras_serializable(package="rignet_keras")
class MiTAttention(layers.Layer):
    """Efficient multi-head self-attention with spatial reduction (SegFormer).

    Queries come from every position of the map; keys and values from the map reduced by an
    `sr_ratio` x `sr_ratio` convolution with stride `sr_ratio` and a LayerNorm (none when
    `sr_ratio` is 1). Dropout 0.1 on the attention weights and on the output projection while
    training, as keras-hub's layer.

    Input (B, H, W, C) with C = `project_dim`; output of the same shape.
    """

    def __init__(
        self, project_dim, num_heads, sr_ratio=1, dropout=0.1, layer_norm_epsilon=1e-5, **kwargs
    ):
        super().__init__(**kwargs)
        if project_dim % num_heads:
            raise ValueError(
                f"project_dim={project_dim} must be a multiple of num_heads={num_heads}"
            )
        self.project_dim = project_dim
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.head_dim = project_dim // num_heads
        self.scale = self.head_dim**-0.5
        self.q = layers.Dense(project_dim)
        self.k = layers.Dense(project_dim)
        self.v = layers.Dense(project_dim)
        self.proj = layers.Dense(project_dim)
        self.attention_dropout = layers.Dropout(dropout)
        self.proj_dropout = layers.Dropout(dropout)
        if sr_ratio > 1:
            self.sr = layers.Conv2D(project_dim, sr_ratio, strides=sr_ratio)
            self.norm = layers.LayerNormalization(epsilon=layer_norm_epsilon)

    def build(self, input_shape):
        for dense in (self.q, self.k, self.v, self.proj):
            dense.build(input_shape)
        if self.sr_ratio > 1:
            self.sr.build(input_shape)
            self.norm.build(self.sr.compute_output_shape(input_shape))
        self.built = True

    def _heads(self, x):
        """(B, h, w, C) -> (B, heads, h * w, head_dim).

        The batch is reshaped as -1, never as the input's batch dimension: tf2onnx writes the
        latter as "copy dimension 0", then merges this reshape with the one before it (Keras'
        dense layer on a 4-D map flattens it to (B * h * w, C)), and dimension 0 becomes
        B * h * w.
        """
        shape = ops.shape(x)
        x = ops.reshape(x, (-1, shape[1] * shape[2], self.num_heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, x, training=None):
        static = (x.shape[1], x.shape[2])
        if self.sr_ratio > 1 and any(n is not None and n < self.sr_ratio for n in static):
            raise ValueError(
                f"layer {self.name!r}: a {static[0]}x{static[1]} map is smaller than its "
                f"spatial reduction (sr_ratio={self.sr_ratio}); the hub_mit_* backbones need "
                "images of at least 29 pixels a side"
            )
        shape = ops.shape(x)
        height, width = shape[1], shape[2]
        q = self._heads(self.q(x))
        reduced = self.norm(self.sr(x)) if self.sr_ratio > 1 else x
        k = self._heads(self.k(reduced))
        v = self._heads(self.v(reduced))
        attention = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * self.scale
        attention = ops.softmax(attention, axis=-1)
        attention = self.attention_dropout(attention, training=training)
        out = ops.transpose(ops.matmul(attention, v), (0, 2, 1, 3))
        out = ops.reshape(out, (-1, height, width, self.project_dim))
        return self.proj_dropout(self.proj(out), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            project_dim=self.project_dim,
            num_heads=self.num_heads,
            sr_ratio=self.sr_ratio,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
        )
        return config


@keras.saving.register_keras_serializable(package="rignet_keras")
class MiTMixFFN(layers.Layer):
    """Mix-FFN: dense to `mid_channels`, 3x3 depthwise convolution on the map, GELU (tanh
    approximation, as keras-hub), dense back to `channels`.

    Input (B, H, W, C); output (B, H, W, channels).
    """

    def __init__(self, channels, mid_channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.mid_channels = mid_channels
        self.fc1 = layers.Dense(mid_channels)
        self.dwconv = layers.DepthwiseConv2D(3, padding="same")
        self.fc2 = layers.Dense(channels)

    def build(self, input_shape):
        self.fc1.build(input_shape)
        shape = self.fc1.compute_output_shape(input_shape)
        self.dwconv.build(shape)
        self.fc2.build(shape)
        self.built = True

    def call(self, x):
        return self.fc2(ops.gelu(self.dwconv(self.fc1(x))))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, mid_channels=self.mid_channels)
        return config


@keras.saving.register_keras_serializable(package="rignet_keras")
class MiTDropPath(layers.Layer):
    """Stochastic depth: while training, drops the whole residual branch of a sample with
    probability `rate` and scales the kept ones by `1 / (1 - rate)`; the identity at inference.

    Input any (B, ...); output of the same shape.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed
        self.seed_generator = random.SeedGenerator(seed)

    def call(self, x, training=None):
        if self.rate == 0.0 or not training:
            return x
        mask_shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        keep = ops.cast(random.uniform(mask_shape, seed=self.seed_generator) > self.rate, x.dtype)
        return x / (1.0 - self.rate) * keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="rignet_keras")
class MiTEncoderBlock(layers.Layer):
    """One MiT transformer block: `x + DropPath(Attention(LN(x)))`, then
    `x + DropPath(MixFFN(LN(x)))` with a hidden width of 4 * `project_dim`.

    Input (B, H, W, project_dim); output of the same shape.
    """

    def __init__(
        self,
        project_dim,
        num_heads,
        sr_ratio=1,
        drop_path_rate=0.0,
        layer_norm_epsilon=1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.project_dim = project_dim
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.drop_path_rate = drop_path_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.norm1 = layers.LayerNormalization(epsilon=layer_norm_epsilon, name="norm1")
        self.attn = MiTAttention(project_dim, num_heads, sr_ratio, name="attn")
        self.drop_path = MiTDropPath(drop_path_rate, name="drop_path")
        self.norm2 = layers.LayerNormalization(epsilon=layer_norm_epsilon, name="norm2")
        self.mlp = MiTMixFFN(project_dim, 4 * project_dim, name="mlp")

    def build(self, input_shape):
        if input_shape[-1] != self.project_dim:
            raise ValueError(
                f"layer {self.name!r}: input has {input_shape[-1]} channels; a MiT block with "
                f"project_dim={self.project_dim} needs {self.project_dim}"
            )
        for layer in (self.norm1, self.attn, self.norm2, self.mlp):
            layer.build(input_shape)
        self.built = True

    def call(self, x, training=None):
        x = x + self.drop_path(self.attn(self.norm1(x), training=training), training=training)
        return x + self.drop_path(self.mlp(self.norm2(x)), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            project_dim=self.project_dim,
            num_heads=self.num_heads,
            sr_ratio=self.sr_ratio,
            drop_path_rate=self.drop_path_rate,
            layer_norm_epsilon=self.layer_norm_epsilon,
        )
        return config


def mit_model(config, name="mit"):
    """A functional MiT for any input size, from keras-hub `MiTBackbone` arguments.

    Args:
        config: the keras-hub constructor arguments (`layerwise_depths`, `num_layers`,
            `hidden_dims`, `layerwise_num_heads`, `layerwise_sr_ratios`, `max_drop_path_rate`,
            `layerwise_patch_sizes`, `layerwise_strides`), e.g. `hub.MIT_CONFIGS["mit_b0"]`.

    Returns:
        A `keras.Model` from (B, H, W, 3) to stage 4's map; its layers are named
        "patch_embed_{s}", "encoder_{s}_{k}" and "norm_{s}" for stage s = 1..4 (`MIT_CUTS`).
        Drop-path rates rise linearly from 0 to `max_drop_path_rate` over all blocks.
    """
    depths = config["layerwise_depths"]
    rates = np.linspace(0.0, config["max_drop_path_rate"], sum(depths))
    inputs = block_input(3, f"{name}_input")
    x, index = inputs, 0
    for stage in range(config["num_layers"]):
        s = stage + 1
        dim = config["hidden_dims"][stage]
        x = MiTPatchEmbedding(
            dim,
            config["layerwise_patch_sizes"][stage],
            config["layerwise_strides"][stage],
            name=f"patch_embed_{s}",
        )(x)
        for k in range(depths[stage]):
            x = MiTEncoderBlock(
                dim,
                config["layerwise_num_heads"][stage],
                config["layerwise_sr_ratios"][stage],
                float(rates[index]),
                name=f"encoder_{s}_{k}",
            )(x)
            index += 1
        x = layers.LayerNormalization(epsilon=1e-5, name=f"norm_{s}")(x)
    return keras.Model(inputs, x, name=name)


def _block_of(stage, part):
    """The RIGNet block (1-5) that holds stage `stage`'s (1-4) `part` ("patch" or the rest)."""
    if stage == 1:
        return 1 if part == "patch" else 2
    return stage + 1


def _hub_pairs(model, hub):
    """(block, our layer name, path, our leaf layer, keras-hub's leaf layer) for every leaf layer
    with weights, matched by structure (keras-hub's stage norms have generated names: each is the
    layer that feeds `output_level_{i}`)."""

    def hub_layer(name):
        try:
            return hub.get_layer(name)
        except ValueError:
            raise ValueError(
                f"the keras-hub model {hub.name!r} has no layer {name!r}; the weights are for "
                "another MiT configuration"
            ) from None

    names = [layer.name for layer in model.layers]
    stages = sum(name.startswith("patch_embed_") for name in names)
    pairs = []
    for s in range(1, stages + 1):
        ours, theirs = model.get_layer(f"patch_embed_{s}"), hub_layer(f"patch_and_embed_{s - 1}")
        for path in ("proj", "norm"):
            pairs.append((_block_of(s, "patch"), ours.name, path, ours, theirs))
        depth = sum(name.startswith(f"encoder_{s}_") for name in names)
        for k in range(depth):
            ours = model.get_layer(f"encoder_{s}_{k}")
            theirs = hub_layer(f"hierarchical_encoder_{s - 1}_{k}")
            paths = ["norm1", "attn.q", "attn.k", "attn.v", "attn.proj"]
            paths += ["attn.sr", "attn.norm"] if ours.sr_ratio > 1 else []
            paths += ["norm2", "mlp.fc1", "mlp.dwconv", "mlp.fc2"]
            for path in paths:
                pairs.append((_block_of(s, "blocks"), ours.name, path, ours, theirs))
        norm = hub_layer(f"output_level_{s - 1}").input._keras_history[0]
        pairs.append((_block_of(s, "norm"), f"norm_{s}", "", model.get_layer(f"norm_{s}"), norm))
    return pairs


def _leaf(layer, path):
    for attribute in filter(None, path.split(".")):
        layer = getattr(layer, attribute)
    return layer


def copy_hub_weights(hub, model):
    """Copies the weights of a keras-hub `MiTBackbone` into `mit_model`'s layers, by structure.

    Each weighted leaf layer (convolution, dense, LayerNorm) is checked shape by shape; a
    mismatch names the RIGNet block and the layer. Returns the number of leaf layers filled.
    """
    pairs = _hub_pairs(model, hub)
    theirs_total = sum(1 for layer in hub.layers if layer.weights)
    ours_total = sum(1 for layer in model.layers if layer.weights)
    if theirs_total != ours_total:
        raise ValueError(
            f"the keras-hub model {hub.name!r} has {theirs_total} layers with weights, ours "
            f"{ours_total}; the weights are for another MiT configuration"
        )
    for block, name, path, ours, theirs in pairs:
        dst, src = _leaf(ours, path), _leaf(theirs, path)
        dst_shapes = [tuple(w.shape) for w in dst.weights]
        src_shapes = [tuple(w.shape) for w in src.weights]
        if dst_shapes != src_shapes:
            where = f"{name}.{path}" if path else name
            raise ValueError(
                f"B{block} layer {where!r}: weight shapes {src_shapes} in the keras-hub model "
                f"do not match {dst_shapes}; the weights are for another MiT configuration"
            )
        dst.set_weights(src.get_weights())
    return len(pairs)
