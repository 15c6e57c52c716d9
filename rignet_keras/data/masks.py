"""Decoding one record: its mask (class indices) by `mask_format`, and the checks that make a sample
valid (readable files, mask the size of the image, labels in range)."""

import os

import numpy as np
from PIL import Image

from rignet_keras.data.cocostuff import read_cocostuff_mask
from rignet_keras.data.errors import DatasetError
from rignet_keras.data.info import IGNORE_LABEL
from rignet_keras.data.sbd import read_sbd_mask
from rignet_keras.data.voc import read_png_mask


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


def read_image_size(image_path):
    """(height, width) of an image from its header, without decoding the pixels.

    A JPEG is also checked for its end-of-image marker, which a truncated file lacks.
    """
    try:
        with Image.open(image_path) as im:
            w, h = im.size
            is_jpeg = im.format == "JPEG"
        if is_jpeg:
            with open(image_path, "rb") as f:
                f.seek(max(0, os.path.getsize(image_path) - 4096))
                if b"\xff\xd9" not in f.read():
                    raise OSError("truncated JPEG (no end-of-image marker)")
    except Exception as e:  # Pillow raises several types for corrupt files
        raise DatasetError(f"cannot read image {image_path}: {e}") from e
    return h, w


def read_image(image_path):
    """The image as RGB uint8 (H, W, 3), fully decoded (so truncated files are caught)."""
    try:
        with Image.open(image_path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:  # Pillow raises several types for corrupt files
        raise DatasetError(f"cannot read image {image_path}: {e}") from e


def check_labels(mask, num_classes, mask_path, ignore_label=IGNORE_LABEL):
    """Raises `DatasetError` naming `mask_path` if `mask` holds a label outside
    0..num_classes-1 other than `ignore_label`."""
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


def load_checked_mask(record, num_classes, ignore_label=IGNORE_LABEL, full_image_check=False):
    """The mask of `record` after every check; the image is read for its size only, unless
    `full_image_check` (then it is decoded fully, which also catches truncated files)."""
    if full_image_check:
        image_hw = read_image(record.image_path).shape[:2]
    else:
        image_hw = read_image_size(record.image_path)
    mask = decode_mask(record.mask_path, record.mask_format)
    check_size(image_hw, mask, record.image_path, record.mask_path)
    check_labels(mask, num_classes, record.mask_path, ignore_label)
    return mask


def load_sample(record, num_classes=256, ignore_label=IGNORE_LABEL):
    """(image uint8 (H, W, 3), mask uint8 (H, W)) of `record`, checked; for tests and tools."""
    image = read_image(record.image_path)
    mask = decode_mask(record.mask_path, record.mask_format)
    check_size(image.shape[:2], mask, record.image_path, record.mask_path)
    check_labels(mask, num_classes, record.mask_path, ignore_label)
    return image, mask
