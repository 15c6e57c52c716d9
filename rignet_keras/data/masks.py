"""Decoding one record: its image (by TensorFlow's decoder, the one training uses), its mask (class
indices) by `mask_format`, and the checks that make a sample valid (readable files, mask the size
of the image, labels in range)."""

import os
import re

import numpy as np
import tensorflow as tf

from rignet_keras.data.cocostuff import read_cocostuff_mask
from rignet_keras.data.errors import DatasetError
from rignet_keras.data.info import IGNORE_LABEL
from rignet_keras.data.sbd import read_sbd_mask
from rignet_keras.data.voc import read_png_mask
from rignet_runtime.jpeg import jpeg_fault


def decode_mask(mask_path, mask_format):
    """Class indices (H, W) uint8 of a mask file; `mask_format` is one of `MASK_FORMATS`.

    Raises:
        DatasetError: naming the file, if it cannot be read.
    """
    if mask_format == "png":
        return read_png_mask(mask_path)
    if mask_format == "sbd_mat":
        return read_sbd_mask(mask_path)
    if mask_format in ("cocostuff182", "cocostuff171"):
        return read_cocostuff_mask(mask_path, mask_format[len("cocostuff") :])
    raise ValueError(f"unknown mask_format {mask_format!r}")


def decode_image_bytes(data, image_path, check_scans=True):
    """RGB uint8 (H, W, 3) of an image file's bytes, decoded by TensorFlow's decoder.

    This is the decoder of the TFDS path (`tf.io.decode_image`), so a sample that passes here
    decodes in training too: JPEG, PNG, BMP or GIF (first frame). A corrupt body that other
    decoders accept with a warning is refused, and so is JPEG scan data that libjpeg decodes
    with only a "Corrupt JPEG data" warning (`rignet_runtime.jpeg.jpeg_fault`).

    Raises:
        DatasetError: naming `image_path`, if the bytes do not decode.
    """
    fault = jpeg_fault(data) if check_scans else None  # first: libjpeg would print a warning
    if fault:
        raise DatasetError(f"cannot read image {image_path}: corrupt JPEG data: {fault}")
    try:
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as e:
        reason = str(getattr(e, "message", e)).split("\n")[0]
        reason = re.sub(r"^\{\{[^}]*\}\}\s*", "", reason)  # TensorFlow's op prefix
        raise DatasetError(f"cannot read image {image_path}: {reason}") from e
    return image.numpy()


_WHOLE_FILES = set()  # (path, size, mtime) of files whose scans passed `jpeg_fault`


def read_image(image_path):
    """The image as RGB uint8 (H, W, 3), fully decoded (see `decode_image_bytes`). A file's
    JPEG scans are checked once per process while its size and time stamp stay the same (the
    direct pipeline reads every file again each epoch)."""
    try:
        with open(image_path, "rb") as f:
            stat = os.fstat(f.fileno())
            data = f.read()
    except OSError as e:
        raise DatasetError(f"cannot read image {image_path}: {e}") from e
    key = (image_path, stat.st_size, stat.st_mtime_ns)
    image = decode_image_bytes(data, image_path, check_scans=key not in _WHOLE_FILES)
    _WHOLE_FILES.add(key)
    return image


def check_labels(mask, num_classes, mask_path, ignore_label=IGNORE_LABEL):
    """Raises `DatasetError` naming `mask_path` if `mask` holds a label outside
    0..num_classes-1 other than `ignore_label`."""
    if mask.dtype == np.uint8:  # a histogram is several times faster than a sort
        values = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
    else:
        values = np.unique(mask)
    bad = values[(values >= num_classes) & (values != ignore_label)]
    if bad.size:
        raise DatasetError(
            f"mask {mask_path} holds labels {bad.tolist()[:10]} outside 0..{num_classes - 1} "
            f"(and {ignore_label} = ignore)"
        )


def check_size(image_hw, mask, image_path, mask_path):
    """Raises `DatasetError` naming both files if the mask is not the size of the image."""
    if tuple(image_hw) != tuple(mask.shape[:2]):
        raise DatasetError(
            f"mask {mask_path} has size {mask.shape[0]}x{mask.shape[1]} (HxW) but image "
            f"{image_path} has size {image_hw[0]}x{image_hw[1]}"
        )


def load_sample(record, num_classes=256, ignore_label=IGNORE_LABEL):
    """(image uint8 (H, W, 3), mask uint8 (H, W)) of `record`, after every check.

    Raises:
        DatasetError: naming the file at fault.
    """
    image = read_image(record.image_path)
    mask = decode_mask(record.mask_path, record.mask_format)
    check_size(image.shape[:2], mask, record.image_path, record.mask_path)
    check_labels(mask, num_classes, record.mask_path, ignore_label)
    return image, mask
