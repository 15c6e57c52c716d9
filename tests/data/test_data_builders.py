"""The TFDS builders (rignet_keras.data.builders) prepared from fixtures in the real VOC, SBD and
COCO-Stuff layouts: ids, shapes, label values and class names; split slicing through `tfds.load`;
the synthetic builder's determinism; refusals that name the missing folder or the bad file."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import rignet_keras.data  # noqa: F401 (registers the builders: TFDS is imported already)
from rignet_keras.data import BadSampleLog, DatasetError
from rignet_keras.data.builders import RignetSynthetic, SyntheticBuilderConfig
from rignet_keras.data.cocostuff import cocostuff_info, read_cocostuff_mask
from rignet_keras.data.synthetic import SyntheticConfig, generate_sample
from rignet_keras.data.voc import VOC_CLASSES
from tests.data.data_fixtures import corrupt_jpeg_body

tfds.disable_progress_bar()


def prepare(name, data_dir, manual_dir=None, **builder_kwargs):
    builder = tfds.builder(name, data_dir=str(data_dir), **builder_kwargs)
    config = tfds.download.DownloadConfig(
        manual_dir=None if manual_dir is None else str(manual_dir)
    )
    builder.download_and_prepare(download_config=config)
    return builder


def examples(builder, split):
    """{id: example} of a split, as numpy."""
    return {ex["image/id"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split=split))}


def jpeg_pixels(path):
    with open(path, "rb") as f:
        return tf.io.decode_image(f.read(), channels=3).numpy()


def test_registered_names():
    names = tfds.list_builders()
    assert {"rignet_voc_aug", "rignet_cocostuff10k", "rignet_synthetic"} <= set(names)


def test_voc_aug_builder(voc_tree, tmp_path):
    builder = prepare("rignet_voc_aug", tmp_path / "tfds", voc_tree.root)
    train, val = examples(builder, "train"), examples(builder, "val")
    expected_train = {
        "2007_000001", "2007_000002", "2008_000003", "2008_000020", "2008_000021", "2008_000022"
    }  # fmt: skip
    assert set(train) == expected_train
    assert set(val) == set(voc_tree.voc_val)
    for sample_id, ex in {**train, **val}.items():
        expected = voc_tree.masks.get(sample_id)
        if expected is None:  # SBD's mask where VOC has none
            expected = voc_tree.sbd_masks[sample_id]
        assert ex["image"].dtype == np.uint8 and ex["mask"].dtype == np.uint8
        assert ex["image"].shape == expected.shape + (3,)
        np.testing.assert_array_equal(ex["mask"][..., 0], expected)
        jpeg = os.path.join(voc_tree.voc, "JPEGImages", f"{sample_id}.jpg")
        np.testing.assert_array_equal(ex["image"], jpeg_pixels(jpeg))
    assert 255 in val["2007_000010"]["mask"]  # VOC's void border kept
    meta = builder.info.metadata
    assert tuple(meta["class_names"]) == VOC_CLASSES
    assert (meta["num_classes"], meta["ignore_label"]) == (21, 255)
    assert builder.info.splits["train"].num_examples == 6
    assert builder.info.supervised_keys == ("image", "mask")


@pytest.mark.parametrize("convention", ["171", "182"])
def test_cocostuff_builder(coco_tree, tmp_path, convention):
    builder = prepare(
        f"rignet_cocostuff10k/{convention}", tmp_path / "tfds", os.path.dirname(coco_tree.root)
    )
    train, test = examples(builder, "train"), examples(builder, "test")
    assert (set(train), set(test)) == (set(coco_tree.train), set(coco_tree.test))
    for sample_id, ex in {**train, **test}.items():
        path = os.path.join(coco_tree.root, "annotations", f"{sample_id}.mat")
        np.testing.assert_array_equal(ex["mask"][..., 0], read_cocostuff_mask(path, convention))
        assert ex["image"].shape == coco_tree.raw[sample_id].shape + (3,)
    info = cocostuff_info(convention)
    assert tuple(builder.info.metadata["class_names"]) == info.class_names
    assert builder.info.metadata["num_classes"] == int(convention)
    first = train[coco_tree.train[0]]["mask"][0, :6, 0]
    # unlabeled -> void; "person" is 0 in both; an unused thing id is void in "171" only
    assert first[0] == 255 and first[1] == 0
    assert (first[2] == 255) == (convention == "171")


def test_tfds_load_with_split_slicing(voc_tree, tmp_path):
    config = tfds.download.DownloadConfig(manual_dir=voc_tree.root)
    half = tfds.load(
        "rignet_voc_aug",
        split="train[:50%]",
        data_dir=str(tmp_path / "tfds"),
        download_and_prepare_kwargs={"download_config": config},
    )
    assert len(list(half)) == 3
    image, mask = next(
        iter(tfds.load("rignet_voc_aug", split="val", data_dir=str(tmp_path / "tfds"),
                       as_supervised=True))
    )  # fmt: skip
    assert image.dtype == tf.uint8 and mask.dtype == tf.uint8 and mask.shape[-1] == 1


def _synthetic(tmp_path, folder, seed):
    config = SyntheticBuilderConfig(
        name=f"tiny_seed{seed}",
        synthetic=SyntheticConfig(image_size=(48, 56)),
        num_train=3,
        num_val=2,
        seed=seed,
    )
    return prepare("rignet_synthetic", tmp_path / folder, config=config)


def test_synthetic_builder_is_deterministic_for_a_seed(tmp_path):
    a, b = (
        examples(_synthetic(tmp_path, "a", 3), "train"),
        examples(_synthetic(tmp_path, "b", 3), "train"),
    )
    other = examples(_synthetic(tmp_path, "c", 4), "train")
    assert set(a) == {f"syn_train_{i:06d}" for i in range(3)}
    for i in range(3):
        key = f"syn_train_{i:06d}"
        s = generate_sample(3, i, SyntheticConfig(image_size=(48, 56)), "train")
        np.testing.assert_array_equal(a[key]["image"], s.image)  # PNG: the exact pixels
        np.testing.assert_array_equal(a[key]["mask"][..., 0], s.mask)
        np.testing.assert_array_equal(a[key]["image"], b[key]["image"])
        assert not np.array_equal(a[key]["image"], other[key]["image"])


def test_synthetic_long_range_config():
    builder = RignetSynthetic(config="long_range", data_dir="/nonexistent")
    c = builder.builder_config.synthetic
    assert (c.object_shape, c.mark_position) == ("bar", "end")
    assert builder.info.metadata["num_classes"] == c.num_classes == 3


def test_missing_manual_dir_is_one_line(tmp_path):
    with pytest.raises(DatasetError) as e:
        prepare("rignet_voc_aug", tmp_path / "tfds", tmp_path / "nothing")
    message = str(e.value)
    assert "\n" not in message
    assert "rignet data download voc" in message
    assert str(tmp_path / "nothing") in message


def test_missing_voc_folder_names_it(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "README").write_text("not VOC")
    with pytest.raises(DatasetError, match="VOC 2012 folder not found: .*VOCdevkit/VOC2012"):
        prepare("rignet_voc_aug", tmp_path / "tfds", tmp_path / "other")


def test_corrupt_image_fails_naming_the_file_or_is_skipped_and_counted(voc_tree, tmp_path):
    bad = os.path.join(voc_tree.voc, "JPEGImages", "2007_000001.jpg")
    corrupt_jpeg_body(bad, "huffman")
    with pytest.raises(DatasetError, match="2007_000001.jpg"):
        prepare("rignet_voc_aug", tmp_path / "raise", voc_tree.root)
    assert not tfds.builder("rignet_voc_aug", data_dir=str(tmp_path / "raise")).is_prepared()
    log = BadSampleLog("skip")
    builder = prepare("rignet_voc_aug", tmp_path / "skip", voc_tree.root, on_bad_sample=log)
    assert "2007_000001" not in examples(builder, "train")
    assert builder.info.splits["train"].num_examples == 5
    assert [sample_id for sample_id, _ in log.bad] == ["2007_000001"]


def test_corrupt_mask_fails_naming_the_file(voc_tree, tmp_path):
    bad = os.path.join(voc_tree.sbd, "cls", "2008_000020.mat")
    with open(bad, "wb") as f:
        f.write(b"not a mat file")
    with pytest.raises(DatasetError, match="2008_000020.mat"):
        prepare("rignet_voc_aug", tmp_path / "tfds", voc_tree.root)
