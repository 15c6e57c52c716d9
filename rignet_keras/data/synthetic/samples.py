"""Synthetic samples: `generate_sample` (one, a pure function of seed, split and index),
`make_synthetic` (many, in memory), and `mark_distance` (each object pixel's distance from its
mark)."""

import dataclasses

import numpy as np
from scipy import ndimage

from rignet_keras.data.synthetic.config import SPLIT_CODES, SyntheticConfig, class_colors
from rignet_keras.data.synthetic.drawing import (
    background,
    box_inside,
    draw_clutter,
    place_shape,
    randint,
    stripes,
)
from rignet_keras.labels import IGNORE_LABEL


@dataclasses.dataclass
class SyntheticObject:
    """One object as drawn: its class, its region (bool (H, W)) and its mark box (y0, x0, y1, x1),
    end-exclusive; decoys have class 0 and no mark (`mark_box` None)."""

    class_id: int
    region: np.ndarray
    mark_box: tuple | None


@dataclasses.dataclass
class SyntheticSample:
    """A generated sample: image uint8 (H, W, 3), mask uint8 (H, W), and what was drawn."""

    image: np.ndarray
    mask: np.ndarray
    objects: list
    decoys: list
    distractor_boxes: list


def mark_distance(sample):
    """Each object pixel's distance from its object's mark, for bench figures by distance.

    Args:
        sample: a `SyntheticSample`.

    Returns:
        float32 (H, W): the Euclidean distance in pixels from each pixel of an object (void
        border included) to the nearest pixel of that object's mark, 0 on the mark; NaN on the
        background and on decoys.
    """
    out = np.full(sample.mask.shape, np.nan, np.float32)
    for obj in sample.objects:
        y0, x0, y1, x1 = obj.mark_box
        off_mark = np.ones(sample.mask.shape, bool)
        off_mark[y0:y1, x0:x1] = False
        out[obj.region] = ndimage.distance_transform_edt(off_mark)[obj.region]
    return out


def generate_sample(seed, index, config=None, split="train"):
    """Generates one sample; a pure function of (seed, split, index, config).

    Returns:
        `SyntheticSample` with image uint8 (H, W, 3) and mask uint8 (H, W).
    """
    config = config or SyntheticConfig()
    if split not in SPLIT_CODES:
        raise ValueError(f"split must be one of {tuple(SPLIT_CODES)}; received {split!r}")
    rng = np.random.default_rng([int(seed), SPLIT_CODES[split], int(index)])
    h, w = config.image_size
    m, vb = config.resolved_mark_size, config.void_border
    colors = class_colors(config.num_classes)

    grid = tuple(np.mgrid[0:h, 0:w].astype(np.float32))
    img = background(rng, h, w)
    draw_clutter(rng, img, config)
    mask = np.zeros((h, w), np.uint8)
    occupied = np.zeros((h, w), bool)
    free = np.ones((h, w), bool)
    gap = 2 * vb + 2  # shapes stay this far apart, so void borders never touch

    objects, decoys = [], []
    n_obj = randint(rng, config.objects_per_image)
    n_decoy = randint(rng, config.decoys_per_image)
    for k in range(n_obj + n_decoy):
        placed = place_shape(rng, grid, free, config, with_mark=k < n_obj)
        if placed is None:
            continue
        region, corner = placed
        occupied |= region
        free = ndimage.distance_transform_edt(~occupied) > gap
        tex = stripes(rng, grid)
        img[region] = tex[region]
        if corner is None:
            decoys.append(SyntheticObject(0, region, None))
            continue
        c = int(rng.integers(1, config.num_classes))
        y0, x0 = corner
        img[y0 : y0 + m, x0 : x0 + m] = colors[c]
        mask[region] = c
        objects.append(SyntheticObject(c, region, (y0, x0, y0 + m, x0 + m)))

    if vb:
        for obj in objects:
            band = ndimage.binary_dilation(obj.region, iterations=vb) & ~ndimage.binary_erosion(
                obj.region, iterations=vb
            )
            mask[band] = IGNORE_LABEL

    free = ndimage.distance_transform_edt(~occupied) > 2
    distractors = []
    for _ in range(randint(rng, config.distractors_per_image)):
        corner = box_inside(rng, free, m, pad=1)
        if corner is None:
            break
        y0, x0 = corner
        img[y0 : y0 + m, x0 : x0 + m] = colors[int(rng.integers(1, config.num_classes))]
        free[max(0, y0 - 2) : y0 + m + 2, max(0, x0 - 2) : x0 + m + 2] = False
        distractors.append((y0, x0, y0 + m, x0 + m))

    image = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return SyntheticSample(image, mask, objects, decoys, distractors)


def make_synthetic(num_samples, seed=0, config=None, split="train"):
    """Generates `num_samples` samples in memory.

    Returns:
        (images uint8 (N, H, W, 3), masks uint8 (N, H, W)); sample i is `generate_sample(seed, i)`.
    """
    config = config or SyntheticConfig()
    h, w = config.image_size
    images = np.empty((num_samples, h, w, 3), np.uint8)
    masks = np.empty((num_samples, h, w), np.uint8)
    for i in range(num_samples):
        s = generate_sample(seed, i, config, split)
        images[i], masks[i] = s.image, s.mask
    return images, masks
