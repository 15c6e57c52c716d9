"""Training augmentation and evaluation preprocessing, one sample at a time, in TensorFlow ops.

Images are RGB on the 0-255 scale (uint8 or float32) and masks uint8 class indices (255 = ignore);
normalisation for the backbone comes after (`rignet_keras.preprocessing.normalize`), so that padding
uses the ImageNet mean pixel and becomes zero after "caffe" normalisation.

Randomness is stateless: every random op takes a seed derived from the sample's `seed` (shape (2,)
int), so a sample's augmentation depends only on its seed, whatever the thread scheduling.
"""

import tensorflow as tf

from rignet_keras.data.errors import BAD_SAMPLE_MARK
from rignet_keras.labels import IGNORE_LABEL
from rignet_keras.preprocessing import IMAGENET_MEAN_RGB

EVAL_MODES = ("pad", "resize", "none")


def _hw(size):
    size = (size, size) if isinstance(size, int) else tuple(size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (height, width) of positive ints; received {size}")
    return int(size[0]), int(size[1])


def random_scale(image, mask, seed, scale_range=(0.5, 2.0)):
    """Rescales by a factor drawn uniformly from `scale_range`: bilinear for the image (float32
    out), nearest neighbour for the mask (so no label is invented)."""
    new_hw = _scaled_size(tf.shape(mask)[:2], seed, scale_range)
    image = tf.image.resize(image, new_hw, method="bilinear")
    mask = tf.image.resize(mask[..., None], new_hw, method="nearest")[..., 0]
    return image, mask


def pad_to_size(image, mask, size, ignore_label=IGNORE_LABEL, mean=IMAGENET_MEAN_RGB):
    """Pads at the bottom and right to at least `size` (h, w): the image with the `mean` pixel
    (0-255 RGB), the mask with `ignore_label`. Larger inputs are left as they are."""
    h, w = _hw(size)
    shape = tf.shape(mask)
    pad_h, pad_w = tf.maximum(h - shape[0], 0), tf.maximum(w - shape[1], 0)
    mean = tf.constant(mean, tf.float32)
    image = tf.pad(tf.cast(image, tf.float32) - mean, [[0, pad_h], [0, pad_w], [0, 0]]) + mean
    mask = tf.pad(mask, [[0, pad_h], [0, pad_w]], constant_values=ignore_label)
    return image, mask


def _scaled_size(hw, seed, scale_range):
    scale = tf.random.stateless_uniform([], seed, scale_range[0], scale_range[1])
    return tf.maximum(tf.cast(tf.round(tf.cast(hw, tf.float32) * scale), tf.int32), 1)


def _crop_offsets(hw, seed, size):
    """Random top-left corner of a `size` window in an input of `hw`, padded to at least `size`."""
    room = tf.maximum(hw - tf.constant(size, tf.int32), 0) + 1
    return tf.random.stateless_uniform([2], seed, 0, tf.int32.max, dtype=tf.int32) % room


def random_crop(image, mask, seed, size):
    """Crops the same random window of `size` (h, w) from both; inputs must be at least that big."""
    h, w = _hw(size)
    offsets = _crop_offsets(tf.shape(mask)[:2], seed, (h, w))
    image = tf.slice(image, [offsets[0], offsets[1], 0], [h, w, 3])
    mask = tf.slice(mask, [offsets[0], offsets[1]], [h, w])
    return image, mask


def _window_of_scaled(image, mask, new_hw, offsets, size, ignore_label, mean):
    """The `size` window at `offsets` of the image rescaled to `new_hw` and padded, computing only
    the window: bilinear (half-pixel centres, as `tf.image.resize`) by `ScaleAndTranslate`,
    nearest neighbour by index arithmetic (as `tf.image.resize(..., "nearest")`)."""
    h, w = size
    hw = tf.shape(mask)[:2]
    scale = tf.cast(new_hw, tf.float32) / tf.cast(hw, tf.float32)
    window = tf.raw_ops.ScaleAndTranslate(
        images=image[None],
        size=tf.constant([h, w], tf.int32),
        scale=scale,
        translation=-tf.cast(offsets, tf.float32),
        kernel_type="triangle",
        antialias=False,
    )[0]
    rows, cols = tf.range(h) + offsets[0], tf.range(w) + offsets[1]
    inv = tf.cast(hw, tf.float32) / tf.cast(new_hw, tf.float32)
    src_rows = tf.minimum(tf.cast((tf.cast(rows, tf.float32) + 0.5) * inv[0], tf.int32), hw[0] - 1)
    src_cols = tf.minimum(tf.cast((tf.cast(cols, tf.float32) + 0.5) * inv[1], tf.int32), hw[1] - 1)
    window_mask = tf.gather(tf.gather(mask, src_rows), src_cols, axis=1)
    # The rows and columns past the rescaled image (always at the bottom and right) are padding.
    valid = tf.minimum(new_hw - offsets, [h, w])

    def padded():
        return pad_to_size(
            window[: valid[0], : valid[1]],
            window_mask[: valid[0], : valid[1]],
            (h, w),
            ignore_label,
            mean,
        )

    return tf.cond(tf.reduce_all(valid == [h, w]), lambda: (window, window_mask), padded)


def random_scale_pad_crop(
    image,
    mask,
    seed,
    size,
    scale_range=(0.5, 2.0),
    ignore_label=IGNORE_LABEL,
    mean=IMAGENET_MEAN_RGB,
):
    """`random_scale`, then `pad_to_size`, then `random_crop` to `size`, with the same result
    (float rounding aside), but when the rescaled image is large only the crop is computed.

    `seed` (2,) is split in two stateless seeds: one draws the scale, the other the crop offsets.

    Returns:
        (image float32 (h, w, 3), RGB 0-255; mask (h, w), the dtype of `mask`).
    """
    h, w = _hw(size)
    scale_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    new_hw = _scaled_size(tf.shape(mask)[:2], scale_seed, scale_range)
    offsets = _crop_offsets(new_hw, crop_seed, (h, w))

    def whole():
        im = tf.image.resize(image, new_hw, method="bilinear")
        m = tf.image.resize(mask[..., None], new_hw, method="nearest")[..., 0]
        im, m = pad_to_size(im, m, (h, w), ignore_label, mean)
        return (
            tf.slice(im, [offsets[0], offsets[1], 0], [h, w, 3]),
            tf.slice(m, [offsets[0], offsets[1]], [h, w]),
        )

    def window():
        return _window_of_scaled(image, mask, new_hw, offsets, (h, w), ignore_label, mean)

    # Computing only the window pays off once the rescaled image is well above the crop.
    large = tf.cast(new_hw[0] * new_hw[1], tf.float32) > 1.25 * h * w
    image, mask = tf.cond(large, window, whole)
    image.set_shape([h, w, 3])
    mask.set_shape([h, w])
    return image, mask


def random_flip(image, mask, seed):
    """Flips both left-right with probability 1/2."""
    flip = tf.random.stateless_uniform([], seed) < 0.5
    image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
    mask = tf.cond(flip, lambda: tf.reverse(mask, [1]), lambda: mask)
    return image, mask


def photometric_jitter(image, seed, brightness=0.125, contrast=0.2, saturation=0.2):
    """Random brightness (± `brightness` of full scale), contrast and saturation (factors in
    1 ± `contrast`, 1 ± `saturation`), image only; float32 0-255 out."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    x = tf.cast(image, tf.float32) / 255.0
    x = tf.image.stateless_random_brightness(x, brightness, seeds[0])
    x = tf.image.stateless_random_contrast(x, 1 - contrast, 1 + contrast, seeds[1])
    x = tf.clip_by_value(x, 0.0, 1.0)
    x = tf.image.stateless_random_saturation(x, 1 - saturation, 1 + saturation, seeds[2])
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0


def train_augment(
    image,
    mask,
    seed,
    crop_size,
    *,
    scale_range=(0.5, 2.0),
    flip=True,
    photometric=False,
    ignore_label=IGNORE_LABEL,
    mean=IMAGENET_MEAN_RGB,
):
    """The field's training augmentation for one sample.

    Photometric jitter (optional, image only), random scale in `scale_range` (bilinear image,
    nearest mask), pad to at least `crop_size` (mean pixel / `ignore_label`), random crop to
    `crop_size` (these three by `random_scale_pad_crop`), random horizontal flip.

    Args:
        image: uint8 or float (H, W, 3), RGB 0-255.
        mask: uint8 (H, W) class indices.
        seed: int32/int64 (2,), the sample's seed.
        crop_size: (h, w) of the output.

    Returns:
        (image float32 (h, w, 3), RGB 0-255; mask uint8 (h, w)).
    """
    crop = _hw(crop_size)
    seeds = tf.random.experimental.stateless_split(seed, 3)
    image = tf.convert_to_tensor(image)  # uint8 stays uint8 until resampled (cheaper)
    mask = tf.convert_to_tensor(mask)
    if photometric:
        image = photometric_jitter(image, seeds[0])
    if tuple(scale_range) != (1.0, 1.0):
        image, mask = random_scale_pad_crop(
            image, mask, seeds[1], crop, scale_range, ignore_label, mean
        )
    else:
        image, mask = pad_to_size(image, mask, crop, ignore_label, mean)
        image, mask = random_crop(image, mask, seeds[1], crop)
    if flip:
        image, mask = random_flip(image, mask, seeds[2])
    image.set_shape([crop[0], crop[1], 3])
    mask.set_shape([crop[0], crop[1]])
    return image, mask


def eval_preprocess(
    image, mask, mode, size=None, ignore_label=IGNORE_LABEL, mean=IMAGENET_MEAN_RGB, sample_id=""
):
    """Evaluation preprocessing for one sample; the mask is never resized.

    Modes:
        "pad": pad to `size` (mean pixel / `ignore_label`), so samples batch; an image larger than
            `size` is an error that names `sample_id`.
        "resize": the image is resized (bilinear) to `size`, the mask stays at full resolution
            (batch size 1, or a ragged batch of masks): resize the logits to the mask to score.
        "none": the whole image (batch size 1).

    Returns:
        (image float32 (h, w, 3), RGB 0-255; mask uint8 (H, W)).
    """
    if mode not in EVAL_MODES:
        raise ValueError(f"eval_mode must be one of {EVAL_MODES}; received {mode!r}")
    image = tf.cast(image, tf.float32)
    mask = tf.convert_to_tensor(mask)
    if mode == "none":
        return image, mask
    h, w = _hw(size)
    if mode == "resize":
        image = tf.image.resize(image, [h, w], method="bilinear")
        image.set_shape([h, w, 3])
        return image, mask
    shape = tf.shape(mask)
    # A user's setting, not a bug: the message carries `BAD_SAMPLE_MARK`, so that commands
    # print it as one line (`dataset_error_from`).
    message = tf.strings.join(
        [
            tf.convert_to_tensor(sample_id, tf.string),
            " is ",
            tf.strings.as_string(shape[0]),
            "x",
            tf.strings.as_string(shape[1]),
            f" (height x width), larger than data.eval_size ({h}, {w}) with "
            "data.eval_mode=pad: set data.eval_size to at least the largest evaluation image, "
            "or data.eval_mode=resize",
        ]
    )
    check = tf.debugging.Assert(
        tf.logical_and(shape[0] <= h, shape[1] <= w), [BAD_SAMPLE_MARK, message]
    )
    with tf.control_dependencies([check]):
        image, mask = pad_to_size(image, mask, (h, w), ignore_label, mean)
    image.set_shape([h, w, 3])
    mask.set_shape([h, w])
    return image, mask
