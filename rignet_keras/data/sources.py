"""Named datasets: from a name, a split and a data folder to records and a `DatasetInfo`."""

import os

from rignet_keras.data.cocostuff import cocostuff_info, cocostuff_records
from rignet_keras.data.errors import DatasetError
from rignet_keras.data.sbd import sbd_info, sbd_records, voc_aug_info, voc_aug_records
from rignet_keras.data.synthetic import load_synthetic_config, synthetic_info
from rignet_keras.data.voc import voc_info, voc_records

SOURCES = ("voc", "voc_aug", "sbd", "cocostuff10k", "synthetic")
DATA_DIR_ENV = "RIGNET_DATA_DIR"

# The size that eval_mode="pad" pads to by default: the largest image of each dataset.
EVAL_PAD_SIZES = {
    "voc": (512, 512),
    "voc_aug": (512, 512),
    "sbd": (512, 512),
    "cocostuff10k": (640, 640),
}


def default_data_dir():
    """The data folder: `$RIGNET_DATA_DIR`, or `~/.rignet/data`."""
    return os.environ.get(DATA_DIR_ENV) or os.path.join(os.path.expanduser("~"), ".rignet", "data")


def check_source(source):
    """Returns `source` if it is a known dataset name; raises `ValueError` otherwise."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES} or 'tfds:<name>'; received {source!r}")
    return source


def get_info(source, *, label_convention="171", data_dir=None, synthetic_config=None):
    """The `DatasetInfo` of a named dataset."""
    check_source(source)
    if source == "voc":
        return voc_info()
    if source == "voc_aug":
        return voc_aug_info()
    if source == "sbd":
        return sbd_info()
    if source == "cocostuff10k":
        return cocostuff_info(label_convention)
    if synthetic_config is None and data_dir is not None:
        synthetic_config = load_synthetic_config(data_dir)
    return synthetic_info(synthetic_config)


def get_records(source, split, data_dir=None, *, label_convention="171", on_bad_sample="raise"):
    """(records, info) of a named dataset's split on disk.

    Args:
        source: "voc", "voc_aug", "sbd", "cocostuff10k", or "synthetic" (written to disk by
            `write_synthetic_voc`; in VOC layout with a `synthetic.json`).
        split: a split of that dataset ("train", "val", "trainval", "test").
        data_dir: the data folder (default `default_data_dir()`).
        label_convention: COCO-Stuff only, "171" or "182".
        on_bad_sample: "raise", "skip" or a `BadSampleLog` (which counts them), for listed
            samples with missing files.
    """
    check_source(source)
    data_dir = (
        os.path.expanduser(os.fspath(data_dir)) if data_dir is not None else default_data_dir()
    )
    kw = {"on_bad_sample": on_bad_sample}
    if source == "voc":
        records = voc_records(data_dir, split, **kw)
    elif source == "voc_aug":
        records = voc_aug_records(data_dir, split, **kw)
    elif source == "sbd":
        records = sbd_records(data_dir, split, **kw)
    elif source == "cocostuff10k":
        records = cocostuff_records(data_dir, split, label_convention, **kw)
    else:
        if load_synthetic_config(data_dir) is None:
            raise DatasetError(
                f"no synthetic dataset in {data_dir} (synthetic.json not found); write one with "
                f"`rignet data synthetic --output-dir {data_dir}`, or leave "
                "data_dir out to generate it in memory"
            )
        records = voc_records(data_dir, split, **kw)
    info = get_info(source, label_convention=label_convention, data_dir=data_dir)
    return records, info
