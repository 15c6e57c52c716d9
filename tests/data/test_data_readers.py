"""Readers of the real layouts: VOC 2012, SBD, the augmented list, COCO-Stuff 10k."""

import os

import numpy as np
import pytest
import scipy.io
import tensorflow as tf
from PIL import Image

from rignet_keras.data import (
    DatasetInfo,
    aug_train_ids,
    cocostuff_info,
    cocostuff_label_map,
    cocostuff_records,
    decode_mask,
    get_records,
    load_sample,
    read_id_list,
    read_png_mask,
    read_sbd_mask,
    sbd_records,
    voc_aug_records,
    voc_aug_train_ids,
    voc_info,
    voc_palette,
    voc_records,
    write_png_mask,
)
from rignet_keras.data.sbd import write_sbd_mask
from tests.data.data_fixtures import write_list


def test_voc_records_and_exact_masks(voc_tree):
    records = voc_records(voc_tree.root, "train")
    assert [r.id for r in records] == voc_tree.voc_train
    for r in records:
        assert r.mask_format == "png"
        assert r.image_path.endswith(os.path.join("JPEGImages", f"{r.id}.jpg"))
        np.testing.assert_array_equal(decode_mask(r.mask_path, r.mask_format), voc_tree.masks[r.id])
        image, mask = load_sample(r, 21)
        assert image.shape == voc_tree.images[r.id].shape and image.dtype == np.uint8
        np.testing.assert_array_equal(mask, voc_tree.masks[r.id])
    assert [r.id for r in voc_records(voc_tree.root, "trainval")] == (
        voc_tree.voc_train + voc_tree.voc_val
    )
    # data_dir may also be VOCdevkit/VOC2012 itself
    assert len(voc_records(voc_tree.voc, "val")) == 2


def test_voc_masks_are_palette_indices_not_colours(tmp_path):
    mask = np.array([[0, 1, 15], [255, 20, 7]], np.uint8)
    path = str(tmp_path / "m.png")
    write_png_mask(path, mask)
    with Image.open(path) as im:
        assert im.mode == "P"
    np.testing.assert_array_equal(read_png_mask(path), mask)
    # tf.io.decode_png returns the palette's colours, which is why the reader uses Pillow.
    colours = tf.io.decode_png(tf.io.read_file(path), channels=3).numpy()
    np.testing.assert_array_equal(colours, voc_palette()[mask])
    assert tuple(voc_palette()[255]) == (224, 224, 192)
    assert tuple(voc_palette()[1]) == (128, 0, 0)


def test_voc_info():
    info = voc_info()
    assert (info.num_classes, info.ignore_label, info.class_names[15]) == (21, 255, "person")
    assert DatasetInfo.from_dict(info.to_dict()) == info


def test_sbd_mat_layout_and_reader(voc_tree, tmp_path):
    seg = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = str(tmp_path / "x.mat")
    write_sbd_mask(path, seg)
    # the access path of the real files works on what the fixture writes
    got = scipy.io.loadmat(path)["GTcls"][0]["Segmentation"][0]
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, seg)
    np.testing.assert_array_equal(read_sbd_mask(path), seg)

    records = sbd_records(voc_tree.root, "val")
    assert [r.id for r in records] == voc_tree.sbd_val
    for r in records:
        assert r.mask_format == "sbd_mat"
        np.testing.assert_array_equal(
            decode_mask(r.mask_path, r.mask_format), voc_tree.sbd_masks[r.id]
        )


def test_aug_list_arithmetic():
    voc_train, voc_val = ["a", "b", "c"], ["d", "e"]
    sbd_train, sbd_val = ["b", "f", "d", "g"], ["g", "h", "e", "a"]
    # union minus VOC val, de-duplicated, sorted
    assert aug_train_ids(voc_train, sbd_train, sbd_val, voc_val) == ["a", "b", "c", "f", "g", "h"]


def test_voc_aug_from_voc_and_sbd(voc_tree, caplog):
    caplog.set_level("INFO", logger="rignet_keras.data")
    ids, summary = voc_aug_train_ids(voc_tree.root)
    expected = sorted(
        (set(voc_tree.voc_train) | set(voc_tree.sbd_train) | set(voc_tree.sbd_val))
        - set(voc_tree.voc_val)
    )
    assert ids == expected
    assert summary.startswith(f"voc_aug train: {len(expected)} images")
    assert summary in caplog.text

    records = voc_aug_records(voc_tree.root, "train")
    assert [r.id for r in records] == expected
    for r in records:
        # VOC's own mask where VOC has one, else SBD's
        if r.id in voc_tree.masks:
            assert r.mask_format == "png"
            want = voc_tree.masks[r.id]
        else:
            assert r.mask_format == "sbd_mat"
            want = voc_tree.sbd_masks[r.id]
        np.testing.assert_array_equal(decode_mask(r.mask_path, r.mask_format), want)
    assert [r.id for r in voc_aug_records(voc_tree.root, "val")] == voc_tree.voc_val


def test_voc_aug_segmentation_class_aug_layout(voc_tree):
    aug_dir = os.path.join(voc_tree.voc, "SegmentationClassAug")
    os.makedirs(aug_dir)
    ids = ["2008_000020", "2007_000001"]
    masks = {}
    for i in ids:
        h, w = voc_tree.images[i].shape[:2]
        masks[i] = np.full((h, w), 3, np.uint8)
        Image.fromarray(masks[i]).save(os.path.join(aug_dir, f"{i}.png"))  # grayscale 'L'
    # the two-column list of the common layout, with a duplicate line
    lines = [f"/JPEGImages/{i}.jpg /SegmentationClassAug/{i}.png" for i in ids + ids[:1]]
    write_list(os.path.join(voc_tree.voc, "ImageSets", "Segmentation", "train_aug.txt"), lines)
    records = voc_aug_records(voc_tree.root, "train")
    assert [r.id for r in records] == sorted(ids)
    for r in records:
        assert r.mask_path.startswith(aug_dir)
        np.testing.assert_array_equal(decode_mask(r.mask_path, r.mask_format), masks[r.id])


def test_read_id_list_formats(tmp_path):
    path = str(tmp_path / "l.txt")
    write_list(path, ["2007_000032", "", "/JPEGImages/2007_000039.jpg /SegmentationClassAug/x.png"])
    assert read_id_list(path) == ["2007_000032", "2007_000039"]


def test_cocostuff_182_convention(coco_tree):
    records = cocostuff_records(coco_tree.root, "train", "182")
    assert [r.id for r in records] == coco_tree.train
    for r in records:
        s = coco_tree.raw[r.id].astype(np.int64)
        want = np.where(s == 0, 255, s - 1)
        np.testing.assert_array_equal(decode_mask(r.mask_path, r.mask_format), want)
        np.testing.assert_array_equal(
            decode_mask(r.mask_path, r.mask_format)[0, :6], [255, 0, 11, 12, 91, 181]
        )
    info = cocostuff_info("182")
    assert (info.num_classes, info.label_convention) == (182, "182")


def test_cocostuff_171_convention(coco_tree):
    lut = cocostuff_label_map("171")
    unused = [12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91]
    kept = [s for s in range(1, 183) if s not in unused]
    assert len(kept) == 171
    for label, s in enumerate(kept):
        assert lut[s] == label
    assert all(lut[s] == 255 for s in [0, *unused])
    # exact: things 1..11 -> 0..10, 13 -> 11, 90 (toothbrush) -> 79, stuff 92 -> 80, 182 -> 170
    assert lut[[1, 11, 13, 90, 92, 182]].tolist() == [0, 10, 11, 79, 80, 170]

    records = cocostuff_records(coco_tree.root, "test", label_convention=171)
    assert [r.id for r in records] == coco_tree.test
    for r in records:
        got = decode_mask(r.mask_path, r.mask_format)
        np.testing.assert_array_equal(got, lut[coco_tree.raw[r.id]])
        assert got[0, :6].tolist() == [255, 0, 255, 11, 80, 170]
    info = cocostuff_info("171")
    assert (info.num_classes, info.label_convention, info.class_names[0]) == (171, "171", "person")
    assert info.class_names[11] == "stop sign" and info.class_names[80] == "banner"
    assert "hair brush" not in info.class_names


def test_cocostuff_convention_is_checked(coco_tree):
    with pytest.raises(ValueError, match="label_convention"):
        cocostuff_records(coco_tree.root, "train", "172")


def test_get_records_dispatch(voc_tree, coco_tree):
    records, info = get_records("voc_aug", "train", voc_tree.root)
    assert info.name == "voc_aug" and len(records) > len(voc_tree.voc_train)
    records, info = get_records(
        "cocostuff10k", "train", os.path.dirname(coco_tree.root), label_convention="182"
    )
    assert info.num_classes == 182 and records[0].mask_format == "cocostuff182"
