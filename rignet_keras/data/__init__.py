"""Data layer of rignet-keras: dataset readers, the synthetic dataset, the TFDS
builders, the tf.data pipeline with the field's augmentation, downloads, and checks of bad input.

Quick start::

    from rignet_keras.data import build_dataset

    train = build_dataset("synthetic", "train", batch_size=8, training=True, seed=0)
    for images, masks in train.take(1):
        ...  # images float32 (8, 96, 96, 3) normalised ("caffe"), masks int32 (8, 96, 96)

See docs/DATA.md for the datasets, their layouts and the commands.

The names below load their module on first use, so that `rignet data --help`
and the modules that need no TensorFlow start without importing it.
"""

import sys

from rignet_keras.lazy import lazy_attributes

# Public name -> the module that defines it.
_LAZY = {
    "EVAL_MODES": "rignet_keras.data.augment",
    "eval_preprocess": "rignet_keras.data.augment",
    "pad_to_size": "rignet_keras.data.augment",
    "photometric_jitter": "rignet_keras.data.augment",
    "random_crop": "rignet_keras.data.augment",
    "random_flip": "rignet_keras.data.augment",
    "random_scale": "rignet_keras.data.augment",
    "random_scale_pad_crop": "rignet_keras.data.augment",
    "train_augment": "rignet_keras.data.augment",
    "COCOSTUFF_NAMES_182": "rignet_keras.data.cocostuff",
    "UNUSED_THING_IDS": "rignet_keras.data.cocostuff",
    "cocostuff_info": "rignet_keras.data.cocostuff",
    "cocostuff_label_map": "rignet_keras.data.cocostuff",
    "cocostuff_records": "rignet_keras.data.cocostuff",
    "read_cocostuff_mask": "rignet_keras.data.cocostuff",
    "ARCHIVES": "rignet_keras.data.download",
    "Archive": "rignet_keras.data.download",
    "DownloadError": "rignet_keras.data.download",
    "OfflineError": "rignet_keras.data.download",
    "download_archive": "rignet_keras.data.download",
    "download_dataset": "rignet_keras.data.download",
    "download_file": "rignet_keras.data.download",
    "extract_archive": "rignet_keras.data.download",
    "BadSampleLog": "rignet_keras.data.errors",
    "DatasetError": "rignet_keras.data.errors",
    "dataset_error_from": "rignet_keras.data.errors",
    "DatasetInfo": "rignet_keras.data.info",
    "IGNORE_LABEL": "rignet_keras.data.info",
    "decode_mask": "rignet_keras.data.masks",
    "load_sample": "rignet_keras.data.masks",
    "colorize": "rignet_keras.data.palette",
    "voc_palette": "rignet_keras.data.palette",
    "build_dataset": "rignet_keras.data.pipeline",
    "Record": "rignet_keras.data.records",
    "read_id_list": "rignet_keras.data.records",
    "aug_train_ids": "rignet_keras.data.sbd",
    "read_sbd_mask": "rignet_keras.data.sbd",
    "sbd_records": "rignet_keras.data.sbd",
    "voc_aug_info": "rignet_keras.data.sbd",
    "voc_aug_records": "rignet_keras.data.sbd",
    "voc_aug_train_ids": "rignet_keras.data.sbd",
    "SOURCES": "rignet_keras.data.sources",
    "default_data_dir": "rignet_keras.data.sources",
    "get_info": "rignet_keras.data.sources",
    "get_records": "rignet_keras.data.sources",
    "SyntheticConfig": "rignet_keras.data.synthetic",
    "generate_sample": "rignet_keras.data.synthetic",
    "make_synthetic": "rignet_keras.data.synthetic",
    "save_sample_grid": "rignet_keras.data.synthetic",
    "synthetic_info": "rignet_keras.data.synthetic",
    "write_synthetic_voc": "rignet_keras.data.synthetic",
    "ValidationReport": "rignet_keras.data.validate",
    "validate_dataset": "rignet_keras.data.validate",
    "VOC_CLASSES": "rignet_keras.data.voc",
    "read_png_mask": "rignet_keras.data.voc",
    "voc_info": "rignet_keras.data.voc",
    "voc_records": "rignet_keras.data.voc",
    "write_png_mask": "rignet_keras.data.voc",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())

# The TFDS builders (rignet_voc_aug, rignet_cocostuff10k, rignet_synthetic) register when
# `rignet_keras.data.builders` is imported. Where TFDS is loaded already, that costs nothing more
# and `tfds.load("rignet_...")` then works after `import rignet_keras.data`; otherwise it waits,
# so that the commands that need no TensorFlow start without it.
if "tensorflow_datasets" in sys.modules:
    import rignet_keras.data.builders  # noqa: E402, F401
