"""PASCAL VOC 2012 segmentation: reader of the official layout.

Layout (under `data_dir`, as the official tar extracts)::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<id>.png        palette ('P') PNG, indices 0-20, 255 = void
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt

The masks are palette PNGs: their pixel values are the class indices, which Pillow returns
(`np.array(Image.open(p))`); `tf.io.decode_png` would return the palette's colours instead.
"""

import os

import numpy as np
from PIL import Image

from rignet_keras.data.errors import DatasetError, missing_path_error
from rignet_keras.data.info import DatasetInfo
from rignet_keras.data.records import Record, drop_missing, first_existing, read_id_list
from rignet_runtime.images import write_mask

VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
VOC_SPLITS = ("train", "val", "trainval")


def voc_info(name="voc"):
    """`DatasetInfo` of VOC 2012 segmentation: 21 classes, 255 = void."""
    return DatasetInfo(name, 21, "voc", VOC_CLASSES)


def find_voc_root(data_dir):
    """The `VOC2012` folder under `data_dir` (which may also be `VOCdevkit` or `VOC2012` itself).

    Raises:
        DatasetError: naming the expected path and the download command, if there is none.
    """
    data_dir = os.fspath(data_dir)
    root = first_existing(
        [os.path.join(data_dir, "VOCdevkit", "VOC2012"), os.path.join(data_dir, "VOC2012")]
    )
    if root is None and os.path.isdir(os.path.join(data_dir, "JPEGImages")):
        root = data_dir
    if root is None:
        raise missing_path_error(
            "VOC 2012 folder", os.path.join(data_dir, "VOCdevkit", "VOC2012"), "voc", data_dir
        )
    return root


def voc_split_ids(data_dir, split):
    """The ids of a VOC segmentation split ("train", "val" or "trainval"), in file order."""
    if split not in VOC_SPLITS:
        raise ValueError(f"split must be one of {VOC_SPLITS}; received {split!r}")
    root = find_voc_root(data_dir)
    path = os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt")
    if not os.path.isfile(path):
        raise missing_path_error(f"VOC split list {split!r}", path, "voc", data_dir)
    return read_id_list(path)


def voc_records(data_dir, split="train", *, on_bad_sample="raise"):
    """Records of a VOC 2012 segmentation split.

    Args:
        data_dir: folder that holds `VOCdevkit/VOC2012` (or that folder itself).
        split: "train" (1,464 images), "val" (1,449) or "trainval".
        on_bad_sample: "raise", "skip" or a `BadSampleLog` (which counts them), for listed
            samples whose files are missing.

    Returns:
        list of `Record` with `mask_format="png"`, in the order of the split list.
    """
    root = find_voc_root(data_dir)
    ids = voc_split_ids(data_dir, split)
    records = [
        Record(
            i,
            os.path.join(root, "JPEGImages", f"{i}.jpg"),
            os.path.join(root, "SegmentationClass", f"{i}.png"),
            "png",
        )
        for i in ids
    ]
    return drop_missing(records, on_bad_sample, f"VOC {split}")


def read_png_mask(path):
    """Class indices (H, W) uint8 of a palette ('P') or grayscale ('L') PNG mask.

    Raises:
        DatasetError: naming `path`, if it is unreadable or not a single-channel index image.
    """
    try:
        with Image.open(path) as im:
            mode = im.mode
            arr = np.array(im)
    except Exception as e:  # Pillow raises several types for corrupt files
        raise DatasetError(f"cannot read mask {path}: {e}") from e
    if mode not in ("P", "L") or arr.ndim != 2:
        raise DatasetError(
            f"mask {path} must be a palette ('P') or grayscale ('L') PNG of class indices; "
            f"received mode {mode!r} with shape {arr.shape}"
        )
    return arr.astype(np.uint8, copy=False)


def write_png_mask(path, mask):
    """Writes class indices (H, W) as a VOC-style palette PNG (the runtime's `write_mask`, the
    one palette writer)."""
    mask = np.ascontiguousarray(mask, np.uint8)
    if mask.ndim != 2:
        raise ValueError(f"mask must have shape (H, W); received {mask.shape}")
    write_mask(path, mask)
