"""TFRecord conversion: a round trip gives back identical masks and the unchanged JPEG bytes; shards
appear atomically; `dataset_info.json` records the label convention and each shard's size and
digest (the faults it guards against: test_data_faults.py)."""

import glob
import hashlib
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from rignet_keras.data import (
    DatasetError,
    cocostuff_label_map,
    convert_to_tfrecord,
    get_records,
    parse_example,
    read_tfrecord_info,
    tfrecord_files,
    voc_info,
)
from tests.data.data_fixtures import write_jpeg

RAW_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/format": tf.io.FixedLenFeature([], tf.string),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "image/id": tf.io.FixedLenFeature([], tf.string),
}


def read_all(files):
    return [r.numpy() for r in tf.data.TFRecordDataset(files)]


def test_round_trip_voc(voc_tree, tmp_path):
    records, info = get_records("voc", "trainval", voc_tree.root)
    out = str(tmp_path / "shards")
    report = convert_to_tfrecord(records, out, info, split="trainval", num_shards=2, progress=False)
    assert report.num_examples == len(records) and not report.bad
    assert [os.path.basename(p) for p in report.shards] == [
        "trainval-00000-of-00002.tfrecord",
        "trainval-00001-of-00002.tfrecord",
    ]
    assert tfrecord_files(out, "trainval") == report.shards
    assert not glob.glob(os.path.join(out, "*.tmp"))
    serialized = read_all(report.shards)
    assert len(serialized) == len(records)
    for record, example in zip(records, serialized, strict=True):
        raw = tf.io.parse_single_example(example, RAW_FEATURES)
        with open(record.image_path, "rb") as f:
            assert raw["image/encoded"].numpy() == f.read()  # JPEG bytes passed through unchanged
        assert raw["image/format"].numpy() == b"jpeg"
        assert raw["image/id"].numpy().decode() == record.id
        parsed = parse_example(example)
        mask = voc_tree.masks[record.id]
        assert (raw["image/height"].numpy(), raw["image/width"].numpy()) == mask.shape
        assert parsed["mask"].dtype == tf.uint8
        np.testing.assert_array_equal(parsed["mask"].numpy(), mask)
        decoded = tf.io.decode_jpeg(tf.io.read_file(record.image_path)).numpy()
        np.testing.assert_array_equal(parsed["image"].numpy(), decoded)
    assert read_tfrecord_info(out) == info
    with open(os.path.join(out, "dataset_info.json")) as f:
        meta = json.load(f)
    assert meta["splits"]["trainval"]["num_examples"] == len(records)
    # the record lists each shard with its examples, size and digest, as they are on disk
    listed = meta["splits"]["trainval"]["shards"]
    assert [e["file"] for e in listed] == [os.path.basename(p) for p in report.shards]
    assert sum(e["num_examples"] for e in listed) == len(records)
    for entry, path in zip(listed, report.shards, strict=True):
        with open(path, "rb") as f:
            data = f.read()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["num_examples"] == len(read_all([path]))


def test_round_trip_cocostuff_keeps_the_convention(coco_tree, tmp_path):
    data_dir = os.path.dirname(coco_tree.root)
    records, info = get_records("cocostuff10k", "train", data_dir, label_convention="171")
    out = tmp_path / "coco"
    report = convert_to_tfrecord(records, out, info, split="train", progress=False)
    lut = cocostuff_label_map("171")
    for record, example in zip(records, read_all(report.shards), strict=True):
        np.testing.assert_array_equal(
            parse_example(example)["mask"].numpy(), lut[coco_tree.raw[record.id]]
        )
    stored = read_tfrecord_info(out)
    assert (stored.label_convention, stored.num_classes) == ("171", 171)
    # another convention into the same folder is refused: results would not be comparable
    records182, info182 = get_records("cocostuff10k", "test", data_dir, label_convention="182")
    with pytest.raises(DatasetError, match="label_convention"):
        convert_to_tfrecord(records182, out, info182, split="test", progress=False)


def test_reconverting_replaces_stale_shards(voc_tree, tmp_path):
    records, info = get_records("voc", "train", voc_tree.root)
    out = tmp_path / "s"
    convert_to_tfrecord(records, out, info, split="train", num_shards=3, progress=False)
    convert_to_tfrecord(records, out, info, split="train", num_shards=1, progress=False)
    assert [os.path.basename(p) for p in tfrecord_files(out, "train")] == [
        "train-00000-of-00001.tfrecord"
    ]


def test_bad_sample_raise_leaves_no_partial_shard(voc_tree, tmp_path):
    records, info = get_records("voc", "train", voc_tree.root)
    bad = records[1]
    write_jpeg(bad.image_path, np.zeros((5, 5, 3), np.uint8))  # mask no longer fits
    out = tmp_path / "s"
    with pytest.raises(DatasetError, match=os.path.basename(bad.mask_path)):
        convert_to_tfrecord(records, out, info, split="train", num_shards=1, progress=False)
    assert not glob.glob(os.path.join(out, "*"))


def test_bad_sample_skip_is_counted(voc_tree, tmp_path):
    records, info = get_records("voc", "train", voc_tree.root)
    bad = records[0]
    with open(bad.image_path, "wb") as f:
        f.write(b"not a jpeg")
    report = convert_to_tfrecord(
        records, tmp_path / "s", info, split="train", on_bad_sample="skip", progress=False
    )
    assert report.num_examples == len(records) - 1
    assert [i for i, _ in report.bad] == [bad.id]
    assert f"skipped 1 of {len(records)}" in report.summary
    assert os.path.basename(bad.image_path) in report.summary
    assert len(read_all(report.shards)) == len(records) - 1


def test_labels_are_checked_against_the_info(voc_tree, tmp_path):
    records, _ = get_records("voc", "train", voc_tree.root)
    small = voc_info().__class__("tiny", 3, "x", ("a", "b", "c"))
    with pytest.raises(DatasetError, match=r"outside 0\.\.2"):
        convert_to_tfrecord(records, tmp_path / "s", small, split="train", progress=False)


def test_missing_shards_name_the_pattern(tmp_path):
    with pytest.raises(DatasetError, match="no TFRecord shards match"):
        tfrecord_files(str(tmp_path / "nothing-*.tfrecord"))


def test_voc_aug_train_and_val_share_a_folder(voc_tree, tmp_path):
    out = tmp_path / "voc_aug"
    for split in ("train", "val"):
        records, info = get_records("voc_aug", split, voc_tree.root)
        convert_to_tfrecord(records, out, info, split=split, progress=False)
    with open(out / "dataset_info.json") as f:
        splits = json.load(f)["splits"]
    assert splits["val"]["num_examples"] == len(voc_tree.voc_val)
    assert len(tfrecord_files(out, "train")) == 1 and len(tfrecord_files(out, "val")) == 1
