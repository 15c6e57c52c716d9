"""`build_dataset` over a prepared TFDS dataset ("tfds:<name>"): the same samples as the direct
path (ids, pixels, masks with the 255 void), the same augmentation, deterministic with a seed,
resumable with `skip_batches`, TFDS split slicing, and refusals that name the dataset."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import rignet_keras.data.builders  # noqa: F401 (registers the builders)
from rignet_keras.data import DatasetError, build_dataset

tfds.disable_progress_bar()


def batches(ds, n=100):
    return [tuple(t.numpy() for t in b) for b in ds.take(n)]


@pytest.fixture
def prepared(voc_tree, tmp_path):
    data_dir = str(tmp_path / "tfds")
    builder = tfds.builder("rignet_voc_aug", data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=voc_tree.root, num_shards=2)
    )
    return data_dir


def test_tfds_and_direct_paths_agree(voc_tree, prepared):
    kw = dict(batch_size=1, training=False, eval_mode="none", return_ids=True)
    direct = batches(build_dataset("voc_aug", "train", data_dir=voc_tree.root, **kw))
    via_tfds, info = build_dataset(
        "tfds:rignet_voc_aug", "train", data_dir=prepared, with_info=True, **kw
    )
    via_tfds = batches(via_tfds)
    assert info.name == "voc_aug" and info.num_classes == 21 and info.ignore_label == 255
    assert len(direct) == len(via_tfds) == 6
    by_id = {b[2][0]: b for b in via_tfds}  # TFDS orders a split by its keys' hashes
    for image, mask, ids in direct:
        t_image, t_mask, _ = by_id[ids[0]]
        np.testing.assert_array_equal(image, t_image)  # the same JPEG bytes, decoded alike
        np.testing.assert_array_equal(mask, t_mask)


def test_tfds_eval_pad_keeps_void(voc_tree, prepared):
    ds = build_dataset(
        "tfds:rignet_voc_aug", "val", data_dir=prepared, batch_size=2, training=False
    )
    assert ds.element_spec[0].shape.as_list() == [None, 512, 512, 3]
    masks = np.concatenate([m for _, m in batches(ds)])
    assert masks.shape == (2, 512, 512) and masks.dtype == np.int32
    assert 255 in masks and masks.max() == 255
    assert set(np.unique(masks)) <= set(range(21)) | {255}


def test_tfds_training_is_deterministic_and_resumable(prepared):
    kw = dict(batch_size=2, training=True, seed=3, crop_size=(24, 24), repeat=True)
    a = batches(build_dataset("tfds:rignet_voc_aug", "train", data_dir=prepared, **kw), 5)
    b = batches(build_dataset("tfds:rignet_voc_aug", "train", data_dir=prepared, **kw), 5)
    resumed = batches(
        build_dataset("tfds:rignet_voc_aug", "train", data_dir=prepared, skip_batches=2, **kw), 3
    )
    for (ai, am), (bi, bm) in zip(a, b, strict=True):
        np.testing.assert_array_equal(ai, bi)
        np.testing.assert_array_equal(am, bm)
    for (ai, am), (ri, rm) in zip(a[2:], resumed, strict=True):
        np.testing.assert_array_equal(ai, ri)
        np.testing.assert_array_equal(am, rm)
    assert a[0][0].shape == (2, 24, 24, 3) and a[0][1].dtype == np.int32


def test_tfds_split_slicing(prepared):
    kw = dict(batch_size=1, training=False, eval_mode="none")
    half = batches(build_dataset("tfds:rignet_voc_aug", "train[:50%]", data_dir=prepared, **kw))
    assert len(half) == 3


def test_input_context_reads_its_own_files(prepared):
    kw = dict(batch_size=1, training=False, eval_mode="none", return_ids=True)
    ids = []
    for k in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=k)
        ds = build_dataset(
            "tfds:rignet_voc_aug", "train", data_dir=prepared, input_context=context, **kw
        )
        ids.append({b[2][0] for b in batches(ds)})
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    assert len(ids[0] | ids[1]) == 6


def test_unprepared_or_unknown_is_named(tmp_path):
    kw = dict(batch_size=1, training=False, eval_mode="none")
    with pytest.raises(DatasetError, match="tfds:rignet_voc_aug: not prepared in .*tfds"):
        build_dataset("tfds:rignet_voc_aug", "train", data_dir=str(tmp_path / "tfds"), **kw)
    with pytest.raises(DatasetError, match="tfds:no_such_set"):
        build_dataset("tfds:no_such_set", "train", data_dir=str(tmp_path), **kw)
    with pytest.raises(ValueError, match="input_context needs a 'tfds:' source"):
        build_dataset("synthetic", "train", input_context=tf.distribute.InputContext(), **kw)


def test_named_source_resolves_to_its_prepared_builder(voc_tree, prepared):
    # data.source=voc_aug with data_dir a TFDS folder: the builder's dataset (the folder holds no
    # VOCdevkit, so the direct path would refuse it)
    kw = dict(batch_size=1, training=False, eval_mode="none", return_ids=True)
    ds, info = build_dataset("voc_aug", "val", data_dir=prepared, with_info=True, **kw)
    assert {b[2][0].decode() for b in batches(ds)} == set(voc_tree.voc_val)
    assert info.name == "voc_aug"
    # with data_dir the downloaded folders, the direct path as before (file order)
    direct = batches(build_dataset("voc_aug", "val", data_dir=voc_tree.root, **kw))
    assert [b[2][0].decode() for b in direct] == voc_tree.voc_val


def test_synthetic_config_of_another_size_sets_the_crop_and_eval_size(tmp_path):
    from rignet_keras.data.builders import RignetSynthetic, SyntheticBuilderConfig
    from rignet_keras.data.synthetic import SyntheticConfig, generate_sample

    synthetic = SyntheticConfig(image_size=(64, 80), num_classes=3)
    config = SyntheticBuilderConfig(name="s64x80", synthetic=synthetic, num_train=4, num_val=2)
    RignetSynthetic(config=config, data_dir=str(tmp_path)).download_and_prepare()
    builder = tfds.builder("rignet_synthetic/s64x80", data_dir=str(tmp_path))  # from its files
    assert builder.info.metadata["synthetic"]["image_size"] == [64, 80]
    kw = {"data_dir": str(tmp_path), "batch_size": 2}
    ds, info = build_dataset(
        "tfds:rignet_synthetic/s64x80", "train", training=True, seed=0, with_info=True, **kw
    )
    assert info.num_classes == 3
    images, masks = next(iter(ds))
    assert images.shape == (2, 64, 80, 3) and masks.shape == (2, 64, 80)
    val = build_dataset(
        "tfds:rignet_synthetic/s64x80", "val", training=False, return_ids=True, **kw
    )
    images, masks, ids = next(iter(val))
    assert images.shape == (2, 64, 80, 3)
    for mask, sample_id in zip(masks.numpy(), ids.numpy(), strict=True):
        index = int(sample_id.decode().rsplit("_", 1)[1])
        np.testing.assert_array_equal(mask, generate_sample(0, index, synthetic, "val").mask)
