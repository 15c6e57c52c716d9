"""SBD (Semantic Boundaries Dataset) and the SBD-augmented VOC training set ("voc_aug").

SBD layout (under `data_dir`, as `benchmark.tgz` extracts)::

    benchmark_RELEASE/dataset/img/<id>.jpg
    benchmark_RELEASE/dataset/cls/<id>.mat     GTcls.Segmentation: uint8 (H, W), 0-20
    benchmark_RELEASE/dataset/{train,val}.txt

The augmented training list is (VOC train ∪ SBD train ∪ SBD val) minus VOC val, de-duplicated and
sorted: 10,582 images on the real data. Its masks come from VOC's `SegmentationClass` where VOC has
one (it marks a void border), else from SBD's `cls/*.mat`.

The common pre-converted layout is accepted too: `SegmentationClassAug/<id>.png` (grayscale PNGs of
indices) with a `train_aug.txt` list, in `VOC2012/` or in `data_dir`.
"""

import os

import numpy as np
import scipy.io

from rignet_keras.data.errors import DatasetError, logger, missing_path_error
from rignet_keras.data.info import DatasetInfo
from rignet_keras.data.records import Record, drop_missing, first_existing, read_id_list
from rignet_keras.data.voc import VOC_CLASSES, find_voc_root, voc_records, voc_split_ids

SBD_SPLITS = ("train", "val")


def sbd_info():
    """`DatasetInfo` of SBD's segmentation masks (the VOC classes; SBD marks no void border)."""
    return DatasetInfo("sbd", 21, "voc", VOC_CLASSES)


def voc_aug_info():
    """`DatasetInfo` of the SBD-augmented VOC set: the 21 VOC classes."""
    return DatasetInfo("voc_aug", 21, "voc", VOC_CLASSES)


def find_sbd_root(data_dir):
    """The SBD `dataset` folder under `data_dir`; raises `DatasetError` naming the download."""
    data_dir = os.fspath(data_dir)
    root = first_existing(
        [os.path.join(data_dir, "benchmark_RELEASE", "dataset"), os.path.join(data_dir, "dataset")]
    )
    if root is None and os.path.isdir(os.path.join(data_dir, "cls")):
        root = data_dir
    if root is None:
        raise missing_path_error(
            "SBD folder", os.path.join(data_dir, "benchmark_RELEASE", "dataset"), "sbd", data_dir
        )
    return root


def sbd_split_ids(data_dir, split):
    """The ids of an SBD split ("train": 8,498 or "val": 2,857 on the real data)."""
    if split not in SBD_SPLITS:
        raise ValueError(f"split must be one of {SBD_SPLITS}; received {split!r}")
    path = os.path.join(find_sbd_root(data_dir), f"{split}.txt")
    if not os.path.isfile(path):
        raise missing_path_error(f"SBD split list {split!r}", path, "sbd", data_dir)
    return read_id_list(path)


def sbd_records(data_dir, split="train", *, on_bad_sample="raise"):
    """Records of an SBD split, with `mask_format="sbd_mat"`, in the order of the split list."""
    root = find_sbd_root(data_dir)
    records = [
        Record(
            i,
            os.path.join(root, "img", f"{i}.jpg"),
            os.path.join(root, "cls", f"{i}.mat"),
            "sbd_mat",
        )
        for i in sbd_split_ids(data_dir, split)
    ]
    return drop_missing(records, on_bad_sample, f"SBD {split}")


def read_sbd_mask(path):
    """Class indices (H, W) uint8 from an SBD `cls/*.mat` file (`GTcls.Segmentation`).

    Raises:
        DatasetError: naming `path`, if the file is unreadable or has no `GTcls.Segmentation`.
    """
    try:
        mat = scipy.io.loadmat(path)
        seg = mat["GTcls"][0]["Segmentation"][0]
    except Exception as e:  # scipy raises several types for corrupt files
        raise DatasetError(f"cannot read SBD mask {path} (GTcls.Segmentation): {e}") from e
    seg = np.asarray(seg)
    if seg.ndim != 2:
        raise DatasetError(f"SBD mask {path}: GTcls.Segmentation has shape {seg.shape}, not (H, W)")
    return seg.astype(np.uint8, copy=False)


def write_sbd_mask(path, mask):
    """Writes `mask` (uint8 (H, W), class ids and 255 void) as an SBD `cls/*.mat` in the layout
    `benchmark.tgz` holds: a 1x1 struct GTcls with Boundaries (20 empty maps), Segmentation and
    CategoriesPresent, which `read_sbd_mask` reads back. For fixtures and converted data."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    mask = np.asarray(mask)
    categories = np.unique(mask[(mask > 0) & (mask < 255)]).astype(np.uint8).reshape(-1, 1)
    boundaries = np.empty((20, 1), dtype=object)
    for i in range(20):
        boundaries[i, 0] = np.zeros(mask.shape, bool)
    gtcls = {
        "Boundaries": boundaries,
        "Segmentation": mask.astype(np.uint8),
        "CategoriesPresent": categories,
    }
    scipy.io.savemat(path, {"GTcls": gtcls})


def aug_train_ids(voc_train, sbd_train, sbd_val, voc_val):
    """(VOC train ∪ SBD train ∪ SBD val) minus VOC val, de-duplicated and sorted."""
    return sorted((set(voc_train) | set(sbd_train) | set(sbd_val)) - set(voc_val))


def voc_aug_train_ids(data_dir):
    """The SBD-augmented VOC training ids, computed from the VOC and SBD split lists.

    Returns:
        (ids, summary): the sorted list of ids, and a one-line summary of the arithmetic, which is
        also logged (10,582 ids on the real data).
    """
    voc_train, voc_val = voc_split_ids(data_dir, "train"), voc_split_ids(data_dir, "val")
    sbd_train, sbd_val = sbd_split_ids(data_dir, "train"), sbd_split_ids(data_dir, "val")
    ids = aug_train_ids(voc_train, sbd_train, sbd_val, voc_val)
    summary = (
        f"voc_aug train: {len(ids)} images = (VOC train {len(set(voc_train))} ∪ SBD train "
        f"{len(set(sbd_train))} ∪ SBD val {len(set(sbd_val))}) minus VOC val {len(set(voc_val))}"
    )
    logger.info(summary)
    return ids, summary


def _find_aug_png_dir(data_dir):
    try:
        voc_root = find_voc_root(data_dir)
    except DatasetError:
        voc_root = None
    candidates = [os.path.join(os.fspath(data_dir), "SegmentationClassAug")]
    if voc_root is not None:
        candidates.insert(0, os.path.join(voc_root, "SegmentationClassAug"))
    return first_existing(candidates), voc_root


def _find_aug_list(data_dir, voc_root, png_dir):
    candidates = [os.path.join(os.fspath(data_dir), "train_aug.txt")]
    candidates.append(os.path.join(os.path.dirname(png_dir), "train_aug.txt"))
    if voc_root is not None:
        candidates[:0] = [
            os.path.join(voc_root, "ImageSets", "Segmentation", "train_aug.txt"),
            os.path.join(voc_root, "train_aug.txt"),
        ]
    return next((c for c in candidates if os.path.isfile(c)), None)


def voc_aug_records(data_dir, split="train", *, on_bad_sample="raise"):
    """Records of the SBD-augmented VOC set.

    Args:
        data_dir: folder that holds `VOCdevkit/VOC2012` and `benchmark_RELEASE` (or a
            `SegmentationClassAug` folder with `train_aug.txt`).
        split: "train" (the augmented list) or "val" (VOC val, 1,449 images).
        on_bad_sample: "raise", "skip" or a `BadSampleLog` (which counts them), for listed
            samples whose files are missing.

    Returns:
        list of `Record`; the "train" records are sorted by id.
    """
    if split == "val":
        return voc_records(data_dir, "val", on_bad_sample=on_bad_sample)
    if split != "train":
        raise ValueError(f"split must be 'train' or 'val' for voc_aug; received {split!r}")

    png_dir, voc_root = _find_aug_png_dir(data_dir)
    if png_dir is not None:
        list_path = _find_aug_list(data_dir, voc_root, png_dir)
        if list_path is not None:
            ids = sorted(set(read_id_list(list_path)))
            logger.info("voc_aug train: %d images listed in %s", len(ids), list_path)
        else:
            ids, _ = voc_aug_train_ids(data_dir)
        if voc_root is None:
            raise missing_path_error(
                "VOC 2012 folder (for JPEGImages)",
                os.path.join(os.fspath(data_dir), "VOCdevkit", "VOC2012"),
                "voc",
                data_dir,
            )
        records = [
            Record(
                i,
                os.path.join(voc_root, "JPEGImages", f"{i}.jpg"),
                os.path.join(png_dir, f"{i}.png"),
                "png",
            )
            for i in ids
        ]
        return drop_missing(records, on_bad_sample, "voc_aug train (SegmentationClassAug)")

    ids, _ = voc_aug_train_ids(data_dir)
    voc_root, sbd_root = find_voc_root(data_dir), find_sbd_root(data_dir)
    records = []
    for i in ids:
        voc_mask = os.path.join(voc_root, "SegmentationClass", f"{i}.png")
        image = os.path.join(voc_root, "JPEGImages", f"{i}.jpg")
        if not os.path.isfile(image):
            image = os.path.join(sbd_root, "img", f"{i}.jpg")
        if os.path.isfile(voc_mask):
            records.append(Record(i, image, voc_mask, "png"))
        else:
            records.append(Record(i, image, os.path.join(sbd_root, "cls", f"{i}.mat"), "sbd_mat"))
    return drop_missing(records, on_bad_sample, "voc_aug train")
