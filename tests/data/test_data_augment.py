"""Augmentation keeps image and mask aligned, never invents labels, pads with the mean pixel and
255; evaluation preprocessing never resizes the mask."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from rignet_keras.data import (
    dataset_error_from,
    eval_preprocess,
    pad_to_size,
    photometric_jitter,
    random_crop,
    random_scale,
    random_scale_pad_crop,
    train_augment,
)
from rignet_keras.preprocessing import IMAGENET_MEAN_RGB

# Far-apart colours, one per class: the mask is a function of the image.
COLOURS = np.array(
    [[0, 0, 0], [250, 10, 10], [10, 250, 10], [10, 10, 250], [250, 250, 10], [250, 250, 250]],
    np.float32,
)


def block_pattern(h=60, w=84, seed=0):
    """An image of constant-colour blocks and its mask (class of each block's colour)."""
    rng = np.random.default_rng(seed)
    by, bx = 6, 7
    blocks = rng.integers(0, len(COLOURS), size=(h // by + 1, w // bx + 1))
    mask = np.kron(blocks, np.ones((by, bx), int))[:h, :w].astype(np.uint8)
    return COLOURS[mask].astype(np.uint8), mask


def interior(mask, radius=2):
    """Pixels whose (2r+1)^2 neighbourhood holds one label: away from every label boundary,
    including those just outside the crop (hence the frame of `radius` pixels is left out)."""
    size = 2 * radius + 1
    inner = ndimage.maximum_filter(mask, size) == ndimage.minimum_filter(mask, size)
    inner[:radius] = inner[-radius:] = False
    inner[:, :radius] = inner[:, -radius:] = False
    return inner


@pytest.mark.parametrize("seed", range(8))
def test_train_augment_keeps_image_and_mask_aligned(seed):
    image, mask = block_pattern(seed=seed)
    out_image, out_mask = train_augment(
        image, mask, tf.constant([seed, 7], tf.int64), crop_size=(48, 56), scale_range=(0.5, 2.0)
    )
    out_image, out_mask = out_image.numpy(), out_mask.numpy()
    assert out_image.shape == (48, 56, 3) and out_image.dtype == np.float32
    assert out_mask.shape == (48, 56) and out_mask.dtype == np.uint8
    inner = interior(out_mask)
    labelled = inner & (out_mask != 255)
    assert labelled.sum() > 50
    np.testing.assert_allclose(out_image[labelled], COLOURS[out_mask[labelled]], atol=1.0)
    # the pattern has no void: every 255 is padding, which is the mean pixel
    pad = inner & (out_mask == 255)
    np.testing.assert_allclose(
        out_image[pad], np.broadcast_to(IMAGENET_MEAN_RGB, out_image[pad].shape), atol=1e-3
    )


@pytest.mark.parametrize("seed", range(12))
def test_scale_pad_crop_equals_the_composition(seed):
    """The fused op (which computes only the crop when the rescaled image is large) gives what
    scale, then pad, then crop give: masks exactly, images up to float rounding."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(45, 60, 3)).astype(np.float32)
    mask = rng.integers(0, 21, size=(45, 60)).astype(np.uint8)
    seed_t = tf.constant([seed, 3], tf.int64)
    got_image, got_mask = random_scale_pad_crop(image, mask, seed_t, (40, 50), (0.5, 2.0))
    scale_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed_t, 2))
    want_image, want_mask = random_scale(image, mask, scale_seed, (0.5, 2.0))
    want_image, want_mask = pad_to_size(want_image, want_mask, (40, 50))
    want_image, want_mask = random_crop(want_image, want_mask, crop_seed, (40, 50))
    np.testing.assert_array_equal(got_mask.numpy(), want_mask.numpy())
    np.testing.assert_allclose(got_image.numpy(), want_image.numpy(), atol=0.02)


def test_train_augment_flips_and_scales_both():
    """Over several seeds the output differs (flip, scale and crop are applied), and stays
    aligned each time."""
    image, mask = block_pattern(seed=1)
    outs = [
        train_augment(image, mask, tf.constant([s, 0]), crop_size=(40, 40))[1].numpy()
        for s in range(6)
    ]
    assert len({o.tobytes() for o in outs}) == 6


@pytest.mark.parametrize("seed", range(10))
def test_train_augment_never_invents_labels(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    mask = rng.choice(np.array([0, 3, 7, 255], np.uint8), size=(37, 53))
    _, out = train_augment(
        image, mask, tf.constant([seed, 1]), crop_size=(45, 45), photometric=True
    )
    assert set(np.unique(out.numpy()).tolist()) <= set(np.unique(mask).tolist()) | {255}


def test_train_augment_pads_with_mean_and_255():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    mask = rng.integers(0, 21, size=(20, 30), dtype=np.uint8)
    out_image, out_mask = train_augment(
        image, mask, tf.constant([0, 0]), crop_size=(40, 40), scale_range=(1.0, 1.0), flip=False
    )
    out_image, out_mask = out_image.numpy(), out_mask.numpy()
    np.testing.assert_array_equal(out_mask[:20, :30], mask)
    np.testing.assert_array_equal(out_image[:20, :30], image.astype(np.float32))
    assert (out_mask[20:] == 255).all() and (out_mask[:, 30:] == 255).all()
    np.testing.assert_allclose(out_image[20:], np.broadcast_to(IMAGENET_MEAN_RGB, (20, 40, 3)))
    np.testing.assert_allclose(out_image[:, 30:], np.broadcast_to(IMAGENET_MEAN_RGB, (40, 10, 3)))


def test_pad_to_size_leaves_larger_inputs():
    image = tf.zeros((50, 60, 3), tf.uint8)
    mask = tf.zeros((50, 60), tf.uint8)
    out_image, out_mask = pad_to_size(image, mask, (40, 70))
    assert out_image.shape == (50, 70, 3) and out_mask.shape == (50, 70)


def test_train_augment_is_a_function_of_the_seed():
    image, mask = block_pattern(seed=2)
    a = train_augment(image, mask, tf.constant([3, 4]), crop_size=(32, 32), photometric=True)
    b = train_augment(image, mask, tf.constant([3, 4]), crop_size=(32, 32), photometric=True)
    c = train_augment(image, mask, tf.constant([3, 5]), crop_size=(32, 32), photometric=True)
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    assert not np.array_equal(a[0].numpy(), c[0].numpy())


def test_photometric_jitter_changes_the_image_only():
    image, mask = block_pattern(seed=3)
    jittered = photometric_jitter(image.astype(np.float32), tf.constant([1, 2])).numpy()
    assert jittered.shape == image.shape
    assert 0.0 <= jittered.min() and jittered.max() <= 255.0
    assert not np.allclose(jittered, image)
    _, out_mask = train_augment(
        image,
        mask,
        tf.constant([1, 2]),
        crop_size=(60, 84),
        scale_range=(1, 1),
        flip=False,
        photometric=True,
    )
    np.testing.assert_array_equal(out_mask.numpy(), mask)


def test_eval_pad_pads_and_keeps_the_mask():
    image, mask = block_pattern(h=30, w=40)
    out_image, out_mask = eval_preprocess(image, mask, "pad", (48, 64))
    out_image, out_mask = out_image.numpy(), out_mask.numpy()
    assert out_image.shape == (48, 64, 3) and out_mask.shape == (48, 64)
    np.testing.assert_array_equal(out_mask[:30, :40], mask)
    assert (out_mask[30:] == 255).all() and (out_mask[:, 40:] == 255).all()
    np.testing.assert_array_equal(out_image[:30, :40], image.astype(np.float32))


def test_eval_resize_resizes_the_image_only():
    image, mask = block_pattern(h=30, w=40)
    out_image, out_mask = eval_preprocess(image, mask, "resize", (64, 64))
    assert out_image.shape == (64, 64, 3)
    np.testing.assert_array_equal(out_mask.numpy(), mask)


def test_eval_none_keeps_everything():
    image, mask = block_pattern(h=30, w=40)
    out_image, out_mask = eval_preprocess(image, mask, "none")
    np.testing.assert_array_equal(out_image.numpy(), image.astype(np.float32))
    np.testing.assert_array_equal(out_mask.numpy(), mask)


def test_eval_pad_too_large_names_the_sample_in_one_line_for_commands():
    image, mask = block_pattern(h=30, w=40)
    with pytest.raises(tf.errors.InvalidArgumentError, match="2007_000123") as raised:
        eval_preprocess(image, mask, "pad", (20, 64), sample_id=tf.constant("2007_000123"))
    assert str(dataset_error_from(raised.value)) == (
        "2007_000123 is 30x40 (height x width), larger than data.eval_size (20, 64) with "
        "data.eval_mode=pad: set data.eval_size to at least the largest evaluation image, "
        "or data.eval_mode=resize"
    )


def test_eval_mode_is_checked():
    image, mask = block_pattern(h=30, w=40)
    with pytest.raises(ValueError, match="eval_mode must be one of"):
        eval_preprocess(image, mask, "crop", (20, 20))
