"""Bad input: every message names the file (or folder) at fault, and missing data names the
command that downloads it. Bad samples are fatal or skipped-and-counted, by `on_bad_sample`."""

import os

import numpy as np
import pytest
import scipy.io
import tensorflow as tf
from PIL import Image

from rignet_keras.data import (
    DatasetError,
    build_dataset,
    cocostuff_records,
    decode_mask,
    get_records,
    sbd_records,
    validate_dataset,
    voc_aug_records,
    voc_records,
    write_png_mask,
)
from tests.data.data_fixtures import write_jpeg


def test_missing_voc_folder_names_path_and_download(tmp_path):
    with pytest.raises(DatasetError) as e:
        voc_records(tmp_path, "train")
    msg = str(e.value)
    assert os.path.join(str(tmp_path), "VOCdevkit", "VOC2012") in msg
    assert f"rignet data download voc --data-dir {tmp_path}" in msg


def test_missing_sbd_names_its_download(voc_tree):
    import shutil

    shutil.rmtree(os.path.join(voc_tree.root, "benchmark_RELEASE"))
    with pytest.raises(DatasetError, match="download sbd"):
        voc_aug_records(voc_tree.root, "train")
    with pytest.raises(DatasetError, match="benchmark_RELEASE"):
        sbd_records(voc_tree.root, "train")


def test_missing_cocostuff_names_its_download(tmp_path):
    with pytest.raises(DatasetError, match="download cocostuff10k"):
        cocostuff_records(tmp_path, "train")


def test_missing_split_list_names_it(voc_tree):
    path = os.path.join(voc_tree.voc, "ImageSets", "Segmentation", "val.txt")
    os.remove(path)
    with pytest.raises(DatasetError, match=path):
        voc_records(voc_tree.root, "val")


def test_missing_listed_file(voc_tree, caplog):
    missing = os.path.join(voc_tree.voc, "JPEGImages", "2007_000002.jpg")
    os.remove(missing)
    with pytest.raises(DatasetError, match=missing):
        voc_records(voc_tree.root, "train")
    records = voc_records(voc_tree.root, "train", on_bad_sample="skip")
    assert [r.id for r in records] == ["2007_000001", "2008_000003"]
    assert "1 of 3 listed samples have missing files" in caplog.text


def test_unknown_source_is_named(tmp_path):
    with pytest.raises(DatasetError, match="'vocc'"):
        build_dataset("vocc", batch_size=1, training=False)
    with pytest.raises(DatasetError, match="synthetic.json"):
        get_records("synthetic", "train", tmp_path)


def _break(voc_tree, kind):
    """Breaks sample 2007_000002 of VOC train in one way; returns the file that is at fault."""
    sample = "2007_000002"
    image = os.path.join(voc_tree.voc, "JPEGImages", f"{sample}.jpg")
    mask = os.path.join(voc_tree.voc, "SegmentationClass", f"{sample}.png")
    h, w = voc_tree.masks[sample].shape
    if kind == "size":
        write_jpeg(image, np.zeros((h + 3, w, 3), np.uint8))
        return mask
    if kind == "corrupt_image":
        with open(image, "wb") as f:
            f.write(b"\x00garbage" * 10)
        return image
    if kind == "truncated_image":
        with open(image, "rb") as f:
            data = f.read()
        with open(image, "wb") as f:
            f.write(data[: len(data) // 2])
        return image
    if kind == "corrupt_mask":
        with open(mask, "wb") as f:
            f.write(b"\x89PNG broken")
        return mask
    if kind == "label":
        bad = voc_tree.masks[sample].copy()
        bad[1, 1] = 30
        write_png_mask(mask, bad)
        return mask
    if kind == "rgb_mask":
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(mask)
        return mask
    raise ValueError(kind)


KINDS = ["size", "corrupt_image", "truncated_image", "corrupt_mask", "label", "rgb_mask"]


@pytest.mark.parametrize("kind", KINDS)
def test_validate_names_the_bad_file(voc_tree, kind):
    culprit = _break(voc_tree, kind)
    records, info = get_records("voc", "train", voc_tree.root)
    with pytest.raises(DatasetError, match=culprit):
        validate_dataset(records, info, progress=False)
    report = validate_dataset(records, info, on_bad_sample="skip", progress=False)
    assert [i for i, _ in report.bad] == ["2007_000002"]
    assert len(report.valid) == 2
    assert report.summary.startswith("skipped 1 of 3 samples") and culprit in report.summary


def test_size_and_label_messages_say_what_is_wrong(voc_tree):
    _break(voc_tree, "size")
    records, info = get_records("voc", "train", voc_tree.root)
    with pytest.raises(DatasetError, match=r"has size 22x25 \(HxW\) but image .* has size 25x25"):
        validate_dataset(records, info, progress=False)


def test_label_message(voc_tree):
    _break(voc_tree, "label")
    records, info = get_records("voc", "train", voc_tree.root)
    with pytest.raises(DatasetError, match=r"holds labels \[30\] outside 0\.\.20"):
        validate_dataset(records, info, progress=False)


@pytest.mark.parametrize(
    "kind", ["size", "corrupt_image", "truncated_image", "corrupt_mask", "label"]
)
def test_direct_pipeline_names_the_bad_file(voc_tree, kind):
    culprit = _break(voc_tree, kind)
    kw = dict(data_dir=voc_tree.root, batch_size=1, training=False, eval_mode="none")
    with pytest.raises(tf.errors.OpError, match=os.path.basename(culprit)):
        list(build_dataset("voc", "train", **kw))
    out = list(build_dataset("voc", "train", on_bad_sample="skip", **kw))
    assert len(out) == 2


def test_cocostuff_value_out_of_range(coco_tree):
    sample = coco_tree.train[0]
    path = os.path.join(coco_tree.root, "annotations", f"{sample}.mat")
    s = coco_tree.raw[sample].copy()
    s[2, 2] = 200
    scipy.io.savemat(path, {"S": s})
    with pytest.raises(DatasetError, match=rf"{path}: S holds values in \[0, 200\]"):
        decode_mask(path, "cocostuff171")
    scipy.io.savemat(path, {"T": s})
    with pytest.raises(DatasetError, match=rf"cannot read COCO-Stuff annotation {path}"):
        decode_mask(path, "cocostuff182")


def test_sbd_mat_without_gtcls(voc_tree):
    path = os.path.join(voc_tree.sbd, "cls", "2008_000020.mat")
    scipy.io.savemat(path, {"other": np.zeros((2, 2))})
    with pytest.raises(DatasetError, match=rf"cannot read SBD mask {path}"):
        decode_mask(path, "sbd_mat")
