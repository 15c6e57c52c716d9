"""The "synthetic" dataset: a segmentation task where context matters, generated from a seed.

It is the embedded default for training on a fresh machine (no download), a realistic fixture (it
writes the VOC layout), and a small test of the paper's claim that iterative feedback helps where
local evidence is ambiguous.

Design (one image):

- Background (class 0): a tinted, low-saturation colour field with smooth blotches and fine noise,
  plus clutter (grey bars and lines).
- Objects (classes 1..num_classes-1): ellipses or star-shaped polygons of random size, rotation and
  place, never overlapping. Every object's INTERIOR TEXTURE is drawn from the same distribution
  whatever its class (grey stripes of random orientation, period, phase and contrast), and its shape
  too: a patch of object interior says "object", never which one.
- Each object carries one small MARK: a square of saturated colour, one colour per class
  (`class_colors`), `mark_size` pixels wide, at a random place fully inside the object. The mark is
  the only evidence of the class: labelling the far side of an object needs the mark's evidence
  carried across the object.
- Distractors: marks of random class colours on the background (a mark alone is not an object),
  and decoys: striped blobs with no mark, labelled background (stripes alone are not an object).
- Mask: 0 background, c for object c, and a void (255) border `void_border` pixels either side of
  each object's outline, as in VOC.

Every sample is a function of (seed, split, index) only, through `numpy.random.default_rng`, so
sample i is the same whatever `num_samples` is, and "train" and "val" never share a sample.
Defaults (96x96, 5 classes, 6-pixel marks) let a small CNN learn something in minutes on 2 CPU
cores.

The long-range variant (`object_shape="bar"`, `mark_position="end"`): objects (and decoys) are
long straight bars and each mark sits at one end of its bar, so most of an object lies far from
its only evidence; `mark_distance` gives each object pixel's distance from its mark. The
options' defaults draw exactly the samples drawn before the options existed.

Modules: `config` (`SyntheticConfig`, `class_colors`, `synthetic_info`), `drawing` (the shapes,
textures and placements), `samples` (`generate_sample`, `make_synthetic`, `mark_distance`),
`voc_files` (`write_synthetic_voc`, `load_synthetic_config`) and `grid` (`save_sample_grid`).
"""

from rignet_keras.data.synthetic.config import (
    MARK_POSITIONS,
    OBJECT_SHAPES,
    SPLIT_CODES,
    SyntheticConfig,
    class_colors,
    synthetic_info,
)
from rignet_keras.data.synthetic.grid import sample_grid, save_sample_grid
from rignet_keras.data.synthetic.samples import (
    SyntheticObject,
    SyntheticSample,
    generate_sample,
    make_synthetic,
    mark_distance,
)
from rignet_keras.data.synthetic.voc_files import (
    CONFIG_FILENAME,
    load_synthetic_config,
    write_synthetic_voc,
)

__all__ = [
    "CONFIG_FILENAME",
    "MARK_POSITIONS",
    "OBJECT_SHAPES",
    "SPLIT_CODES",
    "SyntheticConfig",
    "SyntheticObject",
    "SyntheticSample",
    "class_colors",
    "generate_sample",
    "load_synthetic_config",
    "make_synthetic",
    "mark_distance",
    "sample_grid",
    "save_sample_grid",
    "synthetic_info",
    "write_synthetic_voc",
]
