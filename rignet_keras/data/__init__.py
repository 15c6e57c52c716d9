"""Data layer of rignet-keras: dataset readers, the synthetic dataset, TFRecord conversion, the
tf.data pipeline with the field's augmentation, downloads, and checks of bad input.

Quick start::

    from rignet_keras.data import build_dataset

    train = build_dataset("synthetic", "train", batch_size=8, training=True, seed=0)
    for images, masks in train.take(1):
        ...  # images float32 (8, 96, 96, 3) normalised ("caffe"), masks int32 (8, 96, 96)

See docs/DATA.md for the datasets, their layouts and the commands.
"""

from rignet_keras.data.augment import (
    EVAL_MODES,
    eval_preprocess,
    pad_to_size,
    photometric_jitter,
    random_crop,
    random_flip,
    random_scale,
    random_scale_pad_crop,
    train_augment,
)
from rignet_keras.data.cocostuff import (
    COCOSTUFF_NAMES_182,
    UNUSED_THING_IDS,
    cocostuff_info,
    cocostuff_label_map,
    cocostuff_records,
    read_cocostuff_mask,
)
from rignet_keras.data.download import (
    ARCHIVES,
    Archive,
    DownloadError,
    OfflineError,
    download_archive,
    download_dataset,
    download_file,
    extract_archive,
)
from rignet_keras.data.errors import BadSampleLog, DatasetError, dataset_error_from
from rignet_keras.data.info import IGNORE_LABEL, DatasetInfo
from rignet_keras.data.masks import decode_mask, load_sample
from rignet_keras.data.palette import colorize, voc_palette
from rignet_keras.data.pipeline import build_dataset
from rignet_keras.data.records import Record, read_id_list
from rignet_keras.data.sbd import (
    aug_train_ids,
    read_sbd_mask,
    sbd_records,
    voc_aug_info,
    voc_aug_records,
    voc_aug_train_ids,
)
from rignet_keras.data.shards import read_tfrecord_info, tfrecord_files
from rignet_keras.data.sources import SOURCES, default_data_dir, get_info, get_records
from rignet_keras.data.synthetic import (
    SyntheticConfig,
    generate_sample,
    make_synthetic,
    save_sample_grid,
    synthetic_info,
    write_synthetic_voc,
)
from rignet_keras.data.tfrecord import ConversionReport, convert_to_tfrecord, parse_example
from rignet_keras.data.validate import ValidationReport, validate_dataset
from rignet_keras.data.voc import VOC_CLASSES, read_png_mask, voc_info, voc_records, write_png_mask

__all__ = [
    "ARCHIVES",
    "COCOSTUFF_NAMES_182",
    "EVAL_MODES",
    "IGNORE_LABEL",
    "SOURCES",
    "UNUSED_THING_IDS",
    "VOC_CLASSES",
    "Archive",
    "BadSampleLog",
    "ConversionReport",
    "DatasetError",
    "DatasetInfo",
    "DownloadError",
    "OfflineError",
    "Record",
    "SyntheticConfig",
    "ValidationReport",
    "aug_train_ids",
    "build_dataset",
    "cocostuff_info",
    "cocostuff_label_map",
    "cocostuff_records",
    "colorize",
    "convert_to_tfrecord",
    "dataset_error_from",
    "decode_mask",
    "default_data_dir",
    "download_archive",
    "download_dataset",
    "download_file",
    "eval_preprocess",
    "extract_archive",
    "generate_sample",
    "get_info",
    "get_records",
    "load_sample",
    "make_synthetic",
    "pad_to_size",
    "parse_example",
    "photometric_jitter",
    "random_crop",
    "random_flip",
    "random_scale",
    "random_scale_pad_crop",
    "read_cocostuff_mask",
    "read_id_list",
    "read_png_mask",
    "read_sbd_mask",
    "read_tfrecord_info",
    "save_sample_grid",
    "sbd_records",
    "synthetic_info",
    "tfrecord_files",
    "train_augment",
    "validate_dataset",
    "voc_aug_info",
    "voc_aug_records",
    "voc_aug_train_ids",
    "voc_info",
    "voc_palette",
    "voc_records",
    "write_png_mask",
    "write_synthetic_voc",
]
