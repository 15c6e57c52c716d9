"""A picture of synthetic samples (image beside its mask in VOC colours), for the docs."""

import os

import numpy as np
from PIL import Image

from rignet_keras.data.palette import colorize
from rignet_keras.data.synthetic.config import SyntheticConfig
from rignet_keras.data.synthetic.samples import make_synthetic


def sample_grid(num_samples=8, seed=0, config=None, scale=2, columns=2):
    """An RGB uint8 image: `num_samples` samples as (image | mask in VOC palette colours) pairs,
    `columns` pairs per row, each pixel drawn `scale` times larger."""
    config = config or SyntheticConfig()
    images, masks = make_synthetic(num_samples, seed, config)
    h, w = config.image_size[0] * scale, config.image_size[1] * scale
    gap, pair_gap = 4, 12
    rows = -(-num_samples // columns)
    pair_w = 2 * w + gap
    grid = np.full(
        (rows * (h + gap) + gap, columns * (pair_w + pair_gap) - pair_gap + 2 * gap, 3),
        255,
        np.uint8,
    )
    for i in range(num_samples):
        r, c = divmod(i, columns)
        y0, x0 = gap + r * (h + gap), gap + c * (pair_w + pair_gap)
        grid[y0 : y0 + h, x0 : x0 + w] = images[i].repeat(scale, 0).repeat(scale, 1)
        mask = colorize(masks[i]).repeat(scale, 0).repeat(scale, 1)
        grid[y0 : y0 + h, x0 + w + gap : x0 + pair_w] = mask
    return grid


def save_sample_grid(path, num_samples=8, seed=0, config=None, scale=2):
    """Renders `sample_grid` to a PNG at `path` (e.g. docs/synthetic_samples.png)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(sample_grid(num_samples, seed, config, scale)).save(path)
    return path
