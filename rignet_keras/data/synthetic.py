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
"""

import colorsys
import dataclasses
import json
import os

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from rignet_keras.data.info import IGNORE_LABEL, DatasetInfo
from rignet_keras.data.palette import colorize

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
CONFIG_FILENAME = "synthetic.json"
OBJECT_SHAPES = ("blob", "bar")
MARK_POSITIONS = ("anywhere", "end")


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """How synthetic samples look.

    Args:
        image_size: (height, width) in pixels. Default (96, 96).
        num_classes: classes including the background (class 0). Default 5.
        objects_per_image: (min, max) number of objects. Default (1, 3).
        object_size: (min, max) object diameter as a fraction of min(height, width).
        mark_size: side of the class mark in pixels; None = max(3, min(height, width) // 16).
        distractors_per_image: (min, max) marks on the background.
        decoys_per_image: (min, max) striped blobs without a mark (background).
        clutter_per_image: (min, max) grey bars and lines on the background.
        void_border: width of the void (255) band either side of an object outline; 0 = none.
        object_shape: "blob" (default): ellipses or star-shaped polygons, `object_size` across;
            "bar": straight bars of random orientation, `object_size` long and `bar_width` wide.
            Decoys take the same shapes.
        bar_width: (min, max) width of a "bar" as a fraction of min(height, width).
        mark_position: "anywhere" (default): a random place inside the object; "end": as far
            from the object's centroid as the mark fits (one end of a bar, drawn at random).
    """

    image_size: tuple = (96, 96)
    num_classes: int = 5
    objects_per_image: tuple = (1, 3)
    object_size: tuple = (0.35, 0.55)
    mark_size: int | None = None
    distractors_per_image: tuple = (1, 3)
    decoys_per_image: tuple = (0, 1)
    clutter_per_image: tuple = (2, 5)
    void_border: int = 1
    object_shape: str = "blob"
    bar_width: tuple = (0.18, 0.25)
    mark_position: str = "anywhere"

    def __post_init__(self):
        for name in (
            "image_size",
            "objects_per_image",
            "object_size",
            "distractors_per_image",
            "decoys_per_image",
            "clutter_per_image",
            "bar_width",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not 2 <= self.num_classes <= 255:
            raise ValueError(f"num_classes must be in 2..255; received {self.num_classes}")
        if min(self.image_size) < 32:
            raise ValueError(f"image_size must be at least 32x32; received {self.image_size}")
        if not 0 < self.object_size[0] <= self.object_size[1] <= 0.9:
            raise ValueError(
                f"object_size must be 0 < min <= max <= 0.9; received {self.object_size}"
            )
        if self.object_shape not in OBJECT_SHAPES:
            raise ValueError(
                f"object_shape must be one of {OBJECT_SHAPES}; received {self.object_shape!r}"
            )
        if self.mark_position not in MARK_POSITIONS:
            raise ValueError(
                f"mark_position must be one of {MARK_POSITIONS}; received {self.mark_position!r}"
            )
        if not 0 < self.bar_width[0] <= self.bar_width[1] <= 0.5:
            raise ValueError(f"bar_width must be 0 < min <= max <= 0.5; received {self.bar_width}")
        if self.object_shape == "bar" and self.bar_width[1] > self.object_size[0]:
            raise ValueError(
                f"bars must be longer than wide: object_size min {self.object_size[0]} < "
                f"bar_width max {self.bar_width[1]}"
            )
        # The narrowest object (an ellipse of axis ratio 0.6, or the narrowest bar) must hold the
        # mark, 1 px around it, and the void border plus 1 px on either side.
        need = self.resolved_mark_size + 2 + 2 * (self.void_border + 1)
        if self.object_shape == "bar":
            narrowest, what = self.bar_width[0] * min(self.image_size), "bar_width"
        else:
            narrowest, what = 0.6 * self.min_object_diameter, "object_size"
        if narrowest < need:
            raise ValueError(
                f"objects of {narrowest:.0f} px width are too small for a "
                f"{self.resolved_mark_size} px mark; raise {what} or lower mark_size"
            )

    @property
    def resolved_mark_size(self):
        """The mark side in pixels (`mark_size`, or its default)."""
        return self.mark_size or max(3, min(self.image_size) // 16)

    @property
    def min_object_diameter(self):
        return int(self.object_size[0] * min(self.image_size))

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


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


def class_colors(num_classes):
    """RGB uint8 (num_classes, 3): the mark colour of each class (row 0, background, is unused):
    saturated hues spaced evenly around the colour wheel."""
    colors = np.zeros((num_classes, 3), np.uint8)
    for c in range(1, num_classes):
        rgb = colorsys.hsv_to_rgb((c - 1) / (num_classes - 1), 1.0, 1.0)
        colors[c] = np.round(np.array(rgb) * 255)
    return colors


def synthetic_info(config=None):
    """`DatasetInfo` of the synthetic dataset under `config`."""
    config = config or SyntheticConfig()
    names = ("background",) + tuple(f"class_{c}" for c in range(1, config.num_classes))
    return DatasetInfo("synthetic", config.num_classes, "synthetic", names)


def _randint(rng, bounds):
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _smooth_noise(rng, h, w, cell):
    """Noise with blobs about `cell` pixels across, in [-1, 1] roughly."""
    gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    return ndimage.zoom(coarse, (h / gh, w / gw), order=1, grid_mode=True, mode="nearest")[:h, :w]


def _background(rng, h, w):
    grey = rng.uniform(80, 180)
    tint = rng.normal(0, 14, size=3)
    img = np.empty((h, w, 3), np.float32)
    blotches = _smooth_noise(rng, h, w, cell=int(rng.integers(6, 16)))
    for ch in range(3):
        img[..., ch] = grey + tint[ch] + 25 * blotches + rng.normal(0, 6, size=(h, w))
    return img


def _draw_clutter(rng, img, config):
    h, w = img.shape[:2]
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(_randint(rng, config.clutter_per_image)):
        value = int(rng.integers(1, 256))
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        if rng.random() < 0.5:  # a line
            x1, y1 = rng.uniform(0, w), rng.uniform(0, h)
            draw.line([(x0, y0), (x1, y1)], fill=value, width=int(rng.integers(1, 3)))
        else:  # a bar
            bw, bh = rng.uniform(2, w / 6), rng.uniform(2, h / 6)
            draw.rectangle([x0, y0, x0 + bw, y0 + bh], fill=value)
    c = np.asarray(canvas)
    sel = c > 0
    img[sel] = c[sel, None].astype(np.float32) * 0.6 + 40


def _shape_region(rng, grid, diameter, cy, cx):
    """A bool (h, w) region: an ellipse or a star-shaped polygon about `diameter` across."""
    yy, xx = grid
    h, w = yy.shape
    r = diameter / 2
    angle = rng.uniform(0, np.pi)
    if rng.random() < 0.5:
        ry, rx = r, r * rng.uniform(0.6, 1.0)
        dy, dx = yy - cy, xx - cx
        u = dx * np.cos(angle) + dy * np.sin(angle)
        v = -dx * np.sin(angle) + dy * np.cos(angle)
        return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0
    n = int(rng.integers(5, 10))
    thetas = angle + np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = r * rng.uniform(0.7, 1.0, n)
    pts = [(cx + rr * np.cos(t), cy + rr * np.sin(t)) for rr, t in zip(radii, thetas, strict=True)]
    canvas = Image.new("1", (w, h), 0)
    ImageDraw.Draw(canvas).polygon(pts, fill=1)
    return np.asarray(canvas, bool)


def _bar_region(rng, grid, config):
    """A bool (h, w) bar (a rotated rectangle) lying fully inside the image, or None."""
    yy, xx = grid
    h, w = yy.shape
    side = min(h, w)
    length = rng.uniform(*config.object_size) * side
    width = rng.uniform(*config.bar_width) * side
    angle = rng.uniform(0, np.pi)
    c, s = abs(np.cos(angle)), abs(np.sin(angle))
    ey, ex = length / 2 * s + width / 2 * c + 1, length / 2 * c + width / 2 * s + 1
    if 2 * ey >= h or 2 * ex >= w:
        return None
    cy, cx = rng.uniform(ey, h - ey), rng.uniform(ex, w - ex)
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    return (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)


def _place(rng, grid, free, config, with_mark):
    """(region, mark corner or None) of a shape inside the image and inside `free`, or None.

    An object (`with_mark`) is only accepted if its mark fits inside it, away from the void border.
    """
    h, w = free.shape
    lo, hi = config.object_size
    m, vb = config.resolved_mark_size, config.void_border
    for _ in range(30):
        if config.object_shape == "bar":
            region = _bar_region(rng, grid, config)
            if region is None:
                continue
        else:
            d = rng.uniform(lo, hi) * min(h, w)
            r = d / 2 + 1
            region = _shape_region(rng, grid, d, rng.uniform(r, h - r), rng.uniform(r, w - r))
        if region.sum() < 16 or (region & ~free).any():
            continue
        if not with_mark:
            return region, None
        inner = ndimage.binary_erosion(region, iterations=vb + 1) if vb else region
        if config.mark_position == "end":
            corner = _box_farthest(rng, inner, m, pad=1, centre=ndimage.center_of_mass(region))
        else:
            corner = _box_inside(rng, inner, m, pad=1)
        if corner is not None:
            return region, corner
    return None


def _stripes(rng, grid):
    """The shared interior texture: grey stripes, same distribution for every class."""
    yy, xx = grid
    h, w = yy.shape
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(4, 9)
    phase = rng.uniform(0, 2 * np.pi)
    lo = rng.uniform(30, 110)
    hi = min(255.0, lo + rng.uniform(60, 130))
    wave = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + phase)
    tex = np.where(wave > 0, hi, lo).astype(np.float32) + rng.normal(0, 8, size=(h, w))
    return np.repeat(tex[..., None], 3, axis=2) + rng.normal(0, 4, size=3)


def _box_candidates(allowed, size, pad):
    """(ys, xs): top-left corners of every `size` square whose `pad`-grown box lies in `allowed`."""
    h, w = allowed.shape
    k = size + 2 * pad
    if k > min(h, w):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    integral = np.pad(allowed.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[k:, k:] - integral[:-k, k:] - integral[k:, :-k] + integral[:-k, :-k]
    ys, xs = np.nonzero(sums == k * k)
    return ys + pad, xs + pad


def _box_inside(rng, allowed, size, pad):
    """Top-left (y, x) of a `size` square whose `pad`-grown box lies in `allowed`, or None."""
    ys, xs = _box_candidates(allowed, size, pad)
    if ys.size == 0:
        return None
    j = int(rng.integers(ys.size))
    return int(ys[j]), int(xs[j])


def _box_farthest(rng, allowed, size, pad, centre):
    """Like `_box_inside`, but the square's centre as far from `centre` (y, x) as it can be
    (drawn at random among the places within 1 px of the farthest), or None."""
    ys, xs = _box_candidates(allowed, size, pad)
    if ys.size == 0:
        return None
    dist = np.hypot(ys + (size - 1) / 2 - centre[0], xs + (size - 1) / 2 - centre[1])
    far = np.nonzero(dist >= dist.max() - 1)[0]
    j = int(far[rng.integers(far.size)])
    return int(ys[j]), int(xs[j])


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
    img = _background(rng, h, w)
    _draw_clutter(rng, img, config)
    mask = np.zeros((h, w), np.uint8)
    occupied = np.zeros((h, w), bool)
    free = np.ones((h, w), bool)
    gap = 2 * vb + 2  # shapes stay this far apart, so void borders never touch

    objects, decoys = [], []
    n_obj = _randint(rng, config.objects_per_image)
    n_decoy = _randint(rng, config.decoys_per_image)
    for k in range(n_obj + n_decoy):
        placed = _place(rng, grid, free, config, with_mark=k < n_obj)
        if placed is None:
            continue
        region, corner = placed
        occupied |= region
        free = ndimage.distance_transform_edt(~occupied) > gap
        tex = _stripes(rng, grid)
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
    for _ in range(_randint(rng, config.distractors_per_image)):
        corner = _box_inside(rng, free, m, pad=1)
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


def write_synthetic_voc(data_dir, num_train=200, num_val=50, seed=0, config=None, quality=95):
    """Writes synthetic samples to disk in the VOC 2012 layout, readable by `voc_records`.

    Writes `data_dir/VOCdevkit/VOC2012/{JPEGImages/*.jpg, SegmentationClass/*.png (palette),
    ImageSets/Segmentation/{train,val,trainval}.txt}` and `data_dir/synthetic.json` (the config,
    the seed and the `DatasetInfo`). Ids are `syn_train_000000`, `syn_val_000000`, ...

    Returns:
        the `VOC2012` folder.
    """
    from rignet_keras.data.voc import write_png_mask

    config = config or SyntheticConfig()
    root = os.path.join(os.fspath(data_dir), "VOCdevkit", "VOC2012")
    for sub in ("JPEGImages", "SegmentationClass", os.path.join("ImageSets", "Segmentation")):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    lists = {}
    for split, n in (("train", num_train), ("val", num_val)):
        ids = []
        for i in range(n):
            sample_id = f"syn_{split}_{i:06d}"
            s = generate_sample(seed, i, config, split)
            Image.fromarray(s.image).save(
                os.path.join(root, "JPEGImages", f"{sample_id}.jpg"), quality=quality
            )
            write_png_mask(os.path.join(root, "SegmentationClass", f"{sample_id}.png"), s.mask)
            ids.append(sample_id)
        lists[split] = ids
    lists["trainval"] = lists["train"] + lists["val"]
    for split, ids in lists.items():
        with open(os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in ids))
    with open(os.path.join(os.fspath(data_dir), CONFIG_FILENAME), "w", encoding="utf-8") as f:
        json.dump(
            {"seed": seed, "config": config.to_dict(), "info": synthetic_info(config).to_dict()},
            f,
            indent=2,
        )
    return root


def load_synthetic_config(data_dir):
    """The `SyntheticConfig` stored by `write_synthetic_voc` in `data_dir`, or None."""
    if data_dir is None:
        return None
    path = os.path.join(os.fspath(data_dir), CONFIG_FILENAME)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return SyntheticConfig.from_dict(json.load(f)["config"])


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
