"""`RIGNetImageSegmenterPreprocessor`: what turns a user's images and masks into a RIGNet's input.

keras-hub's `ImageSegmenterPreprocessor` shape: a layer called on `(x, y=None, sample_weight=None)`
that returns them packed (`keras.utils.pack_x_y_sample_weight`), serialisable with `get_config`
and saved as `preprocessor.json` in a preset folder. The segmenter applies it in training,
evaluation and prediction alike; an export normalises inside its graphs with the same formula
(`rignet_keras.preprocessing.normalized`), so every path sees the same numbers.

Everything it does is declared, none of it inferred from the data:
- `pixels="uint8"`: images are RGB pixels 0-255 (any integer dtype, or floats on that scale),
  normalised here for `preprocessing`; `pixels="normalized"`: images are already normalised
  floats (the data pipeline's), passed through, and integer images are refused.
- `image_size=(H, W)`: images are resized (bilinear) and masks resized (nearest, the void label
  kept) to that size; None keeps each batch's size.
- masks are cast to int32; the void label (`rignet_keras.labels.IGNORE_LABEL`) is left as it is
  for the loss and metrics to skip.
"""

import keras
from keras import ops

from rignet_keras.labels import IGNORE_LABEL
from rignet_keras.models.pixels import PIXEL_DTYPES, check_image_shape, normalize_with_ops
from rignet_keras.preprocessing import check_mode

PIXEL_KINDS = ("uint8", "normalized")


def is_integer_dtype(dtype):
    """True for an integer (or bool) dtype: pixels, not normalised floats."""
    return "float" not in keras.backend.standardize_dtype(dtype)


NO_PREPROCESSOR = (
    "pass preprocessor=RIGNetImageSegmenterPreprocessor(pixels='uint8', ...) or normalise "
    "them first (rignet_keras.preprocessing.normalize)"
)


def refuse_pixels(images, owner, remedy=NO_PREPROCESSOR):
    """Refuses integer `images` in one line: `owner` takes normalised floats only."""
    if is_integer_dtype(images.dtype):
        dtype = keras.backend.standardize_dtype(images.dtype)
        raise ValueError(f"{owner} takes normalised float images, not {dtype} pixels; {remedy}")


@keras.saving.register_keras_serializable(package="rignet_keras")
class RIGNetImageSegmenterPreprocessor(keras.layers.Layer):
    """Resizes and normalises images, and casts and resizes masks, for a RIGNet.

    Args:
        preprocessing: the normalisation ("caffe", "torch" or "tf"; `rignet_keras.preprocessing`);
            it must be the backbone's `preprocessing` (the segmenter checks).
        pixels: "uint8" (images are pixels 0-255, normalised here) or "normalized" (images are
            normalised floats, passed through).
        image_size: None, or (H, W) to resize images (bilinear) and masks (nearest) to.
        ignore_label: the void label of the masks. Default 255.

    Call: `preprocessor(x, y=None, sample_weight=None)` returns `x` (images alone) or the tuple
    `(x, y[, sample_weight])`.

    Example:
    >>> pre = RIGNetImageSegmenterPreprocessor("torch", pixels="uint8", image_size=(32, 32))
    >>> x, y = pre(np.zeros((1, 64, 48, 3), "uint8"), np.zeros((1, 64, 48), "uint8"))
    >>> tuple(x.shape), str(x.dtype), tuple(y.shape), str(y.dtype)
    ((1, 32, 32, 3), 'float32', (1, 32, 32), 'int32')
    """

    def __init__(
        self,
        preprocessing="torch",
        pixels="uint8",
        image_size=None,
        ignore_label=IGNORE_LABEL,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.preprocessing = check_mode(preprocessing)
        if pixels not in PIXEL_KINDS:
            raise ValueError(f"pixels must be one of {PIXEL_KINDS}; received {pixels!r}")
        self.pixels = pixels
        if image_size is not None:
            image_size = tuple(int(s) for s in image_size)
            if len(image_size) != 2 or min(image_size) < 1:
                raise ValueError(f"image_size must be None or (H, W) >= 1; received {image_size}")
        self.image_size = image_size
        self.ignore_label = int(ignore_label)

    def __call__(self, x, *args, **kwargs):
        # Checked before Keras' `__call__`, so that the refusal stays one line.
        if self.pixels == "normalized" and hasattr(x, "dtype"):
            refuse_pixels(x, self.OWNER_NORMALIZED, "build it with pixels='uint8' for pixels")
        return super().__call__(x, *args, **kwargs)

    OWNER_NORMALIZED = "RIGNetImageSegmenterPreprocessor(pixels='normalized')"

    def images(self, x):
        """Images (B, H, W, 3) -> normalised float32 images at `image_size`."""
        check_image_shape(x.shape)
        dtype = keras.backend.standardize_dtype(x.dtype)
        if self.pixels == "normalized":
            refuse_pixels(x, self.OWNER_NORMALIZED, "build it with pixels='uint8' for pixels")
            x = ops.cast(x, "float32")
        else:
            if dtype not in PIXEL_DTYPES and "float" not in dtype:
                raise ValueError(
                    f"images of dtype {dtype} are not pixels ({', '.join(PIXEL_DTYPES)} or "
                    "floats 0-255); convert them (e.g. 16-bit images to uint8) first"
                )
            x = normalize_with_ops(x, self.preprocessing)
        if self.image_size is not None:
            x = ops.image.resize(x, self.image_size, interpolation="bilinear")
        return x

    def masks(self, y):
        """Masks (B, H, W) or (B, H, W, 1) -> int32 masks (B, H, W) at `image_size`."""
        y = ops.cast(y, "int32")
        if len(y.shape) == 4:
            y = y[..., 0]
        if self.image_size is not None:
            y = ops.image.resize(
                ops.cast(y[..., None], "float32"), self.image_size, interpolation="nearest"
            )
            y = ops.cast(y[..., 0], "int32")
        return y

    def call(self, x, y=None, sample_weight=None):
        x = self.images(x)
        if y is not None:
            y = self.masks(y)
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update(
            preprocessing=self.preprocessing,
            pixels=self.pixels,
            image_size=self.image_size,
            ignore_label=self.ignore_label,
        )
        return config
