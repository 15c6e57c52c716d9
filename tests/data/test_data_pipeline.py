"""`build_dataset`: documented shapes and dtypes, deterministic batches with a seed, resuming with
`skip_batches`, and the direct path's masks (the TFDS path: test_data_pipeline_tfds.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rignet_keras.data import SyntheticConfig, build_dataset
from rignet_keras.preprocessing import denormalize

SMALL = SyntheticConfig(image_size=(48, 48))


def batches(ds, n):
    return [tuple(t.numpy() for t in b) for b in ds.take(n)]


def synthetic_train(**kw):
    args = dict(batch_size=4, training=True, synthetic_config=SMALL, num_samples=24)
    args.update(kw)
    return build_dataset("synthetic", "train", **args)


def test_training_shapes_and_dtypes():
    ds, info = synthetic_train(seed=0, crop_size=(40, 36), with_info=True)
    assert info.name == "synthetic" and info.num_classes == 5
    spec_image, spec_mask = ds.element_spec
    assert spec_image.shape.as_list() == [4, 40, 36, 3] and spec_image.dtype == tf.float32
    assert spec_mask.shape.as_list() == [4, 40, 36] and spec_mask.dtype == tf.int32
    out = batches(ds, 6)
    assert len(out) == 6  # 24 samples, batch 4, drop_remainder
    images, masks = out[0]
    assert set(np.unique(masks).tolist()) <= {0, 1, 2, 3, 4, 255}
    # "caffe" normalisation: BGR minus the mean; back on the 0-255 scale after denormalize
    rgb = denormalize(images, "caffe")
    assert rgb.min() >= -1e-3 and rgb.max() <= 255 + 1e-3


@pytest.mark.parametrize("mode", ["torch", "tf"])
def test_preprocessing_modes(mode):
    images, _ = batches(synthetic_train(seed=0, preprocessing=mode), 1)[0]
    rgb = denormalize(images, mode)
    assert rgb.min() >= -1e-2 and rgb.max() <= 255 + 1e-2


def test_default_crop_is_the_synthetic_image_size():
    ds = synthetic_train(seed=0)
    assert ds.element_spec[0].shape.as_list() == [4, 48, 48, 3]


def test_deterministic_with_a_seed():
    a = batches(synthetic_train(seed=5, photometric=True), 3)
    b = batches(synthetic_train(seed=5, photometric=True), 3)
    c = batches(synthetic_train(seed=6, photometric=True), 3)
    for (ai, am), (bi, bm) in zip(a, b, strict=True):
        np.testing.assert_array_equal(ai, bi)
        np.testing.assert_array_equal(am, bm)
    assert not all(np.array_equal(ai, ci) for (ai, _), (ci, _) in zip(a, c, strict=True))


def test_epochs_differ_but_are_reproducible():
    ds = synthetic_train(seed=1)
    first = batches(ds, 1)[0][1]
    second = batches(ds, 1)[0][1]
    assert not np.array_equal(first, second)  # reshuffled and re-augmented per iteration
    again = synthetic_train(seed=1)
    np.testing.assert_array_equal(batches(again, 1)[0][1], first)
    np.testing.assert_array_equal(batches(again, 1)[0][1], second)


def test_skip_batches_resumes_exactly():
    full = batches(synthetic_train(seed=2, repeat=True), 9)  # crosses an epoch boundary (6)
    resumed = batches(synthetic_train(seed=2, repeat=True, skip_batches=7), 2)
    for (fi, fm), (ri, rm) in zip(full[7:], resumed, strict=True):
        np.testing.assert_array_equal(fi, ri)
        np.testing.assert_array_equal(fm, rm)


def test_eval_pad_is_in_order_and_batchable():
    ds = build_dataset(
        "synthetic",
        "val",
        batch_size=3,
        training=False,
        synthetic_config=SMALL,
        num_samples=7,
        eval_size=(56, 64),
        return_ids=True,
    )
    out = batches(ds, 10)
    assert [b[0].shape for b in out] == [(3, 56, 64, 3)] * 2 + [(1, 56, 64, 3)]
    ids = [i.decode() for b in out for i in b[2]]
    assert ids == [f"syn_val_{k:06d}" for k in range(7)]
    masks = out[0][1]
    assert (masks[:, 48:] == 255).all() and (masks[:, :, 48:] == 255).all()


def test_eval_resize_gives_ragged_masks(voc_tree):
    ds = build_dataset(
        "voc",
        "val",
        data_dir=voc_tree.root,
        batch_size=2,
        training=False,
        eval_mode="resize",
        eval_size=(32, 40),
    )
    images, masks = next(iter(ds))
    assert images.shape == (2, 32, 40, 3)
    assert isinstance(masks, tf.RaggedTensor) and masks.dtype == tf.int32
    for k, sample_id in enumerate(voc_tree.voc_val):  # full resolution, never resized
        np.testing.assert_array_equal(masks[k].numpy(), voc_tree.masks[sample_id])


def test_eval_none_needs_batch_size_one():
    with pytest.raises(ValueError, match="batch_size=1"):
        build_dataset("synthetic", "val", batch_size=2, training=False, eval_mode="none")


def test_argument_checks():
    with pytest.raises(ValueError, match="preprocessing"):
        synthetic_train(preprocessing="keras")
    with pytest.raises(ValueError, match="batch_size"):
        synthetic_train(batch_size=0)
    with pytest.raises(ValueError, match="on_bad_sample"):
        synthetic_train(on_bad_sample="ignore")


def test_direct_path_masks_and_seeded_training(voc_tree):
    """The direct path's masks are the files' labels, and a seed fixes its training batches (the
    TFDS path against this one: tests/data/test_data_pipeline_tfds.py)."""
    kw = dict(batch_size=1, training=False, eval_mode="none", return_ids=True)
    direct = batches(build_dataset("voc", "trainval", data_dir=voc_tree.root, **kw), 10)
    assert len(direct) == 5
    for _, dm, did in direct:
        np.testing.assert_array_equal(dm[0], voc_tree.masks[did[0].decode()])

    train_kw = dict(batch_size=2, training=True, seed=3, crop_size=(24, 24))
    a = batches(build_dataset("voc", "trainval", data_dir=voc_tree.root, **train_kw), 2)
    b = batches(build_dataset("voc", "trainval", data_dir=voc_tree.root, **train_kw), 2)
    for (ai, am), (bi, bm) in zip(a, b, strict=True):
        np.testing.assert_array_equal(ai, bi)
        np.testing.assert_array_equal(am, bm)


def test_voc_defaults(voc_tree):
    ds, info = build_dataset(
        "voc_aug", "train", data_dir=voc_tree.root, batch_size=2, training=True, with_info=True
    )
    assert info.name == "voc_aug" and info.num_classes == 21
    assert ds.element_spec[0].shape.as_list() == [2, 321, 321, 3]
    ds = build_dataset("voc", "val", data_dir=voc_tree.root, batch_size=2, training=False)
    assert ds.element_spec[0].shape.as_list() == [None, 512, 512, 3]


_FIRST_BATCH = """
import hashlib, sys
import keras
from rignet_keras.data import SyntheticConfig, build_dataset
keras.utils.set_random_seed(77)
ds = build_dataset("synthetic", "train", batch_size=4, training=True, seed=11, num_samples=16,
                   synthetic_config=SyntheticConfig(image_size=(48, 48)), photometric=True,
                   repeat=True, skip_batches=int(sys.argv[1]))
images, masks = next(iter(ds))
print(hashlib.md5(images.numpy().tobytes() + masks.numpy().tobytes()).hexdigest())
"""


@pytest.mark.slow
def test_same_batches_in_a_fresh_process():
    """A seed fixes the batches across processes too (what resuming a run relies on), given the
    same TensorFlow global seed (which tf.data combines with `seed`)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

    def digest(skip):
        out = subprocess.run(
            [sys.executable, "-c", _FIRST_BATCH, str(skip)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return out.stdout.strip().splitlines()[-1]

    keras.utils.set_random_seed(77)
    ds = synthetic_train(seed=11, num_samples=16, photometric=True, repeat=True, skip_batches=5)
    images, masks = next(iter(ds))
    import hashlib

    here = hashlib.md5(images.numpy().tobytes() + masks.numpy().tobytes()).hexdigest()
    assert digest(5) == here
