"""Small tensor helpers shared by the layers and the model.

They work with every Keras backend: TensorFlow (training, export) and JAX or PyTorch (the model
is plain Keras 3). With TensorFlow, sizes may be dynamic, so one graph serves any input size.
"""

import keras
from keras import ops


def resize_bilinear(x, size):
    """Resizes a (B, h, w, C) tensor bilinearly with half-pixel centres to `size` = (H, W).

    `size` may hold Python ints or, with TensorFlow, scalar tensors (the runtime size of another
    tensor). TF2's half-pixel convention is what TFLite's RESIZE_BILINEAR(half_pixel_centers=True)
    and ONNX's Resize(half_pixel) compute; JAX's `jax.image.resize` uses the same centres.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        out = tf.image.resize(x, size, method="bilinear")
    else:
        out = ops.image.resize(x, tuple(int(s) for s in size), interpolation="bilinear")
    # Resizing computes in float32; keep the caller's dtype (mixed precision).
    return ops.cast(out, x.dtype)


def spatial_size(x):
    """The runtime (H, W) of a (B, H, W, C) tensor: static ints where known, else tensors."""
    return tuple(ops.shape(x)[1:3])
