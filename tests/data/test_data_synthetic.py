"""The synthetic dataset: deterministic per seed, masks that match what was drawn, marks inside
their objects, and a VOC layout on disk that the VOC reader reads back exactly."""

import os

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from rignet_keras.data import (
    SyntheticConfig,
    decode_mask,
    generate_sample,
    get_records,
    make_synthetic,
    save_sample_grid,
    synthetic_info,
    voc_records,
    write_synthetic_voc,
)
from rignet_keras.data.synthetic import class_colors


def test_deterministic_per_seed():
    a_images, a_masks = make_synthetic(6, seed=3)
    b_images, b_masks = make_synthetic(6, seed=3)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_masks, b_masks)
    c_images, c_masks = make_synthetic(6, seed=4)
    assert not np.array_equal(a_images, c_images)
    assert not np.array_equal(a_masks, c_masks)
    # sample i does not depend on how many are generated; splits never share samples
    np.testing.assert_array_equal(make_synthetic(2, seed=3)[0], a_images[:2])
    assert not np.array_equal(make_synthetic(2, seed=3, split="val")[0], a_images[:2])


def test_shapes_dtypes_and_label_set():
    config = SyntheticConfig(image_size=(64, 80), num_classes=7)
    images, masks = make_synthetic(20, seed=0, config=config)
    assert images.shape == (20, 64, 80, 3) and images.dtype == np.uint8
    assert masks.shape == (20, 64, 80) and masks.dtype == np.uint8
    values = set(np.unique(masks).tolist())
    assert values <= set(range(7)) | {255}
    assert {0, 255} <= values and len(values - {0, 255}) >= 4  # several classes occur
    info = synthetic_info(config)
    assert (info.num_classes, info.name, info.class_names[0]) == (7, "synthetic", "background")


@pytest.mark.parametrize("index", range(12))
def test_masks_match_what_was_drawn(index):
    config = SyntheticConfig()
    s = generate_sample(0, index, config)
    colors = class_colors(config.num_classes)
    drawn = np.zeros(s.mask.shape, np.int32)
    assert s.objects, "every sample has at least one object"
    for obj in s.objects:
        assert 1 <= obj.class_id < config.num_classes
        drawn[obj.region] = obj.class_id
        # the object's pixels are labelled with its class, except the void border
        labels = s.mask[obj.region]
        assert set(np.unique(labels).tolist()) <= {obj.class_id, 255}
        assert (labels == obj.class_id).mean() > 0.5
        # its mark lies inside the object, labelled with the object's class, in the class colour
        y0, x0, y1, x1 = obj.mark_box
        assert obj.region[y0:y1, x0:x1].all()
        assert (s.mask[y0:y1, x0:x1] == obj.class_id).all()
        assert (s.image[y0:y1, x0:x1] == colors[obj.class_id]).all()
    for c in range(1, config.num_classes):
        # every pixel of class c lies where the generator drew an object of class c
        assert (drawn[s.mask == c] == c).all()
    # decoys are background; distractor marks lie on the background, outside every object
    for decoy in s.decoys:
        assert set(np.unique(s.mask[decoy.region]).tolist()) <= {0, 255}
    for y0, x0, y1, x1 in s.distractor_boxes:
        assert (drawn[y0:y1, x0:x1] == 0).all()
        assert (s.mask[y0:y1, x0:x1] == 0).all()
    # void only along object outlines
    near = np.zeros_like(drawn, bool)
    for obj in s.objects:
        near |= ndimage.binary_dilation(obj.region, iterations=config.void_border)
    assert near[s.mask == 255].all()


def test_texture_is_shared_across_classes():
    """The interior (away from the mark) carries no class evidence: its grey-level statistics do
    not depend on the class."""
    config = SyntheticConfig()
    stats = {c: [] for c in range(1, config.num_classes)}
    for i in range(150):
        s = generate_sample(1, i, config)
        for obj in s.objects:
            inside = obj.region.copy()
            y0, x0, y1, x1 = obj.mark_box
            inside[y0:y1, x0:x1] = False
            px = s.image[inside].astype(np.float32)
            stats[obj.class_id].append((px.mean(), np.abs(px[:, 0] - px[:, 2]).mean()))
    means = np.array([np.mean([m for m, _ in v]) for v in stats.values()])
    sats = np.array([np.mean([d for _, d in v]) for v in stats.values()])
    assert means.max() - means.min() < 15  # same brightness distribution for every class
    assert sats.max() < 10  # grey: no colour cue inside objects


def test_config_checks():
    with pytest.raises(ValueError, match="too small"):
        SyntheticConfig(image_size=(32, 32), object_size=(0.1, 0.2), mark_size=8)
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticConfig(num_classes=1)


def test_write_voc_layout_reads_back_exactly(tmp_path):
    config = SyntheticConfig(image_size=(48, 64))
    root = write_synthetic_voc(tmp_path, num_train=5, num_val=3, seed=2, config=config)
    assert root == os.path.join(str(tmp_path), "VOCdevkit", "VOC2012")
    train = voc_records(tmp_path, "train")
    assert len(train) == 5 and len(voc_records(tmp_path, "trainval")) == 8
    for i, r in enumerate(train):
        s = generate_sample(2, i, config, "train")
        np.testing.assert_array_equal(decode_mask(r.mask_path, r.mask_format), s.mask)
        with Image.open(r.image_path) as im:
            assert im.format == "JPEG" and im.size == (64, 48)
    records, info = get_records("synthetic", "val", tmp_path)
    assert len(records) == 3 and info.name == "synthetic" and info.num_classes == 5


def test_save_sample_grid(tmp_path):
    path = save_sample_grid(str(tmp_path / "grid.png"), num_samples=4, seed=0, scale=1)
    with Image.open(path) as im:
        assert im.mode == "RGB" and im.size[0] > 4 * 96 and im.size[1] > 2 * 96
