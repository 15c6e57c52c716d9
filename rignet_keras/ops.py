"""Small tensor helpers shared by the layers and the model (TensorFlow backend)."""

import tensorflow as tf
from keras import ops


def resize_bilinear(x, size):
    """Resizes a (B, h, w, C) tensor bilinearly with half-pixel centres to `size` = (H, W).

    `size` may hold Python ints or scalar tensors (the runtime size of another tensor), so the
    same graph serves any input size. TF2's half-pixel convention is what TFLite's
    RESIZE_BILINEAR(half_pixel_centers=True) and ONNX's Resize(half_pixel) compute.
    """
    out = tf.image.resize(x, size, method="bilinear")
    # tf.image.resize computes in float32; keep the caller's dtype (mixed precision).
    return ops.cast(out, x.dtype)


def spatial_size(x):
    """The runtime (H, W) of a (B, H, W, C) tensor, static where known."""
    static = x.shape[1:3]
    dynamic = tf.shape(x)[1:3]
    return tuple(s if s is not None else dynamic[i] for i, s in enumerate(static))
