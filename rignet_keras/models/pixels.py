"""What a RIGNet takes as images: uint8 pixels it normalises itself, or normalised floats.

`RIGNet.normalize_pixels` and `RIGNet.predict` use these; the formulas are those of
`rignet_keras.preprocessing` (docs/DESIGN.md).
"""

import keras
import numpy as np
from keras import ops

from rignet_keras.preprocessing import normalized

# The integer dtypes taken as RGB pixels 0-255; other integer (and bool) images are refused.
PIXEL_DTYPES = ("uint8", "int32", "int64")


def check_image_shape(shape):
    """Refuses a shape that is not (batch, height, width, 3)."""
    shape = tuple(shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"images must be (batch, height, width, 3); received shape {shape}")


def check_finite(images):
    """Refuses float images holding a NaN or an infinity where their values are at hand (NumPy,
    an eager tensor); a traced call (inside `fit` or an export) is not checked."""
    if isinstance(images, keras.KerasTensor):
        return
    if isinstance(images, np.ndarray):
        values = images
    else:
        try:
            values = ops.convert_to_numpy(images)
        except Exception:  # noqa: BLE001  (a symbolic tensor: no values to check)
            return
    bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise ValueError(
            f"images hold {bad} non-finite values (NaN or infinity); every output would be NaN"
        )


def normalize_pixels(images, preprocessing, dtype):
    """Integer images are pixels: normalised here with `preprocessing`.

    Args:
        images: (B, H, W, 3), either of an integer dtype (uint8 RGB pixels, 0-255), or
            floating and already normalised with `preprocessing` (as the data pipeline
            delivers them), which pass through unchanged (after `check_finite`).
        preprocessing: a `rignet_keras.preprocessing` mode ("caffe", "torch" or "tf").
        dtype: the dtype of the normalised pixels (the model's compute dtype).

    Returns:
        Float images (B, H, W, 3) normalised with `preprocessing`.
    """
    standard = keras.backend.standardize_dtype(images.dtype)
    if standard not in PIXEL_DTYPES and "float" not in standard:
        raise ValueError(
            f"images of dtype {standard} are neither pixels ({', '.join(PIXEL_DTYPES)}, RGB "
            "0-255) nor normalised floats; convert them (e.g. 16-bit images to uint8) first"
        )
    if "float" in standard:
        check_finite(images)
        return images
    return ops.cast(normalize_with_ops(images, preprocessing), dtype)


def normalize_with_ops(images, preprocessing):
    """`rignet_keras.preprocessing.normalized` in `keras.ops`: RGB images 0-255 (any dtype) ->
    float32 images normalised for `preprocessing`, on any Keras backend."""
    return normalized(
        ops.cast(images, "float32"),
        preprocessing,
        lambda x: ops.flip(x, axis=-1),
        lambda values: ops.convert_to_tensor(values, "float32"),
    )
